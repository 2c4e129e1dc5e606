import LossdHTTP
import Testing

/// chunked transfer coding, RFC 9112 section 7.1.
@Suite("HTTPRequestParser: chunked bodies")
struct HTTPRequestParserChunkedTests {
    static let chunkedHead = "POST /upload HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"

    @Test(arguments: FeedMode.both)
    func severalChunksAreConcatenated(mode: FeedMode) throws {
        let request = try parseOneRequest(
            Self.chunkedHead + "5\r\nhello\r\n1\r\n \r\n5\r\nworld\r\n0\r\n\r\n", mode: mode)
        #expect(request.head.framing == .chunked)
        #expect(request.head.hasBody)
        #expect(request.body == bytes("hello world"))
        #expect(request.trailers.count == 0)
    }

    @Test(arguments: FeedMode.both)
    func headArrivesBeforeAnyChunk(mode: FeedMode) {
        let result = parse(
            pieces: [bytes(Self.chunkedHead), bytes("5\r\nhel"), bytes("lo\r\n0\r\n"), bytes("\r\n")], mode: mode)
        #expect(result.error == nil)
        #expect(result.eventsPerPiece.map(\.count) == [1, 0, 0, 1])
        #expect(result.statesPerPiece.map(\.isReadingBody) == [true, true, true, false])
        #expect(result.statesPerPiece.map(\.isIdle) == [false, false, false, true])
        #expect(result.requests.first?.body == bytes("hello"))
    }

    @Test(arguments: FeedMode.both)
    func chunkExtensionsAreIgnored(mode: FeedMode) throws {
        let request = try parseOneRequest(
            Self.chunkedHead + "5;name=value\r\nhello\r\n6;a;b=\"quoted;value\"\r\n world\r\n3 ;x=y\r\n!!!\r\n0;last\r\n\r\n",
            mode: mode)
        #expect(request.body == bytes("hello world!!!"))
    }

    @Test(arguments: FeedMode.both)
    func hexSizesAreCaseInsensitive(mode: FeedMode) throws {
        let ten = "0123456789"
        let thirtyOne = String(repeating: "x", count: 31)
        let request = try parseOneRequest(
            Self.chunkedHead + "A\r\n\(ten)\r\n1F\r\n\(thirtyOne)\r\n1f\r\n\(thirtyOne)\r\na\r\n\(ten)\r\n0\r\n\r\n",
            mode: mode)
        #expect(request.body == bytes(ten + thirtyOne + thirtyOne + ten))
    }

    @Test(arguments: FeedMode.both)
    func trailersAreCollectedSeparatelyFromHeaders(mode: FeedMode) throws {
        let request = try parseOneRequest(
            Self.chunkedHead + "4\r\ndata\r\n0\r\nX-Checksum: abc123\r\nX-Other:  padded \t\r\nx-checksum: second\r\n\r\n",
            mode: mode)
        #expect(request.body == bytes("data"))
        #expect(request.trailers.snapshot == [
            Field("X-Checksum", "abc123"), Field("X-Other", "padded"), Field("x-checksum", "second"),
        ])
        #expect(request.trailers.values(named: "X-CHECKSUM") == ["abc123", "second"])
        #expect(request.headers["x-checksum"] == nil)
        #expect(request.headers.count == 2)
    }

    @Test(arguments: FeedMode.both)
    func lastChunkAloneGivesEmptyBody(mode: FeedMode) throws {
        let request = try parseOneRequest(Self.chunkedHead + "0\r\n\r\n", mode: mode)
        #expect(request.head.framing == .chunked)
        #expect(request.body.isEmpty)
        #expect(request.trailers.count == 0)
    }

    @Test(arguments: FeedMode.both)
    func chunkSizeWithLeadingZerosIsAccepted(mode: FeedMode) throws {
        let request = try parseOneRequest(
            Self.chunkedHead + "0005\r\nhello\r\n00000000a\r\n0123456789\r\n000\r\n\r\n", mode: mode)
        #expect(request.body == bytes("hello0123456789"))
    }

    @Test(arguments: FeedMode.both)
    func transferEncodingIsMatchedCaseInsensitively(mode: FeedMode) throws {
        for header in ["Transfer-Encoding: CHUNKED", "transfer-encoding: Chunked", "TRANSFER-ENCODING: chunked "] {
            let request = try parseOneRequest(
                "POST / HTTP/1.1\r\nHost: a\r\n\(header)\r\n\r\n3\r\nabc\r\n0\r\n\r\n", mode: mode)
            #expect(request.head.framing == .chunked, "\(header)")
            #expect(request.body == bytes("abc"), "\(header)")
        }
    }

    static let invalidSizeLines: [InputCase] = [
        InputCase("non-hex digit", "g\r\nhello\r\n0\r\n\r\n"),
        InputCase("hex then garbage", "5g\r\nhello\r\n0\r\n\r\n"),
        InputCase("0x prefix", "0x5\r\nhello\r\n0\r\n\r\n"),
        InputCase("negative", "-5\r\nhello\r\n0\r\n\r\n"),
        InputCase("plus sign", "+5\r\nhello\r\n0\r\n\r\n"),
        InputCase("empty size line", "\r\nhello\r\n0\r\n\r\n"),
        InputCase("leading space", " 5\r\nhello\r\n0\r\n\r\n"),
        InputCase("extension without semicolon", "5 name\r\nhello\r\n0\r\n\r\n"),
        InputCase("control char in extension", "5;a\u{01}b\r\nhello\r\n0\r\n\r\n"),
        InputCase("bare LF after size", "5\nhello\r\n0\r\n\r\n"),
        InputCase("bare CR in size line", "5\r;x\r\nhello\r\n0\r\n\r\n"),
    ]

    @Test(arguments: FeedMode.both, invalidSizeLines)
    func invalidChunkSizeLineIs400(mode: FeedMode, testCase: InputCase) {
        expectParseError(
            bytes(Self.chunkedHead) + testCase.input, mode: mode, kind: .malformed, status: 400, eventsBefore: 1)
    }

    static let badChunkEnds: [InputCase] = [
        InputCase("other byte instead of CRLF", "5\r\nhelloX\r\n0\r\n\r\n"),
        InputCase("bare LF after data", "5\r\nhello\n0\r\n\r\n"),
        InputCase("CR then other byte", "5\r\nhello\r0\r\n\r\n"),
        InputCase("data longer than size", "3\r\nhello\r\n0\r\n\r\n"),
        InputCase("next size right after data", "5\r\nhello0\r\n\r\n"),
    ]

    @Test(arguments: FeedMode.both, badChunkEnds)
    func missingCRLFAfterChunkDataIs400(mode: FeedMode, testCase: InputCase) {
        expectParseError(
            bytes(Self.chunkedHead) + testCase.input, mode: mode, kind: .malformed, status: 400, eventsBefore: 1)
    }

    @Test(arguments: FeedMode.both, ["10000000000000000", "123456789ABCDEF0123"])
    func chunkSizeWithTooManyDigitsIs400(mode: FeedMode, size: String) {
        expectParseError(
            Self.chunkedHead + "\(size)\r\nhello\r\n0\r\n\r\n", mode: mode, kind: .malformed, status: 400, eventsBefore: 1)
    }

    /// Sizes whose value does not fit in an Int. These run in a child process (an exit test):
    /// if the parser traps on arithmetic overflow, only the child dies and the test fails.
    @Test(arguments: FeedMode.both, ["FFFFFFFFFFFFFFFFFFFF", "FFFFFFFFFFFFFFFF", "8000000000000000", "7FFFFFFFFFFFFFFF0"])
    func chunkSizeOverflowingIntIs400WithoutCrashing(mode: FeedMode, size: String) async {
        await #expect(processExitsWith: .success, "the parser crashed or did not answer 400 for chunk size \(size)") {
            [mode, size] in
            var feeder = Feeder(mode: mode)
            feeder.feed(bytes(HTTPRequestParserChunkedTests.chunkedHead + "\(size)\r\nhello\r\n0\r\n\r\n"))
            guard let error = feeder.error, error.kind == .malformed, error.status.code == 400, feeder.events.count == 1
            else {
                fatalError("expected a 400 after the head, got \(feeder.error.map { "\($0)" } ?? "no error")")
            }
        }
    }

    @Test(arguments: FeedMode.both)
    func overlongChunkSizeLineIs400(mode: FeedMode) {
        let extensions = ";" + String(repeating: "e", count: 2_000)
        expectParseError(
            Self.chunkedHead + "5\(extensions)\r\nhello\r\n0\r\n\r\n", mode: mode, kind: .malformed, status: 400,
            eventsBefore: 1)
    }

    @Test(arguments: FeedMode.both)
    func chunkedBodyOverLimitIs413AsSoonAsTheSizeLineArrives(mode: FeedMode) {
        let limits = HTTPParserLimits(maxBodyBytes: 10)
        // 5 + 6 > 10: the input stops right after the second size line, no data follows.
        let input = bytes(Self.chunkedHead + "5\r\nhello\r\n6\r\n")
        let result = expectParseError(input, mode: mode, kind: .bodyTooLarge, status: 413, limits: limits, eventsBefore: 1)
        // Byte at a time, the error must come with the size line's LF, the last byte.
        #expect(result.feeder.bytesAppended == input.count)
        // A single chunk bigger than the limit is refused the same way.
        expectParseError(
            Self.chunkedHead + "B\r\n", mode: mode, kind: .bodyTooLarge, status: 413, limits: limits, eventsBefore: 1)
        expectParseError(
            Self.chunkedHead + "FFFFFFFFFFFFFFF\r\n", mode: mode, kind: .bodyTooLarge, status: 413, eventsBefore: 1)
    }

    @Test(arguments: FeedMode.both)
    func chunkedBodyExactlyAtLimitIsAccepted(mode: FeedMode) throws {
        let limits = HTTPParserLimits(maxBodyBytes: 10)
        let request = try parseOneRequest(
            Self.chunkedHead + "5\r\nhello\r\n5\r\nworld\r\n0\r\n\r\n", mode: mode, limits: limits)
        #expect(request.body == bytes("helloworld"))
    }

    static let badTrailers: [InputCase] = [
        InputCase("space in name", "0\r\nBad Name: x\r\n\r\n"),
        InputCase("space before colon", "0\r\nX-T : x\r\n\r\n"),
        InputCase("no colon", "0\r\nnocolon\r\n\r\n"),
        InputCase("obs-fold", "0\r\nX-T: a\r\n b\r\n\r\n"),
        InputCase("NUL in value", "0\r\nX-T: a\u{0}b\r\n\r\n"),
        InputCase("bare LF", "0\r\nX-T: a\n\r\n"),
    ]

    @Test(arguments: FeedMode.both, badTrailers)
    func malformedTrailerIs400(mode: FeedMode, testCase: InputCase) {
        expectParseError(
            bytes(Self.chunkedHead) + testCase.input, mode: mode, kind: .malformed, status: 400, eventsBefore: 1)
    }

    @Test(arguments: FeedMode.both)
    func tooManyTrailerFieldsIs431(mode: FeedMode) throws {
        let limits = HTTPParserLimits()
        func trailers(_ n: Int) -> String {
            (0..<n).map { "X-T\($0): v\r\n" }.joined()
        }
        let ok = try parseOneRequest(Self.chunkedHead + "0\r\n" + trailers(limits.maxHeaderCount) + "\r\n", mode: mode)
        #expect(ok.trailers.count == limits.maxHeaderCount)
        expectParseError(
            Self.chunkedHead + "0\r\n" + trailers(limits.maxHeaderCount + 1) + "\r\n", mode: mode,
            kind: .headersTooLarge, status: 431, eventsBefore: 1)
    }

    @Test(arguments: FeedMode.both)
    func oversizedTrailerSectionIs431(mode: FeedMode) {
        let big = String(repeating: "t", count: 20_000)
        expectParseError(
            Self.chunkedHead + "0\r\nX-Big: \(big)\r\n\r\n", mode: mode, kind: .headersTooLarge, status: 431,
            eventsBefore: 1)
    }
}
