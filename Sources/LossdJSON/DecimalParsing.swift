#if canImport(Glibc)
    import Glibc
#endif

/// Correctly rounded decimal-to-binary conversion of JSON numbers.
///
/// Three tiers, fastest first: Clinger's exact fast path (at most 15-16 significant
/// digits and a small power of ten), the Eisel-Lemire algorithm over 128-bit
/// truncated powers of ten (almost everything else), and glibc's `strtod`, which is
/// exact, for the rare inputs the first two cannot decide (long mantissas on a
/// rounding boundary, subnormals, overflow).
public enum DecimalParsing {
    /// The outcome of scanning a number: its value, and where its text ended.
    public struct Scanned: Sendable, Equatable {
        public var value: Double
        public var end: Int
        /// True when the text has no fraction and no exponent (`2`, `-17`).
        public var isIntegerLiteral: Bool
    }

    /// Why a number could not be scanned.
    public enum Failure: Error, Equatable, Sendable {
        /// The text does not follow the JSON number grammar.
        case invalidSyntax(at: Int)
    }

    /// Scans a JSON number (`-? (0 | [1-9][0-9]*) (\.[0-9]+)? ([eE][+-]?[0-9]+)?`) starting
    /// at `start`. Values beyond the float64 range come back as ±infinity; the caller
    /// decides whether that is an error.
    public static func scan(_ bytes: UnsafeBufferPointer<UInt8>, from start: Int) throws(Failure) -> Scanned {
        var i = start
        let count = bytes.count
        var negative = false
        if i < count && bytes[i] == UInt8(ascii: "-") {
            negative = true
            i += 1
        }
        guard i < count, isDigit(bytes[i]) else { throw .invalidSyntax(at: i) }

        var mantissa: UInt64 = 0
        var significantDigits = 0  // digits after leading zeros, counted even when truncated
        var droppedDigits = false  // a nonzero digit beyond the 19 kept
        var exponent = 0  // decimal exponent adjustment from the point and dropped digits
        if bytes[i] == UInt8(ascii: "0") {
            i += 1
            if i < count && isDigit(bytes[i]) { throw .invalidSyntax(at: i) }  // no leading zeros
        } else {
            while i < count, isDigit(bytes[i]) {
                accumulate(bytes[i], &mantissa, &significantDigits, &droppedDigits, &exponent, fractional: false)
                i += 1
            }
        }
        var isInteger = true
        if i < count && bytes[i] == UInt8(ascii: ".") {
            isInteger = false
            i += 1
            guard i < count, isDigit(bytes[i]) else { throw .invalidSyntax(at: i) }
            while i < count, isDigit(bytes[i]) {
                accumulate(bytes[i], &mantissa, &significantDigits, &droppedDigits, &exponent, fractional: true)
                i += 1
            }
        }
        if i < count && (bytes[i] | 0x20) == UInt8(ascii: "e") {
            isInteger = false
            i += 1
            var exponentNegative = false
            if i < count && (bytes[i] == UInt8(ascii: "+") || bytes[i] == UInt8(ascii: "-")) {
                exponentNegative = bytes[i] == UInt8(ascii: "-")
                i += 1
            }
            guard i < count, isDigit(bytes[i]) else { throw .invalidSyntax(at: i) }
            var explicit = 0
            while i < count, isDigit(bytes[i]) {
                // Saturate: beyond 10^6 the value is 0 or infinity whatever the mantissa.
                if explicit < 1_000_000 { explicit = explicit * 10 + Int(bytes[i] &- UInt8(ascii: "0")) }
                i += 1
            }
            exponent += exponentNegative ? -explicit : explicit
        }

        let value = convert(
            mantissa: mantissa, exponent: exponent, negative: negative, truncated: droppedDigits,
            digits: significantDigits, text: UnsafeBufferPointer(rebasing: bytes[start..<i]))
        return Scanned(value: value, end: i, isIntegerLiteral: isInteger)
    }

    static func isDigit(_ b: UInt8) -> Bool { b &- UInt8(ascii: "0") < 10 }

    /// Adds one digit to the 19-digit mantissa, or records that it was dropped.
    static func accumulate(
        _ digit: UInt8, _ mantissa: inout UInt64, _ significant: inout Int, _ dropped: inout Bool,
        _ exponent: inout Int, fractional: Bool
    ) {
        let d = UInt64(digit &- UInt8(ascii: "0"))
        if significant == 0 && d == 0 {
            // A leading zero (only possible after the point): it just shifts the exponent.
            if fractional { exponent -= 1 }
            return
        }
        if significant < 19 {
            mantissa = mantissa &* 10 &+ d
            if fractional { exponent -= 1 }
        } else {
            if d != 0 { dropped = true }
            if !fractional { exponent += 1 }
        }
        significant += 1
    }

    /// Exact powers of ten representable in a Double, for Clinger's fast path.
    static let exactPowers: [Double] = [
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
        1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
    ]

    static func convert(
        mantissa: UInt64, exponent: Int, negative: Bool, truncated: Bool, digits: Int,
        text: UnsafeBufferPointer<UInt8>
    ) -> Double {
        if mantissa == 0 && !truncated { return negative ? -0.0 : 0.0 }
        if !truncated, mantissa <= 1 << 53, exponent >= -22, exponent <= 22 {
            // Clinger: both operands exact, one correctly rounded operation.
            let m = Double(mantissa)
            let v = exponent < 0 ? m / exactPowers[-exponent] : m * exactPowers[exponent]
            return negative ? -v : v
        }
        if let v = eiselLemire(mantissa: mantissa, exponent: exponent) {
            if !truncated { return negative ? -v : v }
            // Dropped digits: the true value lies in [m, m+1) * 10^e; if both ends round the
            // same way, that is the answer.
            if let upper = eiselLemire(mantissa: mantissa + 1, exponent: exponent), upper == v {
                return negative ? -v : v
            }
        }
        return exactFallback(text)
    }

    /// Eisel-Lemire: `mantissa * 10^exponent` correctly rounded, or nil when 128 bits of
    /// 10^exponent cannot decide the rounding (or the result is subnormal or infinite).
    static func eiselLemire(mantissa: UInt64, exponent: Int) -> Double? {
        guard mantissa != 0 else { return 0 }
        guard exponent >= PowersOfTen.minExponent, exponent <= PowersOfTen.maxExponent else { return nil }
        let leadingZeros = mantissa.leadingZeroBitCount
        let w = mantissa << UInt64(leadingZeros)
        var exponent2 = UInt64(bitPattern: Int64((217706 &* exponent) >> 16 &+ 64 &+ 1023)) &- UInt64(leadingZeros)

        let index = 2 &* (exponent &- PowersOfTen.minExponent)
        let powerHigh = PowersOfTen.table[index], powerLow = PowersOfTen.table[index &+ 1]
        var (high, low) = w.multipliedFullWidth(by: powerHigh)
        if high & 0x1FF == 0x1FF && low &+ w < w {
            // Not enough bits: bring in the low half of the power.
            let (yHigh, yLow) = w.multipliedFullWidth(by: powerLow)
            var mergedHigh = high
            let mergedLow = low &+ yHigh
            if mergedLow < low { mergedHigh &+= 1 }
            if mergedHigh & 0x1FF == 0x1FF && mergedLow &+ 1 == 0 && yLow &+ w < w { return nil }
            high = mergedHigh
            low = mergedLow
        }
        let top = high >> 63
        var result = high >> (top &+ 9)
        exponent2 &-= 1 ^ top
        // Exactly half-way between two doubles: cannot tell which way to round.
        if low == 0 && high & 0x1FF == 0 && result & 3 == 1 { return nil }
        result &+= result & 1
        result >>= 1
        if result >> 53 > 0 {
            result >>= 1
            exponent2 &+= 1
        }
        // Subnormal or infinite: leave to the exact path.
        if exponent2 &- 1 >= 0x7FF - 1 { return nil }
        return Double(bitPattern: exponent2 << 52 | result & 0x000F_FFFF_FFFF_FFFF)
    }

    /// glibc's strtod: exact for every input, slow. lossd never calls setlocale, so the
    /// process stays in the "C" locale and the decimal point is '.'.
    static func exactFallback(_ text: UnsafeBufferPointer<UInt8>) -> Double {
        var buffer = [CChar](repeating: 0, count: text.count + 1)
        for (i, b) in text.enumerated() { buffer[i] = CChar(bitPattern: b) }
        return strtod(buffer, nil)
    }
}
