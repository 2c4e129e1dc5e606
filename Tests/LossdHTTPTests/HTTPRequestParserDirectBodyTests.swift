import LossdHTTP
import Testing

// `receiveBody`: a Content-Length body received straight into the request's body, as the
// event loop does, mixed with bytes that arrived with the head and with pipelined requests.

@Suite("HTTPRequestParser: bodies received in place")
struct HTTPRequestParserDirectBodyTests {
    /// Feeds `source` to the parser as the event loop would: straight into the body when the
    /// parser offers it (at most `chunk` bytes per receive), else through `append`.
    static func run(_ source: [UInt8], chunk: Int) throws -> (requests: [HTTPRequest], direct: Int, offered: [Int]) {
        var parser = HTTPRequestParser()
        var position = 0, direct = 0
        var offered: [Int] = []
        var requests: [HTTPRequest] = []
        while position < source.count {
            let received: Int? = parser.receiveBody { space in
                offered.append(space.count)
                let count = min(chunk, space.count, source.count - position)
                source.withUnsafeBytes { bytes in
                    space.copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes[position..<(position + count)]))
                }
                return (count, count)
            }
            if let received {
                direct += received
                position += received
            } else {
                let count = min(chunk, source.count - position)
                parser.append(source[position..<(position + count)])
                position += count
            }
            while let event = try parser.next() {
                if case .request(let request) = event { requests.append(request) }
            }
        }
        return (requests, direct, offered)
    }

    @Test(arguments: [1, 7, 64, 100_000])
    func bodiesArriveWholeWhateverTheReceiveSize(chunk: Int) throws {
        let first = (0..<5000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        let second = Array("{\"a\": 1}".utf8)
        var source = Array("POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: \(first.count)\r\n\r\n".utf8) + first
        source += Array("POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: \(second.count)\r\n\r\n".utf8) + second
        source += Array("GET /c HTTP/1.1\r\nHost: x\r\n\r\n".utf8)
        let result = try Self.run(source, chunk: chunk)
        #expect(result.requests.map(\.path) == ["/a", "/b", "/c"])
        #expect(result.requests[0].body == first)
        #expect(result.requests[1].body == second)
        #expect(result.requests[2].body.isEmpty)
        // The space offered never reaches past the body into the next request.
        #expect(result.offered.allSatisfy { $0 <= first.count })
        // Unless the head's receive already carried the whole body, most of it came directly.
        if chunk < first.count { #expect(result.direct >= first.count - chunk) }
    }

    @Test func nothingIsOfferedWhileBytesAreBufferedOrTheBodyIsChunked() throws {
        var parser = HTTPRequestParser()
        parser.append(Array("POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nab".utf8))
        // Head parsed, two body bytes buffered but not yet consumed by `next`.
        guard case .head? = try parser.next() else {
            Issue.record("no head")
            return
        }
        #expect(try parser.next() == nil)
        // Both buffered bytes are stored now; the rest may come directly, at most 2 bytes.
        let offered = parser.receiveBody { space in (space.count, 0) }
        #expect(offered == 2)

        var chunked = HTTPRequestParser()
        chunked.append(Array("POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n".utf8))
        _ = try chunked.next()
        #expect(chunked.receiveBody { space in (space.count, 0) } == nil)

        var idle = HTTPRequestParser()
        #expect(idle.receiveBody { space in (space.count, 0) } == nil)
    }

    @Test func aMinimumKeepsSmallRemaindersOnTheBufferedPath() throws {
        var parser = HTTPRequestParser()
        parser.append(Array("POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 20000\r\n\r\n".utf8))
        _ = try parser.next()
        // 20,000 missing bytes: a 16 KiB minimum is met; after 5,000 arrive it is not.
        #expect(parser.receiveBody(minimum: 16 << 10) { space in (space.count, 5000) } == 20000)
        #expect(parser.receiveBody(minimum: 16 << 10) { space in (space.count, 0) } == nil)
        #expect(parser.receiveBody { space in (space.count, 0) } == 15000)
    }
}
