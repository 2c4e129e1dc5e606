import CLossdKernels

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
                    w.withUnsafeBufferPointer { w in
                        q.withUnsafeBufferPointer { q in
                            for i in rows {
                                // A vector row kernel (CLossdKernels): one exp and one log1p
                                // of e = exp(−|x|) ≤ 1 give softplus(±x) and σ(±x), each
                                // without cancellation.
                                let row = i * c
                                valuesOut[i] = lossd_bce_row_f64(
                                    x.baseAddress.map { $0 + row }, t.baseAddress.map { $0 + row }, w.baseAddress,
                                    q.baseAddress, Int64(c), elementsOut.baseAddress.map { $0 + row },
                                    gradient ? gradOut.baseAddress.map { $0 + row } : nil)
                            }
                        }
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
