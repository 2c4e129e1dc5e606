#if canImport(Glibc)
    import Glibc
#endif

/// DEXML's soft top-k loss (docs/losses.md §11.4): a smooth top-k membership σ(α(s_l + t)) whose
/// threshold t solves Σ_l σ(α(s_l + t)) = k, and ℓ = −(1/|P|) Σ_{p∈P} log σ(α(s_p + t)),
/// s = z/T. The gradient goes through t by the implicit function theorem.
public enum SoftTopK {
    /// Evaluates ℓ_r (d_r = 1; rows without positives give 0 but still get a threshold),
    /// ∂ℓ_r/∂logits and the extra `threshold` [N] (t in units of s). Needs L ≥ 2 columns;
    /// the caller checks 0 < k < L.
    public static func evaluate(
        logits: Matrix, targets: Matrix, k: Double, alpha: Double, temperature: Double, gradient: Bool
    ) throws(LossInputError) -> LossOutput {
        guard logits.cols >= 2 else {
            throw LossInputError(.invalidShape, field: "/logits", "`logits` must have at least 2 columns")
        }
        try DEXML.validateTargets(targets, logits: logits)
        let n = logits.rows, c = logits.cols
        let scores = try DEXML.scores(logits, temperature: temperature)
        var values = [Double](repeating: 0, count: n)
        var thresholds = [Double](repeating: 0, count: n)
        var grad = gradient ? [Double](repeating: 0, count: n * c) : []

        withMutableBuffers(&values, &thresholds, &grad) { valuesOut, thresholdsOut, gradOut in
            withBuffers(scores, targets.values) { s, t in
                // Bisection takes ~60–2200 passes over a row.
                Parallel.forEachRange(n, costPerRow: c * 100) { rows in
                    var logWeights = [Double](repeating: 0, count: c)
                    var omega = [Double](repeating: 0, count: c)
                    for r in rows {
                        let row = UnsafeBufferPointer(rebasing: s[(r * c)..<((r + 1) * c)])
                        let target = UnsafeBufferPointer(rebasing: t[(r * c)..<((r + 1) * c)])
                        let tau = threshold(row, k: k, alpha: alpha)
                        thresholdsOut[r] = tau
                        var positives = 0
                        for l in 0..<c where target[l] == 1 { positives += 1 }
                        guard positives > 0 else { continue }
                        var value = 0.0
                        for l in 0..<c where target[l] == 1 { value += StableMath.softplus(-alpha * (row[l] + tau)) }
                        valuesOut[r] = value / Double(positives)
                        guard gradient else { continue }
                        // a_l = ∂ℓ/∂s_l at fixed t; ω = σ'(v)/Σσ'(v) from log σ(v) + log σ(−v).
                        let out = UnsafeMutableBufferPointer(rebasing: gradOut[(r * c)..<((r + 1) * c)])
                        var total = 0.0
                        for l in 0..<c {
                            let v = alpha * (row[l] + tau)
                            logWeights[l] = StableMath.logSigmoid(v) + StableMath.logSigmoid(-v)
                            let a = target[l] == 1 ? -alpha * StableMath.sigmoid(-v) / Double(positives) : 0
                            out[l] = a
                            total += a
                        }
                        logWeights.withUnsafeBufferPointer { w in
                            omega.withUnsafeMutableBufferPointer { o in
                                TwoPassSoftmax.expShifted(w, shift: TwoPassSoftmax.logSumExp(w), into: o)
                            }
                        }
                        for l in 0..<c { out[l] = (out[l] - total * omega[l]) / temperature }
                    }
                }
            }
        }
        guard values.allSatisfy(\.isFinite), thresholds.allSatisfy(\.isFinite) else { throw .overflow }
        var output = LossOutput(
            values: values, denominators: [Double](repeating: 1, count: n), extras: ["threshold": .vector(thresholds)])
        if gradient { output.gradients["logits"] = Tensor(shape: [n, c], values: grad) }
        return output
    }

    /// The root t of Σ_l σ(α(s_l + t)) = k (strictly increasing in t), to float64 precision,
    /// from the bracket of docs/losses.md §11.4 by safeguarded Newton (Numerical Recipes'
    /// rtsafe): a Newton step when it stays inside the bracket and shrinks the step at least
    /// by half, else bisection; the bracket shrinks every step. One vectorised pass a step
    /// gives the sum and its slope α Σ σ'(v) (`VectorMath.sigmoidSum`), so a row costs about
    /// 5–10 passes where plain bisection took 60 or more.
    static func threshold(_ s: UnsafeBufferPointer<Double>, k: Double, alpha: Double) -> Double {
        solveThreshold(s, k: k, alpha: alpha).t
    }

    /// The root and the passes over the row it took (for the tests).
    static func solveThreshold(_ s: UnsafeBufferPointer<Double>, k: Double, alpha: Double) -> (t: Double, passes: Int) {
        let count = Double(s.count)
        var largest = s[0], smallest = s[0]
        for x in s {
            largest = max(largest, x)
            smallest = min(smallest, x)
        }
        var lo = -largest + (log(k / count) - 1) / alpha
        var hi = -smallest + (log(k / (count - k)) + 1) / alpha

        /// Σ σ(α(s + t)) − k and its derivative in t.
        func excess(_ t: Double) -> (value: Double, slope: Double) {
            let (total, derivatives) = VectorMath.sigmoidSum(s, alpha: alpha, shift: t)
            return (total - k, alpha * derivatives)
        }
        // t enters only through s_l + t, so it is resolved to the rounding of the row's largest
        // magnitude: the stopping tests use that as an absolute floor (a root near 0 would
        // otherwise never meet a purely relative one).
        let resolution = 2 * max(abs(largest), abs(smallest)).ulp
        var t = 0.5 * lo + 0.5 * hi  // = (lo + hi)/2 without overflow
        var step = hi - lo, previousStep = step
        for pass in 1...2200 {
            let (f, slope) = excess(t)
            if f == 0 { return (t, pass) }
            if f < 0 { lo = t } else { hi = t }
            let newton = slope > 0 ? t - f / slope : .nan
            // Converged: the next Newton step is within rounding of t. (Testing this first
            // matters: Newton on this convex-concave sum approaches from one side, so the
            // bracket's far end stays wide, and bisecting from it would take ~50 more passes.)
            if abs(newton - t) <= max(2 * t.ulp, resolution) { return (newton, pass) }
            // Newton only inside the bracket (NaN fails this) and when converging fast enough.
            if lo < newton, newton < hi, abs(2 * f) <= abs(previousStep * slope) {
                previousStep = step
                step = newton - t
                t = newton
            } else {
                let mid = 0.5 * lo + 0.5 * hi
                if mid <= lo || mid >= hi { return (t, pass) }  // the bracket is two adjacent doubles
                previousStep = step
                step = mid - t
                t = mid
            }
            if abs(step) <= max(2 * t.ulp, resolution) { return (t, pass) }
        }
        return (t, 2200)
    }
}
