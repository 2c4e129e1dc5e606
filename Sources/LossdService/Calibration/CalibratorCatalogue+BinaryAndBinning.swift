import LossdKernels

extension CalibratorCatalogue {
    /// platt, beta, isotonic, histogram (docs/calibration.md §3.7-§3.10).
    static let binaryAndBinning: [CalibratorDefinition] = [platt, beta, isotonic, histogram]

    // MARK: - platt

    static let platt = CalibratorDefinition(
        name: "platt",
        summary: "Platt scaling (binary): P(y=1|f) = sigmoid(a·f + b) on f = z1 − z0 or `scores`, fitted to Platt's smoothed targets by Newton's method",
        inputs: CalibratorDefinition.logitsOrScoresInputs,
        binaryOnly: true,
        parameters: [],
        fit: { input, _ throws(ServiceError) in
            let f = try BinaryCalibratorInput.scores(input, method: "platt")
            let labels = try CalibratorInputs.labels(input, rows: f.count, classes: 2)
            let fit = Platt.fit(scores: f, labels: labels)
            let model = CalibratorModel(method: "platt", classes: 2, parameters: ["a": .number(fit.a), "b": .number(fit.b)])
            return (model, FitReport(iterations: fit.iterations, converged: fit.converged, notes: ["targets": .vector(fit.targets)]))
        },
        apply: { model, input throws(ServiceError) in
            let params = try CalibratorParams(model, names: ["a", "b"])
            try params.requireClasses(2)
            let (a, b) = (try params.number("a"), try params.number("b"))
            let f = try BinaryCalibratorInput.scores(input, method: "platt")
            return Platt.apply(a: a, b: b, scores: f)
        },
        validate: { model throws(ServiceError) in
            let params = try CalibratorParams(model, names: ["a", "b"])
            try params.requireClasses(2)
            _ = try params.number("a")
            _ = try params.number("b")
        }
    )

    // MARK: - beta

    static let beta = CalibratorDefinition(
        name: "beta",
        summary: "Beta calibration (binary, abm): p = sigmoid(a·ln s − b·ln(1 − s) + c), a, b ≥ 0, on s = softmax(z)_1 or `scores` in [0, 1]",
        inputs: CalibratorDefinition.logitsOrScoresInputs,
        binaryOnly: true,
        scoresAreProbabilities: true,
        parameters: [],
        fit: { input, _ throws(ServiceError) in
            let s = try BinaryCalibratorInput.probabilities(input, method: "beta")
            let labels = try CalibratorInputs.labels(input, rows: s.count, classes: 2)
            let fit = BetaCalibration.fit(probabilities: s, labels: labels)
            let model = CalibratorModel(
                method: "beta", classes: 2, parameters: ["a": .number(fit.a), "b": .number(fit.b), "c": .number(fit.c)])
            var notes: [String: CalibratorValue] = [:]
            if let fixed = fit.fixedAtZero { notes["fixed_at_zero"] = .text(fixed) }
            return (model, FitReport(iterations: fit.iterations, converged: fit.converged, notes: notes))
        },
        apply: { model, input throws(ServiceError) in
            let (a, b, c) = try betaParameters(model)
            let s = try BinaryCalibratorInput.probabilities(input, method: "beta")
            return BetaCalibration.apply(a: a, b: b, c: c, probabilities: s)
        },
        validate: { model throws(ServiceError) in
            _ = try betaParameters(model)
        }
    )

    private static func betaParameters(_ model: CalibratorModel) throws(ServiceError) -> (Double, Double, Double) {
        let params = try CalibratorParams(model, names: ["a", "b", "c"])
        try params.requireClasses(2)
        let a = try params.number("a"), b = try params.number("b")
        // a, b ≥ 0, except that a refit with one feature dropped (docs/calibration.md §3.8: a = 0,
        // or b = 0) is not checked again, so the other coefficient may then be negative.
        if a < 0 && b != 0 {
            throw params.error("a", "`a` must be >= 0 unless `b` = 0 (got \(NumberText.format(a)))")
        }
        if b < 0 && a != 0 {
            throw params.error("b", "`b` must be >= 0 unless `a` = 0 (got \(NumberText.format(b)))")
        }
        return (a, b, try params.number("c"))
    }

    // MARK: - isotonic

    static let isotonic = oneVsRest(
        method: "isotonic",
        summary: "Isotonic regression (pool-adjacent-violators) on p1 for C = 2, one-vs-rest on every p_k then row renormalisation for C ≥ 3",
        parameters: [],
        fit: { logits, labels, _ in
            let maps = Isotonic.fit(logits: logits, labels: labels)
            return [
                "x": .rows(maps.map(\.x)),
                "y": .rows(maps.map(\.y)),
                "x_min": .vector(maps.map(\.xMin)),
                "x_max": .vector(maps.map(\.xMax)),
            ]
        },
        maps: isotonicMaps, apply: Isotonic.apply(maps:logits:))

    /// A one-vs-rest map method (isotonic, histogram): fitted in one pass (no iterations) to
    /// per-class maps stored as `fit`'s parameters, which `maps` reads back (with its 422s)
    /// to validate a model or to `apply` it to logits of the model's width.
    private static func oneVsRest<Maps>(
        method: String, summary: String, parameters: [ParameterSpec],
        fit: @escaping @Sendable (Matrix, [Int], ResolvedParameters) -> [String: CalibratorValue],
        maps: @escaping @Sendable (CalibratorModel) throws(ServiceError) -> Maps,
        apply: @escaping @Sendable (Maps, Matrix) -> Matrix
    ) -> CalibratorDefinition {
        CalibratorDefinition(
            name: method, summary: summary, parameters: parameters,
            fit: { input, options throws(ServiceError) in
                let (logits, labels) = try CalibratorInputs.labelledLogits(input)
                let model = CalibratorModel(method: method, classes: logits.cols, parameters: fit(logits, labels, options))
                return (model, FitReport(iterations: 0, converged: true))
            },
            apply: { model, input throws(ServiceError) in
                let decoded = try maps(model)
                return apply(decoded, try CalibratorInputs.logits(input, classes: model.classes))
            },
            validate: { model throws(ServiceError) in _ = try maps(model) }
        )
    }

    private static func isotonicMaps(_ model: CalibratorModel) throws(ServiceError) -> [IsotonicMap] {
        let params = try CalibratorParams(model, names: ["x", "y", "x_min", "x_max"])
        let count = OneVsRestCalibration.modelCount(classes: model.classes)
        let xs = try params.rows("x", count: count)
        let ys = try params.rows("y", count: count)
        let lows = try params.vector("x_min", count: count)
        let highs = try params.vector("x_max", count: count)
        var maps: [IsotonicMap] = []
        for k in 0..<count {
            let (x, y) = (xs[k], ys[k])
            guard !x.isEmpty else {
                throw params.error("x/\(k)", "`x[\(k)]` must have at least one breakpoint")
            }
            guard y.count == x.count else {
                throw params.error("y/\(k)", "`y[\(k)]` has \(y.count) entries but `x[\(k)]` has \(x.count)")
            }
            for j in 1..<max(1, x.count) where !(x[j] > x[j - 1]) {
                throw params.error("x/\(k)/\(j)", "`x[\(k)]` must be strictly increasing (entry \(j))")
            }
            for j in 0..<y.count where !(y[j] >= 0 && y[j] <= 1) {
                throw params.error("y/\(k)/\(j)", "`y[\(k)][\(j)]` must be in [0, 1]")
            }
            for j in 1..<max(1, y.count) where !(y[j] >= y[j - 1]) {
                throw params.error("y/\(k)/\(j)", "`y[\(k)]` must be non-decreasing (the map is monotone; entry \(j))")
            }
            guard lows[k] <= highs[k] else {
                throw params.error("x_min/\(k)", "`x_min[\(k)]` must be <= `x_max[\(k)]`")
            }
            maps.append(IsotonicMap(x: x, y: y, xMin: lows[k], xMax: highs[k]))
        }
        return maps
    }

    // MARK: - histogram

    static let histogram = oneVsRest(
        method: "histogram",
        summary: "Histogram binning: equal-width bins on [0, 1] (left rule), θ = mean label per bin (empty bin: its centre); one-vs-rest with row renormalisation for C ≥ 3",
        parameters: [
            .integer("bins", default: 10, min: 1, max: 10000, "number of equal-width bins on [0, 1]")
        ],
        fit: { logits, labels, options in
            let maps = HistogramBinning.fit(logits: logits, labels: labels, bins: max(1, options.integer("bins")))
            return [
                "edges": .vector(maps[0].edges),
                "theta": .rows(maps.map(\.theta)),
                "counts": .rows(maps.map { $0.counts.map(Double.init) }),
            ]
        },
        maps: histogramMaps, apply: HistogramBinning.apply(maps:logits:))

    private static func histogramMaps(_ model: CalibratorModel) throws(ServiceError) -> [HistogramMap] {
        let params = try CalibratorParams(model, names: ["edges", "theta"], optional: ["counts"])
        let count = OneVsRestCalibration.modelCount(classes: model.classes)
        let edges = try params.vector("edges", count: nil)
        guard edges.count >= 2, edges.count <= 10001 else {
            throw params.error("edges", "`edges` must have between 2 and 10001 entries (got \(edges.count))")
        }
        for j in 1..<edges.count where !(edges[j] > edges[j - 1]) {
            throw params.error("edges/\(j)", "`edges` must be strictly increasing (entry \(j))")
        }
        let bins = edges.count - 1
        let thetas = try params.rows("theta", count: count)
        for (k, theta) in thetas.enumerated() {
            guard theta.count == bins else {
                throw params.error("theta/\(k)", "`theta[\(k)]` has \(theta.count) entries but `edges` defines \(bins) bins")
            }
            for (b, v) in theta.enumerated() where !(v >= 0 && v <= 1) {
                throw params.error("theta/\(k)/\(b)", "`theta[\(k)][\(b)]` must be in [0, 1]")
            }
        }
        var counts = [[Int]](repeating: [Int](repeating: 0, count: bins), count: count)
        if params.has("counts") {
            let given = try params.rows("counts", count: count)
            for (k, row) in given.enumerated() {
                guard row.count == bins else {
                    throw params.error("counts/\(k)", "`counts[\(k)]` has \(row.count) entries but `edges` defines \(bins) bins")
                }
                for (b, v) in row.enumerated() where !(v >= 0 && v == v.rounded() && v < 9e15) {
                    throw params.error("counts/\(k)/\(b)", "`counts[\(k)][\(b)]` must be a non-negative integer")
                }
                counts[k] = row.map { Int($0) }
            }
        }
        return (0..<count).map { HistogramMap(edges: edges, theta: thetas[$0], counts: counts[$0]) }
    }
}

/// The request tensors of the binary and binning calibrators, checked with the
/// messages of docs/calibration.md §1, §3.7 and §3.8.
private enum BinaryCalibratorInput {
    /// The logits of a binary method: exactly 2 columns.
    static func binaryLogits(_ logits: Matrix, method: String) throws(ServiceError) -> Matrix {
        guard logits.cols == 2 else {
            throw ServiceError.invalid(.invalidShape, field: "/logits", "\(method) is binary; got C = \(logits.cols)")
        }
        return logits
    }

    /// Either `logits` [N][2] or `scores` [N], not both.
    static func binary(_ input: CalibrationInput, method: String) throws(ServiceError) -> (logits: Matrix?, scores: [Double]?) {
        switch (input.logits, input.scores) {
        case (.some, .some):
            throw ServiceError.invalid(.invalidInput, field: "/scores", "give either `logits` or `scores`, not both")
        case (.some(let logits), nil):
            return (try binaryLogits(logits, method: method), nil)
        case (nil, .some(let scores)):
            return (nil, scores)
        case (nil, nil):
            throw ServiceError.missing("logits")
        }
    }

    /// Platt's score f: `z_1 − z_0` of 2-column logits, or `scores` as given.
    static func scores(_ input: CalibrationInput, method: String) throws(ServiceError) -> [Double] {
        let (logits, scores) = try binary(input, method: method)
        if let scores {
            for (i, v) in scores.enumerated() where !v.isFinite {
                throw ServiceError.invalid(.nonFinite, field: "/scores/\(i)", "`scores[\(i)]` is not a finite number")
            }
            return scores
        }
        let f = Platt.binaryScores(logits!)
        if let i = f.firstIndex(where: { !$0.isFinite }) {
            throw ServiceError.invalid(.nonFinite, field: "/logits/\(i)", "logits produce a non-finite loss")
        }
        return f
    }

    /// Beta's s: `softmax(z)_1` of 2-column logits, or `scores` (each in [0, 1]).
    static func probabilities(_ input: CalibrationInput, method: String) throws(ServiceError) -> [Double] {
        let (logits, scores) = try binary(input, method: method)
        if let scores {
            for (i, v) in scores.enumerated() where !(v >= 0 && v <= 1) {
                throw ServiceError.invalid(
                    .invalidInput, field: "/scores/\(i)",
                    "`scores[\(i)]` must be in [0, 1] (\(method) takes the positive class's probability)")
            }
            return scores
        }
        return BetaCalibration.probabilities(logits!)
    }
}
