/// Normalised softmax (cosine classifier with scale, CosFace's additive cosine margin) and
/// its UNPG form with in-batch negatives (Jung et al., "Unified Negative Pair
/// Generation toward Well-discriminative Feature Space for Face Recognition", 2022;
/// docs/losses.md §16.5).
///
///     a_ic = s · (cos(e_i, w_c) − m·[c = y_i])
///     ℓ_i  = −a_{i,y_i} + LSE({a_ic}_c ∪ {s·cos(e_i, e_k) : y_k ≠ y_i, cos(e_i, e_k) ≤ θ})
///
/// where the in-batch set is empty without `batchNegatives` and θ = +∞ without a filter
/// threshold (UNPG drops negatives more similar than θ as likely label noise). The row is
/// one log-sum-exp over C + N candidates (excluded ones at −∞), max-shifted, so a scale of
/// 1e4 with cosines ±1 stays finite; `ℓ_i = (max − a_{i,y_i}) + excess` keeps full accuracy
/// when the label's logit is the maximum.
public enum NormalizedSoftmax {
    public struct Parameters: Sendable {
        /// s > 0.
        public var scale: Double
        /// m ∈ [0, 1).
        public var margin: Double
        /// Add the in-batch pairs of different labels as negatives.
        public var batchNegatives: Bool
        /// θ ∈ (−1, 1]: in-batch negatives with a cosine above it are dropped; nil keeps all.
        public var filterThreshold: Double?

        public init(scale: Double = 16, margin: Double = 0, batchNegatives: Bool = false, filterThreshold: Double? = nil) {
            self.scale = scale
            self.margin = margin
            self.batchNegatives = batchNegatives
            self.filterThreshold = filterThreshold
        }
    }

    /// ℓ_i (d_i = 1) and, when asked, the gradients of `Σ_i s_i ℓ_i` with respect to
    /// `embeddings` [N][D] and `prototypes` [C][D] (s_i the sample weights, 1 when nil).
    /// The rows interact (prototypes are shared; in-batch negatives tie anchors together),
    /// so the weights are applied here and the output is not row-separable. Extras:
    /// `filtered_pairs`, the ordered negative pairs the threshold dropped (0 without
    /// `batchNegatives`). Rows of norm below 1e-12 are `invalid_input`; the N x C (and with
    /// batch negatives N x N) similarity matrices may have at most
    /// `Contrastive.maxSimilarityEntries` entries each.
    public static func evaluate(
        embeddings: Matrix, prototypes: Matrix, labels: [Int], sampleWeights: [Double]?, parameters: Parameters,
        gradient: Bool
    ) throws(LossInputError) -> LossOutput {
        let n = embeddings.rows, d = embeddings.cols, c = prototypes.rows
        guard prototypes.cols == d else {
            throw LossInputError(.invalidShape, field: "/prototypes", "`prototypes` has \(prototypes.cols) columns but \(d) are required")
        }
        try Validate.labels(labels, rows: n, classes: c)
        try Validate.weights(sampleWeights, name: "sample_weights", count: n)
        try Contrastive.checkSimilaritySize(rows: n, cols: c, inputs: ["embeddings", "prototypes"])
        if parameters.batchNegatives { try Contrastive.checkSimilaritySize(rows: n, cols: n, inputs: ["embeddings"]) }
        let u = try Contrastive.unitRows(embeddings.values, rows: n, width: d, field: "embeddings", minimumNorm: 1e-12) { [$0] }
        let w = try Contrastive.unitRows(prototypes.values, rows: c, width: d, field: "prototypes", minimumNorm: 1e-12) { [$0] }
        let s = parameters.scale, margin = parameters.margin

        // Class logits a = s·(U·Wᵀ − m·onehot).
        var a = [Double](repeating: 0, count: n * c)
        Contrastive.gemm(.none, .transpose, m: n, n: c, k: d, alpha: s, a: u.values, b: w.values, c: &a)
        for i in 0..<n { a[i * c + labels[i]] -= s * margin }
        // In-batch cosines B = U·Uᵀ and the kept negatives.
        let extra = parameters.batchNegatives ? n : 0
        var b = parameters.batchNegatives ? Contrastive.symmetricGram(u.values, rows: n, width: d) : []
        var keep = [Bool](repeating: false, count: n * extra)
        var filtered = 0
        if parameters.batchNegatives {
            for i in 0..<n {
                for k in 0..<n where labels[k] != labels[i] {
                    if let threshold = parameters.filterThreshold, !(b[i * n + k] <= threshold) {
                        filtered += 1
                    } else {
                        keep[i * n + k] = true
                    }
                }
            }
        }

        var values = [Double](repeating: 0, count: n)
        // Each row's candidates: a_i· then s·B_ik for the kept k (listed in `kept`); then
        // (gradient) ∂ℓ_i/∂a_i· and ∂ℓ_i/∂B_i·, times the row's weight, in place of a and b.
        var row = [Double](repeating: 0, count: c + extra)
        var probabilities = [Double](repeating: 0, count: c + extra)
        var kept = [Int](repeating: 0, count: extra)
        for i in 0..<n {
            for k in 0..<c { row[k] = a[i * c + k] }
            var count = 0
            for k in 0..<extra where keep[i * n + k] {
                row[c + count] = s * b[i * n + k]
                kept[count] = k
                count += 1
            }
            let y = labels[i]
            let (m, excess) = row.withUnsafeBufferPointer {
                TwoPassSoftmax.logSumExpAboveMax(UnsafeBufferPointer(rebasing: $0[0..<(c + count)]))
            }
            values[i] = (m - row[y]) + excess
            guard gradient else { continue }
            row.withUnsafeBufferPointer { x in
                probabilities.withUnsafeMutableBufferPointer {
                    TwoPassSoftmax.expShifted(UnsafeBufferPointer(rebasing: x[0..<(c + count)]), shift: m + excess, into: $0)
                }
            }
            let weight = (sampleWeights?[i] ?? 1) * s
            for k in 0..<c { a[i * c + k] = weight * (probabilities[k] - (k == y ? 1 : 0)) }
            for k in 0..<extra { b[i * n + k] = 0 }
            for j in 0..<count { b[i * n + kept[j]] = weight * probabilities[c + j] }
        }
        try Contrastive.requireFinite(values)
        var output = LossOutput(
            values: values, denominators: [Double](repeating: 1, count: n), extras: ["filtered_pairs": .scalar(Double(filtered))])
        output.rowSeparable = false
        guard gradient else { return output }
        // a and b now hold G_A = ∂/∂(cos e·w) and G_B = ∂/∂(cos e·e) of Σ s_i ℓ_i:
        // ∂/∂u = G_A·W + (G_B + G_Bᵀ)·U, ∂/∂w = G_Aᵀ·U.
        var gu = [Double](repeating: 0, count: n * d)
        var gw = [Double](repeating: 0, count: c * d)
        Contrastive.gemm(.none, .none, m: n, n: d, k: c, alpha: 1, a: a, b: w.values, c: &gu)
        if parameters.batchNegatives {
            Contrastive.gemm(.none, .none, m: n, n: d, k: n, alpha: 1, a: b, b: u.values, beta: 1, c: &gu)
            Contrastive.gemm(.transpose, .none, m: n, n: d, k: n, alpha: 1, a: b, b: u.values, beta: 1, c: &gu)
        }
        Contrastive.gemm(.transpose, .none, m: c, n: d, k: n, alpha: 1, a: a, b: u.values, c: &gw)
        Contrastive.backward(&gu, through: u, width: d)
        Contrastive.backward(&gw, through: w, width: d)
        guard gu.allFinite, gw.allFinite else { throw .overflow }
        output.gradients["embeddings"] = Tensor(shape: [n, d], values: gu)
        output.gradients["prototypes"] = Tensor(shape: [c, d], values: gw)
        return output
    }
}
