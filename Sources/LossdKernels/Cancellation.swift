#if canImport(Glibc)
    import Glibc
#endif

/// Cooperative cancellation for long kernels, without threading a token through every
/// signature: the caller installs a check for the current thread with
/// ``withCheck(_:_:)``; iterative fits test ``isCancelled`` between iterations and row
/// loops between chunks, and stop early. What a cancelled kernel returns is meaningless
/// and must be discarded by the caller (who knows it cancelled).
public enum Cancellation {
    /// The check installed on this thread (nil: never cancelled).
    final class Check: Sendable {
        let isCancelled: @Sendable () -> Bool
        init(_ isCancelled: @escaping @Sendable () -> Bool) { self.isCancelled = isCancelled }
    }

    private static let key: pthread_key_t = {
        var key = pthread_key_t()
        let rc = pthread_key_create(&key, nil)
        precondition(rc == 0, "pthread_key_create failed: \(rc)")
        return key
    }()

    /// Runs `body` with `isCancelled` as this thread's cancellation check.
    public static func withCheck<R, E: Error>(
        _ isCancelled: @escaping @Sendable () -> Bool, _ body: () throws(E) -> R
    ) throws(E) -> R {
        let previous = pthread_getspecific(key)
        let check = Unmanaged.passRetained(Check(isCancelled))
        pthread_setspecific(key, check.toOpaque())
        defer {
            pthread_setspecific(key, previous)
            check.release()
        }
        return try body()
    }

    /// The check of the current thread, to carry onto helper threads (see ``Parallel``).
    static var currentCheck: Check? {
        guard let raw = pthread_getspecific(key) else { return nil }
        return Unmanaged<Check>.fromOpaque(raw).takeUnretainedValue()
    }

    /// Whether the work running on this thread should stop.
    public static var isCancelled: Bool { currentCheck?.isCancelled() ?? false }
}
