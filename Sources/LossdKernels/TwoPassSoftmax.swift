/// The Two-Pass softmax kernel (Dukhan & Ablavatski 2020; spec ENSEMBLE.md §D) on
/// float32 rows: exponentials are kept as (mantissa, power-of-two exponent) pairs so that
/// the sum needs no max pass and never overflows.
///
/// Precondition: |x| < 1.16e7 (so that x·log2(e) rounds to an exact integer in float32);
/// larger logits belong on the float64 path.
public enum TwoPassSoftmax {
    typealias V = SIMD8<Float>
    typealias I = SIMD8<Int32>

    // XNNPACK's constants: Cody-Waite split of ln 2 and a degree-5 minimax polynomial.
    @inline(__always) static var log2e: Float { 0x1.715476p+0 }
    @inline(__always) static var ln2Hi: Float { 0x1.62E43p-1 }
    @inline(__always) static var ln2Lo: Float { -0x1.05C61p-29 }
    @inline(__always) static var c1: Float { 0x1.FFFFF6p-1 }
    @inline(__always) static var c2: Float { 0x1.FFFDC6p-2 }
    @inline(__always) static var c3: Float { 0x1.555A80p-3 }
    @inline(__always) static var c4: Float { 0x1.573A1Ap-5 }
    @inline(__always) static var c5: Float { 0x1.0F9F9Cp-7 }
    /// 1.5 * 2^23: adding it rounds a float to an integer held in the low mantissa bits.
    @inline(__always) static var magic: Float { 0x1.8p23 }

    /// exp(x) = p * 2^e with p in [1/√2, √2] and e an integer-valued float.
    @inline(__always)
    static func extendedExp(_ x: V) -> (p: V, e: V) {
        let e = (x * log2e + magic) - magic
        var t = x.addingProduct(e, V(repeating: -ln2Hi))
        t = t.addingProduct(e, V(repeating: -ln2Lo))
        var p = t * c5 + c4
        p = p * t + c3
        p = p * t + c2
        p = p * t + c1
        p = p * t + 1
        return (p, e)
    }

    /// 2^d for integer-valued d ≤ 0; d below -127 gives +0 (the term underflows).
    @inline(__always)
    static func exp2Integral(_ d: V) -> V {
        let clamped = d.replacing(with: -127, where: d .< -127)
        let biased = unsafeBitCast(clamped + (magic + 127), to: I.self) &- unsafeBitCast(V(repeating: magic), to: I.self)
        return unsafeBitCast(biased &<< 23, to: V.self)
    }

    /// Σ exp(x_i) as (v, E) with Σ = v · 2^E, in one pass over the row (spec §D.3).
    public static func extendedSum(_ row: UnsafeBufferPointer<Float>) -> (v: Float, e: Float) {
        var v0 = V(repeating: 0), v1 = V(repeating: 0)
        var e0 = V(repeating: -.infinity), e1 = V(repeating: -.infinity)
        let n = row.count
        var i = 0
        guard let base = row.baseAddress else { return (0, -.infinity) }
        let raw = UnsafeRawPointer(base)
        while i + 16 <= n {
            let xa = raw.loadUnaligned(fromByteOffset: i * 4, as: V.self)
            let xb = raw.loadUnaligned(fromByteOffset: (i + 8) * 4, as: V.self)
            let (pa, ea) = extendedExp(xa)
            let (pb, eb) = extendedExp(xb)
            let na = e0.replacing(with: ea, where: ea .> e0)
            let nb = e1.replacing(with: eb, where: eb .> e1)
            v0 = v0 * exp2Integral(e0 - na) + pa * exp2Integral(ea - na)
            v1 = v1 * exp2Integral(e1 - nb) + pb * exp2Integral(eb - nb)
            e0 = na
            e1 = nb
            i += 16
        }
        while i + 8 <= n {
            let x = raw.loadUnaligned(fromByteOffset: i * 4, as: V.self)
            let (p, e) = extendedExp(x)
            let ne = e0.replacing(with: e, where: e .> e0)
            v0 = v0 * exp2Integral(e0 - ne) + p * exp2Integral(e - ne)
            e0 = ne
            i += 8
        }
        if i < n {
            // Masked tail: missing lanes contribute p = 0 at the lane's current exponent.
            var x = V(repeating: 0)
            var mask = SIMDMask<I>(repeating: false)
            for k in 0..<(n - i) {
                x[k] = base[i + k]
                mask[k] = true
            }
            var (p, e) = extendedExp(x)
            p = p.replacing(with: 0, where: .!mask)
            e = e.replacing(with: e0, where: .!mask)
            let ne = e0.replacing(with: e, where: e .> e0)
            v0 = v0 * exp2Integral(e0 - ne) + p * exp2Integral(e - ne)
            e0 = ne
        }
        // Merge the accumulators, then the lanes.
        let ne = e0.replacing(with: e1, where: e1 .> e0)
        let v = v0 * exp2Integral(e0 - ne) + v1 * exp2Integral(e1 - ne)
        let top = ne.max()
        let total = (v * exp2Integral(ne - top)).sum()
        return (total, top)
    }

    /// log Σ exp(x_i) of a float32 row.
    @inline(__always)
    public static func logSumExp(_ row: UnsafeBufferPointer<Float>) -> Float {
        let (v, e) = extendedSum(row)
        return Float(log(Double(v)) + Double(e) * 0.693_147_180_559_945_3)
    }
}

#if canImport(Glibc)
    import Glibc
#endif

extension CrossEntropy {
    /// Mean hard-label cross-entropy of float32 logits, `LSE(z) − z_y` per row through the
    /// Two-Pass kernel: one read of the logits, split across cores for large batches.
    /// Labels must lie in [0, cols); logits must satisfy ``TwoPassSoftmax``'s precondition.
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
