#if canImport(Glibc)
    import Glibc
#endif

/// Ensemble temperature scaling (ETS; Zhang, Kailkhura & Han 2020, "Mix-n-Match";
/// docs/calibration.md §3.5): `p = w₀·softmax(z/T) + w₁·softmax(z) + w₂/C`, T by MSE over a
/// 200-point log grid plus bounded Brent, weights by an exact simplex QP.
public enum EnsembleTemperature {
    public static let method = "ensemble_temperature"

    /// MSE `(1/(N·C)) Σ (softmax(z/T) − Y)²`.
    static func mse(logits: Matrix, labels: [Int], temperature: Double) -> Double {
        let n = logits.rows, c = logits.cols
        var partial = [Double](repeating: 0, count: n)
        let inverse = 1 / temperature
        logits.values.withUnsafeBufferPointer { z in
            partial.withUnsafeMutableBufferPointer { out in
                Parallel.forEachRange(n, costPerRow: 6 * c) { range in
                    var s = [Double](repeating: 0, count: c), p = s
                    s.withUnsafeMutableBufferPointer { sb in
                        p.withUnsafeMutableBufferPointer { pb in
                            for i in range {
                                let row = z.row(i, width: c)
                                for j in 0..<c { sb[j] = row[j] * inverse }
                                SoftmaxRows.softmax(UnsafeBufferPointer(sb), into: pb)
                                var acc = 0.0
                                for j in 0..<c {
                                    let d = pb[j] - (labels[i] == j ? 1 : 0)
                                    acc += d * d
                                }
                                out[i] = acc
                            }
                        }
                    }
                }
            }
        }
        return partial.reduce(0, +) / Double(n * c)
    }

    /// argmin wᵀGw over the 3-simplex by enumeration (interior, edges 01/02/12, vertices),
    /// the first candidate winning ties.
    public static func simplexQP3(_ g: [[Double]]) -> [Double] {
        var candidates: [[Double]] = []
        // Interior: w = E u + c with E = [[1,0],[0,1],[-1,-1]], c = (0,0,1).
        let e = [[1.0, 0.0], [0.0, 1.0], [-1.0, -1.0]]
        let cv = [0.0, 0.0, 1.0]
        var a = [[0.0, 0.0], [0.0, 0.0]], bv = [0.0, 0.0]
        for p in 0..<2 {
            for q in 0..<2 {
                var s = 0.0
                for i in 0..<3 { for j in 0..<3 { s += e[i][p] * g[i][j] * e[j][q] } }
                a[p][q] = s
            }
            var s = 0.0
            for i in 0..<3 { for j in 0..<3 { s += e[i][p] * g[i][j] * cv[j] } }
            bv[p] = s
        }
        let det = a[0][0] * a[1][1] - a[0][1] * a[1][0]
        if abs(det) > 1e-300 {
            let u0 = (-bv[0] * a[1][1] + bv[1] * a[0][1]) / det
            let u1 = (-bv[1] * a[0][0] + bv[0] * a[1][0]) / det
            let w = [u0, u1, 1 - u0 - u1]
            if w.allSatisfy({ $0 >= 0 }) && w.allSatisfy({ $0.isFinite }) { candidates.append(w) }
        }
        for (i, j) in [(0, 1), (0, 2), (1, 2)] {
            let aa = g[i][i] - 2 * g[i][j] + g[j][j]
            let bb = g[i][j] - g[j][j]
            var s = aa > 0 ? -bb / aa : 0
            s = min(max(s, 0), 1)
            var w = [0.0, 0.0, 0.0]
            w[i] = s
            w[j] = 1 - s
            candidates.append(w)
        }
        for i in 0..<3 {
            var w = [0.0, 0.0, 0.0]
            w[i] = 1
            candidates.append(w)
        }
        func value(_ w: [Double]) -> Double {
            var s = 0.0
            for i in 0..<3 { for j in 0..<3 { s += w[i] * g[i][j] * w[j] } }
            return s
        }
        var best = 0
        var bestValue = value(candidates[0])
        for k in 1..<candidates.count {
            let v = value(candidates[k])
            if v < bestValue {
                best = k
                bestValue = v
            }
        }
        return candidates[best]
    }

    /// Fits T and the three weights; `temperatureBounds` defaults to the authors' [0.05, 5].
    public static func fit(
        logits: Matrix, labels: [Int], temperatureBounds: (lower: Double, upper: Double) = (0.05, 5.0), grid: Int = 200
    ) throws(SoftmaxCalibrationError) -> (CalibratorModel, FitReport) {
        let n = logits.rows, c = logits.cols
        let lo = log(temperatureBounds.lower), hi = log(temperatureBounds.upper)
        var ts = [Double](repeating: 0, count: grid)
        // numpy.linspace: lo + k·step, last = hi exactly.
        let step = (hi - lo) / Double(grid - 1)
        for k in 0..<grid { ts[k] = exp(k == grid - 1 ? hi : lo + Double(k) * step) }
        var bestIndex = 0
        var bestValue = Double.infinity
        for k in 0..<grid {
            let v = mse(logits: logits, labels: labels, temperature: ts[k])
            if k == 0 && !v.isFinite { throw .nonFiniteLoss }
            if v < bestValue {
                bestValue = v
                bestIndex = k
            }
        }
        let a = ts[max(bestIndex - 1, 0)], b = ts[min(bestIndex + 1, grid - 1)]
        let brent = CalibrationOptimizers.boundedBrent(a, b, xatol: 1e-12, maxIter: 500) {
            mse(logits: logits, labels: labels, temperature: $0)
        }
        let t = brent.x
        let p0 = TemperatureScaling.apply(temperature: t, logits: logits)
        let p1 = SoftmaxRows.softmax(logits)
        let uniform = 1 / Double(c)
        var g = [[Double]](repeating: [0, 0, 0], count: 3)
        var d = [0.0, 0.0, 0.0]
        for i in 0..<n {
            for j in 0..<c {
                let y = labels[i] == j ? 1.0 : 0.0
                d[0] = p0.values[i * c + j] - y
                d[1] = p1.values[i * c + j] - y
                d[2] = uniform - y
                for u in 0..<3 { for v in 0..<3 { g[u][v] += d[u] * d[v] } }
            }
        }
        let scale = 1 / Double(n * c)
        for u in 0..<3 { for v in 0..<3 { g[u][v] *= scale } }
        let w = simplexQP3(g)
        let model = CalibratorModel(
            method: method, classes: c, parameters: ["temperature": .number(t), "weights": .vector(w)])
        let notes: [String: CalibratorValue] = ["mse_temperature": .number(brent.f)]
        return (model, FitReport(iterations: brent.iterations, converged: brent.converged, notes: notes))
    }

    /// w₀·softmax(z/T) + w₁·softmax(z) + w₂/C.
    public static func apply(temperature: Double, weights w: [Double], logits: Matrix) -> Matrix {
        var p0 = TemperatureScaling.apply(temperature: temperature, logits: logits)
        let p1 = SoftmaxRows.softmax(logits)
        let u = w[2] / Double(logits.cols)
        for k in 0..<p0.values.count { p0.values[k] = w[0] * p0.values[k] + w[1] * p1.values[k] + u }
        return p0
    }

    public static func apply(_ model: CalibratorModel, logits: Matrix) throws(SoftmaxCalibrationError) -> Matrix {
        guard case .number(let t)? = model.parameters["temperature"], case .vector(let w)? = model.parameters["weights"], w.count == 3
        else { throw .shape("ensemble_temperature model needs temperature and 3 weights") }
        return apply(temperature: t, weights: w, logits: logits)
    }
}
