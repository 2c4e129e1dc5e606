#if canImport(Glibc)
    import Glibc
#endif

/// KL divergence to soft targets (docs/losses.md §16.3): `T²·KL(t ‖ softmax(z/T))`, e.g.
/// against the soft labels of crowd annotations (`/v1/aggregate`), with the temperature
/// scaling of `kd_kl` so that the gradient's scale does not depend on T.
///
///     ℓ_i = T² · Σ_c t_ic (log t_ic − log p_ic),   p_i = softmax(z_i / T),   0·log 0 = 0
///     ∂ℓ_i/∂z_i = T · (p_i − t_i)
///
/// `log p` is the max-shifted log-softmax (`TwoPassSoftmax.logSoftmax`), so logits of ±1e4
/// (or ±1e30) with one-hot targets give finite values; a value beyond float64 (an extreme
/// logit over a tiny T) is `value_overflow`.
public enum KLDiv {
    /// ℓ_i (d_i = 1), ∂ℓ_i/∂z_i, and the extras `target_entropy` [N] (`−Σ t log t`) and
    /// `cross_entropy` [N] (`−Σ t log p`, at temperature T). `targets` must be [N][C] rows of
    /// non-negative entries summing to 1 within 1e-6 (`invalid_target`); T > 0.
    public static func evaluate(logits: Matrix, targets: Matrix, temperature: Double, gradient: Bool) throws(LossInputError) -> LossOutput {
        let n = logits.rows, c = logits.cols
        try Validate.distributions(targets, name: "targets", rows: n, cols: c)
        let t = temperature
        var values = [Double](repeating: 0, count: n)
        var entropies = [Double](repeating: 0, count: n)
        var crossEntropies = [Double](repeating: 0, count: n)
        var grad = [Double](repeating: 0, count: gradient ? n * c : 0)
        withMutableBuffers(&values, &entropies, &crossEntropies, &grad) { valuesOut, entropyOut, crossOut, gradOut in
            withBuffers(logits.values, targets.values) { zAll, tAll in
                Parallel.forEachRange(n, costPerRow: 4 * c) { rows in
                    withScratch(c) { scaled, logP in
                        for r in rows {
                            let z = zAll.row(r, width: c), target = tAll.row(r, width: c)
                            TwoPassSoftmax.logSoftmax(z, temperature: t, scratch: scaled, into: logP)
                            var kl = 0.0, entropy = 0.0, cross = 0.0
                            for k in 0..<c where target[k] > 0 {
                                let logT = log(target[k])
                                kl += target[k] * (logT - logP[k])
                                entropy -= target[k] * logT
                                cross -= target[k] * logP[k]
                            }
                            valuesOut[r] = t * t * kl
                            entropyOut[r] = entropy
                            crossOut[r] = cross
                            guard gradient else { continue }
                            for k in 0..<c { gradOut[r * c + k] = t * (exp(logP[k]) - target[k]) }
                        }
                    }
                }
            }
        }
        guard values.allFinite, crossEntropies.allFinite, grad.allFinite else { throw .overflow }
        var output = LossOutput(
            values: values, denominators: [Double](repeating: 1, count: n),
            extras: ["target_entropy": .vector(entropies), "cross_entropy": .vector(crossEntropies)])
        if gradient { output.gradients["logits"] = Tensor(shape: [n, c], values: grad) }
        return output
    }
}
