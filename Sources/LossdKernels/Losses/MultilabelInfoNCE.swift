/// Naive multi-label InfoNCE, DEXML's "softmax" baseline (spec §8, alias `infonce`): every
/// positive column competes with all columns, ℓ = κ Σ_{p∈P} (LSE(s) − s_p) with s = z/T.
public enum MultilabelInfoNCE {
    /// Evaluates ℓ_r (d_r = 1, rows without positives give 0) and ∂ℓ_r/∂logits
    /// = κ (|P| softmax(s) − t) / T.
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
                            for r in rows {
                                let row = UnsafeBufferPointer(rebasing: s[(r * c)..<((r + 1) * c)])
                                let target = UnsafeBufferPointer(rebasing: t[(r * c)..<((r + 1) * c)])
                                var positives = 0
                                for k in 0..<c where target[k] == 1 { positives += 1 }
                                guard positives > 0 else { continue }
                                let kappa = positiveReduction.scale(positives: positives)
                                // −log p_k = (m − s_k) + excess: exact when s_k is the maximum.
                                let (m, excess) = TwoPassSoftmax.logSumExpAboveMax(row)
                                var value = 0.0
                                for k in 0..<c where target[k] == 1 { value += (m - row[k]) + excess }
                                valuesOut[r] = kappa * value
                                guard gradient else { continue }
                                let out = UnsafeMutableBufferPointer(rebasing: gradOut[(r * c)..<((r + 1) * c)])
                                TwoPassSoftmax.expShifted(row, shift: m + excess, into: out)
                                let factor = kappa / temperature, count = Double(positives)
                                for k in 0..<c { out[k] = factor * (count * out[k] - target[k]) }
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
