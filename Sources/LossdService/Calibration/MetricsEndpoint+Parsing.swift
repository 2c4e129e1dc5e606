import LossdHTTP
import LossdJSON
import LossdKernels

/// Request parsing of `/v1/metrics` and `/v1/reliability` (docs/calibration.md §2): which
/// metrics, the params, the scored input (`logits` [N][C], `probs` [N][C], or binary
/// `probs`/`scores` [N]) and what it is scored against (`labels` [N] or soft `targets`
/// [N][C]).
extension MetricsEndpoint {
    /// The members a metrics or reliability request may have.
    static let fields =
        ["metrics", "reliability", "params", "logits", "probs", "scores", "labels", "targets", "similarity", "distance", "title"]
        + OutputEncoding.fields

    /// The most work calibrated NLL may do: N·C·repeats (each repeat fits two
    /// temperatures on half the rows); 413 beyond.
    static let maxCalibratedNLLWork = 1 << 26

    /// Validation order: fields, metrics, reliability, params, the scored input, labels or
    /// targets, calibrated_nll's needs, then opis's inputs.
    static func parse(_ body: JSONObject, forceReliability: Bool) throws(ServiceError) -> Request {
        try StrictFields.check(body, allowed: fields, pointer: "", place: "a metrics request")
        // The heading of /v1/reliability's picture: checked on both routes (one request
        // schema), drawn only there.
        let title = try CalibratorReliability.readTitle(body["title"])
        let tensors = TensorReader(object: body)
        let metrics = try metricList(body["metrics"])
        var reliability = forceReliability
        switch body["reliability"] {
        case nil, .null?: break
        case .bool(let b)?: reliability = reliability || b
        case let other?:
            throw ServiceError.invalid(
                .invalidParam, field: "/reliability", "`reliability` must be true or false (got \(ResolvedParameters.text(other)))")
        }
        let paramsObject = try RequestMembers.params(body)
        let params = try ResolvedParameters(
            paramsObject, specs: parameters, pointer: "/params", extra: ["brier_scale_by_half"], owner: "the metrics")
        let halveBrier: Bool?
        switch paramsObject?["brier_scale_by_half"] {
        case nil, .null?, .string("auto")?: halveBrier = nil
        case .bool(let b)?: halveBrier = b
        case let other?:
            throw ServiceError.invalid(
                .invalidParam, field: "/params/brier_scale_by_half",
                "`brier_scale_by_half` must be one of \"auto\", true, false (got \(ResolvedParameters.text(other)))")
        }

        var request = Request(
            metrics: metrics, reliability: reliability, bins: params.integer("bins"),
            binRule: BinRule(rawValue: params.string("bin_rule")) ?? .left, k: params.integer("k"),
            halveBrier: halveBrier, repeats: params.integer("repeats"), seed: UInt64(max(0, params.integer("seed"))),
            scores: nil, probabilities: nil, logits: nil, targets: .labels([]), opis: nil, title: title)

        let needsProbabilities = reliability || metrics.contains { $0 != "opis" }
        try readScoredInput(tensors, into: &request, required: needsProbabilities)
        request.targets = try readTargets(tensors, scores: request.scores, opis: metrics.contains("opis"))
        if metrics.contains("calibrated_nll") { try checkCalibratedNLL(request) }
        if metrics.contains("opis"), case .labels(let labels) = request.targets {
            request.opis = try opisInput(tensors, labels: labels, params: params)
        }
        return request
    }

    /// The scored input: exactly one of `logits` [N][C], `probs` [N][C] or [N], `scores`
    /// [N] (sending two is a 422 at the later one in that order). A 1-D `probs`/`scores`
    /// holds P(class 1) in [0, 1] and becomes the rows [1 − s, s].
    static func readScoredInput(_ tensors: TensorReader, into request: inout Request, required: Bool) throws(ServiceError) {
        let present = ["logits", "probs", "scores"].filter { tensors.contains($0) }
        if present.count > 1 {
            throw ServiceError.invalid(
                .invalidInput, field: "/\(present[1])", "send one of `logits`, `probs` or `scores`, not `\(present[0])` and `\(present[1])`")
        }
        guard let name = present.first else {
            if required { throw ServiceError.invalid(.missingField, field: "/logits", "`logits`, `probs` or `scores` is required") }
            return
        }
        let tensor = try (name == "scores" ? tensors.tensor(name, rank: 1) : tensors.tensor(name, ranks: name == "logits" ? 2...2 : 1...2))
        guard let tensor else { throw ServiceError.missing(name) }
        if tensor.shape.count == 1 {
            var values = [Double](repeating: 0, count: 2 * tensor.values.count)
            for (i, s) in tensor.values.enumerated() {
                guard s >= 0 && s <= 1 else {
                    throw ServiceError.invalid(
                        .invalidInput, field: "/\(name)",
                        "`\(name)[\(i)]` = \(NumberText.format(s)) is outside [0, 1] (a binary `\(name)` is P(class 1))")
                }
                values[2 * i] = 1 - s
                values[2 * i + 1] = s
            }
            let p = Matrix(rows: tensor.values.count, cols: 2, values: values)
            request.probabilities = p
            request.scores = p
            return
        }
        let m = tensor.matrix
        guard m.cols >= 2 else {
            throw ServiceError.invalid(.invalidShape, field: "/\(name)", "`\(name)` needs at least 2 columns (got \(m.cols))")
        }
        if name == "logits" {
            request.logits = m
            request.probabilities = CalibrationMetrics.softmax(m)
        } else {
            try checkProbabilities(m)
            request.probabilities = m
        }
        request.scores = m
    }

    /// Exactly one of `labels` [N] (in [0, C)) and `targets` [N][C] (rows on the simplex
    /// within 1e-6); both or neither is 422 `missing_field` at `/labels`. Without a scored
    /// input (opis alone) only labels make sense.
    static func readTargets(_ tensors: TensorReader, scores: Matrix?, opis: Bool) throws(ServiceError) -> MetricTargets {
        let hasLabels = tensors.contains("labels"), hasTargets = tensors.contains("targets")
        if hasLabels && hasTargets {
            throw ServiceError.invalid(.missingField, field: "/labels", "send either `labels` or `targets`, not both")
        }
        guard hasTargets else {
            guard let labels = try tensors.integers("labels") else {
                throw ServiceError.invalid(.missingField, field: "/labels", "`labels` (or soft `targets`) is required")
            }
            if let m = scores {
                do {
                    try Validate.labels(labels, rows: m.rows, classes: m.cols)
                } catch {
                    throw ServiceError(error)
                }
            }
            return .labels(labels)
        }
        let t = try tensors.requiredMatrix("targets")
        guard let m = scores, !opis else {
            throw ServiceError.invalid(.invalidInput, field: "/targets", "opis takes hard `labels`, not soft `targets`")
        }
        do {
            try Validate.distributions(t, name: "targets", rows: m.rows, cols: m.cols)
        } catch {
            throw ServiceError(error)
        }
        return .soft(t)
    }

    /// calibrated_nll needs logits, hard labels, N ≥ 2 and N·C·repeats within the work limit.
    static func checkCalibratedNLL(_ request: Request) throws(ServiceError) {
        guard let logits = request.logits else {
            throw ServiceError.invalid(.missingField, field: "/logits", "calibrated_nll needs `logits` (temperature scaling rescales them)")
        }
        guard case .labels = request.targets else {
            throw ServiceError.invalid(.invalidInput, field: "/targets", "calibrated_nll takes hard `labels`, not soft `targets`")
        }
        guard logits.rows >= 2 else {
            throw ServiceError.invalid(.invalidShape, field: "/logits", "calibrated_nll halves the rows: it needs at least 2 (got \(logits.rows))")
        }
        let work = WorkingSet.product(logits.rows, logits.cols, request.repeats)
        guard work <= maxCalibratedNLLWork else {
            throw ServiceError(
                status: .contentTooLarge, code: "content_too_large",
                detail: "calibrated_nll's N·C·repeats = \(work) exceeds the limit \(maxCalibratedNLLWork); lower `repeats` or send fewer rows",
                field: "/params/repeats")
        }
    }

    /// `metrics`: absent or null for the default list; otherwise a non-empty array of
    /// known names (repeats are answered once).
    static func metricList(_ node: JSONNode?) throws(ServiceError) -> [String] {
        guard let names = try MetricNameList.parse(node, known: MetricCatalogue.all.names) else { return MetricCatalogue.defaults }
        var unique: [String] = []
        for name in names where !unique.contains(name) { unique.append(name) }
        return unique
    }

    /// probs rows: entries in [0, 1] and sums within 1e-6 of 1 (docs/calibration.md §1; field
    /// `/probs`).
    static func checkProbabilities(_ m: Matrix) throws(ServiceError) {
        for i in 0..<m.rows {
            var sum = 0.0
            for j in 0..<m.cols {
                let v = m[i, j]
                guard v >= 0 && v <= 1 else {
                    throw ServiceError.invalid(
                        .invalidInput, field: "/probs", "`probs[\(i)][\(j)]` = \(NumberText.format(v)) is outside [0, 1]")
                }
                sum += v
            }
            guard abs(sum - 1) <= 1e-6 else {
                throw ServiceError.invalid(
                    .invalidInput, field: "/probs", "`probs[\(i)]` sums to \(NumberText.format(sum)), not 1 (within 1e-6)")
            }
        }
    }

    /// opis's inputs: `similarity` or `distance` [N][N] for the N labels, N ≥ 4, and
    /// d_min < d_max (docs/calibration.md §2.9).
    static func opisInput(_ tensors: TensorReader, labels: [Int], params: ResolvedParameters) throws(ServiceError) -> OPISInput {
        let hasSimilarity = tensors.contains("similarity"), hasDistance = tensors.contains("distance")
        if hasSimilarity && hasDistance {
            throw ServiceError.invalid(.invalidInput, field: "/distance", "send either `similarity` or `distance`, not both")
        }
        guard hasSimilarity || hasDistance else {
            throw ServiceError.invalid(.missingField, field: "/similarity", "opis needs `similarity` or `distance` [N][N]")
        }
        let name = hasSimilarity ? "similarity" : "distance"
        let m = try tensors.requiredMatrix(name)
        guard m.rows == m.cols else {
            throw ServiceError.invalid(.invalidShape, field: "/\(name)", "`\(name)` must be square (got \(m.rows) x \(m.cols))")
        }
        guard m.rows == labels.count else {
            throw ServiceError.invalid(
                .invalidShape, field: "/\(name)", "`\(name)` is \(m.rows) x \(m.cols) but `labels` has \(labels.count) entries")
        }
        guard m.rows >= 4 else {
            throw ServiceError.invalid(.invalidShape, field: "/\(name)", "opis needs at least 4 samples (got \(m.rows))")
        }
        guard let dMin = params.optionalNumber("d_min") else {
            throw ServiceError.invalid(.invalidParam, field: "/params/d_min", "`d_min` is required with opis")
        }
        guard let dMax = params.optionalNumber("d_max") else {
            throw ServiceError.invalid(.invalidParam, field: "/params/d_max", "`d_max` is required with opis")
        }
        guard dMin < dMax else {
            throw ServiceError.invalid(
                .invalidParam, field: "/params/d_max",
                "`d_max` must be > `d_min` (got \(NumberText.format(dMin)), \(NumberText.format(dMax)))")
        }
        return OPISInput(
            scores: m.values, higherIsSimilar: hasSimilarity, dMin: dMin, dMax: dMax, thresholds: params.integer("n_thresholds"),
            utility: CalibrationMetrics.OPISUtility(rawValue: params.string("utility")) ?? .hmeanTPRTNR)
    }
}
