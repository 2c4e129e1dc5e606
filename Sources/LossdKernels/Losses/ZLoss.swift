#if canImport(Glibc)
    import Glibc
#endif

/// The Z-loss of de Brébisson & Vincent (2016; docs/losses.md §6.1): the target logit standardised
/// over its row, `z_y = (o_y − μ)/(σ + eps)` (population σ), through a scaled softplus,
/// `ℓ = softplus(a·(b − z_y))/a`. z is invariant to `o → α·o + β` (α > 0) and
/// `|z_k| ≤ sqrt(C − 1)`, so ℓ is bounded for any logits. Not PaLM's `log Z` penalty
/// (that is `LogZPenalty`).
public enum ZLoss {
    /// Evaluates ℓ_r (d_r = 1), ∂ℓ_r/∂logits, and the extra `z_target` (z_y per row).
    ///
    /// Each row is divided by `M = max_k |o_k|` before a two-pass mean and variance, so
    /// logits up to the float64 limit neither overflow nor lose the spread (σ = M·σ_u). A
    /// constant row has σ = 0: z ≡ 0, ℓ = softplus(a·b)/a and gradient 0.
    public static func evaluate(
        logits: Matrix, labels: [Int], a: Double, b: Double, eps: Double, gradient: Bool
    ) throws(LossInputError) -> LossOutput {
        let n = logits.rows, c = logits.cols
        guard c >= 2 else {
            throw LossInputError(.invalidShape, field: "/logits", "`logits` must have at least 2 columns")
        }
        try Validate.labels(labels, rows: n, classes: c)

        let classes = Double(c)
        var values = [Double](repeating: 0, count: n)
        var zTarget = [Double](repeating: 0, count: n)
        var grad = gradient ? [Double](repeating: 0, count: n * c) : []

        withMutableBuffers(&values, &zTarget, &grad) { valuesOut, zOut, gradOut in
            logits.values.withUnsafeBufferPointer { o in
                Parallel.forEachRange(n, costPerRow: 4 * c) { rows in
                    for r in rows {
                        let row = UnsafeBufferPointer(rebasing: o[(r * c)..<((r + 1) * c)])
                        let y = labels[r]
                        var scaleMax = 0.0
                        for v in row { scaleMax = max(scaleMax, abs(v)) }
                        // Mean and standard deviation of u = o/M (|u_k| ≤ 1).
                        var mean = 0.0, sigmaU = 0.0
                        if scaleMax > 0 {
                            var sum = 0.0
                            for v in row { sum += v / scaleMax }
                            mean = sum / classes
                            var squares = 0.0
                            for v in row {
                                let d = v / scaleMax - mean
                                squares += d * d
                            }
                            sigmaU = (squares / classes).squareRoot()
                        }
                        // z_y = (o_y − μ)/(M·σ_u + eps) = (u_y − μ_u)/(σ_u + eps/M): no overflow.
                        let zy = sigmaU > 0 ? (row[y] / scaleMax - mean) / (sigmaU + eps / scaleMax) : 0
                        let t = a * (b - zy)
                        valuesOut[r] = StableMath.softplus(t) / a
                        zOut[r] = zy
                        guard gradient, sigmaU > 0 else { continue }
                        // ∂ℓ/∂o_j = −s/(σ + eps)·[δ_jy − 1/C − z_y·ẑ_j/C], ẑ_j = (u_j − μ_u)/σ_u.
                        let factor = -StableMath.sigmoid(t) / (scaleMax * sigmaU + eps)
                        let zyOverC = zy / classes
                        for j in 0..<c {
                            let zHat = (row[j] / scaleMax - mean) / sigmaU
                            var bracket = -1 / classes - zyOverC * zHat
                            if j == y { bracket += 1 }
                            gradOut[r * c + j] = factor * bracket
                        }
                    }
                }
            }
        }
        // Finite for every a > 0 except when softplus(a·b)/a itself exceeds float64.
        guard values.allSatisfy(\.isFinite) else { throw .overflow }
        var output = LossOutput(
            values: values, denominators: [Double](repeating: 1, count: n), extras: ["z_target": .vector(zTarget)])
        if gradient { output.gradients["logits"] = Tensor(shape: [n, c], values: grad) }
        return output
    }
}
