#if canImport(Glibc)
    import Glibc
#endif

/// Why a softmax-family calibrator cannot be fitted or applied (mapped to 422 by the service).
public enum SoftmaxCalibrationError: Error, Sendable, Equatable {
    /// The objective is not finite at the starting point (docs/calibration.md §3.11).
    case nonFiniteLoss
    /// Inputs whose shapes do not fit the model, with a message naming them.
    case shape(String)
}

/// Row helpers shared by the softmax-family calibrators (stable softmax with the Two-Pass
/// kernel, argmax with the lowest-index tie rule).
public enum SoftmaxRows {
    /// softmax(row) into `out` (at least as long as `row`).
    @inline(__always)
    public static func softmax(_ row: UnsafeBufferPointer<Double>, into out: UnsafeMutableBufferPointer<Double>) {
        let (m, excess) = TwoPassSoftmax.logSumExpAboveMax(row)
        TwoPassSoftmax.expShifted(row, shift: m + excess, into: out)
    }

    /// Row-wise softmax of a whole matrix, rows split across cores.
    public static func softmax(_ logits: Matrix) -> Matrix {
        logits.mapRows(costPerEntry: 4) { softmax($0, into: $1) }
    }

    /// Index of the largest entry; the lowest index wins ties.
    @inline(__always)
    public static func argmax(_ row: UnsafeBufferPointer<Double>) -> Int {
        var best = 0
        for j in 1..<max(1, row.count) where row[j] > row[best] { best = j }
        return best
    }

    /// Mean NLL of softmax rows of `logits` at `labels`, or nil when not finite.
    public static func meanNLL(_ logits: Matrix, _ labels: [Int]) -> Double {
        let n = logits.rows, c = logits.cols
        var partial = [Double](repeating: 0, count: n)
        logits.values.withUnsafeBufferPointer { z in
            partial.withUnsafeMutableBufferPointer { out in
                Parallel.forEachRange(n, costPerRow: 2 * c) { range in
                    for i in range {
                        let row = z.row(i, width: c)
                        let (m, excess) = TwoPassSoftmax.logSumExpAboveMax(row)
                        out[i] = (m - row[labels[i]]) + excess
                    }
                }
            }
        }
        return partial.reduce(0, +) / Double(max(n, 1))
    }
}

/// Temperature scaling (Guo et al. 2017; docs/calibration.md §3.1): p = softmax(z / T),
/// fitted by a safeguarded Newton on β = 1/T, in which the mean NLL is convex.
public enum TemperatureScaling {
    public static let method = "temperature"

    /// The mean NLL at β and its first two derivatives in β (rows split across cores).
    public static func derivatives(logits: Matrix, labels: [Int], rowMax: [Double], beta: Double) -> (f: Double, g: Double, h: Double) {
        let n = logits.rows, c = logits.cols
        var fs = [Double](repeating: 0, count: n)
        var gs = fs, hs = fs
        logits.values.withUnsafeBufferPointer { z in
            fs.withUnsafeMutableBufferPointer { fOut in
                gs.withUnsafeMutableBufferPointer { gOut in
                    hs.withUnsafeMutableBufferPointer { hOut in
                        Parallel.forEachRange(n, costPerRow: 6 * c) { range in
                            var scaled = [Double](repeating: 0, count: c)
                            var e = scaled
                            scaled.withUnsafeMutableBufferPointer { s in
                                e.withUnsafeMutableBufferPointer { ex in
                                    for i in range {
                                        let row = z.row(i, width: c)
                                        let m = rowMax[i]
                                        for j in 0..<c { s[j] = beta * (row[j] - m) }
                                        TwoPassSoftmax.expShifted(UnsafeBufferPointer(s), shift: 0, into: ex)
                                        // Four independent accumulators of Σe, Σe·u, Σe·u² (u = z − max).
                                        var a0 = SIMD4<Double>(), a1 = SIMD4<Double>(), a2 = SIMD4<Double>()
                                        var j = 0
                                        while j + 4 <= c {
                                            let w = SIMD4(ex[j], ex[j + 1], ex[j + 2], ex[j + 3])
                                            let u = SIMD4(row[j], row[j + 1], row[j + 2], row[j + 3]) - m
                                            let wu = w * u
                                            a0 += w
                                            a1 += wu
                                            a2 += wu * u
                                            j += 4
                                        }
                                        var sum = a0.sum(), su = a1.sum(), su2 = a2.sum()
                                        while j < c {
                                            let u = row[j] - m
                                            let w = ex[j]
                                            sum += w
                                            su += w * u
                                            su2 += w * u * u
                                            j += 1
                                        }
                                        let eu = su / sum
                                        let uy = row[labels[i]] - m
                                        fOut[i] = log(sum) - beta * uy
                                        gOut[i] = eu - uy
                                        hOut[i] = max(0, su2 / sum - eu * eu)
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        let scale = 1 / Double(n)
        return (fs.reduce(0, +) * scale, gs.reduce(0, +) * scale, hs.reduce(0, +) * scale)
    }

    static func rowMaxima(_ logits: Matrix) -> [Double] {
        var out = [Double](repeating: 0, count: logits.rows)
        let c = logits.cols
        logits.values.withUnsafeBufferPointer { z in
            for i in 0..<logits.rows {
                var m = -Double.infinity
                for j in 0..<c where z[i * c + j] > m { m = z[i * c + j] }
                out[i] = m
            }
        }
        return out
    }

    /// Fits T on `logits` [N][C] and `labels`; `logBetaBounds` bounds log(1/T).
    public static func fit(
        logits: Matrix, labels: [Int], logBetaBounds: (lower: Double, upper: Double) = (-10, 10)
    ) throws(SoftmaxCalibrationError) -> (CalibratorModel, FitReport) {
        let rowMax = rowMaxima(logits)
        let start = derivatives(logits: logits, labels: labels, rowMax: rowMax, beta: 1)
        guard start.f.isFinite, start.g.isFinite else { throw .nonFiniteLoss }
        let result = CalibrationOptimizers.safeguardedNewton(
            lo: exp(logBetaBounds.lower), hi: exp(logBetaBounds.upper), start: 1, maxIter: 100, tol: 1e-12
        ) { beta in
            let d = derivatives(logits: logits, labels: labels, rowMax: rowMax, beta: beta)
            return (d.g, d.h)
        }
        var notes: [String: CalibratorValue] = ["beta": .number(result.x)]
        if result.atBound < 0 { notes["at_bound"] = .text("max_temperature") }
        if result.atBound > 0 { notes["at_bound"] = .text("min_temperature") }
        let model = CalibratorModel(method: method, classes: logits.cols, parameters: ["temperature": .number(1 / result.x)])
        return (model, FitReport(iterations: result.iterations, converged: result.converged, notes: notes))
    }

    /// softmax(z / T) row-wise: (z − max z)/T written into the output, its log-sum-exp,
    /// then the exponentials in place (no scratch). Dividing the shifted row (rather than
    /// multiplying by 1/T) keeps every entry ≤ 0 and finite or −∞ for any T > 0, even one
    /// whose reciprocal overflows (T = 5e-324 gives the one-hot of the maximum).
    public static func apply(temperature: Double, logits: Matrix) -> Matrix {
        let n = logits.rows, c = logits.cols
        let values = [Double](unsafeUninitializedCapacity: n * c) { buffer, count in
            logits.values.withUnsafeBufferPointer { z in
                let base = buffer.baseAddress!
                Parallel.forEachRange(n, costPerRow: 5 * c) { range in
                    for i in range {
                        let o = UnsafeMutableBufferPointer(start: base + i * c, count: c)
                        let row = z.row(i, width: c)
                        var top = -Double.infinity
                        for j in 0..<c where row[j] > top { top = row[j] }
                        for j in 0..<c { o[j] = (row[j] - top) / temperature }
                        let scaled = UnsafeBufferPointer(o)
                        let (m, excess) = TwoPassSoftmax.logSumExpAboveMax(scaled)
                        TwoPassSoftmax.expShifted(scaled, shift: m + excess, into: o)
                    }
                }
            }
            count = n * c
        }
        return Matrix(rows: n, cols: c, values: values)
    }

    /// Applies a fitted model (parameter `temperature`).
    public static func apply(_ model: CalibratorModel, logits: Matrix) throws(SoftmaxCalibrationError) -> Matrix {
        guard case .number(let t)? = model.parameters["temperature"] else { throw .shape("model has no temperature") }
        return apply(temperature: t, logits: logits)
    }
}
