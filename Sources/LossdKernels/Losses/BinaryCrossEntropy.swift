/// Sigmoid cross-entropy per column, PyTorch's `BCEWithLogitsLoss` (spec §3): multi-label
/// targets in [0, 1], optional class weights and positive-class weights.
public enum BinaryCrossEntropy {
    public static func evaluate(
        logits: Matrix, targets: Matrix, classWeights: [Double]?, positiveWeights: [Double]?, gradient: Bool
    ) throws(LossInputError) -> LossOutput {
        let n = logits.rows, c = logits.cols
        try Validate.rows(targets, name: "targets", rows: n, cols: c)
        try Validate.unitInterval(targets, name: "targets")
        try Validate.weights(classWeights, name: "class_weights", count: c)
        try Validate.weights(positiveWeights, name: "pos_weight", count: c)

        var elements = Matrix(zeros: n, c)
        var grad = gradient ? Matrix(zeros: n, c) : Matrix(zeros: 0, 0)
        var values = [Double](repeating: 0, count: n)
        for i in 0..<n {
            var rowValue = 0.0
            for j in 0..<c {
                let x = logits[i, j], t = targets[i, j]
                let w = classWeights?[j] ?? 1, q = positiveWeights?[j] ?? 1
                var e = 0.0
                if t != 0 { e += q * t * StableMath.softplus(-x) }
                if t != 1 { e += (1 - t) * StableMath.softplus(x) }
                e *= w
                elements[i, j] = e
                rowValue += e
                if gradient {
                    grad[i, j] = w * ((1 - t) * StableMath.sigmoid(x) - q * t * StableMath.sigmoid(-x))
                }
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
}
