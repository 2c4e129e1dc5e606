/// Threshold-Consistent Margin loss (Qin Zhang et al., "Threshold-Consistent Margin Loss for
/// Open-World Deep Metric Learning", ICLR 2024; docs/losses.md §16.1): a regulariser, sent
/// beside a base loss, that penalises only the hard pairs of a batch.
///
/// Over ordered pairs i ≠ j with cosine `S_ij = cos(e_i, e_j)`, hard positives
/// `P = {y_i = y_j, S_ij < m+}` and hard negatives `Q = {y_i ≠ y_j, S_ij > m−}`:
///
///     ℓ = λ+ · mean_P (m+ − S_ij) + λ− · mean_Q (S_ij − m−)
///
/// An empty set adds 0 (a batch without hard pairs, or a single row, gives 0 with a zero
/// gradient). The loss is one number for the batch: one row, no sample weights. A pair
/// exactly at its margin is not hard (subgradient 0). Cosines are used whether or not the
/// client asks for normalisation, so a row of norm below 1e-12 is always `invalid_input`;
/// S is exactly symmetric, so (i, j) and (j, i) are hard together.
public enum TCM {
    public struct Parameters: Sendable {
        /// λ+ ≥ 0, weight of the hard-positive term.
        public var lambdaPlus: Double
        /// λ− ≥ 0, weight of the hard-negative term.
        public var lambdaMinus: Double
        /// m+ ∈ [−1, 1]: same-label pairs below it are hard.
        public var marginPlus: Double
        /// m− ∈ [−1, 1]: different-label pairs above it are hard.
        public var marginMinus: Double

        public init(lambdaPlus: Double = 1, lambdaMinus: Double = 1, marginPlus: Double = 0.9, marginMinus: Double = 0.5) {
            self.lambdaPlus = lambdaPlus
            self.lambdaMinus = lambdaMinus
            self.marginPlus = marginPlus
            self.marginMinus = marginMinus
        }
    }

    /// The batch value (one row, d = 1), its gradient with respect to `embeddings`
    /// (`∂ℓ/∂u_i = Σ_j (G_ij + G_ji) u_j` with `G = ∂ℓ/∂S`, then the normalisation's Jacobian,
    /// which removes the radial part: at S = ±1 the gradient is finite), and the extras
    /// `hard_positive_pairs` and `hard_negative_pairs` (ordered-pair counts). The N x N
    /// similarity matrix may have at most `Contrastive.maxSimilarityEntries` entries.
    public static func evaluate(
        embeddings: Matrix, labels: [Int], parameters: Parameters, gradient: Bool
    ) throws(LossInputError) -> LossOutput {
        let (n, d) = try Contrastive.checkLabelledEmbeddings(embeddings, labels: labels)
        let unit = try Contrastive.unitRows(embeddings.values, rows: n, width: d, field: "embeddings", minimumNorm: 1e-12) { [$0] }
        // S, overwritten with G = ∂ℓ/∂S once the hard sets are known.
        var s = Contrastive.symmetricGram(unit.values, rows: n, width: d)
        let mPlus = parameters.marginPlus, mMinus = parameters.marginMinus
        var positives = 0, negatives = 0
        var positiveSum = 0.0, negativeSum = 0.0
        for i in 0..<n {
            for j in 0..<n where j != i {
                let sij = s[i * n + j]
                if labels[i] == labels[j] {
                    if sij < mPlus {
                        positives += 1
                        positiveSum += mPlus - sij
                    }
                } else if sij > mMinus {
                    negatives += 1
                    negativeSum += sij - mMinus
                }
            }
        }
        var value = 0.0
        if positives > 0 { value += parameters.lambdaPlus * positiveSum / Double(positives) }
        if negatives > 0 { value += parameters.lambdaMinus * negativeSum / Double(negatives) }
        try Contrastive.requireFinite([value])
        var output = LossOutput(
            values: [value], denominators: [1],
            extras: ["hard_positive_pairs": .scalar(Double(positives)), "hard_negative_pairs": .scalar(Double(negatives))])
        output.rowSeparable = false
        guard gradient else { return output }
        let gPlus = positives > 0 ? -parameters.lambdaPlus / Double(positives) : 0
        let gMinus = negatives > 0 ? parameters.lambdaMinus / Double(negatives) : 0
        for i in 0..<n {
            for j in 0..<n {
                let k = i * n + j
                let sij = s[k]
                if j == i {
                    s[k] = 0
                } else if labels[i] == labels[j] {
                    s[k] = sij < mPlus ? gPlus : 0
                } else {
                    s[k] = sij > mMinus ? gMinus : 0
                }
            }
        }
        // G is symmetric, so Σ_j (G_ij + G_ji) u_j = 2·G·u.
        var g = [Double](repeating: 0, count: n * d)
        Contrastive.gemm(.none, .none, m: n, n: d, k: n, alpha: 2, a: s, b: unit.values, c: &g)
        Contrastive.backward(&g, through: unit, width: d)
        output.gradients["embeddings"] = Tensor(shape: [n, d], values: g)
        return output
    }
}
