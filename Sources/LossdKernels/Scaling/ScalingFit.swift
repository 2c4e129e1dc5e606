#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// What a fit reports beside the parameters (docs/scaling.md, "Fit report").
public struct ScalingFitReport: Sendable, Equatable {
    /// f at the answer: the weighted Huber sum of log residuals.
    public let objective: Double
    /// `sqrt(mean r_i²)` of the log residuals (unweighted).
    public let rmseLog: Double
    /// `1 − Σ(L̂−L)² / Σ(L − mean L)²` on the losses (not their logs), unweighted; −∞ when
    /// every posted loss is the same and the fit misses it, 1 when it does not.
    public let r2: Double
    /// Fitted points.
    public let nPoints: Int
    /// L-BFGS iterations of the best run.
    public let iterations: Int
    /// Whether the best run stopped at `‖∇f‖∞ ≤ 1e-10` (in the optimiser's coordinates) or
    /// at an objective that no longer moved, rather than at the iteration limit.
    public let converged: Bool
    /// Runs made: the grid's starts at which f is finite.
    public let starts: Int
}

/// The answer of ``ScalingFit/fit(_:options:weights:)``.
public struct ScalingFitResult: Sendable {
    /// The resolved law (nmt's reference sizes filled in) and its fitted parameters.
    public let model: ScalingModel
    /// The unconstrained vector θ of the answer (docs/scaling.md, "Parameterisation").
    public let theta: [Double]
    public let report: ScalingFitReport
    /// `L̂` at every fitted point, in the order of the data (curves concatenated).
    public let fitted: [Double]
    /// The validated data and the optimiser's coordinates of the answer, for the bootstrap.
    let problem: ScalingProblem
    let z: [Double]
}

/// Fits a law by deterministic multi-start L-BFGS on the Huber objective of log residuals
/// (docs/scaling.md, "Fitting").
///
/// Each start of the fixed grid (``startGrid(_:)``, in the documented order) runs L-BFGS
/// to `‖∇f‖∞ ≤ 1e-10`; the answer is the run with the lowest f, the first in grid order
/// on ties. To keep a 432-start chinchilla fit fast, every start first gets 40 iterations
/// (runs in parallel across cores; the answer does not depend on the thread count), and
/// only the 8 lowest unfinished runs go on to 500 iterations in all: runs that are far
/// behind after 40 iterations end in the worse local minima of the grid (docs/scaling.md,
/// "Multi-start"). The exponents bounded to [1e-3, 5] (chinchilla's α, β and
/// nmt's pe, pd) are optimised through the smooth map `θ = lo + (hi − lo)·σ(z)`, so the
/// optimiser itself is unconstrained.
public enum ScalingFit {
    public static let gradientTolerance = 1e-10
    public static let maxIterations = 500
    /// Iterations every start gets before the runs are ranked.
    static let screeningIterations = 40
    /// How many of the best-ranked unfinished runs continue to ``maxIterations``.
    static let finalists = 8

    /// Fits the law of `data` with `options`; `weights` (≥ 0, one per fitted point, at
    /// least one > 0) default to 1. Stops early, with a meaningless answer, when
    /// ``Cancellation`` says the request was cancelled.
    public static func fit(
        _ data: ScalingData, options: ScalingOptions = .defaults, weights: [Double]? = nil
    ) throws(ScalingInputError) -> ScalingFitResult {
        let law = try ScalingLaw.resolve(data.kind, options: options, data: data)
        let problem = try ScalingProblem(law: law, delta: options.huberDelta, data: data, weights: weights)
        let map = BoundedMap(law: law)
        var scratch = [Double](repeating: 0, count: law.fittedCount)
        let feasible = startGrid(problem).filter { problem.objective($0, gradient: &scratch).isFinite }
        // Phase 1: every start, a few iterations (in parallel; each run writes its slot).
        var runs = [CalibrationOptimizers.Result?](repeating: nil, count: feasible.count)
        if !feasible.isEmpty { runs.withUnsafeMutableBufferPointer { slots in
            Parallel.forEachRange(feasible.count, costPerRow: problem.count * screeningIterations * 40) { range in
                for k in range where !Cancellation.isCancelled {
                    slots[k] = minimize(problem, map: map, z0: map.z(feasible[k]), maxIter: screeningIterations)
                }
            }
        } }
        // Phase 2: the most promising unfinished runs go on to the full budget.
        let ranked = runs.indices.filter { runs[$0]?.f.isFinite == true }
            .sorted { (runs[$0]?.f ?? .infinity, $0) < (runs[$1]?.f ?? .infinity, $1) }
        let finalists = ranked.prefix(finalists).filter { runs[$0]?.converged == false }
        if !finalists.isEmpty { runs.withUnsafeMutableBufferPointer { slots in
            Parallel.forEachRange(finalists.count, costPerRow: problem.count * maxIterations * 40) { range in
                for k in range where !Cancellation.isCancelled {
                    guard let first = slots[finalists[k]] else { continue }
                    var more = minimize(problem, map: map, z0: first.x, maxIter: maxIterations - first.iterations)
                    more.iterations += first.iterations
                    if more.f <= first.f { slots[finalists[k]] = more }
                }
            }
        } }
        var best: CalibrationOptimizers.Result?
        for case let run? in runs where run.f.isFinite && run.f < (best?.f ?? .infinity) { best = run }
        let starts = feasible.count
        guard let best else {
            throw ScalingInputError(
                .noFeasibleStart, field: "/data",
                "no start of the grid gives a positive predicted loss at every point; check the schedules and losses")
        }
        return result(problem, map: map, run: best, starts: starts)
    }

    /// The fit's answer from a finished run.
    static func result(_ problem: ScalingProblem, map: BoundedMap, run: CalibrationOptimizers.Result, starts: Int) -> ScalingFitResult {
        let theta = map.theta(run.x)
        let law = problem.law
        let logHat = problem.logPrediction(theta) ?? [Double](repeating: .nan, count: problem.count)
        let fitted = logHat.map { exp($0) }
        var sumR2 = 0.0, meanL = 0.0
        for i in 0..<problem.count {
            let r = logHat[i] - problem.logLoss[i]
            sumR2 += r * r
            meanL += problem.loss[i]
        }
        meanL /= Double(problem.count)
        var ssRes = 0.0, ssTot = 0.0
        for i in 0..<problem.count {
            ssRes += (fitted[i] - problem.loss[i]) * (fitted[i] - problem.loss[i])
            ssTot += (problem.loss[i] - meanL) * (problem.loss[i] - meanL)
        }
        let r2 = ssTot > 0 ? 1 - ssRes / ssTot : (ssRes == 0 ? 1 : -.infinity)
        let report = ScalingFitReport(
            objective: run.f, rmseLog: (sumR2 / Double(problem.count)).squareRoot(), r2: r2,
            nPoints: problem.count, iterations: run.iterations, converged: run.converged, starts: starts)
        return ScalingFitResult(
            model: ScalingModel(fitted: law, values: law.values(theta: theta)), theta: theta, report: report,
            fitted: fitted, problem: problem, z: run.x)
    }

    /// One L-BFGS run from optimiser coordinates `z0`.
    static func minimize(
        _ problem: ScalingProblem, map: BoundedMap, z0: [Double], maxIter: Int = maxIterations
    ) -> CalibrationOptimizers.Result {
        var g = [Double](repeating: 0, count: z0.count)
        return CalibrationOptimizers.lbfgs(x0: z0, gtol: gradientTolerance, maxIter: maxIter) { z in
            let f = problem.objective(map.theta(z), gradient: &g)
            guard f.isFinite else { return nil }
            return (f, map.chain(z, g))
        }
    }

    /// The starts of docs/scaling.md ("Fitting"), as θ vectors, in grid order:
    ///
    /// - power_law: `e ∈ {log(0.5·min L), log(0.9·min L)}` (outermost; absent without
    ///   L_inf), then `a ∈ {log min x, log max x, log max x + 5}`, then
    ///   `u ∈ {log 0.1, log 0.3, 0}` — 18 starts (9 without L_inf)
    /// - chinchilla: `α, β ∈ {0.1, 0.3, 0.6}`, `e ∈ {−1, 0, 1}`, `a, b ∈ {0, 5, 10, 15}`,
    ///   in that nesting — 432 starts
    /// - nmt: `pe, pd ∈ {0.1, 0.3, 0.6}`, `l ∈ {log(0.5·min L), log(0.9·min L)}`,
    ///   `k ∈ {log(max L − min L + 1e-3), 0}` — 36 starts
    /// - lr_annealing: `L0 ∈ {0.5·min L, 0.9·min L}`, `u ∈ {log 0.3, log 0.5, 0}`,
    ///   `a ∈ {log(max L − min L + 1e-3), 0}`, `c ∈ {log 0.01, 0}` — 24 starts
    static func startGrid(_ problem: ScalingProblem) -> [[Double]] {
        let lo = problem.loss.min() ?? 1, hi = problem.loss.max() ?? 1
        var grid: [[Double]] = []
        switch problem.law {
        case .powerLaw(let irreducible):
            let xs = problem.u  // log x
            let minX = xs.min() ?? 0, maxX = xs.max() ?? 0
            let us = [log(0.1), log(0.3), 0.0]
            let as_ = [minX, maxX, maxX + 5]
            if irreducible {
                for e in [log(0.5 * lo), log(0.9 * lo)] { for a in as_ { for u in us { grid.append([e, a, u]) } } }
            } else {
                for a in as_ { for u in us { grid.append([a, u]) } }
            }
        case .chinchilla:
            let exps = [0.1, 0.3, 0.6], coefs = [0.0, 5, 10, 15]
            for al in exps { for be in exps { for e in [-1.0, 0, 1] { for a in coefs { for b in coefs {
                grid.append([e, a, b, al, be])
            } } } } }
        case .nmt:
            let exps = [0.1, 0.3, 0.6]
            for pe in exps { for pd in exps {
                for l in [log(0.5 * lo), log(0.9 * lo)] { for k in [log(hi - lo + 1e-3), 0] { grid.append([l, k, pe, pd]) } }
            } }
        case .lrAnnealing:
            for l0 in [0.5 * lo, 0.9 * lo] { for u in [log(0.3), log(0.5), 0] {
                for a in [log(hi - lo + 1e-3), 0] { for c in [log(0.01), 0] { grid.append([l0, a, u, c]) } }
            } }
        }
        return grid
    }
}

/// The smooth map between the optimiser's coordinates z and θ: the identity except for
/// the bounded exponents, `θ_j = lo + (hi − lo)·σ(z_j)` with [lo, hi] = [1e-3, 5].
struct BoundedMap: Sendable {
    let bounded: [Int]
    let lo = ScalingLaw.exponentBounds.lowerBound
    let width = ScalingLaw.exponentBounds.upperBound - ScalingLaw.exponentBounds.lowerBound

    init(law: ScalingLaw) { bounded = law.boundedIndices }

    @inline(__always) static func sigmoid(_ z: Double) -> Double {
        z >= 0 ? 1 / (1 + exp(-z)) : exp(z) / (1 + exp(z))
    }

    func theta(_ z: [Double]) -> [Double] {
        var t = z
        for j in bounded { t[j] = lo + width * Self.sigmoid(z[j]) }
        return t
    }

    /// z of θ; a bounded value is pulled 1e-12 inside its interval first.
    func z(_ theta: [Double]) -> [Double] {
        var z = theta
        for j in bounded {
            let p = min(max((theta[j] - lo) / width, 1e-12), 1 - 1e-12)
            z[j] = log(p / (1 - p))
        }
        return z
    }

    /// ∇_z f from ∇_θ f.
    func chain(_ z: [Double], _ g: [Double]) -> [Double] {
        var out = g
        for j in bounded {
            let s = Self.sigmoid(z[j])
            out[j] = g[j] * width * s * (1 - s)
        }
        return out
    }
}
