/// Input checks shared by the losses, with the spec's messages (LOSSES.md §1.4).
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
