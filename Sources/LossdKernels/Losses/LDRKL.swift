import CLossdKernels

#if canImport(Glibc)
    import Glibc
#endif

/// Label-distributionally robust losses with a KL regulariser (Zhu, Ying, Yang, ICML 2023;
/// docs/losses.md §8): `ldr_kl` with a fixed λ and `aldr_kl` with an instance-level λ updated from
/// the previous one.
///
/// Both evaluate, per row, scores `f = score_transform(x)` and with `ζ_k = c·[k ≠ y] + f_k − f_y`
/// the closed form `LDR(λ) = λ·(LSE(ζ/λ) − log C)`, whose gradient with respect to f is
/// `softmax(ζ/λ) − e_y`, chained back through the score transform.
public enum LDRKL {
    /// How row logits become scores (docs/losses.md §8.1).
    public enum ScoreTransform: String, Sendable, CaseIterable {
        /// f_k = softplus(x_k) / mean_j softplus(x_j) (the code's `LDRLoss_V1`).
        case softplusMean = "softplus_mean"
        /// f_k = x_k / mean_j |x_j| (the code's `ALDRLoss_V1`); an all-zero row gives f = 0.
        case l1Mean = "l1_mean"
        /// f = x, the paper's formula on raw scores.
        case none
    }

    public struct Parameters: Sendable {
        /// λ > 0: large λ → mean of ζ (robust), small λ → max of ζ (hinge).
        public var lambda: Double
        /// Margin c ≥ 0 added to every wrong class.
        public var margin: Double
        public var scoreTransform: ScoreTransform

        public init(lambda: Double = 10, margin: Double = 0.1, scoreTransform: ScoreTransform = .softplusMean) {
            self.lambda = lambda
            self.margin = margin
            self.scoreTransform = scoreTransform
        }
    }

    public struct AdaptiveParameters: Sendable {
        /// λ₀ > 0, the λ every row starts from and is pulled back to.
        public var lambda0: Double
        /// α > 1, scale of the penalty `(α log C/(2λ₀))(λ − λ₀)²`.
        public var alpha: Double
        public var margin: Double
        public var scoreTransform: ScoreTransform
        /// λ updates per call, 1...100 (the code does one).
        public var iterations: Int

        public init(
            lambda0: Double = 10, alpha: Double = 2, margin: Double = 0.1, scoreTransform: ScoreTransform = .l1Mean,
            iterations: Int = 1
        ) {
            self.lambda0 = lambda0
            self.alpha = alpha
            self.margin = margin
            self.scoreTransform = scoreTransform
            self.iterations = iterations
        }
    }

    /// `ldr_kl` (docs/losses.md §8.2): ℓ = λ·(LSE(ζ/λ) − log C) per row; C = 1 gives 0.
    /// Extras: `scores` [N][C], the transformed scores f.
    public static func evaluate(
        logits: Matrix, labels: [Int], parameters: Parameters, gradient: Bool
    ) throws(LossInputError) -> LossOutput {
        let n = try Validate.labels(labels, for: logits).rows
        let lambdas = [Double](repeating: parameters.lambda, count: n)
        return try run(
            logits: logits, labels: labels, lambdas: lambdas, margin: parameters.margin,
            transform: parameters.scoreTransform, update: nil, gradient: gradient)
    }

    /// `aldr_kl` (docs/losses.md §8.3): starting from `lambdaPrev` (λ₀ when nil), `iterations`
    /// updates `λ ← λ₀(1 − KL(q̃‖u)/(α log C))` with `q̃ = softmax(f/λ) + 1e-5` renormalised, then
    /// ℓ = LDR(λ) − (α log C/(2λ₀))(λ − λ₀)² with λ held constant for the gradient. Extras:
    /// `lambda_new` [N] (the next call's `lambda_prev`), `kl` [N], `scores` [N][C].
    public static func adaptive(
        logits: Matrix, labels: [Int], lambdaPrev: [Double]?, parameters: AdaptiveParameters, gradient: Bool
    ) throws(LossInputError) -> LossOutput {
        let n = logits.rows, c = logits.cols
        guard c >= 2 else {
            throw LossInputError(.invalidShape, field: "/logits", "`logits` must have at least 2 columns")
        }
        try Validate.labels(labels, rows: n, classes: c)
        if let lambdaPrev {
            try Validate.count(lambdaPrev.count, name: "lambda_prev", expected: n)
            for (i, l) in lambdaPrev.enumerated() where !(l > 0) {
                throw LossInputError(.invalidInput, field: "/lambda_prev/\(i)", "`lambda_prev[\(i)]` must be > 0")
            }
        }
        let lambdas = lambdaPrev ?? [Double](repeating: parameters.lambda0, count: n)
        let update = Update(lambda0: parameters.lambda0, alpha: parameters.alpha, iterations: parameters.iterations)
        return try run(
            logits: logits, labels: labels, lambdas: lambdas, margin: parameters.margin,
            transform: parameters.scoreTransform, update: update, gradient: gradient)
    }

    // MARK: - Row kernel

    /// The ALDR λ update and penalty.
    struct Update {
        let lambda0: Double
        let alpha: Double
        let iterations: Int
    }

    /// Evaluates every row (in parallel for large batches): scores, optional λ update,
    /// the LDR value (minus the ALDR penalty) and the gradient. Extras: `scores`, and with
    /// an update `lambda_new` and `kl`.
    static func run(
        logits: Matrix, labels: [Int], lambdas: [Double], margin: Double, transform: ScoreTransform, update: Update?,
        gradient: Bool
    ) throws(LossInputError) -> LossOutput {
        let n = logits.rows, c = logits.cols
        var values = [Double](repeating: 0, count: n)
        var scores = [Double](repeating: 0, count: n * c)
        var grad = [Double](repeating: 0, count: gradient ? n * c : 0)
        var lambdaOut = lambdas
        var klOut = [Double](repeating: 0, count: n)
        let logC = log(Double(c))

        withMutableBuffers(&values, &scores, &grad, &lambdaOut) { valuesOut, scoresOut, gradOut, lambdaBuf in
            klOut.withUnsafeMutableBufferPointer { klBuf in
                logits.values.withUnsafeBufferPointer { z in
                    Parallel.forEachRange(n, costPerRow: 8 * c) { rows in
                        // Workspace per range: chain-rule factors, shifted scores, softmax.
                        withScratch(c) { aux, s, g in
                            for r in rows {
                                let x = z.row(r, width: c)
                                let f = UnsafeMutableBufferPointer(rebasing: scoresOut[(r * c)..<((r + 1) * c)])
                                let chain = scoreTransform(x, transform, f: f, aux: aux)
                                var lambda = lambdaBuf[r]
                                if let update {
                                    var kl = 0.0
                                    for _ in 0..<update.iterations {
                                        kl = smoothedKL(UnsafeBufferPointer(f), lambda: lambda, logC: logC, s: s, q: g)
                                        lambda = update.lambda0 - update.lambda0 * kl / (update.alpha * logC)
                                    }
                                    lambdaBuf[r] = lambda
                                    klBuf[r] = kl
                                }
                                var value = ldr(
                                    UnsafeBufferPointer(f), y: labels[r], lambda: lambda, margin: margin, logC: logC,
                                    s: s, g: gradient ? g : nil)
                                if let update {
                                    let d = lambda - update.lambda0
                                    value -= 0.5 * update.alpha * logC / update.lambda0 * (d * d)
                                }
                                valuesOut[r] = value
                                guard gradient else { continue }
                                let out = UnsafeMutableBufferPointer(rebasing: gradOut[(r * c)..<((r + 1) * c)])
                                chainBack(
                                    UnsafeBufferPointer(g), x: x, f: UnsafeBufferPointer(f), aux: UnsafeBufferPointer(aux),
                                    transform: transform, chain: chain, into: out)
                            }
                        }
                    }
                }
            }
        }
        guard values.allSatisfy(\.isFinite) else { throw .overflow }
        var output = LossOutput(
            values: values, denominators: [Double](repeating: 1, count: n),
            extras: ["scores": .matrix(Matrix(rows: n, cols: c, values: scores))])
        if update != nil {
            output.extras["lambda_new"] = .vector(lambdaOut)
            output.extras["kl"] = .vector(klOut)
        }
        if gradient { output.gradients["logits"] = Tensor(shape: [n, c], values: grad) }
        return output
    }

    /// Writes f = score_transform(x) (and in `aux` the softplus chain factors
    /// ρ_k = σ(x_k)/softplus(x_k)). Returns what the l1_mean chain needs: `scale` = max|x| and
    /// `norm` = mean|x/scale| (both 0 for an all-zero row, whose scores and gradient are 0);
    /// (1, 1) for the other transforms.
    @inline(__always)
    static func scoreTransform(
        _ x: UnsafeBufferPointer<Double>, _ transform: ScoreTransform, f: UnsafeMutableBufferPointer<Double>,
        aux: UnsafeMutableBufferPointer<Double>
    ) -> (scale: Double, norm: Double) {
        let c = x.count
        switch transform {
        case .none:
            for k in 0..<c { f[k] = x[k] }
            return (1, 1)
        case .softplusMean:
            // f = exp(ls − (LSE(ls) − log C)) with ls = log softplus(x): no overflow at ±1e30,
            // no underflow of softplus below −745. Vector passes (CLossdKernels): ls into f and
            // σ(x)/softplus(x) into aux, then f = exp(ls − logMean) in place (arguments ≤ log C).
            guard let xBase = x.baseAddress, let fBase = f.baseAddress, let auxBase = aux.baseAddress else { return (1, 1) }
            lossd_log_softplus_f64(xBase, Int64(c), fBase, auxBase)
            let logMean = StableMath.logSumExp(UnsafeBufferPointer(f)) - log(Double(c))
            TwoPassSoftmax.expShifted(UnsafeBufferPointer(f), shift: logMean, into: f)
            return (1, 1)
        case .l1Mean:
            // Divide by max|x| first so that Σ|x| cannot overflow.
            var scale = 0.0
            for k in 0..<c { scale = max(scale, abs(x[k])) }
            guard scale > 0 else {
                for k in 0..<c { f[k] = 0 }
                return (0, 0)
            }
            var total = 0.0
            for k in 0..<c { total += abs(x[k] / scale) }
            let norm = total / Double(c)
            for k in 0..<c { f[k] = x[k] / scale / norm }
            return (scale, norm)
        }
    }

    /// ∂ℓ/∂x from gf = ∂ℓ/∂f through the score transform (docs/losses.md §8.1).
    @inline(__always)
    static func chainBack(
        _ gf: UnsafeBufferPointer<Double>, x: UnsafeBufferPointer<Double>, f: UnsafeBufferPointer<Double>,
        aux: UnsafeBufferPointer<Double>, transform: ScoreTransform, chain: (scale: Double, norm: Double),
        into out: UnsafeMutableBufferPointer<Double>
    ) {
        let c = x.count
        switch transform {
        case .none:
            for k in 0..<c { out[k] = gf[k] }
        case .softplusMean:
            var inner = 0.0
            for k in 0..<c { inner += gf[k] * f[k] }
            inner /= Double(c)
            for k in 0..<c { out[k] = aux[k] * f[k] * (gf[k] - inner) }
        case .l1Mean:
            guard chain.norm > 0 else {
                for k in 0..<c { out[k] = 0 }
                return
            }
            var inner = 0.0
            for k in 0..<c { inner += gf[k] * f[k] }
            inner /= Double(c)
            let divisor = chain.norm * chain.scale
            for k in 0..<c {
                let sign: Double = x[k] > 0 ? 1 : (x[k] < 0 ? -1 : 0)
                out[k] = (gf[k] - sign * inner) / divisor
            }
        }
    }

    /// λ·(LSE(ζ/λ) − log C), evaluated as `max ζ + λ·(log Σ exp((ζ − max ζ)/λ) − log C)` so that
    /// ζ/λ never overflows; writes `softmax(ζ/λ) − e_y` into `g` when given. `s` is workspace.
    @inline(__always)
    static func ldr(
        _ f: UnsafeBufferPointer<Double>, y: Int, lambda: Double, margin: Double, logC: Double,
        s: UnsafeMutableBufferPointer<Double>, g: UnsafeMutableBufferPointer<Double>?
    ) -> Double {
        let c = f.count
        let fy = f[y]
        var top = 0.0  // ζ_y = 0
        for k in 0..<c {
            let zeta = (k == y ? 0 : margin) + f[k] - fy
            s[k] = zeta
            top = max(top, zeta)
        }
        for k in 0..<c { s[k] = max((s[k] - top) / lambda, -Double.greatestFiniteMagnitude) }
        let (_, excess) = TwoPassSoftmax.logSumExpAboveMax(UnsafeBufferPointer(s))
        if let g {
            TwoPassSoftmax.expShifted(UnsafeBufferPointer(s), shift: excess, into: g)
            g[y] -= 1
        }
        return top + lambda * (excess - logC)
    }

    /// KL(q̃ ‖ uniform) with q̃ = softmax(f/λ) + 1e-5, renormalised: the ALDR code's λ update
    /// statistic (no margin). `s` and `q` are workspace.
    @inline(__always)
    static func smoothedKL(
        _ f: UnsafeBufferPointer<Double>, lambda: Double, logC: Double, s: UnsafeMutableBufferPointer<Double>,
        q: UnsafeMutableBufferPointer<Double>
    ) -> Double {
        let c = f.count
        var top = -Double.infinity
        for k in 0..<c { top = max(top, f[k]) }
        for k in 0..<c { s[k] = max((f[k] - top) / lambda, -Double.greatestFiniteMagnitude) }
        let (_, excess) = TwoPassSoftmax.logSumExpAboveMax(UnsafeBufferPointer(s))
        TwoPassSoftmax.expShifted(UnsafeBufferPointer(s), shift: excess, into: q)
        var total = 0.0
        for k in 0..<c {
            q[k] += 1e-5
            total += q[k]
        }
        var kl = 0.0
        for k in 0..<c {
            let qk = q[k] / total
            kl += qk * log(Double(c) * qk)
        }
        return kl
    }
}
