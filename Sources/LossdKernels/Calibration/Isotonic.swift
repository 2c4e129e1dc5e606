#if canImport(Glibc)
    import Glibc
#endif

/// One fitted non-decreasing map (docs/calibration.md §3.9): the kept breakpoints `x` (strictly
/// increasing) and `y` (non-decreasing), and the fit data's range `[xMin, xMax]` to which
/// inputs are clipped before piecewise-linear interpolation (numpy `interp`).
public struct IsotonicMap: Sendable, Equatable {
    public var x: [Double]
    public var y: [Double]
    public var xMin: Double
    public var xMax: Double

    public init(x: [Double], y: [Double], xMin: Double, xMax: Double) {
        self.x = x
        self.y = y
        self.xMin = xMin
        self.xMax = xMax
    }

    /// The map at v: clipped to [xMin, xMax], then numpy `interp` between the breakpoints
    /// (constant outside them; a single breakpoint gives a constant).
    public func callAsFunction(_ v: Double) -> Double {
        let n = x.count
        if n == 1 { return y[0] }
        let u = min(max(v, xMin), xMax)
        if u <= x[0] { return y[0] }
        if u >= x[n - 1] { return y[n - 1] }
        // Largest j with x[j] <= u (j < n − 1 here).
        var lo = 0, hi = n - 1
        while hi - lo > 1 {
            let mid = (lo + hi) / 2
            if x[mid] <= u { lo = mid } else { hi = mid }
        }
        if x[lo] == u { return y[lo] }
        let slope = (y[lo + 1] - y[lo]) / (x[lo + 1] - x[lo])
        var r = slope * (u - x[lo]) + y[lo]
        if r.isNaN {
            r = slope * (u - x[lo + 1]) + y[lo + 1]
            if r.isNaN && y[lo] == y[lo + 1] { r = y[lo] }
        }
        return r
    }
}

/// Isotonic regression calibration by pool-adjacent-violators (docs/calibration.md §3.9;
/// Zadrozny & Elkan 2002): one map on p₁ for C = 2, one-vs-rest maps on every p_k for
/// C ≥ 3 followed by the row renormalisation of `OneVsRestCalibration.renormalise`.
/// Equal to scikit-learn's `IsotonicRegression(out_of_bounds="clip")` /
/// `CalibratedClassifierCV(method="isotonic")`. Inputs are assumed valid.
public enum Isotonic {
    /// Fits a non-decreasing map of y on x (y in [0, 1]; N ≥ 1).
    public static func fit1D(x: [Double], y: [Double]) -> IsotonicMap {
        precondition(!x.isEmpty && x.count == y.count)
        // Sort by x, then y.
        let order = x.indices.sorted { i, j in x[i] != x[j] ? x[i] < x[j] : y[i] < y[j] }
        // Pool exactly equal x values: weight = count, value = mean.
        var ux: [Double] = [], sums: [Double] = [], weights: [Double] = []
        for i in order {
            if let last = ux.last, last == x[i] {
                sums[sums.count - 1] += y[i]
                weights[weights.count - 1] += 1
            } else {
                ux.append(x[i])
                sums.append(y[i])
                weights.append(1)
            }
        }
        let means = zip(sums, weights).map { $0 / $1 }
        let fitted = pava(means, weights)
        // Drop interior points of constant runs (the interpolant is unchanged).
        var keptX: [Double] = [], keptY: [Double] = []
        let m = fitted.count
        for k in 0..<m {
            if k > 0 && k < m - 1 && fitted[k] == fitted[k - 1] && fitted[k] == fitted[k + 1] { continue }
            keptX.append(ux[k])
            keptY.append(fitted[k])
        }
        return IsotonicMap(x: keptX, y: keptY, xMin: ux[0], xMax: ux[m - 1])
    }

    /// Pool-adjacent-violators (non-decreasing): the fitted value of each point.
    public static func pava(_ values: [Double], _ weights: [Double]) -> [Double] {
        var vals: [Double] = [], wts: [Double] = [], sizes: [Int] = []
        vals.reserveCapacity(values.count)
        for (v, w) in zip(values, weights) {
            vals.append(v)
            wts.append(w)
            sizes.append(1)
            while vals.count > 1 && vals[vals.count - 2] > vals[vals.count - 1] {
                let v2 = vals.removeLast(), w2 = wts.removeLast(), s2 = sizes.removeLast()
                let v1 = vals.removeLast(), w1 = wts.removeLast(), s1 = sizes.removeLast()
                let total = w1 + w2
                vals.append((v1 * w1 + v2 * w2) / total)
                wts.append(total)
                sizes.append(s1 + s2)
            }
        }
        var out: [Double] = []
        out.reserveCapacity(values.count)
        for (v, s) in zip(vals, sizes) { out.append(contentsOf: repeatElement(v, count: s)) }
        return out
    }

    /// One map for C = 2 (on p₁), else one per class (on p_k against [y = k]).
    public static func fit(logits: Matrix, labels: [Int]) -> [IsotonicMap] {
        let probs = OneVsRestCalibration.softmax(logits)
        return OneVsRestCalibration.modelledClasses(logits.cols).map { k in
            fit1D(x: column(probs, k), y: labels.map { $0 == k ? 1 : 0 })
        }
    }

    /// Calibrated probabilities [N][C] for the maps of `fit` (`maps.count` is 1 for C = 2,
    /// else C = logits.cols).
    public static func apply(maps: [IsotonicMap], logits: Matrix) -> Matrix {
        let probs = OneVsRestCalibration.softmax(logits)
        return OneVsRestCalibration.combine(probs: probs, models: maps.count) { model, v in maps[model](v) }
    }

    static func column(_ m: Matrix, _ k: Int) -> [Double] {
        (0..<m.rows).map { m[$0, k] }
    }
}

/// Shared plumbing of the per-class (one-vs-rest) calibrators, isotonic and histogram
/// binning (docs/calibration.md §3.9-§3.10).
public enum OneVsRestCalibration {
    /// Stable row softmax (docs/calibration.md §1): shift by the row maximum, exponentiate, divide
    /// by the sum.
    public static func softmax(_ logits: Matrix) -> Matrix {
        var out = Matrix(zeros: logits.rows, logits.cols)
        let c = logits.cols
        for i in 0..<logits.rows {
            var m = -Double.infinity
            for j in 0..<c { m = max(m, logits[i, j]) }
            var sum = 0.0
            for j in 0..<c {
                let e = exp(logits[i, j] - m)
                out[i, j] = e
                sum += e
            }
            for j in 0..<c { out[i, j] /= sum }
        }
        return out
    }

    /// The classes that get a model: [1] for C = 2, else 0..<C.
    public static func modelledClasses(_ classes: Int) -> [Int] {
        classes == 2 ? [1] : Array(0..<classes)
    }

    /// The number of per-class models for C classes.
    public static func modelCount(classes: Int) -> Int { classes == 2 ? 1 : classes }

    /// Applies `map(model, p)` to the softmax probabilities: C = 2 (one model) gives
    /// [1 − q, q] with q the map of p₁; otherwise each column k goes through model k and the
    /// rows are renormalised.
    public static func combine(probs: Matrix, models: Int, _ map: (Int, Double) -> Double) -> Matrix {
        var out = Matrix(zeros: probs.rows, probs.cols)
        if models == 1 {
            precondition(probs.cols == 2)
            for i in 0..<probs.rows {
                let q = map(0, probs[i, 1])
                out[i, 0] = 1 - q
                out[i, 1] = q
            }
            return out
        }
        precondition(models == probs.cols)
        for i in 0..<probs.rows {
            for k in 0..<probs.cols { out[i, k] = map(k, probs[i, k]) }
        }
        renormalise(&out)
        return out
    }

    /// Divides each row by its sum; a row summing to 0 becomes uniform 1/C; values in
    /// (1, 1 + 1e−5] are set to 1 (scikit-learn's `CalibratedClassifierCV`).
    public static func renormalise(_ q: inout Matrix) {
        let c = q.cols
        for i in 0..<q.rows {
            var sum = 0.0
            for j in 0..<c { sum += q[i, j] }
            for j in 0..<c {
                var v = sum > 0 ? q[i, j] / sum : 1 / Double(c)
                if v > 1 && v <= 1 + 1e-5 { v = 1 }
                q[i, j] = v
            }
        }
    }
}
