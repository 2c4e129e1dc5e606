import LossdHTTP
import LossdJSON
import LossdKernels
import LossdStore

#if canImport(Glibc)
    import Glibc
#endif

/// `POST /v1/calibrators/fit`, `POST /v1/calibrators/select` (CalibratorSelection),
/// `POST /v1/calibrate`, `GET /v1/calibrators`, `GET|PUT|DELETE /v1/calibrators/{name}`,
/// `POST /v1/calibrators/{name}/apply` and `POST /v1/calibrators/{name}/reliability`
/// (CalibratorReliability).
enum CalibratorEndpoints {
    static func register(on router: inout Router, slot: StoreSlot) {
        router.add("POST", "/v1/calibrators/fit", cost: .heavy) { route throws(ServiceError) in
            try fit(route, slot: slot)
        }
        router.add("POST", "/v1/calibrators/select", cost: .heavy) { route throws(ServiceError) in
            try CalibratorSelection.select(route, slot: slot)
        }
        router.add("POST", "/v1/calibrate") { route throws(ServiceError) in
            try calibrate(route, slot: slot)
        }
        StoredRoutes<CalibratorResource>.register(on: &router, slot: slot)
        router.add("POST", "/v1/calibrators/{name}/apply") { route throws(ServiceError) in
            try apply(route.parameters["name"] ?? "", route, slot: slot)
        }
        router.add("POST", "/v1/calibrators/{name}/reliability") { route throws(ServiceError) in
            try CalibratorReliability.respond(route.parameters["name"] ?? "", route, slot: slot)
        }
    }

    // MARK: Fit

    /// The members a fit request may have: its own and every method's inputs (gathered once).
    static let fitFields = ["method", "name", "params"] + CalibratorCatalogue.all.inputNames

    static func fit(_ route: RouteRequest, slot: StoreSlot) throws(ServiceError) -> HTTPResponse {
        let request = route.request
        let body = try RequestBody.object(route)
        try StrictFields.check(body, allowed: fitFields, pointer: "", place: "a calibrator fit")
        // Validation order: method, name, params, inputs, then the method's own checks.
        let definition = try CalibratorCodec.definition(body["method"], field: "/method")
        let name = try CalibratorResource.optionalName(in: body)
        let store = name == nil ? nil : try slot.current()
        let paramsObject = try RequestMembers.params(body)
        let parameters = try ResolvedParameters(
            paramsObject, specs: definition.parameters, pointer: "/params", owner: "calibrator `\(definition.name)`")
        let tensors = TensorReader(object: body)
        var input = try inputs(tensors, definition: definition)
        guard let labels = try tensors.integers("labels") else { throw ServiceError.missing("labels") }
        input.labels = labels
        try definition.checkSize(input)
        try WorkingSet.reserve(
            WorkingSet.sum(WorkingSet.typical(for: body, factor: 8), definition.fitWorkingSet(input)),
            for: "this \(definition.name) fit", in: route.context)

        let (model, report) = try definition.fit(input, parameters)
        var applyInput = input
        applyInput.labels = nil
        let after = try definition.apply(model, applyInput)
        let before = baseline(input, definition: definition)

        let record = CalibratorRecord(
            name: name, model: model, fittedOn: labels.count, createdAt: CalibratorResource.timestamp())
        var fitMembers: [(String, JSONValue)] = [
            ("iterations", .int(report.iterations)),
            ("converged", .bool(report.converged)),
        ]
        let metrics: [(String, Double)] = [
            // From logits, the NLL is log-softmax's, unclipped: clipping probabilities at ε
            // caps a sample's loss at 36 nats, far below the truth for confident logits.
            ("nll_before", input.logits.map { CalibrationMetrics.nll(logits: $0, labels: labels) }
                ?? before.map { CalibrationMetrics.nll(probabilities: $0, labels: labels) } ?? .nan),
            ("nll_after", CalibrationMetrics.nll(probabilities: after, labels: labels)),
            ("ece_before", before.map { CalibrationMetrics.ece(probabilities: $0, labels: labels) } ?? .nan),
            ("ece_after", CalibrationMetrics.ece(probabilities: after, labels: labels)),
        ]
        for (key, value) in metrics { fitMembers.append((key, value.isFinite ? .double(value) : .null)) }
        for key in report.notes.keys.sorted() where !fitMembers.contains(where: { $0.0 == key }) {
            fitMembers.append((key, CalibratorCodec.encode(report.notes[key]!)))
        }
        let answer: JSONValue = ["calibrator": record.json, "fit": .object(fitMembers)]
        guard name != nil, let store else { return LossdService.json(answer) }
        return try StoredRoutes<CalibratorResource>.storeFitted(
            record.stored, answer: LossdService.json(answer), request: request, store: store)
    }

    /// Uncalibrated probabilities of the fit data, for `nll_before` and `ece_before`:
    /// softmax of the logits (of view 0 for correctness_aware); for `scores`, the sigmoid of
    /// the score (platt: a logit) or the score itself (beta: a probability).
    static func baseline(_ input: CalibrationInput, definition: CalibratorDefinition) -> Matrix? {
        if let logits = input.logits { return CalibrationMetrics.softmax(logits) }
        if let scores = input.scores {
            var values: [Double] = []
            values.reserveCapacity(scores.count * 2)
            for s in scores {
                let p = definition.name == "beta" ? min(max(s, 0), 1) : sigmoid(s)
                values.append(1 - p)
                values.append(p)
            }
            return Matrix(rows: scores.count, cols: 2, values: values)
        }
        if let views = input.views, views.shape.count == 3, views.shape[0] >= 1 {
            let n = views.shape[1], c = views.shape[2]
            return CalibrationMetrics.softmax(Matrix(rows: n, cols: c, values: Array(views.values[0..<(n * c)])))
        }
        return nil
    }

    // MARK: Apply

    static func calibrate(_ route: RouteRequest, slot: StoreSlot) throws(ServiceError) -> HTTPResponse {
        let body = try RequestBody.object(route)
        try StrictFields.check(
            body, allowed: ["calibrator", "name", "logits", "scores", "views_logits"] + OutputEncoding.fields, pointer: "",
            place: "a calibrate request")
        try WorkingSet.reserve(WorkingSet.typical(for: body), for: "this calibration", in: route.context)
        let hasInline = body["calibrator"].map { !$0.isNull } ?? false
        let hasName = body["name"].map { !$0.isNull } ?? false
        if hasInline && hasName {
            throw ServiceError.invalid(.invalidInput, field: "/name", "send either `calibrator` or `name`, not both")
        }
        if hasName {
            guard case .string(let name)? = body["name"] else {
                throw ServiceError.invalid(.invalidParam, field: "/name", "`name` must be a string")
            }
            try CalibratorResource.checkName(name, field: "/name")
            return try apply(record: try load(name, slot: slot), body: body, route: route)
        }
        guard let node = body["calibrator"], hasInline else { throw ServiceError.missing("calibrator") }
        guard case .object(let object) = node else {
            throw ServiceError.invalid(.invalidParam, field: "/calibrator", "`calibrator` must be an object")
        }
        try StrictFields.check(
            object, allowed: CalibratorRecord.fields, nullable: ["fitted_on"], pointer: "/calibrator", place: "`calibrator`")
        let definition = try CalibratorCodec.definition(object["method"], field: "/calibrator/method")
        let tensors = TensorReader(object: body)
        let input = try inputs(tensors, definition: definition)
        let (model, _) = try CalibratorCodec.decodeModel(object, pointer: "/calibrator", defaultClasses: classes(of: input))
        try definition.validate(model)
        return try respond(definition.apply(model, try checked(input, against: model)), output: try OutputEncoding(body, for: route))
    }

    static func apply(_ name: String, _ route: RouteRequest, slot: StoreSlot) throws(ServiceError) -> HTTPResponse {
        try CalibratorResource.checkName(name, field: nil)
        let record = try load(name, slot: slot)
        let body = try RequestBody.object(route)
        try StrictFields.check(
            body, allowed: ["logits", "scores", "views_logits"] + OutputEncoding.fields, pointer: "", place: "an apply request")
        try WorkingSet.reserve(WorkingSet.typical(for: body), for: "this calibration", in: route.context)
        return try apply(record: record, body: body, route: route)
    }

    private static func apply(record: CalibratorRecord, body: JSONObject, route: RouteRequest) throws(ServiceError) -> HTTPResponse {
        guard let definition = CalibratorCatalogue.all[record.model.method] else {
            throw ServiceError.invalid(.invalidInput, field: nil, "calibration method `\(record.model.method)` is not available")
        }
        let input = try inputs(TensorReader(object: body), definition: definition)
        return try respond(definition.apply(record.model, try checked(input, against: record.model)), output: try OutputEncoding(body, for: route))
    }

    /// `logits`, `scores` (binary methods only) and `views_logits`, as sent.
    static func inputs(_ tensors: TensorReader, definition: CalibratorDefinition) throws(ServiceError) -> CalibrationInput {
        var input = CalibrationInput()
        input.logits = try tensors.matrix("logits")
        if tensors.contains("scores") {
            guard definition.acceptsScores else {
                throw ServiceError.invalid(
                    .invalidInput, field: "/scores", "`scores` is accepted only by binary methods (platt, beta), not `\(definition.name)`")
            }
            if input.logits != nil {
                throw ServiceError.invalid(.invalidInput, field: "/scores", "send either `logits` or `scores`, not both")
            }
            input.scores = try tensors.vector("scores")
        }
        if let views = try tensors.tensor("views_logits", rank: 3) {
            input.views = Tensor(shape: views.shape, values: views.values)
        }
        if input.logits == nil && input.scores == nil && input.views == nil {
            throw ServiceError.missing(definition.name == "correctness_aware" ? "views_logits" : "logits")
        }
        return input
    }

    /// C of the input (2 for scores).
    private static func classes(of input: CalibrationInput) -> Int? {
        if let logits = input.logits { return logits.cols }
        if input.scores != nil { return 2 }
        if let views = input.views, views.shape.count == 3 { return views.shape[2] }
        return nil
    }

    /// Applying with another C than the calibrator was fitted for is a 422.
    static func checked(_ input: CalibrationInput, against model: CalibratorModel) throws(ServiceError) -> CalibrationInput {
        let (field, c): (String, Int?) =
            if let logits = input.logits { ("/logits", logits.cols) }
            else if input.scores != nil { ("/scores", 2) }
            else { ("/views_logits", input.views.flatMap { $0.shape.count == 3 ? $0.shape[2] : nil }) }
        if let c, c != model.classes {
            throw ServiceError.invalid(
                .invalidShape, field: field,
                "\(field.dropFirst()) has \(c) classes but the calibrator was fitted for \(model.classes)")
        }
        return input
    }

    private static func respond(_ probs: Matrix, output: OutputEncoding) throws(ServiceError) -> HTTPResponse {
        // A calibrator's parameters can overflow on these logits (a matrix with entries near
        // 1e308): say so rather than answer nulls.
        guard probs.values.allFinite else {
            throw ServiceError.invalid(
                .valueOverflow, field: nil,
                "the calibrated probabilities are not representable in float64: the calibrator's parameters overflow on these logits")
        }
        var predictions: [JSONValue] = []
        predictions.reserveCapacity(probs.rows)
        probs.values.withUnsafeBufferPointer { v in
            for r in 0..<probs.rows {
                let row = UnsafeBufferPointer(rebasing: v[(r * probs.cols)..<((r + 1) * probs.cols)])
                predictions.append(.int(SoftmaxRows.argmax(row)))
            }
        }
        return LossdService.json(
            [
                "probs": .matrix(rows: probs.rows, cols: probs.cols, values: probs.values),
                "predictions": .array(predictions),
            ], output: output)
    }

    static func load(_ name: String, slot: StoreSlot) throws(ServiceError) -> CalibratorRecord {
        try CalibratorCodec.decodeStored(try StoredRoutes<CalibratorResource>.load(name, slot: slot))
    }

    private static func sigmoid(_ x: Double) -> Double {
        x >= 0 ? 1 / (1 + exp(-x)) : exp(x) / (1 + exp(x))
    }
}
