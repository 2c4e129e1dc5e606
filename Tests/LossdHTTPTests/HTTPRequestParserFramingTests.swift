import LossdHTTP
import Testing

/// Message body length, RFC 9112 section 6: anything two parsers could frame differently is refused.
@Suite("HTTPRequestParser: body framing")
struct HTTPRequestParserFramingTests {
    static let chunkedBody = "5\r\nhello\r\n0\r\n\r\n"

    @Test(arguments: FeedMode.both)
    func contentLengthWithTransferEncodingIs400(mode: FeedMode) {
        expectParseError(
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n" + Self.chunkedBody,
            mode: mode, kind: .malformed, status: 400)
    }

    @Test(arguments: FeedMode.both)
    func transferEncodingWithContentLengthIs400(mode: FeedMode) {
        expectParseError(
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n" + Self.chunkedBody,
            mode: mode, kind: .malformed, status: 400)
    }

    @Test(arguments: FeedMode.both)
    func twoDifferentContentLengthFieldsAre400(mode: FeedMode) {
        expectParseError(
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
            mode: mode, kind: .malformed, status: 400)
    }

    @Test(arguments: FeedMode.both)
    func contentLengthListWithDifferentValuesIs400(mode: FeedMode) {
        expectParseError(
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 6\r\n\r\nhello!", mode: mode, kind: .malformed, status: 400)
    }

    @Test(arguments: FeedMode.both, [
        ["Content-Length: 5", "Content-Length: 5"],
        ["Content-Length: 5, 5"],
        ["Content-Length: 5,5", "content-length: 5"],
        ["Content-Length: 005"],
    ])
    func repeatedIdenticalContentLengthIsAccepted(mode: FeedMode, fields: [String]) throws {
        let text = "POST / HTTP/1.1\r\nHost: a\r\n" + fields.map { $0 + "\r\n" }.joined() + "\r\nhello"
        let request = try parseOneRequest(text, mode: mode)
        #expect(request.head.framing == .contentLength(5))
        #expect(request.body == bytes("hello"))
    }

    @Test(arguments: FeedMode.both, ["+5", "-5", "5 5", "0x5", "5a", "", " ", "5,", ",5", "5;", "1e3", "5.0", "٥"])
    func invalidContentLengthIs400(mode: FeedMode, value: String) {
        expectParseError(
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: \(value)\r\n\r\nhello", mode: mode, kind: .malformed,
            status: 400)
    }

    @Test(arguments: FeedMode.both, [
        ["Transfer-Encoding: gzip"],
        ["Transfer-Encoding: identity"],
        ["Transfer-Encoding: chunked, gzip"],
        ["Transfer-Encoding: chunked", "Transfer-Encoding: gzip"],
        ["Transfer-Encoding: chunked, chunked"],
        ["Transfer-Encoding: chunked", "Transfer-Encoding: chunked"],
        ["Transfer-Encoding: "],
        ["Transfer-Encoding: chunkedx"],
        ["Transfer-Encoding: chunked;q=1"],
    ])
    func transferCodingNotEndingInASingleChunkedIs400(mode: FeedMode, fields: [String]) {
        let text = "POST / HTTP/1.1\r\nHost: a\r\n" + fields.map { $0 + "\r\n" }.joined() + "\r\n" + Self.chunkedBody
        expectParseError(text, mode: mode, kind: .malformed, status: 400)
    }

    /// Kind `.unsupportedTransferCoding`. Its status is 400 rather than RFC 9112's (SHOULD) 501:
    /// HTTPParseError.status documents that no client input yields a 5xx.
    @Test(arguments: FeedMode.both, [
        ["Transfer-Encoding: gzip, chunked"],
        ["Transfer-Encoding: deflate ,chunked"],
        ["Transfer-Encoding: gzip", "Transfer-Encoding: chunked"],
    ])
    func unsupportedCodingBeforeChunkedIsRejectedAsUnsupportedTransferCoding(mode: FeedMode, fields: [String]) {
        let text = "POST / HTTP/1.1\r\nHost: a\r\n" + fields.map { $0 + "\r\n" }.joined() + "\r\n" + Self.chunkedBody
        expectParseError(text, mode: mode, kind: .unsupportedTransferCoding, status: 400)
    }

    @Test(arguments: FeedMode.both)
    func errorStatusesMatchTheirKindsAndAreNever5xx(mode: FeedMode) {
        let result = expectParseError("GET / HTTP/2.0\r\n\r\n", mode: mode, kind: .unsupportedVersion, status: 400)
        #expect(result.error?.status == .badRequest)
        #expect(HTTPParseError(.malformed, "x").status == .badRequest)
        #expect(HTTPParseError(.headersTooLarge, "x").status == .requestHeaderFieldsTooLarge)
        #expect(HTTPParseError(.bodyTooLarge, "x").status == .contentTooLarge)
        #expect(HTTPParseError(.unsupportedTransferCoding, "x").status == .badRequest)
        #expect(HTTPParseError(.unsupportedVersion, "x").status == .badRequest)
    }

    @Test(arguments: FeedMode.both)
    func chunkedHTTP10RequestIsParsedWithChunkedFraming(mode: FeedMode) throws {
        // RFC 9112 section 6.1: an HTTP/1.0 message with Transfer-Encoding has faulty framing and
        // the connection must be closed after it. The parser reads it; the version and framing
        // reported in the head are what lets the server close afterwards.
        let request = try parseOneRequest(
            "POST / HTTP/1.0\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n" + Self.chunkedBody,
            mode: mode)
        #expect(request.head.version == .http1_0)
        #expect(request.head.framing == .chunked)
        #expect(request.body == bytes("hello"))
    }
}
