#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A percentile interval `[q_{(1−level)/2}, q_{(1+level)/2}]`.
public struct ScalingInterval: Sendable, Equatable {
    public let lower: Double
    public let upper: Double
}

/// Bootstrap intervals of a fit (docs/scaling.md, "Uncertainty").
public struct ScalingBootstrapResult: Sendable, Equatable {
    public let level: Double
    /// Resamples drawn.
    public let samples: Int
    /// Resamples whose refit ended at a finite objective (the intervals' sample).
    public let refits: Int
    /// One interval per ``ScalingLaw/parameterNames`` entry (a fixed `L_inf` gives [0, 0]).
    public let parameters: [ScalingInterval]
    /// One interval per point of the query (empty without one).
    public let predictions: [ScalingInterval]
}

/// Nonparametric bootstrap of a scaling fit.
///
/// Each of B resamples draws units with replacement — the points, or for lr_annealing
/// with two or more curves whole curves — and refits with the drawn multiplicities as
/// weight factors, starting from the full-data optimum only (one L-BFGS run, same
/// tolerances as the fit). Intervals are percentiles with linear interpolation between
/// order statistics (NumPy's default). Resample r draws from SplitMix64 seeded by the
/// r-th output of SplitMix64(`seed`), so the same seed gives the same answer from the
/// same build, whatever the number of threads; resamples run in parallel across cores.
public enum ScalingBootstrap {
    /// B resamples (1 … 1000, field `/params/bootstrap/samples`) at `level` ∈ (0, 1)
    /// (field `/params/bootstrap/level`); intervals for every parameter and for the law at
    /// every point of `query`.
    public static func run(
        _ fit: ScalingFitResult, samples: Int, seed: UInt64, level: Double = 0.95, query: ScalingQuery? = nil
    ) throws(ScalingInputError) -> ScalingBootstrapResult {
        guard samples >= 1, samples <= ScalingLimits.maxBootstrapSamples else {
            throw ScalingInputError(
                .invalidOption, field: "/params/bootstrap/samples",
                "samples must be in [1, \(ScalingLimits.maxBootstrapSamples)], got \(samples)")
        }
        guard level.isFinite, level > 0, level < 1 else {
            throw ScalingInputError(.invalidOption, field: "/params/bootstrap/level", "level must be in (0, 1), got \(level)")
        }
        let law = fit.model.law
        let prepared = try query.map { q throws(ScalingInputError) in try PreparedQuery(law: law, q) }
        let problem = fit.problem
        let map = BoundedMap(law: law)
        let byCurve = law.kind == .lrAnnealing && problem.groups >= 2
        let units = byCurve ? problem.groups : problem.count
        // One sub-seed per resample from the master stream, so refits can run in parallel
        // and still give the same answer whatever the thread count.
        var master = SplitMix64(seed: seed)
        let seeds = (0..<samples).map { _ in master.next() }
        var refitted = [[Double]?](repeating: nil, count: samples)
        refitted.withUnsafeMutableBufferPointer { slots in
            Parallel.forEachRange(samples, costPerRow: problem.count * 100 * 40) { range in
                for r in range where !Cancellation.isCancelled {
                    var rng = SplitMix64(seed: seeds[r])
                    var drawn = [Int](repeating: 0, count: units)
                    for _ in 0..<units { drawn[rng.below(units)] += 1 }
                    let multiplicity = byCurve ? problem.group.map { drawn[$0] } : drawn
                    let run = ScalingFit.minimize(problem.resampled(multiplicity: multiplicity), map: map, z0: fit.z)
                    if run.f.isFinite { slots[r] = law.values(theta: map.theta(run.x)) }
                }
            }
        }
        var paramDraws = [[Double]](repeating: [], count: law.parameterNames.count)
        var predictionDraws = [[Double]](repeating: [], count: prepared?.a.count ?? 0)
        var refits = 0
        for case let values? in refitted {
            refits += 1
            for (j, v) in values.enumerated() { paramDraws[j].append(v) }
            if let prepared {
                for (j, v) in prepared.evaluate(values).enumerated() { predictionDraws[j].append(v) }
            }
        }
        let lowQ = (1 - level) / 2, highQ = (1 + level) / 2
        func interval(_ draws: [Double]) -> ScalingInterval {
            let sorted = draws.sorted()
            return ScalingInterval(lower: percentile(sorted, lowQ), upper: percentile(sorted, highQ))
        }
        return ScalingBootstrapResult(
            level: level, samples: samples, refits: refits,
            parameters: paramDraws.map(interval), predictions: predictionDraws.map(interval))
    }

    /// The q-quantile of sorted values by linear interpolation (`h = (n−1)·q`); NaN when empty.
    static func percentile(_ sorted: [Double], _ q: Double) -> Double {
        guard let last = sorted.last else { return .nan }
        let h = Double(sorted.count - 1) * q
        let i = Int(h.rounded(.down))
        guard i + 1 < sorted.count else { return last }
        return sorted[i] + (h - Double(i)) * (sorted[i + 1] - sorted[i])
    }
}
