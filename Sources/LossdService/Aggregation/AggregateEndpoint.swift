import LossdHTTP
import LossdJSON
import LossdKernels

/// `POST /v1/aggregate`: soft labels from crowd annotations (docs/aggregation.md).
///
/// The endpoint maps item and annotator ids (ints or strings, kept in their JSON type) to
/// dense indices, validates every triple with a pointer to the offending element, runs the
/// kernels of `LossdKernels/Aggregation`, and writes the response in the request's orders.
enum AggregateEndpoint {
    static let maxClasses = 10_000
    /// Entries in one result matrix (items × K, and Dawid–Skene's annotators × K × K); 413 beyond.
    static let maxMatrixEntries = 1 << 24
    /// Annotations × observed labels for the iterative methods (work per pass); 413 beyond.
    static let maxPassWork = 1 << 28

    /// An item or annotator id: `1` and `"1"` are different ids.
    enum ID: Hashable {
        case int(Int)
        case string(String)

        var json: JSONValue {
            switch self {
            case .int(let i): .int(i)
            case .string(let s): .string(s)
            }
        }

        /// JSON text, for messages.
        var text: String { String(decoding: json.bytes, as: UTF8.self) }

        /// The id as a reader writes it: a string without its quotes.
        var plainText: String {
            switch self {
            case .int(let i): String(i)
            case .string(let s): s
            }
        }

        // Strings compare by their bytes (no Unicode normalisation): distinct JSON strings
        // stay distinct ids, as in crowd-kit.
        static func == (lhs: ID, rhs: ID) -> Bool {
            switch (lhs, rhs) {
            case let (.int(a), .int(b)): a == b
            case let (.string(a), .string(b)): a.utf8.elementsEqual(b.utf8)
            default: false
            }
        }

        func hash(into hasher: inout Hasher) {
            switch self {
            case .int(let i):
                hasher.combine(0)
                hasher.combine(i)
            case .string(let s):
                hasher.combine(1)
                for b in s.utf8 { hasher.combine(b) }
            }
        }

        /// MACE's sort (docs/aggregation.md §5): ints numerically before strings, strings by code
        /// points.
        static func sortsBefore(_ lhs: ID, _ rhs: ID) -> Bool {
            switch (lhs, rhs) {
            case let (.int(a), .int(b)): a < b
            case (.int, .string): true
            case (.string, .int): false
            case let (.string(a), .string(b)): a.unicodeScalars.lexicographicallyPrecedes(b.unicodeScalars)
            }
        }
    }

    /// Ids in first-seen (or given) order with their dense codes.
    struct IDTable {
        var ids: [ID] = []
        private var intCodes: [Int: Int32] = [:]
        private var otherCodes: [ID: Int32] = [:]

        func code(of id: ID) -> Int32? {
            if case .int(let i) = id { return intCodes[i] }
            return otherCodes[id]
        }

        /// The id's code, adding it when new; `inserted` tells which.
        mutating func insert(_ id: ID) -> (code: Int32, inserted: Bool) {
            if let c = code(of: id) { return (c, false) }
            let c = Int32(ids.count)
            ids.append(id)
            if case .int(let i) = id { intCodes[i] = c } else { otherCodes[id] = c }
            return (c, true)
        }
    }

    // MARK: Request

    static func respond(_ route: RouteRequest) throws(ServiceError) -> HTTPResponse {
        let (body, output) = try RequestMembers.checkedBody(
            route, allowed: ["method", "num_classes", "params", "annotations"], place: "an aggregation request")
        let method = try RequestMembers.method(body, in: AggregationCatalogue.all)
        guard let kNode = body["num_classes"] else { throw ServiceError.missing("num_classes") }
        guard case .number(let kValue) = kNode, kValue == kValue.rounded(), kValue >= 2, kValue <= Double(maxClasses) else {
            throw ServiceError.invalid(
                .invalidParam, field: "/num_classes",
                "`num_classes` must be an integer in [2, \(maxClasses)] (got \(ResolvedParameters.text(kNode)))")
        }
        let k = Int(kValue)
        let picture = AcceptHeader.prefers("image/svg+xml", route.request.headers["accept"])
        if picture && k > AnnotatorConfusionSVG.maxClasses {
            throw ServiceError.invalid(
                .invalidInput, field: "/num_classes",
                "the confusion-matrix picture draws at most \(AnnotatorConfusionSVG.maxClasses) classes (got \(k)); ask for JSON instead")
        }

        let params = try RequestMembers.params(body)
        let plan = try Plan(method: method, params: params, pointer: "/params")

        // Items listed in params.items come first, in that order.
        var itemTable = IDTable()
        let fixedItems = params?["items"].map { node -> JSONNode? in
            if case .null = node { return nil }
            return node
        } ?? nil
        if let fixedItems {
            let elements = try elementsOfList(fixedItems, field: "/params/items", name: "params.items")
            for (j, element) in elements.enumerated() {
                let id = try readID(element, field: "/params/items/\(j)", what: "`params.items[\(j)]`")
                guard itemTable.insert(id).inserted else {
                    throw ServiceError.invalid(
                        .invalidInput, field: "/params/items/\(j)", "`params.items` lists item \(id.text) twice")
                }
            }
        }

        guard let annotationsNode = body["annotations"] else { throw ServiceError.missing("annotations") }
        var annotatorTable = IDTable()
        let coded = try readAnnotations(
            annotationsNode, classes: k, items: &itemTable, annotators: &annotatorTable, itemsFixed: fixedItems != nil)

        let itemCount = itemTable.ids.count
        let annotatorCount = annotatorTable.ids.count
        guard itemCount * k <= maxMatrixEntries else {
            throw tooLarge(
                field: fixedItems != nil ? "/params/items" : "/annotations",
                "\(itemCount) items × \(k) classes exceed the \(maxMatrixEntries)-entry limit on soft labels")
        }
        if plan.methods.contains(where: \.confusionMatrices) || picture, annotatorCount * k * k > maxMatrixEntries {
            throw tooLarge(
                field: "/annotations",
                "\(annotatorCount) annotators × \(k)² classes exceed the \(maxMatrixEntries)-entry limit on confusion matrices")
        }

        // Coded annotations, per-item posteriors of every method run, per-annotator
        // confusion matrices, and the reply.
        let methodsRun = max(1, plan.methods.count)
        try WorkingSet.reserve(
            WorkingSet.sum(
                WorkingSet.product(coded.labels.count, 6 * WorkingSet.valueBytes),
                WorkingSet.product(methodsRun, itemCount, k, 4 * WorkingSet.valueBytes),
                WorkingSet.product(methodsRun, annotatorCount, k, k, 4 * WorkingSet.valueBytes),
                WorkingSet.product(itemCount, k, WorkingSet.replyBytesPerValue)),
            for: "this aggregation", in: route.context)

        let sortOrder = plan.methods.contains(where: \.sortsAnnotators)
            ? (0..<annotatorCount).sorted { ID.sortsBefore(annotatorTable.ids[$0], annotatorTable.ids[$1]) } : nil
        let data = CrowdAnnotations(
            itemCount: itemCount, annotatorCount: annotatorCount, numClasses: k,
            items: coded.items, annotators: coded.annotators, labels: coded.labels, annotatorSortOrder: sortOrder)
        if plan.methods.contains(where: \.iterative),
            data.count * data.observedCount > maxPassWork
        {
            throw tooLarge(
                field: "/annotations",
                "\(data.count) annotations × \(data.observedCount) observed labels exceed the per-pass work limit of \(maxPassWork)")
        }

        let result = plan.run(data)
        // A prior or temperature at the edge of its range can make a method's numbers
        // overflow; answer that, never nulls in place of soft labels.
        for answer in [result.0] + result.1.map(\.1)
        where !answer.soft.values.allFinite || !(answer.skill ?? []).allFinite {
            throw ServiceError.invalid(
                .valueOverflow, field: "/params",
                "the aggregation is not representable in float64 with these parameters (a prior or temperature too close to 0)")
        }
        if picture {
            return confusionPicture(result.0, method: plan.method, data: data, annotators: annotatorTable.ids)
        }
        return LossdService.json(
            render(result, plan: plan, data: data, items: itemTable.ids, annotators: annotatorTable.ids), output: output)
    }

    /// The annotators' confusion matrices as heat maps (AnnotatorConfusionSVG): Dawid–Skene's
    /// as fitted, the others' estimated against the soft labels; ordered by the method's skill,
    /// or by the agreement with the soft labels where the method has none.
    static func confusionPicture(
        _ result: AggregationResult, method: AggregationMethodDefinition, data: CrowdAnnotations, annotators: [ID]
    ) -> HTTPResponse {
        // Estimated only where the method has no matrices or no skill of its own.
        let confusion: Tensor, skill: [Double]
        if let fitted = result.confusion, let own = result.skill {
            (confusion, skill) = (fitted, own)
        } else {
            let estimated = Aggregation.empiricalConfusion(data, soft: result.soft)
            (confusion, skill) = (result.confusion ?? estimated.confusion, result.skill ?? estimated.agreement)
        }
        let k = data.numClasses
        let panels = annotators.indices.map { w in
            AnnotatorConfusionSVG.Panel(
                id: annotators[w].plainText, skill: skill[w], annotations: data.annotatorStart[w + 1] - data.annotatorStart[w],
                rows: confusion.values[(w * k * k)..<((w + 1) * k * k)])
        }
        let svg = AnnotatorConfusionSVG.render(
            method: method.name, fitted: result.confusion != nil, classes: k, panels: panels,
            skillName: result.skill == nil ? "agreement" : "skill")
        return HTTPResponse(status: .ok, headers: ["Content-Type": "image/svg+xml; charset=utf-8"], body: Array(svg.utf8))
    }

    static func tooLarge(field: String, _ detail: String) -> ServiceError {
        ServiceError(status: .contentTooLarge, code: "content_too_large", detail: detail, field: field)
    }

    /// The elements of a JSON list (a packed numeric vector or a general array).
    static func elementsOfList(_ node: JSONNode, field: String, name: String) throws(ServiceError) -> [JSONNode] {
        switch node {
        case .array(let elements): return elements
        case .numbers(let array) where array.shape.count == 1: return array.values.map { .number($0) }
        case .numbers(let array) where array.shape.count > 1:
            throw ServiceError.invalid(
                .invalidInput, field: "\(field)/0", "`\(name)[0]` must be an integer or a string (got an array)")
        default:
            throw ServiceError.invalid(.invalidShape, field: field, "`\(name)` must be an array of ids")
        }
    }

    /// An item or annotator id: an integer or a string.
    static func readID(_ node: JSONNode, field: String, what: String) throws(ServiceError) -> ID {
        switch node {
        case .string(let s): return .string(s)
        case .number(let v) where v == v.rounded() && abs(v) < 9_007_199_254_740_992: return .int(Int(v))
        default:
            throw ServiceError.invalid(
                .invalidInput, field: field, "\(what) must be an integer or a string (got \(ResolvedParameters.text(node)))")
        }
    }

    struct CodedAnnotations {
        var items: [Int32] = []
        var annotators: [Int32] = []
        var labels: [Int32] = []
    }

    static func readAnnotations(
        _ node: JSONNode, classes k: Int, items: inout IDTable, annotators: inout IDTable, itemsFixed: Bool
    ) throws(ServiceError) -> CodedAnnotations {
        var out = CodedAnnotations()

        func add(_ i: Int, _ itemNode: JSONNode, _ annotatorNode: JSONNode, _ labelNode: JSONNode) throws(ServiceError) {
            let item = try readID(itemNode, field: "/annotations/\(i)/0", what: "the item of `annotations[\(i)]`")
            let annotator = try readID(annotatorNode, field: "/annotations/\(i)/1", what: "the annotator of `annotations[\(i)]`")
            guard case .number(let l) = labelNode, l == l.rounded(), l >= 0, l < Double(k) else {
                throw ServiceError.invalid(
                    .invalidLabel, field: "/annotations/\(i)/2",
                    "the label of `annotations[\(i)]` must be an integer in [0, \(k - 1)] (got \(ResolvedParameters.text(labelNode)))")
            }
            let itemCode: Int32
            if itemsFixed {
                guard let c = items.code(of: item) else {
                    throw ServiceError.invalid(
                        .invalidInput, field: "/params/items",
                        "`params.items` must list every annotated item; \(item.text) (annotations[\(i)]) is missing")
                }
                itemCode = c
            } else {
                itemCode = items.insert(item).code
            }
            out.items.append(itemCode)
            out.annotators.append(annotators.insert(annotator).code)
            out.labels.append(Int32(l))
        }

        let emptyError = ServiceError.invalid(
            .invalidShape, field: "/annotations", "`annotations` must be a non-empty array of [item, annotator, label]")
        func tripleError(_ i: Int) -> ServiceError {
            ServiceError.invalid(
                .invalidShape, field: "/annotations/\(i)", "`annotations[\(i)]` must be an array [item, annotator, label]")
        }

        switch node {
        case .numbers(let array):
            // All-numeric triples arrive packed: shape [A][3].
            let shape = array.shape
            guard let count = shape.first, count > 0, !array.values.isEmpty || shape.count > 1 else { throw emptyError }
            guard shape.count >= 2, shape[1] == 3 else { throw tripleError(0) }
            guard shape.count == 2 else {
                throw ServiceError.invalid(
                    .invalidInput, field: "/annotations/0/0", "the item of `annotations[0]` must be an integer or a string (got an array)")
            }
            out.items.reserveCapacity(count)
            out.annotators.reserveCapacity(count)
            out.labels.reserveCapacity(count)
            let v = array.values
            for i in 0..<count {
                try add(i, .number(v[3 * i]), .number(v[3 * i + 1]), .number(v[3 * i + 2]))
            }
        case .array(let rows):
            guard !rows.isEmpty else { throw emptyError }
            for (i, row) in rows.enumerated() {
                switch row {
                case .array(let triple):
                    guard triple.count == 3 else { throw tripleError(i) }
                    try add(i, triple[0], triple[1], triple[2])
                case .numbers(let triple):
                    guard triple.shape.first == 3 else { throw tripleError(i) }
                    guard triple.shape.count == 1 else {
                        throw ServiceError.invalid(
                            .invalidInput, field: "/annotations/\(i)/0",
                            "the item of `annotations[\(i)]` must be an integer or a string (got an array)")
                    }
                    try add(i, .number(triple.values[0]), .number(triple.values[1]), .number(triple.values[2]))
                default:
                    throw tripleError(i)
                }
            }
        default:
            throw emptyError
        }
        return out
    }

    // MARK: Methods

    /// A validated method with its parameters (and, for `average`, its components).
    struct Plan {
        let method: AggregationMethodDefinition
        let parameters: ResolvedParameters
        var components: [Plan] = []
        var weights: [Double] = []

        /// Every method this plan runs (for the size checks).
        var methods: [AggregationMethodDefinition] { [method] + components.flatMap(\.methods) }

        init(method: AggregationMethodDefinition, params: JSONObject?, pointer: String) throws(ServiceError) {
            self.method = method
            // `items` is read by the endpoint; `average` also takes its methods, their weights
            // and each method's own params object.
            let combinable = AggregationCatalogue.combinable.map(\.name)
            let extra = method.combinesMethods
                ? ["items", "methods", "weights"] + combinable : (pointer == "/params" ? ["items"] : [])
            parameters = try ResolvedParameters(
                params, specs: method.parameters, pointer: pointer, extra: extra,
                owner: "aggregation method `\(method.name)`")
            guard method.combinesMethods else { return }

            var chosen = AggregationCatalogue.averageDefault
            if let node = params?["methods"], !node.isNull {
                guard case .array(let list) = node, !list.isEmpty, list.count <= 32 else {
                    throw ServiceError.invalid(
                        .invalidParam, field: "\(pointer)/methods", "`methods` must be an array of 1 to 32 method names")
                }
                chosen = []
                for (i, entry) in list.enumerated() {
                    guard case .string(let name) = entry, let m = AggregationCatalogue.all[name], !m.combinesMethods else {
                        throw ServiceError.invalid(
                            .invalidParam, field: "\(pointer)/methods/\(i)",
                            "`methods[\(i)]` must be one of \(combinable.joined(separator: ", ")) (got \(ResolvedParameters.text(entry)))")
                    }
                    chosen.append(m)
                }
            }
            for m in chosen {
                var nested: JSONObject?
                switch params?[m.name] {
                case nil, .null?: nested = nil
                case .object(let object)?: nested = object
                default:
                    throw ServiceError.invalid(.invalidParam, field: "\(pointer)/\(m.name)", "`\(m.name)` must be an object")
                }
                components.append(try Plan(method: m, params: nested, pointer: "\(pointer)/\(m.name)"))
            }
            weights = [Double](repeating: 1, count: chosen.count)
            if let node = params?["weights"], !node.isNull {
                let field = "\(pointer)/weights"
                guard case .numbers(let array) = node, array.shape == [chosen.count] else {
                    throw ServiceError.invalid(
                        .invalidParam, field: field, "`weights` must be an array of \(chosen.count) numbers, one per method")
                }
                if let bad = array.values.firstIndex(where: { !$0.isFinite || $0 < 0 }) {
                    throw ServiceError.invalid(
                        .invalidParam, field: "\(field)/\(bad)",
                        "`weights[\(bad)]` must be a finite number >= 0 (got \(NumberText.format(array.values[bad])))")
                }
                guard array.values.reduce(0, +) > 0 else {
                    throw ServiceError.invalid(.invalidParam, field: field, "`weights` must have a positive sum")
                }
                weights = array.values
            }
        }

        func run(_ data: CrowdAnnotations) -> (AggregationResult, [(AggregationMethodDefinition, AggregationResult)]) {
            switch method.kernel {
            case .single(let kernel):
                return (kernel(data, parameters), [])
            case .averageOfMethods:
                let parts = components.map { ($0.method, $0.run(data).0) }
                var result = Aggregation.average(parts.map(\.1.soft), weights: weights, data: data)
                result.iterations = 1
                result.converged = parts.allSatisfy(\.1.converged)
                return (result, parts)
            }
        }
    }

    // MARK: Response

    static func render(
        _ output: (AggregationResult, [(AggregationMethodDefinition, AggregationResult)]), plan: Plan, data: CrowdAnnotations,
        items: [ID], annotators: [ID]
    ) -> JSONValue {
        let (result, parts) = output
        var annotatorMembers: [(String, JSONValue)] = [
            ("ids", .array(annotators.map(\.json))),
            ("skill", .array((0..<annotators.count).map { w in result.skill.map { .double($0[w]) } ?? .null })),
        ]
        if let confusion = result.confusion {
            annotatorMembers.append(("confusion", .tensor(shape: confusion.shape, values: confusion.values)))
        }
        var members: [(String, JSONValue)] = [
            ("method", .string(plan.method.name)),
            ("items", .array(items.map(\.json))),
            ("soft_labels", .matrix(rows: result.soft.rows, cols: result.soft.cols, values: result.soft.values)),
            ("labels", .array(result.labels.map { .int($0) })),
            ("annotators", .object(annotatorMembers)),
            ("iterations", .int(result.iterations)),
            ("converged", .bool(result.converged)),
        ]
        if let priors = result.priors { members.append(("priors", .doubles(priors))) }
        if let beta = result.itemDifficulty { members.append(("beta", .array(beta.map { $0.map { .double($0) } ?? .null }))) }
        if !parts.isEmpty {
            members.append(("weights", .doubles(plan.weights.map { $0 / plan.weights.reduce(0, +) })))
            members.append((
                "components",
                .object(parts.map { m, r in
                    (m.name, .object([("iterations", .int(r.iterations)), ("converged", .bool(r.converged))]))
                })
            ))
        }
        return .object(members)
    }
}
