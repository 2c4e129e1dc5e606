#if canImport(Glibc)
    import Glibc
#endif

/// Contrastive Attraction and Contrastive Repulsion (Zheng et al., TMLR 2023; the small-scale
/// Euclidean code with non-detached weights), docs/losses.md §14.5.
public enum CACR {
    public struct Parameters: Sendable {
        /// α > 0: weight of the attraction.
        public var alpha: Double = 1
        /// β > 0: weight of the repulsion.
        public var beta: Double = 1
        /// τ⁺ ≥ 0: sharpness of the weights over positives (farther weigh more).
        public var tauPositive: Double = 1
        /// τ⁻ ≥ 0: sharpness of the weights over negatives (closer weigh more).
        public var tauNegative: Double = 1
        /// L2-normalise every view's embedding first.
        public var normalize = true

        public init(alpha: Double = 1, beta: Double = 1, tauPositive: Double = 1, tauNegative: Double = 1, normalize: Bool = true) {
            self.alpha = alpha
            self.beta = beta
            self.tauPositive = tauPositive
            self.tauNegative = tauNegative
            self.normalize = normalize
        }
    }

    /// The views of each sample.
    public enum Views: Sendable {
        /// Two views: `queries` [N][D] and `keys` [N][D].
        case pair(queries: Matrix, keys: Matrix)
        /// `embeddings` [N][V][D], V ≥ 2.
        case stacked(Tensor)
    }

    /// ℓ_i = (1/V)Σ_x A_{x,i} + (1/|pairs|)Σ_{x<y} R_{xy,i} per sample, and the gradient of Σ_i ℓ_i
    /// (`queries` and `keys`, or `embeddings`). Each view pair's repulsion builds an N x N
    /// matrix, at most `Contrastive.maxSimilarityEntries` entries (N ≤ 8192).
    public static func evaluate(views: Views, parameters: Parameters, gradient: Bool) throws(LossInputError) -> LossOutput {
        let b: Int, v: Int, d: Int
        var f: [Double]
        var unit: Contrastive.UnitRows?
        switch views {
        case let .pair(queries, keys):
            b = queries.rows
            v = 2
            d = queries.cols
            try Validate.rows(keys, name: "keys", rows: b, cols: d)
            try Contrastive.checkSimilaritySize(rows: b, cols: b, inputs: ["queries", "keys"])
            f = interleave(queries.values, keys.values, rows: b, width: d)
            if parameters.normalize {
                let q = try Contrastive.unitRows(queries.values, rows: b, width: d, field: "queries") { [$0] }
                let k = try Contrastive.unitRows(keys.values, rows: b, width: d, field: "keys") { [$0] }
                unit = Contrastive.UnitRows(
                    values: interleave(q.values, k.values, rows: b, width: d),
                    norms: interleave(q.norms, k.norms, rows: b, width: 1))
            }
        case let .stacked(tensor):
            b = tensor.shape[0]
            v = tensor.shape[1]
            d = tensor.shape[2]
            guard v >= 2 else {
                throw LossInputError(.invalidShape, field: "/embeddings", "`embeddings` must have at least 2 views (got \(v))")
            }
            try Contrastive.checkSimilaritySize(rows: b, cols: b, inputs: ["embeddings"])
            f = tensor.values
            if parameters.normalize {
                unit = try Contrastive.unitRows(f, rows: b * v, width: d, field: "embeddings") { [$0 / v, $0 % v] }
            }
        }
        if let unit { f = unit.values }
        let z = f
        var values = [Double](repeating: 0, count: b)
        var gz = [Double](repeating: 0, count: b * v * d)
        attraction(z, samples: b, views: v, width: d, parameters: parameters, values: &values, gradient: &gz)
        if b >= 2 {
            let pairs = Double(v * (v - 1) / 2)
            for x in 0..<v {
                for y in (x + 1)..<v {
                    repulsion(
                        z, samples: b, views: v, width: d, x: x, y: y, scale: parameters.beta / pairs,
                        tau: parameters.tauNegative, values: &values, gradient: &gz, wantGradient: gradient)
                }
            }
        }
        try Contrastive.requireFinite(values)
        var output = LossOutput(values: values, denominators: [Double](repeating: 1, count: b))
        output.rowSeparable = false
        guard gradient else { return output }
        if let unit { Contrastive.backward(&gz, through: unit, width: d) }
        switch views {
        case .pair:
            var gq = [Double](repeating: 0, count: b * d), gk = gq
            for i in 0..<b {
                for k in 0..<d {
                    gq[i * d + k] = gz[(2 * i) * d + k]
                    gk[i * d + k] = gz[(2 * i + 1) * d + k]
                }
            }
            output.gradients["queries"] = Tensor(shape: [b, d], values: gq)
            output.gradients["keys"] = Tensor(shape: [b, d], values: gk)
        case .stacked:
            output.gradients["embeddings"] = Tensor(shape: [b, v, d], values: gz)
        }
        return output
    }

    /// Rows of `a` and `c` alternated: a_0, c_0, a_1, c_1, ...
    static func interleave(_ a: [Double], _ c: [Double], rows: Int, width: Int) -> [Double] {
        var out = [Double](repeating: 0, count: 2 * rows * width)
        for i in 0..<rows {
            for k in 0..<width {
                out[(2 * i) * width + k] = a[i * width + k]
                out[(2 * i + 1) * width + k] = c[i * width + k]
            }
        }
        return out
    }

    /// A_{x,i} = α Σ_m w_m d_m, w = softmax_m(τ⁺ d), d_m = ‖z_i^x − z_i^m‖² (m ≠ x), averaged over x.
    static func attraction(
        _ z: [Double], samples b: Int, views v: Int, width d: Int, parameters: Parameters,
        values: inout [Double], gradient gz: inout [Double]
    ) {
        let alpha = parameters.alpha, tau = parameters.tauPositive
        withMutableBuffers(&values, &gz) { out, g in
            Parallel.forEachRange(b, costPerRow: v * v * d) { range in
                var dist = [Double](repeating: 0, count: v), w = dist
                for i in range {
                    let sample = i * v * d
                    for x in 0..<v {
                        let zx = sample + x * d
                        var top = -Double.infinity
                        for m in 0..<v where m != x {
                            let zm = sample + m * d
                            var s = 0.0
                            for k in 0..<d {
                                let t = z[zx + k] - z[zm + k]
                                s += t * t
                            }
                            dist[m] = s
                            top = max(top, tau * s)
                        }
                        var total = 0.0
                        for m in 0..<v where m != x {
                            w[m] = exp(tau * dist[m] - top)
                            total += w[m]
                        }
                        var mean = 0.0
                        for m in 0..<v where m != x {
                            w[m] /= total
                            mean += w[m] * dist[m]
                        }
                        out[i] += alpha * mean / Double(v)
                        for m in 0..<v where m != x {
                            let da = alpha * w[m] * (1 + tau * (dist[m] - mean)) / Double(v)
                            let zm = sample + m * d
                            for k in 0..<d {
                                let t = 2 * da * (z[zx + k] - z[zm + k])
                                g[zx + k] += t
                                g[zm + k] -= t
                            }
                        }
                    }
                }
            }
        }
    }

    /// R_{xy,i} = −β Σ_{j≠i} w_j e_j, w = softmax_j(−τ⁻ e), e_j = ‖z_i^x − z_j^y‖², divided by
    /// the number of view pairs (`scale` = β/|pairs|). The gradient goes through two GEMMs:
    /// ∂/∂a_i = 2(Σ_j c_ij) a_i − 2(C·B)_i and ∂/∂b_j = 2(Σ_i c_ij) b_j − 2(Cᵀ·A)_j.
    static func repulsion(
        _ z: [Double], samples n: Int, views v: Int, width d: Int, x: Int, y: Int, scale: Double, tau: Double,
        values: inout [Double], gradient gz: inout [Double], wantGradient: Bool
    ) {
        var a = [Double](repeating: 0, count: n * d), bv = a
        for i in 0..<n {
            for k in 0..<d {
                a[i * d + k] = z[(i * v + x) * d + k]
                bv[i * d + k] = z[(i * v + y) * d + k]
            }
        }
        // C [n][n]: ∂R/∂e_ij, with c_ii = 0.
        var c = [Double](repeating: 0, count: n * n)
        withMutableBuffers(&values, &c) { out, cm in
            Parallel.forEachRange(n, costPerRow: n * d) { range in
                var e = [Double](repeating: 0, count: n)
                for i in range {
                    var low = Double.infinity
                    for j in 0..<n where j != i {
                        var s = 0.0
                        for k in 0..<d {
                            let t = a[i * d + k] - bv[j * d + k]
                            s += t * t
                        }
                        e[j] = s
                        low = min(low, s)
                    }
                    var total = 0.0
                    for j in 0..<n where j != i {
                        let w = exp(-tau * (e[j] - low))
                        cm[i * n + j] = w
                        total += w
                    }
                    var mean = 0.0
                    for j in 0..<n where j != i {
                        cm[i * n + j] /= total
                        mean += cm[i * n + j] * e[j]
                    }
                    out[i] -= scale * mean
                    for j in 0..<n where j != i {
                        let w = cm[i * n + j]
                        cm[i * n + j] = -scale * (w - tau * w * (e[j] - mean))
                    }
                }
            }
        }
        guard wantGradient else { return }
        var cb = [Double](repeating: 0, count: n * d), cta = cb
        Contrastive.gemm(.none, .none, m: n, n: d, k: n, alpha: 1, a: c, b: bv, c: &cb)
        Contrastive.gemm(.transpose, .none, m: n, n: d, k: n, alpha: 1, a: c, b: a, c: &cta)
        for i in 0..<n {
            var rowSum = 0.0, columnSum = 0.0
            for j in 0..<n {
                rowSum += c[i * n + j]
                columnSum += c[j * n + i]
            }
            for k in 0..<d {
                gz[(i * v + x) * d + k] += 2 * (rowSum * a[i * d + k] - cb[i * d + k])
                gz[(i * v + y) * d + k] += 2 * (columnSum * bv[i * d + k] - cta[i * d + k])
            }
        }
    }
}
