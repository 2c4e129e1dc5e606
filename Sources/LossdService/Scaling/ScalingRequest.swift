import LossdJSON
import LossdKernels

/// Reading the members of scaling-law requests (docs/scaling.md): the law, its options in
/// `params`, the data points or curves, and the points to predict at. Every unknown member
/// is a 422 `unknown_field`, every error names its JSON pointer.
enum ScalingRequest {
    /// The options each law takes in `params` (beside its fitted parameters in predict).
    static func optionNames(_ kind: ScalingLawKind) -> [String] {
        switch kind {
        case .powerLaw: ["irreducible"]
        case .chinchilla: []
        case .nmt: ["n_encoder_ref", "n_decoder_ref"]
        case .lrAnnealing: ["decay", "warmup_steps"]
        }
    }

    /// The members of one data point (or curve) of each law.
    static func pointFields(_ kind: ScalingLawKind) -> [String] {
        switch kind {
        case .powerLaw: ["x", "loss"]
        case .chinchilla: ["n", "d", "loss"]
        case .nmt: ["n_encoder", "n_decoder", "loss"]
        case .lrAnnealing: ["lr", "loss", "steps"]
        }
    }

    static func law(_ body: JSONObject) throws(ServiceError) -> ScalingLawKind {
        guard let node = body["law"] else { throw ServiceError.missing("law") }
        guard case .string(let name) = node, let kind = ScalingLawKind(rawValue: name) else {
            let given = ResolvedParameters.plain(node)
            throw ServiceError.invalid(
                .invalidParam, field: "/law",
                "unknown law `\(given)`; one of \(ScalingLawKind.allCases.map(\.rawValue).joined(separator: ", "))"
                    + StrictFields.suggestion(for: given, among: ScalingLawKind.allCases.map(\.rawValue)))
        }
        return kind
    }

    /// `params` as an object (absent: empty), its members checked against `allowed`.
    static func params(_ body: JSONObject, allowed: [String], place: String) throws(ServiceError) -> JSONObject {
        switch body["params"] {
        case nil: return JSONObject()
        case .object(let object)?:
            try StrictFields.check(object, allowed: allowed, pointer: "/params", place: place)
            return object
        default: throw ServiceError.invalid(.invalidParam, field: "/params", "`params` must be an object")
        }
    }

    /// The options of `kind` read from `params` (huber_delta only when fitting).
    static func options(_ params: JSONObject, kind: ScalingLawKind, fitting: Bool) throws(ServiceError) -> ScalingOptions {
        var options = ScalingOptions.defaults
        if let node = params["irreducible"] {
            guard case .bool(let b) = node else { throw invalidParam("irreducible", "true or false", node) }
            options.irreducible = b
        }
        options.nEncoderRef = try number(params, "n_encoder_ref")
        options.nDecoderRef = try number(params, "n_decoder_ref")
        if let decay = try number(params, "decay") { options.decay = decay }
        if let node = params["warmup_steps"] {
            guard case .number(let w) = node, w >= 0, w <= Double(ScalingLimits.maxCurveSteps), w == w.rounded() else {
                throw invalidParam("warmup_steps", "an integer in [0, \(ScalingLimits.maxCurveSteps)]", node)
            }
            options.warmupSteps = Int(w)
        }
        if fitting, let delta = try number(params, "huber_delta") { options.huberDelta = delta }
        return options
    }

    /// The options a law resolved to, as the answer echoes them.
    static func echo(_ law: ScalingLaw, huberDelta: Double?) -> [(String, JSONValue)] {
        var members: [(String, JSONValue)]
        switch law {
        case .powerLaw(let irreducible): members = [("irreducible", .bool(irreducible))]
        case .chinchilla: members = []
        case .nmt(let e, let d): members = [("n_encoder_ref", .double(e)), ("n_decoder_ref", .double(d))]
        case .lrAnnealing(let decay, let warmup): members = [("decay", .double(decay)), ("warmup_steps", .int(warmup))]
        }
        if let huberDelta { members.append(("huber_delta", .double(huberDelta))) }
        return members
    }

    // MARK: Data

    /// `data`: points `{x, loss}`, `{n, d, loss}`, `{n_encoder, n_decoder, loss}`, or
    /// curves `{lr, loss, steps?}`.
    static func data(_ body: JSONObject, kind: ScalingLawKind) throws(ServiceError) -> ScalingData {
        guard let node = body["data"] else { throw ServiceError.missing("data") }
        let items: [JSONNode]
        switch node {
        case .array(let list): items = list
        case .numbers(let array) where array.values.isEmpty: items = []
        default: items = [node]
        }
        let shape = kind == .lrAnnealing ? "curves `{\"lr\", \"loss\", \"steps\"?}`" : "points `{\(pointFields(kind).map { "\"\($0)\"" }.joined(separator: ", "))}`"
        guard case .array = node, !items.isEmpty else {
            throw ServiceError.invalid(.invalidShape, field: "/data", "`data` must be a non-empty array of \(shape)")
        }
        guard items.count <= ScalingLimits.maxPoints else {
            throw ServiceError(
                status: .contentTooLarge, code: "content_too_large",
                detail: "`data` has \(items.count) entries; the limit is \(ScalingLimits.maxPoints)", field: "/data")
        }
        let fields = pointFields(kind)
        var columns = [[Double]](repeating: [], count: fields.count - (kind == .lrAnnealing ? 1 : 0))
        var curves: [LossCurve] = []
        for (i, item) in items.enumerated() {
            let pointer = "/data/\(i)"
            guard case .object(let object) = item else {
                throw ServiceError.invalid(.invalidShape, field: pointer, "`data[\(i)]` must be an object: one of the \(shape)")
            }
            try StrictFields.check(object, allowed: fields, pointer: pointer, place: "`data[\(i)]`")
            if kind == .lrAnnealing {
                let lr = try vector(object, "lr", pointer: pointer, required: true) ?? []
                let loss = try vector(object, "loss", pointer: pointer, required: true) ?? []
                let steps = try integers(object, "steps", pointer: pointer)
                curves.append(LossCurve(lr: lr, loss: loss, steps: steps))
                continue
            }
            for (c, name) in fields.enumerated() {
                guard let value = object[name] else { throw ServiceError.missing(name, pointer: "\(pointer)/\(name)") }
                guard case .number(let v) = value else {
                    throw ServiceError.invalid(.invalidInput, field: "\(pointer)/\(name)", "`\(name)` must be a number (got \(value.typeName))")
                }
                columns[c].append(v)
            }
        }
        switch kind {
        case .powerLaw: return .powerLaw(x: columns[0], loss: columns[1])
        case .chinchilla: return .chinchilla(n: columns[0], d: columns[1], loss: columns[2])
        case .nmt: return .nmt(nEncoder: columns[0], nDecoder: columns[1], loss: columns[2])
        case .lrAnnealing: return .lrAnnealing(curves)
        }
    }

    // MARK: Values

    static func number(_ object: JSONObject, _ name: String, pointer: String = "/params") throws(ServiceError) -> Double? {
        guard let node = object[name] else { return nil }
        guard case .number(let v) = node else {
            throw ServiceError.invalid(.invalidParam, field: "\(pointer)/\(name)", "`\(name)` must be a number (got \(node.typeName))")
        }
        return v
    }

    /// A 1-D array of numbers (`[]` included), or nil when absent and not required.
    static func vector(_ object: JSONObject, _ name: String, pointer: String, required: Bool = false) throws(ServiceError) -> [Double]? {
        guard let node = object[name] else {
            if required { throw ServiceError.missing(name, pointer: "\(pointer)/\(name)") }
            return nil
        }
        switch node {
        case .numbers(let array) where array.shape.count == 1: return array.values
        case .array(let items) where items.isEmpty: return []
        default:
            throw ServiceError.invalid(.invalidShape, field: "\(pointer)/\(name)", "`\(name)` must be a 1-D array of numbers (got \(node.typeName))")
        }
    }

    /// A 1-D array of integers, or nil when absent.
    static func integers(_ object: JSONObject, _ name: String, pointer: String) throws(ServiceError) -> [Int]? {
        guard let values = try vector(object, name, pointer: pointer) else { return nil }
        var result: [Int] = []
        result.reserveCapacity(values.count)
        for (i, v) in values.enumerated() {
            guard v == v.rounded(), abs(v) <= 9_007_199_254_740_991 else {
                throw ServiceError.invalid(.invalidInput, field: "\(pointer)/\(name)/\(i)", "`\(name)[\(i)]` must be an integer")
            }
            result.append(Int(v))
        }
        return result
    }

    static func invalidParam(_ name: String, _ expected: String, _ node: JSONNode) -> ServiceError {
        ServiceError.invalid(
            .invalidParam, field: "/params/\(name)", "`\(name)` must be \(expected) (got \(ResolvedParameters.text(node)))")
    }
}

extension ServiceError {
    /// A kernel's scaling error: 413 for a size limit, else 422, with its field under
    /// `prefix` (a query's fields are relative to where the query sits).
    init(_ error: ScalingInputError, prefix: String = "") {
        let field = error.field.map { prefix + $0 }
        if error.code == .contentTooLarge {
            self.init(status: .contentTooLarge, code: error.code.rawValue, detail: error.detail, field: field)
        } else {
            self.init(status: .unprocessableContent, code: error.code.rawValue, detail: error.detail, field: field)
        }
    }
}
