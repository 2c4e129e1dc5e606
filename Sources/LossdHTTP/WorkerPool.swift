import CLossdSystem
import Dispatch
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// A fixed set of threads that run request handlers, apart from the I/O thread, with a
/// bounded queue in front of them. When the queue is full ``submit(_:)`` refuses the job,
/// so overload becomes a fast 503 rather than unbounded memory and latency.
public final class WorkerPool: Sendable {
    public typealias Job = @Sendable () -> Void

    private struct State: ~Copyable {
        var jobs: [Job] = []
        var head = 0
        var running = 0
        var stopped = false
        var queued: Int { jobs.count - head }
    }

    public let threadCount: Int
    public let queueCapacity: Int
    private let state = Mutex(State())
    private let available = DispatchSemaphore(value: 0)
    private let finished = DispatchGroup()

    /// - Parameters:
    ///   - threads: worker threads (at least 1).
    ///   - queueCapacity: jobs that may wait for a thread before new ones are refused.
    public init(threads: Int, queueCapacity: Int) {
        threadCount = max(1, threads)
        self.queueCapacity = max(1, queueCapacity)
        for index in 0..<threadCount {
            finished.enter()
            let thread = WorkerThread(name: "lossd-worker-\(index)") { [self] in self.workLoop() }
            thread.start()
        }
    }

    /// Queues a job; returns false (and drops it) when the queue is full or the pool stopped.
    @discardableResult
    public func submit(_ job: @escaping Job) -> Bool {
        let accepted = state.withLock { state -> Bool in
            guard !state.stopped, state.queued < queueCapacity else { return false }
            state.jobs.append(job)
            return true
        }
        if accepted { available.signal() }
        return accepted
    }

    /// Jobs waiting for a thread.
    public var queueDepth: Int { state.withLock { $0.queued } }

    /// Jobs running now.
    public var busyThreads: Int { state.withLock { $0.running } }

    /// Lets queued jobs finish, then ends the threads. Waits at most `timeout` seconds.
    public func shutdown(timeout: Double) {
        state.withLock { $0.stopped = true }
        for _ in 0..<threadCount { available.signal() }
        _ = finished.wait(timeout: .now() + timeout)
    }

    private func workLoop() {
        while true {
            available.wait()
            let job: Job? = state.withLock { state in
                guard state.head < state.jobs.count else { return nil }
                let job = state.jobs[state.head]
                state.head += 1
                if state.head > 1024, state.head * 2 > state.jobs.count {
                    state.jobs.removeFirst(state.head)
                    state.head = 0
                }
                state.running += 1
                return job
            }
            guard let job else {
                // Woken with nothing queued: only shutdown does that.
                if state.withLock({ $0.stopped && $0.queued == 0 }) { break }
                continue
            }
            job()
            state.withLock { $0.running -= 1 }
        }
        finished.leave()
    }
}

/// A detached POSIX thread running one closure; Foundation's Thread would pull in
/// Foundation's run-loop machinery for nothing.
struct WorkerThread: Sendable {
    let name: String
    let body: @Sendable () -> Void

    init(name: String, body: @escaping @Sendable () -> Void) {
        self.name = name
        self.body = body
    }

    func start() {
        final class Box: Sendable {
            let name: String
            let body: @Sendable () -> Void
            init(name: String, body: @escaping @Sendable () -> Void) {
                self.name = name
                self.body = body
            }
        }
        let box = Unmanaged.passRetained(Box(name: name, body: body)).toOpaque()
        var attributes = pthread_attr_t()
        pthread_attr_init(&attributes)
        pthread_attr_setdetachstate(&attributes, Int32(PTHREAD_CREATE_DETACHED))
        pthread_attr_setstacksize(&attributes, 8 << 20)
        var thread = pthread_t()
        let rc = pthread_create(&thread, &attributes, { raw in
            let box = Unmanaged<Box>.fromOpaque(raw!).takeRetainedValue()
            lossd_set_thread_name(box.name)
            box.body()
            return nil
        }, box)
        pthread_attr_destroy(&attributes)
        precondition(rc == 0, "pthread_create failed: \(rc)")
    }
}
