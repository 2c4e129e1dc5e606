#if canImport(Glibc)
    import Glibc
#endif

/// Softmax cross-entropy with PyTorch's `CrossEntropyLoss` semantics (docs/losses.md §2): hard
/// labels with `ignoreIndex`, class weights and label smoothing, or soft targets.
public enum CrossEntropy {
    public struct Parameters: Sendable {
        /// ε in [0, 1].
        public var labelSmoothing: Double = 0
        /// Rows whose label equals this are skipped (value 0, no weight in the mean).
        public var ignoreIndex: Int = -100

        public init(labelSmoothing: Double = 0, ignoreIndex: Int = -100) {
            self.labelSmoothing = labelSmoothing
            self.ignoreIndex = ignoreIndex
        }
    }

    /// Evaluates ℓ_r, d_r and (when asked) ∂ℓ_r/∂logits for every row.
    public static func evaluate(
        logits: Matrix, targets: ClassTargets, classWeights: [Double]?, parameters: Parameters, gradient: Bool
    ) throws(LossInputError) -> LossOutput {
        let n = logits.rows, c = logits.cols
        try Validate.weights(classWeights, name: "class_weights", count: c)
        switch targets {
        case .labels(let labels):
            try Validate.labels(labels, rows: n, classes: c, ignoreIndex: parameters.ignoreIndex)
        case .probabilities(let t):
            try Validate.distributions(t, name: "targets", rows: n, cols: c)
        }

        let eps = parameters.labelSmoothing
        let w = classWeights ?? [Double](repeating: 1, count: c)
        let totalWeight = w.reduce(0, +)
        var values = [Double](repeating: 0, count: n)
        var denominators = [Double](repeating: 0, count: n)
        // Every row of the gradient is written below (ignored rows with zeros).
        var grad = gradient ? [Double](unsafeUninitializedCapacity: n * c) { $1 = n * c } : []

        withMutableBuffers(&values, &denominators, &grad) { valuesOut, denominatorsOut, gradOut in
            logits.values.withUnsafeBufferPointer { z in
                Parallel.forEachRange(n, costPerRow: c) { rows in
                    for r in rows {
                        let row = UnsafeBufferPointer(rebasing: z[(r * c)..<((r + 1) * c)])
                        // With the gradient, the gradient row first holds exp(z − m) (one exponential
                        // an element gives the value and the softmax) and becomes the gradient in
                        // place; without, the Two-Pass sum reads the row once.
                        // −log p_k = (m − z_k) + excess, exact when z_k is the maximum.
                        let g = gradient ? UnsafeMutableBufferPointer(rebasing: gradOut[(r * c)..<((r + 1) * c)]) : gradOut
                        var m: Double, excess: Double, inverseSum = 0.0
                        if gradient {
                            let (top, sum) = TwoPassSoftmax.expAboveMax(row, into: g)
                            (m, excess, inverseSum) = (top, log(sum), 1 / sum)
                        } else {
                            (m, excess) = TwoPassSoftmax.logSumExpAboveMax(row)
                        }
                        switch targets {
                        case .labels(let labels):
                            let y = labels[r]
                            if y == parameters.ignoreIndex {
                                if gradient { g.update(repeating: 0) }
                                continue
                            }
                            var smooth = 0.0
                            if eps > 0 { for k in 0..<c { smooth += w[k] * ((m - row[k]) + excess) } }
                            valuesOut[r] = (1 - eps) * w[y] * ((m - row[y]) + excess) + eps / Double(c) * smooth
                            denominatorsOut[r] = w[y]
                            guard gradient else { continue }
                            for k in 0..<c { g[k] *= inverseSum }  // the softmax p
                            let hard = (1 - eps) * w[y], soft = eps / Double(c)
                            if eps == 0 && classWeights == nil {
                                g[y] -= 1  // ∂ℓ/∂z = p − onehot(y)
                                continue
                            }
                            for k in 0..<c { g[k] = hard * g[k] + soft * (totalWeight * g[k] - w[k]) }
                            g[y] -= hard
                        case .probabilities(let t):
                            var value = 0.0, mass = 0.0
                            for k in 0..<c {
                                let tk = (1 - eps) * t[r, k] + eps / Double(c)
                                if tk != 0 { value += w[k] * tk * ((m - row[k]) + excess) }
                                mass += w[k] * tk
                            }
                            valuesOut[r] = value
                            denominatorsOut[r] = 1
                            guard gradient else { continue }
                            for k in 0..<c {
                                let tk = (1 - eps) * t[r, k] + eps / Double(c)
                                g[k] = mass * g[k] * inverseSum - w[k] * tk
                            }
                        }
                    }
                }
            }
        }
        guard values.allSatisfy(\.isFinite) else { throw .overflow }
        var output = LossOutput(values: values, denominators: denominators)
        if gradient { output.gradients["logits"] = Tensor(shape: [n, c], values: grad) }
        return output
    }

    /// Bits and perplexity, from the per-row values and the reduced mean (docs/losses.md §2, "Units").
    public static func unitExtras(rowValues: [Double], mean: Double) -> [String: LossExtra] {
        let ln2 = log(2.0)
        return [
            "per_sample_bits": .vector(rowValues.map { $0 / ln2 }),
            "mean_bits": .scalar(mean / ln2),
            "perplexity": .scalar(mean > 709.78 ? .nan : exp(mean)),
        ]
    }
}
