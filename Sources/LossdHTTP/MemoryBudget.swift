import Synchronization

/// A process-wide bound on the bytes that requests hold at once: their bodies (announced
/// `Content-Length` when the head arrives, chunked and inflated bodies as they grow) and
/// the working set a handler estimates before it computes (parsed tensors, gradients,
/// intermediate matrices, the reply). A request that cannot be charged is refused
/// instead of being allowed to push the process into an out-of-memory kill.
public final class MemoryBudget: Sendable {
    /// Bytes that may be charged at once.
    public let limit: Int
    private let used = Atomic<Int>(0)
    private let peak = Atomic<Int>(0)

    public init(limit: Int) {
        self.limit = max(1, limit)
    }

    /// Bytes charged now, across every request.
    public var inUse: Int { used.load(ordering: .relaxed) }

    /// The most ever charged at once.
    public var peakInUse: Int { peak.load(ordering: .relaxed) }

    /// Charges `bytes` if they fit beside what is charged already.
    func tryCharge(_ bytes: Int) -> Bool {
        guard bytes > 0 else { return true }
        var current = used.load(ordering: .relaxed)
        while true {
            guard current <= limit - bytes else { return false }
            let (exchanged, original) = used.compareExchange(
                expected: current, desired: current + bytes, ordering: .relaxed)
            if exchanged {
                peak.max(current + bytes, ordering: .relaxed)
                return true
            }
            current = original
        }
    }

    func release(_ bytes: Int) {
        guard bytes > 0 else { return }
        used.subtract(bytes, ordering: .relaxed)
    }
}

/// Why a charge was refused.
public enum MemoryChargeRefusal: Error, Sendable, Equatable {
    /// The request alone needs more than the whole budget: it can never be served (413).
    case neverFits(needed: Int, limit: Int)
    /// Other requests hold the budget now; the same request may fit later (503).
    case notNow(needed: Int, limit: Int)
}

/// The bytes one request holds against the ``MemoryBudget``. The server charges the body
/// into it; a handler charges its estimated working set with ``reserve(_:)``. Everything
/// is released when the last reference goes: the connection drops it once the response
/// is written, the worker once the handler has returned, so memory a cancelled handler
/// still uses stays counted until it has really stopped.
public final class MemoryCharge: Sendable {
    public let budget: MemoryBudget
    private let charged = Atomic<Int>(0)

    public init(budget: MemoryBudget) {
        self.budget = budget
    }

    /// Bytes this request holds now.
    public var bytes: Int { charged.load(ordering: .relaxed) }

    /// Charges `bytes` more for this request.
    public func reserve(_ bytes: Int) throws(MemoryChargeRefusal) {
        guard bytes > 0 else { return }
        let (sum, overflow) = self.bytes.addingReportingOverflow(bytes)
        let total = overflow ? Int.max : sum
        guard total <= budget.limit else { throw .neverFits(needed: total, limit: budget.limit) }
        guard budget.tryCharge(bytes) else { throw .notNow(needed: total, limit: budget.limit) }
        charged.add(bytes, ordering: .relaxed)
    }

    /// Charges this request up to `bytes` in total (never lowers the charge).
    public func reserve(total bytes: Int) throws(MemoryChargeRefusal) {
        let more = bytes - self.bytes
        if more > 0 { try reserve(more) }
    }

    deinit {
        budget.release(charged.load(ordering: .relaxed))
    }
}

/// Set when a request's answer is no longer wanted: its client went away, or it ran past
/// the request timeout. Handlers and the kernels they call check it between rows or
/// iterations and stop early; the server discards whatever they return.
public final class CancellationFlag: Sendable {
    private let flag = Atomic<Bool>(false)

    public init() {}

    public var isCancelled: Bool { flag.load(ordering: .relaxed) }

    public func cancel() { flag.store(true, ordering: .relaxed) }
}
