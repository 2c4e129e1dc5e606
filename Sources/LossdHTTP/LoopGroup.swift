import Dispatch
import Synchronization

/// What the event loops of one server share. Each loop owns its connections outright;
/// beside these server-wide counts, flags and the request counter, only messages cross
/// loops (a connection handed over, an eviction query).
final class LoopGroup: Sendable {
    /// Set once shutdown begins, by whichever loop hears of it first.
    let draining = Atomic<Bool>(false)
    /// Set once loop 0 (which accepts and hands connections over) has stopped; the other
    /// loops stop only after it.
    let acceptorStopped = Atomic<Bool>(false)
    /// Open client connections on every loop, the operations listener's included (the gauge).
    let openConnections = Atomic<Int>(0)
    /// Connections counted against ``HTTPServerConfiguration/maxConnections``: neither
    /// probe-only nor on the operations listener. Raised by the accepting loop when it
    /// admits one, lowered by the owning loop when it closes it.
    let generalConnections = Atomic<Int>(0)
    /// Connections admitted over the cap that serve only inline routes.
    let probeConnections = Atomic<Int>(0)
    /// Numbers the request IDs the server makes (`<prefix>-<hex counter>`), unique across loops.
    let requestCounter = Atomic<UInt64>(0)
    let requestIDPrefix = String(UInt32.random(in: 0...UInt32.max), radix: 16)

    var isDraining: Bool { draining.load(ordering: .acquiring) }

    /// The next request ID of the server's own making.
    func makeRequestID() -> String {
        let number = requestCounter.wrappingAdd(1, ordering: .relaxed).newValue
        return "\(requestIDPrefix)-\(String(number, radix: 16))"
    }
}

/// A question the accepting loop puts to another loop at the connection cap, and waits on:
/// which of your idle keep-alive connections has been idle the longest?
final class OldestIdleQuery: Sendable {
    struct Answer: Sendable {
        var idleSince: UInt64
        var connectionID: UInt64
        var fd: Int32
    }

    private let answer = Mutex<Answer?>(nil)
    private let answered = DispatchSemaphore(value: 0)

    /// Called by the asked loop, once.
    func reply(_ value: Answer?) {
        answer.withLock { $0 = value }
        answered.signal()
    }

    /// The answer, or nil when there is none or the loop did not answer within `seconds`.
    func wait(seconds: Double) -> Answer? {
        guard answered.wait(timeout: .now() + seconds) == .success else { return nil }
        return answer.withLock { $0 }
    }
}

/// A connection moving from loop 0 to the loop that will own it, with the request it is to
/// run there.
///
/// `@unchecked Sendable` is safe because ownership moves with the message: the sending loop
/// has removed the connection from its table and its epoll before the handover is posted
/// (at the end of its turn) and never touches it again, and the receiving loop touches it
/// only after taking the message from its inbox (the inbox's lock orders the two).
final class ConnectionHandover: @unchecked Sendable {
    let connection: Connection
    let request: HTTPRequest

    init(connection: Connection, request: HTTPRequest) {
        self.connection = connection
        self.request = request
    }
}
