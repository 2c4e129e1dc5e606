import Foundation
import Testing

@testable import LossdKernels

/// soft_topk's threshold solve: safeguarded Newton reaches the root of Σ σ(α(s + t)) = k in a
/// handful of passes over the row, where bisection takes 60 or more, and agrees with
/// bisection (the reference here, written independently of the kernel) to rounding.
@Suite("soft_topk threshold solver")
struct SoftTopKSolverTests {
    /// Plain bisection on the same bracket, until the midpoint is an endpoint.
    static func bisection(_ s: [Double], k: Double, alpha: Double) -> Double {
        let count = Double(s.count)
        var lo = -s.max()! + (log(k / count) - 1) / alpha
        var hi = -s.min()! + (log(k / (count - k)) + 1) / alpha
        while true {
            let mid = 0.5 * lo + 0.5 * hi
            if mid <= lo || mid >= hi { return mid }
            let total = s.reduce(0.0) { $0 + 1 / (1 + exp(-alpha * ($1 + mid))) }
            if total < k { lo = mid } else { hi = mid }
        }
    }

    @Test(arguments: [
        (1000, 4.0, 5.0, 2.0), (1000, 1.0, 5.0, 2.0), (1000, 20.0, 5.0, 2.0), (10, 4.0, 2.5, 2.0),
        (32000, 4.0, 5.0, 2.0), (1000, 4.0, 5.0, 50.0), (1000, 4.0, 999.5, 2.0), (2, 3.0, 1.0, 1.0),
    ])
    func newtonConvergesInAFewPassesToTheBisectionRoot(columns: Int, scale: Double, k: Double, alpha: Double) {
        var generator = SplitMix64(seed: UInt64(columns) &* 31 &+ UInt64(k * 10))
        for _ in 0..<5 {
            let row = (0..<columns).map { _ in Double.random(in: -scale...scale, using: &generator) }
            let (t, passes) = row.withUnsafeBufferPointer { SoftTopK.solveThreshold($0, k: k, alpha: alpha) }
            #expect(passes <= 15, "\(passes) passes for C \(columns), scale \(scale), k \(k), alpha \(alpha)")
            let reference = Self.bisection(row, k: k, alpha: alpha)
            // The root is known to the rounding of the sum (about C·ε·k) over the slope
            // α Σ σ(1 − σ): ill-conditioned when k is near C.
            let slope = alpha * row.reduce(0.0) { total, x in
                let sigma = 1 / (1 + exp(-alpha * (x + reference)))
                return total + sigma * (1 - sigma)
            }
            let conditioning = 4 * Double(columns) * Double.ulpOfOne * k / slope
            #expect(abs(t - reference) <= 1e-13 * max(1, abs(reference)) + conditioning, "\(t) vs \(reference)")
        }
    }

    /// A row symmetric about 0 with k = C/2 has its root at t = 0, where a purely relative
    /// stopping test never fires; the solve still ends in a few passes, at a root within the
    /// row's rounding of 0.
    @Test(arguments: [2, 11, 1001])
    func aRootAtZeroStillConvergesInAFewPasses(columns: Int) {
        var generator = SplitMix64(seed: UInt64(columns))
        let half = (0..<(columns / 2)).map { _ in Double.random(in: 0.1...3, using: &generator) }
        let row = half + (columns % 2 == 1 ? [0] : []) + half.map { -$0 }
        let (t, passes) = row.withUnsafeBufferPointer { SoftTopK.solveThreshold($0, k: Double(columns) / 2, alpha: 2) }
        #expect(passes <= 15, "\(passes) passes")
        #expect(abs(t) <= 1e-12, "t = \(t)")
    }
}
