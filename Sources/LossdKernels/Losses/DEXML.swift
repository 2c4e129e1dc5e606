/// Shared pieces of the DEXML multi-label losses (Gupta et al., ICLR 2024; docs/losses.md §11):
/// `decoupled_softmax`, `multilabel_infonce` and `soft_topk` all read a query–label score
/// matrix with 0/1 targets and a temperature.
public enum DEXML {
    /// How a row's per-positive terms combine: κ = 1/|P| (`mean`) or 1 (`sum`).
    public enum PositiveReduction: String, Sendable, CaseIterable {
        case mean, sum

        /// κ for a row with `positives` ≥ 1 positive columns.
        @inline(__always)
        func scale(positives: Int) -> Double {
            self == .mean ? 1 / Double(positives) : 1
        }
    }

    /// Checks that `targets` is `logits`-shaped with entries exactly 0 or 1.
    static func validateTargets(_ targets: Matrix, logits: Matrix) throws(LossInputError) {
        try Validate.sameShape(targets, name: "targets", as: logits)
        for i in 0..<targets.rows {
            for j in 0..<targets.cols where targets[i, j] != 0 && targets[i, j] != 1 {
                throw LossInputError(.invalidTarget, field: "/targets/\(i)/\(j)", "`targets[\(i)][\(j)]` must be 0 or 1")
            }
        }
    }

    /// The scores s = logits / temperature, or `value_overflow` when a quotient leaves the
    /// float64 range (only for temperatures far below 1).
    static func scores(_ logits: Matrix, temperature: Double) throws(LossInputError) -> [Double] {
        if temperature == 1 { return logits.values }
        let s = logits.values.map { $0 / temperature }
        guard s.allSatisfy(\.isFinite) else { throw .overflow }
        return s
    }

    /// The frame of `decoupled_softmax` and `multilabel_infonce`: checks the 0/1 targets,
    /// scales the logits to s = z/T and calls `rowLoss` for every row with at least one
    /// positive (rows split across cores for large batches); the other rows give ℓ_r = 0 and
    /// a zero gradient. `rowLoss` receives the row's scores and targets, its number of
    /// positives and κ, `scratchPerRow` doubles of workspace (reused across rows) and, when
    /// the gradient is asked, the row of ∂ℓ/∂logits to fill; it returns ℓ_r. d_r = 1, and a
    /// non-finite value is `value_overflow`.
    static func evaluateRows(
        logits: Matrix, targets: Matrix, temperature: Double, positiveReduction: PositiveReduction, gradient: Bool,
        scratchPerRow: Int = 0,
        _ rowLoss: (
            _ scores: UnsafeBufferPointer<Double>, _ targets: UnsafeBufferPointer<Double>, _ positives: Int, _ kappa: Double,
            _ scratch: UnsafeMutableBufferPointer<Double>, _ gradient: UnsafeMutableBufferPointer<Double>?
        ) -> Double
    ) throws(LossInputError) -> LossOutput {
        try validateTargets(targets, logits: logits)
        let n = logits.rows, c = logits.cols
        let scaled = try scores(logits, temperature: temperature)
        var values = [Double](repeating: 0, count: n)
        var grad = gradient ? [Double](repeating: 0, count: n * c) : []

        withMutableBuffers(&values, &grad) { valuesOut, gradOut in
            withBuffers(scaled, targets.values) { s, t in
                Parallel.forEachRange(n, costPerRow: c) { rows in
                    var scratch = [Double](repeating: 0, count: scratchPerRow)
                    scratch.withUnsafeMutableBufferPointer { scratch in
                        for r in rows {
                            let target = t.row(r, width: c)
                            var positives = 0
                            for k in 0..<c where target[k] == 1 { positives += 1 }
                            guard positives > 0 else { continue }
                            let out = gradient ? UnsafeMutableBufferPointer(rebasing: gradOut[(r * c)..<((r + 1) * c)]) : nil
                            valuesOut[r] = rowLoss(
                                s.row(r, width: c), target, positives, positiveReduction.scale(positives: positives), scratch, out)
                        }
                    }
                }
            }
        }
        guard values.allSatisfy(\.isFinite) else { throw .overflow }
        var output = LossOutput(values: values, denominators: [Double](repeating: 1, count: n))
        if gradient { output.gradients["logits"] = Tensor(shape: [n, c], values: grad) }
        return output
    }
}
