import Dispatch
import Foundation
@testable import LossdHTTP
import LossdTestSupport
import Logging
import Synchronization
import Testing

/// A responder with a slow route (run on the worker pool) and a fast inline one.
struct SlowAndFastResponder: HTTPResponder {
    let slowSeconds: Double

    func plan(_ head: HTTPRequestHead) -> RequestPlan {
        RequestPlan(label: head.path, inline: head.path == "/fast")
    }

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

    /// The leak of issue 12: the queue kept every finished job (and the request body it
    /// captured) until 1,024 more had passed. Now what a job captured is freed when it returns.
    @Test func aFinishedJobKeepsNothingItCaptured() {
        final class Payload: Sendable { let bytes = [UInt8](repeating: 1, count: 1 << 20) }
        let pool = WorkerPool(threads: 2, queueCapacity: 100)
        let tracker = WeakTracker()
        let group = DispatchGroup()
        for _ in 0..<20 {
            let payload = Payload()
            tracker.track(payload)
            group.enter()
            #expect(pool.submit { _ = payload.bytes.count; group.leave() })
        }
        #expect(group.wait(timeout: .now() + 10) == .success)
        var alive = tracker.alive
        for _ in 0..<100 where alive > 0 {
            usleep(10_000)
            alive = tracker.alive
        }
        #expect(alive == 0, "\(alive) finished jobs still hold their payload")
        pool.shutdown(timeout: 5)
    }

    @Test func theJobQueueClearsEverySlotItHandsOut() {
        var queue = JobQueue()
        for round in 0..<5 {
            for _ in 0..<(10 + round * 9) { queue.push {} }
            for _ in 0..<(7 + round * 5) { _ = queue.pop() }
            #expect(queue.occupiedSlots == queue.count)
        }
        while queue.pop() != nil {}
        #expect(queue.occupiedSlots == 0)
    }

    /// A light job runs on the reserved lane while heavy jobs hold every general thread;
    /// a second heavy job waits, and the pool then reports itself saturated.
    @Test func lightJobsRunWhileHeavyJobsHoldEveryGeneralThread() {
        let pool = WorkerPool(threads: 1, reservedLightThreads: 1, queueCapacity: 10)
        let release = DispatchSemaphore(value: 0)
        let heavyStarted = DispatchSemaphore(value: 0)
        let submitted1 = pool.submit({ heavyStarted.signal(); release.wait() }, class: .heavy)
        #expect(submitted1)
        heavyStarted.wait()
        #expect(!pool.isSaturated, "busy, but nothing waits yet")
        let lightDone = DispatchSemaphore(value: 0)
        let submitted2 = pool.submit({ lightDone.signal() }, class: .light)
        #expect(submitted2)
        #expect(lightDone.wait(timeout: .now() + 5) == .success, "the light job waited behind the heavy one")
        let secondHeavy = DispatchSemaphore(value: 0)
        let submitted3 = pool.submit({ secondHeavy.signal() }, class: .heavy)
        #expect(submitted3)
        #expect(secondHeavy.wait(timeout: .now() + 0.2) == .timedOut, "heavy work never uses the light lane")
        #expect(pool.isSaturated)
        release.signal()
        #expect(secondHeavy.wait(timeout: .now() + 5) == .success)
        pool.shutdown(timeout: 5)
    }

    @Test func everyGeneralThreadBusyForOverASecondIsSaturation() {
        let pool = WorkerPool(threads: 1, reservedLightThreads: 0, queueCapacity: 10)
        let release = DispatchSemaphore(value: 0)
        let submitted4 = pool.submit({ release.wait() }, class: .heavy)
        #expect(submitted4)
        usleep(100_000)
        #expect(!pool.isSaturated)
        usleep(1_100_000)
        #expect(pool.isSaturated)
        release.signal()
        usleep(100_000)
        #expect(!pool.isSaturated)
        pool.shutdown(timeout: 5)
    }
}

/// Counts how many tracked objects are still alive, through weak references.
final class WeakTracker: Sendable {
    private final class Box: @unchecked Sendable {
        // Only touched under the tracker's mutex.
        weak var object: AnyObject?
        init(_ object: AnyObject) { self.object = object }
    }
    private let boxes = Mutex<[Box]>([])
    func track(_ object: AnyObject) { boxes.withLock { $0.append(Box(object)) } }
    var alive: Int { boxes.withLock { $0.filter { $0.object != nil }.count } }
}

final class Counter: Sendable {
    private let count = Mutex(0)
    func increment() { count.withLock { $0 += 1 } }
    var value: Int { count.withLock { $0 } }
}
