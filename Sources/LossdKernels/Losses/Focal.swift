#if canImport(Glibc)
    import Glibc
#endif

/// Focal loss (Lin et al. 2017; docs/losses.md §4): softmax over classes with hard labels and
/// per-class α from class weights, or sigmoid per element with targets and a scalar α.
public enum Focal {
    public enum Mode: String, Sendable, CaseIterable {
        case softmax, sigmoid
    }

    /// Multi-class focal loss: ℓ = α_y (1 - p_y)^γ (-log p_y).
    public static func softmax(
        logits: Matrix, labels: [Int], classWeights: [Double]?, gamma: Double, gradient: Bool
    ) throws(LossInputError) -> LossOutput {
        let (n, c) = try Validate.labels(labels, for: logits)
        try Validate.weights(classWeights, name: "class_weights", count: c)

        var values = [Double](repeating: 0, count: n)
        var grad = gradient ? Matrix(zeros: n, c) : Matrix(zeros: 0, 0)
        logits.values.withUnsafeBufferPointer { z in
            for i in 0..<n {
                let row = UnsafeBufferPointer(rebasing: z[(i * c)..<((i + 1) * c)])
                let (m, excess) = TwoPassSoftmax.logSumExpAboveMax(row)
                let lse = m + excess
                let y = labels[i]
                let alpha = classWeights?[y] ?? 1
                let lp = (row[y] - m) - excess  // log p_y ≤ 0, exact when y is the argmax
                let py = exp(lp)
                let r = -expm1(lp)  // 1 - p_y
                let rGamma = power(r, gamma)
                values[i] = alpha * rGamma * (-lp)
                guard gradient else { continue }
                // α [r^γ − γ p_y r^(γ−1) log p_y] (p − e_y); the second term is 0 when r = 0.
                var factor = rGamma
                if gamma != 0 && r > 0 { factor -= gamma * py * pow(r, gamma - 1) * lp }
                factor *= alpha
                for k in 0..<c {
                    let p = exp(row[k] - lse)
                    grad[i, k] = factor * (k == y ? p - 1 : p)
                }
            }
        }
        guard values.allSatisfy(\.isFinite) else { throw .overflow }
        var output = LossOutput(values: values, denominators: [Double](repeating: 1, count: n))
        if gradient { output.gradients["logits"] = Tensor(grad) }
        return output
    }

    /// Element-wise sigmoid focal loss: ℓ = α_t (1 - p_t)^γ ce, summed over columns.
    /// `alpha` nil disables α weighting.
    public static func sigmoid(
        logits: Matrix, targets: Matrix, alpha: Double?, gamma: Double, gradient: Bool
    ) throws(LossInputError) -> LossOutput {
        let (n, c) = try Validate.sameShape(targets, name: "targets", as: logits)
        try Validate.unitInterval(targets, name: "targets")

        var elements = Matrix(zeros: n, c)
        var grad = gradient ? Matrix(zeros: n, c) : Matrix(zeros: 0, 0)
        var values = [Double](repeating: 0, count: n)
        for i in 0..<n {
            var rowValue = 0.0
            for j in 0..<c {
                let x = logits[i, j], t = targets[i, j]
                let ce = t * StableMath.softplus(-x) + (1 - t) * StableMath.softplus(x)
                let sigX = StableMath.sigmoid(x), sigMinusX = StableMath.sigmoid(-x)
                let m = t * sigMinusX + (1 - t) * sigX  // 1 − p_t, without cancellation
                let alphaT = alpha.map { $0 * t + (1 - $0) * (1 - t) } ?? 1
                let e = alphaT * ce * power(m, gamma)
                elements[i, j] = e
                rowValue += e
                guard gradient else { continue }
                var g = (sigX - t) * power(m, gamma)
                let sigProduct = sigX * sigMinusX
                if gamma != 0 && m > 0 && ce > 0 && sigProduct > 0 {
                    let logTerm = (gamma - 1) * log(m) + log(ce) + StableMath.logSigmoid(x) + StableMath.logSigmoid(-x)
                    g += gamma * exp(logTerm) * (1 - 2 * t)
                }
                grad[i, j] = alphaT * g
            }
            values[i] = rowValue
        }
        guard values.allSatisfy(\.isFinite) else { throw .overflow }
        var output = LossOutput(
            values: values, denominators: [Double](repeating: Double(c), count: n),
            extras: ["per_element": .matrix(elements)])
        if gradient { output.gradients["logits"] = Tensor(grad) }
        return output
    }

    /// x^γ with 0^0 = 1 and 0^γ = 0 for γ > 0.
    static func power(_ x: Double, _ gamma: Double) -> Double {
        if gamma == 0 { return 1 }
        if x == 0 { return 0 }
        return pow(x, gamma)
    }
}
