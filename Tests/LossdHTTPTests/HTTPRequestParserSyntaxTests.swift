import LossdHTTP
import Testing

/// Field syntax (RFC 9112 section 5, RFC 9110 section 5) and the request line (RFC 9112 section 3).
@Suite("HTTPRequestParser: header field syntax")
struct HTTPRequestParserHeaderSyntaxTests {
    static let malformedFieldLines: [InputCase] = [
        InputCase("SP before colon", "Host : a\r\n"),
        InputCase("HTAB before colon", "X-Field\t: a\r\n"),
        InputCase("space inside name", "X Field: a\r\n"),
        InputCase("( in name", "X(Field: a\r\n"),
        InputCase("@ in name", "X@Field: a\r\n"),
        InputCase("quote in name", "X\"Field: a\r\n"),
        InputCase("non-ASCII letter in name", "X-Caf\u{E9}: a\r\n"),
        InputCase("0xFF in name", bytes: bytes("X-") + [0xFF] + bytes(": a\r\n")),
        InputCase("empty name", ": value\r\n"),
        InputCase("no colon", "NoColonHere\r\n"),
        InputCase("obs-fold with SP", "X-Folded: one\r\n two\r\n"),
        InputCase("obs-fold with HTAB", "X-Folded: one\r\n\ttwo\r\n"),
        InputCase("NUL in value", "X-Field: a\u{0}b\r\n"),
        InputCase("bare CR in value", "X-Field: a\rb\r\n"),
        InputCase("CR before CRLF", "X-Field: a\r\r\n"),
        InputCase("DEL in value", "X-Field: a\u{7F}b\r\n"),
        InputCase("ESC in value", "X-Field: a\u{1B}b\r\n"),
        InputCase("bare LF ends the field", "X-Field: a\n"),
        InputCase("bare LF ends the header section", "X-Field: a\r\n\n"),
    ]

    @Test(arguments: FeedMode.both, malformedFieldLines)
    func malformedFieldLineIs400(mode: FeedMode, testCase: InputCase) {
        let input = bytes("GET / HTTP/1.1\r\nHost: a\r\n") + testCase.input + bytes("\r\n")
        expectParseError(input, mode: mode, kind: .malformed, status: 400)
    }

    @Test(arguments: FeedMode.both)
    func whitespaceBeforeTheFirstFieldIs400(mode: FeedMode) {
        expectParseError("GET / HTTP/1.1\r\n Host: a\r\n\r\n", mode: mode, kind: .malformed, status: 400)
        expectParseError("GET / HTTP/1.1\r\n\tHost: a\r\n\r\n", mode: mode, kind: .malformed, status: 400)
    }

    @Test(arguments: FeedMode.both)
    func bareLFRequestLineEndingIs400(mode: FeedMode) {
        expectParseError("GET / HTTP/1.1\nHost: a\r\n\r\n", mode: mode, kind: .malformed, status: 400)
        expectParseError("GET / HTTP/1.1\n\n", mode: mode, kind: .malformed, status: 400)
    }

    /// Every byte that is not a tchar (except the colon itself) makes a field name invalid.
    static let nonTokenBytes: [Byte] = allBytes.filter { !isTchar($0.value) && $0.value != UInt8(ascii: ":") }

    @Test(arguments: FeedMode.both, nonTokenBytes)
    func fieldNameWithNonTokenByteIs400(mode: FeedMode, byte: Byte) {
        let input = bytes("GET / HTTP/1.1\r\nHost: a\r\nX") + [byte.value] + bytes("Y: v\r\n\r\n")
        expectParseError(input, mode: mode, kind: .malformed, status: 400)
    }

    @Test(arguments: FeedMode.both)
    func fieldNameMadeOfEveryTcharIsAccepted(mode: FeedMode) throws {
        let name = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
        let request = try parseOneRequest("GET / HTTP/1.1\r\nHost: a\r\n\(name): v\r\n\r\n", mode: mode)
        #expect(request.headers[name] == "v")
    }

    /// field-value bytes: HTAB, SP, VCHAR and obs-text are allowed; other controls and DEL are not.
    @Test(arguments: FeedMode.both, allBytes)
    func fieldValueByteIsAcceptedOnlyIfFieldVcharSpaceTabOrObsText(mode: FeedMode, byte: Byte) {
        let b = byte.value
        let input = bytes("GET / HTTP/1.1\r\nHost: a\r\nX-Value: a") + [b] + bytes("b\r\n\r\n")
        let allowed = b == 0x09 || (b >= 0x20 && b != 0x7F)
        let result = parse(input, mode: mode)
        if allowed {
            #expect(result.error == nil)
            #expect(result.requests.count == 1)
        } else {
            #expect(result.error?.kind == .malformed)
            #expect(result.error?.status.code == 400)
            #expect(result.events.isEmpty)
        }
    }
}

@Suite("HTTPRequestParser: request line")
struct HTTPRequestParserRequestLineTests {
    static let malformedRequestLines: [InputCase] = [
        InputCase("method only", "GET\r\nHost: a\r\n\r\n"),
        InputCase("missing target", "GET  HTTP/1.1\r\nHost: a\r\n\r\n"),
        InputCase("missing version", "GET /\r\nHost: a\r\n\r\n"),
        InputCase("missing version after SP", "GET / \r\nHost: a\r\n\r\n"),
        InputCase("double space after method", "GET  / HTTP/1.1\r\nHost: a\r\n\r\n"),
        InputCase("double space before version", "GET /  HTTP/1.1\r\nHost: a\r\n\r\n"),
        InputCase("trailing space", "GET / HTTP/1.1 \r\nHost: a\r\n\r\n"),
        InputCase("HTAB separator", "GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n"),
        InputCase("leading SP before method", " GET / HTTP/1.1\r\nHost: a\r\n\r\n"),
        InputCase("leading HTAB before method", "\tGET / HTTP/1.1\r\nHost: a\r\n\r\n"),
        InputCase("( in method", "GE(T / HTTP/1.1\r\nHost: a\r\n\r\n"),
        InputCase("/ in method", "GE/T / HTTP/1.1\r\nHost: a\r\n\r\n"),
        InputCase("space in target", "GET /a b HTTP/1.1\r\nHost: a\r\n\r\n"),
        InputCase("control in target", "GET /a\u{01}b HTTP/1.1\r\nHost: a\r\n\r\n"),
        InputCase("DEL in target", "GET /a\u{7F}b HTTP/1.1\r\nHost: a\r\n\r\n"),
        InputCase("non-ASCII in target", "GET /caf\u{E9} HTTP/1.1\r\nHost: a\r\n\r\n"),
        InputCase("relative target", "GET foo HTTP/1.1\r\nHost: a\r\n\r\n"),
        InputCase("relative target with dots", "GET ../etc/passwd HTTP/1.1\r\nHost: a\r\n\r\n"),
        InputCase("scheme without //", "GET http:example.com/ HTTP/1.1\r\nHost: a\r\n\r\n"),
        InputCase("target starting with ?", "GET ?x=1 HTTP/1.1\r\nHost: a\r\n\r\n"),
        InputCase("asterisk plus path", "OPTIONS */x HTTP/1.1\r\nHost: a\r\n\r\n"),
        InputCase("bare CR in request line", "GET /\r HTTP/1.1\r\nHost: a\r\n\r\n"),
        InputCase("bare CR before CRLF", "GET / HTTP/1.1\r\r\nHost: a\r\n\r\n"),
        InputCase("only CR", "\rGET / HTTP/1.1\r\nHost: a\r\n\r\n"),
    ]

    @Test(arguments: FeedMode.both, malformedRequestLines)
    func malformedRequestLineIs400(mode: FeedMode, testCase: InputCase) {
        expectParseError(testCase.input, mode: mode, kind: .malformed, status: 400)
    }

    @Test(arguments: FeedMode.both, allBytes)
    func methodByteIsAcceptedOnlyIfTchar(mode: FeedMode, byte: Byte) {
        let input = bytes("G") + [byte.value] + bytes("T / HTTP/1.1\r\nHost: a\r\n\r\n")
        let result = parse(input, mode: mode)
        if isTchar(byte.value) {
            #expect(result.error == nil)
            #expect(result.requests.first?.method == String(decoding: input.prefix(3), as: UTF8.self))
        } else {
            #expect(result.error?.status.code == 400)
            #expect(result.events.isEmpty)
        }
    }

    @Test(arguments: FeedMode.both, allBytes)
    func targetByteIsAcceptedOnlyIfVisibleASCII(mode: FeedMode, byte: Byte) {
        let input = bytes("GET /a") + [byte.value] + bytes("b HTTP/1.1\r\nHost: a\r\n\r\n")
        let result = parse(input, mode: mode)
        if byte.value > 0x20 && byte.value < 0x7F {
            #expect(result.error == nil)
            #expect(result.requests.first?.head.target == String(decoding: input[4..<8], as: UTF8.self))
        } else {
            #expect(result.error?.status.code == 400)
            #expect(result.events.isEmpty)
        }
    }

    @Test(arguments: FeedMode.both)
    func leadingEmptyLinesAreSkipped(mode: FeedMode) throws {
        let request = try parseOneRequest("\r\n\r\nGET /after-blank HTTP/1.1\r\nHost: a\r\n\r\n", mode: mode)
        #expect(request.path == "/after-blank")
    }

    @Test(arguments: FeedMode.both)
    func leadingEmptyLinesUpToTheLimitAreSkipped(mode: FeedMode) throws {
        let limits = HTTPParserLimits()
        let blank = String(repeating: "\r\n", count: limits.maxLeadingEmptyLines)
        let request = try parseOneRequest(blank + "GET / HTTP/1.1\r\nHost: a\r\n\r\n", mode: mode, limits: limits)
        #expect(request.method == "GET")
    }

    @Test(arguments: FeedMode.both)
    func leadingEmptyLinesBeyondTheLimitAre400(mode: FeedMode) {
        let limits = HTTPParserLimits()
        let blank = String(repeating: "\r\n", count: limits.maxLeadingEmptyLines + 1)
        expectParseError(blank + "GET / HTTP/1.1\r\nHost: a\r\n\r\n", mode: mode, kind: .malformed, status: 400)
        // And without anything after them: the error must not wait for the request line.
        expectParseError(blank, mode: mode, kind: .malformed, status: 400)

        var none = HTTPParserLimits()
        none.maxLeadingEmptyLines = 0
        expectParseError("\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", mode: mode, kind: .malformed, status: 400, limits: none)
    }

    @Test(arguments: FeedMode.both)
    func leadingBareLFIs400(mode: FeedMode) {
        expectParseError("\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", mode: mode, kind: .malformed, status: 400)
    }
}
