import LossdJSON

/// A JSON document for small, structured responses (status, catalogues, errors).
/// Tensors are written by dedicated encoders, not through this type.
public enum JSONValue: Sendable, Equatable {
    case null
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
    case array([JSONValue])
    /// Keys are written in the order given, so responses read the way the API documents them.
    case object([(String, JSONValue)])
    /// A vector of numbers, written without a JSONValue per element.
    case doubles([Double])
    /// A row-major matrix, written as nested arrays.
    case matrix(rows: Int, cols: Int, values: [Double])
    /// A row-major tensor of any rank ≥ 1, written as nested arrays.
    case tensor(shape: [Int], values: [Double])
    /// A row-major tensor written as `{"shape", "dtype", "base64"}` (float32 or float64,
    /// little-endian): the binary answer encoding.
    case encodedTensor(shape: [Int], values: [Double], float32: Bool)

    public static func == (lhs: JSONValue, rhs: JSONValue) -> Bool {
        switch (lhs, rhs) {
        case (.null, .null): true
        case let (.bool(a), .bool(b)): a == b
        case let (.int(a), .int(b)): a == b
        case let (.double(a), .double(b)): a == b
        case let (.string(a), .string(b)): a == b
        case let (.array(a), .array(b)): a == b
        case let (.object(a), .object(b)): a.count == b.count && zip(a, b).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
        case let (.doubles(a), .doubles(b)): a == b
        case let (.matrix(r1, c1, a), .matrix(r2, c2, b)): r1 == r2 && c1 == c2 && a == b
        case let (.tensor(s1, a), .tensor(s2, b)): s1 == s2 && a == b
        case let (.encodedTensor(s1, a, f1), .encodedTensor(s2, b, f2)): s1 == s2 && a == b && f1 == f2
        default: false
        }
    }

    /// The serialized document, UTF-8.
    public var bytes: [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(1024)  // a small answer (a loss and its extras) without regrowing
        write(into: &out)
        return out
    }

    public func write(into out: inout [UInt8]) {
        switch self {
        case .null:
            out.append(contentsOf: "null".utf8)
        case .bool(let b):
            out.append(contentsOf: (b ? "true" : "false").utf8)
        case .int(let i):
            out.append(contentsOf: String(i).utf8)
        case .double(let d):
            JSONValue.writeNumber(d, into: &out)
        case .string(let s):
            JSONValue.writeString(s, into: &out)
        case .array(let items):
            out.append(UInt8(ascii: "["))
            for (i, item) in items.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                item.write(into: &out)
            }
            out.append(UInt8(ascii: "]"))
        case .object(let members):
            out.append(UInt8(ascii: "{"))
            for (i, (key, value)) in members.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                JSONValue.writeString(key, into: &out)
                out.append(UInt8(ascii: ":"))
                value.write(into: &out)
            }
            out.append(UInt8(ascii: "}"))
        case .doubles(let values):
            JSONValue.writeRow(values[...], into: &out)
        case let .matrix(rows, cols, values):
            out.reserveCapacity(out.count + JSONValue.estimatedBytes(values, groups: rows))
            out.append(UInt8(ascii: "["))
            for r in 0..<rows {
                if r > 0 { out.append(UInt8(ascii: ",")) }
                JSONValue.writeRow(values[(r * cols)..<((r + 1) * cols)], into: &out)
            }
            out.append(UInt8(ascii: "]"))
        case let .tensor(shape, values):
            out.reserveCapacity(out.count + JSONValue.estimatedBytes(values, groups: values.count / max(1, shape.last ?? 1)))
            JSONValue.writeNested(values[...], shape: shape[...], into: &out)
        case let .encodedTensor(shape, values, float32):
            JSONValue.writeEncodedTensor(shape: shape, values: values, float32: float32, into: &out)
        }
    }

    /// The JSON size of `values` written in `groups` bracketed rows, from the written
    /// length of up to 64 evenly spaced samples (plus 10%): close to exact for the dense
    /// gradients and the sparse soft labels alike, so the buffer is reserved once and
    /// never far beyond the answer (a flat 24 bytes a value would hold 12 times the size
    /// of an answer of zeros while it is sent).
    static func estimatedBytes(_ values: [Double], groups: Int) -> Int {
        guard !values.isEmpty else { return 2 }
        let samples = min(64, values.count)
        var scratch: [UInt8] = []
        scratch.reserveCapacity(samples * 26)
        for k in 0..<samples { writeNumber(values[k * values.count / samples], into: &scratch) }
        let perValue = Double(scratch.count) / Double(samples) + 1  // and a comma
        return Int(perValue * Double(values.count) * 1.1) + 2 * groups + 64
    }

    static func writeNested(_ values: ArraySlice<Double>, shape: ArraySlice<Int>, into out: inout [UInt8]) {
        guard shape.count > 1 else {
            writeRow(values, into: &out)
            return
        }
        let inner = shape.dropFirst()
        let stride = inner.reduce(1, *)
        out.append(UInt8(ascii: "["))
        for i in 0..<shape.first! {
            if i > 0 { out.append(UInt8(ascii: ",")) }
            let start = values.startIndex + i * stride
            writeNested(values[start..<(start + stride)], shape: inner, into: &out)
        }
        out.append(UInt8(ascii: "]"))
    }

    static func writeRow(_ values: ArraySlice<Double>, into out: inout [UInt8]) {
        // Numbers go to a stack buffer and into `out` a few kilobytes at a time, rather than
        // one append per number.
        let chunk = 4096
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: chunk) { buffer in
            let base = buffer.baseAddress!
            var p = base
            p.pointee = UInt8(ascii: "[")
            p += 1
            var first = true
            for v in values {
                if p - base > chunk - JSONNumberWriter.maxLength - 2 {
                    out.append(contentsOf: UnsafeBufferPointer(start: base, count: p - base))
                    p = base
                }
                if !first {
                    p.pointee = UInt8(ascii: ",")
                    p += 1
                }
                first = false
                p += writeNumber(v, to: p)
            }
            p.pointee = UInt8(ascii: "]")
            p += 1
            out.append(contentsOf: UnsafeBufferPointer(start: base, count: p - base))
        }
    }

    /// Shortest round-trip text for finite values (integral ones without `.0`); JSON has
    /// no NaN or infinity, so those become null.
    static func writeNumber(_ d: Double, into out: inout [UInt8]) {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: JSONNumberWriter.maxLength) { buffer in
            let count = writeNumber(d, to: buffer.baseAddress!)
            out.append(contentsOf: UnsafeBufferPointer(rebasing: buffer[..<count]))
        }
    }

    /// `writeNumber(_:into:)` at `p`, which has room for `JSONNumberWriter.maxLength` bytes;
    /// returns the length.
    @inline(__always)
    static func writeNumber(_ d: Double, to p: UnsafeMutablePointer<UInt8>) -> Int {
        guard d.isFinite else {
            for (i, byte) in "null".utf8.enumerated() { p[i] = byte }
            return 4
        }
        // Integral and below 1e15 (`d == d.rounded()` calls libm's round() on baseline x86-64).
        if abs(d) < 1e15, d == Double(Int64(d)) {
            if d == 0, d.sign == .minus {
                p[0] = UInt8(ascii: "-")
                p[1] = UInt8(ascii: "0")
                return 2
            }
            return JSONNumberWriter.writeInteger(Int64(d), to: p)
        }
        // Schubfach: the same text as `d.description`, without allocating.
        return JSONNumberWriter.writeShortest(d, to: p)
    }

    static func writeString(_ s: String, into out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        // Member names and most values need no escape: copied whole.
        if s.utf8.allSatisfy({ $0 >= 0x20 && $0 != UInt8(ascii: "\"") && $0 != UInt8(ascii: "\\") }) {
            out.append(contentsOf: s.utf8)
            out.append(UInt8(ascii: "\""))
            return
        }
        for byte in s.utf8 {
            switch byte {
            case UInt8(ascii: "\""): out.append(contentsOf: "\\\"".utf8)
            case UInt8(ascii: "\\"): out.append(contentsOf: "\\\\".utf8)
            case 0x0A: out.append(contentsOf: "\\n".utf8)
            case 0x0D: out.append(contentsOf: "\\r".utf8)
            case 0x09: out.append(contentsOf: "\\t".utf8)
            case 0..<0x20:
                let hex = String(byte, radix: 16)
                out.append(contentsOf: ("\\u" + String(repeating: "0", count: 4 - hex.count) + hex).utf8)
            default: out.append(byte)
            }
        }
        out.append(UInt8(ascii: "\""))
    }
}

extension JSONValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByBooleanLiteral,
    ExpressibleByFloatLiteral, ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral
{
    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int) { self = .int(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(floatLiteral value: Double) { self = .double(value) }
    public init(arrayLiteral elements: JSONValue...) { self = .array(elements) }
    public init(dictionaryLiteral elements: (String, JSONValue)...) { self = .object(elements) }
}
