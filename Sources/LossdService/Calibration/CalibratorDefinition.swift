import LossdKernels

/// The tensors a calibrator is fitted on or applied to, decoded from the request.
struct CalibrationInput: Sendable {
    /// `logits` [N][C] (or nil when only `scores` were sent).
    var logits: Matrix?
    /// `scores` [N]: binary methods' one-score-per-sample input.
    var scores: [Double]?
    /// `labels` [N] (fit only).
    var labels: [Int]?
    /// `views_logits` [V][N][C] (correctness_aware).
    var views: Tensor?
}

/// A catalogue entry for one calibration method: fit, apply and validate a stored model.
/// Adding a method means one kernel file in LossdKernels/Calibration and one of these.
struct CalibratorDefinition: Sendable {
    let method: String
    let summary: String
    /// Binary methods (platt, beta) also accept `scores` [N] instead of 2-column logits.
    var acceptsScores = false
    /// Fit options (bounds, regularisation, bins, ...), validated like loss params.
    let parameters: [ParameterSpec]
    /// Fits on `input` (logits or scores, and labels); errors carry the spec's code and field.
    let fit: @Sendable (CalibrationInput, ResolvedParameters) throws(ServiceError) -> (CalibratorModel, FitReport)
    /// Calibrated probabilities [N][C] for `input` (C = 2 for scores).
    let apply: @Sendable (CalibratorModel, CalibrationInput) throws(ServiceError) -> Matrix
    /// Checks a model from a PUT or an inline `calibrator` object: required parameters,
    /// shapes against `classes`, ranges (e.g. temperature > 0, monotone isotonic maps).
    let validate: @Sendable (CalibratorModel) throws(ServiceError) -> Void
}

/// Every calibration method; each family lives in its own file.
enum CalibratorCatalogue {
    static let all: [CalibratorDefinition] = softmaxFamily + binaryAndBinning

    static let byMethod: [String: CalibratorDefinition] = {
        var table: [String: CalibratorDefinition] = [:]
        for definition in all { table[definition.method] = definition }
        return table
    }()
}
