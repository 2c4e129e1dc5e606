/// DEXML's decoupled softmax (Gupta et al., ICLR 2024; spec §8): each positive competes
/// only with the row's negatives, ℓ = κ Σ_{p∈P} [log(e^{s_p} + Σ_{n∈Ng} e^{s_n}) − s_p]
/// with s = z/T.
///
/// With λ = LSE(s_Ng) and x_p = λ − s_p, each term is softplus(x_p) (exact for any gap), and
/// the gradient needs one pass: ∂ℓ/∂s_p = −κ σ(x_p), ∂ℓ/∂s_n = κ q_n Σ_p σ(x_p) where
/// q = softmax(s_Ng) — the spec's Σ_p e^{s_n − D_p} regrouped (e^{s_n − D_p} = q_n σ(x_p)),
/// so a row costs O(L) rather than O(|P|·|Ng|).
public enum DecoupledSoftmax {
    /// Evaluates ℓ_r (d_r = 1; rows with no positive, or no negative, give 0) and ∂ℓ_r/∂logits.
    public static func evaluate(
        logits: Matrix, targets: Matrix, temperature: Double, positiveReduction: DEXML.PositiveReduction, gradient: Bool
    ) throws(LossInputError) -> LossOutput {
        try DEXML.validateTargets(targets, logits: logits)
        let n = logits.rows, c = logits.cols
        let scores = try DEXML.scores(logits, temperature: temperature)
        var values = [Double](repeating: 0, count: n)
        var grad = gradient ? [Double](repeating: 0, count: n * c) : []

        values.withUnsafeMutableBufferPointer { valuesOut in
            grad.withUnsafeMutableBufferPointer { gradOut in
                scores.withUnsafeBufferPointer { s in
                    targets.values.withUnsafeBufferPointer { t in
                        Parallel.forEachRange(n, costPerRow: c) { rows in
                            // The row's negative scores, gathered contiguously, and their softmax.
                            var negatives = [Double](repeating: 0, count: c)
                            var weights = [Double](repeating: 0, count: c)
                            for r in rows {
                                let row = UnsafeBufferPointer(rebasing: s[(r * c)..<((r + 1) * c)])
                                let target = UnsafeBufferPointer(rebasing: t[(r * c)..<((r + 1) * c)])
                                var count = 0
                                for k in 0..<c where target[k] == 0 {
                                    negatives[count] = row[k]
                                    count += 1
                                }
                                let positives = c - count
                                // No positive: nothing to score. No negative: every term is log 1 = 0.
                                guard positives > 0, count > 0 else { continue }
                                let kappa = positiveReduction.scale(positives: positives)
                                let (m, excess) = negatives.withUnsafeBufferPointer {
                                    TwoPassSoftmax.logSumExpAboveMax(UnsafeBufferPointer(rebasing: $0[0..<count]))
                                }
                                var value = 0.0, pull = 0.0
                                for k in 0..<c where target[k] == 1 {
                                    let x = (m - row[k]) + excess  // λ − s_p, exact near the maximum
                                    value += StableMath.softplus(x)
                                    pull += StableMath.sigmoid(x)
                                }
                                valuesOut[r] = kappa * value
                                guard gradient else { continue }
                                negatives.withUnsafeBufferPointer { neg in
                                    weights.withUnsafeMutableBufferPointer { q in
                                        TwoPassSoftmax.expShifted(
                                            UnsafeBufferPointer(rebasing: neg[0..<count]), shift: m + excess, into: q)
                                    }
                                }
                                let factor = kappa / temperature
                                var next = 0
                                for k in 0..<c {
                                    if target[k] == 1 {
                                        gradOut[r * c + k] = -factor * StableMath.sigmoid((m - row[k]) + excess)
                                    } else {
                                        gradOut[r * c + k] = factor * weights[next] * pull
                                        next += 1
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        guard values.allSatisfy(\.isFinite) else { throw .overflow }
        var output = LossOutput(values: values, denominators: [Double](repeating: 1, count: n))
        if gradient { output.gradients["logits"] = Tensor(shape: [n, c], values: grad) }
        return output
    }
}
