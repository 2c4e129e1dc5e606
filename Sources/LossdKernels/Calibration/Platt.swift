#if canImport(Glibc)
    import Glibc
#endif

/// Logistic regression of (soft) targets on a few features plus an intercept, by the damped
/// Newton method of docs/calibration.md §3.11: `F(θ) = Σ_i softplus(s_i) − t_i s_i` with
/// `s_i = Σ_k θ_k x_ik + θ_P`, Hessian `Σ w_i x̃_i x̃_iᵀ + 1e−12·I` (`w_i = p_i(1 − p_i)`),
/// Cholesky with escalating damping, Armijo backtracking (c = 1e−4, halving, give up below
/// 1e−12). Shared by Platt scaling (one feature, soft targets) and beta calibration (one or
/// two features, hard targets); small and self-contained (P ≤ 3 parameters).
enum BinaryLogisticNewton {
    struct Result: Sendable {
        var theta: [Double]
        var converged: Bool
        var iterations: Int
    }

    /// `features` are the columns x_k (each of length N); the intercept is the last parameter.
    static func minimize(
        features: [[Double]], targets: [Double], start: [Double], gtol: Double, maxIterations: Int = 200
    ) -> Result {
        let n = targets.count
        let p = features.count + 1
        precondition(start.count == p)

        @inline(__always) func linear(_ theta: [Double], _ i: Int) -> Double {
            var s = theta[p - 1]
            for k in 0..<(p - 1) { s += theta[k] * features[k][i] }
            return s
        }

        func value(_ theta: [Double]) -> Double {
            var f = 0.0
            for i in 0..<n {
                let s = linear(theta, i)
                f += StableMath.softplus(s) - targets[i] * s
            }
            return f
        }

        /// Gradient and Hessian (row-major P×P, ridge included).
        func derivatives(_ theta: [Double]) -> ([Double], [Double]) {
            var g = [Double](repeating: 0, count: p)
            var h = [Double](repeating: 0, count: p * p)
            var x = [Double](repeating: 1, count: p)
            for i in 0..<n {
                for k in 0..<(p - 1) { x[k] = features[k][i] }
                let s = linear(theta, i)
                let prob = StableMath.sigmoid(s)
                let r = prob - targets[i]
                let w = prob * (1 - prob)
                for a in 0..<p {
                    g[a] += r * x[a]
                    for b in 0...a { h[a * p + b] += w * x[a] * x[b] }
                }
            }
            for a in 0..<p {
                for b in 0..<a { h[b * p + a] = h[a * p + b] }
                h[a * p + a] += 1e-12
            }
            return (g, h)
        }

        var theta = start
        var f = value(theta)
        var (g, h) = derivatives(theta)
        var converged = false
        var iteration = 0
        guard f.isFinite else { return Result(theta: theta, converged: false, iterations: 0) }
        while iteration < maxIterations, !Cancellation.isCancelled {
            iteration += 1
            if maxAbs(g) < gtol {
                converged = true
                break
            }
            guard let direction = dampedNewtonDirection(hessian: h, gradient: g, size: p) else {
                return Result(theta: theta, converged: false, iterations: iteration)
            }
            var gd = 0.0
            for k in 0..<p { gd += g[k] * direction[k] }
            var step = 1.0
            var candidate = theta
            var fNew = 0.0
            while true {
                for k in 0..<p { candidate[k] = theta[k] + step * direction[k] }
                fNew = value(candidate)
                if fNew.isFinite && fNew <= f + 1e-4 * step * gd { break }
                step *= 0.5
                if step < 1e-12 { return Result(theta: theta, converged: false, iterations: iteration) }
            }
            let (gNew, hNew) = derivatives(candidate)
            let stalled = abs(f - fNew) <= 1e-15 * max(1, abs(f)) && maxAbs(gNew) < 1e-6
            theta = candidate
            f = fNew
            g = gNew
            h = hNew
            if stalled {
                converged = true
                break
            }
        }
        return Result(theta: theta, converged: converged, iterations: iteration)
    }

    /// d = −(H + δI)⁻¹ g with δ = 0, then 1e−10·max(1, max|diag H|), ×10 until the Cholesky
    /// factorisation succeeds; nil when H is not finite.
    static func dampedNewtonDirection(hessian h: [Double], gradient g: [Double], size p: Int) -> [Double]? {
        guard h.allSatisfy(\.isFinite), g.allSatisfy(\.isFinite) else { return nil }
        var scale = 1.0
        for a in 0..<p { scale = max(scale, abs(h[a * p + a])) }
        var damping = 0.0
        while damping.isFinite {
            var shifted = h
            for a in 0..<p { shifted[a * p + a] += damping }
            if let l = cholesky(shifted, p) {
                // Solve L y = −g, then Lᵀ d = y.
                var y = [Double](repeating: 0, count: p)
                for a in 0..<p {
                    var s = -g[a]
                    for b in 0..<a { s -= l[a * p + b] * y[b] }
                    y[a] = s / l[a * p + a]
                }
                var d = [Double](repeating: 0, count: p)
                for a in stride(from: p - 1, through: 0, by: -1) {
                    var s = y[a]
                    for b in (a + 1)..<p { s -= l[b * p + a] * d[b] }
                    d[a] = s / l[a * p + a]
                }
                return d.allSatisfy(\.isFinite) ? d : nil
            }
            damping = damping == 0 ? 1e-10 * scale : damping * 10
        }
        return nil
    }

    /// Lower Cholesky factor (row-major) or nil when the matrix is not positive definite.
    static func cholesky(_ m: [Double], _ p: Int) -> [Double]? {
        var l = [Double](repeating: 0, count: p * p)
        for a in 0..<p {
            for b in 0...a {
                var s = m[a * p + b]
                for k in 0..<b { s -= l[a * p + k] * l[b * p + k] }
                if a == b {
                    guard s > 0, s.isFinite else { return nil }
                    l[a * p + a] = s.squareRoot()
                } else {
                    l[a * p + b] = s / l[b * p + b]
                }
            }
        }
        return l
    }

    @inline(__always) static func maxAbs(_ v: [Double]) -> Double {
        var m = 0.0
        for x in v { m = max(m, abs(x)) }
        return m
    }
}

/// Platt scaling (docs/calibration.md §3.7; Platt 1999 with the numerics of Lin, Lin & Weng 2007):
/// `P(y = 1 | f) = sigmoid(a·f + b)` fitted to Platt's smoothed targets by Newton's method.
/// Inputs are assumed valid (N ≥ 1, finite scores, labels in {0, 1}); the service checks.
public enum Platt {
    public struct Fit: Sendable, Equatable {
        public var a: Double
        public var b: Double
        public var iterations: Int
        public var converged: Bool
        /// The smoothed targets `[(N₊ + 1)/(N₊ + 2), 1/(N₋ + 2)]`.
        public var targets: [Double]
    }

    /// The binary score of each C = 2 logit row, `f = z_1 − z_0`.
    public static func binaryScores(_ logits: Matrix) -> [Double] {
        precondition(logits.cols == 2, "binary scores need two logit columns")
        return (0..<logits.rows).map { logits[$0, 1] - logits[$0, 0] }
    }

    /// Fits a and b. Scores whose largest magnitude exceeds 30 are divided by it for the
    /// optimisation and `a` is scaled back (same optimum, better conditioning).
    public static func fit(scores f: [Double], labels: [Int], maxIterations: Int = 200) -> Fit {
        let n = f.count
        let positives = labels.reduce(0) { $0 + ($1 == 1 ? 1 : 0) }
        let negatives = n - positives
        let tPos = (Double(positives) + 1) / (Double(positives) + 2)
        let tNeg = 1 / (Double(negatives) + 2)
        let targets = labels.map { $0 == 1 ? tPos : tNeg }
        var scale = 0.0
        for v in f { scale = max(scale, abs(v)) }
        let scaled = scale > 30 ? f.map { $0 / scale } : f
        let result = BinaryLogisticNewton.minimize(
            features: [scaled], targets: targets,
            start: [0, log((Double(positives) + 1) / (Double(negatives) + 1))],
            gtol: 1e-10 * Double(max(1, n)), maxIterations: maxIterations)
        var a = result.theta[0]
        if scale > 30 { a /= scale }
        return Fit(a: a, b: result.theta[1], iterations: result.iterations, converged: result.converged, targets: [tPos, tNeg])
    }

    /// Calibrated probabilities `[1 − p₁, p₁]` with `p₁ = sigmoid(a f + b)`.
    public static func apply(a: Double, b: Double, scores f: [Double]) -> Matrix {
        var out = Matrix(zeros: f.count, 2)
        for (i, v) in f.enumerated() {
            let p1 = StableMath.sigmoid(a * v + b)
            out[i, 0] = 1 - p1
            out[i, 1] = p1
        }
        return out
    }
}
