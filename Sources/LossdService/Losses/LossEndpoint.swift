import LossdHTTP
import LossdJSON
import LossdKernels

/// `POST /v1/loss` and `GET /v1/losses`.
enum LossEndpoint {
    /// The catalogue, rendered once.
    static let catalogue: [UInt8] = LossCatalogue.all.listing(\.catalogueEntry).bytes

    static func listLosses() -> HTTPResponse {
        HTTPResponse(status: .ok, headers: ["Content-Type": "application/json"], body: catalogue)
    }

    /// One entry of the request: a loss with its params and reduction, and where its fields
    /// live; inside `losses`, also its `weight` and `columns` (docs/losses.md, "Composite
    /// requests").
    struct Entry {
        let lossNode: JSONNode?
        let params: JSONNode?
        let reduction: JSONNode?
        var weight: JSONNode? = nil
        var columns: JSONNode? = nil
        let pointer: String  // "" for the top level, "/losses/i" inside `losses`
    }

    /// Members every `/v1/loss` request may have besides the inputs of its losses
    /// (`groups` is read only by a `group_mean` reduction).
    static let commonFields = ["return_grad", "sample_weights", "groups"] + OutputEncoding.fields
    /// Members of a single-loss request.
    static let entryFields = ["loss", "params", "reduction"]
    /// Members of each `losses[]` entry.
    static let listEntryFields = entryFields + ["weight", "columns"]

    /// Applies the strict-field rules once the losses are known: the top level may hold
    /// the common fields, the entry fields (without `losses`) or `losses`, and the inputs
    /// of the requested losses; each `losses[]` entry only the entry fields. An unknown or
    /// missing loss name is left to the evaluation, which reports it first.
    static func checkFields(_ body: JSONObject) throws(ServiceError) {
        var definitions: [LossDefinition] = []
        if case .array(let items)? = body["losses"] {
            for (i, item) in items.enumerated() {
                guard case .object(let entry) = item else { return }
                try StrictFields.check(entry, allowed: listEntryFields, pointer: "/losses/\(i)", place: "`losses[\(i)]`")
                guard case .string(let name)? = entry["loss"], let definition = LossCatalogue.all[name] else { return }
                definitions.append(definition)
            }
        } else {
            guard case .string(let name)? = body["loss"], let definition = LossCatalogue.all[name] else { return }
            definitions = [definition]
        }
        var allowed = commonFields + (body["losses"] == nil ? entryFields : ["losses"])
        for definition in definitions {
            for input in definition.inputNames where !allowed.contains(input) { allowed.append(input) }
        }
        try StrictFields.check(
            body, allowed: allowed, pointer: "",
            place: "a request for \(definitions.map { "`\($0.name)`" }.joined(separator: ", "))")
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

        // `groups` is checked whenever it is sent, and read by group_mean reductions.
        let groups = try tensors.integers("groups")
        if let list = body["losses"] {
            guard case .array(let items) = list, !items.isEmpty, items.count <= 64 else {
                throw ServiceError.invalid(.invalidShape, field: "/losses", "`losses` must be an array of 1 to 64 objects")
            }
            var results: [JSONValue] = []
            var total = CompositeTotal()
            for (i, item) in items.enumerated() {
                guard case .object(let object) = item else {
                    throw ServiceError.invalid(.invalidShape, field: "/losses/\(i)", "`losses[\(i)]` must be an object")
                }
                let entry = Entry(
                    lossNode: object["loss"], params: object["params"], reduction: object["reduction"], weight: object["weight"],
                    columns: object["columns"], pointer: "/losses/\(i)")
                let evaluated = try evaluate(entry, tensors: tensors, groups: groups, gradient: wantGradient, metrics: metrics)
                results.append(evaluated.answer)
                total.add(evaluated)
            }
            var members: [(String, JSONValue)] = [("results", .array(results))]
            if let rendered = try total.rendered(gradient: wantGradient) { members.append(("total", rendered)) }
            return LossdService.json(.object(members), output: output)
        }
        let entry = Entry(lossNode: body["loss"], params: body["params"], reduction: body["reduction"], pointer: "")
        let evaluated = try evaluate(entry, tensors: tensors, groups: groups, gradient: wantGradient, metrics: metrics)
        return LossdService.json(evaluated.answer, output: output)
    }

    /// Evaluates one entry; the evaluation and its batch rows are counted in `metrics`.
    private static func evaluate(
        _ entry: Entry, tensors: TensorReader, groups: [Int]?, gradient: Bool, metrics: ServiceMetrics?
    ) throws(ServiceError) -> EvaluatedEntry {
        // Validation order (docs/losses.md §1.4): loss name, reduction (and `groups` for
        // group_mean), params, an entry's weight and columns, then the loss's own checks.
        guard let lossNode = entry.lossNode else { throw ServiceError.missing("loss", pointer: "\(entry.pointer)/loss") }
        let definition = try LossCatalogue.all.record(lossNode) { given, suggestion in
            ServiceError.invalid(.unknownLoss, field: "\(entry.pointer)/loss", "unknown loss `\(given)`" + suggestion)
        }
        let reduction = try EntryReduction(entry.reduction, pointer: "\(entry.pointer)/reduction", definition: definition)
        if reduction == .byGroup && groups == nil { throw ServiceError.missing("groups") }
        let paramsPointer = "\(entry.pointer)/params"
        var paramsObject: JSONObject?
        switch entry.params {
        case nil, .null?: paramsObject = nil
        case .object(let object)?: paramsObject = object
        default: throw ServiceError.invalid(.invalidParam, field: paramsPointer, "`params` must be an object")
        }
        let parameters = try ResolvedParameters(
            paramsObject, specs: definition.parameters, pointer: paramsPointer, owner: "loss `\(definition.name)`")
        let weight = try CompositeTotal.weight(entry.weight, pointer: "\(entry.pointer)/weight")
        let slice = try ColumnSlice(entry.columns, pointer: "\(entry.pointer)/columns", tensors: tensors)
        if tensors.contains(InputSpec.sampleWeightsName) && !definition.acceptsSampleWeights {
            throw ServiceError.invalid(
                .invalidInput, field: "/sample_weights", "`sample_weights` is not supported by loss `\(definition.name)`")
        }
        let entryTensors = try slice?.apply(to: tensors) ?? tensors
        let context = LossContext(tensors: entryTensors, parameters: parameters, gradient: gradient, parametersPointer: paramsPointer)
        var output = try definition.evaluate(context)

        let sampleWeights = try tensors.vector("sample_weights")
        if let sampleWeights {
            do {
                try Validate.weights(sampleWeights, name: "sample_weights", count: output.values.count)
            } catch {
                throw ServiceError(error)
            }
        }
        // The reduced value, the per-row values (`none`), the mean for mean-based extras
        // and, for group_mean, each group's mean.
        let value: Double?, values: [Double]?, mean: Double
        var groupValues: [Double]?
        do {
            switch reduction {
            case .standard(let standard):
                let reduced = try output.reduce(standard, sampleWeights: sampleWeights)
                (value, values, mean) = (reduced.value, reduced.values, reduced.mean)
            case .byGroup:
                guard let groups, groups.count == output.values.count else {
                    throw ServiceError.invalid(
                        .invalidShape, field: "/groups",
                        "`groups` has \(groups?.count ?? 0) ids but loss `\(definition.name)` has \(output.values.count) rows")
                }
                guard output.rowSeparable else { throw EntryReduction.notSeparable(definition, pointer: "\(entry.pointer)/reduction") }
                let reduced = try output.reduceByGroup(groups, sampleWeights: sampleWeights)
                (value, values, mean, groupValues) = (reduced.value, nil, reduced.value, reduced.groupValues)
            }
        } catch let error as LossInputError {
            throw ServiceError(error)
        } catch let error as ServiceError {
            throw error
        } catch {
            throw ServiceError(status: .internalServerError, code: "internal", detail: "\(error)")
        }
        if let slice { slice.placeBack(&output.gradients) }

        metrics?.recordLoss(definition.name, rows: output.values.count)
        var members: [(String, JSONValue)] = [
            ("loss", .string(definition.name)),
            ("reduction", .string(reduction.name)),
            ("n", .int(output.values.count)),
        ]
        if let values {
            members.append(("values", .doubles(values)))
        } else {
            members.append(("value", .double(value ?? 0)))
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
            for (key, value) in meanExtras(output, mean) { extras[key] = value }
        }
        if let groupValues { extras["group_values"] = .vector(groupValues) }
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
        return EvaluatedEntry(answer: .object(members), value: value, weight: weight, gradients: output.gradients)
    }
}

extension ResolvedParameters {
    /// A value's text without quotes (for names in messages).
    static func plain(_ node: JSONNode) -> String {
        if case .string(let s) = node { return s }
        return text(node)
    }
}
