/// Regression as classification over a fixed support (Farebrother et al., ICML 2024; docs/losses.md
/// §12): the shared part of `hl_gauss` and `two_hot` once each has turned its regression targets
/// into a target histogram t per row.
enum HistogramClassification {
    /// Cross-entropy against the target histograms, ℓ_r = −Σ_j t_rj log softmax(z_r)_j,
    /// its gradient softmax(z_r) − t_r, and the decoded prediction Σ_j softmax(z_r)_j·points_j.
    static func evaluate(logits: Matrix, targets: Matrix, points: [Double], gradient: Bool) throws(LossInputError) -> (
        output: LossOutput, predictions: [Double]
    ) {
        let n = logits.rows, c = logits.cols
        var values = [Double](repeating: 0, count: n)
        var predictions = [Double](repeating: 0, count: n)
        var grad = gradient ? [Double](repeating: 0, count: n * c) : []

        withMutableBuffers(&values, &predictions, &grad) { valuesOut, predictionsOut, gradOut in
            withBuffers(logits.values, targets.values) { z, t in
                Parallel.forEachRange(n, costPerRow: c) { rows in
                    var p = [Double](repeating: 0, count: c)
                    for r in rows {
                        let row = UnsafeBufferPointer(rebasing: z[(r * c)..<((r + 1) * c)])
                        let target = UnsafeBufferPointer(rebasing: t[(r * c)..<((r + 1) * c)])
                        // −log p_j = (m − z_j) + excess: exact when z_j is the maximum.
                        let (m, excess) = TwoPassSoftmax.logSumExpAboveMax(row)
                        var value = 0.0
                        for j in 0..<c where target[j] != 0 { value += target[j] * ((m - row[j]) + excess) }
                        valuesOut[r] = value
                        p.withUnsafeMutableBufferPointer { TwoPassSoftmax.expShifted(row, shift: m + excess, into: $0) }
                        var prediction = 0.0
                        for j in 0..<c { prediction += p[j] * points[j] }
                        predictionsOut[r] = prediction
                        guard gradient else { continue }
                        for j in 0..<c { gradOut[r * c + j] = p[j] - target[j] }
                    }
                }
            }
        }
        guard values.allSatisfy(\.isFinite) else { throw .overflow }
        var output = LossOutput(values: values, denominators: [Double](repeating: 1, count: n))
        if gradient { output.gradients["logits"] = Tensor(shape: [n, c], values: grad) }
        return (output, predictions)
    }

    /// Checks that `values` has one regression target per logit row.
    static func validate(values: [Double], logits: Matrix) throws(LossInputError) {
        try Validate.count(values.count, name: "values", expected: logits.rows)
    }
}
