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
/// messages of docs/losses.md §1.4 and a JSON pointer to the offending field or element.
struct TensorReader {
    var object: JSONObject
    var limits = TensorLimits()

    func contains(_ name: String) -> Bool {
        if let node = object[name], case .null = node { return false }
        return object[name] != nil
    }

    /// A required or optional float tensor of the given rank.
    func tensor(_ name: String, rank: Int) throws(ServiceError) -> DecodedTensor? {
        try tensor(name, ranks: rank...rank)
    }

    /// A required or optional float tensor whose rank lies in `ranks` (the segmentation
    /// losses' logits are 4-D or 5-D). Every encoding carries any rank: nested arrays,
    /// `{shape, data}`, `{shape, dtype, base64}` and `.npy` parts.
    func tensor(_ name: String, ranks: ClosedRange<Int>, of noun: String = "numbers") throws(ServiceError) -> DecodedTensor? {
        guard let node = object[name] else { return nil }
        if case .null = node { return nil }
        // Messages are spelled out only for an error: this runs for every tensor of every request.
        func expected() -> String {
            "`\(name)` must be a rectangular \(Self.rankText(ranks)) array of \(noun) with every dimension >= 1"
        }
        func shapeError() -> ServiceError { ServiceError.invalid(.invalidShape, field: "/\(name)", expected()) }
        var decoded: DecodedTensor
        switch node {
        case .numbers(let array):
            decoded = DecodedTensor(shape: array.shape, values: array.values)
        case .object(let encoded):
            decoded = try decodeEncoded(encoded, name: name)
        default:
            // Say what arrived: the first ragged row or non-number element, or the type.
            let (pointer, arrived) = ShapeDescription.fault(of: node, name: name)
            throw ServiceError.invalid(.invalidShape, field: "/\(name)" + pointer, "\(expected()); \(arrived)")
        }
        guard ranks.contains(decoded.shape.count), decoded.shape.allSatisfy({ $0 >= 1 }) else {
            throw ServiceError.invalid(
                .invalidShape, field: "/\(name)", "\(expected()); got \(ShapeDescription.describe(shape: decoded.shape))")
        }
        guard decoded.values.count <= limits.maxElements else {
            throw ServiceError(
                status: .contentTooLarge, code: "content_too_large",
                detail: "`\(name)` has \(decoded.values.count) elements; the limit is \(limits.maxElements)",
                field: "/\(name)")
        }
        if !decoded.values.allFinite, let bad = decoded.values.firstIndex(where: { !$0.isFinite }) {
            let index = Self.multiIndex(bad, shape: decoded.shape)
            throw ServiceError.invalid(
                .nonFinite, field: "/\(name)" + index.map { "/\($0)" }.joined(),
                "`\(name)\(index.map { "[\($0)]" }.joined())` is not a finite number")
        }
        return decoded
    }

    /// This reader with the last axis of each of `names` that is `width` wide cut to
    /// `columns` (a composite entry's slice of one head); other members as they are.
    /// `decoded` holds tensors the caller has already decoded, which are not decoded again.
    func slicingLastAxis(
        of names: [String], width: Int, to columns: Range<Int>, decoded: [String: DecodedTensor] = [:]
    ) throws(ServiceError) -> TensorReader {
        var sliced = self
        for name in names {
            var found = decoded[name]
            if found == nil { found = try tensor(name, ranks: 1...16) }
            guard let tensor = found, tensor.shape.last == width else { continue }
            let rows = tensor.values.count / width
            var values: [Double] = []
            values.reserveCapacity(rows * columns.count)
            tensor.values.withUnsafeBufferPointer { all in
                for r in 0..<rows { values.append(contentsOf: all[(r * width + columns.lowerBound)..<(r * width + columns.upperBound)]) }
            }
            let shape = tensor.shape.dropLast() + [columns.count]
            let node = JSONNode.numbers(NumericArray(shape: Array(shape), values: values))
            if let i = sliced.object.members.firstIndex(where: { $0.key == name }) { sliced.object.members[i].value = node }
        }
        return sliced
    }

    /// "2-D", "4-D or 5-D", "2-D to 4-D".
    static func rankText(_ ranks: ClosedRange<Int>) -> String {
        switch ranks.count {
        case 1: "\(ranks.lowerBound)-D"
        case 2: "\(ranks.lowerBound)-D or \(ranks.upperBound)-D"
        default: "\(ranks.lowerBound)-D to \(ranks.upperBound)-D"
        }
    }

    /// An integer tensor of the given rank (the segmentation losses' class maps, [N][H][W] or
    /// [N][H][W][Z]), in any encoding of a float tensor: nested arrays, `{shape, data}`,
    /// `{shape, dtype, base64}` (float32 holds every class index below 2^24 exactly) or an
    /// `.npy` part (int32/int64 too). Integral values only (`2.0` is 2), else `invalid_label`
    /// pointing at the element, as for the 1-D `integers`.
    func integerTensor(_ name: String, rank: Int) throws(ServiceError) -> ClassMap? {
        guard let node = object[name] else { return nil }
        if case .null = node { return nil }
        if case .array(let items) = node, let path = Self.firstNonNumber(items, path: []) {
            throw ServiceError.invalid(
                .invalidLabel, field: "/\(name)" + path.map { "/\($0)" }.joined(),
                "`\(name)\(path.map { "[\($0)]" }.joined())` must be an integer")
        }
        guard let decoded = try tensor(name, ranks: rank...rank, of: "integers") else { return nil }
        var values = [Int](repeating: 0, count: decoded.values.count)
        for (i, v) in decoded.values.enumerated() {
            guard v == v.rounded(), abs(v) < 9.007_199_254_740_992e15 else {
                let index = Self.multiIndex(i, shape: decoded.shape)
                throw ServiceError.invalid(
                    .invalidLabel, field: "/\(name)" + index.map { "/\($0)" }.joined(),
                    "`\(name)\(index.map { "[\($0)]" }.joined())` must be an integer (got \(NumberText.format(v)))")
            }
            values[i] = Int(v)
        }
        return ClassMap(shape: decoded.shape, values: values)
    }

    /// The index path of the first element of a general (not all-number) nested array that is
    /// neither a number nor an array, if any.
    private static func firstNonNumber(_ items: [JSONNode], path: [Int]) -> [Int]? {
        for (i, item) in items.enumerated() {
            switch item {
            case .number, .numbers: continue
            case .array(let inner): if let found = firstNonNumber(inner, path: path + [i]) { return found }
            default: return path + [i]
            }
        }
        return nil
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
        func shapeError() -> ServiceError {
            ServiceError.invalid(.invalidShape, field: "/\(name)", "`\(name)` must be a 1-D array of integers")
        }
        let values: [Double]
        switch node {
        case .numbers(let array):
            guard array.shape.count == 1, array.shape[0] >= 1 else { throw shapeError() }
            values = array.values
        case .object(let encoded):
            guard encoded["base64"] == nil else { throw shapeError() }
            let decoded = try decodeEncoded(encoded, name: name)
            guard decoded.shape.count == 1, decoded.shape[0] >= 1 else { throw shapeError() }
            values = decoded.values
        case .array(let items):
            // A general array: report the first element that is not a number.
            for (i, item) in items.enumerated() {
                guard case .number = item else {
                    throw ServiceError.invalid(
                        .invalidLabel, field: "/\(name)/\(i)", "`\(name)[\(i)]` must be an integer (got \(item.typeName))")
                }
            }
            throw shapeError()
        default:
            throw shapeError()
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

    private func decodeEncoded(_ encoded: JSONObject, name: String) throws(ServiceError) -> DecodedTensor {
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
    static func multiIndex(_ flat: Int, shape: [Int]) -> [Int] { Segmentation.multiIndex(flat, shape: shape) }
}

/// What arrived where a tensor was expected, for shape errors that say what they got.
enum ShapeDescription {
    /// "a 1-D array of 3 numbers", "a 2-D array of shape [2][0]", "an empty array".
    static func describe(shape: [Int]) -> String {
        if shape == [0] { return "an empty array" }
        if shape.count == 1 { return "a 1-D array of \(shape[0]) number\(shape[0] == 1 ? "" : "s")" }
        return "a \(shape.count)-D array of shape " + shape.map { "[\($0)]" }.joined()
    }

    /// The JSON-pointer suffix and text of the first fault of a node that is not a
    /// rectangular array of numbers: a ragged row, a non-number element, or its type.
    static func fault(of node: JSONNode, name: String) -> (pointer: String, text: String) {
        switch node {
        case .numbers(let array):
            return ("", "got " + describe(shape: array.shape))
        case .array(let items):
            return fault(items, name: name, path: [])
        case .object:
            return ("", "got an object without `shape`")
        default:
            return ("", "got \(article(node.typeName)) \(node.typeName)")
        }
    }

    private static func fault(_ items: [JSONNode], name: String, path: [Int]) -> (pointer: String, text: String) {
        let here = path.map { "/\($0)" }.joined()
        let label = "`\(name)" + path.map { "[\($0)]" }.joined() + "`"
        func at(_ i: Int) -> String { "`\(name)" + (path + [i]).map { "[\($0)]" }.joined() + "`" }
        // Each item's extent along the next dimension (nil for a number).
        func extent(_ node: JSONNode) -> Int? {
            switch node {
            case .array(let inner): inner.count
            case .numbers(let array): array.shape.first
            default: nil
            }
        }
        for (i, item) in items.enumerated() {
            switch item {
            case .number, .array, .numbers: continue
            default:
                return ("\(here)/\(i)", "\(at(i)) is \(article(item.typeName)) \(item.typeName), not a number or an array")
            }
        }
        let isNumber: (JSONNode) -> Bool = { if case .number = $0 { true } else { false } }
        if let first = items.first {
            for (i, item) in items.enumerated().dropFirst() where isNumber(item) != isNumber(first) {
                return ("\(here)/\(i)", "\(at(i)) is \(isNumber(item) ? "a number" : "an array") but \(at(0)) is \(isNumber(first) ? "a number" : "an array")")
            }
            if let width = extent(first) {
                for (i, item) in items.enumerated().dropFirst() where extent(item) != width {
                    let count = extent(item) ?? 0
                    return ("\(here)/\(i)", "row \(i) of \(label) has \(count) entr\(count == 1 ? "y" : "ies"), row 0 has \(width)")
                }
            }
        }
        for (i, item) in items.enumerated() {
            if case .array(let inner) = item {
                let found = fault(inner, name: name, path: path + [i])
                if !found.text.isEmpty { return found }
            }
        }
        if items.isEmpty { return (here, "\(label) is an empty array") }
        return ("", "")
    }

    private static func article(_ word: String) -> String {
        word.first.map { "aeiou".contains($0) } == true ? "an" : "a"
    }
}

/// Numbers as docs/losses.md §1.4 prints them in messages: shortest round-trip, integral values without `.0`.
enum NumberText {
    static func format(_ v: Double) -> String {
        guard v.isFinite else { return v.isNaN ? "nan" : (v < 0 ? "-inf" : "inf") }
        var bytes: [UInt8] = []
        JSONValue.writeNumber(v, into: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }
}
