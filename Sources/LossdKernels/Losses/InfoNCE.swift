/// InfoNCE in its query/key form (CPC / MoCo; CLIP when symmetric), docs/losses.md §14.2: key i is
/// the positive of query i, every other key (extra rows included) a negative.
public enum InfoNCE {
    public struct Parameters: Sendable {
        /// τ > 0.
        public var temperature: Double = 0.07
        /// L2-normalise the rows of queries and keys first.
        public var normalize = true
        /// Average with the key→query direction (CLIP); needs as many keys as queries.
        public var symmetric = false

        public init(temperature: Double = 0.07, normalize: Bool = true, symmetric: Bool = false) {
            self.temperature = temperature
            self.normalize = normalize
            self.symmetric = symmetric
        }
    }

    /// ℓ_i = LSE_j(S_ij) − S_ii with S = u·vᵀ/τ (one value per query), and gradients of Σ_i ℓ_i
    /// with respect to `queries` and `keys` (G = softmax − I, ∂u = G·v/τ, ∂v = Gᵀ·u/τ, then the
    /// normalisation's Jacobian). S has N x M entries, at most `Contrastive.maxSimilarityEntries`
    /// (else `content_too_large`).
    public static func evaluate(
        queries: Matrix, keys: Matrix, parameters: Parameters, gradient: Bool
    ) throws(LossInputError) -> LossOutput {
        let n = queries.rows, d = queries.cols, m = keys.rows
        guard keys.cols == d else {
            throw LossInputError(.invalidShape, field: "/keys", "`keys` has \(keys.cols) columns but \(d) are required")
        }
        guard m >= n else {
            throw LossInputError(
                .invalidShape, field: "/keys",
                "`keys` has \(m) rows but `queries` has \(n); keys needs at least as many rows (row i is the positive of query i)")
        }
        if parameters.symmetric && m != n {
            throw LossInputError(
                .invalidShape, field: "/keys", "`symmetric` needs as many keys as queries (got \(m) keys, \(n) queries)")
        }
        try Contrastive.checkSimilaritySize(rows: n, cols: m, inputs: ["queries", "keys"])
        let tau = parameters.temperature
        var qUnit: Contrastive.UnitRows?, kUnit: Contrastive.UnitRows?
        if parameters.normalize {
            qUnit = try Contrastive.unitRows(queries.values, rows: n, width: d, field: "queries") { [$0] }
            kUnit = try Contrastive.unitRows(keys.values, rows: m, width: d, field: "keys") { [$0] }
        }
        let u = qUnit?.values ?? queries.values, v = kUnit?.values ?? keys.values

        var s = [Double](repeating: 0, count: n * m)
        Contrastive.gemm(.none, .transpose, m: n, n: m, k: d, alpha: 1 / tau, a: u, b: v, c: &s)

        // Row direction: ℓ_i and, in place of S, G_ij = softmax_j(S_i·) − [i = j].
        var values = [Double](repeating: 0, count: n)
        var columnValues = [Double](repeating: 0, count: parameters.symmetric ? n : 0)
        var columnG = [Double](repeating: 0, count: parameters.symmetric && gradient ? n * n : 0)
        if parameters.symmetric {
            // Key j against all queries: the rows of Sᵀ (computed before S becomes G).
            var st = [Double](repeating: 0, count: n * n)
            for i in 0..<n { for j in 0..<n { st[j * n + i] = s[i * n + j] } }
            rowSoftmax(&st, rows: n, cols: n, values: &columnValues, gradient: gradient)
            if gradient { for i in 0..<n { for j in 0..<n { columnG[i * n + j] = st[j * n + i] } } }
        }
        rowSoftmax(&s, rows: n, cols: m, values: &values, gradient: gradient)
        if parameters.symmetric {
            for i in 0..<n { values[i] = 0.5 * (values[i] + columnValues[i]) }
            if gradient { for k in 0..<(n * n) { s[k] = 0.5 * (s[k] + columnG[k]) } }
        }
        try Contrastive.requireFinite(values)
        var output = LossOutput(values: values, denominators: [Double](repeating: 1, count: n))
        output.rowSeparable = false
        guard gradient else { return output }

        var gq = [Double](repeating: 0, count: n * d), gk = [Double](repeating: 0, count: m * d)
        Contrastive.gemm(.none, .none, m: n, n: d, k: m, alpha: 1 / tau, a: s, b: v, c: &gq)
        Contrastive.gemm(.transpose, .none, m: m, n: d, k: n, alpha: 1 / tau, a: s, b: u, c: &gk)
        if let qUnit { Contrastive.backward(&gq, through: qUnit, width: d) }
        if let kUnit { Contrastive.backward(&gk, through: kUnit, width: d) }
        output.gradients["queries"] = Tensor(shape: [n, d], values: gq)
        output.gradients["keys"] = Tensor(shape: [m, d], values: gk)
        return output
    }

    /// For each row i of `s` [rows][cols]: `values[i] = LSE(s_i) − s_ii`, and with `gradient`
    /// the row becomes `softmax(s_i) − e_i`.
    static func rowSoftmax(_ s: inout [Double], rows: Int, cols: Int, values: inout [Double], gradient: Bool) {
        withMutableBuffers(&values, &s) { out, sm in
            Parallel.forEachRange(rows, costPerRow: cols) { range in
                for i in range {
                    let row = UnsafeMutableBufferPointer(rebasing: sm[(i * cols)..<((i + 1) * cols)])
                    let (mx, excess) = TwoPassSoftmax.logSumExpAboveMax(UnsafeBufferPointer(row))
                    out[i] = (mx - row[i]) + excess
                    guard gradient else { continue }
                    // In place: each output entry depends on its own input entry only.
                    TwoPassSoftmax.expShifted(UnsafeBufferPointer(row), shift: mx + excess, into: row)
                    row[i] -= 1
                }
            }
        }
    }
}
