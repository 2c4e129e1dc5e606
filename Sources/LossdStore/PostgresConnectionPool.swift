import CLibPQ
import Dispatch
import Logging
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// A bounded pool of connections: a semaphore of `size` permits, idle connections kept
/// for reuse, broken ones dropped, new ones opened on demand with a backoff after failures.
final class PostgresConnectionPool: Sendable {
    let parameters: PostgresConnection.Parameters
    private let location: String
    private let permits: DispatchSemaphore
    private let idle = Mutex<[PostgresConnection]>([])
    private let backoff = Mutex<Backoff>(Backoff())
    private let closed = Atomic<Bool>(false)

    struct Backoff {
        var failures = 0
        var nextAttempt: Double = 0
    }

    init(size: Int, parameters: PostgresConnection.Parameters, location: String) {
        self.parameters = parameters
        self.location = location
        permits = DispatchSemaphore(value: size)
    }

    /// Runs `body` with a connection of its own. A request whose first statement fails
    /// because a reused connection had died (the server restarted since) runs once more
    /// on a fresh connection: nothing of it reached the database.
    func withConnection<T>(
        _ operation: String, _ body: (PostgresConnection) throws(StoreError) -> T
    ) throws(StoreError) -> T {
        guard permits.wait(timeout: .now() + parameters.acquireTimeout) == .success else {
            throw .failed(operation: operation, detail: "no database connection was free within \(parameters.acquireTimeout) s")
        }
        defer { permits.signal() }
        var retried = false
        while true {
            let reused = idle.withLock { $0.popLast() }
            let connection: PostgresConnection
            if let reused, !reused.isBroken {
                connection = reused
            } else {
                connection = try open(operation)
            }
            connection.statementsSucceeded = 0
            do throws(StoreError) {
                let value = try body(connection)
                release(connection)
                return value
            } catch {
                let broken = connection.isBroken
                release(connection)
                if broken && reused != nil && connection === reused && connection.statementsSucceeded == 0 && !retried {
                    // The other idle connections most likely died with it.
                    dropIdle()
                    retried = true
                    continue
                }
                throw broken ? .unreachable(location: location, detail: Self.detail(of: error)) : error
            }
        }
    }

    /// Back to the idle list, unless broken, inside a transaction, or the pool is closed.
    private func release(_ connection: PostgresConnection) {
        guard !connection.isBroken, !connection.inTransaction, !closed.load(ordering: .acquiring) else { return }
        idle.withLock { $0.append(connection) }
    }

    /// A new connection, unless a recent connect failed and the backoff has not passed.
    private func open(_ operation: String) throws(StoreError) -> PostgresConnection {
        let now = Monotonic.now()
        let wait = backoff.withLock { $0.nextAttempt - now }
        if wait > 0 {
            throw .unreachable(location: location, detail: "the last connection attempt failed; next attempt in \(Int(wait * 1000)) ms")
        }
        do throws(StoreError) {
            let connection = try PostgresConnection(parameters: parameters, location: location)
            reachable()
            return connection
        } catch {
            backoff.withLock { state in
                state.failures += 1
                state.nextAttempt = Monotonic.now() + min(0.05 * Double(1 << min(state.failures - 1, 5)), 1)
            }
            throw error
        }
    }

    /// The database answered (a connect or the health check): connect at once next time.
    func reachable() {
        backoff.withLock { $0 = Backoff() }
    }

    /// Closes the idle connections (after the health check found the database gone).
    func dropIdle() {
        let dropped = idle.withLock { connections in
            defer { connections.removeAll() }
            return connections
        }
        withExtendedLifetime(dropped) {}
    }

    func close() {
        closed.store(true, ordering: .releasing)
        dropIdle()
    }

    private static func detail(of error: StoreError) -> String {
        switch error {
        case let .failed(_, detail), let .unreachable(_, detail): detail
        default: "\(error)"
        }
    }
}

/// Seconds on the monotonic clock.
enum Monotonic {
    static func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }
}
