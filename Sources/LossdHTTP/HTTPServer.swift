import CLossdSystem
import Dispatch
import Logging
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Our HTTP/1.1 server: one epoll I/O thread that owns every connection, and a
/// ``WorkerPool`` that runs handlers. Keep-alive, pipelining (answered in order),
/// `Expect: 100-continue`, strict framing, size limits, read/write deadlines, a
/// connection cap and graceful shutdown are all handled here.
public final class HTTPServer: Sendable {
    public let configuration: HTTPServerConfiguration
    private let loop: EventLoop
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
        loop = try EventLoop(
            configuration: configuration, responder: responder, pool: pool, budget: memoryBudget, logger: logger)
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
        loop.run()
        loop.pool.shutdown(timeout: 1)
    }

    /// Stops accepting connections, lets in-flight requests finish within the grace
    /// period, then makes ``run()`` return. Safe from any thread, idempotent.
    public func beginShutdown() {
        loop.requestShutdown()
    }
}

// MARK: - Connection

/// One client connection. Touched only by the I/O thread.
private final class Connection {
    enum Phase {
        /// Reading (and parsing) the next request.
        case reading
        /// A complete request is with a handler; reading is paused until it answers.
        case awaitingResponse
        /// Writing a response; parsing resumes once it is out.
        case writingResponse
        /// A final response was sent, the write side is shut; unread input is discarded
        /// for a moment so that the client sees the response instead of a reset.
        case lingering
    }

    enum DeadlineKind {
        case none, idle, header, body, write, linger
    }

    let fd: Int32
    let id: UInt64
    let remoteAddress: String
    var parser: HTTPRequestParser
    var phase = Phase.reading
    /// Bytes waiting to be sent, in order; the first array may be partly sent already
    /// (`outboundOffset`). A large response body is queued as its own array, not copied.
    var outbound: [[UInt8]] = []
    var outboundOffset = 0
    var closeAfterResponse = false
    /// The request was rejected, maybe with part of it unread: linger before closing.
    var rejected = false
    var peerClosed = false
    var readInterest = true
    var writeInterest = false
    var deadline: UInt64 = 0
    var deadlineKind = DeadlineKind.none
    /// True once any byte of the current request arrived (distinguishes idle from slow).
    var requestStarted = false
    var currentHead: HTTPRequestHead?
    var requestStartNanos: UInt64 = 0
    var requestID = ""
    var bytesIn = 0
    var lingerDiscarded = 0
    /// Input discarded while lingering before the connection is closed hard: 4 MiB, or
    /// the announced body of a request refused from its head, so that a client that sends
    /// its whole body before reading (most do) reads the refusal instead of a reset.
    var lingerAllowance = 4 << 20
    /// Removed from epoll after a hang-up while a handler runs.
    var detached = false
    /// Inside `parseRequests`: a response finished meanwhile must not re-enter it.
    var parsing = false
    /// The connection's TLS session when the server speaks HTTPS; nil for plain TCP.
    var tls: TLSSession?
    /// What the current request holds against the memory budget (its body, then its
    /// handler's working set); dropped once the response is written.
    var charge: MemoryCharge?
    /// A chunked body is charged as its bytes arrive.
    var chargesArrivingBody = false
    /// Set to stop the current request's handler (client gone, request timeout).
    var cancellation: CancellationFlag?
    /// When the current request must have arrived in full (0: no request arriving).
    var readDeadline: UInt64 = 0
    /// When the handler of the current request must have answered (0: none running).
    var handlerDeadline: UInt64 = 0
    /// When the connection last became idle between requests, for choosing whom to evict.
    var idleSince: UInt64 = 0
    /// Admitted over the connection cap for health probes: only inline routes are served.
    var probeOnly = false
    /// EPOLLRDHUP is watched (while a handler runs) to notice a client that leaves.
    var hangupInterest = false
    /// Accepted on the operations listener: only its paths are served.
    var onOperationsListener = false

    init(fd: Int32, id: UInt64, remoteAddress: String, limits: HTTPParserLimits) {
        self.fd = fd
        self.id = id
        self.remoteAddress = remoteAddress
        parser = HTTPRequestParser(limits: limits)
    }

    var hasPendingOutput: Bool { !outbound.isEmpty }

    /// Queues bytes after those already waiting. Small pieces join the last waiting array
    /// (so pipelined answers go out in few writes); large ones are queued as they are.
    func enqueue(_ bytes: [UInt8]) {
        guard !bytes.isEmpty else { return }
        if bytes.count < Self.coalesceLimit, let last = outbound.indices.last, outbound[last].count < Self.coalesceLimit {
            outbound[last].append(contentsOf: bytes)
        } else {
            outbound.append(bytes)
        }
    }

    /// Below this size, pieces are copied together rather than sent separately.
    static let coalesceLimit = 64 * 1024

    /// Reads plaintext: decrypted when TLS is on, straight from the socket otherwise.
    func receive(into buffer: UnsafeMutableRawBufferPointer) -> Socket.ReadResult {
        if let tls { return tls.receive(into: buffer) }
        return Socket.receive(fd, into: buffer)
    }

    /// Sends plaintext (encrypted when TLS is on): bytes taken, 0 to wait, nil when broken.
    func send(_ bytes: UnsafeRawBufferPointer) -> Int? {
        if let tls { return tls.send(bytes) }
        return Socket.send(fd, bytes)
    }

    /// The phase reads the client's bytes (a request, or input discarded while lingering).
    var wantsInput: Bool { (phase == .reading || phase == .lingering) && !peerClosed }

    /// The socket must be watched for readability: the phase wants input, or a TLS write
    /// waits on a record from the peer.
    var needsReadable: Bool { wantsInput || (tls?.writeWantsReadable ?? false) }

    /// The socket must be watched for writability: output is queued, or a TLS read (in a
    /// phase that reads) must first send a handshake record.
    var needsWritable: Bool { hasPendingOutput || (wantsInput && (tls?.readWantsWritable ?? false)) }
}

// MARK: - Event loop

/// The I/O thread's state.
///
/// `@unchecked Sendable` is safe because every stored property other than `inbox`,
/// `draining`, `connectionCount` (each a `Mutex` or `Atomic`) and immutable `let`s is
/// read and written only on the loop thread, inside `run()`; other threads reach the
/// loop solely through `post(_:)`, which locks `inbox` and writes the eventfd.
private final class EventLoop: @unchecked Sendable {
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

    private let epollFD: Int32
    private let wakeFD: Int32
    private var listenFD: Int32
    /// The operations listener (-1 when none).
    private var operationsFD: Int32 = -1
    let operationsAddress: (host: String, port: Int)?
    private var operationsConnections = 0
    private let inbox = Mutex<[Message]>([])
    private let drainingFlag = Atomic<Bool>(false)
    private let connectionCount = Atomic<Int>(0)

    private var connections: [Int32: Connection] = [:]
    private var nextConnectionID: UInt64 = 1
    private var shutdownDeadline: UInt64 = 0
    private var acceptPausedUntil: UInt64 = 0
    private var readBuffer = [UInt8](repeating: 0, count: 64 * 1024)
    private var dateCache = HTTPDateCache()
    private let requestIDPrefix: String
    private var requestCounter: UInt64 = 0
    private var refusedSinceWarning = 0
    /// Open connections admitted over the cap for probes.
    private var probeConnections = 0
    private var nextCapWarning: UInt64 = 0

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

    private func processInbox() {
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

    private func startDraining() {
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

    private func isIdle(_ connection: Connection) -> Bool {
        connection.phase == .reading && !connection.requestStarted && !connection.hasPendingOutput
    }

    // MARK: Accept

    private func acceptConnections() {
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
    private func acceptOperationsConnections() {
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
    private func evictOldestIdleConnection() -> Bool {
        var oldest: Connection?
        for connection in connections.values where isIdle(connection) && !connection.probeOnly && !connection.onOperationsListener {
            if oldest == nil || connection.idleSince < oldest!.idleSince { oldest = connection }
        }
        guard let oldest else { return false }
        closeConnection(oldest)
        return true
    }

    /// The 503 for a connection or request turned away for capacity.
    private func capacityResponse(_ detail: String) -> HTTPResponse {
        var response = responder.errorResponse(status: .serviceUnavailable, detail: detail)
        response.headers.replaceOrAdd(name: "Retry-After", value: String(configuration.retryAfterSeconds))
        return response
    }

    /// Over the connection cap: a best-effort 503 and close, without registering the socket.
    /// A TLS client is closed without one: it has not finished a handshake to read it over.
    private func rejectOverCapacity(_ fd: Int32) {
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

    // MARK: Events

    private func handleEvent(_ connection: Connection, flags: UInt32) {
        if let tls = connection.tls {
            // TLS may need the direction opposite to the operation it stopped in.
            if flags & 1 != 0 && tls.writeWantsReadable { flush(connection) }
            guard connections[connection.fd] === connection else { return }
            if flags & 2 != 0 && tls.readWantsWritable && connection.wantsInput { readAvailable(connection) }
            guard connections[connection.fd] === connection else { return }
        }
        if flags & 2 != 0 { flush(connection) }
        guard connections[connection.fd] === connection else { return }
        // Readability may be watched for a TLS write alone; read only in a phase that reads.
        if flags & 1 != 0 && connection.readInterest && connection.wantsInput { readAvailable(connection) }
        guard connections[connection.fd] === connection else { return }
        // The client closed its side while its request runs (RDHUP): like nginx, take it as
        // gone. Its handler is cancelled and its answer dropped.
        let leftWhileWaiting = flags & 8 != 0 && connection.phase == .awaitingResponse
        guard flags & 4 != 0 || leftWhileWaiting else { return }
        // Hang-up or error: nothing more can be read, and writes will fail.
        connection.peerClosed = true
        if connection.phase == .awaitingResponse {
            // A handler is running; stop it, stop watching the socket (level-triggered
            // hang-ups would otherwise wake us continuously) and close once it returns.
            connection.cancellation?.cancel()
            lossd_epoll_remove(epollFD, connection.fd)
            connection.readInterest = false
            connection.writeInterest = false
            connection.hangupInterest = false
            connection.detached = true
        } else {
            closeConnection(connection)
        }
    }

    private func readAvailable(_ connection: Connection) {
        if let tls = connection.tls, !tls.handshakeStarted {
            switch Socket.peekFirstByte(connection.fd) {
            case nil:
                break
            case let byte? where byte != 0x16 && (0x41...0x5A).contains(byte):
                // An upper-case letter where a TLS handshake record (0x16) belongs: a plain
                // HTTP request. Answer it in plain text so the client learns why.
                connection.tls = nil
                failRequest(connection, status: .badRequest, detail: "this port speaks HTTPS; use an https:// URL")
                return
            default:
                tls.handshakeStarted = true
            }
        }
        // A few reads per wake-up keeps one fast sender from starving the others.
        for _ in 0..<4 {
            let result = readBuffer.withUnsafeMutableBytes { connection.receive(into: $0) }
            switch result {
            case .wouldBlock:
                if connection.tls?.readWantsWritable == true { updateInterest(connection) }
                return
            case .closed:
                if let tls = connection.tls, !tls.lastError.isEmpty {
                    logger.debug("TLS connection from \(connection.remoteAddress) ended: \(tls.lastError)")
                }
                connection.peerClosed = true
                switch connection.phase {
                case .awaitingResponse, .writingResponse:
                    // Half-closed after sending a request: answer it, then close.
                    connection.closeAfterResponse = true
                    updateInterest(connection)
                case .reading, .lingering:
                    // Between requests, in the middle of one (nothing to answer), or done.
                    closeConnection(connection)
                }
                return
            case .data(let count):
                if connection.phase == .lingering {
                    connection.lingerDiscarded += count
                    if connection.lingerDiscarded > connection.lingerAllowance { closeConnection(connection); return }
                    // Discarding makes progress: the linger deadline bounds a stall.
                    setDeadline(connection, .linger, seconds: 2)
                    continue
                }
                connection.bytesIn += count
                if !connection.requestStarted {
                    markRequestStarted(connection)
                    setDeadline(connection, .header, seconds: configuration.headerTimeout)
                }
                if connection.chargesArrivingBody, let charge = connection.charge {
                    do throws(MemoryChargeRefusal) {
                        try charge.reserve(count)
                    } catch {
                        connection.chargesArrivingBody = false
                        refuse(connection, memoryRefusalResponse(error), bodyPending: true)
                        return
                    }
                }
                readBuffer.withUnsafeBytes { connection.parser.append(UnsafeRawBufferPointer(rebasing: $0[0..<count])) }
                if connection.parser.isReadingBody {
                    setDeadline(connection, .body, seconds: configuration.bodyTimeout)
                }
                parseRequests(connection)
                guard connections[connection.fd] === connection, connection.phase == .reading else { return }
            }
        }
    }

    /// Parses buffered input until a request is complete (then hands it to a handler) or
    /// more bytes are needed.
    private func parseRequests(_ connection: Connection) {
        guard !connection.parsing else { return }
        connection.parsing = true
        defer { connection.parsing = false }
        while connection.phase == .reading {
            let event: HTTPParserEvent?
            do {
                event = try connection.parser.next()
            } catch {
                failRequest(connection, status: error.status, detail: error.reason)
                return
            }
            switch event {
            case nil:
                if connection.parser.isReadingBody {
                    if connection.deadlineKind != .body { setDeadline(connection, .body, seconds: configuration.bodyTimeout) }
                } else if connection.parser.bufferedByteCount == 0 && !connection.requestStarted {
                    setDeadline(connection, .idle, seconds: configuration.keepAliveTimeout)
                }
                updateInterest(connection)
                return
            case .head(let head)?:
                if !connection.requestStarted { markRequestStarted(connection) }
                connection.currentHead = head
                connection.requestStartNanos = Clock.now
                // HTTP/1.0 clients cannot expect anything (RFC 9110 section 10.1.1).
                if head.version.minor >= 1, head.headers.contains(name: "expect"), !head.expectsContinue {
                    failRequest(connection, status: .expectationFailed, detail: "only 100-continue is supported")
                    return
                }
                if let refusal = admit(head, on: connection) {
                    refuse(connection, refusal, bodyPending: head.hasBody)
                    return
                }
                if head.expectsContinue && head.hasBody && connection.parser.bufferedByteCount == 0 {
                    connection.enqueue(Self.continueLine)
                    flush(connection)
                    guard connections[connection.fd] === connection else { return }
                }
                setDeadline(connection, .body, seconds: configuration.bodyTimeout)
            case .request(let request)?:
                dispatch(request, on: connection)
            }
        }
    }

    private static let continueLine = Array("HTTP/1.1 100 Continue\r\n\r\n".utf8)

    private func markRequestStarted(_ connection: Connection) {
        connection.requestStarted = true
        connection.readDeadline = Clock.now + Clock.nanos(configuration.readTimeout)
    }

    /// Decides on a request from its head alone, before `100 Continue` and before any of
    /// its body is kept: probe-only connections serve inline routes only; the responder
    /// may refuse (authentication, route, method, media type); and the announced body must
    /// fit in the memory budget. Returns the refusal, or nil with the request's charge set.
    private func admit(_ head: HTTPRequestHead, on connection: Connection) -> HTTPResponse? {
        if connection.onOperationsListener, let operations = configuration.operations, !operations.paths.contains(head.path) {
            return responder.errorResponse(status: .notFound, detail: "the operations port serves only \(operations.paths.sorted().joined(separator: ", "))")
        }
        if connection.probeOnly && !responder.answersInline(head) {
            return capacityResponse("too many open connections; only health probes are served on this one")
        }
        if head.hasBody, let refusal = responder.screen(head) { return refusal }
        let charge = MemoryCharge(budget: budget)
        connection.charge = charge
        connection.chargesArrivingBody = false
        switch head.framing {
        case .contentLength(let length):
            do throws(MemoryChargeRefusal) {
                try charge.reserve(length)
            } catch {
                return memoryRefusalResponse(error)
            }
        case .chunked:
            connection.chargesArrivingBody = true
        case .none:
            break
        }
        return nil
    }

    /// 413 for a request that could never fit in the memory budget, 503 with
    /// `Retry-After` for one that does not fit now.
    private func memoryRefusalResponse(_ refusal: MemoryChargeRefusal) -> HTTPResponse {
        switch refusal {
        case let .neverFits(needed, limit):
            return responder.errorResponse(
                status: .contentTooLarge,
                detail: "the request needs \(needed) bytes, more than the server's memory budget of \(limit) bytes")
        case let .notNow(needed, _):
            return capacityResponse("the server's memory budget cannot hold this request's \(needed) bytes now; retry shortly")
        }
    }

    /// Answers a request before its body is read. A body that is still to come is never
    /// buffered: the connection closes after the answer, discarding what arrives meanwhile.
    private func refuse(_ connection: Connection, _ response: HTTPResponse, bodyPending: Bool) {
        connection.closeAfterResponse = true
        connection.rejected = bodyPending
        if bodyPending, case .contentLength(let length)? = connection.currentHead?.framing {
            connection.lingerAllowance = max(4 << 20, min(length, configuration.parserLimits.maxBodyBytes) + (64 << 10))
        }
        connection.charge = nil
        connection.chargesArrivingBody = false
        connection.phase = .awaitingResponse
        sendResponse(response, on: connection)
    }

    private func dispatch(_ request: HTTPRequest, on connection: Connection) {
        connection.phase = .awaitingResponse
        connection.deadlineKind = .none
        connection.currentHead = request.head
        // An HTTP/1.0 chunked body is faulty framing: answer, then close (RFC 9112 section 6.1).
        if !request.head.keepAlive || (request.head.version == .http1_0 && request.head.framing == .chunked) {
            connection.closeAfterResponse = true
        }

        connection.readDeadline = 0
        connection.chargesArrivingBody = false
        let charge = connection.charge ?? MemoryCharge(budget: budget)
        connection.charge = charge
        let cancellation = CancellationFlag()
        connection.cancellation = cancellation
        let context = RequestContext(
            requestID: makeRequestID(request.head), remoteAddress: connection.remoteAddress, memory: charge,
            cancellation: cancellation)
        connection.requestID = context.requestID
        if responder.answersInline(request.head) {
            sendResponse(responder.respond(to: request, context: context), on: connection)
            return
        }
        let responder = self.responder
        let id = connection.id, fd = connection.fd
        connection.handlerDeadline = Clock.now + Clock.nanos(configuration.requestTimeout)
        updateInterest(connection)
        // The job holds the request and its charge only until the handler returns.
        let accepted = pool.submit({ [self] in
            let response = responder.respond(to: request, context: context)
            post(.response(connectionID: id, fd: fd, response: response))
        }, class: responder.workClass(request.head))
        if !accepted {
            connection.handlerDeadline = 0
            sendResponse(capacityResponse("the server is at capacity; retry shortly"), on: connection)
        }
    }

    private func makeRequestID(_ head: HTTPRequestHead) -> String {
        if let given = head.headers["x-request-id"], (1...128).contains(given.utf8.count),
            given.utf8.allSatisfy({ HTTPGrammar.isTokenByte($0) })
        {
            return given
        }
        requestCounter += 1
        return "\(requestIDPrefix)-\(String(requestCounter, radix: 16))"
    }

    /// Answers a request that could not be read (framing, limits, timeouts) and closes.
    private func failRequest(_ connection: Connection, status: HTTPStatus, detail: String) {
        connection.closeAfterResponse = true
        connection.rejected = true
        if connection.currentHead == nil { connection.requestStartNanos = Clock.now }
        connection.phase = .awaitingResponse
        sendResponse(responder.errorResponse(status: status, detail: detail), on: connection)
    }

    private func sendResponse(_ response: HTTPResponse, on connection: Connection) {
        connection.handlerDeadline = 0
        var response = response
        let head = connection.currentHead
        if isDraining || connection.peerClosed { connection.closeAfterResponse = true }
        let keepAlive = !connection.closeAfterResponse
        if !connection.requestID.isEmpty {
            response.headers.replaceOrAdd(name: "X-Request-Id", value: connection.requestID)
        }
        // A valid W3C traceparent is echoed, so the caller can match the answer to its span.
        if let traceparent = head?.headers["traceparent"], TraceContext.traceID(traceparent) != nil {
            response.headers.replaceOrAdd(name: "traceparent", value: traceparent)
        }
        let isHead = head?.method == "HEAD"
        let (headBytes, body) = serializeHead(response, keepAlive: keepAlive, isHead: isHead, http10: head?.version == .http1_0)
        logAccess(connection, response: response, bytesOut: headBytes.count + body.count)
        if body.count < Connection.coalesceLimit {
            connection.enqueue(headBytes + body)
        } else {
            // A large body goes out as it is: no copy of megabytes behind the header.
            connection.enqueue(headBytes)
            connection.outbound.append(body)
        }
        connection.phase = .writingResponse
        setDeadline(connection, .write, seconds: configuration.writeTimeout)
        flush(connection)
    }

    private func logAccess(_ connection: Connection, response: HTTPResponse, bytesOut: Int) {
        let elapsed = Double(Clock.now &- connection.requestStartNanos) / 1e6
        let head = connection.currentHead
        var metadata: Logger.Metadata = [
            "status": "\(response.status.code)",
            "ms": "\(Double(Int(elapsed * 1000)) / 1000)",
            "bytes_in": "\(connection.bytesIn)",
            "bytes_out": "\(bytesOut)",
            "peer": "\(connection.remoteAddress)",
        ]
        if !connection.requestID.isEmpty { metadata["request_id"] = "\(connection.requestID)" }
        if let traceparent = head?.headers["traceparent"], let traceID = TraceContext.traceID(traceparent) {
            metadata["trace_id"] = "\(traceID)"
        }
        // A request rejected before its head was complete may still have a request line.
        let partial = head == nil ? connection.parser.currentRequestLine : nil
        let method = head?.method ?? partial?.method
        let path = head?.path ?? partial.map { String($0.target.prefix { $0 != "?" }) }
        let line = method.map { "\($0) \(path ?? "")" } ?? "-"
        let route = responder.routeLabel(method: method, path: path)
        if let method { metadata["method"] = "\(method)" }
        if let path { metadata["path"] = "\(path)" }
        metadata["route"] = "\(route)"
        logger.info("\(line)", metadata: metadata)
        responder.requestCompleted(
            RequestRecord(
                method: method, path: path, route: route, status: response.status, bytesIn: connection.bytesIn,
                bytesOut: bytesOut, duration: elapsed / 1000))
    }

    // MARK: Writing

    private func flush(_ connection: Connection) {
        while let first = connection.outbound.first {
            let sent = first.withUnsafeBytes { raw in
                connection.send(UnsafeRawBufferPointer(rebasing: raw[connection.outboundOffset...]))
            }
            guard let sent else {
                closeConnection(connection)
                return
            }
            if sent == 0 { break }
            // The write deadline bounds a stall, not the whole reply: progress renews it.
            if connection.deadlineKind == .write { setDeadline(connection, .write, seconds: configuration.writeTimeout) }
            connection.outboundOffset += sent
            if connection.outboundOffset == first.count {
                connection.outbound.removeFirst()
                connection.outboundOffset = 0
            }
        }
        if !connection.hasPendingOutput {
            if connection.phase == .writingResponse { finishResponse(connection) }
        }
        if connections[connection.fd] === connection { updateInterest(connection) }
    }

    private func finishResponse(_ connection: Connection) {
        connection.currentHead = nil
        connection.requestID = ""
        connection.bytesIn = 0
        connection.charge = nil
        connection.cancellation = nil
        connection.readDeadline = 0
        connection.idleSince = Clock.now
        connection.requestStarted = false
        if connection.parser.bufferedByteCount > 0 { markRequestStarted(connection) }
        if connection.closeAfterResponse {
            beginLingeringClose(connection)
            return
        }
        connection.phase = .reading
        if connection.requestStarted {
            setDeadline(connection, .header, seconds: configuration.headerTimeout)
            // Pipelined requests may already be buffered. When this response was sent from
            // inside parseRequests (an inline route), its loop picks them up instead.
            parseRequests(connection)
        } else {
            setDeadline(connection, .idle, seconds: configuration.keepAliveTimeout)
        }
    }

    /// Closes after a final response. A rejected request may still be arriving, so then the
    /// write side is shut and input is discarded for up to two seconds: the client sees our
    /// response rather than a connection reset.
    private func beginLingeringClose(_ connection: Connection) {
        if connection.peerClosed || (!connection.rejected && connection.parser.bufferedByteCount == 0) {
            closeConnection(connection)
            return
        }
        connection.tls?.closeNotify()
        shutdown(connection.fd, Int32(SHUT_WR))
        connection.phase = .lingering
        setDeadline(connection, .linger, seconds: 2)
        updateInterest(connection)
    }

    private func updateInterest(_ connection: Connection) {
        guard !connection.detached else { return }
        let wantRead = connection.needsReadable
        let wantWrite = connection.needsWritable
        // Only while a worker runs the request: an inline answer is written at once.
        let wantHangup = connection.phase == .awaitingResponse && connection.handlerDeadline != 0
        if wantRead != connection.readInterest || wantWrite != connection.writeInterest
            || wantHangup != connection.hangupInterest
        {
            connection.readInterest = wantRead
            connection.writeInterest = wantWrite
            connection.hangupInterest = wantHangup
            lossd_epoll_modify_watching_hangup(
                epollFD, connection.fd, wantRead ? 1 : 0, wantWrite ? 1 : 0, wantHangup ? 1 : 0)
        }
    }

    private func closeConnection(_ connection: Connection) {
        guard connections[connection.fd] === connection else { return }
        if connection.phase == .awaitingResponse { connection.cancellation?.cancel() }
        connection.charge = nil
        if connection.probeOnly { probeConnections -= 1 }
        if connection.onOperationsListener { operationsConnections -= 1 }
        if !connection.detached { lossd_epoll_remove(epollFD, connection.fd) }
        if !connection.peerClosed { connection.tls?.closeNotify() }
        connection.tls = nil
        close(connection.fd)
        connections[connection.fd] = nil
        connectionCount.store(connections.count, ordering: .relaxed)
    }

    // MARK: Deadlines

    private func setDeadline(_ connection: Connection, _ kind: Connection.DeadlineKind, seconds: Double) {
        connection.deadlineKind = kind
        connection.deadline = Clock.now + Clock.nanos(seconds)
    }

    private func sweepDeadlines(now: UInt64) {
        if listenFD >= 0, acceptPausedUntil != 0, now >= acceptPausedUntil {
            acceptPausedUntil = 0
            lossd_epoll_add(epollFD, listenFD, 1, 0)
        }
        for connection in Array(connections.values) {
            if connection.phase == .awaitingResponse, connection.handlerDeadline != 0, now >= connection.handlerDeadline {
                // The handler ran too long: stop it, answer 503 and close (its late answer
                // finds the connection in another phase and is dropped).
                connection.handlerDeadline = 0
                connection.cancellation?.cancel()
                if connection.detached {
                    closeConnection(connection)
                } else {
                    connection.closeAfterResponse = true
                    sendResponse(
                        capacityResponse("the request ran past the server's request timeout and was stopped"),
                        on: connection)
                }
                continue
            }
            if connection.phase == .reading, connection.readDeadline != 0, now >= connection.readDeadline,
                connection.deadlineKind == .header || connection.deadlineKind == .body
            {
                connection.readDeadline = 0
                connection.deadlineKind = .none
                failRequest(connection, status: .requestTimeout, detail: "the request did not arrive in full in time")
                continue
            }
        }
        for connection in Array(connections.values) where connection.deadlineKind != .none && now >= connection.deadline {
            switch connection.deadlineKind {
            case .none:
                break
            case .idle, .write, .linger:
                closeConnection(connection)
            case .header, .body:
                if connection.requestStarted || connection.parser.bufferedByteCount > 0 {
                    let detail = connection.deadlineKind == .header
                        ? "request headers not received in time" : "request body stalled"
                    connection.deadlineKind = .none
                    failRequest(connection, status: .requestTimeout, detail: detail)
                } else {
                    closeConnection(connection)
                }
            }
        }
    }

    // MARK: Serialization

    /// The whole response as bytes (for the few answers written outside a connection).
    private func serialize(_ response: HTTPResponse, keepAlive: Bool, isHead: Bool, http10: Bool = false) -> [UInt8] {
        let (head, body) = serializeHead(response, keepAlive: keepAlive, isHead: isHead, http10: http10)
        return head + body
    }

    /// The status line and header section, and the body to send after them (empty for
    /// HEAD, 1xx, 204 and 304).
    private func serializeHead(
        _ response: HTTPResponse, keepAlive: Bool, isHead: Bool, http10: Bool = false
    ) -> (head: [UInt8], body: [UInt8]) {
        let status = response.status
        let bodyAllowed = status.code != 204 && status.code != 304 && status.code >= 200
        var text = "HTTP/1.1 \(status.code) \(status.reasonPhrase)\r\n"
        text += "Server: \(configuration.serverName)\r\nDate: \(dateCache.current())\r\n"
        for (name, value) in response.headers {
            if name.equalsIgnoringASCIICase("content-length") || name.equalsIgnoringASCIICase("connection")
                || name.equalsIgnoringASCIICase("transfer-encoding") || name.equalsIgnoringASCIICase("date")
            {
                continue
            }
            text += "\(name): \(value)\r\n"
        }
        if bodyAllowed { text += "Content-Length: \(response.body.count)\r\n" }
        if !keepAlive {
            text += "Connection: close\r\n"
        } else if http10 {
            text += "Connection: keep-alive\r\n"
        }
        text += "\r\n"
        return (Array(text.utf8), bodyAllowed && !isHead ? response.body : [])
    }
}

// MARK: - Time

/// Monotonic nanoseconds, for deadlines.
enum Clock {
    static var now: UInt64 { DispatchTime.now().uptimeNanoseconds }
    static func nanos(_ seconds: Double) -> UInt64 { UInt64(max(0, seconds) * 1e9) }
}

/// The IMF-fixdate for the `Date` header, formatted at most once a second.
struct HTTPDateCache {
    private var second: time_t = 0
    private var text = ""

    mutating func current() -> String {
        var now = time(nil)
        if now != second || text.isEmpty {
            second = now
            var parts = tm()
            gmtime_r(&now, &parts)
            var buffer = [CChar](repeating: 0, count: 64)
            let n = strftime(&buffer, buffer.count, "%a, %d %b %Y %H:%M:%S GMT", &parts)
            text = String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        }
        return text
    }
}
