/// A dense row-major matrix of float64 values: the kernels' unit of data.
public struct Matrix: Sendable, Equatable {
    public let rows: Int
    public let cols: Int
    public var values: [Double]

    public init(rows: Int, cols: Int, values: [Double]) {
        precondition(values.count == rows * cols, "Matrix values must hold rows * cols entries")
        self.rows = rows
        self.cols = cols
        self.values = values
    }

    public init(zeros rows: Int, _ cols: Int) {
        self.init(rows: rows, cols: cols, values: [Double](repeating: 0, count: rows * cols))
    }

    public subscript(row: Int, col: Int) -> Double {
        get { values[row * cols + col] }
        set { values[row * cols + col] = newValue }
    }

    /// The rows as nested arrays (for responses).
    public var nested: [[Double]] {
        (0..<rows).map { r in Array(values[(r * cols)..<((r + 1) * cols)]) }
    }
}

/// A dense row-major tensor of any rank (gradients of 1-D, 2-D and 3-D inputs).
public struct Tensor: Sendable, Equatable {
    public let shape: [Int]
    public var values: [Double]

    public init(shape: [Int], values: [Double]) {
        precondition(values.count == shape.reduce(1, *), "Tensor values must match its shape")
        self.shape = shape
        self.values = values
    }

    public init(_ matrix: Matrix) {
        self.init(shape: [matrix.rows, matrix.cols], values: matrix.values)
    }

    /// A vector of N values, shape [N].
    public init(vector: [Double]) {
        self.init(shape: [vector.count], values: vector)
    }

    /// Extent of the first dimension (rows, samples).
    public var rows: Int { shape.first ?? 0 }
}

/// What a loss compares its predictions with: hard class labels or per-class targets.
public enum ClassTargets: Sendable {
    /// One class index per row; a row whose label equals the loss's ignore index is skipped.
    case labels([Int])
    /// One distribution (or 0/1 multi-label vector) per row.
    case probabilities(Matrix)
}

/// The kinds of rejection listed in docs/losses.md §1.4 (`urn:lossd:error:<code>`).
public enum LossErrorCode: String, Sendable {
    case unknownLoss = "unknown_loss"
    case missingField = "missing_field"
    case invalidShape = "invalid_shape"
    case nonFinite = "non_finite"
    case invalidLabel = "invalid_label"
    case invalidTarget = "invalid_target"
    case invalidParam = "invalid_param"
    case invalidInput = "invalid_input"
    case valueOverflow = "value_overflow"
    /// The inputs are valid but would need more working memory than a request may take
    /// (the contrastive losses' similarity matrices, `Contrastive.maxSimilarityEntries`);
    /// the service answers 413 rather than 422.
    case contentTooLarge = "content_too_large"
}

/// An input that cannot be used: the kind of rejection, the field it concerns (a
/// JSON-pointer-shaped path such as `/targets/0` or `/data/3/loss`; nil when nothing narrower
/// than the whole request is at fault) and a sentence for people. The kind is
/// ``LossErrorCode`` for the losses (``LossInputError``) and ``ScalingRejection`` for the
/// scaling laws (``ScalingInputError``).
public struct InputError<Kind: Sendable & Equatable>: Error, Sendable, Equatable {
    public typealias Reason = Kind

    public let reason: Reason
    public let field: String?
    public let detail: String

    public init(_ reason: Reason, field: String?, _ detail: String) {
        self.reason = reason
        self.field = field
        self.detail = detail
    }
}

/// An input a loss cannot evaluate, with the field it concerns (built from the argument's
/// name) and a message as in docs/losses.md §1.4.
public typealias LossInputError = InputError<LossErrorCode>

extension InputError where Kind == LossErrorCode {
    /// The code of docs/losses.md §1.4 (`urn:lossd:error:<code>`).
    public var code: LossErrorCode { reason }

    /// The result cannot be represented in float64.
    public static var overflow: LossInputError {
        LossInputError(.valueOverflow, field: nil, "the loss or its gradient is not representable in float64")
    }
}

/// Per-row results of a loss, before reduction.
public struct LossOutput: Sendable {
    /// ℓ_r for each row (sample or anchor), without sample weights.
    public var values: [Double]
    /// d_r for each row: what the row contributes to the `mean` divisor.
    public var denominators: [Double]
    /// Gradient of Σ_r ℓ_r with respect to each differentiable input, by input name, in
    /// the input's shape. For row-separable losses (the default) row r of each gradient
    /// depends on row r of the inputs only, so sample weights scale rows.
    public var gradients: [String: Tensor]
    /// False for losses whose rows interact (contrastive losses); they take no sample weights.
    public var rowSeparable = true
    /// Loss-specific outputs (per-element values, decoded predictions, ...).
    public var extras: [String: LossExtra]

    public init(values: [Double], denominators: [Double], gradients: [String: Tensor] = [:], extras: [String: LossExtra] = [:]) {
        self.values = values
        self.denominators = denominators
        self.gradients = gradients
        self.extras = extras
    }
}

/// An informative output beside the loss value.
public enum LossExtra: Sendable, Equatable {
    case scalar(Double)
    case vector([Double])
    case matrix(Matrix)
}

/// How per-row values become the answer.
public enum Reduction: String, Sendable, CaseIterable {
    case mean, sum, none
}

/// A reduced loss: the value (or per-row values) and the weighted mean, whatever the
/// reduction (losses such as cross-entropy report units of the mean beside a sum).
public struct ReducedLoss: Sendable {
    public var reduction: Reduction
    /// `mean` or `sum`; nil for `none`.
    public var value: Double?
    /// For `none`: s_r ℓ_r per row.
    public var values: [Double]?
    /// Σ s_r d_r, the mean's divisor.
    public var meanDenominator: Double
    /// Σ s_r ℓ_r / Σ s_r d_r (0 when the divisor is 0).
    public var mean: Double
}

extension LossOutput {
    /// Applies sample weights and the reduction (docs/losses.md, "Reductions"):
    /// `none` → s_r ℓ_r, `sum` → Σ s_r ℓ_r, `mean` → sum / Σ s_r d_r (0 when that divisor is
    /// 0). The gradients are scaled in place by the same rule (row r by s_r for row-separable
    /// losses, all by 1 / Σ s_r d_r for `mean`), so they become gradients of the answer; a
    /// zero factor gives 0 even where a gradient entry is infinite. Throws `overflow` when
    /// the answer or a gradient is not finite.
    public mutating func reduce(_ reduction: Reduction, sampleWeights: [Double]?) throws(LossInputError) -> ReducedLoss {
        let n = values.count
        var sum = 0.0, denominator = 0.0
        var weighted = reduction == .none ? values : []
        for r in 0..<n {
            let s = sampleWeights?[r] ?? 1
            let value = s == 0 ? 0 : s * values[r]
            if reduction == .none { weighted[r] = value }
            sum += value
            denominator += s * denominators[r]
        }
        let mean = denominator == 0 ? 0 : sum / denominator
        let scale: Double = reduction == .mean ? (denominator == 0 ? 0 : 1 / denominator) : 1
        // The names first: iterating `gradients.keys` while mutating would share, and so
        // copy, the dictionary and every gradient in it.
        for name in Array(gradients.keys) {
            let finite = gradients[name]?.scaleRows(by: rowSeparable ? sampleWeights : nil, rows: n, times: scale) ?? true
            guard finite else { throw .overflow }
        }
        switch reduction {
        case .none:
            guard weighted.allFinite else { throw .overflow }
            return ReducedLoss(reduction: .none, value: nil, values: weighted, meanDenominator: denominator, mean: mean)
        case .sum:
            guard sum.isFinite else { throw .overflow }
            return ReducedLoss(reduction: .sum, value: sum, values: nil, meanDenominator: denominator, mean: mean)
        case .mean:
            guard mean.isFinite else { throw .overflow }
            return ReducedLoss(reduction: .mean, value: mean, values: nil, meanDenominator: denominator, mean: mean)
        }
    }
}

extension Tensor {
    /// Multiplies row r by `weights[r] · scale` (by `scale` alone when `weights` is nil or
    /// its count is not the tensor's row count), in place; a zero factor gives exactly 0.
    /// Returns whether every result is finite.
    mutating func scaleRows(by weights: [Double]?, rows n: Int, times scale: Double) -> Bool {
        let rows = self.rows, width = rows == 0 ? 0 : values.count / rows
        let weights = rows == n ? weights : nil
        if weights == nil && scale == 1 { return values.allFinite }
        return values.withUnsafeMutableBufferPointer { g in
            var finite = true
            for r in 0..<rows {
                let factor = (weights?[r] ?? 1) * scale
                let row = UnsafeMutableBufferPointer(rebasing: g[(r * width)..<((r + 1) * width)])
                if factor == 0 {
                    row.update(repeating: 0)
                    continue
                }
                let rowFinite = VectorMath.scale(row, by: factor)
                finite = finite && rowFinite
            }
            return finite
        }
    }
}
