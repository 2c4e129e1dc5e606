import CLossdSystem
import Dispatch
import Logging
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

// MARK: - Event loop

/// The I/O thread's state.
///
/// `@unchecked Sendable` is safe because every stored property other than `inbox`,
/// `draining`, `connectionCount` (each a `Mutex` or `Atomic`) and immutable `let`s is
/// read and written only on the loop thread, inside `run()`; other threads reach the
/// loop solely through `post(_:)`, which locks `inbox` and writes the eventfd.
final class EventLoop: @unchecked Sendable {
    enum Message {
        case response(connectionID: UInt64, fd: Int32, response: HTTPResponse)
        case shutdown
    }

    let configuration: HTTPServerConfiguration
    let responder: any HTTPResponder
    let pool: WorkerPool
    let budget: MemoryBudget
    let logger: Logger
    let boundAddress: (host: String, port: Int)

    let epollFD: Int32
    let wakeFD: Int32
    var listenFD: Int32
    /// The operations listener (-1 when none).
    var operationsFD: Int32 = -1
    let operationsAddress: (host: String, port: Int)?
    var operationsConnections = 0
    let inbox = Mutex<[Message]>([])
    let drainingFlag = Atomic<Bool>(false)
    let connectionCount = Atomic<Int>(0)

    var connections: [Int32: Connection] = [:]
    var nextConnectionID: UInt64 = 1
    var shutdownDeadline: UInt64 = 0
    var acceptPausedUntil: UInt64 = 0
    var readBuffer = [UInt8](repeating: 0, count: 64 * 1024)
    var dateCache = HTTPDateCache()
    let requestIDPrefix: String
    var requestCounter: UInt64 = 0
    var refusedSinceWarning = 0
    /// Open connections admitted over the cap for probes.
    var probeConnections = 0
    var nextCapWarning: UInt64 = 0

    init(
        configuration: HTTPServerConfiguration, responder: any HTTPResponder, pool: WorkerPool, budget: MemoryBudget,
        logger: Logger
    ) throws(SocketError) {
        self.configuration = configuration
        self.responder = responder
        self.pool = pool
        self.budget = budget
        self.logger = logger
        listenFD = try Socket.listen(host: configuration.host, port: configuration.port, backlog: 1024)
        boundAddress = Socket.localAddress(listenFD) ?? (configuration.host, configuration.port)
        if let operations = configuration.operations {
            do throws(SocketError) {
                operationsFD = try Socket.listen(host: operations.host, port: operations.port, backlog: 128)
            } catch {
                close(listenFD)
                throw error
            }
            operationsAddress = Socket.localAddress(operationsFD) ?? (operations.host, operations.port)
        } else {
            operationsAddress = nil
        }
        epollFD = lossd_epoll_create()
        wakeFD = lossd_eventfd_create()
        guard epollFD >= 0, wakeFD >= 0 else { throw SocketError("epoll/eventfd") }
        lossd_epoll_add(epollFD, listenFD, 1, 0)
        if operationsFD >= 0 { lossd_epoll_add(epollFD, operationsFD, 1, 0) }
        lossd_epoll_add(epollFD, wakeFD, 1, 0)
        requestIDPrefix = String(UInt32.random(in: 0...UInt32.max), radix: 16)
    }

    /// The server's gauges, read when called: handed to every request in its context, so
    /// that `/metrics` and `/readyz` see the server without holding a reference to it.
    /// Made once (on the loop thread, at the first dispatch); it holds the loop weakly.
    lazy var gauges: @Sendable () -> ServerGauges = { [weak self] in
        guard let self else { return ServerGauges(openConnections: 0, queueDepth: 0) }
        return ServerGauges(
            openConnections: openConnectionCount, queueDepth: pool.queueDepth, inflightBytes: budget.inUse,
            inflightLimit: budget.limit, saturated: pool.isSaturated)
    }

    var isDraining: Bool { drainingFlag.load(ordering: .acquiring) }
    var openConnectionCount: Int { connectionCount.load(ordering: .relaxed) }

    /// Hands a message to the loop thread from any thread.
    func post(_ message: Message) {
        inbox.withLock { $0.append(message) }
        var one: UInt64 = 1
        _ = write(wakeFD, &one, 8)
    }

    func requestShutdown() { post(.shutdown) }

    // MARK: Loop

    func run() {
        var fds = [Int32](repeating: 0, count: 256)
        var flags = [UInt32](repeating: 0, count: 256)
        var nextSweep = Clock.now + Clock.nanos(0.1)
        while true {
            let count = lossd_epoll_wait(epollFD, &fds, &flags, 256, 100)
            for i in 0..<max(0, Int(count)) {
                let fd = fds[i]
                if fd == listenFD {
                    acceptConnections()
                } else if fd == operationsFD {
                    acceptOperationsConnections()
                } else if fd == wakeFD {
                    var value: UInt64 = 0
                    _ = read(wakeFD, &value, 8)
                    processInbox()
                } else if let connection = connections[fd] {
                    handleEvent(connection, flags: flags[i])
                }
            }
            let now = Clock.now
            if now >= nextSweep {
                sweepDeadlines(now: now)
                nextSweep = now + Clock.nanos(0.1)
            }
            if isDraining {
                if connections.isEmpty { break }
                if now >= shutdownDeadline {
                    logger.warning("shutdown grace period over; closing \(connections.count) connection(s)")
                    for connection in Array(connections.values) { closeConnection(connection) }
                    break
                }
            }
        }
        if listenFD >= 0 { close(listenFD) }
        if operationsFD >= 0 { close(operationsFD) }
        close(epollFD)
        close(wakeFD)
    }

    func processInbox() {
        let messages = inbox.withLock { inbox -> [Message] in
            defer { inbox.removeAll(keepingCapacity: true) }
            return inbox
        }
        for message in messages {
            switch message {
            case let .response(connectionID, fd, response):
                // The fd may have been closed and reused while the handler ran.
                guard let connection = connections[fd], connection.id == connectionID,
                    connection.phase == .awaitingResponse
                else { continue }
                if connection.detached {
                    logAccess(connection, response: response, bytesOut: 0)
                    closeConnection(connection)
                    continue
                }
                sendResponse(response, on: connection)
            case .shutdown:
                startDraining()
            }
        }
    }

    func startDraining() {
        guard !isDraining else { return }
        drainingFlag.store(true, ordering: .releasing)
        shutdownDeadline = Clock.now + Clock.nanos(configuration.shutdownGracePeriod)
        if listenFD >= 0 {
            lossd_epoll_remove(epollFD, listenFD)
            close(listenFD)
            listenFD = -1
        }
        if operationsFD >= 0 {
            lossd_epoll_remove(epollFD, operationsFD)
            close(operationsFD)
            operationsFD = -1
        }
        logger.info("shutting down: stopped accepting, draining \(connections.count) connection(s)")
        for connection in Array(connections.values) where isIdle(connection) {
            closeConnection(connection)
        }
    }

    func isIdle(_ connection: Connection) -> Bool {
        connection.phase == .reading && !connection.requestStarted && !connection.hasPendingOutput
    }

    // MARK: Accept

    func acceptConnections() {
        guard listenFD >= 0 else { return }
        for _ in 0..<64 {
            var storage = sockaddr_storage()
            var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
            let fd = withUnsafeMutablePointer(to: &storage) { lossd_accept(listenFD, $0, &length) }
            if fd < 0 {
                switch errno {
                case EAGAIN, EWOULDBLOCK, EINTR, ECONNABORTED: return
                case EMFILE, ENFILE, ENOBUFS, ENOMEM:
                    // Out of descriptors: stop accepting for a moment instead of spinning.
                    logger.error("accept: \(String(cString: strerror(errno))); pausing accepts")
                    lossd_epoll_remove(epollFD, listenFD)
                    acceptPausedUntil = Clock.now + Clock.nanos(0.1)
                    return
                default:
                    return
                }
            }
            var probeOnly = false
            if connections.count - probeConnections - operationsConnections >= configuration.maxConnections {
                // At the cap: an idle keep-alive connection makes room; failing that, a few
                // slots beyond the cap are kept for health probes.
                if !evictOldestIdleConnection() {
                    guard probeConnections < configuration.probeConnections else {
                        rejectOverCapacity(fd)
                        continue
                    }
                    probeOnly = true
                }
            }
            Socket.setNoDelay(fd)
            let connection = Connection(
                fd: fd, id: nextConnectionID, remoteAddress: Socket.peerAddress(&storage),
                limits: configuration.parserLimits)
            connection.probeOnly = probeOnly
            connection.idleSince = Clock.now
            if probeOnly { probeConnections += 1 }
            nextConnectionID += 1
            if let context = configuration.tls {
                guard let session = TLSSession(context: context, fd: fd) else {
                    logger.error("cannot allocate a TLS session; closing the connection")
                    close(fd)
                    continue
                }
                connection.tls = session
            }
            connections[fd] = connection
            connectionCount.store(connections.count, ordering: .relaxed)
            lossd_epoll_add(epollFD, fd, 1, 0)
            setDeadline(connection, .header, seconds: configuration.headerTimeout)
        }
    }

    /// Accepts on the operations listener: plain TCP, its own small cap, only its paths.
    func acceptOperationsConnections() {
        guard operationsFD >= 0, let operations = configuration.operations else { return }
        for _ in 0..<16 {
            var storage = sockaddr_storage()
            var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
            let fd = withUnsafeMutablePointer(to: &storage) { lossd_accept(operationsFD, $0, &length) }
            guard fd >= 0 else { return }
            guard operationsConnections < operations.maxConnections else {
                close(fd)
                continue
            }
            Socket.setNoDelay(fd)
            let connection = Connection(
                fd: fd, id: nextConnectionID, remoteAddress: Socket.peerAddress(&storage), limits: configuration.parserLimits)
            nextConnectionID += 1
            connection.onOperationsListener = true
            connection.idleSince = Clock.now
            operationsConnections += 1
            connections[fd] = connection
            lossd_epoll_add(epollFD, fd, 1, 0)
            setDeadline(connection, .header, seconds: configuration.headerTimeout)
        }
    }

    /// Closes the connection that has been idle between requests the longest, if any.
    func evictOldestIdleConnection() -> Bool {
        var oldest: Connection?
        for connection in connections.values where isIdle(connection) && !connection.probeOnly && !connection.onOperationsListener {
            if oldest == nil || connection.idleSince < oldest!.idleSince { oldest = connection }
        }
        guard let oldest else { return false }
        closeConnection(oldest)
        return true
    }

    /// The 503 for a connection or request turned away for capacity.
    func capacityResponse(_ detail: String) -> HTTPResponse {
        var response = responder.errorResponse(status: .serviceUnavailable, detail: detail)
        response.headers.replaceOrAdd(name: "Retry-After", value: String(configuration.retryAfterSeconds))
        return response
    }

    /// Over the connection cap: a best-effort 503 and close, without registering the socket.
    /// A TLS client is closed without one: it has not finished a handshake to read it over.
    func rejectOverCapacity(_ fd: Int32) {
        var bytesOut = 0
        if configuration.tls == nil {
            let response = capacityResponse("too many open connections")
            let bytes = serialize(response, keepAlive: false, isHead: false)
            bytes.withUnsafeBytes { bytesOut = Socket.send(fd, $0) ?? 0 }
        }
        close(fd)
        // Counted like any answered request, so that shed connections show in the metrics.
        refusedSinceWarning += 1
        let now = Clock.now
        if now >= nextCapWarning {
            // At most one line a second, however many connections are refused.
            logger.warning("connection cap (\(configuration.maxConnections)) reached; refused \(refusedSinceWarning) connection(s)")
            refusedSinceWarning = 0
            nextCapWarning = now + Clock.nanos(1)
        }
        responder.requestCompleted(
            RequestRecord(method: nil, path: nil, status: .serviceUnavailable, bytesIn: 0, bytesOut: bytesOut, duration: 0))
    }
}
