#if canImport(Glibc)
    import Glibc
#endif

/// Poly-1 loss (Leng et al., ICLR 2022; optax `poly_loss_cross_entropy`; docs/losses.md §7): the
/// cross-entropy plus ε times the first term of its polynomial expansion in `1 − p_t`,
/// `ℓ = −Σ_c t'_c·log p_c + ε·Σ_c t'_c·(1 − p_c)` with smoothed targets
/// `t' = (1 − ls)·t + ls/C` (t one-hot for hard labels).
public enum Poly1 {
    /// Evaluates ℓ_r (d_r = 1), ∂ℓ_r/∂logits = p − t' + ε·p ⊙ (p_t − t') with
    /// `p_t = Σ_c t'_c p_c`, and the extra `one_minus_pt` (`Σ_c t'_c (1 − p_c)` per row).
    ///
    /// `log p_c = (z_c − m) − excess` keeps full accuracy for the maximum's class and never
    /// overflows; `1 − p_c = −expm1(log p_c)` avoids cancellation for confident rows.
    public static func evaluate(
        logits: Matrix, targets: ClassTargets, epsilon: Double, labelSmoothing: Double, gradient: Bool
    ) throws(LossInputError) -> LossOutput {
        let n = logits.rows, c = logits.cols
        // Hard labels become a class index per row; soft targets a row-major buffer.
        let labels: [Int]
        let soft: [Double]
        switch targets {
        case .labels(let l):
            try Validate.labels(l, rows: n, classes: c)
            (labels, soft) = (l, [])
        case .probabilities(let t):
            try Validate.distributions(t, name: "targets", rows: n, cols: c)
            (labels, soft) = ([], t.values)
        }
        let keep = 1 - labelSmoothing, spread = labelSmoothing / Double(c)

        var values = [Double](repeating: 0, count: n)
        var oneMinusPt = [Double](repeating: 0, count: n)
        var grad = gradient ? [Double](repeating: 0, count: n * c) : []

        withMutableBuffers(&values, &oneMinusPt, &grad) { valuesOut, oneMinusPtOut, gradOut in
            withBuffers(soft, logits.values) { t, z in
                Parallel.forEachRange(n, costPerRow: c) { rows in
                    var p = [Double](repeating: 0, count: gradient ? c : 0)
                    for r in rows {
                        let row = UnsafeBufferPointer(rebasing: z[(r * c)..<((r + 1) * c)])
                        let y = labels.isEmpty ? -1 : labels[r]
                        // t'_k of this row.
                        func target(_ k: Int) -> Double {
                            y >= 0 ? (k == y ? keep : 0) + spread : keep * t[r * c + k] + spread
                        }
                        let (m, excess) = TwoPassSoftmax.logSumExpAboveMax(row)
                        var crossEntropy = 0.0, residual = 0.0
                        if y >= 0 && labelSmoothing == 0 {
                            let logP = (row[y] - m) - excess
                            crossEntropy = -logP
                            residual = -expm1(logP)
                        } else {
                            for k in 0..<c {
                                let tk = target(k)
                                guard tk != 0 else { continue }
                                let logP = (row[k] - m) - excess
                                crossEntropy -= tk * logP
                                residual -= tk * expm1(logP)
                            }
                        }
                        valuesOut[r] = crossEntropy + epsilon * residual
                        oneMinusPtOut[r] = residual
                        guard gradient else { continue }
                        p.withUnsafeMutableBufferPointer { TwoPassSoftmax.expShifted(row, shift: m + excess, into: $0) }
                        var pt = 0.0
                        for k in 0..<c { pt += target(k) * p[k] }
                        for k in 0..<c {
                            let tk = target(k)
                            gradOut[r * c + k] = p[k] - tk + epsilon * p[k] * (pt - tk)
                        }
                    }
                }
            }
        }
        guard values.allSatisfy(\.isFinite) else { throw .overflow }
        var output = LossOutput(
            values: values, denominators: [Double](repeating: 1, count: n), extras: ["one_minus_pt": .vector(oneMinusPt)])
        if gradient { output.gradients["logits"] = Tensor(shape: [n, c], values: grad) }
        return output
    }
}
