import LossdJSON

/// One parameter a loss accepts: its type, range and default, as listed by `/v1/losses`
/// and enforced with the messages of docs/losses.md §1.4 (`invalid_param`, field `/params/NAME`).
struct ParameterSpec: Sendable {
    struct Bound: Sendable {
        let value: Double
        let inclusive: Bool
    }

    enum Kind: Sendable {
        case number(lower: Bound?, upper: Bound?)
        case integer(lower: Int?, upper: Int?)
        case choice([String])
        case boolean
        /// A histogram support `{"min": number, "max": number, "count": integer}` with
        /// max > min; `count` may be omitted and must equal the loss's column count (checked
        /// by the loss, which knows it, via `ResolvedParameters.bins(_:columns:pointer:)`).
        case bins
        /// `[lower, upper]`: two finite numbers with lower < upper (e.g. temperature's
        /// `log_beta_bounds`).
        /// `[lower, upper]`, both within `bounds` when given.
        case interval(bounds: ClosedRange<Double>?)
    }

    let name: String
    let kind: Kind
    /// The default, or nil when the parameter is required.
    let defaultValue: JSONValue?
    /// Whether `null` is a meaningful value (e.g. focal's `alpha: null` disables α).
    var nullable = false
    let summary: String

    static func number(
        _ name: String, default value: Double?, min: Double? = nil, max: Double? = nil,
        minOpen: Bool = false, maxOpen: Bool = false, nullable: Bool = false, _ summary: String
    ) -> ParameterSpec {
        ParameterSpec(
            name: name,
            kind: .number(lower: min.map { Bound(value: $0, inclusive: !minOpen) }, upper: max.map { Bound(value: $0, inclusive: !maxOpen) }),
            defaultValue: value.map { .double($0) }, nullable: nullable, summary: summary)
    }

    static func integer(_ name: String, default value: Int, min: Int? = nil, max: Int? = nil, _ summary: String) -> ParameterSpec {
        ParameterSpec(name: name, kind: .integer(lower: min, upper: max), defaultValue: .int(value), summary: summary)
    }

    static func boolean(_ name: String, default value: Bool, _ summary: String) -> ParameterSpec {
        ParameterSpec(name: name, kind: .boolean, defaultValue: .bool(value), summary: summary)
    }

    static func choice(_ name: String, _ options: [String], default value: String, _ summary: String) -> ParameterSpec {
        ParameterSpec(name: name, kind: .choice(options), defaultValue: .string(value), summary: summary)
    }

    /// A number that may be omitted (or null) without a default: `optionalNumber` is then nil.
    static func optionalNumber(
        _ name: String, min: Double? = nil, max: Double? = nil, minOpen: Bool = false, maxOpen: Bool = false, _ summary: String
    ) -> ParameterSpec {
        ParameterSpec(
            name: name,
            kind: .number(lower: min.map { Bound(value: $0, inclusive: !minOpen) }, upper: max.map { Bound(value: $0, inclusive: !maxOpen) }),
            defaultValue: .null, nullable: true, summary: summary)
    }

    /// An optional `[lower, upper]` pair with a default, both ends within `bounds` when given.
    static func interval(
        _ name: String, default value: (Double, Double), within bounds: ClosedRange<Double>? = nil, _ summary: String
    ) -> ParameterSpec {
        ParameterSpec(
            name: name, kind: .interval(bounds: bounds), defaultValue: .array([.double(value.0), .double(value.1)]),
            summary: summary)
    }

    /// A required histogram support object (hl_gauss, two_hot).
    static func bins(_ name: String, _ summary: String) -> ParameterSpec {
        ParameterSpec(name: name, kind: .bins, defaultValue: nil, summary: summary)
    }

    /// "[0, inf)"-style text of the valid range.
    var rangeText: String? {
        switch kind {
        case let .number(lower, upper):
            let lo = lower.map { ($0.inclusive ? "[" : "(") + NumberText.format($0.value) } ?? "(-inf"
            let hi = upper.map { NumberText.format($0.value) + ($0.inclusive ? "]" : ")") } ?? "inf)"
            return "\(lo), \(hi)"
        case let .integer(lower, upper):
            return "[\(lower.map(String.init) ?? "-inf"), \(upper.map(String.init) ?? "inf")]"
        default:
            return nil
        }
    }

    /// The catalogue entry: `{"default", "min", "max", ...}`.
    var catalogueEntry: JSONValue {
        var members: [(String, JSONValue)] = [("default", defaultValue ?? .null)]
        switch kind {
        case let .number(lower, upper):
            members.append(("type", "number"))
            members.append(("min", lower.map { .double($0.value) } ?? .null))
            members.append(("max", upper.map { .double($0.value) } ?? .null))
            if let lower, !lower.inclusive { members.append(("min_exclusive", true)) }
            if let upper, !upper.inclusive { members.append(("max_exclusive", true)) }
        case let .integer(lower, upper):
            members.append(("type", "integer"))
            members.append(("min", lower.map { .int($0) } ?? .null))
            members.append(("max", upper.map { .int($0) } ?? .null))
        case .choice(let options):
            members.append(("type", "string"))
            members.append(("enum", .array(options.map { .string($0) })))
        case .boolean:
            members.append(("type", "boolean"))
        case .interval(let bounds):
            members.append(("type", "array"))
            members.append((
                "items",
                .object(
                    [("type", "number")]
                        + (bounds.map { [("min", JSONValue.double($0.lowerBound)), ("max", JSONValue.double($0.upperBound))] } ?? []))
            ))
            members.append(("length", 2))
        case .bins:
            members.append(("type", "object"))
            members.append((
                "properties",
                .object([
                    ("min", .object([("type", "number")])),
                    ("max", .object([("type", "number"), ("greater_than", "min")])),
                    ("count", .object([("type", "integer"), ("equals", "C"), ("required", false)])),
                ])
            ))
        }
        if defaultValue == nil { members.append(("required", true)) }
        if nullable { members.append(("nullable", true)) }
        members.append(("description", .string(summary)))
        return .object(members)
    }
}

/// Parameters of one loss evaluation after validation; every declared parameter has a value.
struct ResolvedParameters: Sendable {
    private var numbers: [String: Double] = [:]
    private var strings: [String: String] = [:]
    private var nulls: Set<String> = []
    private var supports: [String: BinsValue] = [:]
    private var intervals: [String: (lower: Double, upper: Double)] = [:]
    /// Names the client sent explicitly.
    private(set) var given: Set<String> = []

    /// Validates `params` against `specs` in declaration order. `pointer` is the JSON pointer of
    /// the params object (`/params` or `/losses/2/params`). A name that is neither a spec nor
    /// in `extra` (members the caller reads itself) is a 422 `unknown_field`, and `null` is a
    /// 422 unless the spec is nullable; `owner` names whose params these are, for messages
    /// (e.g. "loss `focal`").
    init(
        _ params: JSONObject?, specs: [ParameterSpec], pointer: String, extra: [String] = [], owner: String? = nil
    ) throws(ServiceError) {
        numbers.reserveCapacity(specs.count)  // no rehashing as the defaults go in
        if let params {
            try StrictFields.check(
                params, allowed: specs.map(\.name) + extra,
                nullable: Set(specs.filter(\.nullable).map(\.name)), pointer: pointer,
                place: owner.map { "`params` of \($0)" } ?? "`params`")
        }
        for spec in specs {
            // Spelled out only for an error.
            func field() -> String { "\(pointer)/\(spec.name)" }
            let node = params?[spec.name]
            if node != nil { given.insert(spec.name) }
            if case .null? = node, spec.nullable {
                nulls.insert(spec.name)
                continue
            }
            guard let node, !node.isNull else {
                if case .bins = spec.kind { throw BinsValue.missing(name: spec.name, field: field()) }
                guard let value = spec.defaultValue else {
                    throw ServiceError.invalid(.invalidParam, field: field(), "`\(spec.name)` is required")
                }
                switch value {
                case .double(let d): numbers[spec.name] = d
                case .int(let i): numbers[spec.name] = Double(i)
                case .string(let s): strings[spec.name] = s
                case .bool(let b): numbers[spec.name] = b ? 1 : 0
                case .array(let items) where items.count == 2:
                    if case .double(let lower) = items[0], case .double(let upper) = items[1] {
                        intervals[spec.name] = (lower, upper)
                    }
                default: nulls.insert(spec.name)
                }
                continue
            }
            switch spec.kind {
            case let .number(lower, upper):
                guard case .number(let v) = node, v.isFinite else {
                    throw ServiceError.invalid(.invalidParam, field: field(), "`\(spec.name)` must be a finite number (got \(Self.text(node)))")
                }
                let belowLower = lower.map { $0.inclusive ? v < $0.value : v <= $0.value } ?? false
                let aboveUpper = upper.map { $0.inclusive ? v > $0.value : v >= $0.value } ?? false
                if belowLower || aboveUpper {
                    throw ServiceError.invalid(
                        .invalidParam, field: field(), "`\(spec.name)` must be in \(spec.rangeText ?? "") (got \(NumberText.format(v)))")
                }
                numbers[spec.name] = v
            case let .integer(lower, upper):
                guard case .number(let v) = node, v.isFinite, v == v.rounded(), abs(v) < 1e15 else {
                    throw ServiceError.invalid(.invalidParam, field: field(), "`\(spec.name)` must be an integer (got \(Self.text(node)))")
                }
                if let lower, Int(v) < lower { throw rangeError(spec, field(), v) }
                if let upper, Int(v) > upper { throw rangeError(spec, field(), v) }
                numbers[spec.name] = v
            case .choice(let options):
                guard case .string(let s) = node, options.contains(s) else {
                    throw ServiceError.invalid(
                        .invalidParam, field: field(),
                        "`\(spec.name)` must be one of \(options.joined(separator: ", ")) (got \(Self.text(node)))")
                }
                strings[spec.name] = s
            case .boolean:
                guard case .bool(let b) = node else {
                    throw ServiceError.invalid(.invalidParam, field: field(), "`\(spec.name)` must be true or false (got \(Self.text(node)))")
                }
                numbers[spec.name] = b ? 1 : 0
            case .bins:
                supports[spec.name] = try BinsValue(node, name: spec.name, field: field())
            case .interval(let bounds):
                let within = bounds.map { " within [\(Self.text(.number($0.lowerBound))), \(Self.text(.number($0.upperBound)))]" } ?? ""
                guard case .numbers(let pair) = node, pair.shape == [2], pair.values.allSatisfy(\.isFinite),
                    pair.values[0] < pair.values[1], bounds.map({ $0.contains(pair.values[0]) && $0.contains(pair.values[1]) }) ?? true
                else {
                    throw ServiceError.invalid(
                        .invalidParam, field: field(),
                        "`\(spec.name)` must be [lower, upper] with finite lower < upper\(within) (got \(Self.text(node)))")
                }
                intervals[spec.name] = (pair.values[0], pair.values[1])
            }
        }
    }

    private func rangeError(_ spec: ParameterSpec, _ field: String, _ v: Double) -> ServiceError {
        ServiceError.invalid(.invalidParam, field: field, "`\(spec.name)` must be in \(spec.rangeText ?? "") (got \(NumberText.format(v)))")
    }

    func number(_ name: String) -> Double { numbers[name] ?? 0 }
    func optionalNumber(_ name: String) -> Double? { nulls.contains(name) ? nil : numbers[name] }
    func integer(_ name: String) -> Int { Int(numbers[name] ?? 0) }
    func string(_ name: String) -> String { strings[name] ?? "" }
    func bool(_ name: String) -> Bool { (numbers[name] ?? 0) != 0 }
    func interval(_ name: String) -> (lower: Double, upper: Double) { intervals[name] ?? (0, 0) }

    /// A `bins` parameter's range, once its `count` (when given) is checked against the
    /// loss's `columns`; `pointer` is the params object's JSON pointer.
    func bins(_ name: String, columns: Int, pointer: String) throws(ServiceError) -> (min: Double, max: Double) {
        guard let value = supports[name] else { throw BinsValue.missing(name: name, field: "\(pointer)/\(name)") }
        if let count = value.count, !Self.isNumber(count, equalTo: Double(columns)) {
            throw ServiceError.invalid(
                .invalidParam, field: "\(pointer)/\(name)/count",
                "`\(name).count` must equal the number of logit columns \(columns) (got \(Self.text(count)))")
        }
        return (value.min, value.max)
    }

    private static func isNumber(_ node: JSONNode, equalTo expected: Double) -> Bool {
        if case .number(let v) = node { return v == expected }
        return false
    }

    /// A validated `bins` object: finite min < max, and the raw `count` node (checked later,
    /// against the column count).
    private struct BinsValue: Sendable {
        let min: Double
        let max: Double
        let count: JSONNode?

        init(_ node: JSONNode, name: String, field: String) throws(ServiceError) {
            guard case .object(let object) = node else { throw Self.missing(name: name, field: field) }
            func bound(_ key: String) throws(ServiceError) -> Double {
                guard let member = object[key], !member.isNull else {
                    throw ServiceError.invalid(.invalidParam, field: "\(field)/\(key)", "`\(name).\(key)` is required")
                }
                guard case .number(let v) = member, v.isFinite else {
                    throw ServiceError.invalid(
                        .invalidParam, field: "\(field)/\(key)",
                        "`\(name).\(key)` must be a finite number (got \(ResolvedParameters.text(member)))")
                }
                return v
            }
            min = try bound("min")
            max = try bound("max")
            guard max > min else {
                throw ServiceError.invalid(
                    .invalidParam, field: "\(field)/max",
                    "`\(name).max` must be > `\(name).min` (got \(NumberText.format(min)), \(NumberText.format(max)))")
            }
            count = object["count"].flatMap { $0.isNull ? nil : $0 }
        }

        /// Absent, null or not an object: the message shows the expected form.
        static func missing(name: String, field: String) -> ServiceError {
            ServiceError.invalid(
                .invalidParam, field: field, "`\(name)` is required: {\"min\": number, \"max\": number, \"count\": integer}")
        }
    }

    /// JSON text of a value, for messages: numbers in shortest form, strings quoted.
    static func text(_ node: JSONNode) -> String {
        switch node {
        case .null: "null"
        case .bool(let b): b ? "true" : "false"
        case .number(let v): NumberText.format(v)
        case .string(let s): String(decoding: JSONValue.string(s).bytes, as: UTF8.self)
        case .array, .numbers: "an array"
        case .object: "an object"
        }
    }
}
