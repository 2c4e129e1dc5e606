import CLossdSystem
import Dispatch

#if canImport(Glibc)
    import Glibc
#endif

/// How expensive a request is expected to be, decided from its head before it runs.
public enum WorkClass: Sendable, Equatable {
    /// Bounded, quick work (a loss over a modest batch, an apply): may also run on the
    /// reserved light lane, so it keeps its latency while heavy work saturates the pool.
    case light
    /// Work whose cost the head cannot bound (fits, aggregation, large bodies).
    case heavy
}

/// A fixed set of threads that run request handlers, apart from the I/O thread, with a
/// bounded queue in front of them. When the queue is full ``submit(_:class:)`` refuses the
/// job, so overload becomes a fast 503 rather than unbounded memory and latency.
///
/// Two lanes: `threads` general threads take light jobs first, then heavy ones, and
/// `reservedLightThreads` more threads take light jobs only. A client looping expensive
/// fits therefore occupies at most the general threads, and a cheap request always finds
/// a thread within about one light job's time.
///
/// A finished job keeps nothing: its slot in the queue is cleared when a thread takes it,
/// so the closure (and the request body it captured) is freed as soon as it returns.
public final class WorkerPool: Sendable {
    public typealias Job = @Sendable () -> Void

    public let threadCount: Int
    public let reservedLightThreads: Int
    public let queueCapacity: Int
    private let monitor = Monitor<State>(State())
    private let finished = DispatchGroup()

    private struct State {
        var light = JobQueue()
        var heavy = JobQueue()
        var runningGeneral = 0
        var runningLight = 0
        /// When the last general thread became busy (0: not all busy).
        var allGeneralBusySince: UInt64 = 0
        var stopped = false
        var queued: Int { light.count + heavy.count }

        mutating func noteGeneralStart(of threads: Int) {
            runningGeneral += 1
            if runningGeneral >= threads && allGeneralBusySince == 0 {
                allGeneralBusySince = DispatchTime.now().uptimeNanoseconds
            }
        }
    }

    /// - Parameters:
    ///   - threads: general worker threads (at least 1).
    ///   - reservedLightThreads: extra threads that only run light jobs (0 for none).
    ///   - queueCapacity: jobs that may wait for a thread before new ones are refused.
    public init(threads: Int, reservedLightThreads: Int = 0, queueCapacity: Int) {
        threadCount = max(1, threads)
        self.reservedLightThreads = max(0, reservedLightThreads)
        self.queueCapacity = max(1, queueCapacity)
        for index in 0..<threadCount {
            finished.enter()
            WorkerThread(name: "lossd-worker-\(index)") { [self] in self.workLoop(lightOnly: false) }.start()
        }
        for index in 0..<self.reservedLightThreads {
            finished.enter()
            WorkerThread(name: "lossd-light-\(index)") { [self] in self.workLoop(lightOnly: true) }.start()
        }
    }

    /// Queues a job; returns false (and drops it) when the queue is full or the pool stopped.
    @discardableResult
    public func submit(_ job: @escaping Job, class workClass: WorkClass = .heavy) -> Bool {
        monitor.withLock { state -> Bool in
            guard !state.stopped, state.queued < queueCapacity else { return false }
            if workClass == .light { state.light.push(job) } else { state.heavy.push(job) }
            return true
        } broadcastIf: { $0 }
    }

    /// Jobs waiting for a thread.
    public var queueDepth: Int { monitor.withLock { $0.queued } }

    /// Jobs running now.
    public var busyThreads: Int { monitor.withLock { $0.runningGeneral + $0.runningLight } }

    /// Every general thread runs a job, and requests wait or the threads have all been
    /// busy for over a second: new heavy work would queue behind long jobs.
    public var isSaturated: Bool {
        let now = DispatchTime.now().uptimeNanoseconds
        return monitor.withLock { state in
            guard state.runningGeneral >= threadCount else { return false }
            return state.queued > 0 || now &- state.allGeneralBusySince > 1_000_000_000
        }
    }

    /// Lets queued jobs finish, then ends the threads. Waits at most `timeout` seconds.
    public func shutdown(timeout: Double) {
        monitor.withLock { state -> Bool in
            state.stopped = true
            return true
        } broadcastIf: { $0 }
        _ = finished.wait(timeout: .now() + timeout)
    }

    private func workLoop(lightOnly: Bool) {
        while true {
            let job: Job? = monitor.wait { state -> Job?? in
                if let job = state.light.pop() {
                    if lightOnly { state.runningLight += 1 } else { state.noteGeneralStart(of: threadCount) }
                    return .some(job)
                }
                if !lightOnly, let job = state.heavy.pop() {
                    state.noteGeneralStart(of: threadCount)
                    return .some(job)
                }
                if state.stopped && (lightOnly ? state.light.count == 0 : state.queued == 0) { return .some(nil) }
                return nil  // nothing for this thread: wait
            }
            guard let job else { break }
            job()
            monitor.withLock { state -> Bool in
                if lightOnly {
                    state.runningLight -= 1
                } else {
                    state.runningGeneral -= 1
                    state.allGeneralBusySince = 0
                }
                return false
            } broadcastIf: { $0 }
        }
        finished.leave()
    }
}

/// A FIFO of jobs in a ring buffer. A popped slot is set to nil at once, so the queue
/// never holds on to a job (or what it captured) after a thread has taken it.
struct JobQueue {
    private var slots: [WorkerPool.Job?] = Array(repeating: nil, count: 16)
    private var head = 0
    private(set) var count = 0

    mutating func push(_ job: @escaping WorkerPool.Job) {
        if count == slots.count { grow() }
        slots[(head + count) % slots.count] = job
        count += 1
    }

    mutating func pop() -> WorkerPool.Job? {
        guard count > 0 else { return nil }
        let job = slots[head]
        slots[head] = nil
        head = (head + 1) % slots.count
        count -= 1
        return job
    }

    /// Slots still referencing a job (tests: must equal `count`).
    var occupiedSlots: Int { slots.reduce(0) { $0 + ($1 == nil ? 0 : 1) } }

    private mutating func grow() {
        var larger: [WorkerPool.Job?] = Array(repeating: nil, count: slots.count * 2)
        for i in 0..<count { larger[i] = slots[(head + i) % slots.count] }
        slots = larger
        head = 0
    }
}

/// A value guarded by a mutex with a condition variable, for threads that wait for work.
///
/// `@unchecked Sendable` is safe because `value` is read and written only while `mutex` is
/// held (inside `withLock` and `wait`), and the pthread mutex and condition live at stable
/// heap addresses for the object's whole life.
final class Monitor<Value>: @unchecked Sendable {
    private var value: Value
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let condition = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)

    init(_ value: Value) {
        self.value = value
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(condition, nil)
    }

    deinit {
        pthread_cond_destroy(condition)
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
        condition.deallocate()
    }

    func withLock<R>(_ body: (inout Value) -> R) -> R {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return body(&value)
    }

    /// Runs `body` under the lock and wakes every waiter when `broadcastIf` says so.
    @discardableResult
    func withLock<R>(_ body: (inout Value) -> R, broadcastIf wake: (R) -> Bool) -> R {
        pthread_mutex_lock(mutex)
        let result = body(&value)
        if wake(result) { pthread_cond_broadcast(condition) }
        pthread_mutex_unlock(mutex)
        return result
    }

    /// Calls `attempt` under the lock until it returns a value, sleeping on the condition
    /// between tries.
    func wait<R>(until attempt: (inout Value) -> R?) -> R {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        while true {
            if let result = attempt(&value) { return result }
            pthread_cond_wait(condition, mutex)
        }
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
