import CLossdKernels

/// Whole-buffer loops written with SIMD vectors, for the element-wise steps between
/// kernels (scaling a gradient, checking that an answer is finite) that the compiler
/// cannot vectorise by itself because a floating-point reduction would need reordering.
///
/// Finiteness is tested by summing `x − x`, which is 0 for every finite x and NaN for
/// ±∞ and NaN: one subtraction and one addition a lane, no branch.
public enum VectorMath {
    typealias Lanes = SIMD8<Double>

    /// x ← x · factor for every entry; returns whether every result is finite.
    public static func scale(_ buffer: UnsafeMutableBufferPointer<Double>, by factor: Double) -> Bool {
        guard let base = buffer.baseAddress else { return true }
        let n = buffer.count, raw = UnsafeMutableRawPointer(base)
        let f = Lanes(repeating: factor)
        var bad = Lanes(repeating: 0)
        var i = 0
        while i + Lanes.scalarCount <= n {
            let offset = i * MemoryLayout<Double>.stride
            let x = raw.loadUnaligned(fromByteOffset: offset, as: Lanes.self) * f
            raw.storeBytes(of: x, toByteOffset: offset, as: Lanes.self)
            bad += x - x
            i += Lanes.scalarCount
        }
        var tail = 0.0
        while i < n {
            let x = base[i] * factor
            base[i] = x
            tail += x - x
            i += 1
        }
        return bad.sum() + tail == 0
    }

    /// Whether every entry is finite.
    public static func allFinite(_ buffer: UnsafeBufferPointer<Double>) -> Bool {
        guard let base = buffer.baseAddress else { return true }
        let n = buffer.count, raw = UnsafeRawPointer(base)
        var bad = Lanes(repeating: 0)
        var i = 0
        while i + Lanes.scalarCount <= n {
            let x = raw.loadUnaligned(fromByteOffset: i * MemoryLayout<Double>.stride, as: Lanes.self)
            bad += x - x
            i += Lanes.scalarCount
        }
        var tail = 0.0
        while i < n {
            tail += base[i] - base[i]
            i += 1
        }
        return bad.sum() + tail == 0
    }

    /// out[i] = Float(x[i]) (round to nearest; out of range gives ±∞), out as long as x.
    public static func narrow(_ x: UnsafeBufferPointer<Double>, into out: UnsafeMutableBufferPointer<Float>) {
        precondition(out.count >= x.count, "output too short")
        for i in 0..<x.count { out[i] = Float(x[i]) }
    }
    /// Σ σ(α(x_i + t)) and Σ σ'(α(x_i + t)) = Σ σ(v)σ(−v) over a row, at the kernels'
    /// instruction-set level: each sigmoid from one exponential of −|v| (no overflow for
    /// any finite argument, no cancellation in the tails). Multiply the second sum by α
    /// for the derivative of the first in t.
    public static func sigmoidSum(
        _ x: UnsafeBufferPointer<Double>, alpha: Double, shift t: Double
    ) -> (sum: Double, derivatives: Double) {
        var derivatives = 0.0
        let sum = lossd_sigmoid_sum_f64(x.baseAddress, Int64(x.count), alpha, t, &derivatives)
        return (sum, derivatives)
    }

    /// log1p(e) for every e in [0, 1] (exp(−|x|) in the losses), at the kernels' level:
    /// at most two ulps from libm's, several values per instruction.
    public static func log1pUnit(_ e: UnsafeBufferPointer<Double>, into y: UnsafeMutableBufferPointer<Double>) {
        precondition(y.count >= e.count)
        lossd_log1p_unit_f64(e.baseAddress, Int64(e.count), y.baseAddress)
    }
}

extension Array where Element == Double {
    /// Whether every value is finite.
    public var allFinite: Bool { withUnsafeBufferPointer { VectorMath.allFinite($0) } }

}
