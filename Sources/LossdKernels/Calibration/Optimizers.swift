#if canImport(Glibc)
    import Glibc
#endif

/// The shared optimisers of the calibrators (docs/calibration.md §3.11): a safeguarded
/// 1-D Newton for convex scalar problems, damped Newton with Cholesky and Armijo
/// backtracking for small convex problems, L-BFGS with a strong-Wolfe line search for
/// large ones, and a bounded Brent minimiser for 1-D non-convex problems.
///
/// None of them ever produces a NaN iterate: a non-finite trial point is rejected by the
/// line search, and a fit that cannot make progress stops with `converged: false` and the
/// last finite iterate.
public enum CalibrationOptimizers {
    /// Result of a multivariate minimisation.
    public struct Result: Sendable {
        public var x: [Double]
        public var f: Double
        public var gradient: [Double]
        public var iterations: Int
        public var converged: Bool
    }

    // MARK: 1-D safeguarded Newton

    /// Minimises a convex f on [lo, hi] (lo > 0) from its derivatives `derivatives(x) = (f', f'')`,
    /// with the bracket-and-bisect (geometric mean) safeguard of docs/calibration.md §3.1. Returns
    /// the minimiser, the iterations, convergence and which bound it is pinned at (-1 lower, +1
    /// upper, 0 none).
    public static func safeguardedNewton(
        lo lower: Double, hi upper: Double, start: Double = 1, maxIter: Int = 100, tol: Double = 1e-12,
        derivatives: (Double) -> (g: Double, h: Double)
    ) -> (x: Double, iterations: Int, converged: Bool, atBound: Int) {
        var lo = lower, hi = upper
        let gLo = derivatives(lo).g
        if gLo >= 0 || gLo.isNaN { return (lo, 0, true, -1) }
        let gHi = derivatives(hi).g
        if gHi <= 0 { return (hi, 0, true, 1) }
        var x = min(max(start, lo), hi)
        for it in 1...max(1, maxIter) {
            let (g, rawH) = derivatives(x)
            let h = max(rawH, 0)
            if !g.isFinite { return (x, it, false, 0) }
            if g > 0 { hi = x } else { lo = x }
            if g == 0 { return (x, it, true, 0) }
            var candidate = h > 0 ? x - g / h : .nan
            if !(lo < candidate && candidate < hi) { candidate = (lo * hi).squareRoot() }
            if abs(candidate - x) <= tol * x { return (candidate, it, true, 0) }
            x = candidate
        }
        return (x, maxIter, false, 0)
    }

    // MARK: Damped Newton

    /// Damped Newton (docs/calibration.md §3.11): `fgh(x)` returns the objective, gradient and
    /// row-major Hessian (n × n), or nil when the objective is not finite at x.
    public static func dampedNewton(
        x0: [Double], gtol: Double = 1e-10, maxIter: Int = 200,
        fgh: ([Double]) -> (f: Double, g: [Double], h: [Double])?
    ) -> Result {
        let n = x0.count
        var x = x0
        guard var (f, g, h) = fgh(x), f.isFinite else {
            return Result(x: x0, f: .nan, gradient: [Double](repeating: .nan, count: n), iterations: 0, converged: false)
        }
        var iterations = 0
        while iterations < maxIter, !Cancellation.isCancelled {
            if maxAbs(g) < gtol { return Result(x: x, f: f, gradient: g, iterations: iterations, converged: true) }
            iterations += 1
            guard let d = dampedNewtonDirection(h: h, g: g, n: n) else {
                return Result(x: x, f: f, gradient: g, iterations: iterations, converged: false)
            }
            var gd = 0.0
            for i in 0..<n { gd += g[i] * d[i] }
            if !(gd < 0) {
                // Not a descent direction (round-off at the optimum): nothing more to gain.
                return Result(x: x, f: f, gradient: g, iterations: iterations, converged: maxAbs(g) < 1e-6)
            }
            var t = 1.0
            var accepted: (x: [Double], f: Double, g: [Double], h: [Double])?
            while t >= 1e-12 {
                var trial = x
                for i in 0..<n { trial[i] += t * d[i] }
                if let (fn, gn, hn) = fgh(trial), fn.isFinite, fn <= f + 1e-4 * t * gd, gn.allFinite {
                    accepted = (trial, fn, gn, hn)
                    break
                }
                t *= 0.5
            }
            guard let next = accepted else {
                return Result(x: x, f: f, gradient: g, iterations: iterations, converged: false)
            }
            let small = abs(f - next.f) <= 1e-15 * max(1, abs(f)) && maxAbs(next.g) < 1e-6
            (x, f, g, h) = (next.x, next.f, next.g, next.h)
            if small { return Result(x: x, f: f, gradient: g, iterations: iterations, converged: true) }
        }
        return Result(x: x, f: f, gradient: g, iterations: iterations, converged: maxAbs(g) < gtol)
    }

    /// d = −(H + δI)⁻¹ g, δ = 0 then 1e−10·max(1, max|diag H|) ×10 until Cholesky succeeds.
    static func dampedNewtonDirection(h: [Double], g: [Double], n: Int) -> [Double]? {
        var scale = 1.0
        for i in 0..<n { scale = max(scale, abs(h[i * n + i])) }
        guard scale.isFinite, h.allFinite else { return nil }
        var damp = 0.0
        for _ in 0..<40 {
            if let l = cholesky(h, n: n, shift: damp) {
                var d = choleskySolve(l, n: n, g)
                for i in 0..<n { d[i] = -d[i] }
                if d.allFinite { return d }
            }
            damp = damp == 0 ? 1e-10 * scale : damp * 10
        }
        return nil
    }

    /// Lower Cholesky factor of (A + shift·I) (row-major n × n), or nil when not positive definite.
    public static func cholesky(_ a: [Double], n: Int, shift: Double = 0) -> [Double]? {
        var l = [Double](repeating: 0, count: n * n)
        for j in 0..<n {
            var s = a[j * n + j] + shift
            for k in 0..<j { s -= l[j * n + k] * l[j * n + k] }
            guard s > 0, s.isFinite else { return nil }
            let d = s.squareRoot()
            l[j * n + j] = d
            for i in (j + 1)..<max(j + 1, n) {
                var t = a[i * n + j]
                for k in 0..<j { t -= l[i * n + k] * l[j * n + k] }
                l[i * n + j] = t / d
            }
        }
        return l
    }

    /// Solves L Lᵀ x = b.
    public static func choleskySolve(_ l: [Double], n: Int, _ b: [Double]) -> [Double] {
        var y = b
        for i in 0..<n {
            var s = y[i]
            for k in 0..<i { s -= l[i * n + k] * y[k] }
            y[i] = s / l[i * n + i]
        }
        for i in stride(from: n - 1, through: 0, by: -1) {
            var s = y[i]
            for k in (i + 1)..<max(i + 1, n) { s -= l[k * n + i] * y[k] }
            y[i] = s / l[i * n + i]
        }
        return y
    }

    // MARK: L-BFGS

    /// L-BFGS (memory 10) with a strong-Wolfe line search (c₁ = 1e−4, c₂ = 0.9); stops at
    /// max|g| < gtol, a relative f change < 1e−14 over 5 iterations, or `maxIter`.
    /// `fg(x)` returns the objective and gradient, or nil when not finite.
    public static func lbfgs(
        x0: [Double], gtol: Double = 1e-8, maxIter: Int = 1000, memory: Int = 10,
        fg: ([Double]) -> (f: Double, g: [Double])?
    ) -> Result {
        let n = x0.count
        var x = x0
        guard var (f, g) = fg(x), f.isFinite, g.allFinite else {
            return Result(x: x0, f: .nan, gradient: [Double](repeating: .nan, count: n), iterations: 0, converged: false)
        }
        var sList: [[Double]] = [], yList: [[Double]] = [], rhoList: [Double] = []
        var history: [Double] = [f]
        var iterations = 0
        while iterations < maxIter, !Cancellation.isCancelled {
            if maxAbs(g) < gtol { return Result(x: x, f: f, gradient: g, iterations: iterations, converged: true) }
            iterations += 1
            // Two-loop recursion.
            var q = g
            var alphas = [Double](repeating: 0, count: sList.count)
            for i in stride(from: sList.count - 1, through: 0, by: -1) {
                let a = rhoList[i] * dot(sList[i], q)
                alphas[i] = a
                for j in 0..<n { q[j] -= a * yList[i][j] }
            }
            if let s = sList.last, let y = yList.last {
                let gamma = dot(s, y) / dot(y, y)
                for j in 0..<n { q[j] *= gamma }
            }
            for i in 0..<sList.count {
                let b = rhoList[i] * dot(yList[i], q)
                for j in 0..<n { q[j] += sList[i][j] * (alphas[i] - b) }
            }
            var d = q.map { -$0 }
            var gd = dot(g, d)
            if !(gd < 0) || !gd.isFinite {
                // Reset to steepest descent.
                sList.removeAll(); yList.removeAll(); rhoList.removeAll()
                d = g.map { -$0 }
                gd = dot(g, d)
            }
            let initial = iterations == 1 ? 1 / max(norm(g), 1e-300) : 1
            guard let step = strongWolfe(x: x, f: f, g: g, d: d, gd: gd, t0: initial, fg: fg) else {
                return Result(x: x, f: f, gradient: g, iterations: iterations, converged: maxAbs(g) < 1e-6)
            }
            var s = [Double](repeating: 0, count: n), y = s
            for j in 0..<n {
                s[j] = step.x[j] - x[j]
                y[j] = step.g[j] - g[j]
            }
            let sy = dot(s, y)
            if sy > 1e-16 * dot(y, y) && sy > 0 {
                sList.append(s); yList.append(y); rhoList.append(1 / sy)
                if sList.count > memory { sList.removeFirst(); yList.removeFirst(); rhoList.removeFirst() }
            }
            (x, f, g) = (step.x, step.f, step.g)
            history.append(f)
            if history.count > 5 {
                let old = history[history.count - 6]
                if abs(old - f) < 1e-14 * max(1, abs(f)) {
                    return Result(x: x, f: f, gradient: g, iterations: iterations, converged: true)
                }
            }
        }
        return Result(x: x, f: f, gradient: g, iterations: iterations, converged: maxAbs(g) < gtol)
    }

    /// Strong-Wolfe line search (Nocedal & Wright, Algorithms 3.5/3.6) with cubic/bisection zoom.
    static func strongWolfe(
        x: [Double], f: Double, g: [Double], d: [Double], gd: Double, t0: Double,
        fg: ([Double]) -> (f: Double, g: [Double])?
    ) -> (x: [Double], f: Double, g: [Double])? {
        let c1 = 1e-4, c2 = 0.9
        let n = x.count
        func eval(_ t: Double) -> (x: [Double], f: Double, g: [Double], dg: Double)? {
            var xt = x
            for j in 0..<n { xt[j] += t * d[j] }
            guard let (ft, gt) = fg(xt), ft.isFinite, gt.allFinite else { return nil }
            return (xt, ft, gt, dot(gt, d))
        }
        var best: (x: [Double], f: Double, g: [Double])?
        func zoom(_ loIn: Double, _ hiIn: Double, _ fLoIn: Double) -> (x: [Double], f: Double, g: [Double])? {
            var lo = loIn, hi = hiIn, fLo = fLoIn
            for _ in 0..<40 {
                let t = 0.5 * (lo + hi)
                guard let e = eval(t) else { hi = t; continue }
                if e.f > f + c1 * t * gd || e.f >= fLo {
                    hi = t
                } else {
                    if abs(e.dg) <= -c2 * gd { return (e.x, e.f, e.g) }
                    if e.f < (best?.f ?? f) { best = (e.x, e.f, e.g) }
                    if e.dg * (hi - lo) >= 0 { hi = lo }
                    lo = t
                    fLo = e.f
                }
                if abs(hi - lo) < 1e-16 * max(1, abs(lo)) { break }
            }
            return best
        }
        var tPrev = 0.0, fPrev = f
        var t = t0
        for i in 0..<40 {
            guard let e = eval(t) else {
                // Non-finite: shrink towards the last good point.
                t = 0.5 * (tPrev + t)
                if t < 1e-20 { return best }
                continue
            }
            if e.f > f + c1 * t * gd || (i > 0 && e.f >= fPrev) { return zoom(tPrev, t, fPrev) }
            if abs(e.dg) <= -c2 * gd { return (e.x, e.f, e.g) }
            if e.f < (best?.f ?? f) { best = (e.x, e.f, e.g) }
            if e.dg >= 0 { return zoom(t, tPrev, e.f) }
            tPrev = t
            fPrev = e.f
            t *= 2
        }
        return best
    }

    // MARK: Bounded Brent (scipy.optimize.fminbound)

    /// Minimises f on [a, b] with Brent's method (the algorithm of
    /// `scipy.optimize.minimize_scalar(method="bounded")`), to |Δx| ≤ xatol.
    public static func boundedBrent(
        _ a: Double, _ b: Double, xatol: Double = 1e-12, maxIter: Int = 500, _ fn: (Double) -> Double
    ) -> (x: Double, f: Double, iterations: Int, converged: Bool) {
        let sqrtEps = (2.2e-16).squareRoot()  // scipy uses sqrt(2.2e-16)
        let goldenMean = 0.5 * (3.0 - 5.0.squareRoot())
        var (a, b) = (a, b)
        var fulc = a + goldenMean * (b - a)
        var nfc = fulc, xf = fulc
        var rat = 0.0, e = 0.0
        var x = xf
        var fx = fn(x)
        var num = 1
        var ffulc = fx, fnfc = fx
        var xm = 0.5 * (a + b)
        var tol1 = sqrtEps * abs(xf) + xatol / 3.0
        var tol2 = 2.0 * tol1
        while abs(xf - xm) > (tol2 - 0.5 * (b - a)) {
            var golden = true
            if abs(e) > tol1 {
                golden = false
                var r = (xf - nfc) * (fx - ffulc)
                var q = (xf - fulc) * (fx - fnfc)
                var p = (xf - fulc) * q - (xf - nfc) * r
                q = 2.0 * (q - r)
                if q > 0.0 { p = -p }
                q = abs(q)
                r = e
                e = rat
                if abs(p) < abs(0.5 * q * r) && p > q * (a - xf) && p < q * (b - xf) {
                    rat = (p + 0.0) / q
                    x = xf + rat
                    if (x - a) < tol2 || (b - x) < tol2 {
                        let si = xm - xf >= 0 ? 1.0 : -1.0
                        rat = tol1 * si
                    }
                } else {
                    golden = true
                }
            }
            if golden {
                e = xf >= xm ? a - xf : b - xf
                rat = goldenMean * e
            }
            let si = rat >= 0 ? 1.0 : -1.0
            x = xf + si * max(abs(rat), tol1)
            let fu = fn(x)
            num += 1
            if fu <= fx {
                if x >= xf { a = xf } else { b = xf }
                fulc = nfc; ffulc = fnfc
                nfc = xf; fnfc = fx
                xf = x; fx = fu
            } else {
                if x < xf { a = x } else { b = x }
                if fu <= fnfc || nfc == xf {
                    fulc = nfc; ffulc = fnfc
                    nfc = x; fnfc = fu
                } else if fu <= ffulc || fulc == xf || fulc == nfc {
                    fulc = x; ffulc = fu
                }
            }
            xm = 0.5 * (a + b)
            tol1 = sqrtEps * abs(xf) + xatol / 3.0
            tol2 = 2.0 * tol1
            if num >= maxIter { return (xf, fx, num, false) }
        }
        return (xf, fx, num, true)
    }

    // MARK: helpers

    @inline(__always) static func dot(_ a: [Double], _ b: [Double]) -> Double {
        var s = 0.0
        for i in 0..<a.count { s += a[i] * b[i] }
        return s
    }

    @inline(__always) static func norm(_ a: [Double]) -> Double { dot(a, a).squareRoot() }

    @inline(__always) static func maxAbs(_ a: [Double]) -> Double {
        var m = 0.0
        for v in a {
            if v.isNaN { return .infinity }
            m = max(m, abs(v))
        }
        return m
    }
}
