#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The fitting objective of docs/scaling.md ("Objective"): with log residuals
/// `r_i = log L̂_i(θ) − log L_i`,
///
///     f(θ) = Σ_i w_i · huber_δ(r_i),   huber_δ(r) = r²/2 (|r| ≤ δ), δ·(|r| − δ/2) otherwise,
///
/// and its gradient `∇f = Σ_i w_i ψ_δ(r_i) ∇ log L̂_i` with `ψ_δ(r) = clamp(r, −δ, δ)`.
/// `log L̂` is computed straight from θ in log-sum-exp form, so no term overflows:
///
/// - power_law: `log L̂ = logaddexp(e, α(a − log x))`, `α = exp(u)` (no `e` without L_inf)
/// - chinchilla: `log L̂ = LSE(a − α log N, b − β log D, e)`
/// - nmt: `log L̂ = logaddexp(l, k + pe·log(Ne_ref/Ne) + pd·log(Nd_ref/Nd))`
/// - lr_annealing: `L̂ = L0 + exp(a − α log S1) − exp(c)·S2`, and `f = +∞` when any
///   `L̂ ≤ 0` (the law is not positive there).
///
/// Like the reference procedure, `exp(u)` is taken at `min(u, 50)` and the lr_annealing
/// exponentials at arguments capped at 700, with zero derivative past the caps.
extension ScalingProblem {
    @inline(__always) static func huber(_ r: Double, _ delta: Double) -> (value: Double, slope: Double) {
        let a = abs(r)
        if a <= delta { return (0.5 * r * r, r) }
        return (delta * (a - 0.5 * delta), r > 0 ? delta : -delta)
    }

    /// `logaddexp(x, y)` and the weight `σ(y − x)` of y in it.
    @inline(__always) static func logAddExp(_ x: Double, _ y: Double) -> (value: Double, weightOfY: Double) {
        let z = exp(-abs(x - y))
        let value = max(x, y) + log1p(z)
        return (value, y > x ? 1 / (1 + z) : z / (1 + z))
    }

    /// f(θ), writing ∇_θ f into `gradient` (of θ's length); +∞ where f is not finite.
    func objective(_ t: [Double], gradient g: inout [Double]) -> Double {
        for j in g.indices { g[j] = 0 }
        let delta = self.delta
        var f = 0.0
        let n = count
        return u.withUnsafeBufferPointer { u in
            v.withUnsafeBufferPointer { v in
                logLoss.withUnsafeBufferPointer { ll in
                    weights.withUnsafeBufferPointer { w in
                        switch law {
                        case .powerLaw(let irreducible):
                            let (e, a, uu) = irreducible ? (t[0], t[1], t[2]) : (-Double.infinity, t[0], t[1])
                            let alpha = exp(min(uu, 50)), du = uu < 50 ? 1.0 : 0.0
                            var ge = 0.0, ga = 0.0, gu = 0.0
                            for i in 0..<n {
                                let tt = alpha * (a - u[i])
                                let lh: Double, p: Double
                                if irreducible { (lh, p) = Self.logAddExp(e, tt) } else { (lh, p) = (tt, 1) }
                                let (h, s) = Self.huber(lh - ll[i], delta)
                                f += w[i] * h
                                let k = w[i] * s
                                ge += k * (1 - p)
                                ga += k * p
                                gu += k * p * tt
                            }
                            if irreducible {
                                g[0] = ge; g[1] = ga * alpha; g[2] = gu * du
                            } else {
                                g[0] = ga * alpha; g[1] = gu * du
                            }
                        case .chinchilla:
                            let (e, a, b, al, be) = (t[0], t[1], t[2], t[3], t[4])
                            var ge = 0.0, ga = 0.0, gb = 0.0, gal = 0.0, gbe = 0.0
                            let bigE = exp(e)
                            for i in 0..<n {
                                let t1 = a - al * u[i], t2 = b - be * v[i]
                                // Unshifted terms (two exponentials) unless one would
                                // overflow or all underflow; then shifted by the max.
                                var m = 0.0, e1 = exp(t1), e2 = exp(t2), e3 = bigE
                                var sum = e1 + e2 + e3
                                if !(sum.isNormal && sum.isFinite) {
                                    m = max(t1, t2, e)
                                    e1 = exp(t1 - m); e2 = exp(t2 - m); e3 = exp(e - m)
                                    sum = e1 + e2 + e3
                                }
                                let (h, s) = Self.huber(m + log(sum) - ll[i], delta)
                                f += w[i] * h
                                let k = w[i] * s / sum
                                ga += k * e1
                                gb += k * e2
                                ge += k * e3
                                gal -= k * e1 * u[i]
                                gbe -= k * e2 * v[i]
                            }
                            g[0] = ge; g[1] = ga; g[2] = gb; g[3] = gal; g[4] = gbe
                        case .nmt:
                            let (l, kk, pe, pd) = (t[0], t[1], t[2], t[3])
                            var gl = 0.0, gk = 0.0, gpe = 0.0, gpd = 0.0
                            for i in 0..<n {
                                let tt = kk + pe * u[i] + pd * v[i]
                                let (lh, q) = Self.logAddExp(l, tt)
                                let (h, s) = Self.huber(lh - ll[i], delta)
                                f += w[i] * h
                                let k = w[i] * s
                                gl += k * (1 - q)
                                gk += k * q
                                gpe += k * q * u[i]
                                gpd += k * q * v[i]
                            }
                            g[0] = gl; g[1] = gk; g[2] = gpe; g[3] = gpd
                        case .lrAnnealing:
                            let (l0, a, uu, c) = (t[0], t[1], t[2], t[3])
                            let alpha = exp(min(uu, 50)), du = uu < 50 ? 1.0 : 0.0
                            let cc = exp(min(c, 700)), dc = c < 700 ? 1.0 : 0.0
                            var g0 = 0.0, ga = 0.0, gu = 0.0, gc = 0.0
                            for i in 0..<n {
                                let arg = a - alpha * u[i]
                                let p = exp(min(arg, 700))
                                let lhat = l0 + p - cc * v[i]
                                guard lhat > 0, lhat.isFinite else { return .infinity }
                                let (h, s) = Self.huber(log(lhat) - ll[i], delta)
                                f += w[i] * h
                                let k = w[i] * s / lhat
                                let kp = arg < 700 ? k * p : 0
                                g0 += k
                                ga += kp
                                gu -= kp * u[i]
                                gc -= k * v[i]
                            }
                            g[0] = g0; g[1] = ga; g[2] = gu * alpha * du; g[3] = gc * cc * dc
                        }
                        return f.isFinite ? f : .infinity
                    }
                }
            }
        }
    }

    /// `log L̂_i(θ)` at every point, or nil where some `L̂ ≤ 0` (lr_annealing).
    func logPrediction(_ t: [Double]) -> [Double]? {
        var out = [Double](repeating: 0, count: count)
        for i in 0..<count {
            let lh: Double
            switch law {
            case .powerLaw(let irreducible):
                let alpha = exp(min(irreducible ? t[2] : t[1], 50))
                let tt = alpha * ((irreducible ? t[1] : t[0]) - u[i])
                lh = irreducible ? Self.logAddExp(t[0], tt).value : tt
            case .chinchilla:
                let t1 = t[1] - t[3] * u[i], t2 = t[2] - t[4] * v[i]
                let m = max(t1, t2, t[0])
                lh = m + log(exp(t1 - m) + exp(t2 - m) + exp(t[0] - m))
            case .nmt:
                lh = Self.logAddExp(t[0], t[1] + t[2] * u[i] + t[3] * v[i]).value
            case .lrAnnealing:
                let alpha = exp(min(t[2], 50))
                let lhat = t[0] + exp(min(t[1] - alpha * u[i], 700)) - exp(min(t[3], 700)) * v[i]
                guard lhat > 0, lhat.isFinite else { return nil }
                lh = log(lhat)
            }
            out[i] = lh
        }
        return out
    }
}
