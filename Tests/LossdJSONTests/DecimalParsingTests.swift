import Foundation
import LossdJSON
import Testing

/// Parses a whole string as one JSON number.
func parseNumber(_ text: String) throws -> Double {
    let bytes = Array(text.utf8)
    return try bytes.withUnsafeBufferPointer { buffer in
        let scanned = try DecimalParsing.scan(buffer, from: 0)
        guard scanned.end == buffer.count else { throw DecimalParsing.Failure.invalidSyntax(at: scanned.end) }
        return scanned.value
    }
}

/// The exact oracle: glibc's strtod, correctly rounded.
func oracle(_ text: String) -> Double { strtod(text, nil) }

@Suite("Correctly rounded number parsing")
struct DecimalParsingTests {
    @Test func shortestRoundTripStringsOfRandomDoublesParseBackExactly() throws {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<20_000 {
            let value = Double(bitPattern: UInt64.random(in: 0..<0x7FF0_0000_0000_0000, using: &generator))
            let text = "\(value)"
            #expect(try parseNumber(text).bitPattern == value.bitPattern, "\(text)")
            #expect(try parseNumber("-" + text).bitPattern == (-value).bitPattern, "-\(text)")
        }
    }

    @Test func seventeenDigitFormsParseBackExactly() throws {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<20_000 {
            let value = Double.random(in: -1e6...1e6, using: &generator) * pow(10, Double(Int.random(in: -300...300)))
            guard value.isFinite else { continue }
            let text = String(format: "%.16e", value)
            #expect(try parseNumber(text).bitPattern == value.bitPattern, "\(text)")
        }
    }

    @Test(arguments: [
        "0", "-0", "1", "-1", "0.1", "0.2", "0.3", "1e0", "1E+2", "1e-2", "123456789", "9007199254740992",
        "9007199254740993", "9007199254740995", "18446744073709551615", "18446744073709551616",
        "1.7976931348623157e308", "1.7976931348623158e308", "2.2250738585072014e-308",
        "2.2250738585072011e-308", "4.9e-324", "5e-324", "2.4703282292062327e-324", "2.4703282292062328e-324",
        "1e-400", "0.000000000000000000000000000000000001", "3.14159265358979323846264338327950288",
        "2.225073858507201136057409796709131975934819546351645648e-308", "7.2057594037927933e16",
        "1448997445238699", "9.109383701528e-31", "6.02214076e23", "1e22", "1e23", "8.98846567431158e307",
        "0.1e1", "100000000000000000000000", "1.00000000000000011102230246251565404236316680908203125",
        "1.00000000000000011102230246251565404236316680908203124", "1.00000000000000011102230246251565404236316680908203126",
    ])
    func edgeCasesMatchTheExactOracle(_ text: String) throws {
        #expect(try parseNumber(text).bitPattern == oracle(text).bitPattern)
    }

    @Test func subnormalsAreExact() throws {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<5_000 {
            let value = Double(bitPattern: UInt64.random(in: 1..<0x0010_0000_0000_0000, using: &generator))
            #expect(try parseNumber("\(value)").bitPattern == value.bitPattern)
            let text = String(format: "%.20e", value)
            #expect(try parseNumber(text).bitPattern == oracle(text).bitPattern, "\(text)")
        }
    }

    @Test func exponentsAtTheLimits() throws {
        #expect(try parseNumber("1e308") == 1e308)
        #expect(try parseNumber("1e309") == .infinity)
        #expect(try parseNumber("-1e400") == -.infinity)
        #expect(try parseNumber("1e-323") == oracle("1e-323"))
        #expect(try parseNumber("1e-324") == 0)
        #expect(try parseNumber("1e-999999999999") == 0)
        #expect(try parseNumber("1e999999999999") == .infinity)
        #expect(try parseNumber("0e999999999999") == 0)
        #expect(try parseNumber("0.0000001e-310") == oracle("0.0000001e-310"))
        #expect(try parseNumber("123456789012345678901234567890e-330") == oracle("123456789012345678901234567890e-330"))
    }

    @Test func eightHundredDigitMantissasRoundCorrectly() throws {
        // Just above, at and below the half-way point between 1 and its successor, in 800 digits.
        let half = "1.00000000000000011102230246251565404236316680908203125"
        for tail in ["", "0000000001", "9"] {
            let text = half + tail + String(repeating: "0", count: 800 - half.count - tail.count)
            #expect(try parseNumber(text).bitPattern == oracle(text).bitPattern)
        }
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<200 {
            var digits = String(Int.random(in: 1...9, using: &generator))
            for _ in 0..<799 { digits += String(Int.random(in: 0...9, using: &generator)) }
            let text = digits.prefix(1) + "." + digits.dropFirst() + "e\(Int.random(in: -320...300, using: &generator))"
            #expect(try parseNumber(String(text)).bitPattern == oracle(String(text)).bitPattern)
        }
    }

    @Test(arguments: [
        "", "-", "+1", "01", "-01", "1.", ".5", "1e", "1e+", "1.e5", "0x10", "NaN", "Infinity", "-Infinity",
        "1_000", " 1", "1 ", "--1", "1.5.2", "1e5.5", "١",
    ])
    func invalidFormsAreRejected(_ text: String) {
        #expect(throws: DecimalParsing.Failure.self) { try parseNumber(text) }
    }

    @Test func integerLiteralsAreFlagged() throws {
        let bytes = Array("42".utf8), fractional = Array("42.0".utf8)
        #expect(try bytes.withUnsafeBufferPointer { try DecimalParsing.scan($0, from: 0) }.isIntegerLiteral)
        #expect(try !fractional.withUnsafeBufferPointer { try DecimalParsing.scan($0, from: 0) }.isIntegerLiteral)
    }
}
