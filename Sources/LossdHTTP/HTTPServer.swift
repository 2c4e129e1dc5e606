import CLossdSystem
import Dispatch
import Logging
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Our HTTP/1.1 server: epoll I/O threads (``HTTPServerConfiguration/ioThreads``), each
/// owning the connections handed to it, and a ``WorkerPool`` that runs handlers. The I/O
/// threads answer inline and quick requests themselves. Keep-alive, pipelining (answered in order),
/// `Expect: 100-continue`, strict framing, size limits, read/write deadlines, a
/// connection cap and graceful shutdown are all handled here.
public final class HTTPServer: Sendable {
    public let configuration: HTTPServerConfiguration
    /// Loop 0 accepts and runs on the thread that calls ``run()``; the others on threads of their own.
    private let loops: [EventLoop]
    private var loop: EventLoop { loops[0] }
    private let started = Mutex(false)
    /// The bytes requests hold at once (bodies and handlers' working sets), bounded by
    /// ``HTTPServerConfiguration/maxInflightBytes``.
    public let memoryBudget: MemoryBudget

    /// Binds the listening socket at once, so that a port clash fails here, not later.
    public init(configuration: HTTPServerConfiguration, responder: any HTTPResponder, logger: Logger) throws(SocketError) {
        self.configuration = configuration
        if configuration.tls != nil {
            // OpenSSL writes with write(2), which raises SIGPIPE on a connection the peer has
            // reset; the loop handles EPIPE itself, so the signal must not end the process.
            signal(SIGPIPE, SIG_IGN)
        }
        let pool = WorkerPool(
            threads: configuration.workerThreads, reservedLightThreads: configuration.reservedLightThreads,
            queueCapacity: configuration.maxQueuedRequests)
        memoryBudget = MemoryBudget(limit: configuration.maxInflightBytes)
        let group = LoopGroup()
        let first = try EventLoop(
            index: 0, group: group, configuration: configuration, responder: responder, pool: pool,
            budget: memoryBudget, logger: logger)
        var loops = [first]
        for index in 1..<max(1, configuration.ioThreads) {
            do throws(SocketError) {
                loops.append(
                    try EventLoop(
                        index: index, group: group, configuration: configuration, responder: responder, pool: pool,
                        budget: memoryBudget, logger: logger))
            } catch {
                for loop in loops { loop.closeAfterRun() }
                throw error
            }
        }
        first.peers = Array(loops.dropFirst())
        self.loops = loops
    }

    /// The host and port actually bound.
    public var boundAddress: (host: String, port: Int) { loop.boundAddress }

    /// The operations listener's host and port, when one is configured.
    public var operationsAddress: (host: String, port: Int)? { loop.operationsAddress }

    /// Whether the server still takes new work (false once shutdown has begun).
    public var isAcceptingWork: Bool { !loop.isDraining }

    /// Open client connections.
    public var openConnections: Int { loop.openConnectionCount }

    /// Requests waiting for a worker thread.
    public var queueDepth: Int { loop.pool.queueDepth }

    /// Worker threads running a handler now.
    public var busyWorkers: Int { loop.pool.busyThreads }

    /// Every general worker is busy and requests wait: new heavy work would queue.
    public var isSaturated: Bool { loop.pool.isSaturated }

    /// Serves until ``beginShutdown()`` has drained every connection (or the grace period
    /// ran out). Blocks the calling thread.
    public func run() {
        let alreadyStarted = started.withLock { value -> Bool in
            defer { value = true }
            return value
        }
        precondition(!alreadyStarted, "HTTPServer.run() called twice")
        let others = DispatchGroup()
        for other in loops.dropFirst() {
            others.enter()
            WorkerThread(name: "lossd-io-\(other.index)") {
                other.run()
                others.leave()
            }.start()
        }
        loop.run()
        others.wait()
        // Workers first: a handler still running posts its answer to a loop's eventfd.
        loop.pool.shutdown(timeout: 1)
        for each in loops { each.closeAfterRun() }
    }

    /// Stops accepting connections, lets in-flight requests finish within the grace
    /// period, then makes ``run()`` return. Safe from any thread, idempotent.
    public func beginShutdown() {
        for each in loops { each.requestShutdown() }
    }
}
