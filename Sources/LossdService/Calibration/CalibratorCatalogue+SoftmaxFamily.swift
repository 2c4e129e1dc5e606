import LossdKernels

extension CalibratorCatalogue {
    /// temperature, vector, matrix, dirichlet, ensemble_temperature, correctness_aware
    /// (docs/calibration.md §3.1–§3.6).
    static let softmaxFamily: [CalibratorDefinition] = [
        temperatureScaling, vectorScaling, matrixScaling, dirichletCalibration, ensembleTemperature, correctnessAware,
    ]

    // MARK: - temperature

    static let temperatureScaling = CalibratorDefinition(
        name: "temperature",
        summary: "Temperature scaling: p = softmax(z / T), T > 0, fitted by minimising the mean NLL (convex in 1/T; safeguarded Newton, log(1/T) in [-10, 10])",
        parameters: [
            .interval(
                "log_beta_bounds", default: (-10, 10), within: -709...709,
                "box for log(1/T) within [-709, 709] (where 1/T stays a finite float64); the fit stops at a bound with at_bound set")
        ],
        fit: { input, parameters throws(ServiceError) in
            try SoftmaxFamilyInput.fitLogits(input) { logits, labels throws(SoftmaxCalibrationError) in
                try TemperatureScaling.fit(logits: logits, labels: labels, logBetaBounds: parameters.interval("log_beta_bounds"))
            }
        },
        apply: { model, input throws(ServiceError) in
            let t = try CalibratorParams(model, names: ["temperature"]).number("temperature", positive: true)
            let logits = try CalibratorInputs.logits(input, classes: model.classes)
            return TemperatureScaling.apply(temperature: t, logits: logits)
        },
        validate: { model throws(ServiceError) in
            let params = try CalibratorParams(model, names: ["temperature"])
            _ = try params.number("temperature", positive: true)
        }
    )

    // MARK: - vector

    static let vectorScaling = CalibratorDefinition(
        name: "vector",
        summary: "Vector scaling: p = softmax(w ⊙ z + b), w, b ∈ R^C with b[C-1] = 0, fitted by mean NLL (+ optional l2·Σ((w−1)² + b²)); Newton, or L-BFGS above 600 parameters",
        parameters: [
            .number("l2", default: 0, min: 0, max: 1e6, "ridge towards the identity map: l2·Σ_j ((w_j − 1)² + b_j²)")
        ],
        fit: { input, parameters throws(ServiceError) in
            try SoftmaxFamilyInput.fitLogits(input) { logits, labels throws(SoftmaxCalibrationError) in
                try LinearCalibration.fitVector(logits: logits, labels: labels, l2: parameters.number("l2"))
            }
        },
        apply: { model, input throws(ServiceError) in
            let (w, b) = try vectorParameters(model)
            return LinearCalibration.applyVector(w: w, b: b, logits: try CalibratorInputs.logits(input, classes: model.classes))
        },
        validate: { model throws(ServiceError) in _ = try vectorParameters(model) }
    )

    private static func vectorParameters(_ model: CalibratorModel) throws(ServiceError) -> ([Double], [Double]) {
        let params = try CalibratorParams(model, names: ["w", "b"])
        return (try params.vector("w", count: model.classes), try params.vector("b", count: model.classes))
    }

    // MARK: - matrix / dirichlet

    /// Full-matrix fits have C×(C+1) parameters: 1000 classes (ImageNet-1k) is about a
    /// million, with some 240 MB of optimiser state.
    static let maxFullMatrixClasses = 1000

    static let matrixScaling = fullMatrix(
        method: "matrix",
        summary: "Matrix scaling: p = softmax(W z + b), last row of [W | b] fixed to 0, fitted by mean NLL plus the optional ODIR penalty (lambda, mu; default 0); Newton up to C = 36, L-BFGS above; at most 1000 classes",
        parameters: [
            .number("lambda", default: 0, min: 0, max: 1e6, "ODIR off-diagonal penalty: lambda/(C(C−1))·Σ_{i≠j} W_ij²"),
            .number("mu", default: 0, min: 0, max: 1e6, "ODIR intercept penalty: mu/C·Σ_j b_j²"),
        ],
        fit: LinearCalibration.fitMatrix(logits:labels:lambda:mu:), features: { $0 })

    static let dirichletCalibration = fullMatrix(
        method: "dirichlet",
        summary: "Dirichlet calibration with ODIR: p = softmax(W·log_softmax(z) + b), last row of [W | b] fixed to 0, mean NLL + lambda/(C(C−1))·Σ_{i≠j} W_ij² + mu/C·Σ b_j²; at most 1000 classes",
        parameters: [
            .number("lambda", default: 1e-3, min: 0, max: 1e6, "ODIR off-diagonal penalty (normalised, as dirichletcal's reg_norm=True)"),
            .number("mu", default: 1e-3, min: 0, max: 1e6, "ODIR intercept penalty (normalised)"),
        ],
        fit: LinearCalibration.fitDirichlet(logits:labels:lambda:mu:), features: LinearCalibration.dirichletFeatures)

    /// A full-matrix method (matrix, dirichlet): `softmax(W·features(z) + b)` with C×(C+1)
    /// parameters (at most ``maxFullMatrixClasses`` classes), fitted with the request's
    /// `lambda` and `mu`; the two differ only in their features and defaults.
    private static func fullMatrix(
        method: String, summary: String, parameters: [ParameterSpec],
        fit: @escaping @Sendable (Matrix, [Int], Double, Double) throws(SoftmaxCalibrationError) -> (CalibratorModel, FitReport),
        features: @escaping @Sendable (Matrix) -> Matrix
    ) -> CalibratorDefinition {
        CalibratorDefinition(
            name: method, summary: summary,
            maxClasses: maxFullMatrixClasses,
            fittedParameters: { $0 * ($0 + 1) },
            parameters: parameters,
            fit: { input, parameters throws(ServiceError) in
                try SoftmaxFamilyInput.fitLogits(input) { logits, labels throws(SoftmaxCalibrationError) in
                    try fit(logits, labels, parameters.number("lambda"), parameters.number("mu"))
                }
            },
            apply: { model, input throws(ServiceError) in
                let (w, b) = try fullParameters(model)
                let logits = try CalibratorInputs.logits(input, classes: model.classes)
                return LinearCalibration.applyFull(w: w, b: b, features: features(logits))
            },
            validate: { model throws(ServiceError) in _ = try fullParameters(model) }
        )
    }

    private static func fullParameters(_ model: CalibratorModel) throws(ServiceError) -> (Matrix, [Double]) {
        let params = try CalibratorParams(model, names: ["W", "b"])
        let w = try params.matrix("W", rows: model.classes, cols: model.classes)
        return (w, try params.vector("b", count: model.classes))
    }

    // MARK: - ensemble_temperature

    static let ensembleTemperature = CalibratorDefinition(
        name: "ensemble_temperature",
        summary: "Ensemble temperature scaling (Mix-n-Match ETS): p = w0·softmax(z/T) + w1·softmax(z) + w2/C, T in [0.05, 5] and weights on the simplex, both by MSE",
        parameters: [],
        fit: { input, _ throws(ServiceError) in
            try SoftmaxFamilyInput.fitLogits(input) { logits, labels throws(SoftmaxCalibrationError) in
                try EnsembleTemperature.fit(logits: logits, labels: labels)
            }
        },
        apply: { model, input throws(ServiceError) in
            let (t, w) = try ensembleParameters(model)
            return EnsembleTemperature.apply(temperature: t, weights: w, logits: try CalibratorInputs.logits(input, classes: model.classes))
        },
        validate: { model throws(ServiceError) in _ = try ensembleParameters(model) }
    )

    private static func ensembleParameters(_ model: CalibratorModel) throws(ServiceError) -> (Double, [Double]) {
        let params = try CalibratorParams(model, names: ["temperature", "weights"])
        let t = try params.number("temperature", positive: true)
        let w = try params.vector("weights", count: 3)
        if let i = w.firstIndex(where: { $0 < 0 }) {
            throw params.error("weights/\(i)", "`weights[\(i)]` must be ≥ 0 (got \(w[i]))")
        }
        let sum = w.reduce(0, +)
        guard abs(sum - 1) <= 1e-6 else {
            throw params.error("weights", "`weights` must sum to 1 (got \(sum))")
        }
        return (t, w)
    }

    // MARK: - correctness_aware

    static let correctnessAware = CalibratorDefinition(
        name: "correctness_aware",
        summary: "Correctness-aware calibration (Liu et al. 2024): per-sample T_i = clamp(w2ᵀ ReLU(W1 φ_i + b1) + b2, 0.1, 10) from the softmax of transformed views (`views_logits` [V][N][C]) at view 0's top-k classes, trained on the class-balanced CA loss by full-batch Adam from a seeded initialisation",
        inputs: CalibratorDefinition.viewsInputs,
        parameters: [
            .integer("k", default: 4, min: 1, max: 10_000, "top-k classes of view 0 read from each transformed view (capped at C)"),
            .integer("hidden", default: 5, min: 1, max: 1_000, "hidden width of the temperature network"),
            .integer("steps", default: 500, min: 0, max: 100_000, "full-batch Adam steps"),
            .number("lr", default: 1e-3, min: 0, max: 10, minOpen: true, "Adam learning rate"),
            .integer("seed", default: 1, min: 0, max: 9_007_199_254_740_991, "SplitMix64 seed of the initialisation"),
        ],
        fit: { input, parameters throws(ServiceError) in
            let views = try SoftmaxFamilyInput.views(input)
            let labels = try CalibratorInputs.labels(input, rows: views.shape[1], classes: views.shape[2])
            let k = parameters.integer("k"), hidden = parameters.integer("hidden"), steps = parameters.integer("steps")
            let d = (views.shape[0] - 1) * min(k, views.shape[2])
            let work = Double(views.shape[1]) * Double(d + views.shape[2]) * Double(hidden + 4) * Double(max(steps, 1))
            guard work <= 1e10 else {
                throw ServiceError.invalid(
                    .invalidParam, field: "/params/steps",
                    "`steps` × N × (features + C) × hidden is too much work for one request; lower `steps` or `hidden`")
            }
            return try SoftmaxFamilyInput.run(field: "/views_logits") { () throws(SoftmaxCalibrationError) in
                try CorrectnessAware.fit(
                    views: views, labels: labels, k: k, hidden: hidden, steps: steps, lr: parameters.number("lr"),
                    seed: UInt64(parameters.integer("seed")))
            }
        },
        apply: { model, input throws(ServiceError) in
            let net = try correctnessParameters(model)
            let views = try SoftmaxFamilyInput.views(input, classes: model.classes)
            let expected = CorrectnessAware.expectedViews(net, classes: model.classes)
            guard views.shape[0] == expected else {
                throw ServiceError.invalid(
                    .invalidShape, field: "/views_logits",
                    "views_logits has \(views.shape[0]) views but the calibrator was fitted on \(expected)")
            }
            return CorrectnessAware.apply(net, views: views).probs
        },
        validate: { model throws(ServiceError) in _ = try correctnessParameters(model) }
    )

    private static func correctnessParameters(_ model: CalibratorModel) throws(ServiceError) -> CorrectnessAware.Network {
        let params = try CalibratorParams(model, names: ["W1", "b1", "w2", "b2", "k", "t_min", "t_max"])
        let k = try params.number("k")
        guard k >= 1, k == k.rounded(), k <= 10_000 else {
            throw params.error("k", "`k` must be an integer in [1, 10000] (got \(k))")
        }
        let b1 = try params.vector("b1", count: nil)
        guard !b1.isEmpty else { throw params.error("b1", "`b1` must hold at least one value (the hidden width)") }
        let hidden = b1.count
        let w1 = try params.matrix("W1", rows: hidden, cols: nil)
        let kk = min(Int(k), model.classes)
        guard w1.cols % kk == 0 else {
            throw params.error(
                "W1", "`W1` must have (V − 1)·min(k, C) = a multiple of \(kk) columns (got \(w1.cols))")
        }
        let w2 = try params.vector("w2", count: hidden)
        let b2 = try params.number("b2")
        let tMin = try params.number("t_min", positive: true)
        let tMax = try params.number("t_max")
        guard tMax > tMin else { throw params.error("t_max", "`t_max` must be > `t_min` (got \(tMax) ≤ \(tMin))") }
        return CorrectnessAware.Network(w1: w1, b1: b1, w2: w2, b2: b2, k: Int(k), tMin: tMin, tMax: tMax)
    }
}

/// Inputs of the softmax-family methods, with their 422s (docs/calibration.md §1, §3).
private enum SoftmaxFamilyInput {
    /// `views_logits` [V][N][C], V ≥ 1, N ≥ 1, C ≥ 2.
    static func views(_ input: CalibrationInput, classes: Int? = nil) throws(ServiceError) -> Tensor {
        guard let views = input.views else { throw ServiceError.missing("views_logits") }
        guard views.shape.count == 3 else {
            throw ServiceError.invalid(.invalidShape, field: "/views_logits", "`views_logits` must be a [V][N][C] array")
        }
        guard views.shape[0] >= 1, views.shape[1] >= 1 else {
            throw ServiceError.invalid(.invalidShape, field: "/views_logits", "`views_logits` must hold at least one view of at least one row")
        }
        guard views.shape[2] >= 2 else {
            throw ServiceError.invalid(
                .invalidShape, field: "/views_logits", "`views_logits` rows must have at least 2 columns (got \(views.shape[2]))")
        }
        if let classes, views.shape[2] != classes {
            throw ServiceError.invalid(
                .invalidShape, field: "/views_logits",
                "views_logits has \(views.shape[2]) classes but the calibrator was fitted for \(classes)")
        }
        return views
    }

    /// Fits a logits method: `logits` and `labels` checked, then `body` on them with its
    /// errors mapped to 422s at `/logits`.
    static func fitLogits(
        _ input: CalibrationInput, _ body: (Matrix, [Int]) throws(SoftmaxCalibrationError) -> (CalibratorModel, FitReport)
    ) throws(ServiceError) -> (CalibratorModel, FitReport) {
        let (logits, labels) = try CalibratorInputs.labelledLogits(input)
        return try run(field: "/logits") { () throws(SoftmaxCalibrationError) in try body(logits, labels) }
    }

    /// Runs a kernel, mapping its errors to 422s.
    static func run<T>(field: String, _ body: () throws(SoftmaxCalibrationError) -> T) throws(ServiceError) -> T {
        do {
            return try body()
        } catch {
            switch error {
            case .nonFiniteLoss:
                throw ServiceError.invalid(.nonFinite, field: field, "\(field.dropFirst()) produce a non-finite loss")
            case .shape(let message):
                throw ServiceError.invalid(.invalidShape, field: field, message)
            }
        }
    }
}
