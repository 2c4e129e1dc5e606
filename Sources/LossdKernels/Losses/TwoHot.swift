#if canImport(Glibc)
    import Glibc
#endif

/// Two-hot regression targets (Farebrother et al., ICML 2024; docs/losses.md §12.2): y (clipped
/// into [min, max]) is split between its two neighbouring support points so that Σ t_j z_j = y, and
/// the logits are trained with cross-entropy against that histogram.
public enum TwoHot {
    /// Evaluates ℓ_r = −Σ_j t_rj log softmax(z_r)_j (d_r = 1) over the C support points
    /// min + j(max − min)/(C − 1), the gradient softmax − t, and the extras `prediction`
    /// (Σ p_j z_j), `target_probs` and `support`. Needs C ≥ 2 and max > min.
    public static func evaluate(logits: Matrix, values: [Double], min lo: Double, max hi: Double, gradient: Bool)
        throws(LossInputError) -> LossOutput
    {
        guard logits.cols >= 2 else {
            throw LossInputError(.invalidShape, field: "/logits", "`logits` must have at least 2 columns")
        }
        try HistogramClassification.validate(values: values, logits: logits)
        let n = logits.rows, c = logits.cols
        let step = (hi - lo) / Double(c - 1)
        var support = (0..<c).map { lo + step * Double($0) }
        support[c - 1] = hi

        var targets = Matrix(zeros: n, c)
        for r in 0..<n {
            let u = (Swift.min(Swift.max(values[r], lo), hi) - lo) / step
            let j = Swift.min(Int(floor(u)), c - 2)
            let fraction = u - Double(j)
            targets[r, j] = 1 - fraction
            targets[r, j + 1] = fraction
        }

        let result = try HistogramClassification.evaluate(logits: logits, targets: targets, points: support, gradient: gradient)
        var output = result.output
        output.extras = ["prediction": .vector(result.predictions), "target_probs": .matrix(targets), "support": .vector(support)]
        return output
    }
}
