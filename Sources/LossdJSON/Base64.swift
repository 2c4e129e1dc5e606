/// Standard base64 (RFC 4648 §4), strict: padding required to a multiple of four, no
/// whitespace or line breaks, no URL-safe alphabet.
public enum Base64 {
    private static let table: [UInt8] = {
        var t = [UInt8](repeating: 0xFF, count: 256)
        for (i, c) in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8.enumerated() {
            t[Int(c)] = UInt8(i)
        }
        return t
    }()

    /// The decoded bytes, or nil when the text is not valid base64.
    public static func decode<S: StringProtocol>(_ text: S) -> [UInt8]? {
        let input = Array(text.utf8)
        guard input.count % 4 == 0 else { return nil }
        if input.isEmpty { return [] }
        var padding = 0
        if input[input.count - 1] == UInt8(ascii: "=") { padding += 1 }
        if input[input.count - 2] == UInt8(ascii: "=") { padding += 1 }
        var output = [UInt8]()
        output.reserveCapacity(input.count / 4 * 3)
        var i = 0
        while i < input.count {
            let last = i + 4 == input.count
            var quad: UInt32 = 0
            for k in 0..<4 {
                let c = input[i + k]
                if c == UInt8(ascii: "=") {
                    guard last, k >= 4 - padding else { return nil }
                    quad <<= 6
                    continue
                }
                let v = table[Int(c)]
                guard v != 0xFF else { return nil }
                quad = quad << 6 | UInt32(v)
            }
            output.append(UInt8(truncatingIfNeeded: quad >> 16))
            if !(last && padding == 2) { output.append(UInt8(truncatingIfNeeded: quad >> 8)) }
            if !(last && padding >= 1) { output.append(UInt8(truncatingIfNeeded: quad)) }
            i += 4
        }
        return output
    }
}

extension Base64 {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    /// Standard base64 of `bytes`, with padding.
    public static func encode(_ bytes: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity((bytes.count + 2) / 3 * 4)
        var encoder = StreamEncoder()
        bytes.withUnsafeBufferPointer { encoder.append($0, into: &out) }
        encoder.finish(into: &out)
        return out
    }

    /// Encodes bytes given in pieces: whole 3-byte groups go out at once, up to two bytes
    /// wait for the next piece, and ``finish(into:)`` pads the last group.
    public struct StreamEncoder {
        /// Up to two bytes waiting for a whole 3-byte group.
        private var pending: [UInt8] = []

        public init() {}

        public mutating func append(_ bytes: UnsafeBufferPointer<UInt8>, into out: inout [UInt8]) {
            var i = 0
            while !pending.isEmpty && i < bytes.count {
                pending.append(bytes[i])
                i += 1
                if pending.count == 3 {
                    emit(pending[0], pending[1], pending[2], into: &out)
                    pending.removeAll(keepingCapacity: true)
                }
            }
            while i + 3 <= bytes.count {
                emit(bytes[i], bytes[i + 1], bytes[i + 2], into: &out)
                i += 3
            }
            while i < bytes.count {
                pending.append(bytes[i])
                i += 1
            }
        }

        public mutating func finish(into out: inout [UInt8]) {
            let a = Base64.alphabet
            switch pending.count {
            case 1:
                out.append(a[Int(pending[0] >> 2)])
                out.append(a[Int((pending[0] & 0x03) << 4)])
                out.append(UInt8(ascii: "="))
                out.append(UInt8(ascii: "="))
            case 2:
                out.append(a[Int(pending[0] >> 2)])
                out.append(a[Int((pending[0] & 0x03) << 4 | pending[1] >> 4)])
                out.append(a[Int((pending[1] & 0x0F) << 2)])
                out.append(UInt8(ascii: "="))
            default:
                break
            }
            pending.removeAll()
        }

        @inline(__always)
        private func emit(_ b0: UInt8, _ b1: UInt8, _ b2: UInt8, into out: inout [UInt8]) {
            let a = Base64.alphabet
            out.append(a[Int(b0 >> 2)])
            out.append(a[Int((b0 & 0x03) << 4 | b1 >> 4)])
            out.append(a[Int((b1 & 0x0F) << 2 | b2 >> 6)])
            out.append(a[Int(b2 & 0x3F)])
        }
    }
}
