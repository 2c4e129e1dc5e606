#if canImport(Glibc)
    import Glibc
#endif

/// Vector scaling, matrix scaling (Guo et al. 2017) and Dirichlet calibration with ODIR
/// (Kull et al. 2019): `p = softmax(A(x))` with an affine map of the features x (logits, or
/// floored log-probabilities for Dirichlet), in the last-class gauge (docs/calibration.md
/// §3.2–§3.4). Newton (§3.11) for small problems, L-BFGS above the switch given there.
public enum LinearCalibration {
    /// ln(smallest normal float64): the floor of Dirichlet features (`dirichletcal`'s clip).
    public static let logTiny = log(2.2250738585072014e-308)

    /// Dirichlet features `max(log_softmax(z), ln tiny)` row-wise.
    public static func dirichletFeatures(_ logits: Matrix) -> Matrix {
        logits.mapRows(costPerEntry: 4) { row, o in
            TwoPassSoftmax.logSoftmax(row, into: o)
            for j in 0..<o.count where !(o[j] >= logTiny) { o[j] = logTiny }
        }
    }

    // MARK: shared fit and row pass

    /// Minimises `objective(θ, wantHessian)` from `theta0` as both linear maps do
    /// (docs/calibration.md §3.11): damped Newton with the Hessian (200 iterations by default)
    /// when `useNewton`, else L-BFGS on value and gradient (1000 by default). The report
    /// notes the final objective and which optimizer ran.
    static func minimize(
        theta0: [Double], useNewton: Bool, maxIter: Int?,
        objective: ([Double], Bool) -> (f: Double, g: [Double], h: [Double])?
    ) -> (CalibrationOptimizers.Result, FitReport) {
        let result =
            useNewton
            ? CalibrationOptimizers.dampedNewton(x0: theta0, maxIter: maxIter ?? 200) { objective($0, true) }
            : CalibrationOptimizers.lbfgs(x0: theta0, maxIter: maxIter ?? 1000) { objective($0, false).map { ($0.f, $0.g) } }
        let notes: [String: CalibratorValue] = [
            "objective": .number(result.f), "optimizer": .text(useNewton ? "newton" : "lbfgs"),
        ]
        return (result, FitReport(iterations: result.iterations, converged: result.converged, notes: notes))
    }

    /// Scores S [N][C] → (mean NLL, probabilities P [N][C]); nil when not finite.
    static func nllAndProbabilities(scores s: Matrix, labels: [Int]) -> (f: Double, p: Matrix)? {
        let n = s.rows, c = s.cols
        var p = Matrix(zeros: n, c)
        var partial = [Double](repeating: 0, count: n)
        s.values.withUnsafeBufferPointer { sv in
            p.values.withUnsafeMutableBufferPointer { pv in
                partial.withUnsafeMutableBufferPointer { out in
                    let base = pv.baseAddress!
                    Parallel.forEachRange(n, costPerRow: 4 * c) { range in
                        for i in range {
                            let row = sv.row(i, width: c)
                            let (m, excess) = TwoPassSoftmax.logSumExpAboveMax(row)
                            out[i] = (m - row[labels[i]]) + excess
                            TwoPassSoftmax.expShifted(row, shift: m + excess, into: UnsafeMutableBufferPointer(start: base + i * c, count: c))
                        }
                    }
                }
            }
        }
        let f = partial.reduce(0, +) / Double(n)
        return f.isFinite ? (f, p) : nil
    }

    // MARK: vector scaling

    /// Objective, gradient and (optionally) Hessian of vector scaling at θ = [w (C), b (C−1)].
    public static func vectorObjective(
        theta: [Double], z: Matrix, labels: [Int], l2: Double, hessian: Bool
    ) -> (f: Double, g: [Double], h: [Double])? {
        let n = z.rows, c = z.cols, np = 2 * c - 1
        guard theta.allSatisfy({ $0.isFinite }) else { return nil }
        var s = Matrix(zeros: n, c)
        for i in 0..<n {
            for j in 0..<c { s.values[i * c + j] = theta[j] * z.values[i * c + j] + (j < c - 1 ? theta[c + j] : 0) }
        }
        guard let (f0, p) = nllAndProbabilities(scores: s, labels: labels) else { return nil }
        var f = f0
        let inv = 1 / Double(n)
        var g = [Double](repeating: 0, count: np)
        for i in 0..<n {
            for j in 0..<c {
                let r = p.values[i * c + j] - (labels[i] == j ? 1 : 0)
                g[j] += r * z.values[i * c + j]
                if j < c - 1 { g[c + j] += r }
            }
        }
        for k in 0..<np { g[k] *= inv }
        if l2 > 0 {
            for j in 0..<c {
                f += l2 * (theta[j] - 1) * (theta[j] - 1)
                g[j] += 2 * l2 * (theta[j] - 1)
            }
            for j in 0..<(c - 1) {
                f += l2 * theta[c + j] * theta[c + j]
                g[c + j] += 2 * l2 * theta[c + j]
            }
        }
        guard hessian else { return (f, g, []) }
        // Q = [P ⊙ Z | P] (N × 2C); H = (1/N)(diag terms − QᵀQ) restricted to the free columns.
        let q2 = 2 * c
        var q = [Double](repeating: 0, count: n * q2)
        var dz2 = [Double](repeating: 0, count: c), dz = dz2, d1 = dz2
        for i in 0..<n {
            for j in 0..<c {
                let pij = p.values[i * c + j], zij = z.values[i * c + j]
                q[i * q2 + j] = pij * zij
                q[i * q2 + c + j] = pij
                dz2[j] += pij * zij * zij
                dz[j] += pij * zij
                d1[j] += pij
            }
        }
        var qtq = [Double](repeating: 0, count: q2 * q2)
        q.withUnsafeBufferPointer { qb in
            qtq.withUnsafeMutableBufferPointer { out in
                try? BLAS.gemm(.transpose, .none, m: q2, n: q2, k: n, a: qb, b: qb, c: out)
            }
        }
        // Free parameter k ↦ column of Q: w_j → j, b_j → C + j (j < C−1).
        var h = [Double](repeating: 0, count: np * np)
        for a in 0..<np {
            for b in 0..<np {
                h[a * np + b] = -qtq[a * q2 + b] * inv
            }
        }
        for j in 0..<c {
            h[j * np + j] += dz2[j] * inv
            if j < c - 1 {
                h[j * np + (c + j)] += dz[j] * inv
                h[(c + j) * np + j] += dz[j] * inv
                h[(c + j) * np + (c + j)] += d1[j] * inv
            }
        }
        if l2 > 0 { for k in 0..<np { h[k * np + k] += 2 * l2 } }
        return (f, g, h)
    }

    /// Fits vector scaling on logits; `l2` adds `l2·Σ((w−1)² + b²)`.
    public static func fitVector(
        logits: Matrix, labels: [Int], l2: Double = 0, maxIter: Int? = nil
    ) throws(SoftmaxCalibrationError) -> (CalibratorModel, FitReport) {
        let c = logits.cols, np = 2 * c - 1
        var theta0 = [Double](repeating: 0, count: np)
        for j in 0..<c { theta0[j] = 1 }
        guard vectorObjective(theta: theta0, z: logits, labels: labels, l2: l2, hessian: false) != nil else { throw .nonFiniteLoss }
        let (result, report) = minimize(theta0: theta0, useNewton: np <= 600, maxIter: maxIter) {
            vectorObjective(theta: $0, z: logits, labels: labels, l2: l2, hessian: $1)
        }
        let w = Array(result.x[0..<c])
        let b = Array(result.x[c..<np]) + [0]
        return (CalibratorModel(method: "vector", classes: c, parameters: ["w": .vector(w), "b": .vector(b)]), report)
    }

    /// softmax(w ⊙ z + b) row-wise.
    public static func applyVector(w: [Double], b: [Double], logits: Matrix) -> Matrix {
        let n = logits.rows, c = logits.cols
        var s = Matrix(zeros: n, c)
        for i in 0..<n { for j in 0..<c { s.values[i * c + j] = w[j] * logits.values[i * c + j] + b[j] } }
        return SoftmaxRows.softmax(s)
    }

    // MARK: matrix scaling / Dirichlet

    /// Per-entry regulariser weights of the free rows of [W | b] ((C−1) × (C+1)).
    static func odirWeights(classes c: Int, lambda: Double, mu: Double) -> [Double] {
        let m = c + 1
        var r = [Double](repeating: 0, count: (c - 1) * m)
        for row in 0..<(c - 1) {
            for col in 0..<m {
                if col == c {
                    r[row * m + col] = mu / Double(c)
                } else if col != row {
                    r[row * m + col] = lambda / Double(c * (c - 1))
                }
            }
        }
        return r
    }

    /// Objective, gradient and (optionally) Hessian of the full affine map at θ = free rows
    /// of [W | b], row-major ((C−1) × (C+1)).
    public static func fullObjective(
        theta: [Double], x: Matrix, labels: [Int], reg: [Double], hessian: Bool
    ) -> (f: Double, g: [Double], h: [Double])? {
        let n = x.rows, c = x.cols, m = c + 1, np = (c - 1) * m
        guard theta.allSatisfy({ $0.isFinite }) else { return nil }
        // S = X Wᵀ + b with the last column 0: gemm of X (N×C) with W_freeᵀ (C×(C−1)).
        var wFree = [Double](repeating: 0, count: (c - 1) * c)
        for r in 0..<(c - 1) { for k in 0..<c { wFree[r * c + k] = theta[r * m + k] } }
        var sFree = [Double](repeating: 0, count: n * (c - 1))
        x.values.withUnsafeBufferPointer { xb in
            wFree.withUnsafeBufferPointer { wb in
                sFree.withUnsafeMutableBufferPointer { out in
                    try? BLAS.gemm(.none, .transpose, m: n, n: c - 1, k: c, a: xb, b: wb, c: out)
                }
            }
        }
        var s = Matrix(zeros: n, c)
        for i in 0..<n {
            for r in 0..<(c - 1) { s.values[i * c + r] = sFree[i * (c - 1) + r] + theta[r * m + c] }
        }
        guard let (f0, p) = nllAndProbabilities(scores: s, labels: labels) else { return nil }
        var f = f0
        let inv = 1 / Double(n)
        // Gradient: (P − Y)[:, :C−1]ᵀ [X | 1] / N.
        var g = [Double](repeating: 0, count: np)
        for i in 0..<n {
            let y = labels[i]
            for r in 0..<(c - 1) {
                let rr = p.values[i * c + r] - (y == r ? 1 : 0)
                if rr == 0 { continue }
                let base = r * m
                for k in 0..<c { g[base + k] += rr * x.values[i * c + k] }
                g[base + c] += rr
            }
        }
        for k in 0..<np {
            g[k] = g[k] * inv + 2 * reg[k] * theta[k]
            f += reg[k] * theta[k] * theta[k]
        }
        guard f.isFinite else { return nil }
        guard hessian else { return (f, g, []) }
        // H = (1/N) Σ_i kron(diag(p̃_i) − p̃_i p̃_iᵀ, x̃_i x̃_iᵀ), p̃ = p[:C−1], x̃ = [x, 1];
        // the outer-product part is QᵀQ with Q_i = kron(p̃_i, x̃_i), in row blocks.
        var h = [Double](repeating: 0, count: np * np)
        var diagBlocks = [Double](repeating: 0, count: (c - 1) * m * m)
        let block = max(1, min(n, 262_144 / max(np, 1)))
        var q = [Double](repeating: 0, count: block * np)
        var start = 0
        while start < n {
            let rows = min(block, n - start)
            for t in 0..<rows {
                let i = start + t
                for r in 0..<(c - 1) {
                    let pir = p.values[i * c + r]
                    let base = t * np + r * m
                    for k in 0..<c { q[base + k] = pir * x.values[i * c + k] }
                    q[base + c] = pir
                }
            }
            q.withUnsafeBufferPointer { qb in
                h.withUnsafeMutableBufferPointer { hb in
                    let qs = UnsafeBufferPointer(rebasing: qb[0..<(rows * np)])
                    try? BLAS.gemm(.transpose, .none, m: np, n: np, k: rows, alpha: -inv, a: qs, b: qs, beta: 1, c: hb)
                }
            }
            start += rows
        }
        // Diagonal blocks Σ_i p_ir x̃_i x̃_iᵀ.
        var xa = [Double](repeating: 0, count: n * m)
        for i in 0..<n {
            for k in 0..<c { xa[i * m + k] = x.values[i * c + k] }
            xa[i * m + c] = 1
        }
        var weighted = [Double](repeating: 0, count: n * m)
        for r in 0..<(c - 1) {
            for i in 0..<n {
                let pir = p.values[i * c + r]
                for k in 0..<m { weighted[i * m + k] = pir * xa[i * m + k] }
            }
            xa.withUnsafeBufferPointer { xb in
                weighted.withUnsafeBufferPointer { wb in
                    diagBlocks.withUnsafeMutableBufferPointer { db in
                        let out = UnsafeMutableBufferPointer(rebasing: db[(r * m * m)..<((r + 1) * m * m)])
                        try? BLAS.gemm(.transpose, .none, m: m, n: m, k: n, alpha: inv, a: xb, b: wb, c: out)
                    }
                }
            }
            for a in 0..<m {
                for b in 0..<m { h[(r * m + a) * np + (r * m + b)] += diagBlocks[r * m * m + a * m + b] }
            }
        }
        for k in 0..<np { h[k * np + k] += 2 * reg[k] }
        return (f, g, h)
    }

    /// Fits `p = softmax(W x + b)` (last-class gauge) on features `x` (logits for matrix
    /// scaling, `dirichletFeatures` for Dirichlet) with the ODIR regulariser λ, μ.
    public static func fitFull(
        method: String, features x: Matrix, labels: [Int], lambda: Double, mu: Double, maxIter: Int? = nil
    ) throws(SoftmaxCalibrationError) -> (CalibratorModel, FitReport) {
        let c = x.cols, m = c + 1
        let reg = odirWeights(classes: c, lambda: lambda, mu: mu)
        var theta0 = [Double](repeating: 0, count: (c - 1) * m)
        for r in 0..<(c - 1) {
            theta0[r * m + r] = 1
            theta0[r * m + (c - 1)] = -1
        }
        guard fullObjective(theta: theta0, x: x, labels: labels, reg: reg, hessian: false) != nil else { throw .nonFiniteLoss }
        let (result, report) = minimize(theta0: theta0, useNewton: c <= 36, maxIter: maxIter) {
            fullObjective(theta: $0, x: x, labels: labels, reg: reg, hessian: $1)
        }
        var w = Matrix(zeros: c, c)
        var b = [Double](repeating: 0, count: c)
        for r in 0..<(c - 1) {
            for k in 0..<c { w[r, k] = result.x[r * m + k] }
            b[r] = result.x[r * m + c]
        }
        return (CalibratorModel(method: method, classes: c, parameters: ["W": .matrix(w), "b": .vector(b)]), report)
    }

    /// Matrix scaling on logits (λ = μ = 0 by default).
    public static func fitMatrix(logits: Matrix, labels: [Int], lambda: Double = 0, mu: Double = 0) throws(SoftmaxCalibrationError) -> (CalibratorModel, FitReport) {
        try fitFull(method: "matrix", features: logits, labels: labels, lambda: lambda, mu: mu)
    }

    /// Dirichlet calibration with ODIR (λ = μ = 1e−3 by default).
    public static func fitDirichlet(logits: Matrix, labels: [Int], lambda: Double = 1e-3, mu: Double = 1e-3) throws(SoftmaxCalibrationError) -> (CalibratorModel, FitReport) {
        try fitFull(method: "dirichlet", features: dirichletFeatures(logits), labels: labels, lambda: lambda, mu: mu)
    }

    /// softmax(X Wᵀ + b) row-wise.
    public static func applyFull(w: Matrix, b: [Double], features x: Matrix) -> Matrix {
        let n = x.rows, c = x.cols
        var s = Matrix(zeros: n, c)
        x.values.withUnsafeBufferPointer { xb in
            w.values.withUnsafeBufferPointer { wb in
                s.values.withUnsafeMutableBufferPointer { out in
                    try? BLAS.gemm(.none, .transpose, m: n, n: c, k: c, a: xb, b: wb, c: out)
                }
            }
        }
        for i in 0..<n { for j in 0..<c { s.values[i * c + j] += b[j] } }
        return SoftmaxRows.softmax(s)
    }

    /// Applies a fitted vector, matrix or dirichlet model to logits.
    public static func apply(_ model: CalibratorModel, logits: Matrix) throws(SoftmaxCalibrationError) -> Matrix {
        guard logits.cols == model.classes else {
            throw .shape("logits have \(logits.cols) columns; the calibrator was fitted for \(model.classes)")
        }
        switch model.method {
        case "vector":
            guard case .vector(let w)? = model.parameters["w"], case .vector(let b)? = model.parameters["b"] else {
                throw .shape("vector model needs w and b")
            }
            return applyVector(w: w, b: b, logits: logits)
        default:
            guard case .matrix(let w)? = model.parameters["W"], case .vector(let b)? = model.parameters["b"] else {
                throw .shape("\(model.method) model needs W and b")
            }
            let x = model.method == "dirichlet" ? dirichletFeatures(logits) : logits
            return applyFull(w: w, b: b, features: x)
        }
    }
}
