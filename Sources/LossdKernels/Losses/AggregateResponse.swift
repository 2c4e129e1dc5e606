/// Learning from aggregate responses (Javanmard et al., ICLR 2024; docs/losses.md §13), squared
/// loss: instances come in bags and only each bag's mean response ȳ_b is known. The loss
/// interpolates the bag-level loss (bag mean prediction f̄_b against ȳ_b) and the instance-level
/// loss (each f_i against ȳ_b): L_ρ = (1 − ρ) L_bag + ρ L_inst.
public enum AggregateResponse {
    /// How bags weigh in the bag-level loss: by size (keeps L_inst = L_bag + R exact) or equally.
    public enum BagWeighting: String, Sendable, CaseIterable {
        case size, uniform
    }

    /// Evaluates the per-instance values v_i = (1 − ρ) ω_i (ȳ_b − f̄_b)² + ρ (ȳ_b − f_i)²
    /// (d_i = 1, so `mean` = L_ρ), the gradient of Σ_i v_i,
    /// 2[(1 − ρ) ω_i (f̄_b − ȳ_b) + ρ (f_i − ȳ_b)], and the extras `bag_level`,
    /// `instance_level`, `regularizer` (R = (1/N) Σ_i (f_i − f̄_b)²) and `num_bags`.
    /// `bagResponses` holds one response per distinct bag id, in ascending id order.
    /// Rows interact through the bag means, so the output is not row-separable.
    public static func evaluate(
        predictions f: [Double], bags: [Int], bagResponses: [Double], rho: Double, weighting: BagWeighting, gradient: Bool
    ) throws(LossInputError) -> LossOutput {
        let n = f.count
        try Validate.count(bags.count, name: "bags", expected: n)
        let ids = Array(Set(bags)).sorted()
        let m = ids.count
        guard bagResponses.count == m else {
            throw LossInputError(
                .invalidShape, field: "/bag_responses",
                "`bag_responses` has \(bagResponses.count) entries but `bags` has \(m) distinct bags")
        }
        var position: [Int: Int] = [:]
        position.reserveCapacity(m)
        for (b, id) in ids.enumerated() { position[id] = b }
        let bagOf = bags.map { position[$0]! }

        var sizes = [Double](repeating: 0, count: m)
        var means = [Double](repeating: 0, count: m)
        for i in 0..<n {
            sizes[bagOf[i]] += 1
            means[bagOf[i]] += f[i]
        }
        for b in 0..<m { means[b] /= sizes[b] }

        var values = [Double](repeating: 0, count: n)
        var grad = gradient ? [Double](repeating: 0, count: n) : []
        var bagLevel = 0.0, instanceLevel = 0.0, regularizer = 0.0
        for i in 0..<n {
            let b = bagOf[i]
            let response = bagResponses[b], bagGap = means[b] - response, gap = f[i] - response
            let omega = weighting == .size ? 1 : Double(n) / (Double(m) * sizes[b])
            values[i] = (1 - rho) * omega * bagGap * bagGap + rho * gap * gap
            if gradient { grad[i] = 2 * ((1 - rho) * omega * bagGap + rho * gap) }
            bagLevel += omega * bagGap * bagGap
            instanceLevel += gap * gap
            regularizer += (f[i] - means[b]) * (f[i] - means[b])
        }
        guard values.allSatisfy(\.isFinite) else { throw .overflow }
        var output = LossOutput(
            values: values, denominators: [Double](repeating: 1, count: n),
            extras: [
                "bag_level": .scalar(bagLevel / Double(n)),
                "instance_level": .scalar(instanceLevel / Double(n)),
                "regularizer": .scalar(regularizer / Double(n)),
                "num_bags": .scalar(Double(m)),
            ])
        output.rowSeparable = false
        if gradient { output.gradients["predictions"] = Tensor(vector: grad) }
        return output
    }
}
