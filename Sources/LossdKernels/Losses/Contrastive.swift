#if canImport(Glibc)
    import Glibc
#endif

/// Shared pieces of the embedding losses (docs/losses.md §14): row normalisation and its backward
/// pass, similarity and gradient GEMMs, and the masked-softmax core of nt_xent and supcon.
public enum Contrastive {
    /// The most entries a similarity matrix may have: 2^26 = 67,108,864 float64 values
    /// (512 MiB), e.g. 4096 x 4096 for info_nce and supcon, or nt_xent with N = 4096
    /// (8192 x 8192). The matrix grows with the square of the row count while the body
    /// grows linearly, so a small body of many short rows could otherwise ask for terabytes.
    public static let maxSimilarityEntries = 1 << 26

    /// Rejects, before anything is allocated, inputs whose `rows x cols` similarity matrix
    /// would exceed `maxSimilarityEntries`: `content_too_large` (HTTP 413) at the last of
    /// `inputs`, e.g. "`queries` and `keys` need a 100000 x 100000 similarity matrix; the
    /// limit is 67108864 entries".
    public static func checkSimilaritySize(rows: Int, cols: Int, inputs: [String]) throws(LossInputError) {
        let (entries, overflow) = rows.multipliedReportingOverflow(by: cols)
        guard overflow || entries > maxSimilarityEntries else { return }
        let names = inputs.map { "`\($0)`" }.joined(separator: " and ")
        throw LossInputError(
            .contentTooLarge, field: "/\(inputs.last ?? "")",
            "\(names) \(inputs.count > 1 ? "need" : "needs") a \(rows) x \(cols) similarity matrix; the limit is \(maxSimilarityEntries) entries"
        )
    }

    /// The input checks of a labelled-embeddings loss (supcon, tcm): one label per row of
    /// `embeddings`, and an N x N similarity matrix within `maxSimilarityEntries`, in that
    /// order so that both losses answer the same error first. Returns the embeddings' (N, D).
    @discardableResult
    public static func checkLabelledEmbeddings(_ embeddings: Matrix, labels: [Int]) throws(LossInputError) -> (rows: Int, width: Int) {
        try Validate.count(labels.count, name: "labels", expected: embeddings.rows)
        try checkSimilaritySize(rows: embeddings.rows, cols: embeddings.rows, inputs: ["embeddings"])
        return (embeddings.rows, embeddings.cols)
    }

    /// Unit-length rows of a row-major `[rows][width]` buffer and each row's original norm.
    public struct UnitRows: Sendable {
        public var values: [Double]
        /// ‖E_r‖, computed as max|E_r| · ‖E_r / max|E_r|‖ so that it neither overflows nor underflows early.
        public var norms: [Double]
    }

    /// Normalises every row (docs/losses.md §14.1: divide by the row's max |entry|, then by the L2
    /// norm). A zero row, or one whose norm is below `minimumNorm` (the second-wave losses use
    /// 1e-12), is `invalid_input` at `field` and the index `index(r)` gives (e.g. `[i]`, `[i, v]`).
    public static func unitRows(
        _ e: [Double], rows: Int, width: Int, field: String, minimumNorm: Double = 0, index: (Int) -> [Int]
    ) throws(LossInputError) -> UnitRows {
        var u = [Double](repeating: 0, count: rows * width)
        var norms = [Double](repeating: 0, count: rows)
        for r in 0..<rows {
            let base = r * width
            var m = 0.0
            for k in base..<(base + width) { m = max(m, abs(e[k])) }
            var ss = 0.0
            if m > 0 { for k in base..<(base + width) { ss += (e[k] / m) * (e[k] / m) } }
            guard m > 0, ss.squareRoot() * m >= minimumNorm else {
                let idx = index(r)
                throw LossInputError(
                    .invalidInput, field: "/\(field)" + idx.map { "/\($0)" }.joined(),
                    "`\(field)\(idx.map { "[\($0)]" }.joined())` has zero norm and cannot be normalized")
            }
            for k in base..<(base + width) { u[k] = e[k] / m }
            let n = ss.squareRoot()
            for k in base..<(base + width) { u[k] /= n }
            norms[r] = n * m
        }
        return UnitRows(values: u, norms: norms)
    }

    /// Turns ∂/∂u into ∂/∂E in place: `g_r ← (g_r − u_r (u_r·g_r)) / ‖E_r‖`.
    public static func backward(_ g: inout [Double], through unit: UnitRows, width: Int) {
        let rows = unit.norms.count
        for r in 0..<rows {
            let base = r * width
            var dot = 0.0
            for k in base..<(base + width) { dot += unit.values[k] * g[k] }
            let n = unit.norms[r]
            for k in base..<(base + width) { g[k] = (g[k] - unit.values[k] * dot) / n }
        }
    }

    /// `C = alpha · op(A) · op(B) + beta · C` on row-major arrays whose shapes the caller built.
    public static func gemm(
        _ transA: BLAS.Transpose, _ transB: BLAS.Transpose, m: Int, n: Int, k: Int,
        alpha: Double, a: [Double], b: [Double], beta: Double = 0, c: inout [Double]
    ) {
        withBuffers(a, b) { pa, pb in
            c.withUnsafeMutableBufferPointer { pc in
                do {
                    try BLAS.gemm(transA, transB, m: m, n: n, k: k, alpha: alpha, a: pa, b: pb, beta: beta, c: pc)
                } catch {
                    preconditionFailure("contrastive GEMM with inconsistent shapes: \(error)")
                }
            }
        }
    }

    /// Per-anchor loss of nt_xent and supcon over unit (or raw) rows `u` [R][D]:
    /// `ℓ_a = −factor · mean_{p∈P(a)} [S_ap − LSE_{b≠a} S_ab]` with `S = u·uᵀ/τ` and
    /// `P(a)` the other members of `a`'s group (0 when there are none), and ∂(Σ_a ℓ_a)/∂u.
    public static func groupedCore(
        _ u: [Double], rows: Int, width: Int, temperature: Double, group: [Int], members: [[Int]],
        factor: Double, gradient: Bool
    ) -> (values: [Double], gradient: [Double]) {
        let n = rows, d = width
        var s = [Double](repeating: 0, count: n * n)
        gemm(.none, .transpose, m: n, n: n, k: d, alpha: 1 / temperature, a: u, b: u, c: &s)
        var values = [Double](repeating: 0, count: n)
        // S is overwritten row by row with G (∂ℓ_a/∂S_ab).
        withMutableBuffers(&values, &s) { out, sm in
            Parallel.forEachRange(n, costPerRow: n) { range in
                var others = [Double](repeating: 0, count: max(n - 1, 1))
                var p = [Double](repeating: 0, count: max(n - 1, 1))
                for a in range {
                    let positives = members[group[a]].count - 1
                    let row = a * n
                    guard positives > 0, n > 1 else {
                        if gradient { for b in 0..<n { sm[row + b] = 0 } }
                        continue
                    }
                    // The row without its diagonal: b < a at b, b > a at b − 1.
                    for b in 0..<a { others[b] = sm[row + b] }
                    for b in (a + 1)..<n { others[b - 1] = sm[row + b] }
                    let (m, excess) = others.withUnsafeBufferPointer { TwoPassSoftmax.logSumExpAboveMax($0) }
                    var total = 0.0
                    for q in members[group[a]] where q != a { total += (m - sm[row + q]) + excess }
                    let scale = factor / Double(positives)
                    out[a] = scale * total
                    guard gradient else { continue }
                    others.withUnsafeBufferPointer { o in
                        p.withUnsafeMutableBufferPointer { TwoPassSoftmax.expShifted(o, shift: m + excess, into: $0) }
                    }
                    for b in 0..<a { sm[row + b] = factor * p[b] }
                    sm[row + a] = 0
                    for b in (a + 1)..<n { sm[row + b] = factor * p[b - 1] }
                    for q in members[group[a]] where q != a { sm[row + q] -= scale }
                }
            }
        }
        guard gradient else { return (values, []) }
        // ∂/∂u_a = (1/τ) Σ_b (G_ab + G_ba) u_b.
        var g = [Double](repeating: 0, count: n * d)
        gemm(.none, .none, m: n, n: d, k: n, alpha: 1 / temperature, a: s, b: u, c: &g)
        gemm(.transpose, .none, m: n, n: d, k: n, alpha: 1 / temperature, a: s, b: u, beta: 1, c: &g)
        return (values, g)
    }

    /// The Gram matrix `u·uᵀ` [rows][rows] of row-major `u` [rows][width], exactly symmetric
    /// (the upper triangle mirrored onto the lower), so that a pair's cosine, and with it the
    /// pair's membership in a threshold set, does not depend on the pair's order.
    public static func symmetricGram(_ u: [Double], rows: Int, width: Int) -> [Double] {
        var g = [Double](repeating: 0, count: rows * rows)
        gemm(.none, .transpose, m: rows, n: rows, k: width, alpha: 1, a: u, b: u, c: &g)
        for i in 0..<rows {
            for j in (i + 1)..<rows { g[j * rows + i] = g[i * rows + j] }
        }
        return g
    }

    /// Every value finite, else `value_overflow` (docs/losses.md §1.4).
    static func requireFinite(_ arrays: [Double]...) throws(LossInputError) {
        for array in arrays where !array.allSatisfy(\.isFinite) { throw .overflow }
    }
}
