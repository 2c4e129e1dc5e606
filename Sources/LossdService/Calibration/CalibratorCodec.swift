import LossdJSON
import LossdKernels
import LossdStore

#if canImport(Glibc)
    import Glibc
#endif

/// A calibrator as the API shows it: the model plus its name, fit size and creation time.
struct CalibratorRecord: Sendable, Equatable {
    var name: String?
    var model: CalibratorModel
    /// Samples it was fitted on; nil for a calibrator PUT without `fitted_on`.
    var fittedOn: Int?
    /// RFC 3339, UTC.
    var createdAt: String

    /// `{"name"?, "method", "params", "classes", "fitted_on", "created_at"}`.
    /// The members of a calibrator document (a GET's answer, a PUT's body).
    static let fields = ["name", "method", "params", "classes", "fitted_on", "created_at"]

    var json: JSONValue {
        var members: [(String, JSONValue)] = []
        if let name { members.append(("name", .string(name))) }
        members.append(("method", .string(model.method)))
        members.append(("params", CalibratorCodec.encode(model.parameters)))
        members.append(("classes", .int(model.classes)))
        members.append(("fitted_on", fittedOn.map { .int($0) } ?? .null))
        members.append(("created_at", .string(createdAt)))
        return .object(members)
    }

    /// The document the store keeps.
    var stored: StoredDocument {
        StoredDocument(
            name: name ?? "", kind: model.method, size: model.classes, createdAt: createdAt,
            json: String(decoding: json.bytes, as: UTF8.self))
    }
}

/// `CalibratorModel` ↔ the API's calibrator JSON object. `params` values are numbers,
/// strings, 1-D arrays, 2-D arrays (matrices) and ragged rows; JSON cannot tell a
/// rectangular `rows` value from a matrix, so read them through `CalibratorValue.rowArrays`.
enum CalibratorCodec {
    // MARK: Encoding

    static func encode(_ parameters: [String: CalibratorValue]) -> JSONValue {
        .object(parameters.keys.sorted().map { ($0, encode(parameters[$0]!)) })
    }

    static func encode(_ value: CalibratorValue) -> JSONValue {
        switch value {
        case .number(let v): .double(v)
        case .vector(let v): .doubles(v)
        case .matrix(let m): .matrix(rows: m.rows, cols: m.cols, values: m.values)
        case .rows(let rows): .array(rows.map { .doubles($0) })
        case .text(let s): .string(s)
        }
    }

    // MARK: Decoding

    /// Reads `{"method", "params", "classes"}` (at `pointer`, "" for the top level).
    /// `classes` may be omitted when `defaultClasses` is given (an inline calibrator takes
    /// C from the logits it is applied to). The method must be in the catalogue; the
    /// model is not validated here (callers run the definition's `validate`).
    static func decodeModel(
        _ object: JSONObject, pointer: String, defaultClasses: Int? = nil
    ) throws(ServiceError) -> (CalibratorModel, CalibratorDefinition) {
        let definition = try definition(object["method"], field: "\(pointer)/method")
        let classes: Int
        switch object["classes"] {
        case nil, .null?:
            guard let defaultClasses else { throw ServiceError.missing("classes", pointer: "\(pointer)/classes") }
            classes = defaultClasses
        case .number(let v)? where v.isFinite && v == v.rounded() && v >= 2 && v <= 1_000_000:
            classes = Int(v)
        case let other?:
            throw ServiceError.invalid(
                .invalidParam, field: "\(pointer)/classes",
                "`classes` must be an integer ≥ 2 (got \(ResolvedParameters.text(other)))")
        }
        let parameters: [String: CalibratorValue]
        switch object["params"] {
        case nil, .null?:
            throw ServiceError.missing("params", pointer: "\(pointer)/params")
        case .object(let params)?:
            var decoded: [String: CalibratorValue] = [:]
            for (key, node) in params.members {
                decoded[key] = try decodeValue(node, field: "\(pointer)/params/\(key)")
            }
            parameters = decoded
        case .some:
            throw ServiceError.invalid(.invalidParam, field: "\(pointer)/params", "`params` must be an object")
        }
        return (CalibratorModel(method: definition.name, classes: classes, parameters: parameters), definition)
    }

    /// The catalogue entry named by a `method` member.
    static func definition(_ node: JSONNode?, field: String) throws(ServiceError) -> CalibratorDefinition {
        guard let node, !node.isNull else { throw ServiceError.missing("method", pointer: field) }
        return try CalibratorCatalogue.all.record(node) { given, suggestion in
            ServiceError.invalid(
                .invalidParam, field: field,
                "unknown calibration method `\(given)`" + suggestion + "; known: \(CalibratorCatalogue.all.names.joined(separator: ", "))")
        }
    }

    /// One `params` value: a number, a string, a 1-D array, a 2-D array or ragged rows,
    /// every number finite.
    static func decodeValue(_ node: JSONNode, field: String) throws(ServiceError) -> CalibratorValue {
        let value = try decodeShape(node, field: field)
        let numbers: [Double]
        switch value {
        case .number(let v): numbers = [v]
        case .vector(let v): numbers = v
        case .matrix(let m): numbers = m.values
        case .rows(let rows): numbers = rows.flatMap { $0 }
        case .text: numbers = []
        }
        if numbers.contains(where: { !$0.isFinite }) {
            throw ServiceError.invalid(.nonFinite, field: field, "`\(lastComponent(field))` must hold finite numbers only")
        }
        return value
    }

    private static func decodeShape(_ node: JSONNode, field: String) throws(ServiceError) -> CalibratorValue {
        switch node {
        case .number(let v):
            return .number(v)
        case .string(let s):
            return .text(s)
        case .numbers(let array):
            switch array.shape.count {
            case 1: return .vector(array.values)
            case 2: return .matrix(Matrix(rows: array.shape[0], cols: array.shape[1], values: array.values))
            default:
                throw ServiceError.invalid(
                    .invalidShape, field: field, "`\(lastComponent(field))` must be a number, a 1-D or a 2-D array (got rank \(array.shape.count))")
            }
        case .array(let items):
            if items.isEmpty { return .vector([]) }
            var rows: [[Double]] = []
            for (i, item) in items.enumerated() {
                switch item {
                case .numbers(let row) where row.shape.count == 1: rows.append(row.values)
                case .array(let inner) where inner.isEmpty: rows.append([])
                default:
                    throw ServiceError.invalid(
                        .invalidShape, field: "\(field)/\(i)",
                        "`\(lastComponent(field))[\(i)]` must be an array of numbers")
                }
            }
            return .rows(rows)
        default:
            throw ServiceError.invalid(
                .invalidParam, field: field,
                "`\(lastComponent(field))` must be a number, a string or an array of numbers (got \(node.typeName))")
        }
    }

    /// A stored calibrator's document back as a record.
    static func decodeStored(_ stored: StoredDocument) throws(ServiceError) -> CalibratorRecord {
        let object = try CalibratorResource.object(of: stored)
        let model: CalibratorModel
        do {
            model = try decodeModel(object, pointer: "").0
        } catch {
            throw ServiceError.invalid(
                .invalidInput, field: nil, "calibrator `\(stored.name)` cannot be used by this lossd: \(error.detail)")
        }
        var fittedOn: Int?
        if case .number(let v)? = object["fitted_on"] { fittedOn = Int(v) }
        return CalibratorRecord(name: stored.name, model: model, fittedOn: fittedOn, createdAt: stored.createdAt)
    }

    private static func lastComponent(_ field: String) -> Substring {
        field.split(separator: "/").last ?? Substring(field)
    }

    // MARK: Time
}

extension CalibratorValue {
    /// The value as rows whether it was stored ragged or came back as a matrix (JSON does
    /// not tell a rectangular `rows` value from a matrix); a vector is one row.
    var rowArrays: [[Double]]? {
        switch self {
        case .rows(let rows): rows
        case .matrix(let m): m.nested
        case .vector(let v): [v]
        default: nil
        }
    }

    /// The value as a 1-D array (a number is a 1-element one).
    var vectorValues: [Double]? {
        switch self {
        case .vector(let v): v
        case .number(let v): [v]
        case .matrix(let m) where m.rows == 1 || m.cols == 1: m.values
        default: nil
        }
    }

    /// A scalar value.
    var numberValue: Double? {
        if case .number(let v) = self { return v }
        return nil
    }
}
