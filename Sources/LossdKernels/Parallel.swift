import Dispatch
import Synchronization

/// Splits row ranges across cores for large batches. Rows are independent in every
/// row-separable loss, so each task writes a disjoint slice of the outputs.
public enum Parallel {
    private static let threadLimit = Atomic<Int>(0)

    /// Most threads a kernel may use (0 = one per core). Process-wide, like OpenBLAS's.
    public static var maxThreads: Int {
        get { threadLimit.load(ordering: .relaxed) }
        set { threadLimit.store(max(0, newValue), ordering: .relaxed) }
    }

    /// Read once: glibc answers `sysconf(_SC_NPROCESSORS_ONLN)` by opening and parsing
    /// /sys/devices/system/cpu/online, which cost 3 % of a small request's CPU when read per call.
    static let cores = max(1, System.activeProcessorCount)

    /// Calls `body` on disjoint ranges covering `0..<count`, in parallel when the work
    /// (`count * costPerRow`, roughly in element operations) is worth it.
    public static func forEachRange(_ count: Int, costPerRow: Int, _ body: (Range<Int>) -> Void) {
        let limit = maxThreads == 0 ? cores : min(maxThreads, cores * 4)
        let work = count * max(1, costPerRow)
        let tasks = min(limit, max(1, work / 200_000), count)
        let check = Cancellation.currentCheck
        // Large work is cut into pieces of about 4M element operations, so that a cancelled
        // request stops within a piece rather than after the whole batch.
        let pieces = min(count, max(tasks, work / 4_000_000))
        if tasks <= 1 {
            let step = (count + pieces - 1) / pieces
            for start in stride(from: 0, to: count, by: step) {
                if check?.isCancelled() == true { return }
                body(start..<min(count, start + step))
            }
            return
        }
        let chunk = (count + pieces - 1) / pieces
        withoutActuallyEscaping(body) { body in
            let shared = RangeBody(body: body)
            DispatchQueue.concurrentPerform(iterations: pieces) { t in
                let start = t * chunk
                let end = min(count, start + chunk)
                if start < end, check?.isCancelled() != true { shared.body(start..<end) }
            }
        }
    }
}

/// The per-range closure, handed to Dispatch's worker threads.
///
/// `@unchecked Sendable` is safe because `concurrentPerform` returns only after every
/// iteration has finished (the closure never outlives `forEachRange`), and callers write
/// only the rows of the range they are given, so no two threads touch the same memory.
private struct RangeBody: @unchecked Sendable {
    let body: (Range<Int>) -> Void
}

#if canImport(Glibc)
    import Glibc
#endif

enum System {
    static var activeProcessorCount: Int { Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))) }
}
