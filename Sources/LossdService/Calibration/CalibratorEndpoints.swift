import Dispatch
import LossdHTTP
import LossdJSON
import LossdKernels
import Logging
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Holds the service's calibrator store (SQLite or PostgreSQL) once start-up has opened it.
final class CalibratorStoreSlot: Sendable {
    private let store = Mutex<(any CalibratorStorage)?>(nil)

    func attach(_ store: any CalibratorStorage) { self.store.withLock { $0 = store } }

    var isAttached: Bool { store.withLock { $0 != nil } }

    /// Whether an attached store says it cannot serve now (a PostgreSQL store whose
    /// database is unreachable). Never blocks: `/readyz` runs on the I/O thread.
    var attachedStoreIsUnavailable: Bool { (store.withLock { $0 }).map { !$0.isAvailable } ?? false }

    /// Whether the attached store's writes fail for want of space (never blocks).
    var attachedStoreIsFull: Bool { (store.withLock { $0 })?.isFull ?? false }

    /// The attached store's count for `/metrics` (never blocks on a network).
    func sampledCount() -> Int? { store.withLock { $0 }?.sampledCount() }

    /// The store, or 503 while none is open.
    func current() throws(ServiceError) -> any CalibratorStorage {
        guard let store = store.withLock({ $0 }) else {
            var error = ServiceError(status: .serviceUnavailable, code: "not_ready", detail: "the calibrator store is not open")
            error.headers = [("Retry-After", "1")]
            throw error
        }
        return store
    }
}

/// `POST /v1/calibrators/fit`, `POST /v1/calibrate`, `GET /v1/calibrators`,
/// `GET|PUT|DELETE /v1/calibrators/{name}` and `POST /v1/calibrators/{name}/apply`.
enum CalibratorEndpoints {
    private static let logger = Logger(label: "lossd.calibrators")

    static func register(on router: inout Router, slot: CalibratorStoreSlot) {
        router.add("POST", "/v1/calibrators/fit") { route throws(ServiceError) in
            try fit(route, slot: slot)
        }
        router.add("POST", "/v1/calibrate") { route throws(ServiceError) in
            try calibrate(route, slot: slot)
        }
        router.add("GET", "/v1/calibrators") { _ throws(ServiceError) in
            try list(slot: slot)
        }
        router.add("GET", "/v1/calibrators/{name}") { route throws(ServiceError) in
            try show(route.parameters["name"] ?? "", route.request, slot: slot)
        }
        router.add("PUT", "/v1/calibrators/{name}") { route throws(ServiceError) in
            try put(route.parameters["name"] ?? "", route, slot: slot)
        }
        router.add("DELETE", "/v1/calibrators/{name}") { route throws(ServiceError) in
            try delete(route.parameters["name"] ?? "", route.request, slot: slot)
        }
        router.add("POST", "/v1/calibrators/{name}/apply") { route throws(ServiceError) in
            try apply(route.parameters["name"] ?? "", route, slot: slot)
        }
    }

    // MARK: Fit

    static func fit(_ route: RouteRequest, slot: CalibratorStoreSlot) throws(ServiceError) -> HTTPResponse {
        let request = route.request
        let body = try RequestBody.object(route)
        try StrictFields.check(
            body, allowed: ["method", "name", "params", "logits", "scores", "labels", "views_logits"], pointer: "",
            place: "a calibrator fit")
        // Validation order: method, name, params, inputs, then the method's own checks.
        let definition = try CalibratorCodec.definition(body["method"], field: "/method")
        var name: String?
        switch body["name"] {
        case nil, .null?: name = nil
        case .string(let text)?:
            try CalibratorCodec.checkName(text, field: "/name")
            name = text
        case let other?:
            throw ServiceError.invalid(.invalidParam, field: "/name", "`name` must be a string (got \(ResolvedParameters.text(other)))")
        }
        let store = name == nil ? nil : try slot.current()
        let paramsObject: JSONObject?
        switch body["params"] {
        case nil, .null?: paramsObject = nil
        case .object(let object)?: paramsObject = object
        default: throw ServiceError.invalid(.invalidParam, field: "/params", "`params` must be an object")
        }
        let parameters = try ResolvedParameters(
            paramsObject, specs: definition.parameters, pointer: "/params", owner: "calibrator `\(definition.method)`")
        let tensors = TensorReader(object: body)
        var input = try inputs(tensors, definition: definition)
        guard let labels = try tensors.integers("labels") else { throw ServiceError.missing("labels") }
        input.labels = labels
        try definition.checkSize(input)
        try WorkingSet.reserve(
            WorkingSet.sum(WorkingSet.typical(for: body, factor: 8), definition.fitWorkingSet(input)),
            for: "this \(definition.method) fit", in: route.context)

        let (model, report) = try definition.fit(input, parameters)
        var applyInput = input
        applyInput.labels = nil
        let after = try definition.apply(model, applyInput)
        let before = baseline(input, definition: definition)

        let record = CalibratorRecord(
            name: name, model: model, fittedOn: labels.count, createdAt: CalibratorCodec.timestamp())
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
        guard let name, let store else { return LossdService.json(answer) }
        // `If-Match` / `If-None-Match: *` make storing the fit conditional, as for a PUT.
        let preconditions = preconditions(of: request)
        let written = try perform("put") { () throws(CalibratorStoreError) in try store.put(record.stored, preconditions: preconditions) }
        let revision: Int64
        switch written {
        case .written(_, let stored): revision = stored
        case .preconditionFailed(let current): throw preconditionFailed(name, current: current)
        }
        var response = LossdService.json(answer, status: .created)
        response.headers.add(name: "Location", value: location(name))
        response.headers.add(name: "ETag", value: EntityTag.header(for: revision))
        return response
    }

    /// Uncalibrated probabilities of the fit data, for `nll_before` and `ece_before`:
    /// softmax of the logits (of view 0 for correctness_aware); for `scores`, the sigmoid of
    /// the score (platt: a logit) or the score itself (beta: a probability).
    private static func baseline(_ input: CalibrationInput, definition: CalibratorDefinition) -> Matrix? {
        if let logits = input.logits { return CalibrationMetrics.softmax(logits) }
        if let scores = input.scores {
            var values: [Double] = []
            values.reserveCapacity(scores.count * 2)
            for s in scores {
                let p = definition.method == "beta" ? min(max(s, 0), 1) : sigmoid(s)
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

    static func calibrate(_ route: RouteRequest, slot: CalibratorStoreSlot) throws(ServiceError) -> HTTPResponse {
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
            try CalibratorCodec.checkName(name, field: "/name")
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

    static func apply(_ name: String, _ route: RouteRequest, slot: CalibratorStoreSlot) throws(ServiceError) -> HTTPResponse {
        try CalibratorCodec.checkName(name, field: nil)
        let record = try load(name, slot: slot)
        let body = try RequestBody.object(route)
        try StrictFields.check(
            body, allowed: ["logits", "scores", "views_logits"] + OutputEncoding.fields, pointer: "", place: "an apply request")
        try WorkingSet.reserve(WorkingSet.typical(for: body), for: "this calibration", in: route.context)
        return try apply(record: record, body: body, route: route)
    }

    private static func apply(record: CalibratorRecord, body: JSONObject, route: RouteRequest) throws(ServiceError) -> HTTPResponse {
        guard let definition = CalibratorCatalogue.byMethod[record.model.method] else {
            throw ServiceError.invalid(.invalidInput, field: nil, "calibration method `\(record.model.method)` is not available")
        }
        let input = try inputs(TensorReader(object: body), definition: definition)
        return try respond(definition.apply(record.model, try checked(input, against: record.model)), output: try OutputEncoding(body, for: route))
    }

    /// `logits`, `scores` (binary methods only) and `views_logits`, as sent.
    private static func inputs(_ tensors: TensorReader, definition: CalibratorDefinition) throws(ServiceError) -> CalibrationInput {
        var input = CalibrationInput()
        input.logits = try tensors.matrix("logits")
        if tensors.contains("scores") {
            guard definition.acceptsScores else {
                throw ServiceError.invalid(
                    .invalidInput, field: "/scores", "`scores` is accepted only by binary methods (platt, beta), not `\(definition.method)`")
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
            throw ServiceError.missing(definition.method == "correctness_aware" ? "views_logits" : "logits")
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
    private static func checked(_ input: CalibrationInput, against model: CalibratorModel) throws(ServiceError) -> CalibrationInput {
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
        for r in 0..<probs.rows {
            var best = 0
            var bestValue = probs.values[r * probs.cols]
            for j in 1..<max(probs.cols, 1) where probs.values[r * probs.cols + j] > bestValue {
                best = j
                bestValue = probs.values[r * probs.cols + j]
            }
            predictions.append(.int(best))
        }
        return LossdService.json(
            [
                "probs": .matrix(rows: probs.rows, cols: probs.cols, values: probs.values),
                "predictions": .array(predictions),
            ], output: output)
    }

    // MARK: Stored calibrators

    static func list(slot: CalibratorStoreSlot) throws(ServiceError) -> HTTPResponse {
        let store = try slot.current()
        let summaries = try perform("list") { () throws(CalibratorStoreError) in try store.list() }
        let items: [JSONValue] = summaries.map {
            ["name": .string($0.name), "method": .string($0.method), "classes": .int($0.classes), "created_at": .string($0.createdAt)]
        }
        return LossdService.json(["calibrators": .array(items)])
    }

    static func show(_ name: String, _ request: HTTPRequest, slot: CalibratorStoreSlot) throws(ServiceError) -> HTTPResponse {
        try CalibratorCodec.checkName(name, field: nil)
        let store = try slot.current()
        guard let stored = try perform("get", { () throws(CalibratorStoreError) in try store.fetch(name) }) else {
            throw notFound(name)
        }
        let etag = EntityTag.header(for: stored.revision)
        // A client holding this revision already gets 304 without the body (RFC 9110 §13.1.2:
        // weak comparison, as `If-None-Match` always uses).
        if let condition = EntityTagCondition.parse(request.headers.values(named: "If-None-Match")),
            !WritePreconditions(ifNoneMatch: condition).allow(current: stored.revision)
        {
            return HTTPResponse(status: .notModified, headers: ["ETag": etag])
        }
        return HTTPResponse(status: .ok, headers: ["Content-Type": "application/json", "ETag": etag], body: Array(stored.calibrator.document.utf8))
    }

    /// The `If-Match` / `If-None-Match` conditions of a write request.
    private static func preconditions(of request: HTTPRequest) -> WritePreconditions {
        WritePreconditions(
            ifMatch: EntityTagCondition.parse(request.headers.values(named: "If-Match")),
            ifNoneMatch: EntityTagCondition.parse(request.headers.values(named: "If-None-Match")))
    }

    static func put(_ name: String, _ route: RouteRequest, slot: CalibratorStoreSlot) throws(ServiceError) -> HTTPResponse {
        let request = route.request
        try CalibratorCodec.checkName(name, field: nil)
        let store = try slot.current()
        let body = try RequestBody.object(route)
        // A `name` member (as in a GET's answer) is ignored: the path names the calibrator,
        // so a GET's answer can be PUT back under another name; so is `created_at`.
        try StrictFields.check(
            body, allowed: CalibratorRecord.fields, nullable: ["fitted_on"], pointer: "", place: "a calibrator")
        let (model, definition) = try CalibratorCodec.decodeModel(body, pointer: "")
        do {
            try definition.validate(model)
        } catch {
            // The body is the model itself: `/params/...`, not `/calibrator/params/...`.
            throw error.rebasingField(from: "/calibrator", onto: "")
        }
        var fittedOn: Int?
        switch body["fitted_on"] {
        case nil, .null?: fittedOn = nil
        case .number(let v)? where v.isFinite && v == v.rounded() && v >= 0 && v < 9e15: fittedOn = Int(v)
        case let other?:
            throw ServiceError.invalid(
                .invalidParam, field: "/fitted_on", "`fitted_on` must be a non-negative integer (got \(ResolvedParameters.text(other)))")
        }
        let record = CalibratorRecord(name: name, model: model, fittedOn: fittedOn, createdAt: CalibratorCodec.timestamp())
        let preconditions = preconditions(of: request)
        let result = try perform("put") { () throws(CalibratorStoreError) in try store.put(record.stored, preconditions: preconditions) }
        switch result {
        case .preconditionFailed(let current):
            throw preconditionFailed(name, current: current)
        case let .written(outcome, revision):
            var response = LossdService.json(record.json, status: outcome == .created ? .created : .ok)
            if outcome == .created { response.headers.add(name: "Location", value: location(name)) }
            response.headers.add(name: "ETag", value: EntityTag.header(for: revision))
            return response
        }
    }

    static func delete(_ name: String, _ request: HTTPRequest, slot: CalibratorStoreSlot) throws(ServiceError) -> HTTPResponse {
        try CalibratorCodec.checkName(name, field: nil)
        let store = try slot.current()
        let preconditions = preconditions(of: request)
        switch try perform("delete", { () throws(CalibratorStoreError) in try store.delete(name, preconditions: preconditions) }) {
        case .deleted: return HTTPResponse(status: .noContent)
        case .notFound: throw notFound(name)
        case .preconditionFailed(let current): throw preconditionFailed(name, current: current)
        }
    }

    /// 412: the `If-Match` / `If-None-Match` of a write did not hold for the stored
    /// revision; nothing was written.
    private static func preconditionFailed(_ name: String, current: Int64?) -> ServiceError {
        let state = current.map { "is at ETag \(EntityTag.header(for: $0))" } ?? "does not exist"
        return ServiceError(
            status: HTTPStatus(code: 412), code: "precondition_failed",
            detail: "the preconditions of the request do not hold: calibrator `\(name)` \(state)")
    }

    private static func load(_ name: String, slot: CalibratorStoreSlot) throws(ServiceError) -> CalibratorRecord {
        let store = try slot.current()
        guard let stored = try perform("get", { () throws(CalibratorStoreError) in try store.get(name) }) else {
            throw notFound(name)
        }
        return try CalibratorCodec.decodeStored(stored)
    }

    // MARK: Helpers

    /// The calibrator's path, its name percent-encoded (RFC 3986 unreserved bytes stay;
    /// valid names never need it, but the header must never carry a raw path character).
    static func location(_ name: String) -> String {
        var encoded = ""
        for byte in name.utf8 {
            let unreserved = (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
                || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "_") || byte == UInt8(ascii: "~")
                || (byte == UInt8(ascii: ".") && name != "." && name != "..")
            if unreserved {
                encoded.unicodeScalars.append(Unicode.Scalar(byte))
            } else {
                encoded += "%" + String(byte >> 4, radix: 16, uppercase: true) + String(byte & 0xF, radix: 16, uppercase: true)
            }
        }
        return "/v1/calibrators/" + encoded
    }

    private static func notFound(_ name: String) -> ServiceError {
        ServiceError.notFound("no calibrator named `\(name)`")
    }

    /// Runs a store operation; a store failure is logged in full and answered as a 503
    /// without internals (the client may retry; nothing was half-written).
    private static func perform<T>(_ operation: String, _ body: () throws(CalibratorStoreError) -> T) throws(ServiceError) -> T {
        do {
            return try body()
        } catch {
            if let note = failureLogNote() { logger.error("calibrator store \(operation) failed: \(error)\(note)") }
            if case .full = error {
                // Retrying will not help until space is freed (DELETE still works).
                throw ServiceError(
                    status: .insufficientStorage, code: "store_full",
                    detail: "the calibrator store's disk is full; delete calibrators or free space, then retry the \(operation)")
            }
            var failure = ServiceError(
                status: .serviceUnavailable, code: "store_unavailable", detail: "the calibrator store could not complete the \(operation)")
            failure.headers = [("Retry-After", "1")]
            throw failure
        }
    }

    /// Store failures are logged at most once a second: while a database is down every
    /// store request fails, and a line for each would flood the log. Nil means "skip this
    /// one"; otherwise the suffix says how many were skipped since the last line.
    private static func failureLogNote() -> String? {
        let now = DispatchTime.now().uptimeNanoseconds
        return failureLog.withLock { state -> String? in
            guard now >= state.nextLine else {
                state.skipped += 1
                return nil
            }
            defer {
                state.skipped = 0
                state.nextLine = now + 1_000_000_000
            }
            return state.skipped > 0 ? " (and \(state.skipped) more store failures in the last second, not logged)" : ""
        }
    }

    private struct FailureLogState {
        var nextLine: UInt64 = 0
        var skipped = 0
    }

    private static let failureLog = Mutex(FailureLogState())

    private static func sigmoid(_ x: Double) -> Double {
        x >= 0 ? 1 / (1 + exp(-x)) : exp(x) / (1 + exp(x))
    }
}
