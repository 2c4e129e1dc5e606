import CLossdKernels

#if canImport(Glibc)
    import Glibc
#endif

/// The Two-Pass softmax algorithm (Dukhan & Ablavatski 2020; docs/ensembles.md §4):
/// exponentials are kept as (mantissa, power-of-two exponent) pairs, so the sum of a row's
/// exponentials needs no max pass, never overflows, and takes one read of the row.
///
/// The row loops live in `CLossdKernels` (clang vector types with fused multiply-adds);
/// rows whose values are too large for the kernels' exact range reduction fall back to a
/// max-shifted scalar sum here.
public enum TwoPassSoftmax {
    /// Σ exp(x_i) = v · 2^e for a float32 row (pass 1), or nil when some |x| ≥ 2.9e6.
    public static func extendedSum(_ row: UnsafeBufferPointer<Float>) -> (v: Float, e: Float)? {
        guard let base = row.baseAddress, row.count > 0 else { return (0, -.infinity) }
        var v: Float = 0, e: Float = 0
        guard lossd_extsum_f32(base, Int64(row.count), &v, &e) == 0 else { return nil }
        return (v, e)
    }

    /// Σ exp(x_i) = v · 2^e for a float64 row (pass 1), with the row's maximum; nil when
    /// some |x| ≥ 1e15.
    public static func extendedSum(_ row: UnsafeBufferPointer<Double>) -> (v: Double, e: Double, max: Double)? {
        guard let base = row.baseAddress, row.count > 0 else { return (0, -.infinity, -.infinity) }
        var v = 0.0, e = 0.0, m = 0.0
        guard lossd_extsum_f64(base, Int64(row.count), &v, &e, &m) == 0 else { return nil }
        return (v, e, m)
    }

    /// The row's maximum m and `LSE(x) − m ≥ 0`, each exact to an ulp, so that
    /// `LSE − x_k = (m − x_k) + excess` keeps full accuracy when x_k is the maximum
    /// (e.g. logits [1e4, −1e4, 0] with label 0 give exactly 0).
    public static func logSumExpAboveMax(_ row: UnsafeBufferPointer<Double>) -> (max: Double, excess: Double) {
        if let (v, e, m) = extendedSum(row) {
            // e·ln2Hi is exact (32-bit constant, |e| < 2^21), and close to m: no cancellation loss.
            return (m, (e * ln2Hi - m) + e * ln2Lo + log(v))
        }
        guard var m = row.first else { return (-.infinity, 0) }
        for x in row where x > m { m = x }
        var s = 0.0
        for x in row { s += exp(x - m) }
        return (m, log(s))
    }

    /// log Σ exp(x_i) of a float32 row, computed in float32 (relative error about 1e-6).
    public static func logSumExp(_ row: UnsafeBufferPointer<Float>) -> Float {
        if let (v, e) = extendedSum(row) { return Float(log(Double(v)) + Double(e) * ln2) }
        var m = -Float.infinity
        for x in row where x > m { m = x }
        var s = 0.0
        for x in row { s += exp(Double(x - m)) }
        return Float(Double(m) + log(s))
    }

    /// log Σ exp(x_i) of a float64 row; -∞ for an empty row.
    public static func logSumExp(_ row: UnsafeBufferPointer<Double>) -> Double {
        let (m, excess) = logSumExpAboveMax(row)
        return m + excess
    }

    /// Pass 2: y_i = exp(x_i − shift) for shift ≥ max(x) (the row's log-sum-exp gives the
    /// softmax). `y` must hold as many values as `x`.
    public static func expShifted(_ x: UnsafeBufferPointer<Double>, shift: Double, into y: UnsafeMutableBufferPointer<Double>) {
        precondition(y.count >= x.count, "output row too short")
        guard let xb = x.baseAddress, let yb = y.baseAddress, x.count > 0 else { return }
        lossd_exp_shifted_f64(xb, Int64(x.count), shift, yb)
    }

    /// The row's maximum m and, in `y`, exp(x_k − m), returning their sum s ∈ [1, n]: the
    /// softmax is y / s and `LSE − m = log s`, from one exponential an element (the
    /// gradient path, which needs the exponentials anyway). `y` must hold as many values as
    /// `x`, which must be finite and non-empty.
    public static func expAboveMax(_ x: UnsafeBufferPointer<Double>, into y: UnsafeMutableBufferPointer<Double>) -> (max: Double, sum: Double) {
        precondition(y.count >= x.count, "output row too short")
        guard let xb = x.baseAddress, let yb = y.baseAddress, x.count > 0 else { return (-.infinity, 0) }
        let m = lossd_max_f64(xb, Int64(x.count))
        return (m, lossd_exp_shifted_sum_f64(xb, Int64(x.count), m, yb))
    }

    /// log-softmax of `row` into `out` (at least as long): `(x_k − max) − excess`, exact for
    /// the maximum.
    @inline(__always)
    public static func logSoftmax(_ row: UnsafeBufferPointer<Double>, into out: UnsafeMutableBufferPointer<Double>) {
        let (m, excess) = logSumExpAboveMax(row)
        for k in 0..<row.count { out[k] = (row[k] - m) - excess }
    }

    /// log softmax(row / T) into `out`, with `scratch` (at least `row.count` entries) left holding row / T:
    /// the temperature-scaled log-probabilities of the distillation losses.
    @inline(__always)
    static func logSoftmax(
        _ row: UnsafeBufferPointer<Double>, temperature t: Double, scratch: UnsafeMutableBufferPointer<Double>,
        into out: UnsafeMutableBufferPointer<Double>
    ) {
        for k in 0..<row.count { scratch[k] = row[k] / t }
        logSoftmax(UnsafeBufferPointer(rebasing: scratch[..<row.count]), into: out)
    }

    static let ln2 = 0.693_147_180_559_945_3
    /// fdlibm's split of ln 2: ln2Hi has 32 significant bits.
    static let ln2Hi = 6.931_471_803_691_238_164_90e-01
    static let ln2Lo = 1.908_214_929_270_587_700_02e-10
}

extension UnsafeBufferPointer {
    /// Row `r` of a row-major buffer whose rows have `width` entries.
    @inline(__always)
    func row(_ r: Int, width: Int) -> UnsafeBufferPointer<Element> {
        UnsafeBufferPointer(rebasing: self[(r * width)..<((r + 1) * width)])
    }
}

extension Matrix {
    /// A matrix of the same shape whose row i is written by `body(row i of self, row i of
    /// the result)`, rows split across cores (`costPerEntry` element operations per entry).
    /// The one row loop behind the row-wise softmax, log-softmax and Dirichlet features:
    /// each row is computed on its own, so the result does not depend on the split.
    @inline(__always)
    func mapRows(
        costPerEntry: Int, _ body: (UnsafeBufferPointer<Double>, UnsafeMutableBufferPointer<Double>) -> Void
    ) -> Matrix {
        var out = Matrix(zeros: rows, cols)
        guard rows > 0, cols > 0 else { return out }
        let c = cols
        values.withUnsafeBufferPointer { z in
            out.values.withUnsafeMutableBufferPointer { p in
                let base = p.baseAddress!
                Parallel.forEachRange(rows, costPerRow: costPerEntry * c) { range in
                    for i in range { body(z.row(i, width: c), UnsafeMutableBufferPointer(start: base + i * c, count: c)) }
                }
            }
        }
        return out
    }

    /// Σ_r body(r, row r, max of row r, log Σ exp(row r − max)): a sum over rows of a
    /// log-sum-exp quantity (the NLLs), serial and in row order so the sum is reproducible.
    @inline(__always)
    func sumOverLogSumExpRows(_ body: (_ r: Int, _ row: UnsafeBufferPointer<Double>, _ max: Double, _ excess: Double) -> Double) -> Double {
        let c = cols
        var sum = 0.0
        values.withUnsafeBufferPointer { x in
            for r in 0..<rows {
                let row = x.row(r, width: c)
                let (m, excess) = TwoPassSoftmax.logSumExpAboveMax(row)
                sum += body(r, row, m, excess)
            }
        }
        return sum
    }
}

extension CrossEntropy {
    /// Mean hard-label cross-entropy of float32 logits, `LSE(z) − z_y` per row with the
    /// Two-Pass kernel: one read of the logits, rows split across cores for large batches.
    /// Labels must lie in [0, cols).
    public static func meanFloat32(logits: UnsafeBufferPointer<Float>, rows: Int, cols: Int, labels: UnsafeBufferPointer<Int32>) -> Double {
        var partial = [Double](repeating: 0, count: rows)
        partial.withUnsafeMutableBufferPointer { out in
            Parallel.forEachRange(rows, costPerRow: cols) { range in
                for r in range {
                    let row = UnsafeBufferPointer(rebasing: logits[(r * cols)..<((r + 1) * cols)])
                    out[r] = Double(TwoPassSoftmax.logSumExp(row)) - Double(row[Int(labels[r])])
                }
            }
        }
        return partial.reduce(0, +) / Double(max(rows, 1))
    }
}
