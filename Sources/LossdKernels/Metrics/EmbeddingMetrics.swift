#if canImport(Glibc)
    import Glibc
#endif

/// Embedding-space metrics (docs/embedding-metrics.md): what a contrastive or
/// metric-learning run watches besides its loss.
///
/// * alignment (Wang & Isola 2020, "Understanding Contrastive Representation Learning
///   through Alignment and Uniformity on the Hypersphere"): the mean of `‖u − v‖₂^α` over
///   positive pairs;
/// * uniformity (same paper): `log mean_{i<j} exp(−t ‖u_i − u_j‖²)`;
/// * tolerance (Wang & Liu 2021, "Understanding the Behaviour of Contrastive Loss"): the
///   mean cosine over same-label pairs i < j;
/// * mean positive / negative cosine;
/// * nc1 (Papyan, Han & Donoho 2020, "Prevalence of Neural Collapse during the Terminal
///   Phase of Deep Learning Training"): `tr(Σ_W Σ_B⁺) / C` (``nc1(rows:classes:classCount:)``).
///
/// Everything is float64. The all-pairs quantities cost O(N²·D) through GEMM on row
/// blocks of the Gram matrix (``blockRows`` rows against all later rows at a time), so
/// the N×N Gram is never held: the working set is `blockRows · N` values besides the
/// rows. The cosine means need only O(N·D) (sums of unit rows per class). Long loops
/// poll ``Cancellation`` between blocks; a cancelled call returns meaningless numbers
/// that the caller discards.
public enum EmbeddingMetrics {
    /// Most rows per input (the service answers 413 beyond).
    public static let maxRows = 16_384
    /// Rows of the Gram matrix computed per GEMM call (the working set is `blockRows · N`
    /// float64: 32 MiB at N = 16384).
    public static let blockRows = 256

    /// The metrics, in the order the default list and responses use.
    public enum Metric: String, CaseIterable, Sendable {
        case alignment, uniformity, tolerance, nc1
        case meanPositiveCosine = "mean_positive_cosine"
        case meanNegativeCosine = "mean_negative_cosine"

        /// Whether the metric is a mean of true cosines (which needs non-zero rows).
        public var isCosine: Bool { self == .tolerance || self == .meanPositiveCosine || self == .meanNegativeCosine }
    }

    /// Which input a row belongs to, for errors.
    public enum Field: String, Sendable {
        case embeddings, queries, keys
    }

    /// A row that cannot be normalised (all zeros).
    public struct ZeroRow: Error, Equatable, Sendable {
        public let field: Field
        public let row: Int
    }

    /// `x / ‖x‖₂` row by row, scaling by the row's largest magnitude first so that the
    /// squared norm neither overflows nor underflows; a zero row is an error.
    public static func unitRows(_ x: Matrix, field: Field) throws(ZeroRow) -> Matrix {
        var out = x.values
        let d = x.cols
        for i in 0..<x.rows {
            var m = 0.0
            for j in 0..<d { m = max(m, abs(out[i * d + j])) }
            guard m > 0 else { throw ZeroRow(field: field, row: i) }
            var s = 0.0
            for j in 0..<d {
                out[i * d + j] /= m
                s += out[i * d + j] * out[i * d + j]
            }
            let norm = s.squareRoot()
            for j in 0..<d { out[i * d + j] /= norm }
        }
        return Matrix(rows: x.rows, cols: d, values: out)
    }

    /// Dense class indices 0..<C of arbitrary integer labels, classes in increasing label
    /// order, and C.
    public static func classIndices(_ labels: [Int]) -> (indices: [Int], count: Int) {
        let distinct = Array(Set(labels)).sorted()
        var index: [Int: Int] = [:]
        for (c, label) in distinct.enumerated() { index[label] = c }
        return (labels.map { index[$0] ?? 0 }, distinct.count)
    }

    // MARK: All pairs i < j through blocked GEMM

    /// Sums over the unordered pairs i < j of one set of rows.
    public struct PairSums: Sendable, Equatable {
        /// Number of pairs i < j.
        public var pairs = 0
        /// `exp(−t d²_ij)` summed as `expSum · e^expMax` (a streaming log-sum-exp).
        public var expMax = -Double.infinity
        public var expSum = 0.0
        /// Same-label pairs and the sum of `d_ij^α` over them.
        public var positivePairs = 0
        public var positivePowerSum = 0.0

        /// `log mean exp(−t d²)`; nil without a pair.
        public var uniformity: Double? {
            pairs > 0 && expSum > 0 ? expMax + log(expSum) - log(Double(pairs)) : nil
        }

        /// Mean `d^α` over same-label pairs; nil without one.
        public var alignment: Double? { positivePairs > 0 ? positivePowerSum / Double(positivePairs) : nil }

        /// Folds one row's partial sums in (log-sum-exp rescaled to the larger maximum).
        mutating func add(pairs rowPairs: Int, max m: Double, sum s: Double, positives: Int, power: Double) {
            pairs += rowPairs
            positivePairs += positives
            positivePowerSum += power
            guard s > 0 else { return }
            if m > expMax {
                expSum = expSum * exp(expMax - m) + s
                expMax = m
            } else {
                expSum += s * exp(m - expMax)
            }
        }
    }

    /// Below this ratio of `d²_ij` to `‖v_i‖² + ‖v_j‖²` the Gram identity
    /// `d² = ‖v_i‖² + ‖v_j‖² − 2 v_i·v_j` has lost too many digits for `d^α` with α < 2
    /// (its absolute error is a few ulp of the norms, so `(d²)^(α/2)` would amplify it),
    /// and the pair's distance is recomputed from the difference of the rows.
    static let nearPairRatio = 1e-3

    /// Uniformity (`t` non-nil) and label alignment (`alpha` and `classes` non-nil) of the
    /// rows `v` over the pairs i < j: row block by row block, the Gram rows `v_i · v_j`
    /// for j ≥ the block's first row come from one GEMM, `d²_ij = ‖v_i‖² + ‖v_j‖² − 2 g_ij`
    /// (clamped at 0), and each row's partial sums are folded in row order (the result
    /// does not depend on the thread count).
    public static func pairSums(rows v: Matrix, classes: [Int]?, alpha: Double?, t: Double?) -> PairSums {
        let n = v.rows, d = v.cols
        var total = PairSums()
        guard n >= 2 else { return total }
        let wantAlignment = alpha != nil && classes != nil
        let norms = rowSquaredNorms(v)
        let block = min(blockRows, n)
        var gram = [Double](repeating: 0, count: block * n)
        // Per-row partials of one block: pairs, max, sum, positives, power sum.
        var rowMax = [Double](repeating: 0, count: block)
        var rowSum = [Double](repeating: 0, count: block)
        var rowPositives = [Int](repeating: 0, count: block)
        var rowPower = [Double](repeating: 0, count: block)
        v.values.withUnsafeBufferPointer { all in
            for r0 in stride(from: 0, to: n, by: block) {
                if Cancellation.isCancelled { return }
                let r1 = min(n, r0 + block), m = r1 - r0, width = n - r0
                gram.withUnsafeMutableBufferPointer { g in
                    let c = UnsafeMutableBufferPointer(rebasing: g[0..<(m * width)])
                    try? BLAS.gemm(
                        .none, .transpose, m: m, n: width, k: d,
                        a: UnsafeBufferPointer(rebasing: all[(r0 * d)..<(r1 * d)]),
                        b: UnsafeBufferPointer(rebasing: all[(r0 * d)..<(n * d)]), c: c)
                    rowMax.withUnsafeMutableBufferPointer { rMax in
                        rowSum.withUnsafeMutableBufferPointer { rSum in
                            rowPositives.withUnsafeMutableBufferPointer { rPos in
                                rowPower.withUnsafeMutableBufferPointer { rPow in
                                    Parallel.forEachRange(m, costPerRow: width * 8) { range in
                                        for local in range {
                                            let i = r0 + local
                                            // Columns j = i+1 ..< n of row i sit at offsets (i+1-r0) ..< width.
                                            let row = UnsafeMutableBufferPointer(
                                                rebasing: g[(local * width + i + 1 - r0)..<(local * width + width)])
                                            var positives = 0, power = 0.0
                                            for (k, j) in (i + 1..<n).enumerated() {
                                                let d2 = max(0, norms[i] + norms[j] - 2 * row[k])
                                                if wantAlignment, let alpha, let classes, classes[i] == classes[j] {
                                                    positives += 1
                                                    power += distancePower(
                                                        d2, alpha: alpha, i: i, j: j, norms: norms, rows: all, d: d)
                                                }
                                                row[k] = d2
                                            }
                                            rPos[local] = positives
                                            rPow[local] = power
                                            if let t, !row.isEmpty {
                                                for k in 0..<row.count { row[k] *= -t }
                                                let (mx, s) = TwoPassSoftmax.expAboveMax(UnsafeBufferPointer(row), into: row)
                                                rMax[local] = mx
                                                rSum[local] = s
                                            } else {
                                                rMax[local] = -.infinity
                                                rSum[local] = 0
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                for local in 0..<m {
                    total.add(
                        pairs: n - 1 - (r0 + local), max: rowMax[local], sum: rowSum[local],
                        positives: rowPositives[local], power: rowPower[local])
                }
            }
        }
        return total
    }

    /// `d^α` from `d²` of the Gram identity, or from the difference of rows i and j when
    /// α < 2 and the pair is near (see ``nearPairRatio``).
    @inline(__always)
    static func distancePower(
        _ d2: Double, alpha: Double, i: Int, j: Int, norms: [Double], rows: UnsafeBufferPointer<Double>, d: Int
    ) -> Double {
        if alpha == 2 { return d2 }
        var squared = d2
        if alpha < 2, d2 < nearPairRatio * (norms[i] + norms[j]) {
            squared = 0
            for p in 0..<d {
                let diff = rows[i * d + p] - rows[j * d + p]
                squared += diff * diff
            }
        }
        return pow(squared.squareRoot(), alpha)
    }

    /// `‖v_i‖²` of every row.
    static func rowSquaredNorms(_ v: Matrix) -> [Double] {
        var norms = [Double](repeating: 0, count: v.rows)
        for i in 0..<v.rows {
            var s = 0.0
            for p in 0..<v.cols { s += v.values[i * v.cols + p] * v.values[i * v.cols + p] }
            norms[i] = s
        }
        return norms
    }

    // MARK: Cosines from class sums, O(N·D)

    /// Mean cosine over same-label and over different-label pairs i < j of unit rows
    /// `u`, from the class sums `s_c = Σ_{y_i = c} u_i`: the same-label pairs of class c
    /// sum to `(‖s_c‖² − Σ_{y_i=c} ‖u_i‖²) / 2`, and the different-label pairs to
    /// `Σ_c s_c · Σ_{c' < c} s_c'` (a sum of products of distinct classes, so nothing
    /// cancels that the cosines themselves do not). Nil where the pair set is empty.
    public static func cosineMeans(unitRows u: Matrix, classes: [Int], classCount: Int) -> (positive: Double?, negative: Double?) {
        let d = u.cols
        var sums = [Double](repeating: 0, count: classCount * d)
        var squares = [Double](repeating: 0, count: classCount)
        var counts = [Int](repeating: 0, count: classCount)
        for i in 0..<u.rows {
            let c = classes[i]
            counts[c] += 1
            for p in 0..<d {
                let x = u.values[i * d + p]
                sums[c * d + p] += x
                squares[c] += x * x
            }
        }
        var samePairs = 0, same = 0.0
        for c in 0..<classCount {
            samePairs += counts[c] * (counts[c] - 1) / 2
            var s2 = 0.0
            for p in 0..<d { s2 += sums[c * d + p] * sums[c * d + p] }
            same += (s2 - squares[c]) / 2
        }
        var prefix = [Double](repeating: 0, count: d)
        var different = 0.0
        for c in 0..<classCount {
            for p in 0..<d { different += sums[c * d + p] * prefix[p] }
            for p in 0..<d { prefix[p] += sums[c * d + p] }
        }
        let n = u.rows
        let differentPairs = n * (n - 1) / 2 - samePairs
        return (
            samePairs > 0 ? same / Double(samePairs) : nil,
            differentPairs > 0 ? different / Double(differentPairs) : nil
        )
    }

    // MARK: Paired rows

    /// Mean `‖q_i − k_i‖₂^α` over the N matched rows.
    public static func pairedAlignment(queries q: Matrix, keys k: Matrix, alpha: Double) -> Double {
        let d = q.cols
        var total = 0.0
        for i in 0..<q.rows {
            var s = 0.0
            for p in 0..<d {
                let diff = q.values[i * d + p] - k.values[i * d + p]
                s += diff * diff
            }
            total += alpha == 2 ? s : pow(s.squareRoot(), alpha)
        }
        return total / Double(q.rows)
    }

    /// Mean cosine of the N matched pairs (q_i, k_i) and of the N(N−1) unmatched ordered
    /// pairs (q_i, k_j), i ≠ j, of unit rows: the latter is
    /// `((Σ_i q_i) · (Σ_j k_j) − Σ_i q_i · k_i) / (N(N−1))`; nil for N = 1.
    public static func pairedCosines(unitQueries q: Matrix, unitKeys k: Matrix) -> (positive: Double, negative: Double?) {
        let n = q.rows, d = q.cols
        var matched = 0.0
        var sq = [Double](repeating: 0, count: d), sk = [Double](repeating: 0, count: d)
        for i in 0..<n {
            for p in 0..<d {
                matched += q.values[i * d + p] * k.values[i * d + p]
                sq[p] += q.values[i * d + p]
                sk[p] += k.values[i * d + p]
            }
        }
        var all = 0.0
        for p in 0..<d { all += sq[p] * sk[p] }
        return (matched / Double(n), n > 1 ? (all - matched) / Double(n * (n - 1)) : nil)
    }
}
