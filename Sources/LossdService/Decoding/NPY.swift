import LossdJSON

/// A reader for NumPy `.npy` files (format versions 1.0, 2.0 and 3.0): little-endian
/// float32, float64, int32 or int64 in C order. Everything else is 422 naming the field.
enum NPY {
    private static let magic: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59]  // "\x93NUMPY"

    private enum Scalar {
        case float32, float64, int32, int64
        var size: Int { self == .float32 || self == .int32 ? 4 : 8 }
    }

    /// The array in `bytes`, as the JSON reader would have given it: `.numbers` with its
    /// shape, or `.number` for a 0-d array.
    static func read(_ part: ArraySlice<UInt8>, field: String) throws(ServiceError) -> JSONNode {
        let result = part.withUnsafeBufferPointer { bytes -> Result<JSONNode, ServiceError> in
            do throws(ServiceError) { return .success(try read(bytes, field: field)) } catch { return .failure(error) }
        }
        return try result.get()
    }

    static func read(_ bytes: UnsafeBufferPointer<UInt8>, field: String) throws(ServiceError) -> JSONNode {
        func invalid(_ detail: String) -> ServiceError {
            ServiceError(status: .unprocessableContent, code: "invalid_input", detail: "\(field) (.npy part): \(detail)", field: "/\(field)")
        }
        guard bytes.count >= 10, Array(bytes[0..<6]) == magic else { throw invalid("not a .npy file (bad magic)") }
        let major = bytes[6]
        let headerLength: Int
        let headerStart: Int
        switch major {
        case 1:
            headerLength = Int(bytes[8]) | Int(bytes[9]) << 8
            headerStart = 10
        case 2, 3:
            guard bytes.count >= 12 else { throw invalid("the header is truncated") }
            headerLength = (0..<4).reduce(0) { $0 | Int(bytes[8 + $1]) << (8 * $1) }
            headerStart = 12
        default:
            throw invalid("format version \(major).\(bytes[7]) is not supported (1.0, 2.0 or 3.0)")
        }
        guard headerLength <= bytes.count - headerStart else { throw invalid("the header is truncated") }
        let header = String(decoding: bytes[headerStart..<(headerStart + headerLength)], as: UTF8.self)
        var parser = HeaderParser(header)
        guard let dict = parser.dictionary() else { throw invalid("the header is not a valid .npy header") }

        guard case .string(let descr)? = dict["descr"] else {
            throw invalid("only float32, float64, int32 and int64 arrays are accepted (not a structured dtype)")
        }
        let scalar: Scalar
        switch descr {
        case "<f4", "|f4", "=f4": scalar = .float32
        case "<f8", "|f8", "=f8": scalar = .float64
        case "<i4", "|i4", "=i4": scalar = .int32
        case "<i8", "|i8", "=i8": scalar = .int64
        default: throw invalid("dtype \(descr) is not accepted; send little-endian float32, float64, int32 or int64")
        }
        guard case .bool(let fortran)? = dict["fortran_order"] else { throw invalid("the header has no fortran_order") }
        guard !fortran else { throw invalid("Fortran-order arrays are not accepted; save a C-order array (np.ascontiguousarray)") }
        guard case .shape(let shape)? = dict["shape"] else { throw invalid("the header has no shape") }

        var count = 1
        for extent in shape {
            let (product, overflow) = count.multipliedReportingOverflow(by: extent)
            guard !overflow, product <= bytes.count else { throw invalid("the data is truncated: shape \(shape) needs more bytes than were sent") }
            count = product
        }
        let dataStart = headerStart + headerLength
        let expected = count * scalar.size
        guard bytes.count - dataStart >= expected else {
            throw invalid("the data is truncated: shape \(shape) needs \(expected) bytes, got \(bytes.count - dataStart)")
        }
        guard bytes.count - dataStart == expected else {
            throw invalid("\(bytes.count - dataStart - expected) bytes follow the data of shape \(shape)")
        }

        let data = UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(bytes)[dataStart...])
        let values = [Double](unsafeUninitializedCapacity: count) { out, initialized in
            switch scalar {
            case .float32: widen(data, as: UInt32.self, into: out) { Double(Float(bitPattern: UInt32(littleEndian: $0))) }
            case .float64: widen(data, as: UInt64.self, into: out) { Double(bitPattern: UInt64(littleEndian: $0)) }
            case .int32: widen(data, as: Int32.self, into: out) { Double(Int32(littleEndian: $0)) }
            case .int64: widen(data, as: Int64.self, into: out) { Double(Int64(littleEndian: $0)) }
            }
            initialized = count
        }
        return shape.isEmpty ? .number(values[0]) : .numbers(NumericArray(shape: shape, values: values))
    }

    /// out[i] = convert(the i-th little-endian `T` of `data`), one tight loop a dtype.
    @inline(__always)
    private static func widen<T: FixedWidthInteger>(
        _ data: UnsafeRawBufferPointer, as _: T.Type, into out: UnsafeMutableBufferPointer<Double>, _ convert: (T) -> Double
    ) {
        for i in 0..<out.count {
            out[i] = convert(data.loadUnaligned(fromByteOffset: i * MemoryLayout<T>.size, as: T.self))
        }
    }

    private enum HeaderValue {
        case string(String)
        case bool(Bool)
        case shape([Int])
        case other
    }

    /// The Python-literal dictionary of an .npy header: string keys; string, boolean or
    /// integer-tuple values (a list, as in a structured dtype, reads as `.other`).
    private struct HeaderParser {
        var chars: [Character]
        var i = 0

        init(_ text: String) { chars = Array(text) }

        mutating func skipSpace() { while i < chars.count, chars[i].isWhitespace { i += 1 } }

        mutating func eat(_ c: Character) -> Bool {
            skipSpace()
            guard i < chars.count, chars[i] == c else { return false }
            i += 1
            return true
        }

        mutating func string() -> String? {
            skipSpace()
            guard i < chars.count, chars[i] == "'" || chars[i] == "\"" else { return nil }
            let quote = chars[i]
            i += 1
            let start = i
            while i < chars.count, chars[i] != quote { i += 1 }
            guard i < chars.count else { return nil }
            defer { i += 1 }
            return String(chars[start..<i])
        }

        mutating func value() -> HeaderValue? {
            skipSpace()
            guard i < chars.count else { return nil }
            switch chars[i] {
            case "'", "\"": return string().map(HeaderValue.string)
            case "(":
                i += 1
                var shape: [Int] = []
                while !eat(")") {
                    skipSpace()
                    let start = i
                    while i < chars.count, chars[i].isASCII, chars[i].isNumber { i += 1 }
                    if i < chars.count, chars[i] == "L" { i += 1 }  // Python 2 longs
                    guard let extent = Int(String(chars[start..<i]).filter { $0 != "L" }) else { return nil }
                    shape.append(extent)
                    if !eat(",") {
                        guard eat(")") else { return nil }
                        break
                    }
                }
                return .shape(shape)
            case "[":
                var depth = 0
                while i < chars.count {
                    if chars[i] == "[" { depth += 1 } else if chars[i] == "]" { depth -= 1 }
                    i += 1
                    if depth == 0 { return .other }
                }
                return nil
            default:
                let start = i
                while i < chars.count, chars[i].isLetter { i += 1 }
                switch String(chars[start..<i]) {
                case "True": return .bool(true)
                case "False": return .bool(false)
                default: return nil
                }
            }
        }

        mutating func dictionary() -> [String: HeaderValue]? {
            guard eat("{") else { return nil }
            var result: [String: HeaderValue] = [:]
            while !eat("}") {
                guard let key = string(), eat(":"), let value = value() else { return nil }
                result[key] = value
                if !eat(",") {
                    guard eat("}") else { return nil }
                    break
                }
            }
            return result
        }
    }
}
