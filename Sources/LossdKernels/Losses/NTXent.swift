/// NT-Xent of SimCLR (Chen et al. 2020), docs/losses.md §14.3: the 2N rows of `[queries; keys]` are
/// all anchors, each with the other view of its sample as positive and the other 2N − 2 as
/// negatives.
public enum NTXent {
    public struct Parameters: Sendable {
        /// τ > 0.
        public var temperature: Double = 0.1
        /// L2-normalise the rows first.
        public var normalize = true

        public init(temperature: Double = 0.1, normalize: Bool = true) {
            self.temperature = temperature
            self.normalize = normalize
        }
    }

    /// ℓ_a = LSE_{b≠a}(S_ab) − S_{a,π(a)} for the 2N anchors (query anchors first), and the
    /// gradients of Σ_a ℓ_a with respect to `queries` and `keys`. The 2N x 2N similarity
    /// matrix may have at most `Contrastive.maxSimilarityEntries` entries (N ≤ 4096).
    public static func evaluate(
        queries: Matrix, keys: Matrix, parameters: Parameters, gradient: Bool
    ) throws(LossInputError) -> LossOutput {
        let (n, d) = try Validate.sameShape(keys, name: "keys", as: queries)
        try Contrastive.checkSimilaritySize(rows: 2 * n, cols: 2 * n, inputs: ["queries", "keys"])
        var qUnit: Contrastive.UnitRows?, kUnit: Contrastive.UnitRows?
        if parameters.normalize {
            qUnit = try Contrastive.unitRows(queries.values, rows: n, width: d, field: "queries") { [$0] }
            kUnit = try Contrastive.unitRows(keys.values, rows: n, width: d, field: "keys") { [$0] }
        }
        let u = (qUnit?.values ?? queries.values) + (kUnit?.values ?? keys.values)
        // Sample i's two rows, i and i + N, form one group.
        let group = (0..<(2 * n)).map { $0 % n }
        let members = (0..<n).map { [$0, $0 + n] }
        let (values, gu) = Contrastive.groupedCore(
            u, rows: 2 * n, width: d, temperature: parameters.temperature, group: group, members: members,
            factor: 1, gradient: gradient)
        try Contrastive.requireFinite(values)
        var output = LossOutput(values: values, denominators: [Double](repeating: 1, count: 2 * n))
        output.rowSeparable = false
        guard gradient else { return output }
        var gq = Array(gu[0..<(n * d)]), gk = Array(gu[(n * d)...])
        if let qUnit { Contrastive.backward(&gq, through: qUnit, width: d) }
        if let kUnit { Contrastive.backward(&gk, through: kUnit, width: d) }
        output.gradients["queries"] = Tensor(shape: [n, d], values: gq)
        output.gradients["keys"] = Tensor(shape: [n, d], values: gk)
        return output
    }
}
