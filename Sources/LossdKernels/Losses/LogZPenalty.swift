#if canImport(Glibc)
    import Glibc
#endif

/// PaLM's auxiliary "z_loss" (Chowdhery et al. 2022; docs/losses.md §6.2): `coefficient·log²Z` with
/// `log Z = LSE(z)`, which keeps the softmax normaliser near 1 when added to the
/// cross-entropy. Shares only the name with the Z-loss of de Brébisson & Vincent (`ZLoss`).
public enum LogZPenalty {
    /// Evaluates ℓ_r = coefficient·LSE(z_r)² (d_r = 1), ∂ℓ_r/∂logits = 2·coefficient·LSE·softmax,
    /// and the extra `log_z` (LSE per row).
    ///
    /// LSE never overflows, but its square leaves float64 for |LSE| ≳ 1.34e154: that (and any
    /// non-finite product with the coefficient) throws `value_overflow`.
    public static func evaluate(logits: Matrix, coefficient: Double, gradient: Bool) throws(LossInputError) -> LossOutput {
        let n = logits.rows, c = logits.cols
        var values = [Double](repeating: 0, count: n)
        var logZ = [Double](repeating: 0, count: n)
        var grad = gradient ? [Double](repeating: 0, count: n * c) : []

        withMutableBuffers(&values, &logZ, &grad) { valuesOut, logZOut, gradOut in
            logits.values.withUnsafeBufferPointer { z in
                Parallel.forEachRange(n, costPerRow: c) { rows in
                    for r in rows {
                        let row = UnsafeBufferPointer(rebasing: z[(r * c)..<((r + 1) * c)])
                        let lse = TwoPassSoftmax.logSumExp(row)
                        logZOut[r] = lse
                        valuesOut[r] = coefficient * lse * lse
                        guard gradient else { continue }
                        let out = UnsafeMutableBufferPointer(rebasing: gradOut[(r * c)..<((r + 1) * c)])
                        TwoPassSoftmax.expShifted(row, shift: lse, into: out)
                        let factor = 2 * coefficient * lse
                        for k in 0..<c { out[k] *= factor }
                    }
                }
            }
        }
        guard values.allSatisfy(\.isFinite) else { throw .overflow }
        var output = LossOutput(
            values: values, denominators: [Double](repeating: 1, count: n), extras: ["log_z": .vector(logZ)])
        if gradient { output.gradients["logits"] = Tensor(shape: [n, c], values: grad) }
        return output
    }
}
