#if canImport(Glibc)
    import Glibc
#endif

/// Calibrated NLL (Ashukha, Lyzhov, Molchanov & Vetrov 2020, "Pitfalls of In-Domain
/// Uncertainty Estimation and Ensembling in Deep Learning"; docs/calibration.md §2.12):
/// the test NLL after temperature scaling, with the temperature fitted on held-out rows
/// of the same set so that models are compared at their best temperature.
///
/// For each of R seeded random halvings (A, B) of the N rows, temperature scaling
/// (Guo et al. 2017; `TemperatureScaling.fit`) is fitted on A and scored on B, then fitted
/// on B and scored on A. The answer is the mean of the 2R held-out NLLs
/// `NLL_B(T_A) = −(1/|B|) Σ_{i∈B} log softmax(z_i / T_A)_{y_i}` and their population
/// standard deviation (divided by 2R).
public enum CalibratedNLL {
    /// One halving: `first` holds ⌊N/2⌋ row indices, `second` the rest.
    public struct Halving: Sendable, Equatable {
        public var first: [Int]
        public var second: [Int]

        public init(first: [Int], second: [Int]) {
            self.first = first
            self.second = second
        }
    }

    /// One held-out score: the temperature fitted on one half and the NLL of the other.
    public struct Split: Sendable, Equatable {
        public var repeatIndex: Int
        /// True when the temperature was fitted on `first` (and `second` was scored).
        public var fittedOnFirst: Bool
        public var temperature: Double
        public var nll: Double
    }

    public struct Result: Sendable, Equatable {
        public var mean: Double
        /// Population standard deviation (ddof 0) of the 2R held-out NLLs.
        public var standardDeviation: Double
        public var splits: [Split]
    }

    /// The seeded halvings: master = SplitMix64(seed); repeat r shuffles the identity
    /// permutation with SplitMix64(master.next()) by Fisher–Yates from the top
    /// (for i = N−1 down to 1: j = below(i + 1), swap i and j); the first ⌊N/2⌋ entries
    /// are the first half.
    public static func halvings(rows n: Int, repeats: Int, seed: UInt64) -> [Halving] {
        var master = SplitMix64(seed: seed)
        var out: [Halving] = []
        out.reserveCapacity(max(0, repeats))
        for _ in 0..<max(0, repeats) {
            var rng = SplitMix64(seed: master.next())
            var permutation = Array(0..<max(0, n))
            var i = n - 1
            while i >= 1 {
                permutation.swapAt(i, rng.below(i + 1))
                i -= 1
            }
            let half = n / 2
            out.append(Halving(first: Array(permutation[0..<half]), second: Array(permutation[half...])))
        }
        return out
    }

    /// Calibrated NLL over the given halvings (each half non-empty, labels in [0, C)).
    public static func evaluate(logits: Matrix, labels: [Int], halvings: [Halving]) throws(SoftmaxCalibrationError) -> Result {
        var splits: [Split] = []
        splits.reserveCapacity(2 * halvings.count)
        for (r, halving) in halvings.enumerated() {
            guard !Cancellation.isCancelled else { break }
            guard !halving.first.isEmpty, !halving.second.isEmpty else { throw .shape("calibrated NLL needs two non-empty halves") }
            let a = rows(logits, labels, halving.first), b = rows(logits, labels, halving.second)
            for (fit, score, onFirst) in [(a, b, true), (b, a, false)] {
                let (model, _) = try TemperatureScaling.fit(logits: fit.logits, labels: fit.labels)
                guard case .number(let temperature)? = model.parameters["temperature"] else {
                    throw .shape("temperature scaling returned no temperature")
                }
                splits.append(
                    Split(
                        repeatIndex: r, fittedOnFirst: onFirst, temperature: temperature,
                        nll: nll(logits: score.logits, labels: score.labels, temperature: temperature)))
            }
        }
        let count = Double(max(splits.count, 1))
        var mean = 0.0
        for s in splits { mean += s.nll }
        mean /= count
        var variance = 0.0
        for s in splits { variance += (s.nll - mean) * (s.nll - mean) }
        return Result(mean: mean, standardDeviation: (variance / count).squareRoot(), splits: splits)
    }

    /// `evaluate` over `repeats` halvings drawn from `seed`.
    public static func evaluate(logits: Matrix, labels: [Int], repeats: Int, seed: UInt64) throws(SoftmaxCalibrationError) -> Result {
        try evaluate(logits: logits, labels: labels, halvings: halvings(rows: logits.rows, repeats: repeats, seed: seed))
    }

    /// Mean NLL of softmax(z / T) at the labels: per row `lse(s) − s_y` with
    /// s = (z − max z) / T, so that every scaled entry is ≤ 0 for any T > 0.
    public static func nll(logits: Matrix, labels: [Int], temperature: Double) -> Double {
        let n = logits.rows, c = logits.cols
        guard n > 0 else { return 0 }
        var scaled = [Double](repeating: 0, count: c)
        var sum = 0.0
        logits.values.withUnsafeBufferPointer { z in
            scaled.withUnsafeMutableBufferPointer { s in
                for i in 0..<n {
                    let row = z.row(i, width: c)
                    var top = -Double.infinity
                    for j in 0..<c where row[j] > top { top = row[j] }
                    for j in 0..<c { s[j] = (row[j] - top) / temperature }
                    let (m, excess) = TwoPassSoftmax.logSumExpAboveMax(UnsafeBufferPointer(s))
                    sum += (m - s[labels[i]]) + excess
                }
            }
        }
        return sum / Double(n)
    }

    /// The rows `indices` of `logits` and `labels`, in that order.
    static func rows(_ logits: Matrix, _ labels: [Int], _ indices: [Int]) -> (logits: Matrix, labels: [Int]) {
        let c = logits.cols
        var values: [Double] = []
        values.reserveCapacity(indices.count * c)
        for i in indices { values.append(contentsOf: logits.values[(i * c)..<((i + 1) * c)]) }
        return (Matrix(rows: indices.count, cols: c, values: values), indices.map { labels[$0] })
    }
}
