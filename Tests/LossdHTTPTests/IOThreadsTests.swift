import Dispatch
import Foundation
@testable import LossdHTTP
import LossdTestSupport
import Synchronization
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Answers with the name of the thread that ran the handler: `/quick` is planned quick and
/// `/inline` inline (both run by the I/O thread), anything else goes to the worker pool.
struct ThreadNamingResponder: HTTPResponder {
    func plan(_ head: HTTPRequestHead) -> RequestPlan {
        RequestPlan(label: head.path, inline: head.path == "/inline", quick: head.path == "/quick", workClass: .light)
    }

    func respond(to request: HTTPRequest, context: RequestContext) -> HTTPResponse {
        let comm = (try? String(contentsOfFile: "/proc/thread-self/comm", encoding: .utf8)) ?? "?"
        let text = comm.trimmingCharacters(in: .whitespacesAndNewlines)
        return HTTPResponse(status: .ok, contentType: "text/plain", body: text)
    }
}

/// Collects the access-log lines for one test: `path status request-id`.
struct LineFormat: AccessLogFormat {
    func append(_ record: RequestRecord, to buffer: inout [UInt8]) {
        buffer.append(contentsOf: "\(record.path ?? "-") \(record.status.code) \(record.requestID)\n".utf8)
    }
}

@Suite("I/O threads: connections spread over event loops, quick requests on them")
struct IOThreadsTests {
    /// A connection's first quick request moves it, with that request, to the least loaded
    /// loop; a quick request runs on the loop that owns its connection, any other on a worker.
    @Test func connectionsAreSpreadOverTheLoopsAndQuickRequestsRunOnThem() throws {
        let running = try RunningServer({ $0.ioThreads = 3; $0.workerThreads = 2 }, responder: ThreadNamingResponder())
        defer { running.stop() }
        var quickThreads = Set<String>()
        var clients: [RawClient] = []
        for _ in 0..<6 {
            let client = try RawClient(port: running.port)
            let quick = try client.exchange(get("/quick"))
            #expect(quick.status == 200)
            quickThreads.insert(String(decoding: quick.body, as: UTF8.self))
            let pooled = String(decoding: try client.exchange(get("/pooled")).body, as: UTF8.self)
            #expect(pooled.hasPrefix("lossd-worker-") || pooled.hasPrefix("lossd-light-"), "\(pooled)")
            // It stays where its first quick request put it.
            let again = try client.exchange(get("/quick"))
            #expect(again.body == quick.body)
            clients.append(client)
        }
        // Three loops: loop 0 runs on the caller's thread, the others on lossd-io-1 and -2.
        #expect(quickThreads.count == 3, "\(quickThreads)")
        #expect(quickThreads.contains("lossd-io-1") && quickThreads.contains("lossd-io-2"), "\(quickThreads)")
        #expect(running.server.openConnections == 6)
    }

    /// Connections that bring only cheap (inline) requests stay on the accepting loop,
    /// however many: probes never wake another loop.
    @Test func connectionsWithOnlyInlineRequestsStayOnTheAcceptingLoop() throws {
        let running = try RunningServer({ $0.ioThreads = 3 }, responder: ThreadNamingResponder())
        defer { running.stop() }
        var threads = Set<String>()
        var clients: [RawClient] = []
        for _ in 0..<40 {
            let client = try RawClient(port: running.port)
            for _ in 0..<3 { threads.insert(String(decoding: try client.exchange(get("/inline")).body, as: UTF8.self)) }
            clients.append(client)
        }
        #expect(threads.count == 1, "\(threads)")
        #expect(!threads.contains { $0.hasPrefix("lossd-io-") }, "\(threads)")
    }

    /// Requests pipelined behind the quick request that moves a connection are read and
    /// answered, in order, by its new loop.
    @Test func pipelinedRequestsFollowAConnectionToItsNewLoop() throws {
        let running = try RunningServer({ $0.ioThreads = 2 }, responder: ThreadNamingResponder())
        defer { running.stop() }
        // The first connection stays on loop 0; the second moves to loop 1 at its first quick request.
        let first = try RawClient(port: running.port)
        #expect(try first.exchange(get("/quick")).status == 200)
        let second = try RawClient(port: running.port)
        try second.send(get("/inline") + get("/quick") + get("/pooled") + get("/quick") + get("/inline"))
        let answers = try (0..<5).map { _ in String(decoding: try second.readResponse().body, as: UTF8.self) }
        #expect(answers[1] == "lossd-io-1" && answers[3] == "lossd-io-1", "\(answers)")
        #expect(answers[4] == "lossd-io-1", "\(answers)")
        #expect(answers[2].hasPrefix("lossd-worker-") || answers[2].hasPrefix("lossd-light-"), "\(answers)")
        #expect(!answers[0].hasPrefix("lossd-io-"), "\(answers)")
    }

    /// At the connection cap, the connection idle the longest is evicted wherever it lives.
    @Test func theLongestIdleConnectionIsEvictedFromAnyLoop() throws {
        let running = try RunningServer({ $0.ioThreads = 3; $0.maxConnections = 4 }, responder: ThreadNamingResponder())
        defer { running.stop() }
        var idle: [RawClient] = []
        for _ in 0..<4 {
            let client = try RawClient(port: running.port)
            #expect(try client.exchange(get("/quick")).status == 200)
            idle.append(client)
            usleep(20_000)
        }
        let newcomer = try RawClient(port: running.port)
        #expect(try newcomer.exchange(get("/quick")).status == 200)
        #expect(idle[0].isClosedByPeer(), "the longest-idle connection was closed to admit the new one")
        for client in idle.dropFirst() { #expect(try client.exchange(get("/quick")).status == 200) }
    }

    /// With an access-log format, every exchange on every loop is written once, as a whole
    /// line, soon after its answer (at the end of the loop's turn).
    @Test func everyExchangeIsLoggedOnceByTheLoopThatAnsweredIt() throws {
        var pipeEnds: [Int32] = [0, 0]
        #expect(pipe(&pipeEnds) == 0)
        defer { close(pipeEnds[0]) }
        let running = try RunningServer(
            { $0.ioThreads = 2; $0.accessLog = LineFormat(); $0.accessLogDescriptor = pipeEnds[1] },
            responder: ThreadNamingResponder())
        let clients = try (0..<4).map { _ in try RawClient(port: running.port) }
        var expected: [String] = []
        for round in 0..<10 {
            for (index, client) in clients.enumerated() {
                let id = "r\(round)-c\(index)"
                let path = round % 2 == 0 ? "/quick" : "/pooled"
                #expect(try client.exchange("GET \(path) HTTP/1.1\r\nHost: x\r\nX-Request-Id: \(id)\r\n\r\n").status == 200)
                expected.append("\(path) 200 \(id)")
            }
        }
        running.stop()
        close(pipeEnds[1])
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = read(pipeEnds[0], &chunk, chunk.count)
            if n <= 0 { break }
            bytes.append(contentsOf: chunk[0..<n])
        }
        let lines = String(decoding: bytes, as: UTF8.self).split(separator: "\n").map(String.init)
        #expect(lines.sorted() == expected.sorted())
    }
}
