#if canImport(Glibc)
    import Glibc
#endif

/// GLAD (Whitehill et al. 2009) as crowd-kit `GLAD` runs it (docs/aggregation.md §4):
/// one-coin generalisation to K' labels, exp(β_t) inverse difficulty, N(1, 1) priors on α
/// and β, uniform class prior, and a truncated conjugate-gradient M-step as
/// `scipy.optimize.minimize(method="CG")` takes it (Polak–Ribière+, MINPACK's Moré–Thuente
/// line search, then the Nocedal–Wright zoom when that fails; c₁ = 1e−4, c₂ = 0.4).
extension Aggregation {
    public struct GLADOptions: Sendable {
        public var maxIterations = 100
        public var tolerance = 1e-5
        public var mStepMaxIterations = 25
        public var mStepTolerance = 1e-2
        public init() {}
    }

    public static func glad(_ data: CrowdAnnotations, options: GLADOptions = .init()) -> AggregationResult {
        let kp = data.observedCount
        let k = data.numClasses
        let nW = data.annotatorCount
        let itemList = (0..<data.itemCount).filter { data.annotated[$0] }
        var slot = [Int](repeating: -1, count: data.itemCount)
        for (j, t) in itemList.enumerated() { slot[t] = j }
        let nT = itemList.count
        let count = data.count
        let itemOf = data.items.map { slot[Int($0)] }
        let workerOf = data.annotators.map { Int($0) }
        let columnOf = data.labels.map { data.columnOfClass[Int($0)] }

        if kp == 1 {
            var soft = Matrix(zeros: data.itemCount, k)
            for t in itemList { soft[t, data.observedLabels[0]] = 1 }
            let hard = finish(&soft, data)
            var result = AggregationResult(
                soft: soft, labels: hard, skill: [Double](repeating: 1, count: nW), iterations: 0, converged: true)
            result.itemDifficulty = (0..<data.itemCount).map { data.annotated[$0] ? 1.0 : nil }
            return result
        }
        let logKm1 = log(Double(kp - 1))
        let logPrior = -log(Double(kp))
        let halfLog2Pi = 0.5 * log(2 * Double.pi)

        // x = [α (annotators), β (annotated items)].
        var x = [Double](repeating: 1, count: nW + nT)
        var post = [Double](repeating: 0, count: nT * kp)

        func eStep(_ x: [Double]) {
            // ℓ_a(c) = log(1−σ_a) − log(K'−1) for every c, plus the difference on c = l_a.
            var lp = [Double](repeating: logPrior, count: nT * kp)
            var wrong = [Double](repeating: 0, count: nT)
            for a in 0..<count {
                let j = itemOf[a]
                let z = x[workerOf[a]] * exp(x[nW + j])
                let ls = StableMath.logSigmoid(z), l1s = StableMath.logSigmoid(-z) - logKm1
                wrong[j] += l1s
                lp[j * kp + columnOf[a]] += ls - l1s
            }
            for j in 0..<nT {
                for c in 0..<kp { lp[j * kp + c] += wrong[j] }
                var top = -Double.infinity
                for c in 0..<kp { top = max(top, lp[j * kp + c]) }
                var s = 0.0
                for c in 0..<kp {
                    let v = exp(lp[j * kp + c] - top)
                    post[j * kp + c] = v
                    s += v
                }
                for c in 0..<kp { post[j * kp + c] = post[j * kp + c] / s }
            }
        }

        // Q(α, β) with the current posteriors, and its gradient.
        func objective(_ x: [Double], gradient: Bool) -> (Double, [Double]) {
            var value = 0.0
            var g = gradient ? [Double](repeating: 0, count: x.count) : []
            for a in 0..<count {
                let j = itemOf[a], w = workerOf[a]
                let eb = exp(x[nW + j])
                let z = x[w] * eb
                let qa = post[j * kp + columnOf[a]]
                value += qa * StableMath.logSigmoid(z) + (1 - qa) * (StableMath.logSigmoid(-z) - logKm1)
                if gradient {
                    let common = qa - 1 / (1 + exp(-z))
                    g[w] += common * eb
                    g[nW + j] += common * x[w] * eb
                }
            }
            for i in 0..<x.count {
                let d = x[i] - 1
                value += -halfLog2Pi - 0.5 * d * d
                if gradient { g[i] -= d }
            }
            return (value, g)
        }

        // M-step: minimise −Q from the current point.
        func mStep() {
            func fg(_ v: [Double]) -> (Double, [Double]) {
                let (q, g) = objective(v, gradient: true)
                return (-q, g.map { -$0 })
            }
            x = ConjugateGradient.minimize(
                fg, from: x, gradientTolerance: options.mStepTolerance, maxIterations: options.mStepMaxIterations)
        }

        eStep(x)
        var qValue = objective(x, gradient: false).0
        var converged = false
        var iterations = 0
        for it in stride(from: 1, through: options.maxIterations, by: 1) where !Cancellation.isCancelled {
            iterations = it
            let last = qValue
            eStep(x)
            mStep()
            qValue = objective(x, gradient: false).0 / Double(count * kp)
            if qValue - last < options.tolerance {
                converged = true
                break
            }
        }

        var soft = Matrix(zeros: data.itemCount, k)
        for (j, t) in itemList.enumerated() {
            for (c, l) in data.observedLabels.enumerated() { soft[t, l] = post[j * kp + c] }
        }
        let hard = finish(&soft, data)
        var result = AggregationResult(
            soft: soft, labels: hard, skill: Array(x[0..<nW]), iterations: iterations, converged: converged)
        result.itemDifficulty = (0..<data.itemCount).map { slot[$0] >= 0 ? x[nW + slot[$0]] : nil }
        return result
    }
}

/// Nonlinear conjugate gradients as `scipy.optimize.minimize(method="CG")` (Polak–Ribière+,
/// strong Wolfe line search with c₂ = 0.4 and the descent condition of scipy's
/// `_minimize_cg`): MINPACK's Moré–Thuente search (`line_search_wolfe1`) first, and the
/// Nocedal–Wright bracketing/zoom search (`line_search_wolfe2`) when it fails.
enum ConjugateGradient {
    static func dot(_ a: [Double], _ b: [Double]) -> Double {
        var s = 0.0
        for i in 0..<a.count { s += a[i] * b[i] }
        return s
    }

    static func maxAbs(_ a: [Double]) -> Double { a.reduce(0) { max($0, abs($1)) } }

    static func minimize(
        _ fg: @escaping ([Double]) -> (Double, [Double]), from x0: [Double], gradientTolerance: Double, maxIterations: Int
    ) -> [Double] {
        var x = x0
        var (f, g) = fg(x)
        var oldOld = f + dot(g, g).squareRoot() / 2
        var p = g.map { -$0 }
        var gnorm = maxAbs(g)
        var k = 0
        while gnorm > gradientTolerance && k < maxIterations && !Cancellation.isCancelled {
            let deltaK = dot(g, g)
            // The line search evaluates points x + αp; remember the last one.
            var lastAlpha = Double.nan
            var lastValue = 0.0
            var lastGradient: [Double] = []
            func evaluate(_ alpha: Double) -> (Double, [Double]) {
                if alpha == lastAlpha { return (lastValue, lastGradient) }
                var point = x
                for i in 0..<point.count { point[i] += alpha * p[i] }
                let (fv, gv) = fg(point)
                lastAlpha = alpha
                lastValue = fv
                lastGradient = gv
                return (fv, gv)
            }
            func step(_ alpha: Double, _ g1: [Double]) -> (x: [Double], p: [Double], g: [Double], gnorm: Double) {
                var x1 = x
                for i in 0..<x1.count { x1[i] += alpha * p[i] }
                var num = 0.0
                for i in 0..<g1.count { num += (g1[i] - g[i]) * g1[i] }
                let betaK = max(0, num / deltaK)
                var p1 = g1
                for i in 0..<p1.count { p1[i] = -g1[i] + betaK * p[i] }
                return (x1, p1, g1, maxAbs(g1))
            }
            var cachedAlpha = Double.nan
            var cached: (x: [Double], p: [Double], g: [Double], gnorm: Double)?
            func descent(_ alpha: Double, _ g1: [Double]) -> Bool {
                let s = step(alpha, g1)
                cachedAlpha = alpha
                cached = s
                if s.gnorm <= gradientTolerance { return true }
                return dot(s.p, s.g) <= -0.01 * dot(s.g, s.g)
            }
            // scipy's `_line_search_wolfe12`: MINPACK's search first, its step rejected when the
            // descent condition fails; then the Nocedal–Wright search.
            let derphi0 = dot(g, p)
            var accepted = MoreThuenteSearch(phi: { evaluate($0).0 }, derphi: { alpha in dot(evaluate(alpha).1, p) })
                .run(phi0: f, oldPhi0: oldOld, derphi0: derphi0)
            if let alpha = accepted, !descent(alpha, evaluate(alpha).1) { accepted = nil }
            if accepted == nil {
                let search = LineSearch(
                    phi: { evaluate($0).0 }, derphi: { alpha in dot(evaluate(alpha).1, p) },
                    extra: { alpha in descent(alpha, evaluate(alpha).1) })
                accepted = search.run(phi0: f, oldPhi0: oldOld, derphi0: derphi0)
            }
            guard let alpha = accepted else { break }
            let fNew = evaluate(alpha).0
            oldOld = f
            f = fNew
            let s: (x: [Double], p: [Double], g: [Double], gnorm: Double)
            if alpha == cachedAlpha, let cached { s = cached } else { s = step(alpha, evaluate(alpha).1) }
            x = s.x
            p = s.p
            g = s.g
            gnorm = s.gnorm
            k += 1
        }
        return x
    }
}

/// scipy's `scalar_search_wolfe2` and `_zoom` (Nocedal & Wright, Algorithms 3.5 and 3.6).
struct LineSearch {
    let phi: (Double) -> Double
    let derphi: (Double) -> Double
    let extra: (Double) -> Bool
    var c1 = 1e-4
    var c2 = 0.4
    var amax = 1e100
    var maxIterations = 10

    func run(phi0: Double, oldPhi0: Double, derphi0: Double) -> Double? {
        var alpha1 = 1.0
        if derphi0 != 0 {
            let trial = min(1.0, 1.01 * 2 * (phi0 - oldPhi0) / derphi0)
            alpha1 = trial > 0 && trial.isFinite ? trial : 1.0
        }
        var alpha0 = 0.0
        var phiA1 = phi(alpha1)
        var phiA0 = phi0
        var derphiA0 = derphi0
        for i in 0..<maxIterations {
            if alpha1 == 0 || alpha0 > amax { return nil }
            if phiA1 > phi0 + c1 * alpha1 * derphi0 || (phiA1 >= phiA0 && i > 0) {
                return zoom(alpha0, alpha1, phiA0, phiA1, derphiA0, phi0: phi0, derphi0: derphi0)
            }
            let derphiA1 = derphi(alpha1)
            if abs(derphiA1) <= -c2 * derphi0 && extra(alpha1) { return alpha1 }
            if derphiA1 >= 0 {
                return zoom(alpha1, alpha0, phiA1, phiA0, derphiA1, phi0: phi0, derphi0: derphi0)
            }
            let alpha2 = min(2 * alpha1, amax)
            alpha0 = alpha1
            alpha1 = alpha2
            phiA0 = phiA1
            phiA1 = phi(alpha1)
            derphiA0 = derphiA1
        }
        return alpha1  // scipy accepts the last trial (with a warning)
    }

    private func zoom(
        _ aLo0: Double, _ aHi0: Double, _ phiLo0: Double, _ phiHi0: Double, _ derphiLo0: Double, phi0: Double, derphi0: Double
    ) -> Double? {
        var aLo = aLo0, aHi = aHi0, phiLo = phiLo0, phiHi = phiHi0, derphiLo = derphiLo0
        var phiRec = phi0, aRec = 0.0
        var i = 0
        while true {
            let dalpha = aHi - aLo
            let (a, b) = dalpha < 0 ? (aHi, aLo) : (aLo, aHi)
            var aj: Double?
            if i > 0 {
                let cchk = 0.2 * dalpha
                aj = LineSearch.cubicMin(aLo, phiLo, derphiLo, aHi, phiHi, aRec, phiRec)
                if let v = aj, v > b - cchk || v < a + cchk { aj = nil }
            }
            if aj == nil {
                let qchk = 0.1 * dalpha
                aj = LineSearch.quadMin(aLo, phiLo, derphiLo, aHi, phiHi)
                if let v = aj, v > b - qchk || v < a + qchk { aj = nil }
                if aj == nil { aj = aLo + 0.5 * dalpha }
            }
            let alpha = aj!
            let phiJ = phi(alpha)
            if phiJ > phi0 + c1 * alpha * derphi0 || phiJ >= phiLo {
                phiRec = phiHi
                aRec = aHi
                aHi = alpha
                phiHi = phiJ
            } else {
                let derphiJ = derphi(alpha)
                if abs(derphiJ) <= -c2 * derphi0 && extra(alpha) { return alpha }
                if derphiJ * (aHi - aLo) >= 0 {
                    phiRec = phiHi
                    aRec = aHi
                    aHi = aLo
                    phiHi = phiLo
                } else {
                    phiRec = phiLo
                    aRec = aLo
                }
                aLo = alpha
                phiLo = phiJ
                derphiLo = derphiJ
            }
            i += 1
            if i > maxIterations { return nil }
        }
    }

    static func cubicMin(_ a: Double, _ fa: Double, _ fpa: Double, _ b: Double, _ fb: Double, _ c: Double, _ fc: Double) -> Double? {
        let cc = fpa, db = b - a, dc = c - a
        let denom = (db * dc) * (db * dc) * (db - dc)
        let r1 = fb - fa - cc * db, r2 = fc - fa - cc * dc
        let aa = (dc * dc * r1 - db * db * r2) / denom
        let bb = (-dc * dc * dc * r1 + db * db * db * r2) / denom
        let radical = bb * bb - 3 * aa * cc
        let xmin = a + (-bb + radical.squareRoot()) / (3 * aa)
        return xmin.isFinite ? xmin : nil
    }

    static func quadMin(_ a: Double, _ fa: Double, _ fpa: Double, _ b: Double, _ fb: Double) -> Double? {
        let db = b - a
        let bb = (fb - fa - fpa * db) / (db * db)
        let xmin = a - fpa / (2 * bb)
        return xmin.isFinite ? xmin : nil
    }
}
