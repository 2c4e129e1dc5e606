#if canImport(Glibc)
    import Glibc
#endif

/// Pass@n coverage loss (Chen et al. 2025, "Rethinking Fine-Tuning when Scaling Test-Time Compute";
/// docs/losses.md §9): ℓ = −log(1 − (1 − p)^n), the negative log-probability that at least one of n
/// independent samples is correct. n = 1 is cross-entropy; for n > 1 confident rows are
/// down-weighted ("limiting confidence").
public enum PassAtN {
    /// From logits and hard labels: p = softmax(z)_y, gradient w·(softmax(z) − e_y).
    /// Extras: `weight` [N] (w = ∂ℓ/∂(−log p) ∈ [0, 1]) and `p` [N].
    public static func evaluate(logits: Matrix, labels: [Int], n: Double, gradient: Bool) throws(LossInputError) -> LossOutput {
        let (rows, c) = try Validate.labels(labels, for: logits)
        var values = [Double](repeating: 0, count: rows)
        var weights = [Double](repeating: 0, count: rows)
        var probabilities = [Double](repeating: 0, count: rows)
        var grad = [Double](repeating: 0, count: gradient ? rows * c : 0)
        withMutableBuffers(&values, &weights, &probabilities, &grad) { valuesOut, weightsOut, pOut, gradOut in
            logits.values.withUnsafeBufferPointer { z in
                Parallel.forEachRange(rows, costPerRow: 2 * c) { range in
                    for r in range {
                        let row = z.row(r, width: c)
                        let y = labels[r]
                        let (m, excess) = TwoPassSoftmax.logSumExpAboveMax(row)
                        let logP = logProbability(of: y, in: row, max: m, excess: excess)
                        let (value, w) = loss(logP: logP, n: n)
                        valuesOut[r] = value
                        weightsOut[r] = w
                        pOut[r] = exp(logP)
                        guard gradient else { continue }
                        let out = UnsafeMutableBufferPointer(rebasing: gradOut[(r * c)..<((r + 1) * c)])
                        TwoPassSoftmax.expShifted(row, shift: m + excess, into: out)
                        out[y] -= 1
                        for k in 0..<c { out[k] *= w }
                    }
                }
            }
        }
        guard values.allSatisfy(\.isFinite) else { throw .overflow }
        var output = LossOutput(
            values: values, denominators: [Double](repeating: 1, count: rows),
            extras: ["weight": .vector(weights), "p": .vector(probabilities)])
        if gradient { output.gradients["logits"] = Tensor(shape: [rows, c], values: grad) }
        return output
    }

    /// From log-probabilities log p ≤ 0 (e.g. sequence log-likelihoods): gradient −w per entry.
    /// Extras: `weight` [N] and `p` [N].
    public static func evaluate(logProbs: [Double], n: Double, gradient: Bool) throws(LossInputError) -> LossOutput {
        for (i, lp) in logProbs.enumerated() where !(lp <= 0) {
            throw LossInputError(.invalidInput, field: "/log_probs/\(i)", "`log_probs[\(i)]` must be <= 0")
        }
        let results = logProbs.map { loss(logP: $0, n: n) }
        let values = results.map(\.value)
        guard values.allSatisfy(\.isFinite) else { throw .overflow }
        var output = LossOutput(
            values: values, denominators: [Double](repeating: 1, count: logProbs.count),
            extras: ["weight": .vector(results.map(\.weight)), "p": .vector(logProbs.map { exp($0) })])
        if gradient { output.gradients["log_probs"] = Tensor(vector: results.map { -$0.weight }) }
        return output
    }

    /// ℓ = −log(1 − (1 − p)^n) and w = ∂ℓ/∂(−log p) = n p (1 − p)^(n−1) / (1 − (1 − p)^n)
    /// from log p (the recipe of docs/losses.md §9): with log(1 − p) = log1mexp(log p),
    /// ℓ = −log1mexp(n·log(1 − p)); when n·p < 1e-8 the series
    /// −log p − log n − log1p(−(n − 1)p/2), which stays exact when p underflows (log p down
    /// to −1e30 and below).
    @inline(__always)
    static func loss(logP: Double, n: Double) -> (value: Double, weight: Double) {
        guard logP != 0 else { return (0, n == 1 ? 1 : 0) }  // p = 1
        let p = exp(logP)
        let logQ = StableMath.log1mexp(logP)  // log(1 − p)
        let logN = log(n)
        let value: Double
        if logP + logN < logOf1em8 {
            value = -logP - logN - log1p(-(n - 1) * p / 2)
        } else {
            value = -StableMath.log1mexp(n * logQ)
        }
        let weight = n == 1 ? 1 : exp(logN + logP + (n - 1) * logQ + value)
        return (value, weight)
    }

    /// log p_y, never above 0. When y holds the maximum, −log1p(Σ_{k≠y} exp(z_k − z_y)):
    /// exact for a confident row, where (z_y − m) − excess would carry the log-sum-exp's
    /// absolute rounding (about ulp(m), 1e-13 at logits of 1000) and could even turn
    /// positive, making 1 − p negative. Otherwise (z_y − m) − excess, clamped at 0.
    @inline(__always)
    static func logProbability(of y: Int, in row: UnsafeBufferPointer<Double>, max m: Double, excess: Double) -> Double {
        guard row[y] == m else { return Swift.min(0, (row[y] - m) - excess) }
        var rest = 0.0
        for k in 0..<row.count where k != y { rest += exp(row[k] - m) }
        return -log1p(rest)
    }

    /// log(1e-8), the series threshold on n·p.
    static let logOf1em8 = log(1e-8)
}
