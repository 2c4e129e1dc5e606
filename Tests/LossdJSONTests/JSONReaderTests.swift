import LossdJSON
import Testing

func parse(_ text: String) throws(JSONSyntaxError) -> JSONNode { try JSONReader.parse(Array(text.utf8)) }

@Suite("JSON reader")
struct JSONReaderTests {
    @Test func nestedNumericArraysArePackedRowMajor() throws {
        guard case .numbers(let array) = try parse("[[1, 2.5, -3], [4e1, 5, 6]]") else {
            Issue.record("not packed")
            return
        }
        #expect(array.shape == [2, 3])
        #expect(array.values == [1, 2.5, -3, 40, 5, 6])
    }

    @Test func threeDimensionalArraysArePacked() throws {
        guard case .numbers(let array) = try parse("[[[1],[2]],[[3],[4]],[[5],[6]]]") else {
            Issue.record("not packed")
            return
        }
        #expect(array.shape == [3, 2, 1])
        #expect(array.values == [1, 2, 3, 4, 5, 6])
    }

    @Test func emptyArraysKeepTheirShape() throws {
        guard case .numbers(let flat) = try parse("[]"), case .numbers(let nested) = try parse("[[], []]") else {
            Issue.record("not packed")
            return
        }
        #expect(flat.shape == [0])
        #expect(nested.shape == [2, 0])
    }

    @Test(arguments: ["[[1, 2], [3]]", "[[1, 2], 3]", "[1, [2]]", "[[1], [[2]]]", "[1, \"a\"]", "[[1], [null]]"])
    func raggedOrMixedArraysStayGeneralArrays(_ text: String) throws {
        guard case .array = try parse(text) else {
            Issue.record("\(text) was packed")
            return
        }
    }

    @Test func objectsKeepMemberOrder() throws {
        guard case .object(let object) = try parse(#"{"b": 1, "a": [1, 2], "c": {"d": null}, "e": "x"}"#) else {
            Issue.record("not an object")
            return
        }
        #expect(object.keys == ["b", "a", "c", "e"])
        guard case .string("x") = object["e"] else {
            Issue.record("e")
            return
        }
    }

    @Test func stringEscapesAndUnicode() throws {
        guard case .string(let s) = try parse(#""a\"b\\c\/\n\t\u00e9\ud83d\ude00""#) else {
            Issue.record("not a string")
            return
        }
        #expect(s == "a\"b\\c/\n\té😀")
    }

    @Test(arguments: [
        ("", 0), ("{", 1), ("[1,]", 3), ("[1 2]", 3), ("{\"a\" 1}", 5), ("{\"a\":1,}", 7), ("tru", 0), ("nul", 0),
        ("\"abc", 4), ("\"\\x\"", 2), ("\"\u{1}\"", 1), ("[01]", 2), ("{\"a\":1}{", 7), ("{\"a\":1,\"a\":2}", 7),
        ("\"\\ud800\"", 7), ("[1e]", 3), ("\n\n  ]", 4),
    ])
    func malformedDocumentsReportWhere(_ text: String, _ offset: Int) {
        do {
            _ = try parse(text)
            Issue.record("\(text.debugDescription) parsed")
        } catch {
            #expect(error.offset == offset, "\(text.debugDescription): \(error)")
        }
    }

    @Test func errorsNameLineAndColumn() {
        do {
            _ = try parse("{\n  \"a\": [1, 2,\n  x]\n}")
            Issue.record("parsed")
        } catch {
            #expect(error.line == 3)
            #expect(error.column == 3)
        }
    }

    @Test func depthIsLimited() {
        let deep = String(repeating: "[", count: 100) + String(repeating: "]", count: 100)
        #expect(throws: JSONSyntaxError.self) { try JSONReader.parse(Array(deep.utf8), limits: JSONLimits(maxDepth: 64)) }
        let deepObjects = String(repeating: "{\"a\":", count: 100) + "1" + String(repeating: "}", count: 100)
        #expect(throws: JSONSyntaxError.self) { try JSONReader.parse(Array(deepObjects.utf8)) }
        let ok = String(repeating: "[", count: 10) + "1" + String(repeating: "]", count: 10)
        #expect(throws: Never.self) { try JSONReader.parse(Array(ok.utf8)) }
    }

    @Test func invalidUTF8InStringsIsRejected() {
        #expect(throws: JSONSyntaxError.self) { try JSONReader.parse([0x22, 0xFF, 0x22]) }
    }

    @Test func largeNumbersOverflowToInfinityForTheCallerToReject() throws {
        guard case .numbers(let array) = try parse("[1e400, -1e400, 1]") else {
            Issue.record("not packed")
            return
        }
        #expect(array.values[0] == .infinity && array.values[1] == -.infinity)
    }
}
