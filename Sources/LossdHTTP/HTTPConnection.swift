import CLossdSystem
import Dispatch
import Logging
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

// MARK: - Connection

/// One client connection. Touched only by the I/O thread of the loop that owns it (it may
/// move once, from loop 0 to another loop; see ``EventLoop``).
final class Connection {
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
    /// The responder's plan for the current request, made once from its head.
    var plan: RequestPlan?
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
    /// Its owning loop has been chosen (at its first quick request); it moves no more.
    var placed = false

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
