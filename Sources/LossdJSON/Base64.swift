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
