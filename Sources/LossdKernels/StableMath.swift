#if canImport(Glibc)
    import Glibc
#endif

/// Numerically stable primitives (docs/losses.md §1.1): each exact to a few ulp and free of
/// overflow for finite input.
public enum StableMath {
    /// log Σ exp(v_k) without overflow (the Two-Pass kernel); -∞ for an empty row.
    @inline(__always)
    public static func logSumExp(_ row: UnsafeBufferPointer<Double>) -> Double {
        TwoPassSoftmax.logSumExp(row)
    }

    /// softplus(x) = max(x, 0) + log1p(exp(-|x|)).
    @inline(__always)
    public static func softplus(_ x: Double) -> Double {
        max(x, 0) + log1p(exp(-abs(x)))
    }

    /// log σ(x) = -softplus(-x).
    @inline(__always)
    public static func logSigmoid(_ x: Double) -> Double { -softplus(-x) }

    /// σ(x) without overflow for either sign.
    @inline(__always)
    public static func sigmoid(_ x: Double) -> Double {
        if x >= 0 { return 1 / (1 + exp(-x)) }
        let e = exp(x)
        return e / (1 + e)
    }

    /// 1 - exp(a) for a probability's logarithm a ≤ 0, without cancellation.
    @inline(__always)
    public static func oneMinusExp(_ a: Double) -> Double { -expm1(a) }

    /// log(1 − eᵃ) for a ≤ 0 without cancellation: `log(−expm1(a))` above −ln 2, else
    /// `log1p(−exp(a))`; −∞ at a = 0.
    @inline(__always)
    public static func log1mexp(_ a: Double) -> Double {
        a > -TwoPassSoftmax.ln2 ? log(-expm1(a)) : log1p(-exp(a))
    }

    /// log(softplus(x)); below −20 the series `x + log1p(−eˣ/2)`, because softplus(x)
    /// underflows to 0 below about −745 while its logarithm is still ≈ x.
    @inline(__always)
    public static func logSoftplus(_ x: Double) -> Double {
        x < -20 ? x + log1p(-exp(x) / 2) : log(softplus(x))
    }

    /// log cosh(x) = |x| + log1p(e^(−2|x|)) − ln 2, finite for every finite x.
    @inline(__always)
    public static func logCosh(_ x: Double) -> Double {
        let a = abs(x)
        return a + log1p(exp(-2 * a)) - TwoPassSoftmax.ln2
    }
}
