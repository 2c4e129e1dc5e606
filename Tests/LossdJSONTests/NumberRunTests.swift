import LossdJSON
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// The tensor fast paths (the C run scanner, the matrix's second half read on another
/// thread) against independent references: glibc's strtod for every value, and the reader
/// with the fast path's threshold out of reach for every outcome, errors included.
@Suite("JSON number runs")
struct NumberRunTests {
    /// A canonical rendering of a parse outcome: shapes, exact bit patterns, error offsets.
    static func outcome(_ text: String, parallelRowsMinimumBytes: Int) -> String {
        do {
            return render(try JSONReader.parse(Array(text.utf8), limits: JSONLimits(parallelRowsMinimumBytes: parallelRowsMinimumBytes)))
        } catch {
            return "error \(error)"
        }
    }

    static func render(_ node: JSONNode) -> String {
        switch node {
        case .null: "null"
        case .bool(let b): "\(b)"
        case .number(let x): "n\(x.bitPattern)"
        case .string(let s): "s\(s)"
        case .array(let items): "[" + items.map(render).joined(separator: ",") + "]"
        case .object(let o): "{" + o.members.map { "\($0.key):\(render($0.value))" }.joined(separator: ",") + "}"
        case .numbers(let n): "T\(n.shape)" + n.values.map { "\($0.bitPattern)" }.joined(separator: ",")
        }
    }

    static func strtodValue(_ text: String) -> Double { strtod(text, nil) }

    /// Number texts of every shape the run scanner meets or hands back: shortest doubles,
    /// long mantissas, leading fraction zeros, exponents, rounding edges, the extremes.
    static func numberTexts(count: Int, seed: UInt64) -> [String] {
        var state = seed
        func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        var texts = [
            "0", "-0", "0.0", "-0.0", "0e5", "1e308", "1.7976931348623157e308", "2.2250738585072014e-308",
            "4.9e-324", "1e-400", "1e400", "9007199254740993", "9007199254740992.5", "123456789012345678901234567890",
            "0.1", "0.30000000000000004", "1E+2", "1e-2", "12345678", "1234567890123456789", "12345678901234567890",
            "0.000000000000000000001", "2.5e-5", "-7.3786976294838206e19",
        ]
        while texts.count < count {
            let r = next()
            switch r % 5 {
            case 0:
                texts.append("\(Double(bitPattern: next() & 0x7FEF_FFFF_FFFF_FFFF))")
            case 1:
                texts.append("\((Double(next() >> 11) / Double(1 << 53) - 0.5) * 20)")
            case 2:
                let digits = 1 + Int(next() % 24)
                var text = (next() & 1 == 0 ? "-" : "") + String(1 + next() % 9)
                for _ in 1..<digits { text += String(next() % 10) }
                if digits > 1 && next() & 1 == 0 { text.insert(".", at: text.index(text.startIndex, offsetBy: text.hasPrefix("-") ? 2 : 1)) }
                if next() % 3 == 0 { text += "e\(Int(next() % 80) - 40)" }
                texts.append(text)
            case 3:
                texts.append("0.\(String(repeating: "0", count: Int(next() % 6)))\(next() % 1_000_000_000_000)")
            default:
                texts.append("\(Double(Float(bitPattern: UInt32(truncatingIfNeeded: next()) & 0x7F7F_FFFF)))")
            }
        }
        return texts
    }

    @Test func everyValueMatchesStrtod() throws {
        let texts = Self.numberTexts(count: 20_000, seed: 7)
        let separators = [",", ", ", " ,\n\t", ","]
        var document = "["
        for (k, text) in texts.enumerated() {
            if k > 0 { document += separators[k % separators.count] }
            document += text
        }
        document += "]"
        guard case .numbers(let array) = try JSONReader.parse(Array(document.utf8)) else {
            Issue.record("not packed")
            return
        }
        #expect(array.values.count == texts.count)
        for (text, value) in zip(texts, array.values) where value.bitPattern != Self.strtodValue(text).bitPattern {
            Issue.record("\(text): \(value), strtod \(Self.strtodValue(text))")
        }
    }

    @Test(arguments: [
        "[01]", "[1.]", "[1e]", "[-]", "[1.5e+]", "[.5]", "[1, 2, 00.5]", "[[1, 2], [3, -]]", "[1,]", "[1 2]",
        "[1, 2, 3", "[1, 2, 3,",
    ])
    func invalidNumbersFailWhereTheGeneralReaderFails(_ text: String) {
        #expect(Self.outcome(text, parallelRowsMinimumBytes: 0).hasPrefix("error"))
        #expect(Self.outcome(text, parallelRowsMinimumBytes: 0) == Self.outcome(text, parallelRowsMinimumBytes: .max))
    }

    /// Matrices whose second half is read on another thread (the threshold at 0 splits every
    /// matrix) come out exactly as when one thread reads them, whatever follows the matrix and
    /// whatever is wrong with its second half.
    @Test(arguments: [
        #"[[1, 2], [3, 4], [5, 6], [7, 8]]"#,
        #"{"a": [[1, 2], [3, 4]], "b": [[5, 6], [7, 8], [9, 10]]}"#,
        #"{"a": [[1, 2], [3, 4]], "b": "[[5, 6]]", "c": [[1]]}"#,
        #"[[1, 2], [3, 4], [5, 6], [7]]"#,
        #"[[1, 2], [3, 4], [5, 6], [7, 8, 9]]"#,
        #"[[1, 2], [3, 4], [5, 6], [7, "x"]]"#,
        #"[[1, 2], [3, 4], [5, 6], [7, 01]]"#,
        #"[[1, 2], [3, 4], [5, 6], [7, 8]"#,
        #"[[1, 2] , [3, 4]  ,[5,6],[ 7 , 8 ] ]"#,
        #"[[], [], []]"#,
        #"[[[1], [2]], [[3], [4]], [[5], [6]]]"#,
        #"[[1, 2], [3, 4], [5, 6], [7, 8]] trailing"#,
        #"[[1, 2], [3, 4], [5, 6], [7, 8], 9]"#,
        #"[[1, 2], [3, 4], [5, 6], [7, 8], [9, 1e99999]]"#,
        #"[[1, 2], [3, 4], [5, 6], [7, 8], [9, 123456789012345678901234567890]]"#,
    ])
    func parallelRowsChangeNothing(_ text: String) {
        #expect(Self.outcome(text, parallelRowsMinimumBytes: 0) == Self.outcome(text, parallelRowsMinimumBytes: .max))
    }

    @Test func aReservationThatOvershootsIsCutToSize() throws {
        // A 2 KiB first row, then a long string: the reservation made for "the rest of the
        // input" must not stay with the small matrix.
        let row = "[" + Array(repeating: "0.5", count: 512).joined(separator: ",") + "]"
        let document = "{\"m\": [\(row), \(row)], \"s\": \"" + String(repeating: "x", count: 400_000) + "\"}"
        guard case .object(let object) = try JSONReader.parse(Array(document.utf8)), case .numbers(let m)? = object["m"]
        else {
            Issue.record("not parsed as a matrix")
            return
        }
        #expect(m.shape == [2, 512])
        #expect(m.values.capacity <= 2 * m.values.count + 4096)
    }

    @Test func aLargeMatrixSplitAtEveryPointMatchesOneThread() {
        // Rows of varying text length, so the split point falls in different places.
        let texts = Self.numberTexts(count: 3_000, seed: 11)
        for columns in [1, 3, 7] {
            let rows = texts.count / columns
            var document = "{\"m\": ["
            for r in 0..<rows {
                if r > 0 { document += r % 2 == 0 ? "," : ", " }
                document += "[" + texts[(r * columns)..<((r + 1) * columns)].joined(separator: ",") + "]"
            }
            document += "], \"tail\": [[1, 2], [3, 4]]}"
            let reference = Self.outcome(document, parallelRowsMinimumBytes: .max)
            #expect(reference.hasPrefix("{m:T[\(rows), \(columns)]"))
            #expect(Self.outcome(document, parallelRowsMinimumBytes: 0) == reference)
        }
    }
}
