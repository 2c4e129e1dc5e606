#if canImport(Glibc)
    import Glibc
#endif

/// Sigmoid cross-entropy per column, PyTorch's `BCEWithLogitsLoss` (docs/losses.md §3): multi-label
/// targets in [0, 1], optional class weights and positive-class weights.
public enum BinaryCrossEntropy {
    public static func evaluate(
        logits: Matrix, targets: Matrix, classWeights: [Double]?, positiveWeights: [Double]?, gradient: Bool
    ) throws(LossInputError) -> LossOutput {
        let (n, c) = try Validate.sameShape(targets, name: "targets", as: logits)
        try Validate.unitInterval(targets, name: "targets")
        try Validate.weights(classWeights, name: "class_weights", count: c)
        try Validate.weights(positiveWeights, name: "pos_weight", count: c)

        var elements = [Double](repeating: 0, count: n * c)
        var grad = [Double](repeating: 0, count: gradient ? n * c : 0)
        var values = [Double](repeating: 0, count: n)
        let ones = [Double](repeating: 1, count: c)
        let w = classWeights ?? ones, q = positiveWeights ?? ones
        withMutableBuffers(&elements, &grad, &values) { elementsOut, gradOut, valuesOut in
            withBuffers(logits.values, targets.values) { x, t in
                Parallel.forEachRange(n, costPerRow: 8 * c) { rows in
                    for i in rows {
                        var rowValue = 0.0
                        for j in 0..<c {
                            let k = i * c + j
                            let (xk, tk) = (x[k], t[k])
                            // One exp and one log1p give softplus(±x) and σ(±x), each
                            // without cancellation: e = exp(−|x|) ≤ 1.
                            let e = exp(-abs(xk)), l = log1p(e)
                            let softplusPlus = max(xk, 0) + l, softplusMinus = max(-xk, 0) + l
                            var value = 0.0
                            if tk != 0 { value += q[j] * tk * softplusMinus }
                            if tk != 1 { value += (1 - tk) * softplusPlus }
                            value *= w[j]
                            elementsOut[k] = value
                            rowValue += value
                            if gradient {
                                let big = 1 / (1 + e), small = e / (1 + e)
                                let (sigmoidPlus, sigmoidMinus) = xk >= 0 ? (big, small) : (small, big)
                                gradOut[k] = w[j] * ((1 - tk) * sigmoidPlus - q[j] * tk * sigmoidMinus)
                            }
                        }
                        valuesOut[i] = rowValue
                    }
                }
            }
        }
        guard values.allSatisfy(\.isFinite) else { throw .overflow }
        var output = LossOutput(
            values: values, denominators: [Double](repeating: Double(c), count: n),
            extras: ["per_element": .matrix(Matrix(rows: n, cols: c, values: elements))])
        if gradient { output.gradients["logits"] = Tensor(shape: [n, c], values: grad) }
        return output
    }
}
