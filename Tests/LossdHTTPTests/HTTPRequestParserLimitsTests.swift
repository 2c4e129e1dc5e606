import LossdHTTP
import Testing

/// HTTPParserLimits: every quantity the client controls is bounded.
@Suite("HTTPRequestParser: limits")
struct HTTPRequestParserLimitsTests {
    /// A GET whose header section (request line through the final empty line) is exactly
    /// `size` bytes, padded with `X-Fill-n` fields of about `fieldSize` bytes each.
    static func request(headerSectionSize size: Int, fieldSize: Int = 0) -> [UInt8] {
        var text = "GET / HTTP/1.1\r\nHost: a\r\n"
        let closing = "X-Pad: \r\n\r\n"
        if fieldSize > 0 {
            var n = 0
            while size - text.utf8.count - closing.utf8.count > 2 * fieldSize {
                let name = "X-Fill-\(n): "
                text += name + String(repeating: "f", count: fieldSize - name.utf8.count - 2) + "\r\n"
                n += 1
            }
        }
        let pad = size - text.utf8.count - closing.utf8.count
        precondition(pad >= 0, "header section of \(size) bytes is too small")
        text += "X-Pad: " + String(repeating: "p", count: pad) + "\r\n\r\n"
        let result = bytes(text)
        precondition(result.count == size)
        return result
    }

    /// Filler field size that keeps the field count well under maxHeaderCount.
    static func fieldSize(_ limit: Int) -> Int { max(40, limit / 64) }

    static let headerLimits = [256, 4096, HTTPParserLimits().maxHeaderBytes]

    @Test(arguments: FeedMode.both, headerLimits)
    func headerSectionExactlyAtTheLimitIsAccepted(mode: FeedMode, limit: Int) throws {
        let limits = HTTPParserLimits(maxHeaderBytes: limit)
        let request = try parseOneRequest(Self.request(headerSectionSize: limit), mode: mode, limits: limits)
        #expect(request.headers["x-pad"] != nil)
        let many = try parseOneRequest(
            Self.request(headerSectionSize: limit, fieldSize: Self.fieldSize(limit)), mode: mode, limits: limits)
        #expect(many.headers["x-pad"] != nil)
    }

    @Test(arguments: FeedMode.both, headerLimits)
    func headerSectionOneByteOverTheLimitIs431(mode: FeedMode, limit: Int) {
        let limits = HTTPParserLimits(maxHeaderBytes: limit)
        expectParseError(
            Self.request(headerSectionSize: limit + 1), mode: mode, kind: .headersTooLarge, status: 431, limits: limits)
        expectParseError(
            Self.request(headerSectionSize: limit + 1, fieldSize: Self.fieldSize(limit)), mode: mode, kind: .headersTooLarge,
            status: 431,
            limits: limits)
    }

    @Test(arguments: FeedMode.both)
    func bodyBytesDoNotCountTowardsTheHeaderLimit(mode: FeedMode) throws {
        let limits = HTTPParserLimits(maxHeaderBytes: 256)
        var input = bytes("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1000\r\n\r\n")
        input += [UInt8](repeating: UInt8(ascii: "b"), count: 1000)
        let request = try parseOneRequest(input, mode: mode, limits: limits)
        #expect(request.body.count == 1000)
    }

    @Test(arguments: FeedMode.both)
    func neverEndingHeaderLineIs431AsSoonAsTheLimitIsPassed(mode: FeedMode) {
        let limits = HTTPParserLimits(maxHeaderBytes: 1024)
        let input = bytes("GET / HTTP/1.1\r\nHost: a\r\nX-Huge: ") + [UInt8](repeating: UInt8(ascii: "a"), count: 100_000)
        let result = expectParseError(input, mode: mode, kind: .headersTooLarge, status: 431, limits: limits)
        if mode == .byteAtATime {
            #expect(result.feeder.bytesAppended <= limits.maxHeaderBytes + 1)
            #expect(result.feeder.bytesAppended < input.count)
        }
    }

    @Test(arguments: FeedMode.both)
    func neverEndingRequestLineIs431AsSoonAsTheLimitIsPassed(mode: FeedMode) {
        let limits = HTTPParserLimits()
        let input = bytes("GET /") + [UInt8](repeating: UInt8(ascii: "a"), count: 100_000)
        let result = expectParseError(input, mode: mode, kind: .headersTooLarge, status: 431, limits: limits)
        if mode == .byteAtATime {
            #expect(result.feeder.bytesAppended <= limits.maxHeaderBytes + 1)
        }
    }

    /// Fed whole, the parser sees the line's end; fed in pieces it can only see that the line
    /// has passed the limit. Both must give the same answer, and only 431 is possible for the latter.
    @Test(arguments: FeedMode.both)
    func overlongFieldLineEndingInBareLFIs431InEveryFeedingMode(mode: FeedMode) {
        let limits = HTTPParserLimits(maxHeaderBytes: 1024)
        let input = bytes("GET / HTTP/1.1\r\nHost: a\r\nX-Long: " + String(repeating: "a", count: 2_000) + "\n\r\n")
        expectParseError(input, mode: mode, kind: .headersTooLarge, status: 431, limits: limits)
    }

    static func request(fieldCount: Int) -> String {
        var text = "GET / HTTP/1.1\r\nHost: a\r\n"
        for i in 1..<fieldCount { text += "X-F\(i): \(i)\r\n" }
        return text + "\r\n"
    }

    @Test(arguments: FeedMode.both)
    func headerFieldCountAtTheLimitIsAccepted(mode: FeedMode) throws {
        let limits = HTTPParserLimits()
        let request = try parseOneRequest(Self.request(fieldCount: limits.maxHeaderCount), mode: mode)
        #expect(request.headers.count == limits.maxHeaderCount)

        var small = HTTPParserLimits()
        small.maxHeaderCount = 3
        let three = try parseOneRequest(Self.request(fieldCount: 3), mode: mode, limits: small)
        #expect(three.headers.count == 3)
    }

    @Test(arguments: FeedMode.both)
    func tooManyHeaderFieldsIs431(mode: FeedMode) {
        let limits = HTTPParserLimits()
        expectParseError(
            Self.request(fieldCount: limits.maxHeaderCount + 1), mode: mode, kind: .headersTooLarge, status: 431)

        var small = HTTPParserLimits()
        small.maxHeaderCount = 3
        expectParseError(Self.request(fieldCount: 4), mode: mode, kind: .headersTooLarge, status: 431, limits: small)
    }

    @Test(arguments: FeedMode.both)
    func contentLengthOverTheLimitIs413BeforeAnyBodyByte(mode: FeedMode) {
        let limits = HTTPParserLimits(maxBodyBytes: 100)
        let input = bytes("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 101\r\n\r\n")
        let result = expectParseError(input, mode: mode, kind: .bodyTooLarge, status: 413, limits: limits)
        #expect(result.feeder.bytesAppended == input.count)
        expectParseError(
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 999999999999999999\r\n\r\n", mode: mode, kind: .bodyTooLarge,
            status: 413)
    }

    @Test(arguments: FeedMode.both)
    func contentLengthEqualToTheLimitIsAccepted(mode: FeedMode) throws {
        let limits = HTTPParserLimits(maxBodyBytes: 100)
        let body = (0..<100).map { UInt8($0) }
        let request = try parseOneRequest(
            bytes("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\n") + body, mode: mode, limits: limits)
        #expect(request.body == body)
    }

    static func pattern(_ count: Int, seed: Int) -> [UInt8] {
        (0..<count).map { UInt8(truncatingIfNeeded: ($0 &* 31) ^ ($0 >> 9) ^ seed) }
    }

    static let bodyModes: [FeedMode] = [.whole, .slices(64 * 1024)]

    /// A 5 MB body fed in 64 KiB pieces (not a byte at a time), followed by a pipelined request.
    @Test(arguments: bodyModes)
    func largeContentLengthBodyArrivesIntact(mode: FeedMode) throws {
        let body = Self.pattern(5 * 1024 * 1024, seed: 7)
        let input = bytes("POST /big HTTP/1.1\r\nHost: a\r\nContent-Length: \(body.count)\r\n\r\n") + body
            + bytes("GET /after HTTP/1.1\r\nHost: a\r\n\r\n")
        let result = parse(input, mode: mode, references: [.whole])
        #expect(result.error == nil)
        #expect(result.requests.count == 2)
        let big = try #require(result.requests.first)
        #expect(big.body.count == body.count)
        #expect(big.body == body)
        #expect(result.requests.last?.path == "/after")
        #expect(result.parser.isIdle)
    }

    @Test(arguments: bodyModes)
    func largeChunkedBodyArrivesIntact(mode: FeedMode) throws {
        let body = Self.pattern(5 * 1024 * 1024, seed: 3)
        var input = bytes("POST /big HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n")
        var offset = 0
        let chunk = 100_000
        while offset < body.count {
            let n = min(chunk, body.count - offset)
            input += bytes(String(n, radix: 16) + "\r\n") + body[offset..<(offset + n)] + bytes("\r\n")
            offset += n
        }
        input += bytes("0\r\n\r\nGET /after HTTP/1.1\r\nHost: a\r\n\r\n")
        let result = parse(input, mode: mode, references: [.whole])
        #expect(result.error == nil)
        #expect(result.requests.count == 2)
        let big = try #require(result.requests.first)
        #expect(big.body == body)
        #expect(result.requests.last?.path == "/after")
    }

    /// ~16 KB of header fields, parsed a byte at a time with next() after every byte: the
    /// parser resumes its line scan instead of rescanning, so this finishes promptly.
    @Test(arguments: FeedMode.both)
    func byteAtATimeHeaderBlockOf16KBIsParsed(mode: FeedMode) throws {
        var text = "GET / HTTP/1.1\r\nHost: a\r\n"
        for i in 0..<100 { text += "X-Header-\(i): " + String(repeating: "v", count: 140) + "\r\n" }
        text += "\r\n"
        #expect(text.utf8.count > 15_000 && text.utf8.count <= HTTPParserLimits().maxHeaderBytes)
        let request = try parseOneRequest(text, mode: mode)
        #expect(request.headers.count == 101)
        #expect(request.headers["x-header-99"]?.count == 140)
    }

    /// The same with 512 KB of header fields in lines of 32 KB (limits raised): rescanning a
    /// line from its start after every byte would take some 8 billion steps here.
    @Test(arguments: FeedMode.both)
    func byteAtATimeHeaderBlockOf512KBIsParsed(mode: FeedMode) throws {
        let limits = HTTPParserLimits(maxHeaderBytes: 1 << 20)
        var text = "GET / HTTP/1.1\r\nHost: a\r\n"
        for i in 0..<16 { text += "X-Header-\(i): " + String(repeating: "v", count: 32_000) + "\r\n" }
        text += "\r\n"
        let request = try parseOneRequest(text, mode: mode, limits: limits)
        #expect(request.headers.count == 17)
        #expect(request.headers["x-header-15"]?.count == 32_000)
    }
}
