import LossdHTTP
import Testing

/// Several requests on one connection, the state accessors, and failure being final.
@Suite("HTTPRequestParser: pipelining and parser state")
struct HTTPRequestParserPipeliningTests {
    @Test(arguments: FeedMode.both)
    func twoPipelinedRequestsParseInOrder(mode: FeedMode) {
        let result = parse(
            "GET /first HTTP/1.1\r\nHost: a\r\n\r\nPOST /second HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc",
            mode: mode)
        #expect(result.error == nil)
        #expect(result.events.count == 4)
        #expect(result.requests.map(\.path) == ["/first", "/second"])
        #expect(result.requests.map(\.body) == [[], bytes("abc")])
        #expect(result.parser.isIdle)
        #expect(result.parser.bufferedByteCount == 0)
    }

    @Test(arguments: FeedMode.both)
    func threePipelinedRequestsWithDifferentFramingParseInOrder(mode: FeedMode) {
        let input = "POST /one HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nwiki\r\n5\r\npedia\r\n0\r\nX-T: t\r\n\r\n"
            + "PUT /two HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello"
            + "DELETE /three?x=1 HTTP/1.0\r\n\r\n"
        let result = parse(input, mode: mode)
        #expect(result.error == nil)
        #expect(result.heads.count == 3)
        #expect(result.requests.map(\.method) == ["POST", "PUT", "DELETE"])
        #expect(result.requests.map(\.path) == ["/one", "/two", "/three"])
        #expect(result.requests.map(\.body) == [bytes("wikipedia"), bytes("hello"), []])
        #expect(result.requests.map { $0.trailers.snapshot } == [[Field("X-T", "t")], [], []])
        #expect(result.requests.map { $0.head.framing } == [HTTPBodyFraming.chunked, .contentLength(5), HTTPBodyFraming.none])
        #expect(result.requests.map { $0.headers.count } == [2, 2, 0])
    }

    @Test(arguments: FeedMode.both)
    func emptyLinesBetweenPipelinedRequestsAreSkipped(mode: FeedMode) {
        let result = parse(
            "POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n\r\nx\r\n\r\nGET /b HTTP/1.1\r\nHost: a\r\n\r\n", mode: mode)
        #expect(result.error == nil)
        #expect(result.requests.map(\.path) == ["/a", "/b"])
        #expect(result.requests.first?.body == bytes("x"))
    }

    @Test(arguments: FeedMode.both)
    func partialSecondRequestStaysBuffered(mode: FeedMode) {
        let first = "GET /first HTTP/1.1\r\nHost: a\r\n\r\n"
        let partial = "GET /second HT"
        let rest = "TP/1.1\r\nHost: a\r\n\r\n"
        let result = parse(pieces: [bytes(first + partial), bytes(rest)], mode: mode)
        #expect(result.error == nil)
        #expect(result.eventsPerPiece.map(\.count) == [2, 2])
        #expect(result.statesPerPiece.first == StateSnapshot(
            bufferedByteCount: partial.utf8.count, isIdle: false, isReadingBody: false))
        #expect(result.requests.map(\.path) == ["/first", "/second"])
        #expect(result.statesPerPiece.last == StateSnapshot(bufferedByteCount: 0, isIdle: true, isReadingBody: false))
    }

    @Test(arguments: FeedMode.both)
    func freshParserIsIdleAndNotReadingBody(mode: FeedMode) {
        let parser = HTTPRequestParser()
        #expect(parser.isIdle)
        #expect(!parser.isReadingBody)
        #expect(parser.bufferedByteCount == 0)
        let result = parse(pieces: [[]], mode: mode)
        #expect(result.events.isEmpty)
        #expect(result.error == nil)
        #expect(result.statesPerPiece == [StateSnapshot(bufferedByteCount: 0, isIdle: true, isReadingBody: false)])
    }

    @Test(arguments: FeedMode.both)
    func stateAccessorsTrackAContentLengthRequest(mode: FeedMode) {
        let result = parse(
            pieces: [
                bytes("GE"),
                bytes("T / HTTP/1.1\r\nHo"),
                bytes("st: a\r\nContent-Length: 4\r\n\r\nab"),
                bytes("cd"),
                bytes("GET /next"),
            ],
            mode: mode)
        #expect(result.error == nil)
        #expect(result.eventsPerPiece.map(\.count) == [0, 0, 1, 1, 0])
        #expect(result.statesPerPiece.map(\.isIdle) == [false, false, false, true, false])
        #expect(result.statesPerPiece.map(\.isReadingBody) == [false, false, true, false, false])
        #expect(result.statesPerPiece[0].bufferedByteCount == 2)
        #expect(result.statesPerPiece[3].bufferedByteCount == 0)
        #expect(result.statesPerPiece[4].bufferedByteCount == 9)
    }

    @Test(arguments: FeedMode.both)
    func stateAccessorsTrackAChunkedRequest(mode: FeedMode) {
        let result = parse(
            pieces: [
                bytes("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"),
                bytes("3\r\nab"),
                bytes("c\r\n"),
                bytes("0\r\n"),
                bytes("\r\n"),
            ],
            mode: mode)
        #expect(result.error == nil)
        #expect(result.statesPerPiece.map(\.isReadingBody) == [true, true, true, true, false])
        #expect(result.statesPerPiece.map(\.isIdle) == [false, false, false, false, true])
        #expect(result.requests.first?.body == bytes("abc"))
    }

    /// What a server checks right after `.head` (e.g. before sending 100 Continue): body
    /// bytes already received are still buffered until next() reads them.
    @Test(arguments: FeedMode.both)
    func bodyBytesAfterTheHeadAreBufferedUntilNextIsCalled(mode: FeedMode) throws {
        let head = bytes("POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n")
        var parser = HTTPRequestParser()
        var headEvent: HTTPRequestHead?
        let pieces: [[UInt8]] = mode == .whole ? [head + bytes("ab")] : (head + bytes("ab")).map { [$0] }
        for piece in pieces {
            parser.append(piece)
            if headEvent == nil, case .head(let h)? = try parser.next() {
                headEvent = h
                #expect(h.expectsContinue)
                #expect(parser.isReadingBody)
                // Whole: "ab" arrived with the head; byte at a time: nothing after it yet.
                #expect(parser.bufferedByteCount == (mode == .whole ? 2 : 0))
            }
        }
        #expect(headEvent != nil)
        #expect(try parser.next() == nil)
        #expect(parser.bufferedByteCount == 0)
        parser.append(bytes("cd"))
        guard case .request(let request)? = try parser.next() else {
            Issue.record("expected the complete request")
            return
        }
        #expect(request.body == bytes("abcd"))
    }

    /// The server appends from its read buffer through the UnsafeRawBufferPointer overload.
    @Test(arguments: FeedMode.both)
    func rawBufferAppendGivesTheSameEventsAsCollectionAppend(mode: FeedMode) throws {
        let input = bytes(
            "POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc"
                + "POST /b HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nxy\r\n0\r\n\r\nGET /c")
        let expected = parse(input, mode: mode)
        var parser = HTTPRequestParser()
        var events: [EventSnapshot] = []
        let step = mode == .whole ? input.count : 1
        for start in stride(from: 0, to: input.count, by: step) {
            let piece = Array(input[start..<min(start + step, input.count)])
            piece.withUnsafeBytes { parser.append($0) }
            while let event = try parser.next() { events.append(EventSnapshot(event)) }
        }
        #expect(events == expected.snapshots)
        #expect(events.count == 4)
        #expect(StateSnapshot(parser) == StateSnapshot(bufferedByteCount: 6, isIdle: false, isReadingBody: false))
    }

    static let failingInputs: [InputCase] = [
        InputCase("malformed request line", "GET\r\n\r\n"),
        InputCase("missing Host", "GET / HTTP/1.1\r\n\r\n"),
        InputCase("bad header name", "GET / HTTP/1.1\r\nHost: a\r\nBad Name: x\r\n\r\n"),
        InputCase("unsupported version", "GET / HTTP/2.0\r\n\r\n"),
        InputCase("unsupported coding", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"),
        InputCase("content too large", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 999999999999999999\r\n\r\n"),
        InputCase("bad chunk", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"),
        InputCase("headers too large", "GET /" + String(repeating: "a", count: 20_000) + " HTTP/1.1\r\n"),
    ]

    @Test(arguments: FeedMode.both, failingInputs)
    func afterAnErrorNextKeepsThrowing(mode: FeedMode, testCase: InputCase) {
        let result = parse(testCase.input, mode: mode)
        #expect(result.error != nil)
        var parser = result.parser
        for _ in 0..<3 {
            #expect(throws: HTTPParseError.self) { _ = try parser.next() }
        }
        // Even a perfectly good request appended afterwards is not parsed.
        parser.append(bytes("GET / HTTP/1.1\r\nHost: a\r\n\r\n"))
        #expect(throws: HTTPParseError.self) { _ = try parser.next() }
        #expect(throws: HTTPParseError.self) { _ = try parser.next() }
    }

    @Test(arguments: FeedMode.both)
    func requestsAfterAnErrorInTheSameBufferAreNotParsed(mode: FeedMode) {
        let result = expectParseError(
            "GET /ok HTTP/1.1\r\nHost: a\r\n\r\nGET /bad HTTP/1.1\r\nHost: a\r\nBad Name: x\r\n\r\nGET /never HTTP/1.1\r\nHost: a\r\n\r\n",
            mode: mode, kind: .malformed, status: 400, eventsBefore: 2)
        #expect(result.requests.map(\.path) == ["/ok"])
    }
}
