/// DEXML's decoupled softmax (Gupta et al., ICLR 2024; docs/losses.md §11.3): each positive
/// competes only with the row's negatives, ℓ = κ Σ_{p∈P} [log(e^{s_p} + Σ_{n∈Ng} e^{s_n}) − s_p]
/// with s = z/T.
///
/// With λ = LSE(s_Ng) and x_p = λ − s_p, each term is softplus(x_p) (exact for any gap), and
/// the gradient needs one pass: ∂ℓ/∂s_p = −κ σ(x_p), ∂ℓ/∂s_n = κ q_n Σ_p σ(x_p) where
/// q = softmax(s_Ng) — the pairwise form Σ_p e^{s_n − D_p} regrouped (e^{s_n − D_p} = q_n σ(x_p)),
/// so a row costs O(L) rather than O(|P|·|Ng|).
public enum DecoupledSoftmax {
    /// Evaluates ℓ_r (d_r = 1; rows with no positive, or no negative, give 0) and ∂ℓ_r/∂logits.
    public static func evaluate(
        logits: Matrix, targets: Matrix, temperature: Double, positiveReduction: DEXML.PositiveReduction, gradient: Bool
    ) throws(LossInputError) -> LossOutput {
        // Scratch: the row's negative scores, gathered contiguously, then their softmax.
        try DEXML.evaluateRows(
            logits: logits, targets: targets, temperature: temperature, positiveReduction: positiveReduction,
            gradient: gradient, scratchPerRow: 2 * logits.cols
        ) { row, target, _, kappa, scratch, out in
            let c = row.count
            var count = 0
            for k in 0..<c where target[k] == 0 {
                scratch[count] = row[k]
                count += 1
            }
            // No negative: every term is log 1 = 0.
            guard count > 0 else { return 0 }
            let negatives = UnsafeBufferPointer(rebasing: scratch[0..<count])
            let (m, excess) = TwoPassSoftmax.logSumExpAboveMax(negatives)
            var value = 0.0, pull = 0.0
            for k in 0..<c where target[k] == 1 {
                let x = (m - row[k]) + excess  // λ − s_p, exact near the maximum
                value += StableMath.softplus(x)
                pull += StableMath.sigmoid(x)
            }
            guard let out else { return kappa * value }
            let weights = UnsafeMutableBufferPointer(rebasing: scratch[c..<(c + count)])
            TwoPassSoftmax.expShifted(negatives, shift: m + excess, into: weights)
            let factor = kappa / temperature
            var next = 0
            for k in 0..<c {
                if target[k] == 1 {
                    out[k] = -factor * StableMath.sigmoid((m - row[k]) + excess)
                } else {
                    out[k] = factor * weights[next] * pull
                    next += 1
                }
            }
            return kappa * value
        }
    }
}
