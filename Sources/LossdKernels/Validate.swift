/// Input checks shared by the losses, with the messages of docs/losses.md §1.4.
public enum Validate {
    /// A 1-D input must have `expected` entries.
    public static func count(_ count: Int, name: String, expected: Int) throws(LossInputError) {
        guard count == expected else {
            throw LossInputError(.invalidShape, field: "/\(name)", "`\(name)` has \(count) entries but \(expected) are required")
        }
    }

    /// A 2-D input must be `rows x cols`.
    public static func rows(_ m: Matrix, name: String, rows: Int, cols: Int) throws(LossInputError) {
        guard m.rows == rows else {
            throw LossInputError(.invalidShape, field: "/\(name)", "`\(name)` has \(m.rows) rows but \(rows) are required")
        }
        guard m.cols == cols else {
            throw LossInputError(.invalidShape, field: "/\(name)", "`\(name)` has \(m.cols) columns but \(cols) are required")
        }
    }

    /// A second input beside `reference` (targets, teacher logits, keys, ...) must have its
    /// shape. Returns that shape, the (N, C) a per-row loss then loops over.
    @discardableResult
    public static func sameShape(_ m: Matrix, name: String, as reference: Matrix) throws(LossInputError) -> (rows: Int, cols: Int) {
        try rows(m, name: name, rows: reference.rows, cols: reference.cols)
        return (reference.rows, reference.cols)
    }

    /// Hard labels: one per row, each in [0, classes) (`invalid_label` otherwise). A label
    /// equal to `ignoreIndex` (cross-entropy's skipped rows) is accepted whatever its value.
    public static func labels(_ labels: [Int], rows: Int, classes: Int, ignoreIndex: Int? = nil) throws(LossInputError) {
        try count(labels.count, name: "labels", expected: rows)
        for (i, y) in labels.enumerated() where y != ignoreIndex && !(0..<classes).contains(y) {
            throw LossInputError(.invalidLabel, field: "/labels/\(i)", "`labels[\(i)]` = \(y) is out of range [0, \(classes))")
        }
    }

    /// Hard labels for the rows of `logits`, one class index per row (as above). Returns the
    /// logits' shape: N rows, C classes.
    @discardableResult
    public static func labels(_ labels: [Int], for logits: Matrix, ignoreIndex: Int? = nil) throws(LossInputError) -> (rows: Int, classes: Int) {
        try self.labels(labels, rows: logits.rows, classes: logits.cols, ignoreIndex: ignoreIndex)
        return (logits.rows, logits.cols)
    }

    /// Probability rows: `name` is `rows x cols`, every entry ≥ 0 and every row sums to 1
    /// within 1e-6 (`invalid_target` otherwise).
    public static func distributions(_ m: Matrix, name: String, rows: Int, cols: Int) throws(LossInputError) {
        try self.rows(m, name: name, rows: rows, cols: cols)
        for i in 0..<rows {
            var sum = 0.0
            for j in 0..<cols {
                let v = m[i, j]
                guard v >= 0 else {
                    throw LossInputError(.invalidTarget, field: "/\(name)/\(i)/\(j)", "`\(name)[\(i)][\(j)]` must be >= 0")
                }
                sum += v
            }
            guard abs(sum - 1) <= 1e-6 else {
                throw LossInputError(.invalidTarget, field: "/\(name)/\(i)", "`\(name)[\(i)]` must sum to 1 (within 1e-6)")
            }
        }
    }

    /// Optional non-negative weights, one per class (or per row).
    public static func weights(_ weights: [Double]?, name: String, count expected: Int) throws(LossInputError) {
        guard let weights else { return }
        try count(weights.count, name: name, expected: expected)
        for (i, w) in weights.enumerated() where !(w >= 0) {
            throw LossInputError(.invalidInput, field: "/\(name)/\(i)", "`\(name)[\(i)]` must be >= 0")
        }
    }

    /// Entries of a matrix must lie in [0, 1].
    public static func unitInterval(_ m: Matrix, name: String) throws(LossInputError) {
        for i in 0..<m.rows {
            for j in 0..<m.cols where !(m[i, j] >= 0 && m[i, j] <= 1) {
                throw LossInputError(.invalidTarget, field: "/\(name)/\(i)/\(j)", "`\(name)[\(i)][\(j)]` must be in [0, 1]")
            }
        }
    }
}
