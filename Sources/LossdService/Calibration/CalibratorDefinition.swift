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
struct CalibratorDefinition: CatalogueRecord {
    /// The method's name (a stored model's `method`).
    let name: String
    var aliases: [String] = []
    let summary: String
    /// What a fit reads (`labels` only there): `logits` [N][C] by default; binary methods
    /// (platt, beta) also `scores` [N] instead of 2-column logits, correctness_aware
    /// `views_logits` [V][N][C].
    var inputs: [InputSpec] = CalibratorDefinition.logitsInputs
    /// The most classes a fit takes (413 beyond): methods with C×C parameters need a bound,
    /// or a small body could ask for gigabytes of optimiser state.
    var maxClasses: Int? = nil
    /// Parameters fitted for C classes (C×(C+1) for the full-matrix methods): with the
    /// optimiser's history, what a fit holds beyond the data.
    var fittedParameters: @Sendable (_ classes: Int) -> Int = { 2 * $0 }
    /// Binary methods (platt, beta) fit C = 2 only: selection tries them only then.
    var binaryOnly = false
    /// `scores` are probabilities in [0, 1] (beta), not logits (platt): selection tries
    /// such a method on `scores` only when every score lies in [0, 1].
    var scoresAreProbabilities = false
    /// Fit options (bounds, regularisation, bins, ...), validated like loss params.
    let parameters: [ParameterSpec]
    /// Fits on `input` (logits or scores, and labels); errors carry their code and field
    /// (docs/losses.md §1.4).
    let fit: @Sendable (CalibrationInput, ResolvedParameters) throws(ServiceError) -> (CalibratorModel, FitReport)
    /// Calibrated probabilities [N][C] for `input` (C = 2 for scores).
    let apply: @Sendable (CalibratorModel, CalibrationInput) throws(ServiceError) -> Matrix
    /// Checks a model from a PUT or an inline `calibrator` object: required parameters,
    /// shapes against `classes`, ranges (e.g. temperature > 0, monotone isotonic maps).
    let validate: @Sendable (CalibratorModel) throws(ServiceError) -> Void
}

extension CalibratorDefinition {
    static let labels = InputSpec.required("labels", "[N]")
    /// `logits` [N][C] and, to fit, `labels`.
    static let logitsInputs: [InputSpec] = [.required("logits", "[N][C]"), labels]
    /// A binary method's `logits` [N][2] or `scores` [N], and, to fit, `labels`.
    static let logitsOrScoresInputs: [InputSpec] = [
        .oneOf("logits", "[N][2]", group: "logits/scores"), .oneOf("scores", "[N]", group: "logits/scores"), labels,
    ]
    /// `views_logits` [V][N][C] (view 0 the logits as they are) and, to fit, `labels`.
    static let viewsInputs: [InputSpec] = [.required("views_logits", "[V][N][C]"), labels]

    /// Binary methods (platt, beta) also accept `scores` [N] instead of 2-column logits.
    var acceptsScores: Bool { inputs.contains { $0.name == "scores" } }

    /// Fits and applies on `views_logits` (correctness_aware): selection tries it only
    /// when they are sent.
    var needsViews: Bool { inputs.contains { $0.name == "views_logits" } }

    /// Classes of the fit input (2 for binary scores).
    private func classes(of input: CalibrationInput) -> Int {
        if let logits = input.logits { return logits.cols }
        if let views = input.views, let last = views.shape.last { return last }
        return 2
    }

    /// 413 `content_too_large` when the input has more classes than the method takes.
    func checkSize(_ input: CalibrationInput) throws(ServiceError) {
        guard let maxClasses, classes(of: input) > maxClasses else { return }
        throw ServiceError(
            status: .contentTooLarge, code: "content_too_large",
            detail: "`\(name)` fits at most \(maxClasses) classes (its parameters grow as C²); got \(classes(of: input))",
            field: input.logits != nil ? "/logits" : "/views_logits")
    }

    /// Bytes a fit holds beyond its decoded input: the parameters with L-BFGS's ten pairs
    /// of history vectors and the line search's copies (about 30 vectors in all), and a
    /// dense Hessian where Newton's method is used (up to 36 classes).
    func fitWorkingSet(_ input: CalibrationInput) -> Int {
        let parameters = fittedParameters(classes(of: input))
        let hessian = parameters <= 36 * 37 ? WorkingSet.product(parameters, parameters, 2 * WorkingSet.valueBytes) : 0
        return WorkingSet.sum(WorkingSet.product(parameters, 30 * WorkingSet.valueBytes), hessian)
    }
}

/// Every calibration method; each family lives in its own file.
enum CalibratorCatalogue {
    static let all = Catalogue<CalibratorDefinition>(softmaxFamily + binaryAndBinning)

    /// Selection's tie order (`POST /v1/calibrators/select`, docs/calibration.md §5): the
    /// simpler method first, by the number of fitted parameters and then by flexibility.
    static let simplestFirst: [String] = [
        "temperature", "platt", "beta", "histogram", "isotonic", "vector", "ensemble_temperature", "matrix", "dirichlet",
        "correctness_aware",
    ]
}
