/// The learning-rate areas of Tissue et al. 2024 for one schedule (docs/scaling.md,
/// "Learning-rate areas").
///
/// With learning rates `η_1 … η_S` (step s uses η_s) and W warm-up steps, steps `s ≤ W`
/// add nothing to either area. For `s > W`, with `η_W := η_{W+1}` and `m_W := 0`:
///
///     S1(s) = Σ_{i=W+1..s} η_i                   forward area
///     m_i   = λ·m_{i−1} + (η_{i−1} − η_i)        annealing momentum
///     S2(s) = Σ_{i=W+1..s} m_i                   annealing area
///
/// A constant schedule has `S2 = 0`, a decaying one builds `S2 > 0`, a rising one makes it
/// negative. `S1` never decreases, so `S1 > 0` at the first fitted step is enough for all.
public struct LearningRateAreas: Sendable, Equatable {
    /// W: the areas start at step W + 1.
    public let warmupSteps: Int
    /// `S1(s)` for `s = W+1 … S` (index `s − W − 1`).
    public let s1: [Double]
    /// `S2(s)` for `s = W+1 … S`.
    public let s2: [Double]

    /// The areas of `lr` with decay λ and W warm-up steps. Every rate must be finite and
    /// ≥ 0 (field `/lr/i`); λ ∈ [0, 1) and W ≥ 0 (field `/params/...`). W ≥ S gives
    /// empty areas.
    public init(lr: [Double], decay: Double, warmupSteps: Int) throws(ScalingInputError) {
        guard decay.isFinite, decay >= 0, decay < 1 else {
            throw ScalingInputError(.invalidOption, field: "/params/decay", "decay must be in [0, 1), got \(decay)")
        }
        guard warmupSteps >= 0 else {
            throw ScalingInputError(.invalidOption, field: "/params/warmup_steps", "warmup_steps must be ≥ 0, got \(warmupSteps)")
        }
        try Self.checkRates(lr) { "/lr/\($0)" }
        self = Self(unchecked: lr, decay: decay, warmupSteps: warmupSteps)
    }

    /// The areas of rates already checked.
    init(unchecked lr: [Double], decay: Double, warmupSteps: Int) {
        let count = max(0, lr.count - warmupSteps)
        var s1 = [Double](repeating: 0, count: count)
        var s2 = [Double](repeating: 0, count: count)
        if count > 0 {
            lr.withUnsafeBufferPointer { eta in
                var a1 = 0.0, a2 = 0.0, m = 0.0
                var previous = eta[warmupSteps]
                for k in 0..<count {
                    let e = eta[warmupSteps + k]
                    m = decay * m + (previous - e)
                    previous = e
                    a1 += e
                    a2 += m
                    s1[k] = a1
                    s2[k] = a2
                }
            }
        }
        self.warmupSteps = warmupSteps
        self.s1 = s1
        self.s2 = s2
    }

    /// Steps `W+1 … S`, 1-based.
    public var steps: ClosedRange<Int>? {
        s1.isEmpty ? nil : (warmupSteps + 1)...(warmupSteps + s1.count)
    }

    /// Every rate finite and ≥ 0.
    static func checkRates(_ lr: [Double], path: (Int) -> String) throws(ScalingInputError) {
        for (i, v) in lr.enumerated() {
            guard v.isFinite else { throw ScalingInputError(.nonFinite, field: path(i), "learning rates must be finite, got \(v)") }
            guard v >= 0 else { throw ScalingInputError(.invalidSchedule, field: path(i), "learning rates must be ≥ 0, got \(v)") }
        }
    }

    /// Checks sparse 1-based `steps` (strictly increasing in [W+1, S]); field `base/steps/i`.
    static func checkSteps(_ steps: [Int], warmupSteps: Int, scheduleLength: Int, base: String) throws(ScalingInputError) {
        var previous = warmupSteps
        for (i, s) in steps.enumerated() {
            guard s > previous, s <= scheduleLength else {
                throw ScalingInputError(
                    .invalidSteps, field: "\(base)/steps/\(i)",
                    "steps must be strictly increasing in [\(warmupSteps + 1), \(scheduleLength)], got \(s) after \(previous)")
            }
            previous = s
        }
    }
}
