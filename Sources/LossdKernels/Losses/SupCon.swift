/// Supervised contrastive loss (Khosla et al. 2020; SupContrast `contrast_mode='all'`),
/// docs/losses.md §14.4: every row is an anchor, rows with its label (itself excluded) its
/// positives.
public enum SupCon {
    public struct Parameters: Sendable {
        /// τ > 0.
        public var temperature: Double = 0.07
        /// τ_b > 0; the loss is scaled by τ/τ_b.
        public var baseTemperature: Double = 0.07
        /// L2-normalise the rows first.
        public var normalize = true

        public init(temperature: Double = 0.07, baseTemperature: Double = 0.07, normalize: Bool = true) {
            self.temperature = temperature
            self.baseTemperature = baseTemperature
            self.normalize = normalize
        }
    }

    /// ℓ_a = −(τ/τ_b)·mean_{p∈P(a)}[S_ap − LSE_{b≠a} S_ab] (0 without positives) per anchor,
    /// and the gradient of Σ_a ℓ_a with respect to `embeddings`. The N x N similarity matrix
    /// may have at most `Contrastive.maxSimilarityEntries` entries (N ≤ 8192).
    public static func evaluate(
        embeddings: Matrix, labels: [Int], parameters: Parameters, gradient: Bool
    ) throws(LossInputError) -> LossOutput {
        let (n, d) = try Contrastive.checkLabelledEmbeddings(embeddings, labels: labels)
        var unit: Contrastive.UnitRows?
        if parameters.normalize {
            unit = try Contrastive.unitRows(embeddings.values, rows: n, width: d, field: "embeddings") { [$0] }
        }
        var groupOf: [Int: Int] = [:]
        var members: [[Int]] = []
        var group = [Int](repeating: 0, count: n)
        for (i, label) in labels.enumerated() {
            if let g = groupOf[label] {
                group[i] = g
                members[g].append(i)
            } else {
                groupOf[label] = members.count
                group[i] = members.count
                members.append([i])
            }
        }
        let (values, gu) = Contrastive.groupedCore(
            unit?.values ?? embeddings.values, rows: n, width: d, temperature: parameters.temperature,
            group: group, members: members, factor: parameters.temperature / parameters.baseTemperature,
            gradient: gradient)
        try Contrastive.requireFinite(values)
        var output = LossOutput(values: values, denominators: [Double](repeating: 1, count: n))
        output.rowSeparable = false
        guard gradient else { return output }
        var g = gu
        if let unit { Contrastive.backward(&g, through: unit, width: d) }
        output.gradients["embeddings"] = Tensor(shape: [n, d], values: g)
        return output
    }
}
