/// Shortest round-trip double → decimal text, without allocating: the JSON writer's number
/// formatter for responses with large tensors (gradients), where `Double.description` costs
/// most of the response time.
///
/// The digits are Schubfach's (Raffaello Giulietti, "The Schubfach way to render doubles",
/// 2020; the same algorithm as Java 19's `Double.toString`): the shortest decimal in the
/// rounding interval of the double, and of those the closest to it, ties to an even last
/// digit. Those are the digits Swift's `description` prints. The layout is Swift's too:
/// plain decimal for 1e-4 ≤ |v| ≤ 2^53 (`0.001`, `123.456`, `9007199254740992.0`), otherwise
/// `d.ddde±XX` with at least two exponent digits (`1e-05`, `1.7976931348623157e+308`),
/// all of which is valid JSON and parses back to the same bits.
public enum JSONNumberWriter {
    /// The room `writeShortest` needs at its destination: it writes up to 26 bytes, those past
    /// the text as scratch; the longest text is 24 bytes (`-1.2345678901234567e-308`).
    public static let maxLength = 32

    /// Appends the shortest round-trip text of a finite `value` to `bytes` (Swift's
    /// `description` layout; `-0.0` for negative zero).
    @inlinable
    public static func appendShortest(_ value: Double, to bytes: inout [UInt8]) {
        append(to: &bytes) { writeShortest(value, to: $0) }
    }

    /// Runs a writer on a `maxLength`-byte scratch buffer and appends what it wrote.
    @inlinable
    static func append(to bytes: inout [UInt8], _ write: (UnsafeMutablePointer<UInt8>) -> Int) {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: maxLength) { buffer in
            let count = write(buffer.baseAddress!)
            bytes.append(contentsOf: UnsafeBufferPointer(rebasing: buffer[..<count]))
        }
    }

    /// Writes the shortest round-trip text of a finite `value` at `out`, which must have room
    /// for `maxLength` bytes, and returns the text's length. JSON has no NaN or infinity:
    /// those come out as `null`.
    public static func writeShortest(_ value: Double, to out: UnsafeMutablePointer<UInt8>) -> Int {
        let bits = value.bitPattern
        // The sign without a branch (signs of gradients are random): write '-', keep it or not.
        out.pointee = UInt8(ascii: "-")
        let p = out + Int(truncatingIfNeeded: bits >> 63)
        let fraction = bits & 0x000F_FFFF_FFFF_FFFF
        let biasedExponent = Int(truncatingIfNeeded: (bits >> 52) & 0x7FF)
        if biasedExponent == 0x7FF {
            for (i, byte) in "null".utf8.enumerated() { out[i] = byte }
            return 4
        }
        if fraction == 0 && biasedExponent == 0 {
            p[0] = UInt8(ascii: "0")
            p[1] = UInt8(ascii: ".")
            p[2] = UInt8(ascii: "0")
            return p - out + 3
        }
        let (digits, exponent) = decimal(fraction: fraction, biasedExponent: biasedExponent)
        let fixed = value.magnitude <= 9_007_199_254_740_992.0  // 2^53, Swift's threshold
        return p - out + format(digits: digits, exponent: exponent, fixedAllowed: fixed, to: p)
    }

    /// The shortest decimal that rounds to `value` (finite, nonzero), closest to it among the
    /// shortest: `|value| == digits × 10^exponent` in the round-trip sense, `digits` without
    /// trailing zeros (at most 17 digits). For tests and other layouts.
    public static func shortestDecimal(_ value: Double) -> (digits: UInt64, exponent: Int) {
        let bits = value.bitPattern
        return decimal(fraction: bits & 0x000F_FFFF_FFFF_FFFF, biasedExponent: Int(truncatingIfNeeded: (bits >> 52) & 0x7FF))
    }

    /// Appends the decimal text of `value` (as `String(value)` would) to `bytes`.
    @inlinable
    public static func appendInteger(_ value: Int64, to bytes: inout [UInt8]) {
        append(to: &bytes) { writeInteger(value, to: $0) }
    }

    /// Writes the decimal text of `value` at `out` (room for 20 bytes) and returns its length.
    public static func writeInteger(_ value: Int64, to out: UnsafeMutablePointer<UInt8>) -> Int {
        var p = out
        if value < 0 {
            p.pointee = UInt8(ascii: "-")
            p += 1
        }
        let magnitude = value.magnitude
        let count = max(decimalLength(magnitude), 1)
        writeDigits(magnitude, count: count, to: p)
        return p - out + count
    }

    // MARK: - Schubfach

    /// Schubfach on the fields of a finite, nonzero double: its shortest closest decimal,
    /// trailing zeros removed.
    @inline(__always)
    static func decimal(fraction: UInt64, biasedExponent: Int) -> (digits: UInt64, exponent: Int) {
        let c: UInt64  // the double is c × 2^q
        let q: Int
        if biasedExponent != 0 {
            c = fraction | (1 << 52)
            q = biasedExponent &- 1075
            // Integers below 2^53: their digits are the shortest (the rounding interval is
            // at most ±1/2 wide, so it holds no other integer).
            if q <= 0 && q > -53 {
                let shift = UInt64(-q)
                let integer = c >> shift
                if integer << shift == c { return removeTrailingZeros(integer, 0) }
            }
        } else {
            c = fraction
            q = -1074
        }

        // The lower neighbour is half as far as the upper one at a power of two (except at
        // the smallest normal exponent, where the spacing below stays the same).
        let lowerCloser = fraction == 0 && biasedExponent > 1
        // The rounding interval [cbl, cbr] × 2^(q-2) around cb × 2^(q-2).
        let cbl = 4 &* c &- 2 &+ (lowerCloser ? 1 : 0)
        let cb = 4 &* c
        let cbr = 4 &* c &+ 2
        // k = floor(log10(2^q)), or floor(log10(3/4 × 2^q)) with the closer lower bound.
        let k = (q &* 1_262_611 &- (lowerCloser ? 524_031 : 0)) >> 22
        // h = q + floor(log2(10^-k)), in 0...3.
        let h = q &+ (((0 &- k) &* 1_741_647) >> 19)

        // g = floor(β) + 1 where 10^-k = β × 2^r, 2^127 ≤ β < 2^128 (the paper's g): the
        // reader's table holds floor(β) for the same normalisation, so add one.
        assert(PowersOfTen.minExponent == -348)
        let index = 2 &* ((0 &- k) &+ 348)  // 2 × (-k - PowersOfTen.minExponent), a constant here
        let (gLow, carry) = PowersOfTen.table[index &+ 1].addingReportingOverflow(1)
        let gHigh = PowersOfTen.table[index] &+ (carry ? 1 : 0)

        let vbl = roundToOdd(gHigh, gLow, cbl &<< UInt64(truncatingIfNeeded: h))
        let vb = roundToOdd(gHigh, gLow, cb &<< UInt64(truncatingIfNeeded: h))
        let vbr = roundToOdd(gHigh, gLow, cbr &<< UInt64(truncatingIfNeeded: h))
        // The interval is closed for even c (round-half-even parsing reaches its ends), open
        // for odd c.
        let lower = vbl &+ (c & 1)
        let upper = vbr &- (c & 1)

        // Figure 4 of the paper, in 0/1 arithmetic rather than branches or selects: the
        // outcomes are close to random for random doubles, and LLVM turns selects into
        // branches that mispredict.
        let s = vb >> 2
        // One digit fewer: at most one of u' = 10·sp and w' = 10·(sp+1) lies in the interval.
        let sp = s / 10
        let upInside = bit(lower <= 40 &* sp)
        let wpInside = bit(40 &* sp &+ 40 <= upper)
        let shorter = bit(s >= 10) & (upInside ^ wpInside)
        // Otherwise the full length: u = s or w = s+1, whichever is in the interval, or the
        // closer of the two when both are (ties to even).
        let uInside = bit(lower <= 4 &* s)
        let wInside = bit(4 &* s &+ 4 <= upper)
        let mid = 4 &* s &+ 2
        let roundUp = bit(vb > mid) | (bit(vb == mid) & s)
        let oneIn = uInside ^ wInside
        let up = (oneIn & wInside) | ((oneIn ^ 1) & roundUp & 1)
        let mask = 0 &- shorter
        let digits = ((sp &+ wpInside) & mask) | ((s &+ up) & ~mask)
        return removeTrailingZeros(digits, k &+ Int(truncatingIfNeeded: shorter))
    }

    @inline(__always)
    static func bit(_ condition: Bool) -> UInt64 { condition ? 1 : 0 }

    /// The 192-bit product g × cp shifted right by 127 bits, rounded to odd (the low bit
    /// set when anything nonzero was shifted out).
    @inline(__always)
    static func roundToOdd(_ gHigh: UInt64, _ gLow: UInt64, _ cp: UInt64) -> UInt64 {
        let x = cp.multipliedFullWidth(by: gLow)
        let y = cp.multipliedFullWidth(by: gHigh)
        let (y0, carry) = y.low.addingReportingOverflow(x.high)
        let y1 = y.high &+ (carry ? 1 : 0)
        return (y1 &<< 1) | ((y0 | (0 &- y0)) >> 63)  // the second term: bit 63 of y0, or y0 != 0
    }

    @inline(__always)
    static func removeTrailingZeros(_ digits: UInt64, _ exponent: Int) -> (digits: UInt64, exponent: Int) {
        var d = digits, e = exponent
        while d % 10 == 0 {
            d /= 10
            e &+= 1
        }
        return (d, e)
    }

    // MARK: - Text

    /// "00" ... "99", two bytes a pair.
    @inline(__always)
    static var digitPairs: UnsafePointer<UInt8> {
        StaticString(
            "00010203040506070809101112131415161718192021222324252627282930313233343536373839404142434445464748495051525354555657585960616263646566676869707172737475767778798081828384858687888990919293949596979899"
        ).utf8Start
    }

    /// The number of decimal digits of `v` (0 for 0).
    @inline(__always)
    static func decimalLength(_ v: UInt64) -> Int {
        // floor(log10(v)) estimated from the bit length, corrected by one comparison.
        let bits = 64 &- (v | 1).leadingZeroBitCount
        let guess = (bits &* 1233) >> 12  // ≤ floor(log10(2^bits)), off by at most one
        return guess &+ (v >= powerOfTen(guess) ? 1 : 0)
    }

    @inline(__always)
    static func powerOfTen(_ n: Int) -> UInt64 {
        var p: UInt64 = 1
        switch n {
        case 0: p = 1
        case 1: p = 10
        case 2: p = 100
        case 3: p = 1_000
        case 4: p = 10_000
        case 5: p = 100_000
        case 6: p = 1_000_000
        case 7: p = 10_000_000
        case 8: p = 100_000_000
        case 9: p = 1_000_000_000
        case 10: p = 10_000_000_000
        case 11: p = 100_000_000_000
        case 12: p = 1_000_000_000_000
        case 13: p = 10_000_000_000_000
        case 14: p = 100_000_000_000_000
        case 15: p = 1_000_000_000_000_000
        case 16: p = 10_000_000_000_000_000
        case 17: p = 100_000_000_000_000_000
        case 18: p = 1_000_000_000_000_000_000
        default: p = 10_000_000_000_000_000_000
        }
        return p
    }

    /// Writes the `count` decimal digits of `v` at `out`, two at a time from the end.
    @inline(__always)
    static func writeDigits(_ v: UInt64, count: Int, to out: UnsafeMutablePointer<UInt8>) {
        let pairs = digitPairs
        var end = out + count
        var rest = v
        /// Writes the low eight digits of `rest` (in 32-bit arithmetic) before `end`.
        @inline(__always)
        func writeLowEightDigits() {
            var low = UInt32(truncatingIfNeeded: rest % 100_000_000)
            rest /= 100_000_000
            for _ in 0..<4 {
                let pair = Int(low % 100)
                low /= 100
                end -= 2
                end[0] = pairs[2 &* pair]
                end[1] = pairs[2 &* pair &+ 1]
            }
        }
        if rest >= 100_000_000 { writeLowEightDigits() }
        if rest > UInt64(UInt32.max) {
            // Only for integers with more than 17 digits: one more 8-digit block.
            writeLowEightDigits()
        }
        var high = UInt32(truncatingIfNeeded: rest)  // < 10^9 now
        while high >= 100 {
            let pair = Int(high % 100)
            high /= 100
            end -= 2
            end[0] = pairs[2 &* pair]
            end[1] = pairs[2 &* pair &+ 1]
        }
        if high >= 10 {
            end -= 2
            end[0] = pairs[2 &* Int(high)]
            end[1] = pairs[2 &* Int(high) &+ 1]
        } else {
            end -= 1
            end[0] = UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: high)
        }
    }

    /// Lays out `digits × 10^exponent` (0 < `digits` < 10^17) at `out` as Swift's
    /// `description` does; returns the length. Writes at most 25 bytes past `out`, of which
    /// those beyond the length are scratch.
    ///
    /// The digits are kept in registers as ASCII (8 per word) and stored a word at a time:
    /// building them in memory and copying them about would stall on store forwarding, and
    /// branching on their count would mispredict.
    @inline(__always)
    static func format(digits: UInt64, exponent: Int, fixedAllowed: Bool, to out: UnsafeMutablePointer<UInt8>) -> Int {
        let count = digitCount17(digits)
        // The 17 places of `digits`, leading zeros included, as a little-endian byte stream in
        // three words (place 16 in the low byte of the third); then without the leading zeros.
        let high = digits / 100_000_000  // < 10^9
        let first = digits / 10_000_000_000_000_000  // < 10; not high / 10^8, which waits on high
        let middle = ascii8(UInt32(truncatingIfNeeded: high &- first &* 100_000_000))
        let low = ascii8(UInt32(truncatingIfNeeded: digits &- high &* 100_000_000))
        let stream = (
            (first | 0x30) | middle &<< 8,
            middle >> 56 | low &<< 8,
            low >> 56
        )
        let d = dropBytes(stream, 17 &- count)
        let scientific = count &+ exponent &- 1  // the value is d.ddd × 10^scientific
        if fixedAllowed && scientific >= -4 {
            if scientific < 0 {
                // 0.000ddd: "0.000000", then the digits over the zeros they replace.
                store8(0x3030_3030_3030_2E30, to: out)  // "0.000000", little-endian
                let at = out + 1 + (0 &- scientific)
                store8(d.0, to: at)
                store8(d.1, to: at + 8)
                at[16] = UInt8(truncatingIfNeeded: d.2)
                return 1 &- scientific &+ count
            }
            if scientific < count &- 1 {
                // ddd.ddd: at most 16 digits on either side of the point.
                let integer = scientific &+ 1
                store8(d.0, to: out)
                if integer > 8 { store8(d.1, to: out + 8) }
                out[integer] = UInt8(ascii: ".")
                let fraction = dropBytes(d, integer)
                store8(fraction.0, to: out + integer + 1)
                if count &- integer > 8 { store8(fraction.1, to: out + integer + 9) }
                return count &+ 1
            }
            // ddd000.0 (at most 16 digits: the value is at most 2^53)
            store8(d.0, to: out)
            store8(d.1, to: out + 8)
            var i = count
            while i <= scientific {
                out[i] = UInt8(ascii: "0")
                i &+= 1
            }
            out[scientific &+ 1] = UInt8(ascii: ".")
            out[scientific &+ 2] = UInt8(ascii: "0")
            return scientific &+ 3
        }
        // d.ddde±XX: the first digit, a point, the rest (a lone digit has no point).
        let rest = dropBytes(d, 1)
        out[0] = UInt8(truncatingIfNeeded: d.0)
        out[1] = UInt8(ascii: ".")
        store8(rest.0, to: out + 2)
        store8(rest.1, to: out + 10)
        var length = count &+ (count > 1 ? 1 : 0)
        out[length] = UInt8(ascii: "e")
        out[length &+ 1] = scientific < 0 ? UInt8(ascii: "-") : UInt8(ascii: "+")
        length &+= 2
        var e = Int(truncatingIfNeeded: scientific.magnitude)
        if e >= 100 {
            let hundreds = e / 100
            out[length] = UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: hundreds)
            e &-= hundreds &* 100
            length &+= 1
        }
        copy2(digitPairs + 2 &* e, out + length)
        return length &+ 2
    }

    /// The 8 decimal places of `v` < 10^8 (leading zeros included) as ASCII, first place in
    /// the low byte; two places at a time from the pair table.
    @inline(__always)
    static func ascii8(_ v: UInt32) -> UInt64 {
        let pairs = UnsafeRawPointer(digitPairs)
        let upper = v / 10_000, lower = v &- upper &* 10_000
        let a = upper / 100, b = upper &- a &* 100
        let c = lower / 100, d = lower &- c &* 100
        let pa = UInt64(pairs.loadUnaligned(fromByteOffset: 2 &* Int(a), as: UInt16.self).littleEndian)
        let pb = UInt64(pairs.loadUnaligned(fromByteOffset: 2 &* Int(b), as: UInt16.self).littleEndian)
        let pc = UInt64(pairs.loadUnaligned(fromByteOffset: 2 &* Int(c), as: UInt16.self).littleEndian)
        let pd = UInt64(pairs.loadUnaligned(fromByteOffset: 2 &* Int(d), as: UInt16.self).littleEndian)
        return pa | pb &<< 16 | pc &<< 32 | pd &<< 48
    }

    /// A little-endian byte stream of up to 17 bytes in three words, without its first `n`
    /// bytes (0 ≤ n ≤ 16).
    @inline(__always)
    static func dropBytes(_ w: (UInt64, UInt64, UInt64), _ n: Int) -> (UInt64, UInt64, UInt64) {
        let words = n >> 3  // whole words to drop: 0, 1 or 2
        let w0 = words == 0 ? w.0 : words == 1 ? w.1 : w.2
        let w1 = words == 0 ? w.1 : words == 1 ? w.2 : 0
        let w2 = words == 0 ? w.2 : 0
        let bits = UInt64(truncatingIfNeeded: (n & 7) &<< 3)
        // x << (64 - bits) as (x << 1) << (63 - bits), which is 0 for bits == 0.
        return (
            w0 &>> bits | (w1 &<< 1) &<< (63 &- bits),
            w1 &>> bits | (w2 &<< 1) &<< (63 &- bits),
            w2 &>> bits
        )
    }

    /// The number of decimal digits of 0 < `v` < 10^17, as a sum of comparisons: no branch
    /// to mispredict, no table, no reading back the digits just stored (that would stall on
    /// store forwarding).
    @inline(__always)
    static func digitCount17(_ v: UInt64) -> Int {
        var count = 1
        var threshold: UInt64 = 10
        for _ in 0..<16 {
            count &+= v >= threshold ? 1 : 0
            threshold &*= 10
        }
        return count
    }

    @inline(__always)
    static func store8(_ littleEndian: UInt64, to: UnsafeMutablePointer<UInt8>) {
        UnsafeMutableRawPointer(to).storeBytes(of: littleEndian.littleEndian, as: UInt64.self)
    }

    @inline(__always)
    static func copy2(_ from: UnsafePointer<UInt8>, _ to: UnsafeMutablePointer<UInt8>) {
        UnsafeMutableRawPointer(to).storeBytes(of: UnsafeRawPointer(from).loadUnaligned(as: UInt16.self), as: UInt16.self)
    }
}
