import LossdHTTP
import Testing

// Requests that parse: request line forms, bodies, versions, connection handling and
// header values. Topic files alongside this one hold the error cases, chunked bodies,
// limits and pipelining. Helpers live in ParserTestSupport.swift.

@Suite("HTTPRequestParser: requests and targets")
struct HTTPRequestParserRequestTests {
    @Test(arguments: FeedMode.both)
    func simpleGETYieldsHeadThenRequest(mode: FeedMode) throws {
        let result = parse("GET /index.html HTTP/1.1\r\nHost: example.com\r\nUser-Agent: test\r\n\r\n", mode: mode)
        #expect(result.error == nil)
        #expect(result.events.count == 2)
        guard case .head(let head)? = result.events.first else {
            Issue.record("first event is not .head: \(result.snapshots)")
            return
        }
        #expect(head.method == "GET")
        #expect(head.target == "/index.html")
        #expect(head.path == "/index.html")
        #expect(head.query == nil)
        #expect(head.version == .http1_1)
        #expect(head.headers.snapshot == [Field("Host", "example.com"), Field("User-Agent", "test")])
        #expect(head.framing == .none)
        #expect(!head.hasBody)
        let request = try #require(result.requests.first)
        #expect(request.method == "GET")
        #expect(request.body.isEmpty)
        #expect(request.trailers.count == 0)
        #expect(result.parser.isIdle)
        #expect(!result.parser.isReadingBody)
        #expect(result.parser.bufferedByteCount == 0)
    }

    @Test(arguments: FeedMode.both)
    func contentLengthBodyIsDelivered(mode: FeedMode) throws {
        let request = try parseOneRequest(
            "POST /submit HTTP/1.1\r\nHost: a\r\nContent-Type: text/plain\r\nContent-Length: 11\r\n\r\nhello world",
            mode: mode)
        #expect(request.method == "POST")
        #expect(request.head.framing == .contentLength(11))
        #expect(request.head.hasBody)
        #expect(request.body == bytes("hello world"))
    }

    @Test(arguments: FeedMode.both)
    func bodySplitAcrossFeedsYieldsHeadFirstAndRequestWhenComplete(mode: FeedMode) throws {
        let head = "PUT /item HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\n"
        let result = parse(pieces: [bytes(head + "hel"), bytes("lo wo"), bytes("rld")], mode: mode)
        #expect(result.error == nil)
        let kinds = result.eventsPerPiece.map { $0.map { event -> String in
            if case .head = event { "head" } else { "request" }
        } }
        #expect(kinds == [["head"], [], ["request"]])
        #expect(result.statesPerPiece == [
            StateSnapshot(bufferedByteCount: 0, isIdle: false, isReadingBody: true),
            StateSnapshot(bufferedByteCount: 0, isIdle: false, isReadingBody: true),
            StateSnapshot(bufferedByteCount: 0, isIdle: true, isReadingBody: false),
        ])
        let request = try #require(result.requests.first)
        #expect(request.body == bytes("hello world"))
    }

    @Test(arguments: FeedMode.both)
    func zeroContentLengthCompletesWithoutBodyBytes(mode: FeedMode) throws {
        let request = try parseOneRequest("POST /empty HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n", mode: mode)
        #expect(request.head.framing == .contentLength(0))
        #expect(!request.head.hasBody)
        #expect(request.body.isEmpty)
    }

    @Test(arguments: FeedMode.both)
    func headRequestHasNoBody(mode: FeedMode) throws {
        let request = try parseOneRequest("HEAD /resource HTTP/1.1\r\nHost: a\r\n\r\n", mode: mode)
        #expect(request.method == "HEAD")
        #expect(request.head.framing == .none)
        #expect(request.body.isEmpty)
    }

    struct TargetCase: Sendable, CustomTestStringConvertible {
        let target: String
        let path: String
        let query: String?
        var testDescription: String { target }
    }

    static let targets: [TargetCase] = [
        TargetCase(target: "/", path: "/", query: nil),
        TargetCase(target: "/search?q=swift+testing&page=2", path: "/search", query: "q=swift+testing&page=2"),
        TargetCase(target: "/a/b/?", path: "/a/b/", query: ""),
        TargetCase(target: "/a?x=1?y=2", path: "/a", query: "x=1?y=2"),
        TargetCase(target: "/files/a%2Fb%20c.txt", path: "/files/a%2Fb%20c.txt", query: nil),
        TargetCase(target: "/%E2%9C%93?k=%26v", path: "/%E2%9C%93", query: "k=%26v"),
        TargetCase(target: "http://example.com:8080/a/b%20c?x=1&y=2", path: "/a/b%20c", query: "x=1&y=2"),
        TargetCase(target: "https://example.com/p", path: "/p", query: nil),
        TargetCase(target: "http://example.com", path: "/", query: nil),
        TargetCase(target: "http://example.com?x=1", path: "/", query: "x=1"),
        TargetCase(target: "http://user@example.com:80/deep/path?q", path: "/deep/path", query: "q"),
    ]

    @Test(arguments: FeedMode.both, targets)
    func targetKeptRawWithPathAndQueryExtracted(mode: FeedMode, testCase: TargetCase) throws {
        let request = try parseOneRequest("GET \(testCase.target) HTTP/1.1\r\nHost: example.com\r\n\r\n", mode: mode)
        #expect(request.head.target == testCase.target)
        #expect(request.head.path == testCase.path)
        #expect(request.head.query == testCase.query)
        #expect(request.path == testCase.path)
    }

    @Test(arguments: FeedMode.both)
    func asteriskTargetForOPTIONS(mode: FeedMode) throws {
        let request = try parseOneRequest("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", mode: mode)
        #expect(request.method == "OPTIONS")
        #expect(request.head.target == "*")
        #expect(request.head.path == "/")
        #expect(request.head.query == nil)
    }

    @Test(arguments: FeedMode.both)
    func lowercaseAndExtensionMethodsAreTokens(mode: FeedMode) throws {
        let lower = try parseOneRequest("get / HTTP/1.1\r\nHost: a\r\n\r\n", mode: mode)
        #expect(lower.method == "get")
        let custom = try parseOneRequest("M-SEARCH / HTTP/1.1\r\nHost: a\r\n\r\n", mode: mode)
        #expect(custom.method == "M-SEARCH")
        let allTchars = "X!#$%&'*+-.^_`|~09azAZ"
        let odd = try parseOneRequest("\(allTchars) / HTTP/1.1\r\nHost: a\r\n\r\n", mode: mode)
        #expect(odd.method == allTchars)
    }
}

@Suite("HTTPRequestParser: versions, Host and connection handling")
struct HTTPRequestParserVersionTests {
    struct KeepAliveCase: Sendable, CustomTestStringConvertible {
        let version: String
        let connection: [String]
        let keepAlive: Bool
        var testDescription: String {
            "\(version) Connection: \(connection.isEmpty ? "(none)" : connection.joined(separator: " | ")) -> \(keepAlive)"
        }
    }

    static let keepAliveCases: [KeepAliveCase] = [
        KeepAliveCase(version: "HTTP/1.0", connection: [], keepAlive: false),
        KeepAliveCase(version: "HTTP/1.0", connection: ["keep-alive"], keepAlive: true),
        KeepAliveCase(version: "HTTP/1.0", connection: ["Keep-Alive"], keepAlive: true),
        KeepAliveCase(version: "HTTP/1.0", connection: ["Upgrade, keep-alive"], keepAlive: true),
        KeepAliveCase(version: "HTTP/1.0", connection: ["foo", "keep-alive"], keepAlive: true),
        KeepAliveCase(version: "HTTP/1.0", connection: ["close"], keepAlive: false),
        KeepAliveCase(version: "HTTP/1.0", connection: ["keep-alive, close"], keepAlive: false),
        KeepAliveCase(version: "HTTP/1.1", connection: [], keepAlive: true),
        KeepAliveCase(version: "HTTP/1.1", connection: ["close"], keepAlive: false),
        KeepAliveCase(version: "HTTP/1.1", connection: ["Close"], keepAlive: false),
        KeepAliveCase(version: "HTTP/1.1", connection: ["keep-alive"], keepAlive: true),
        KeepAliveCase(version: "HTTP/1.1", connection: ["keep-alive, Upgrade"], keepAlive: true),
        KeepAliveCase(version: "HTTP/1.1", connection: ["Upgrade , close"], keepAlive: false),
        KeepAliveCase(version: "HTTP/1.1", connection: ["upgrade", "close"], keepAlive: false),
    ]

    @Test(arguments: FeedMode.both, keepAliveCases)
    func keepAliveFollowsVersionAndConnectionTokens(mode: FeedMode, testCase: KeepAliveCase) throws {
        var text = "GET / \(testCase.version)\r\nHost: a\r\n"
        for value in testCase.connection { text += "Connection: \(value)\r\n" }
        text += "\r\n"
        let request = try parseOneRequest(text, mode: mode)
        #expect(request.head.keepAlive == testCase.keepAlive)
    }

    @Test(arguments: FeedMode.both)
    func connectionTokensAreListedLowercased(mode: FeedMode) throws {
        let request = try parseOneRequest(
            "GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n\r\n", mode: mode)
        #expect(request.headers.tokens(named: "connection") == ["keep-alive", "upgrade"])
        #expect(request.headers["upgrade"] == "websocket")
    }

    @Test(arguments: FeedMode.both)
    func http10WithoutHostIsAccepted(mode: FeedMode) throws {
        let request = try parseOneRequest("GET /old HTTP/1.0\r\n\r\n", mode: mode)
        #expect(request.head.version == .http1_0)
        #expect(request.headers.count == 0)
        #expect(!request.head.keepAlive)
    }

    @Test(arguments: FeedMode.both)
    func http11WithoutHostIsRejected(mode: FeedMode) {
        expectParseError("GET / HTTP/1.1\r\nAccept: */*\r\n\r\n", mode: mode, kind: .malformed, status: 400)
    }

    @Test(arguments: FeedMode.both, ["HTTP/1.1", "HTTP/1.0"])
    func twoHostHeadersAreRejected(mode: FeedMode, version: String) {
        expectParseError(
            "GET / \(version)\r\nHost: a.example\r\nHost: b.example\r\n\r\n", mode: mode, kind: .malformed, status: 400)
        expectParseError(
            "GET / \(version)\r\nHost: a.example\r\nhost: a.example\r\n\r\n", mode: mode, kind: .malformed, status: 400)
    }

    /// Kind `.unsupportedVersion`. Its status is 400, not RFC 9110's 505: HTTPParseError.status
    /// documents that no client input yields a 5xx.
    @Test(arguments: FeedMode.both, ["HTTP/2.0", "HTTP/3.0", "HTTP/0.9", "HTTP/9.9"])
    func nonHTTP1VersionIsRejectedAsUnsupportedVersion(mode: FeedMode, version: String) {
        expectParseError(
            "GET / \(version)\r\nHost: a\r\n\r\n", mode: mode, kind: .unsupportedVersion, status: 400)
    }

    @Test(arguments: FeedMode.both, [
        "HTTP/1.1x", "http/1.1", "Http/1.1", "HTTP/1.10", "HTTP/11", "HTTP/1", "HTTP/1.", "HTTP/1.a",
        "HTTP/1,1", "HTTPS/1.1", "HTTP /1.1", "HTTP/ 1.1", "HTTP/1.1\t",
    ])
    func malformedVersionIs400(mode: FeedMode, version: String) {
        expectParseError("GET / \(version)\r\nHost: a\r\n\r\n", mode: mode, kind: .malformed, status: 400)
    }

    struct ExpectCase: Sendable, CustomTestStringConvertible {
        let version: String
        let expect: String?
        let expectsContinue: Bool
        var testDescription: String { "\(version) Expect: \(expect ?? "(none)") -> \(expectsContinue)" }
    }

    static let expectCases: [ExpectCase] = [
        ExpectCase(version: "HTTP/1.1", expect: "100-continue", expectsContinue: true),
        ExpectCase(version: "HTTP/1.1", expect: "100-Continue", expectsContinue: true),
        ExpectCase(version: "HTTP/1.1", expect: "100-CONTINUE", expectsContinue: true),
        ExpectCase(version: "HTTP/1.1", expect: nil, expectsContinue: false),
        ExpectCase(version: "HTTP/1.1", expect: "something-else", expectsContinue: false),
        ExpectCase(version: "HTTP/1.0", expect: "100-continue", expectsContinue: false),
    ]

    @Test(arguments: FeedMode.both, expectCases)
    func expectsContinueOnlyFor100ContinueOnHTTP11(mode: FeedMode, testCase: ExpectCase) {
        var text = "POST /upload \(testCase.version)\r\nHost: a\r\nContent-Length: 4\r\n"
        if let expect = testCase.expect { text += "Expect: \(expect)\r\n" }
        text += "\r\n"
        // Only the head: a client expecting 100 Continue waits before sending the body.
        let result = parse(text, mode: mode)
        #expect(result.error == nil)
        #expect(result.requests.isEmpty)
        let head = result.heads.first
        #expect(head?.expectsContinue == testCase.expectsContinue)
        #expect(result.parser.isReadingBody)
    }
}

@Suite("HTTPRequestParser: header values")
struct HTTPRequestParserHeaderValueTests {
    @Test(arguments: FeedMode.both)
    func optionalWhitespaceIsTrimmedOnBothSides(mode: FeedMode) throws {
        let request = try parseOneRequest(
            "GET / HTTP/1.1\r\nHost:example.com\r\nX-A:   spaced  value \t \r\nX-B:\tv\t\r\nX-C: \t a\tb \r\n\r\n",
            mode: mode)
        #expect(request.headers.snapshot == [
            Field("Host", "example.com"), Field("X-A", "spaced  value"), Field("X-B", "v"), Field("X-C", "a\tb"),
        ])
    }

    @Test(arguments: FeedMode.both)
    func emptyValueIsAllowed(mode: FeedMode) throws {
        let request = try parseOneRequest(
            "GET / HTTP/1.1\r\nHost: a\r\nX-Empty:\r\nX-Blank:   \t \r\n\r\n", mode: mode)
        #expect(request.headers["x-empty"] == "")
        #expect(request.headers["X-BLANK"] == "")
        #expect(request.headers.count == 3)
    }

    @Test(arguments: FeedMode.both)
    func obsTextIsAllowedInValues(mode: FeedMode) throws {
        var input = bytes("GET / HTTP/1.1\r\nHost: a\r\nX-Utf8: caf\u{E9} \u{2713}\r\nX-Raw: a")
        input += [0x80, 0xA0, 0xFF]
        input += bytes("b\r\n\r\n")
        let request = try parseOneRequest(input, mode: mode)
        #expect(request.headers["x-utf8"] == "café ✓")
        let raw = try #require(request.headers["x-raw"])
        #expect(raw.hasPrefix("a") && raw.hasSuffix("b"))
        #expect(raw.count > 2)
    }

    @Test(arguments: FeedMode.both)
    func duplicateHeadersArePreservedInOrder(mode: FeedMode) throws {
        let request = try parseOneRequest(
            "GET / HTTP/1.1\r\nAccept: text/html\r\nHost: a\r\nX-Other: 1\r\naccept: application/json, TEXT/Plain\r\n"
                + "ACCEPT: */*\r\nCache-Control: no-cache\r\nCache-Control: ,no-store ,\r\n\r\n",
            mode: mode)
        #expect(request.headers.snapshot == [
            Field("Accept", "text/html"), Field("Host", "a"), Field("X-Other", "1"),
            Field("accept", "application/json, TEXT/Plain"), Field("ACCEPT", "*/*"),
            Field("Cache-Control", "no-cache"), Field("Cache-Control", ",no-store ,"),
        ])
        #expect(request.headers.values(named: "Accept") == ["text/html", "application/json, TEXT/Plain", "*/*"])
        #expect(request.headers.tokens(named: "accept") == ["text/html", "application/json", "text/plain", "*/*"])
        #expect(request.headers.tokens(named: "cache-control") == ["no-cache", "no-store"])
        #expect(request.headers["accept"] == "text/html")
        #expect(request.headers.values(named: "missing").isEmpty)
    }

    @Test(arguments: FeedMode.both)
    func headerNamesKeepTheirSpellingAndMatchCaseInsensitively(mode: FeedMode) throws {
        let request = try parseOneRequest(
            "POST / HTTP/1.1\r\nhOsT: a\r\ncontent-LENGTH: 3\r\nX_Under.score~: ok\r\n\r\nabc", mode: mode)
        #expect(request.headers.fields.map { $0.name } == ["hOsT", "content-LENGTH", "X_Under.score~"])
        #expect(request.headers["HOST"] == "a")
        #expect(request.head.framing == .contentLength(3))
        #expect(request.body == bytes("abc"))
    }
}
