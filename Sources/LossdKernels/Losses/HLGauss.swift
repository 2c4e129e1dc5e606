#if canImport(Glibc)
    import Glibc
#endif

/// HL-Gauss (Farebrother et al., ICML 2024, Appendix A; docs/losses.md §12.1): the regression
/// target y becomes the histogram of N(y, σ²) truncated to [min, max] over C equal bins, and the
/// logits are trained with cross-entropy against it; predictions decode to Σ p_j·center_j.
public enum HLGauss {
    public struct Parameters: Sendable {
        /// Support [min, max] (max > min), split into as many bins as logit columns.
        public var min: Double
        public var max: Double
        /// Absolute σ > 0, or nil for `sigmaRatio`·bin width.
        public var sigma: Double?
        /// σ as a multiple of the bin width (the paper's σ/ς = 0.75).
        public var sigmaRatio: Double = 0.75
        /// Clip targets into [min, max] first (the paper's code does not).
        public var clipTarget: Bool = true

        public init(min: Double, max: Double, sigma: Double? = nil, sigmaRatio: Double = 0.75, clipTarget: Bool = true) {
            self.min = min
            self.max = max
            self.sigma = sigma
            self.sigmaRatio = sigmaRatio
            self.clipTarget = clipTarget
        }
    }

    /// Evaluates ℓ_r = −Σ_j t_rj log softmax(z_r)_j (d_r = 1), the gradient softmax − t, and
    /// the extras `prediction`, `target_probs`, `target_mean`, `bin_centers`, `sigma`.
    public static func evaluate(logits: Matrix, values: [Double], parameters: Parameters, gradient: Bool) throws(LossInputError)
        -> LossOutput
    {
        try HistogramClassification.validate(values: values, logits: logits)
        let n = logits.rows, c = logits.cols
        let lo = parameters.min, hi = parameters.max
        let width = (hi - lo) / Double(c)
        let sigma = parameters.sigma ?? parameters.sigmaRatio * width
        var edges = (0...c).map { lo + width * Double($0) }
        edges[c] = hi
        let centers = (0..<c).map { 0.5 * (edges[$0] + edges[$0 + 1]) }

        var targets = Matrix(zeros: n, c)
        var normalisers = [Double](repeating: 0, count: n)
        withMutableBuffers(&targets.values, &normalisers) { t, normalisersOut in
            Parallel.forEachRange(n, costPerRow: 8 * c) { rows in
                var u = [Double](repeating: 0, count: c + 1)
                for r in rows {
                    let y = parameters.clipTarget ? Swift.min(Swift.max(values[r], lo), hi) : values[r]
                    for j in 0...c { u[j] = (edges[j] - y) / sigma }
                    let normaliser = normalCDFDifference(u[0], u[c])
                    normalisersOut[r] = normaliser
                    guard normaliser > 1e-300 else { continue }
                    for j in 0..<c { t[r * c + j] = normalCDFDifference(u[j], u[j + 1]) / normaliser }
                }
            }
        }
        if let bad = normalisers.firstIndex(where: { !($0 > 1e-300) }) {
            throw LossInputError(
                .invalidTarget, field: "/values/\(bad)",
                "`values[\(bad)]` is too far outside [bins.min, bins.max] for sigma (normaliser underflows)")
        }

        let result = try HistogramClassification.evaluate(logits: logits, targets: targets, points: centers, gradient: gradient)
        var output = result.output
        var targetMeans = [Double](repeating: 0, count: n)
        for r in 0..<n {
            var mean = 0.0
            for j in 0..<c { mean += targets[r, j] * centers[j] }
            targetMeans[r] = mean
        }
        output.extras = [
            "prediction": .vector(result.predictions),
            "target_probs": .matrix(targets),
            "target_mean": .vector(targetMeans),
            "bin_centers": .vector(centers),
            "sigma": .scalar(sigma),
        ]
        return output
    }

    /// Φ(b) − Φ(a) for a ≤ b (standard normal CDF) without cancellation: both arguments in
    /// one tail use the difference of that tail's erfc values, which are small and exact.
    static func normalCDFDifference(_ a: Double, _ b: Double) -> Double {
        let root2 = 2.0.squareRoot()
        if a >= 0 { return 0.5 * (erfc(a / root2) - erfc(b / root2)) }
        if b <= 0 { return 0.5 * (erfc(-b / root2) - erfc(-a / root2)) }
        return 1 - 0.5 * erfc(b / root2) - 0.5 * erfc(-a / root2)
    }
}
