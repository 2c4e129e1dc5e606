/// Shared pieces of the DEXML multi-label losses (Gupta et al., ICLR 2024; spec §8):
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
        try Validate.rows(targets, name: "targets", rows: logits.rows, cols: logits.cols)
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
}
