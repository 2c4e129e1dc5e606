#if canImport(Glibc)
    import Glibc
#endif

/// Beta calibration, the 3-parameter "abm" model (docs/calibration.md §3.8; Kull, Silva Filho &
/// Flach 2017): `p = sigmoid(a·ln s − b·ln(1 − s) + c)` with a, b ≥ 0, fitted as an
/// unregularised logistic regression on `(ln s, −ln(1 − s))` by Newton's method, then refitted
/// with one feature when a (else b) comes out negative — the `betacal` package's rule.
/// Inputs are assumed valid (N ≥ 1, s in [0, 1], labels in {0, 1}); the service checks.
public enum BetaCalibration {
    /// float64 machine epsilon: s is clipped to [ε, 1 − ε].
    public static let epsilon = 2.220446049250313e-16

    public struct Fit: Sendable, Equatable {
        public var a: Double
        public var b: Double
        public var c: Double
        public var iterations: Int
        public var converged: Bool
        /// "a" or "b" when that coefficient came out negative and was fixed at 0 by a refit.
        public var fixedAtZero: String?
    }

    /// The class-1 probability of each C = 2 logit row, `softmax(z)_1`.
    public static func probabilities(_ logits: Matrix) -> [Double] {
        precondition(logits.cols == 2, "beta calibration needs two logit columns")
        return (0..<logits.rows).map { i in
            let z0 = logits[i, 0], z1 = logits[i, 1]
            let m = max(z0, z1)
            let e0 = exp(z0 - m), e1 = exp(z1 - m)
            return e1 / (e0 + e1)
        }
    }

    @inline(__always) static func clip(_ s: Double) -> Double {
        min(max(s, epsilon), 1 - epsilon)
    }

    public static func fit(probabilities s: [Double], labels: [Int], maxIterations: Int = 200) -> Fit {
        let n = s.count
        let clipped = s.map(clip)
        let x1 = clipped.map { log($0) }
        let x2 = clipped.map { -log(1 - $0) }
        let y = labels.map { $0 == 1 ? 1.0 : 0.0 }
        let gtol = 1e-9 * Double(max(1, n))
        let full = BinaryLogisticNewton.minimize(
            features: [x1, x2], targets: y, start: [0, 0, 0], gtol: gtol, maxIterations: maxIterations)
        let (a, b, c) = (full.theta[0], full.theta[1], full.theta[2])
        if a < 0 {
            let refit = BinaryLogisticNewton.minimize(
                features: [x2], targets: y, start: [0, 0], gtol: gtol, maxIterations: maxIterations)
            return Fit(
                a: 0, b: refit.theta[0], c: refit.theta[1], iterations: full.iterations + refit.iterations,
                converged: refit.converged, fixedAtZero: "a")
        }
        if b < 0 {
            let refit = BinaryLogisticNewton.minimize(
                features: [x1], targets: y, start: [0, 0], gtol: gtol, maxIterations: maxIterations)
            return Fit(
                a: refit.theta[0], b: 0, c: refit.theta[1], iterations: full.iterations + refit.iterations,
                converged: refit.converged, fixedAtZero: "b")
        }
        return Fit(a: a, b: b, c: c, iterations: full.iterations, converged: full.converged, fixedAtZero: nil)
    }

    /// Calibrated probabilities `[1 − p₁, p₁]`, `p₁ = sigmoid(a ln s − b ln(1 − s) + c)` on the
    /// clipped s.
    public static func apply(a: Double, b: Double, c: Double, probabilities s: [Double]) -> Matrix {
        var out = Matrix(zeros: s.count, 2)
        for (i, v) in s.enumerated() {
            let q = clip(v)
            let p1 = StableMath.sigmoid(a * log(q) - b * log(1 - q) + c)
            out[i, 0] = 1 - p1
            out[i, 1] = p1
        }
        return out
    }
}
