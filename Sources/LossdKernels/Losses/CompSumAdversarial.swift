/// Smooth adversarial comp-sum loss (Anqi Mao, Mehryar Mohri, Yutao Zhong, "Cross-Entropy
/// Loss Functions: Theoretical Analysis and Applications", ICML 2023; docs/losses.md §16.4):
/// the comp-sum loss of the clean logits plus a smooth penalty on how far the client's
/// adversarial perturbation moves the margin vector `ρ(z)_k = z_y − z_k` (k ≠ y).
///
///     ℓ_i = comp_sum_τ(z_i, y_i) + ν · ‖ρ(z'_i) − ρ(z_i)‖₂
///
/// With `v = ρ(z') − ρ(z)` and `u = v/‖v‖`: `∂‖v‖/∂z'_k = −u_k` (k ≠ y),
/// `∂‖v‖/∂z'_y = Σ_{k≠y} u_k`, and `∂‖v‖/∂z = −∂‖v‖/∂z'`; at ‖v‖ = 0 (no perturbation of the
/// margins, e.g. a shift of every logit) the subgradient 0 is used. The norm is taken after
/// dividing by the largest |v_k|, so it neither overflows nor underflows early. The comp-sum
/// part is `CompSum` (τ < 1 can leave float64: `value_overflow`).
public enum CompSumAdversarial {
    /// ℓ_i (d_i = 1) and the gradients with respect to `logits` and `adv_logits` ([N][C]
    /// each); τ ∈ [0, 2], ν ≥ 0.
    public static func evaluate(
        logits: Matrix, adversarialLogits: Matrix, labels: [Int], tau: Double, nu: Double, gradient: Bool
    ) throws(LossInputError) -> LossOutput {
        let (n, c) = try Validate.sameShape(adversarialLogits, name: "adv_logits", as: logits)
        var output = try CompSum.evaluate(logits: logits, labels: labels, tau: tau, gradient: gradient)
        output.extras = [:]
        var gradLogits = output.gradients["logits"]?.values ?? []
        var gradAdversarial = [Double](repeating: 0, count: gradient ? n * c : 0)
        var v = [Double](repeating: 0, count: c)
        for i in 0..<n {
            let y = labels[i], base = i * c
            let zy = logits.values[base + y], ay = adversarialLogits.values[base + y]
            var largest = 0.0
            for k in 0..<c {
                v[k] = k == y ? 0 : (ay - adversarialLogits.values[base + k]) - (zy - logits.values[base + k])
                largest = max(largest, abs(v[k]))
            }
            guard largest > 0 else { continue }
            var squares = 0.0
            for k in 0..<c { squares += (v[k] / largest) * (v[k] / largest) }
            let norm = largest * squares.squareRoot()
            output.values[i] += nu * norm
            guard gradient, nu > 0 else { continue }
            var sum = 0.0
            for k in 0..<c where k != y {
                let u = v[k] / norm
                sum += u
                gradAdversarial[base + k] = -nu * u
                gradLogits[base + k] += nu * u
            }
            gradAdversarial[base + y] = nu * sum
            gradLogits[base + y] -= nu * sum
        }
        guard output.values.allFinite, gradLogits.allFinite, gradAdversarial.allFinite else { throw .overflow }
        if gradient {
            output.gradients["logits"] = Tensor(shape: [n, c], values: gradLogits)
            output.gradients["adv_logits"] = Tensor(shape: [n, c], values: gradAdversarial)
        }
        return output
    }
}
