/// Why a scaling-law request cannot be answered (docs/scaling.md, "Invalid input"): the
/// reason, the field and a sentence (``InputError``).
///
/// Every reason is the service's 422 `invalid_input` except ``ScalingRejection/tooLarge``,
/// which is 413 `content_too_large` (see its `code`). Fields are
/// JSON-pointer-shaped: `/data/3/loss`, `/data/0/lr/17`, `/weights/2`, `/params/decay`; for
/// queries relative to the query (`/x/4`, `/steps/1`), to be prefixed by the endpoint with
/// ``InputError/prefixed(_:)``.
public typealias ScalingInputError = InputError<ScalingRejection>

/// The kind of a ``ScalingInputError`` (`ScalingInputError.Reason`), stable for clients and tests.
public enum ScalingRejection: String, Sendable, Equatable {
    /// `law` names no known law.
    case unknownLaw = "unknown_law"
    /// Fewer fitted points than the law's fitted parameters + 1.
    case tooFewPoints = "too_few_points"
    /// A size (`x`, `n`, `d`, `n_encoder`, `n_decoder`), loss, compute budget or total
    /// that must be > 0 is not; or every weight is 0.
    case nonPositive = "non_positive"
    /// A NaN or infinite number.
    case nonFinite = "non_finite"
    /// Two arrays that must have the same length do not (a curve's `lr` and `loss`,
    /// sparse `steps` and `loss`, `weights` and the fitted points).
    case lengthMismatch = "length_mismatch"
    /// Sparse `steps` not strictly increasing inside `[W+1, S]`.
    case invalidSteps = "invalid_steps"
    /// A learning rate below 0, or a forward area `S1 ≤ 0` at a fitted step.
    case invalidSchedule = "invalid_schedule"
    /// An option (or a stored parameter) outside its range.
    case invalidOption = "invalid_option"
    /// Data, parameters or a query of one law handed to another law.
    case lawMismatch = "law_mismatch"
    /// No start of the grid gives a positive predicted loss at every point
    /// (`lr_annealing` only), so there is nothing to optimise.
    case noFeasibleStart = "no_feasible_start"
    /// More than ``ScalingLimits/maxPoints`` points or ``ScalingLimits/maxCurveSteps``
    /// curve steps in total.
    case tooLarge = "too_large"
}

extension InputError where Kind == ScalingRejection {
    /// The service's error code: 413 `content_too_large` for ``ScalingRejection/tooLarge``,
    /// else 422 `invalid_input`.
    public var code: LossErrorCode { reason == .tooLarge ? .contentTooLarge : .invalidInput }

    /// The same error with `prefix` put before its field (`"/query"` + `"/x/4"`).
    public func prefixed(_ prefix: String) -> ScalingInputError {
        ScalingInputError(reason, field: prefix + (field ?? ""), detail)
    }
}

extension InputError: CustomStringConvertible where Kind == ScalingRejection {
    public var description: String { "\(reason.rawValue) at \(field ?? "-"): \(detail)" }
}

/// Size limits of one request (docs/scaling.md, "Invalid input").
public enum ScalingLimits {
    /// Most fitted or queried points in one request: 2^20.
    public static let maxPoints = 1 << 20
    /// Most learning-rate steps over all curves (or one predicted schedule): 2^22.
    public static let maxCurveSteps = 1 << 22
    /// Most bootstrap resamples.
    public static let maxBootstrapSamples = 1000
}

/// Shared element checks that throw with a field of the form `base/index/name`.
enum ScalingCheck {
    /// Every value finite and > 0; `path(i)` names element i.
    static func positive(_ values: [Double], _ what: String, path: (Int) -> String) throws(ScalingInputError) {
        for (i, v) in values.enumerated() {
            guard v.isFinite else { throw ScalingInputError(.nonFinite, field: path(i), "\(what) must be finite, got \(v)") }
            guard v > 0 else { throw ScalingInputError(.nonPositive, field: path(i), "\(what) must be > 0, got \(v)") }
        }
    }

    /// Every value finite and ≥ 0.
    static func nonNegative(_ values: [Double], _ what: String, path: (Int) -> String) throws(ScalingInputError) {
        for (i, v) in values.enumerated() {
            guard v.isFinite else { throw ScalingInputError(.nonFinite, field: path(i), "\(what) must be finite, got \(v)") }
            guard v >= 0 else { throw ScalingInputError(.nonPositive, field: path(i), "\(what) must be ≥ 0, got \(v)") }
        }
    }

    /// Every value finite.
    static func finite(_ values: [Double], _ what: String, path: (Int) -> String) throws(ScalingInputError) {
        for (i, v) in values.enumerated() where !v.isFinite {
            throw ScalingInputError(.nonFinite, field: path(i), "\(what) must be finite, got \(v)")
        }
    }

    /// Two lengths equal.
    static func sameLength(_ a: Int, _ b: Int, field: String, _ detail: String) throws(ScalingInputError) {
        guard a == b else { throw ScalingInputError(.lengthMismatch, field: field, "\(detail) (\(a) vs \(b))") }
    }
}
