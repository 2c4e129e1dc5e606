#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Compute-optimal model and data sizes for one budget (chinchilla).
public struct ComputeOptimalAllocation: Sendable, Equatable {
    /// The budget C in FLOPs.
    public let compute: Double
    public let nOpt: Double
    public let dOpt: Double
    /// `L(N_opt, D_opt)`.
    public let loss: Double
}

/// The loss-minimising encoder/decoder split of one total size (nmt).
public struct EncoderDecoderSplit: Sendable, Equatable {
    public let total: Double
    public let nEncoder: Double
    public let nDecoder: Double
    public let loss: Double
}

/// A predicted loss curve (lr_annealing) with the areas behind it.
public struct PredictedCurve: Sendable, Equatable {
    /// 1-based steps.
    public let steps: [Int]
    public let s1: [Double]
    public let s2: [Double]
    public let loss: [Double]
}

/// The derived quantities of docs/scaling.md ("Derived quantities"). Each throws
/// ``ScalingRejection/lawMismatch`` for a model of another law.
public enum ScalingDerived {
    /// power_law: the reducible loss `L(x) − L_inf = (x0/x)^alpha` (Henighan et al.'s
    /// KL-divergence part) at every x (> 0; field `/x/i`).
    public static func reducible(_ model: ScalingModel, x: [Double]) throws(ScalingInputError) -> [Double] {
        try expect(model, .powerLaw)
        try ScalingCheck.positive(x, "x") { "/x/\($0)" }
        let p = model.values
        return x.map { pow(p[1] / $0, p[2]) }
    }

    /// power_law: the size at which the law reaches `target`,
    /// `x = x0·(target − L_inf)^(−1/alpha)`; nil when `target ≤ L_inf` (never reached).
    /// `target` must be finite (field `/target_loss`).
    public static func xForLoss(_ model: ScalingModel, target: Double) throws(ScalingInputError) -> Double? {
        try expect(model, .powerLaw)
        guard target.isFinite else { throw ScalingInputError(.nonFinite, field: "/target_loss", "target_loss must be finite, got \(target)") }
        let p = model.values
        guard target > p[0] else { return nil }
        return p[1] * pow(target - p[0], -1 / p[2])
    }

    /// chinchilla: for each budget C (> 0 FLOPs, field `/compute/i`) with `C = 6·N·D`,
    /// minimising `L(N, D)` on that curve gives
    /// `G = (alpha·A / (beta·B))^(1/(alpha+beta))`, `N_opt = G·(C/6)^(beta/(alpha+beta))`,
    /// `D_opt = (C/6)/N_opt`.
    public static func computeOptimal(_ model: ScalingModel, compute: [Double]) throws(ScalingInputError) -> [ComputeOptimalAllocation] {
        try expect(model, .chinchilla)
        try ScalingCheck.positive(compute, "compute") { "/compute/\($0)" }
        let p = model.values
        let (a, b) = (p[3], p[4])
        let g = pow(a * p[1] / (b * p[2]), 1 / (a + b))
        return compute.map { c in
            let n = g * pow(c / 6, b / (a + b))
            let d = (c / 6) / n
            return ComputeOptimalAllocation(compute: c, nOpt: n, dOpt: d, loss: PreparedQuery.loss(model.law, p, n, d))
        }
    }

    /// nmt: for each total `N = Ne + Nd` (> 0, field `/n_total/i`) the split minimising
    /// the loss, `Ne/N = pe/(pe + pd)`, and the loss there.
    public static func optimalSplit(_ model: ScalingModel, totals: [Double]) throws(ScalingInputError) -> [EncoderDecoderSplit] {
        try expect(model, .nmt)
        try ScalingCheck.positive(totals, "n_total") { "/n_total/\($0)" }
        let p = model.values
        return totals.map { total in
            let ne = total * p[2] / (p[2] + p[3])
            let nd = total - ne
            return EncoderDecoderSplit(total: total, nEncoder: ne, nDecoder: nd, loss: PreparedQuery.loss(model.law, p, ne, nd))
        }
    }

    /// lr_annealing: the predicted curve of a schedule never run, at steps `W+1 … S` or at
    /// the given 1-based `steps`, with `S1` and `S2` there.
    public static func curve(_ model: ScalingModel, lr: [Double], steps: [Int]? = nil) throws(ScalingInputError) -> PredictedCurve {
        try expect(model, .lrAnnealing)
        let q = try PreparedQuery(law: model.law, .lrAnnealing(lr: lr, steps: steps))
        return PredictedCurve(steps: q.steps, s1: q.a, s2: q.b, loss: q.evaluate(model.values))
    }

    static func expect(_ model: ScalingModel, _ kind: ScalingLawKind) throws(ScalingInputError) {
        guard model.law.kind == kind else {
            throw ScalingInputError(.lawMismatch, field: "/law", "this quantity needs a \(kind.rawValue) law, not \(model.law.kind.rawValue)")
        }
    }
}
