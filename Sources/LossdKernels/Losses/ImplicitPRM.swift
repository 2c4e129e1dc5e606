/// Implicit process reward model (Lifan Yuan et al., "Free Process Rewards without Process
/// Labels", 2024; docs/losses.md §16.2): an outcome reward model trained on response-level
/// 0/1 labels, whose reward is a log-likelihood ratio against a reference model, so that the
/// same model scores every step.
///
///     d_it = mask_it · (log π_it − log π_ref,it)
///     r_i  = β · Σ_t d_it
///     ℓ_i  = softplus(−r_i) if outcome_i = 1, else softplus(r_i)   (cross-entropy on σ(r_i))
///     ∂ℓ_i/∂log π_it = β · (σ(r_i) − outcome_i) · mask_it
///
/// `softplus` and `σ` are the stable forms of `StableMath`, so log-probabilities of −1e4
/// give finite values and gradients. Extras: `rewards` [N] (r_i), `process_rewards` [N][T]
/// (q_it = β·Σ_{u≤t} d_iu) and, with step ends, `step_rewards` [N][K] (q at each step's end
/// minus q at the previous step's end, 0 before the first; NaN, rendered null, for −1 padding).
public enum ImplicitPRM {
    /// Evaluates ℓ_i (d_i = 1) and the gradient with respect to `logProbs`.
    ///
    /// - `logProbs`, `refLogProbs`: [N][T], every entry ≤ 0 (`invalid_input` otherwise);
    ///   the reference gets no gradient.
    /// - `outcomes`: N values in {0, 1} (`invalid_label` otherwise).
    /// - `mask`: [N][T] of 0/1 (`invalid_input` otherwise), all ones when nil.
    /// - `stepEnds`: [N][K] integral token indices in [0, T), strictly increasing along a
    ///   row, padded at the end with −1 (`invalid_label` for a non-integer or out-of-range
    ///   index, `invalid_input` for order or padding in the middle).
    /// - `beta` > 0.
    public static func evaluate(
        logProbs: Matrix, refLogProbs: Matrix, outcomes: [Int], mask: Matrix?, stepEnds: Matrix?, beta: Double,
        gradient: Bool
    ) throws(LossInputError) -> LossOutput {
        let (n, t) = try Validate.sameShape(refLogProbs, name: "ref_log_probs", as: logProbs)
        try Validate.count(outcomes.count, name: "outcomes", expected: n)
        for (i, y) in outcomes.enumerated() where y != 0 && y != 1 {
            throw LossInputError(.invalidLabel, field: "/outcomes/\(i)", "`outcomes[\(i)]` = \(y) is out of range [0, 2)")
        }
        if let mask {
            try Validate.rows(mask, name: "mask", rows: n, cols: t)
            for (k, v) in mask.values.enumerated() where v != 0 && v != 1 {
                throw LossInputError(.invalidInput, field: "/mask/\(k / t)/\(k % t)", "`mask[\(k / t)][\(k % t)]` must be 0 or 1")
            }
        }
        for (name, m) in [("log_probs", logProbs), ("ref_log_probs", refLogProbs)] {
            if let k = m.values.firstIndex(where: { $0 > 0 }) {
                throw LossInputError(.invalidInput, field: "/\(name)/\(k / t)/\(k % t)", "`\(name)[\(k / t)][\(k % t)]` must be <= 0")
            }
        }
        if let stepEnds { try validate(stepEnds: stepEnds, rows: n, tokens: t) }

        var values = [Double](repeating: 0, count: n)
        var rewards = [Double](repeating: 0, count: n)
        var process = [Double](repeating: 0, count: n * t)
        var grad = [Double](repeating: 0, count: gradient ? n * t : 0)
        for i in 0..<n {
            var cumulative = 0.0
            for j in 0..<t {
                let k = i * t + j
                let m = mask?.values[k] ?? 1
                cumulative += m * (logProbs.values[k] - refLogProbs.values[k])
                process[k] = beta * cumulative
            }
            let r = beta * cumulative
            rewards[i] = r
            let y = Double(outcomes[i])
            values[i] = StableMath.softplus(outcomes[i] == 1 ? -r : r)
            guard gradient else { continue }
            let coefficient = beta * (StableMath.sigmoid(r) - y)
            for j in 0..<t { grad[i * t + j] = coefficient * (mask?.values[i * t + j] ?? 1) }
        }
        guard values.allFinite, rewards.allFinite, process.allFinite else { throw .overflow }
        var output = LossOutput(
            values: values, denominators: [Double](repeating: 1, count: n),
            extras: ["rewards": .vector(rewards), "process_rewards": .matrix(Matrix(rows: n, cols: t, values: process))])
        if let stepEnds {
            let kSteps = stepEnds.cols
            var steps = [Double](repeating: .nan, count: n * kSteps)
            for i in 0..<n {
                var previous = 0.0
                for k in 0..<kSteps {
                    let e = Int(stepEnds[i, k])
                    guard e >= 0 else { continue }
                    let q = process[i * t + e]
                    steps[i * kSteps + k] = q - previous
                    previous = q
                }
            }
            output.extras["step_rewards"] = .matrix(Matrix(rows: n, cols: kSteps, values: steps))
        }
        if gradient { output.gradients["log_probs"] = Tensor(shape: [n, t], values: grad) }
        return output
    }

    /// Step ends: N rows of integral indices in [0, T) or −1, increasing, padding only at the end.
    static func validate(stepEnds: Matrix, rows n: Int, tokens t: Int) throws(LossInputError) {
        guard stepEnds.rows == n else {
            throw LossInputError(.invalidShape, field: "/step_ends", "`step_ends` has \(stepEnds.rows) rows but \(n) are required")
        }
        for i in 0..<n {
            var previous = -1
            var padded = false
            for k in 0..<stepEnds.cols {
                let v = stepEnds[i, k]
                guard v == v.rounded() else {
                    throw LossInputError(
                        .invalidLabel, field: "/step_ends/\(i)/\(k)", "`step_ends[\(i)][\(k)]` must be an integer (got \(v))")
                }
                guard v == -1 || (v >= 0 && v < Double(t)) else {
                    throw LossInputError(
                        .invalidLabel, field: "/step_ends/\(i)/\(k)",
                        "`step_ends[\(i)][\(k)]` = \(abs(v) < 1e15 ? String(Int(v)) : String(v)) is out of range [0, \(t)) (-1 pads)")
                }
                let e = Int(v)
                if e == -1 {
                    padded = true
                    continue
                }
                guard !padded, e > previous else {
                    throw LossInputError(
                        .invalidInput, field: "/step_ends/\(i)/\(k)",
                        "`step_ends[\(i)]` must be strictly increasing, with -1 padding only at the end")
                }
                previous = e
            }
        }
    }
}
