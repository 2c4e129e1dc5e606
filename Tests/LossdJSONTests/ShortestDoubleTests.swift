import Foundation
import LossdJSON
import Testing

/// A seeded SplitMix64, so a failing shard can be rerun.
private struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// The significand digits (no leading or trailing zeros) and decimal exponent of a number's
/// text, `digits × 10^exponent`: what `Double.description` says the shortest decimal is.
private func decimalDigits(of text: UnsafeBufferPointer<UInt8>) -> (digits: UInt64, exponent: Int) {
    var digits: UInt64 = 0
    var exponent = 0
    var afterPoint = false
    var inExponent = false
    var exponentNegative = false
    var explicit = 0
    for byte in text {
        switch byte {
        case UInt8(ascii: "-") where inExponent: exponentNegative = true
        case UInt8(ascii: "-"), UInt8(ascii: "+"): continue
        case UInt8(ascii: "."): afterPoint = true
        case UInt8(ascii: "e"), UInt8(ascii: "E"): inExponent = true
        case UInt8(ascii: "0")...UInt8(ascii: "9"):
            let d = UInt64(byte - UInt8(ascii: "0"))
            if inExponent {
                explicit = explicit * 10 + Int(d)
            } else {
                digits = digits * 10 + d
                if afterPoint { exponent -= 1 }
            }
        default: return (0, Int.min)
        }
    }
    exponent += exponentNegative ? -explicit : explicit
    while digits != 0 && digits % 10 == 0 {
        digits /= 10
        exponent += 1
    }
    return (digits, exponent)
}

/// Whether `text` is exactly one JSON number: `-? (0 | [1-9][0-9]*) (\.[0-9]+)? ([eE][+-]?[0-9]+)?`.
private func isJSONNumber(_ text: UnsafeBufferPointer<UInt8>) -> Bool {
    var i = 0
    let n = text.count
    func digit(_ i: Int) -> Bool { i < n && text[i] >= UInt8(ascii: "0") && text[i] <= UInt8(ascii: "9") }
    if i < n && text[i] == UInt8(ascii: "-") { i += 1 }
    guard digit(i) else { return false }
    if text[i] == UInt8(ascii: "0") {
        i += 1
    } else {
        while digit(i) { i += 1 }
    }
    if i < n && text[i] == UInt8(ascii: ".") {
        i += 1
        guard digit(i) else { return false }
        while digit(i) { i += 1 }
    }
    if i < n && (text[i] == UInt8(ascii: "e") || text[i] == UInt8(ascii: "E")) {
        i += 1
        if i < n && (text[i] == UInt8(ascii: "+") || text[i] == UInt8(ascii: "-")) { i += 1 }
        guard digit(i) else { return false }
        while digit(i) { i += 1 }
    }
    return i == n
}

/// Checks one value against `description` (text, digits and exponent), the JSON grammar and
/// strtod; appends its text and a comma to `document` for a reader round trip. Returns the
/// number of failures (recording the first few).
private func check(_ value: Double, buffer: UnsafeMutablePointer<UInt8>, document: inout [UInt8], failures: inout Int) {
    let count = JSONNumberWriter.writeShortest(value, to: buffer)
    let text = UnsafeBufferPointer(start: buffer, count: count)
    var ok = count <= 24
    var description = value.description
    // Byte loops over buffers, not generic sequence algorithms, which are slow in debug builds.
    description.withUTF8 { swiftText in
        ok = ok && swiftText.count == count && memcmp(swiftText.baseAddress!, buffer, count) == 0
        if value != 0 {
            let ours = JSONNumberWriter.shortestDecimal(value)
            let swift = decimalDigits(of: swiftText)
            ok = ok && ours.digits == swift.digits && ours.exponent == swift.exponent
        }
    }
    ok = ok && isJSONNumber(text)
    buffer[count] = 0
    let parsed = buffer.withMemoryRebound(to: CChar.self, capacity: count + 1) { strtod($0, nil) }
    ok = ok && parsed.bitPattern == value.bitPattern
    if !ok {
        failures += 1
        if failures <= 5 {
            Issue.record(
                "\(value.bitPattern) (\(description)): wrote \(String(decoding: text, as: UTF8.self)), digits \(JSONNumberWriter.shortestDecimal(value)), strtod \(parsed)"
            )
        }
    }
    document.append(contentsOf: text)
    document.append(UInt8(ascii: ","))
}

/// Runs `check` over `values`, then parses all their texts back with the JSON reader.
private func checkAll(_ values: [Double]) throws {
    var document: [UInt8] = [UInt8(ascii: "[")]
    var expected: [Double] = []
    var failures = 0
    let buffer = UnsafeMutablePointer<UInt8>.allocate(capacity: JSONNumberWriter.maxLength + 1)
    defer { buffer.deallocate() }
    document.reserveCapacity(values.count * 25 + 2)
    expected.reserveCapacity(values.count)
    for i in 0..<values.count where values[i].isFinite {
        check(values[i], buffer: buffer, document: &document, failures: &failures)
        expected.append(values[i])
    }
    #expect(failures == 0)
    guard !expected.isEmpty else { return }
    document[document.count - 1] = UInt8(ascii: "]")
    guard case .numbers(let array) = try JSONReader.parse(document) else {
        Issue.record("not a numeric array")
        return
    }
    #expect(array.values.count == expected.count)
    var mismatches = 0
    for i in 0..<min(array.values.count, expected.count) where array.values[i].bitPattern != expected[i].bitPattern {
        mismatches += 1
        if mismatches <= 5 { Issue.record("reader: \(expected[i]) came back as \(array.values[i])") }
    }
    #expect(mismatches == 0)
}

@Suite("Shortest round-trip double writer")
struct ShortestDoubleTests {
    /// 2,097,152 random bit patterns over every finite double, both signs, in 8 shards.
    @Test(arguments: 0..<8)
    func randomBitPatternsMatchDescription(_ shard: Int) throws {
        var generator = SplitMix(state: 0x5EED_0000 + UInt64(shard))
        var values = [Double](repeating: 0, count: 262_144)
        for i in 0..<values.count { values[i] = Double(bitPattern: generator.next()) }
        try checkAll(values)
    }

    /// Values shaped like gradients and probabilities, and short decimals, whose rounding
    /// intervals hold shorter candidates more often than random bits do.
    @Test func typicalValuesMatchDescription() throws {
        var generator = SplitMix(state: 7)
        var values: [Double] = []
        for _ in 0..<100_000 { values.append(Double.random(in: -1...1, using: &generator) * 1e-3) }
        for _ in 0..<100_000 { values.append(Double.random(in: 0..<1, using: &generator)) }
        for _ in 0..<50_000 {
            // A few significant digits at a random exponent: "123e-7" and the like.
            let digits = Int.random(in: 1...999_999, using: &generator)
            let exponent = Int.random(in: -330...310, using: &generator)
            values.append(strtod("\(digits)e\(exponent)", nil))
        }
        for _ in 0..<50_000 {
            values.append(Double(Int64.random(in: -(1 << 60)...(1 << 60), using: &generator)))
            values.append(Double(Int64.random(in: -(1 << 60)...(1 << 60), using: &generator)) / 1024)
        }
        try checkAll(values)
    }

    @Test func edgeCasesMatchDescription() throws {
        var values: [Double] = [
            // Subnormals by bit pattern (their literals would warn about lost precision).
            Double(bitPattern: 1), Double(bitPattern: 2), Double(bitPattern: 3), Double(bitPattern: 0x000F_FFFF_FFFF_FFFF),
            2.2250738585072014e-308, Double(bitPattern: 0x000F_FFFF_FFFF_FFFE), 1.7976931348623157e308, 1.7976931348623155e308,
            0.1, 0.2, 0.3, 0.7, 1.0 / 3, 2.0 / 3, 0.1 + 0.2, 1e23, 9.999999999999999e22, 8.41e21,
            Double(bitPattern: 0x0000_5C0B_A5AD_35A2), 123.456, 0.001, 0.0001,
            9.9e-5, 1e-5, 1.5e-7, 1e15, 1e16, 9007199254740992, 9007199254740994, 9007199254740990,
            4503599627370496.5, 4503599627370497.5, 1e15 + 0.5, 999999999999999.9, 1e21, 1e22,
            Double.pi, Double.ulpOfOne, 1 + Double.ulpOfOne, 1 - Double.ulpOfOne / 2, 1.0, 2.0,
            0.5, 1e100, 1e-100, 1e300, 1e-300, 2.9802322387695312e-8, 7.450580596923828e-9,
            Double.leastNonzeroMagnitude, Double.leastNormalMagnitude, Double.greatestFiniteMagnitude,
            (1e-4).nextDown, (1e-4).nextUp, (9007199254740992.0).nextDown, (9007199254740992.0).nextUp,
        ]
        // Every power of two with its neighbours (the asymmetric intervals at 2^e).
        for e in -1074...1023 {
            let p = Double(sign: .plus, exponent: e, significand: 1)
            values += [p, p.nextUp, p.nextDown, p.nextUp.nextUp, p.nextDown.nextDown]
        }
        // Every power of ten in range with its neighbours.
        for e in -323...308 {
            let p = strtod("1e\(e)", nil)
            values += [p, p.nextUp, p.nextDown, strtod("5e\(e)", nil), strtod("9.999999999999999e\(e)", nil)]
        }
        // The smallest and largest subnormals, and the ones below the normal boundary.
        for f in UInt64(1)...2_000 {
            values.append(Double(bitPattern: f))
            values.append(Double(bitPattern: 0x000F_FFFF_FFFF_FFFF - f + 1))
            values.append(Double(bitPattern: 0x0010_0000_0000_0000 + f))
            values.append(Double(bitPattern: 0x7FEF_FFFF_FFFF_FFFF - f + 1))
        }
        // Integers around 2^53 and 10^15..10^17.
        for i in -1_000...1_000 {
            values.append(9_007_199_254_740_992 + Double(i))
            values.append(1e15 + Double(i) / 4)
            values.append(1e16 + Double(i) * 2)
            values.append(1e17 + Double(i) * 16)
        }
        try checkAll(values + values.map { -$0 })
    }

    @Test func zerosAndLayout() throws {
        var bytes: [UInt8] = []
        for (value, text) in [
            (0.0, "0.0"), (-0.0, "-0.0"), (0.001, "0.001"), (123.456, "123.456"), (1e-5, "1e-05"),
            (1e16, "1e+16"), (-1.5e-7, "-1.5e-07"), (Double.leastNonzeroMagnitude, "5e-324"), (1e15, "1000000000000000.0"),
            (1.7976931348623157e308, "1.7976931348623157e+308"), (0.3, "0.3"), (1.0 / 3, "0.3333333333333333"),
            (-2.5, "-2.5"), (0.0001, "0.0001"), (100, "100.0"), (1234.5, "1234.5"),
            (.nan, "null"), (.infinity, "null"), (-.infinity, "null"),
        ] {
            bytes.removeAll(keepingCapacity: true)
            JSONNumberWriter.appendShortest(value, to: &bytes)
            #expect(String(decoding: bytes, as: UTF8.self) == text)
        }
        bytes.removeAll()
        JSONNumberWriter.appendShortest(-0.0, to: &bytes)
        #expect(strtod(String(decoding: bytes, as: UTF8.self), nil).bitPattern == (-0.0).bitPattern)
        guard case .numbers(let array) = try JSONReader.parse(Array("[-0.0, 0.0]".utf8)) else {
            Issue.record("not packed")
            return
        }
        #expect(array.values.map(\.bitPattern) == [(-0.0).bitPattern, 0.0.bitPattern])
    }

    @Test func integersMatchString() {
        var generator = SplitMix(state: 11)
        var values: [Int64] = [0, 1, -1, 9, 10, 99, 100, Int64.max, Int64.min, Int64.max - 1, Int64.min + 1]
        for p in 0..<19 {
            let t = (0..<p).reduce(Int64(1)) { a, _ in a * 10 }
            values += [t, t - 1, t + 1, -t, -(t - 1)]
        }
        for _ in 0..<100_000 {
            let v = Int64(bitPattern: generator.next())
            values += [v, v >> Int64.random(in: 0..<63, using: &generator)]
        }
        var bytes: [UInt8] = []
        var failures = 0
        for v in values {
            bytes.removeAll(keepingCapacity: true)
            JSONNumberWriter.appendInteger(v, to: &bytes)
            if String(decoding: bytes, as: UTF8.self) != String(v) {
                failures += 1
                if failures <= 5 { Issue.record("\(v) wrote \(String(decoding: bytes, as: UTF8.self))") }
            }
        }
        #expect(failures == 0)
    }
}
