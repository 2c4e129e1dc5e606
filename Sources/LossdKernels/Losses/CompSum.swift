#if canImport(Glibc)
    import Glibc
#endif

/// Comp-sum losses (Mao, Mohri & Zhong, ICML 2023; docs/losses.md §5): `Φ^τ(u)` of
/// `u = Σ_{k≠y} exp(z_k − z_y) = 1/p_y − 1`, i.e. `ℓ = (p_y^(τ−1) − 1)/(1 − τ)` for τ ≠ 1 and
/// `ℓ = −log p_y` for τ = 1. τ = 0 is the sum-exponential loss, τ ∈ (1, 2) generalized
/// cross-entropy with q = τ − 1, τ = 2 the MAE `1 − p_y`; the catalogue's
/// `generalized_cross_entropy` and `mae` are this kernel with τ = 1 + q and τ = 2.
public enum CompSum {
    /// Evaluates ℓ_r (d_r = 1) and ∂ℓ_r/∂logits = p_y^(τ−1)·(p − e_y) for every row.
    ///
    /// Everything is derived from `x = (1 − τ)·(−log p_y)`: `ℓ = expm1(x)/(1 − τ)` has no
    /// cancellation near τ = 1, and `exp(x) = p_y^(τ−1)` scales the cross-entropy gradient.
    /// For τ < 1, x ≥ 0 grows with the margin and `ℓ` can leave float64 (e.g. τ = 0, logits
    /// [1e4, −1e4], label 1 gives e^{2e4}): that throws `value_overflow`. For τ < 1 the extras
    /// carry `log_values` = log ℓ_r = `x + log1mexp(−x) − log(1 − τ)` (NaN, rendered null,
    /// where ℓ_r = 0).
    public static func evaluate(logits: Matrix, labels: [Int], tau: Double, gradient: Bool) throws(LossInputError) -> LossOutput {
        let (n, c) = try Validate.labels(labels, for: logits)

        let wantLogValues = tau < 1
        var values = [Double](repeating: 0, count: n)
        var logValues = [Double](repeating: 0, count: wantLogValues ? n : 0)
        var grad = gradient ? [Double](repeating: 0, count: n * c) : []

        withMutableBuffers(&values, &logValues, &grad) { valuesOut, logValuesOut, gradOut in
            logits.values.withUnsafeBufferPointer { z in
                Parallel.forEachRange(n, costPerRow: c) { rows in
                    var p = [Double](repeating: 0, count: gradient ? c : 0)
                    for r in rows {
                        let row = UnsafeBufferPointer(rebasing: z[(r * c)..<((r + 1) * c)])
                        let y = labels[r]
                        // −log p_y = (m − z_y) + excess: exactly 0 when y is the only maximum.
                        let (m, excess) = TwoPassSoftmax.logSumExpAboveMax(row)
                        let nll = (m - row[y]) + excess
                        let scale: Double
                        if tau == 1 {
                            valuesOut[r] = nll
                            scale = 1
                        } else {
                            let x = (1 - tau) * nll
                            valuesOut[r] = expm1(x) / (1 - tau)
                            scale = exp(x)
                        }
                        if wantLogValues {
                            let x = (1 - tau) * nll
                            logValuesOut[r] = x > 0 ? x + StableMath.log1mexp(-x) - log(1 - tau) : .nan
                        }
                        guard gradient else { continue }
                        p.withUnsafeMutableBufferPointer { TwoPassSoftmax.expShifted(row, shift: m + excess, into: $0) }
                        for k in 0..<c {
                            gradOut[r * c + k] = scale * (k == y ? p[k] - 1 : p[k])
                        }
                    }
                }
            }
        }
        // Only τ < 1 can overflow: the value (and p_y^(τ−1)) exceeds float64.
        guard values.allSatisfy(\.isFinite) else { throw .overflow }
        var output = LossOutput(values: values, denominators: [Double](repeating: 1, count: n))
        if gradient { output.gradients["logits"] = Tensor(shape: [n, c], values: grad) }
        if wantLogValues { output.extras["log_values"] = .vector(logValues) }
        return output
    }
}
