import LossdHTTP
import LossdJSON
import LossdKernels

/// `POST /v1/loss` and `GET /v1/losses`.
enum LossEndpoint {
    /// The catalogue, rendered once.
    static let catalogue: [UInt8] = JSONValue.array(LossCatalogue.all.map(\.catalogueEntry)).bytes

    static func listLosses() -> HTTPResponse {
        HTTPResponse(status: .ok, headers: ["Content-Type": "application/json"], body: catalogue)
    }

    /// One entry of the request: a loss with its params and reduction, and where its fields live.
    struct Entry {
        let lossNode: JSONNode?
        let params: JSONNode?
        let reduction: JSONNode?
        let pointer: String  // "" for the top level, "/losses/i" inside `losses`
    }

    /// Members every `/v1/loss` request may have besides the inputs of its losses.
    static let commonFields = ["return_grad", "sample_weights"] + OutputEncoding.fields
    /// Members of a single-loss request, and of each `losses[]` entry.
    static let entryFields = ["loss", "params", "reduction"]

    /// Applies the strict-field rules once the losses are known: the top level may hold
    /// the common fields, the entry fields (without `losses`) or `losses`, and the inputs
    /// of the requested losses; each `losses[]` entry only the entry fields. An unknown or
    /// missing loss name is left to the evaluation, which reports it first.
    static func checkFields(_ body: JSONObject) throws(ServiceError) {
        var definitions: [LossDefinition] = []
        if case .array(let items)? = body["losses"] {
            for (i, item) in items.enumerated() {
                guard case .object(let entry) = item else { return }
                try StrictFields.check(entry, allowed: entryFields, pointer: "/losses/\(i)", place: "`losses[\(i)]`")
                guard case .string(let name)? = entry["loss"], let definition = LossCatalogue.byName[name] else { return }
                definitions.append(definition)
            }
        } else {
            guard case .string(let name)? = body["loss"], let definition = LossCatalogue.byName[name] else { return }
            definitions = [definition]
        }
        var allowed = commonFields + (body["losses"] == nil ? entryFields : ["losses"])
        for definition in definitions {
            for input in definition.inputs where !allowed.contains(input.name) { allowed.append(input.name) }
        }
        let names = definitions.map { "`\($0.name)`" }.joined(separator: ", ")
        try StrictFields.check(body, allowed: allowed, pointer: "", place: "a request for \(names)")
    }

    static func evaluate(_ route: RouteRequest, metrics: ServiceMetrics? = nil) throws(ServiceError) -> HTTPResponse {
        let body = try RequestBody.object(route)
        try checkFields(body)
        let output = try OutputEncoding(body, for: route)
        let tensors = TensorReader(object: body)
        let wantGradient: Bool
        switch body["return_grad"] {
        case nil, .null?: wantGradient = false
        case .bool(let b)?: wantGradient = b
        case let other?:
            throw ServiceError.invalid(
                .invalidParam, field: "/return_grad", "`return_grad` must be true or false (got \(ResolvedParameters.text(other)))")
        }

        // Decoded inputs, gradients and intermediates of each requested loss, and the reply;
        // contrastive losses add their similarity matrices.
        let lossCount = { if case .array(let items)? = body["losses"] { return max(1, items.count) } else { return 1 } }()
        let elements = WorkingSet.elements(in: body)
        try WorkingSet.reserve(
            WorkingSet.sum(
                WorkingSet.product(elements, WorkingSet.valueBytes, 2),
                WorkingSet.product(lossCount, elements, wantGradient ? 6 * WorkingSet.valueBytes : 2 * WorkingSet.valueBytes),
                WorkingSet.product(lossCount, elements, wantGradient ? WorkingSet.replyBytesPerValue : 0),
                WorkingSet.product(lossCount, WorkingSet.similarityEntries(body), 4 * WorkingSet.valueBytes),
                WorkingSet.skeletonBytes(body, gradient: wantGradient)),
            for: "this loss evaluation", in: route.context)

        if let list = body["losses"] {
            guard case .array(let items) = list, !items.isEmpty, items.count <= 64 else {
                throw ServiceError.invalid(.invalidShape, field: "/losses", "`losses` must be an array of 1 to 64 objects")
            }
            var results: [JSONValue] = []
            for (i, item) in items.enumerated() {
                guard case .object(let object) = item else {
                    throw ServiceError.invalid(.invalidShape, field: "/losses/\(i)", "`losses[\(i)]` must be an object")
                }
                let entry = Entry(
                    lossNode: object["loss"], params: object["params"], reduction: object["reduction"], pointer: "/losses/\(i)")
                results.append(try evaluate(entry, tensors: tensors, gradient: wantGradient, metrics: metrics))
            }
            return LossdService.json(["results": .array(results)], output: output)
        }
        let entry = Entry(lossNode: body["loss"], params: body["params"], reduction: body["reduction"], pointer: "")
        return LossdService.json(try evaluate(entry, tensors: tensors, gradient: wantGradient, metrics: metrics), output: output)
    }

    /// Evaluates one entry; the evaluation and its batch rows are counted in `metrics`.
    private static func evaluate(
        _ entry: Entry, tensors: TensorReader, gradient: Bool, metrics: ServiceMetrics?
    ) throws(ServiceError) -> JSONValue {
        // Validation order (docs/losses.md §1.4): loss name, reduction, then the loss's own checks.
        guard let lossNode = entry.lossNode else { throw ServiceError.missing("loss", pointer: "\(entry.pointer)/loss") }
        guard case .string(let name) = lossNode, let definition = LossCatalogue.byName[name] else {
            let given = ResolvedParameters.plain(lossNode)
            throw ServiceError.invalid(
                .unknownLoss, field: "\(entry.pointer)/loss",
                "unknown loss `\(given)`" + StrictFields.suggestion(for: given, among: LossCatalogue.names))
        }
        let reduction: Reduction
        switch entry.reduction {
        case nil, .null?: reduction = .mean
        case .string(let text)? where Reduction(rawValue: text) != nil: reduction = Reduction(rawValue: text)!
        case let other?:
            throw ServiceError.invalid(
                .invalidParam, field: "\(entry.pointer)/reduction",
                "`reduction` must be one of mean, sum, none (got \(ResolvedParameters.text(other)))")
        }
        let paramsPointer = "\(entry.pointer)/params"
        var paramsObject: JSONObject?
        switch entry.params {
        case nil, .null?: paramsObject = nil
        case .object(let object)?: paramsObject = object
        default: throw ServiceError.invalid(.invalidParam, field: paramsPointer, "`params` must be an object")
        }
        let parameters = try ResolvedParameters(
            paramsObject, specs: definition.parameters, pointer: paramsPointer, owner: "loss `\(definition.name)`")
        if tensors.contains("sample_weights") && !definition.acceptsSampleWeights {
            throw ServiceError.invalid(
                .invalidInput, field: "/sample_weights", "`sample_weights` is not supported by loss `\(definition.name)`")
        }
        let context = LossContext(tensors: tensors, parameters: parameters, gradient: gradient, parametersPointer: paramsPointer)
        var output = try definition.evaluate(context)

        let sampleWeights = try tensors.vector("sample_weights")
        if let sampleWeights {
            do {
                try Validate.weights(sampleWeights, name: "sample_weights", count: output.values.count)
            } catch {
                throw ServiceError(error)
            }
        }
        let reduced: ReducedLoss
        do {
            reduced = try output.reduce(reduction, sampleWeights: sampleWeights)
        } catch {
            throw ServiceError(error)
        }

        metrics?.recordLoss(definition.name, rows: output.values.count)
        var members: [(String, JSONValue)] = [
            ("loss", .string(definition.name)),
            ("reduction", .string(reduction.rawValue)),
            ("n", .int(output.values.count)),
        ]
        if let values = reduced.values {
            members.append(("values", .doubles(values)))
        } else {
            members.append(("value", .double(reduced.value ?? 0)))
        }
        if gradient {
            var grads: [(String, JSONValue)] = []
            for name in output.gradients.keys.sorted() {
                let g = output.gradients[name]!
                grads.append((name, .tensor(shape: g.shape, values: g.values)))
            }
            members.append(("grad", .object(grads)))
        }
        var extras = output.extras
        if let meanExtras = definition.meanExtras {
            for (key, value) in meanExtras(output, reduced.mean) { extras[key] = value }
        }
        if !extras.isEmpty {
            var rendered: [(String, JSONValue)] = []
            for key in extras.keys.sorted() {
                switch extras[key]! {
                case .scalar(let v): rendered.append((key, v.isFinite ? .double(v) : .null))
                case .vector(let v): rendered.append((key, .doubles(v)))
                case .matrix(let m): rendered.append((key, .matrix(rows: m.rows, cols: m.cols, values: m.values)))
                }
            }
            members.append(("extras", .object(rendered)))
        }
        return .object(members)
    }
}

extension ResolvedParameters {
    /// A value's text without quotes (for names in messages).
    static func plain(_ node: JSONNode) -> String {
        if case .string(let s) = node { return s }
        return text(node)
    }
}
