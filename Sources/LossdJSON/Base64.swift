/// Standard base64 (RFC 4648 §4), strict: padding required to a multiple of four, no
/// whitespace or line breaks, no URL-safe alphabet. Both directions run over raw buffers
/// (a table lookup per character pair when encoding, per character when decoding, no per-byte array appends), at memory-bound speed for
/// the megabyte tensors of binary requests and answers.
public enum Base64 {
    /// Character → 6-bit value; 0xFF for anything outside the alphabet (`=` included).
    private static let table: [UInt8] = {
        var t = [UInt8](repeating: 0xFF, count: 256)
        for (i, c) in alphabet.enumerated() { t[Int(c)] = UInt8(i) }
        return t
    }()

    static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    /// 12-bit value → its two characters, the first in the low byte: one lookup encodes half
    /// of a 3-byte group.
    private static let pairs: [UInt16] = (0..<4096).map { v in
        let first = UInt16(alphabet[v >> 6]), second = UInt16(alphabet[v & 0x3F])
        return first | second << 8
    }

    /// The decoded bytes, or nil when the text is not valid base64.
    public static func decode<S: StringProtocol>(_ text: S) -> [UInt8]? {
        if let result = text.utf8.withContiguousStorageIfAvailable({ decode(bytes: $0) }) { return result }
        return Array(text.utf8).withUnsafeBufferPointer { decode(bytes: $0) }
    }

    /// Decodes base64 characters; nil when they are not valid base64.
    public static func decode(bytes input: UnsafeBufferPointer<UInt8>) -> [UInt8]? {
        guard input.count % 4 == 0 else { return nil }
        if input.isEmpty { return [] }
        var padding = 0
        if input[input.count - 1] == UInt8(ascii: "=") { padding += 1 }
        if input[input.count - 2] == UInt8(ascii: "=") { padding += 1 }
        let quads = input.count / 4
        let outputCount = quads * 3 - padding
        var valid = true
        let output = table.withUnsafeBufferPointer { table -> [UInt8] in
            [UInt8](unsafeUninitializedCapacity: outputCount) { out, initialized in
                guard let source = input.baseAddress, let target = out.baseAddress else {
                    initialized = 0
                    return
                }
                // Every quad but the last: four valid characters, three bytes.
                var bad: UInt8 = 0
                for q in 0..<(quads - 1) {
                    let s = source + 4 * q
                    let a = table[Int(s[0])], b = table[Int(s[1])], c = table[Int(s[2])], d = table[Int(s[3])]
                    bad |= a | b | c | d
                    let t = target + 3 * q
                    t[0] = a << 2 | b >> 4
                    t[1] = b << 4 | c >> 2
                    t[2] = c << 6 | d
                }
                // 0xFF marks a bad character; valid values are below 64.
                if bad & 0xC0 != 0 { valid = false }
                // The last quad, with its padding.
                let s = source + 4 * (quads - 1)
                var values: [UInt8] = [0, 0, 0, 0]
                for k in 0..<4 {
                    if s[k] == UInt8(ascii: "=") {
                        if k < 4 - padding { valid = false }
                        continue
                    }
                    let v = table[Int(s[k])]
                    if v == 0xFF || k >= 4 - padding { valid = false }
                    values[k] = v
                }
                let tail = [values[0] << 2 | values[1] >> 4, values[1] << 4 | values[2] >> 2, values[2] << 6 | values[3]]
                let t = target + 3 * (quads - 1)
                for k in 0..<(3 - padding) { t[k] = tail[k] }
                initialized = outputCount
            }
        }
        return valid ? output : nil
    }

    /// Standard base64 of `bytes`, with padding.
    public static func encode(_ bytes: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        bytes.withUnsafeBufferPointer { append($0, to: &out) }
        return out
    }

    /// Appends the base64 of `bytes` (one whole encoding, padded) to `out`.
    public static func append(_ bytes: UnsafeBufferPointer<UInt8>, to out: inout [UInt8]) {
        let encodedCount = (bytes.count + 2) / 3 * 4
        let start = out.count
        out.reserveCapacity(start + encodedCount)
        out.append(contentsOf: repeatElement(0, count: encodedCount))
        pairs.withUnsafeBufferPointer { pairs in
            out.withUnsafeMutableBufferPointer { whole in
                guard let target = whole.baseAddress.map({ UnsafeMutableRawPointer($0 + start) }),
                    let source = bytes.baseAddress
                else { return }
                // Each 3-byte group is two 12-bit halves, each two characters from one lookup.
                let groups = bytes.count / 3
                for g in 0..<groups {
                    let s = source + 3 * g
                    let v = UInt32(s[0]) << 16 | UInt32(s[1]) << 8 | UInt32(s[2])
                    let quad = UInt32(pairs[Int(v >> 12)]) | UInt32(pairs[Int(v & 0xFFF)]) << 16
                    target.storeBytes(of: quad.littleEndian, toByteOffset: 4 * g, as: UInt32.self)
                }
            }
        }
        alphabet.withUnsafeBufferPointer { alphabet in
            out.withUnsafeMutableBufferPointer { whole in
                guard let target = whole.baseAddress.map({ $0 + start }) else { return }
                let groups = bytes.count / 3
                let rest = bytes.count - 3 * groups
                guard rest > 0 else { return }
                let t = target + 4 * groups
                let b0 = bytes[3 * groups], b1 = rest == 2 ? bytes[3 * groups + 1] : 0
                t[0] = alphabet[Int(b0 >> 2)]
                t[1] = alphabet[Int((b0 & 0x03) << 4 | b1 >> 4)]
                t[2] = rest == 2 ? alphabet[Int((b1 & 0x0F) << 2)] : UInt8(ascii: "=")
                t[3] = UInt8(ascii: "=")
            }
        }
    }
}
