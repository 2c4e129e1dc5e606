import LossdJSON
import LossdKernels

/// A tensor read from a request: row-major float64 values and the shape.
struct DecodedTensor {
    var shape: [Int]
    var values: [Double]

    var matrix: Matrix { Matrix(rows: shape[0], cols: shape.count > 1 ? shape[1] : 1, values: values) }
}

/// Limits on what one tensor may hold.
struct TensorLimits {
    /// Elements in one tensor (413 beyond).
    var maxElements = 64 << 20
}

/// Reads tensor fields in the three encodings of the API (nested arrays; `{shape, data}`;
/// `{shape, dtype, base64}`), checking rank, rectangularity, sizes and finiteness, with the
/// spec's messages and a JSON pointer to the offending field or element.
struct TensorReader {
    let object: JSONObject
    var limits = TensorLimits()

    func contains(_ name: String) -> Bool {
        if let node = object[name], case .null = node { return false }
        return object[name] != nil
    }

    /// A required or optional float tensor of the given rank.
    func tensor(_ name: String, rank: Int) throws(ServiceError) -> DecodedTensor? {
        guard let node = object[name] else { return nil }
        if case .null = node { return nil }
        let shapeError = ServiceError.invalid(
            .invalidShape, field: "/\(name)",
            "`\(name)` must be a rectangular \(rank)-D array of numbers with every dimension >= 1")
        var decoded: DecodedTensor
        switch node {
        case .numbers(let array):
            decoded = DecodedTensor(shape: array.shape, values: array.values)
        case .object(let encoded):
            decoded = try decodeEncoded(encoded, name: name, shapeError: shapeError)
        default:
            throw shapeError
        }
        guard decoded.shape.count == rank, decoded.shape.allSatisfy({ $0 >= 1 }) else { throw shapeError }
        guard decoded.values.count <= limits.maxElements else {
            throw ServiceError(
                status: .contentTooLarge, code: "content_too_large",
                detail: "`\(name)` has \(decoded.values.count) elements; the limit is \(limits.maxElements)",
                field: "/\(name)")
        }
        if let bad = decoded.values.firstIndex(where: { !$0.isFinite }) {
            let index = Self.multiIndex(bad, shape: decoded.shape)
            throw ServiceError.invalid(
                .nonFinite, field: "/\(name)" + index.map { "/\($0)" }.joined(),
                "`\(name)\(index.map { "[\($0)]" }.joined())` is not a finite number")
        }
        return decoded
    }

    func requiredTensor(_ name: String, rank: Int) throws(ServiceError) -> DecodedTensor {
        guard let tensor = try tensor(name, rank: rank) else { throw ServiceError.missing(name) }
        return tensor
    }

    func matrix(_ name: String) throws(ServiceError) -> Matrix? { try tensor(name, rank: 2)?.matrix }

    func requiredMatrix(_ name: String) throws(ServiceError) -> Matrix { try requiredTensor(name, rank: 2).matrix }

    func vector(_ name: String) throws(ServiceError) -> [Double]? { try tensor(name, rank: 1)?.values }

    /// A 1-D array of integers (`2` and `2.0` are integers; `2.5` is not).
    func integers(_ name: String) throws(ServiceError) -> [Int]? {
        guard let node = object[name] else { return nil }
        if case .null = node { return nil }
        let shapeError = ServiceError.invalid(.invalidShape, field: "/\(name)", "`\(name)` must be a 1-D array of integers")
        let values: [Double]
        switch node {
        case .numbers(let array):
            guard array.shape.count == 1, array.shape[0] >= 1 else { throw shapeError }
            values = array.values
        case .object(let encoded):
            guard encoded["base64"] == nil else { throw shapeError }
            let decoded = try decodeEncoded(encoded, name: name, shapeError: shapeError)
            guard decoded.shape.count == 1, decoded.shape[0] >= 1 else { throw shapeError }
            values = decoded.values
        case .array(let items):
            // A general array: report the first element that is not a number.
            for (i, item) in items.enumerated() {
                guard case .number = item else {
                    throw ServiceError.invalid(
                        .invalidLabel, field: "/\(name)/\(i)", "`\(name)[\(i)]` must be an integer (got \(item.typeName))")
                }
            }
            throw shapeError
        default:
            throw shapeError
        }
        var result = [Int]()
        result.reserveCapacity(values.count)
        for (i, v) in values.enumerated() {
            guard v.isFinite, v == v.rounded(), abs(v) < 9.007_199_254_740_992e15 else {
                throw ServiceError.invalid(
                    .invalidLabel, field: "/\(name)/\(i)", "`\(name)[\(i)]` must be an integer (got \(NumberText.format(v)))")
            }
            result.append(Int(v))
        }
        return result
    }

    // MARK: Encodings 2 and 3

    private func decodeEncoded(_ encoded: JSONObject, name: String, shapeError: ServiceError) throws(ServiceError) -> DecodedTensor {
        guard case .numbers(let shapeArray)? = encoded["shape"], shapeArray.shape.count == 1 else {
            throw ServiceError.invalid(.invalidShape, field: "/\(name)/shape", "`\(name).shape` must be an array of positive integers")
        }
        var shape: [Int] = []
        var count = 1
        for v in shapeArray.values {
            guard v >= 1, v == v.rounded(), v <= Double(limits.maxElements) else {
                throw ServiceError.invalid(.invalidShape, field: "/\(name)/shape", "`\(name).shape` must be an array of positive integers")
            }
            shape.append(Int(v))
            count = count.multipliedReportingOverflow(by: Int(v)).partialValue
            guard count <= limits.maxElements else {
                throw ServiceError(
                    status: .contentTooLarge, code: "content_too_large",
                    detail: "`\(name)` has more than \(limits.maxElements) elements", field: "/\(name)/shape")
            }
        }
        if let data = encoded["data"] {
            guard encoded["base64"] == nil else {
                throw ServiceError.invalid(.invalidInput, field: "/\(name)", "`\(name)` must have either `data` or `base64`, not both")
            }
            guard case .numbers(let flat) = data, flat.shape.count == 1 else {
                throw ServiceError.invalid(.invalidShape, field: "/\(name)/data", "`\(name).data` must be a flat array of numbers")
            }
            guard flat.values.count == count else {
                throw ServiceError.invalid(
                    .invalidShape, field: "/\(name)/data",
                    "`\(name).data` has \(flat.values.count) values but its shape needs \(count)")
            }
            return DecodedTensor(shape: shape, values: flat.values)
        }
        guard case .string(let text)? = encoded["base64"] else {
            throw ServiceError.invalid(.missingField, field: "/\(name)", "`\(name)` needs `data` or `base64` beside `shape`")
        }
        let width: Int
        switch encoded["dtype"] {
        case .string("float32")?: width = 4
        case .string("float64")?: width = 8
        case nil:
            throw ServiceError.invalid(.missingField, field: "/\(name)/dtype", "`\(name).dtype` is required with `base64`")
        default:
            throw ServiceError.invalid(.invalidParam, field: "/\(name)/dtype", "`\(name).dtype` must be one of float32, float64")
        }
        guard let bytes = Base64.decode(text) else {
            throw ServiceError.invalid(.invalidInput, field: "/\(name)/base64", "`\(name).base64` is not valid base64")
        }
        guard bytes.count == count * width else {
            throw ServiceError.invalid(
                .invalidShape, field: "/\(name)/base64",
                "`\(name).base64` holds \(bytes.count) bytes but \(count) \(width == 4 ? "float32" : "float64") values need \(count * width)")
        }
        var values = [Double](repeating: 0, count: count)
        bytes.withUnsafeBytes { raw in
            if width == 4 {
                for i in 0..<count {
                    values[i] = Double(Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self))))
                }
            } else {
                for i in 0..<count {
                    values[i] = Double(bitPattern: UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self)))
                }
            }
        }
        return DecodedTensor(shape: shape, values: values)
    }

    /// The multi-dimensional index of a flat row-major offset.
    static func multiIndex(_ flat: Int, shape: [Int]) -> [Int] {
        var rest = flat
        var index = [Int](repeating: 0, count: shape.count)
        for d in stride(from: shape.count - 1, through: 0, by: -1) {
            index[d] = rest % shape[d]
            rest /= shape[d]
        }
        return index
    }
}

/// Numbers as the spec prints them in messages: shortest round-trip, integral values without `.0`.
enum NumberText {
    static func format(_ v: Double) -> String {
        guard v.isFinite else { return v.isNaN ? "nan" : (v < 0 ? "-inf" : "inf") }
        var bytes: [UInt8] = []
        JSONValue.writeNumber(v, into: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }
}
