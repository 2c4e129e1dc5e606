import Dispatch
import Foundation
import LossdHTTP
import LossdTestSupport
import Logging
import Synchronization
import Testing

/// A responder with a slow route (run on the worker pool) and a fast inline one.
struct SlowAndFastResponder: HTTPResponder {
    let slowSeconds: Double

    func answersInline(_ head: HTTPRequestHead) -> Bool { head.path == "/fast" }

    func respond(to request: HTTPRequest, context: RequestContext) -> HTTPResponse {
        if request.path == "/slow" { Thread.sleep(forTimeInterval: slowSeconds) }
        return HTTPResponse(status: .ok, contentType: "text/plain", body: request.path)
    }
}

/// Starts an in-process server on a free port and stops it when the test ends.
final class RunningServer: Sendable {
    let server: HTTPServer
    private let stopped = DispatchSemaphore(value: 0)

    init(_ configure: (inout HTTPServerConfiguration) -> Void, responder: any HTTPResponder) throws {
        var configuration = HTTPServerConfiguration()
        configuration.port = 0
        configure(&configuration)
        server = try HTTPServer(
            configuration: configuration, responder: responder,
            logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
        let server = self.server, stopped = self.stopped
        DispatchQueue.global().async {
            server.run()
            stopped.signal()
        }
    }

    var port: Int { server.boundAddress.port }

    func stop() {
        server.beginShutdown()
        _ = stopped.wait(timeout: .now() + 15)
    }
}

struct TimedOut: Error {}

/// Polls `condition` every 5 ms for up to 5 s.
func waitUntil(_ condition: () -> Bool) throws {
    for _ in 0..<1000 {
        if condition() { return }
        usleep(5_000)
    }
    throw TimedOut()
}

@Suite("HTTPServer worker pool and overload")
struct HTTPServerTests {
    @Test func fullQueueGets503WithRetryAfter() async throws {
        let running = try RunningServer({ $0.workerThreads = 1; $0.maxQueuedRequests = 1 }, responder: SlowAndFastResponder(slowSeconds: 1))
        defer { running.stop() }
        // One request runs, one waits in the queue, the third is refused at once.
        let clients = try (0..<3).map { _ in try RawClient(port: running.port) }
        try clients[0].send(get("/slow"))
        try waitUntil { running.server.queueDepth == 0 && running.server.busyWorkers == 1 }
        try clients[1].send(get("/slow"))
        try waitUntil { running.server.queueDepth == 1 }
        try clients[2].send(get("/slow"))
        let refused = try clients[2].readResponse()
        #expect(refused.status == 503)
        #expect(refused.header("retry-after") == "1")
        #expect(try clients[0].readResponse().status == 200)
        #expect(try clients[1].readResponse().status == 200)
    }

    @Test func inlineRoutesAnswerWhileEveryWorkerIsBusy() async throws {
        let running = try RunningServer({ $0.workerThreads = 1 }, responder: SlowAndFastResponder(slowSeconds: 1.5))
        defer { running.stop() }
        let busy = try RawClient(port: running.port)
        try busy.send(get("/slow"))
        usleep(100_000)
        let probe = try RawClient(port: running.port)
        let start = Date()
        #expect(try probe.exchange(get("/fast")).status == 200)
        #expect(Date().timeIntervalSince(start) < 1.0)
        #expect(try busy.readResponse().status == 200)
    }

    @Test func portZeroBindsAFreePort() throws {
        let running = try RunningServer({ _ in }, responder: SlowAndFastResponder(slowSeconds: 0))
        defer { running.stop() }
        #expect(running.port > 0)
        #expect(running.server.isAcceptingWork)
    }

    @Test func bindingABusyPortFailsWithAnError() throws {
        let running = try RunningServer({ _ in }, responder: SlowAndFastResponder(slowSeconds: 0))
        defer { running.stop() }
        var configuration = HTTPServerConfiguration()
        configuration.port = running.port
        #expect(throws: SocketError.self) {
            _ = try HTTPServer(configuration: configuration, responder: SlowAndFastResponder(slowSeconds: 0), logger: Logger(label: "t"))
        }
    }
}

@Suite("WorkerPool")
struct WorkerPoolTests {
    @Test func runsEveryAcceptedJob() {
        let pool = WorkerPool(threads: 2, queueCapacity: 100)
        let group = DispatchGroup()
        let counter = Counter()
        for _ in 0..<50 {
            group.enter()
            #expect(pool.submit { counter.increment(); group.leave() })
        }
        #expect(group.wait(timeout: .now() + 10) == .success)
        #expect(counter.value == 50)
        pool.shutdown(timeout: 5)
    }

    @Test func refusesJobsBeyondItsQueueCapacity() {
        let pool = WorkerPool(threads: 1, queueCapacity: 2)
        let release = DispatchSemaphore(value: 0)
        #expect(pool.submit { release.wait() })  // running
        usleep(50_000)
        #expect(pool.submit {})  // queued
        #expect(pool.submit {})  // queued
        #expect(!pool.submit {})  // refused
        #expect(pool.queueDepth == 2)
        release.signal()
        pool.shutdown(timeout: 5)
    }

    @Test func refusesJobsAfterShutdown() {
        let pool = WorkerPool(threads: 1, queueCapacity: 2)
        pool.shutdown(timeout: 5)
        #expect(!pool.submit {})
    }
}

final class Counter: Sendable {
    private let count = Mutex(0)
    func increment() { count.withLock { $0 += 1 } }
    var value: Int { count.withLock { $0 } }
}
