#if canImport(Glibc)
    import Glibc
#endif

/// Checks and stable primitives shared by the ldr_kl, aldr_kl, pass_at_n, kd_kl and
/// dhkd_logit kernels that `Validate` and `StableMath` do not (yet) provide.
enum RobustAndDistillationSupport {
    /// Hard labels: one per row, each in [0, classes) (spec §1.4 `invalid_label`).
    static func labels(_ labels: [Int], rows: Int, classes: Int) throws(LossInputError) {
        try Validate.count(labels.count, name: "labels", expected: rows)
        for (i, y) in labels.enumerated() where !(0..<classes).contains(y) {
            throw LossInputError(.invalidLabel, field: "/labels/\(i)", "`labels[\(i)]` = \(y) is out of range [0, \(classes))")
        }
    }

    /// log(softplus(x)); below −20 the series `x + log1p(−eˣ/2)`, because softplus(x)
    /// underflows to 0 below about −745 while its logarithm is still ≈ x (spec §1.1).
    @inline(__always)
    static func logSoftplus(_ x: Double) -> Double {
        x < -20 ? x + log1p(-exp(x) / 2) : log(StableMath.softplus(x))
    }

    /// log(1 − eᵃ) for a ≤ 0 without cancellation (spec §1.1); −∞ at a = 0.
    @inline(__always)
    static func log1mexp(_ a: Double) -> Double {
        a > -0.693_147_180_559_945_3 ? log(-expm1(a)) : log1p(-exp(a))
    }

    /// log cosh(x) = |x| + log1p(e^(−2|x|)) − ln 2, finite for every finite x.
    @inline(__always)
    static func logCosh(_ x: Double) -> Double {
        let a = abs(x)
        return a + log1p(exp(-2 * a)) - 0.693_147_180_559_945_3
    }

    /// Row `r` of a row-major buffer with `cols` columns.
    @inline(__always)
    static func row(_ buffer: UnsafeBufferPointer<Double>, _ r: Int, _ cols: Int) -> UnsafeBufferPointer<Double> {
        UnsafeBufferPointer(rebasing: buffer[(r * cols)..<((r + 1) * cols)])
    }

    /// log-softmax of `row` into `out`: (x_k − max) − excess, exact for the maximum.
    @inline(__always)
    static func logSoftmax(_ row: UnsafeBufferPointer<Double>, into out: UnsafeMutableBufferPointer<Double>) {
        let (m, excess) = TwoPassSoftmax.logSumExpAboveMax(row)
        for k in 0..<row.count { out[k] = (row[k] - m) - excess }
    }
}
