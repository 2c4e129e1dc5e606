/// The Moré–Thuente line search of MINPACK-2 (`dcsrch` with its step rule `dcstep`), as
/// SciPy ports it (`scipy.optimize._dcsrch`, behind `line_search_wolfe1`). SciPy's
/// conjugate gradients try this search first and fall back to the Nocedal–Wright one
/// (``LineSearch``) only when it fails; GLAD's M-step must do the same to follow
/// crowd-kit's iterates.
///
/// Moré & Thuente, "Line search algorithms with guaranteed sufficient decrease", ACM TOMS
/// 20(3), 1994. The search finds a step satisfying the strong Wolfe conditions
/// φ(α) ≤ φ(0) + ftol·α·φ'(0) and |φ'(α)| ≤ gtol·|φ'(0)|, keeping an interval of
/// uncertainty [stx, sty] and choosing trial steps by cubic and quadratic interpolation.
struct MoreThuenteSearch {
    let phi: (Double) -> Double
    let derphi: (Double) -> Double
    var ftol = 1e-4
    var gtol = 0.4
    var xtol = 1e-14
    var stpmin = 1e-100
    var stpmax = 1e100

    private enum Task { case start, evaluate, converged, warning, error }

    /// SciPy's `scalar_search_wolfe1`: the accepted step, or nil when the search failed
    /// (an error, a warning, a non-finite step or 100 iterations).
    func run(phi0: Double, oldPhi0: Double, derphi0: Double, maxIterations: Int = 100) -> Double? {
        var alpha1 = 1.0
        if derphi0 != 0 {
            let trial = 1.01 * 2 * (phi0 - oldPhi0) / derphi0
            alpha1 = trial.isNaN ? 1.0 : Swift.min(1.0, trial)  // Python's min(1.0, nan) is 1.0
            if alpha1 < 0 { alpha1 = 1.0 }
        }
        var state = State(search: self)
        var stp = alpha1, f = phi0, g = derphi0
        var task = Task.start
        for _ in 0..<maxIterations {
            (stp, task) = state.iterate(stp: stp, f: f, g: g, task: task)
            guard stp.isFinite else { return nil }
            guard task == .evaluate else { return task == .converged ? stp : nil }
            f = phi(stp)
            g = derphi(stp)
        }
        return nil
    }

    /// dcsrch's saved variables between calls.
    private struct State {
        let search: MoreThuenteSearch
        var brackt = false
        var stage = 1
        var ginit = 0.0, gtest = 0.0, gx = 0.0, gy = 0.0
        var finit = 0.0, fx = 0.0, fy = 0.0
        var stx = 0.0, sty = 0.0, stmin = 0.0, stmax = 0.0
        var width = 0.0, width1 = 0.0

        init(search: MoreThuenteSearch) { self.search = search }

        mutating func iterate(stp stpIn: Double, f: Double, g: Double, task: Task) -> (Double, Task) {
            let p5 = 0.5, p66 = 0.66, xtrapl = 1.1, xtrapu = 4.0
            var stp = stpIn
            if task == .start {
                if stp < search.stpmin || stp > search.stpmax || g >= 0 { return (stp, .error) }
                brackt = false
                stage = 1
                finit = f
                ginit = g
                gtest = search.ftol * ginit
                width = search.stpmax - search.stpmin
                width1 = width / p5
                stx = 0
                fx = finit
                gx = ginit
                sty = 0
                fy = finit
                gy = ginit
                stmin = 0
                stmax = stp + xtrapu * stp
                return (stp, .evaluate)
            }
            let ftest = finit + stp * gtest
            if stage == 1 && f <= ftest && g >= 0 { stage = 2 }
            var outcome: Task?
            if brackt && (stp <= stmin || stp >= stmax) { outcome = .warning }
            if brackt && stmax - stmin <= search.xtol * stmax { outcome = .warning }
            if stp == search.stpmax && f <= ftest && g <= gtest { outcome = .warning }
            if stp == search.stpmin && (f > ftest || g >= gtest) { outcome = .warning }
            if f <= ftest && abs(g) <= search.gtol * -ginit { outcome = .converged }
            if let outcome { return (stp, outcome) }

            if stage == 1 && f <= fx && f > ftest {
                // The modified function ψ(α) = φ(α) − φ(0) − ftol·α·φ'(0) until a step
                // with sufficient decrease and a non-negative slope is found.
                var fxm = fx - stx * gtest, fym = fy - sty * gtest, gxm = gx - gtest, gym = gy - gtest
                let step = Self.dcstep(
                    stx: stx, fx: fxm, dx: gxm, sty: sty, fy: fym, dy: gym, stp: stp, fp: f - stp * gtest, dp: g - gtest,
                    brackt: brackt, stpmin: stmin, stpmax: stmax)
                (stx, fxm, gxm, sty, fym, gym, stp, brackt) = step
                fx = fxm + stx * gtest
                fy = fym + sty * gtest
                gx = gxm + gtest
                gy = gym + gtest
            } else {
                (stx, fx, gx, sty, fy, gy, stp, brackt) = Self.dcstep(
                    stx: stx, fx: fx, dx: gx, sty: sty, fy: fy, dy: gy, stp: stp, fp: f, dp: g,
                    brackt: brackt, stpmin: stmin, stpmax: stmax)
            }
            if brackt {
                if abs(sty - stx) >= p66 * width1 { stp = stx + p5 * (sty - stx) }
                width1 = width
                width = abs(sty - stx)
                stmin = Swift.min(stx, sty)
                stmax = Swift.max(stx, sty)
            } else {
                stmin = stp + xtrapl * (stp - stx)
                stmax = stp + xtrapu * (stp - stx)
            }
            stp = Swift.min(Swift.max(stp, search.stpmin), search.stpmax)
            if (brackt && (stp <= stmin || stp >= stmax)) || (brackt && stmax - stmin <= search.xtol * stmax) {
                stp = stx
            }
            return (stp, .evaluate)
        }

        /// NumPy's sign: −1, 0 or 1 (NaN stays NaN).
        static func sign(_ x: Double) -> Double { x > 0 ? 1 : x < 0 ? -1 : x == 0 ? 0 : .nan }

        // swiftlint:disable:next function_parameter_count
        static func dcstep(
            stx stxIn: Double, fx fxIn: Double, dx dxIn: Double, sty styIn: Double, fy fyIn: Double, dy dyIn: Double,
            stp: Double, fp: Double, dp: Double, brackt bracktIn: Bool, stpmin: Double, stpmax: Double
        ) -> (Double, Double, Double, Double, Double, Double, Double, Bool) {
            var stx = stxIn, fx = fxIn, dx = dxIn, sty = styIn, fy = fyIn, dy = dyIn, brackt = bracktIn
            let sgnd = sign(dp) * sign(dx)
            var stpf: Double
            if fp > fx {
                // A higher function value: the minimum is bracketed.
                let theta = 3 * (fx - fp) / (stp - stx) + dx + dp
                let s = Swift.max(abs(theta), abs(dx), abs(dp))
                var gamma = s * ((theta / s) * (theta / s) - (dx / s) * (dp / s)).squareRoot()
                if stp < stx { gamma = -gamma }
                let p = (gamma - dx) + theta
                let q = ((gamma - dx) + gamma) + dp
                let stpc = stx + (p / q) * (stp - stx)
                let stpq = stx + ((dx / ((fx - fp) / (stp - stx) + dx)) / 2) * (stp - stx)
                stpf = abs(stpc - stx) <= abs(stpq - stx) ? stpc : stpc + (stpq - stpc) / 2
                brackt = true
            } else if sgnd < 0 {
                // Derivatives of opposite sign: bracketed.
                let theta = 3 * (fx - fp) / (stp - stx) + dx + dp
                let s = Swift.max(abs(theta), abs(dx), abs(dp))
                var gamma = s * ((theta / s) * (theta / s) - (dx / s) * (dp / s)).squareRoot()
                if stp > stx { gamma = -gamma }
                let p = (gamma - dp) + theta
                let q = ((gamma - dp) + gamma) + dx
                let stpc = stp + (p / q) * (stx - stp)
                let stpq = stp + (dp / (dp - dx)) * (stx - stp)
                stpf = abs(stpc - stp) > abs(stpq - stp) ? stpc : stpq
                brackt = true
            } else if abs(dp) < abs(dx) {
                // Same sign, the derivative's magnitude decreases.
                let theta = 3 * (fx - fp) / (stp - stx) + dx + dp
                let s = Swift.max(abs(theta), abs(dx), abs(dp))
                var gamma = s * Swift.max(0, (theta / s) * (theta / s) - (dx / s) * (dp / s)).squareRoot()
                if stp > stx { gamma = -gamma }
                let p = (gamma - dp) + theta
                let q = (gamma + (dx - dp)) + gamma
                let r = p / q
                let stpc: Double
                if r < 0 && gamma != 0 {
                    stpc = stp + r * (stx - stp)
                } else if stp > stx {
                    stpc = stpmax
                } else {
                    stpc = stpmin
                }
                let stpq = stp + (dp / (dp - dx)) * (stx - stp)
                if brackt {
                    stpf = abs(stpc - stp) < abs(stpq - stp) ? stpc : stpq
                    stpf = stp > stx ? Swift.min(stp + 0.66 * (sty - stp), stpf) : Swift.max(stp + 0.66 * (sty - stp), stpf)
                } else {
                    stpf = abs(stpc - stp) > abs(stpq - stp) ? stpc : stpq
                    stpf = Swift.min(Swift.max(stpf, stpmin), stpmax)
                }
            } else {
                // Same sign, the derivative does not decrease.
                if brackt {
                    let theta = 3 * (fp - fy) / (sty - stp) + dy + dp
                    let s = Swift.max(abs(theta), abs(dy), abs(dp))
                    var gamma = s * ((theta / s) * (theta / s) - (dy / s) * (dp / s)).squareRoot()
                    if stp > sty { gamma = -gamma }
                    let p = (gamma - dp) + theta
                    let q = ((gamma - dp) + gamma) + dy
                    stpf = stp + (p / q) * (sty - stp)
                } else {
                    stpf = stp > stx ? stpmax : stpmin
                }
            }
            if fp > fx {
                sty = stp
                fy = fp
                dy = dp
            } else {
                if sgnd < 0 {
                    sty = stx
                    fy = fx
                    dy = dx
                }
                stx = stp
                fx = fp
                dx = dp
            }
            return (stx, fx, dx, sty, fy, dy, stpf, brackt)
        }
    }
}
