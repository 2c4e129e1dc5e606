import CLossdKernels

/// The instruction-set level the C row kernels run at (see CLossdKernels.h): one binary
/// holds the kernels for every level of its architecture (x86-64: SSE2, AVX2+FMA,
/// AVX-512) and the best the CPU supports is chosen when the process starts, or a lower
/// one named by `LOSSD_SIMD`. `/v1/version` reports it.
public struct KernelLevel: Sendable, Equatable, CustomStringConvertible {
    public let rawValue: Int

    /// Level `rawValue` (0 = baseline); a level beyond `best` exists but its kernels refuse.
    public init(rawValue: Int) { self.rawValue = rawValue }

    /// The level the kernels run at now.
    public static var current: KernelLevel { KernelLevel(rawValue: Int(lossd_kernel_level())) }
    /// The best level this CPU (and its operating system) supports.
    public static var best: KernelLevel { KernelLevel(rawValue: Int(lossd_kernel_best_level())) }
    /// Every level this CPU supports, lowest first.
    public static var supported: [KernelLevel] { (0...best.rawValue).map { KernelLevel(rawValue: $0) } }
    /// Whether `LOSSD_SIMD` chose the current level (rather than cpuid).
    public static var chosenByEnvironment: Bool { lossd_kernel_level_from_environment() != 0 }

    /// "sse2", "avx2", "avx512", "neon".
    public var name: String { String(cString: lossd_kernel_level_name(Int32(rawValue))) }
    public var description: String { name }

    /// The softmax of `x` into `y` at this level, by the two-pass algorithm (the service's)
    /// or the three-pass one with reloading: for benchmarks and cross-level tests only. False
    /// when the CPU lacks the level or `x` is empty or out of the kernels' range.
    public func softmax(_ x: UnsafeBufferPointer<Double>, into y: UnsafeMutableBufferPointer<Double>, threePass: Bool) -> Bool {
        guard let xb = x.baseAddress, let yb = y.baseAddress, y.count >= x.count else { return false }
        return lossd_bench_softmax_f64(Int32(rawValue), threePass ? 1 : 0, xb, Int64(x.count), yb) == 0
    }

    /// The same in float32.
    public func softmax(_ x: UnsafeBufferPointer<Float>, into y: UnsafeMutableBufferPointer<Float>, threePass: Bool) -> Bool {
        guard let xb = x.baseAddress, let yb = y.baseAddress, y.count >= x.count else { return false }
        return lossd_bench_softmax_f32(Int32(rawValue), threePass ? 1 : 0, xb, Int64(x.count), yb) == 0
    }

    /// The architecture and the current level, e.g. "x86_64 avx512 (cpuid)" or
    /// "x86_64 sse2 (LOSSD_SIMD; best avx512)".
    public static var summary: String {
        #if arch(x86_64)
            let arch = "x86_64"
        #elseif arch(arm64)
            let arch = "arm64"
        #else
            let arch = "generic"
        #endif
        let source = chosenByEnvironment ? "LOSSD_SIMD" : "cpuid"
        return current == best ? "\(arch) \(current.name) (\(source))" : "\(arch) \(current.name) (\(source); best \(best.name))"
    }
}
