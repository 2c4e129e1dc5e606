import CLossdSystem
import Dispatch
import Logging
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

// MARK: - Event loop

/// One I/O thread's state. A server runs one loop per I/O thread. Loop 0 accepts, and every
/// connection starts on it. The first time a connection brings a quick request (computation
/// the loop runs itself), loop 0 moves it to the loop owning the fewest connections, where
/// it stays. Connections bringing only cheap requests (probes, metrics) or work for the
/// worker pool stay on loop 0: one loop answers tens of thousands of those a second, and
/// spreading them would only wake more threads to compete for the cores with the workers
/// (and, in a benchmark, with the client), which lengthens the tail; computation spreads
/// over every loop's thread.
///
/// `@unchecked Sendable` is safe because every stored property other than `inbox` (a
/// `Mutex`), `group` (atomics) and immutable `let`s is read and written only on the loop
/// thread, inside `run()` (`peers` is set once, before any loop runs); other threads reach
/// the loop solely through `post(_:)`, which locks `inbox` and writes the eventfd.
final class EventLoop: @unchecked Sendable {
    enum Message {
        case response(connectionID: UInt64, fd: Int32, response: HTTPResponse)
        /// A connection moved from loop 0, now this loop's to serve, with the request to run.
        case migrate(ConnectionHandover)
        /// Loop 0, at the connection cap, asks for this loop's longest-idle connection.
        case reportOldestIdle(OldestIdleQuery)
        /// Close this idle connection to make room (if it is still idle).
        case evict(connectionID: UInt64, fd: Int32)
        case shutdown
    }

    let configuration: HTTPServerConfiguration
    let responder: any HTTPResponder
    let pool: WorkerPool
    let budget: MemoryBudget
    let logger: Logger
    let group: LoopGroup
    /// This loop's place in the server (0: the accepting loop).
    let index: Int
    /// The other loops (set on loop 0 only, before any loop runs).
    var peers: [EventLoop] = []
    /// Where loop 0's search for the least loaded loop starts (loop 0 only; 0 is itself).
    var nextOwner = 0
    /// Connections leaving this loop, posted to their new loop once this turn's events are
    /// handled (nothing on this loop touches them after that).
    var handovers: [(loop: EventLoop, handover: ConnectionHandover)] = []
    let boundAddress: (host: String, port: Int)

    let epollFD: Int32
    let wakeFD: Int32
    /// The listening socket (-1 on every loop but loop 0, and once draining).
    var listenFD: Int32 = -1
    /// The operations listener (-1 when none, and on every loop but loop 0).
    var operationsFD: Int32 = -1
    let operationsAddress: (host: String, port: Int)?
    var operationsConnections = 0
    let inbox = Mutex<[Message]>([])

    var connections: [Int32: Connection] = [:] {
        // Without `oldValue`, the dictionary is still changed in place (SE-0268).
        didSet { connectionTally.store(connections.count, ordering: .relaxed) }
    }
    /// How many connections this loop owns, for loop 0 to place new ones on the least loaded.
    let connectionTally = Atomic<Int>(0)
    var nextConnectionID: UInt64 = 1
    var shutdownDeadline: UInt64 = 0
    var acceptPausedUntil: UInt64 = 0
    var readBuffer = [UInt8](repeating: 0, count: 64 * 1024)
    var dateCache = HTTPDateCache()
    var refusedSinceWarning = 0
    /// Access-log lines not yet written (with ``HTTPServerConfiguration/accessLog``).
    var accessLogBuffer: [UInt8] = []
    var nextCapWarning: UInt64 = 0

    /// Makes loop `index` of a server; loop 0 binds the listeners (at once, so that a port
    /// clash fails here), the others serve what loop 0 hands them.
    init(
        index: Int, group: LoopGroup, configuration: HTTPServerConfiguration, responder: any HTTPResponder,
        pool: WorkerPool, budget: MemoryBudget, logger: Logger
    ) throws(SocketError) {
        self.index = index
        self.group = group
        self.configuration = configuration
        self.responder = responder
        self.pool = pool
        self.budget = budget
        self.logger = logger
        if index == 0 {
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
        } else {
            // Read from loop 0 only (``HTTPServer/boundAddress``).
            boundAddress = (configuration.host, configuration.port)
            operationsAddress = nil
        }
        epollFD = lossd_epoll_create()
        wakeFD = lossd_eventfd_create()
        guard epollFD >= 0, wakeFD >= 0 else {
            if listenFD >= 0 { close(listenFD) }
            if operationsFD >= 0 { close(operationsFD) }
            throw SocketError("epoll/eventfd")
        }
        if listenFD >= 0 { lossd_epoll_add(epollFD, listenFD, 1, 0) }
        if operationsFD >= 0 { lossd_epoll_add(epollFD, operationsFD, 1, 0) }
        lossd_epoll_add(epollFD, wakeFD, 1, 0)
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

    var isDraining: Bool { group.isDraining }
    var openConnectionCount: Int { group.openConnections.load(ordering: .relaxed) }

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
            if !accessLogBuffer.isEmpty { flushAccessLog() }
            let now = Clock.now
            if now >= nextSweep {
                sweepDeadlines(now: now)
                nextSweep = now + Clock.nanos(0.1)
            }
            if !handovers.isEmpty {
                for (loop, handover) in handovers { loop.post(.migrate(handover)) }
                handovers.removeAll(keepingCapacity: true)
            }
            if isDraining {
                if shutdownDeadline == 0 { startDraining() }
                // The other loops stay until loop 0 has stopped: nothing is handed to a loop
                // that has already gone.
                if connections.isEmpty && inbox.withLock({ $0.isEmpty })
                    && (index == 0 || group.acceptorStopped.load(ordering: .acquiring))
                {
                    break
                }
                if now >= shutdownDeadline {
                    logger.warning("shutdown grace period over; closing \(connections.count) connection(s)")
                    for connection in Array(connections.values) { closeConnection(connection) }
                    break
                }
            }
        }
        if !accessLogBuffer.isEmpty { flushAccessLog() }
        // The listeners were closed when draining began. Loop 0's last handovers were posted
        // above (within its last turn).
        if index == 0 { group.acceptorStopped.store(true, ordering: .releasing) }
    }

    /// After every loop has stopped: closes what was handed to this loop too late to be
    /// served, and the loop's own descriptors.
    func closeAfterRun() {
        let leftovers = inbox.withLock { inbox -> [Message] in
            defer { inbox.removeAll() }
            return inbox
        }
        for case let .migrate(handover) in leftovers {
            handover.connection.tls = nil
            close(handover.connection.fd)
            releaseCount(probeOnly: handover.connection.probeOnly)
        }
        // Set up but never run (a later loop failed to start): the listeners are still open;
        // a loop that ran closed them when it began draining.
        if listenFD >= 0 { close(listenFD) }
        if operationsFD >= 0 { close(operationsFD) }
        listenFD = -1
        operationsFD = -1
        close(epollFD)
        close(wakeFD)
    }

    /// The loop a connection about to run its first quick request moves to: the least loaded
    /// (by connections owned; loop 0 only, once per connection; nil: it stays here).
    func newOwner(of connection: Connection) -> EventLoop? {
        guard index == 0, !peers.isEmpty, !connection.placed, !connection.onOperationsListener, !isDraining else {
            return nil
        }
        connection.placed = true
        // The loop owning the fewest connections (this one not counting the connection being
        // placed), starting the search after the last choice so that ties go round.
        let loads = [connections.count - 1] + peers.map { $0.connectionTally.load(ordering: .relaxed) }
        var owner = nextOwner
        for step in 1...loads.count {
            let candidate = (nextOwner + step) % loads.count
            if loads[candidate] < loads[owner] { owner = candidate }
        }
        nextOwner = (owner + 1) % loads.count
        return owner == 0 ? nil : peers[owner - 1]
    }

    /// Moves a connection, with the request it is to run, to `loop`: out of this loop's table
    /// and epoll now, posted at the end of this turn's events.
    func handOver(_ connection: Connection, request: HTTPRequest, to loop: EventLoop) {
        lossd_epoll_remove(epollFD, connection.fd)
        connections[connection.fd] = nil
        // Stops this loop's parser loop for it; the new loop dispatches the request.
        connection.phase = .awaitingResponse
        handovers.append((loop, ConnectionHandover(connection: connection, request: request)))
    }

    /// Takes over a connection from loop 0 and runs the request it came with.
    func receive(_ handover: ConnectionHandover) {
        let connection = handover.connection
        connections[connection.fd] = connection
        // Registered afresh for reading, as a new connection is.
        connection.readInterest = true
        connection.writeInterest = false
        connection.hangupInterest = false
        lossd_epoll_add(epollFD, connection.fd, 1, 0)
        dispatch(handover.request, on: connection)
    }

    /// Lowers the server-wide counts for a connection of the main listener that closed.
    func releaseCount(probeOnly: Bool) {
        group.openConnections.subtract(1, ordering: .relaxed)
        if probeOnly {
            group.probeConnections.subtract(1, ordering: .relaxed)
        } else {
            group.generalConnections.subtract(1, ordering: .relaxed)
        }
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
            case .migrate(let handover):
                receive(handover)
            case .reportOldestIdle(let query):
                query.reply(oldestIdleConnection().map {
                    OldestIdleQuery.Answer(idleSince: $0.idleSince, connectionID: $0.id, fd: $0.fd)
                })
            case let .evict(connectionID, fd):
                // The connection named may have started a request since it was chosen: then
                // the loop's longest-idle one goes instead, so that the cap holds.
                if let connection = connections[fd], connection.id == connectionID, isIdle(connection) {
                    closeConnection(connection)
                } else if let oldest = oldestIdleConnection() {
                    closeConnection(oldest)
                }
            case .shutdown:
                startDraining()
            }
        }
    }

    func startDraining() {
        guard shutdownDeadline == 0 else { return }
        group.draining.store(true, ordering: .releasing)
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
        if index == 0 {
            logger.info("shutting down: stopped accepting, draining \(openConnectionCount) connection(s)")
        }
        for connection in Array(connections.values) where isIdle(connection) {
            closeConnection(connection)
        }
    }

    func isIdle(_ connection: Connection) -> Bool {
        connection.phase == .reading && !connection.requestStarted && !connection.hasPendingOutput
    }

    // MARK: Accept

    /// Accepts on the main listener (loop 0); every connection starts on this loop.
    func acceptConnections() {
        for _ in 0..<64 {
            guard listenFD >= 0, !isDraining else { return }
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
            if group.generalConnections.load(ordering: .relaxed) >= configuration.maxConnections {
                // At the cap: an idle keep-alive connection makes room; failing that, a few
                // slots beyond the cap are kept for health probes.
                if !evictLongestIdleConnection() {
                    guard group.probeConnections.load(ordering: .relaxed) < configuration.probeConnections else {
                        rejectOverCapacity(fd)
                        continue
                    }
                    probeOnly = true
                }
            }
            Socket.setNoDelay(fd)
            group.openConnections.add(1, ordering: .relaxed)
            if probeOnly {
                group.probeConnections.add(1, ordering: .relaxed)
            } else {
                group.generalConnections.add(1, ordering: .relaxed)
            }
            let connectionID = nextConnectionID
            nextConnectionID += 1
            adopt(fd: fd, connectionID: connectionID, remoteAddress: Socket.peerAddress(&storage), probeOnly: probeOnly)
        }
    }

    /// Starts serving a connection just accepted (and counted).
    func adopt(fd: Int32, connectionID: UInt64, remoteAddress: String, probeOnly: Bool) {
        let connection = Connection(fd: fd, id: connectionID, remoteAddress: remoteAddress, limits: configuration.parserLimits)
        connection.probeOnly = probeOnly
        connection.idleSince = Clock.now
        if let context = configuration.tls {
            guard let session = TLSSession(context: context, fd: fd) else {
                logger.error("cannot allocate a TLS session; closing the connection")
                close(fd)
                releaseCount(probeOnly: probeOnly)
                return
            }
            connection.tls = session
        }
        connections[fd] = connection
        lossd_epoll_add(epollFD, fd, 1, 0)
        setDeadline(connection, .header, seconds: configuration.headerTimeout)
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
            group.openConnections.add(1, ordering: .relaxed)
            connections[fd] = connection
            lossd_epoll_add(epollFD, fd, 1, 0)
            setDeadline(connection, .header, seconds: configuration.headerTimeout)
        }
    }

    /// This loop's connection that has been idle between requests the longest, if any.
    func oldestIdleConnection() -> Connection? {
        var oldest: Connection?
        for connection in connections.values where isIdle(connection) && !connection.probeOnly && !connection.onOperationsListener {
            if oldest == nil || connection.idleSince < oldest!.idleSince { oldest = connection }
        }
        return oldest
    }

    /// Closes the server's connection that has been idle between requests the longest, on
    /// whichever loop it lives (loop 0, at the cap): the other loops are asked for theirs,
    /// each answering within its current iteration. Returns false when none is idle.
    func evictLongestIdleConnection() -> Bool {
        let queries = peers.map { peer -> OldestIdleQuery in
            let query = OldestIdleQuery()
            peer.post(.reportOldestIdle(query))
            return query
        }
        var best: (loop: EventLoop, answer: OldestIdleQuery.Answer)?
        if let own = oldestIdleConnection() {
            best = (self, OldestIdleQuery.Answer(idleSince: own.idleSince, connectionID: own.id, fd: own.fd))
        }
        // One deadline for every answer: a loop busy with a long turn is skipped, not waited on
        // loop by loop.
        let deadline = Clock.now + Clock.nanos(0.1)
        for (peer, query) in zip(peers, queries) {
            let remaining = Double(deadline &- min(deadline, Clock.now)) / 1e9
            guard let answer = query.wait(seconds: remaining) else { continue }
            if best == nil || answer.idleSince < best!.answer.idleSince { best = (peer, answer) }
        }
        guard let best else { return false }
        if best.loop === self {
            if let connection = connections[best.answer.fd] { closeConnection(connection) }
        } else {
            // Closed by its own loop (or, if it has become busy, that loop's longest-idle one).
            best.loop.post(.evict(connectionID: best.answer.connectionID, fd: best.answer.fd))
        }
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
