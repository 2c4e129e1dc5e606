#if canImport(Glibc)
    import Glibc
#endif

/// The logit-level distillation term of Dual-Head KD (Yang et al. 2024; docs/losses.md §10.2),
/// applied to the auxiliary head's logits against the teacher's, class by class.
public enum DHKDLogit {
    public enum Variant: String, Sendable, CaseIterable {
        /// T²·KL(Bern(½) ‖ Bern(σ((z − t)/T))) = T²·logcosh((z − t)/(2T)): what DHKD trains with,
        /// a robust logit MSE (≈ (z − t)²/8 for small gaps, linear for large ones).
        case binaryKLNorm = "binary_kl_norm"
        /// T²·KL(Bern(σ(t/T)) ‖ Bern(σ(z/T))) per class.
        case binaryKL = "binary_kl"
        /// mean_c (z_c − t_c)²: plain logit matching.
        case mse
    }

    /// Row value Σ_c ℓ_c (binary variants; extra `per_element` [N][C]) or mean_c (z − t)²
    /// (`mse`, no extras), with its gradient w.r.t. the student logits. `temperature` T > 0
    /// applies to the binary variants; `clampEps` ε ∈ [0, 0.5) clamps sigmoid outputs to
    /// [ε, 1 − ε] as the DHKD code does (1e-8 there), where the loss then saturates and its
    /// gradient is 0; 0 gives the exact formulas.
    public static func evaluate(
        logits: Matrix, teacherLogits: Matrix, variant: Variant = .binaryKLNorm, temperature t: Double = 2,
        clampEps eps: Double = 0, gradient: Bool
    ) throws(LossInputError) -> LossOutput {
        let (n, c) = try Validate.sameShape(teacherLogits, name: "teacher_logits", as: logits)

        var elements = [Double](repeating: 0, count: n * c)
        var grad = [Double](repeating: 0, count: gradient ? n * c : 0)
        var values = [Double](repeating: 0, count: n)
        withMutableBuffers(&values, &elements, &grad) { valuesOut, elementsOut, gradOut in
            withBuffers(logits.values, teacherLogits.values) { z, teacher in
                Parallel.forEachRange(n, costPerRow: 8 * c) { rows in
                    for r in rows {
                        var rowValue = 0.0
                        for k in (r * c)..<((r + 1) * c) {
                            let (e, g) = element(z[k], teacher[k], variant: variant, t: t, eps: eps, classes: c)
                            elementsOut[k] = e
                            rowValue += e
                            if gradient { gradOut[k] = g }
                        }
                        valuesOut[r] = variant == .mse ? rowValue / Double(c) : rowValue
                    }
                }
            }
        }
        guard values.allSatisfy(\.isFinite) else { throw .overflow }
        var output = LossOutput(values: values, denominators: [Double](repeating: 1, count: n))
        if variant != .mse { output.extras["per_element"] = .matrix(Matrix(rows: n, cols: c, values: elements)) }
        if gradient { output.gradients["logits"] = Tensor(shape: [n, c], values: grad) }
        return output
    }

    /// One class's loss term and its derivative w.r.t. the student logit z (for `mse` the
    /// term is the squared gap, averaged by the caller, and the derivative already includes 1/C).
    @inline(__always)
    static func element(
        _ z: Double, _ teacher: Double, variant: Variant, t: Double, eps: Double, classes: Int
    ) -> (value: Double, gradient: Double) {
        switch variant {
        case .mse:
            let d = z - teacher
            return (d * d, 2 * d / Double(classes))
        case .binaryKLNorm:
            let d = (z - teacher) / t
            if eps == 0 {
                return (t * t * StableMath.logCosh(d / 2), t * 0.5 * tanh(d / 2))
            }
            // The code's clamp of σ(d) to [ε, 1 − ε]; KL(Bern(½) ‖ Bern(s)).
            let sigma = StableMath.sigmoid(d)
            let s = min(max(sigma, eps), 1 - eps)
            let inside = sigma > eps && sigma < 1 - eps
            let value = t * t * (0.5 * (log(0.5) - log(s)) + 0.5 * (log(0.5) - log(1 - s)))
            return (value, inside ? t * (s - 0.5) : 0)
        case .binaryKL:
            let a = z / t, b = teacher / t
            if eps == 0 {
                // Teacher probabilities multiply finite log-ratios, so 0·(…) terms vanish cleanly.
                let p = StableMath.sigmoid(b), q = StableMath.sigmoid(-b)
                let value =
                    t * t
                    * (p * (StableMath.logSigmoid(b) - StableMath.logSigmoid(a))
                        + q * (StableMath.logSigmoid(-b) - StableMath.logSigmoid(-a)))
                return (value, t * (StableMath.sigmoid(a) - p))
            }
            let sigmaA = StableMath.sigmoid(a)
            let s = min(max(sigmaA, eps), 1 - eps)
            let p = min(max(StableMath.sigmoid(b), eps), 1 - eps)
            let inside = sigmaA > eps && sigmaA < 1 - eps
            let value = t * t * (p * (log(p) - log(s)) + (1 - p) * (log(1 - p) - log(1 - s)))
            return (value, inside ? t * (s - p) : 0)
        }
    }
}
