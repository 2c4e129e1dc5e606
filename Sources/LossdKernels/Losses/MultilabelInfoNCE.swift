/// Naive multi-label InfoNCE, DEXML's "softmax" baseline (docs/losses.md §11.2, alias `infonce`):
/// every positive column competes with all columns, ℓ = κ Σ_{p∈P} (LSE(s) − s_p) with s = z/T.
public enum MultilabelInfoNCE {
    /// Evaluates ℓ_r (d_r = 1, rows without positives give 0) and ∂ℓ_r/∂logits
    /// = κ (|P| softmax(s) − t) / T.
    public static func evaluate(
        logits: Matrix, targets: Matrix, temperature: Double, positiveReduction: DEXML.PositiveReduction, gradient: Bool
    ) throws(LossInputError) -> LossOutput {
        try DEXML.evaluateRows(
            logits: logits, targets: targets, temperature: temperature, positiveReduction: positiveReduction, gradient: gradient
        ) { row, target, positives, kappa, _, out in
            let c = row.count
            // −log p_k = (m − s_k) + excess: exact when s_k is the maximum.
            let (m, excess) = TwoPassSoftmax.logSumExpAboveMax(row)
            var value = 0.0
            for k in 0..<c where target[k] == 1 { value += (m - row[k]) + excess }
            if let out {
                TwoPassSoftmax.expShifted(row, shift: m + excess, into: out)
                let factor = kappa / temperature, count = Double(positives)
                for k in 0..<c { out[k] = factor * (count * out[k] - target[k]) }
            }
            return kappa * value
        }
    }
}
