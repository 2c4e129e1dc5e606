import LossdHTTP
import LossdJSON
import LossdKernels

/// `POST /v1/metrics` and `POST /v1/reliability`: calibration metrics of `logits` or `probs`
/// against `labels` (docs/calibration.md §1-§2), the reliability diagram's bins, and its SVG.
enum MetricsEndpoint {
    static let metricNames = ["ece", "ace", "mce", "classwise_ece", "brier", "nll", "accuracy", "top_k_accuracy", "opis"]
    static let defaultMetrics = ["ece", "nll", "brier", "accuracy"]

    /// `params` of both routes (`brier_scale_by_half`, which also takes `"auto"`, is read apart).
    static let parameters: [ParameterSpec] = [
        .integer("bins", default: 15, min: 1, max: 10_000, "Equal-width bins for ece, mce, classwise_ece and the reliability bins; equal-mass bins for ace"),
        .choice(
            "bin_rule", BinRule.allCases.map(\.rawValue), default: BinRule.left.rawValue,
            "Which bin takes a value on an edge: left [a, b), right (a, b], or torchmetrics (an extra bin for 1.0)"),
        .integer("k", default: 5, min: 1, "top_k_accuracy: a hit when the label is among the k highest scores"),
        .optionalNumber("d_min", "opis: lowest threshold (required with opis)"),
        .optionalNumber("d_max", "opis: highest threshold, > d_min (required with opis)"),
        .integer("n_thresholds", default: 101, min: 2, max: 100_000, "opis: evenly spaced thresholds from d_min to d_max"),
        .choice(
            "utility", CalibrationMetrics.OPISUtility.allCases.map(\.rawValue), default: CalibrationMetrics.OPISUtility.hmeanTPRTNR.rawValue,
            "opis: utility per class and threshold"),
    ]

    /// A validated request.
    struct Request {
        var metrics: [String]
        var reliability: Bool
        var bins: Int
        var binRule: BinRule
        var k: Int
        var halveBrier: Bool?
        /// The matrix argmax-based metrics rank (logits or probs as sent); nil for an
        /// opis-only request.
        var scores: Matrix?
        /// softmax(logits), or probs as sent.
        var probabilities: Matrix?
        var logits: Matrix?
        var labels: [Int]
        var opis: OPISInput?
    }

    struct OPISInput {
        var scores: [Double]
        var higherIsSimilar: Bool
        var dMin: Double
        var dMax: Double
        var thresholds: Int
        var utility: CalibrationMetrics.OPISUtility
    }

    static func metrics(_ route: RouteRequest) throws(ServiceError) -> HTTPResponse {
        let body = try RequestBody.object(route)
        try WorkingSet.reserve(WorkingSet.typical(for: body), for: "these metrics", in: route.context)
        let parsed = try parse(body, forceReliability: false)
        return LossdService.json(evaluate(parsed), output: try OutputEncoding(body, for: route))
    }

    /// `/v1/reliability`: the SVG diagram when the client accepts `image/svg+xml`, else the
    /// JSON of `/v1/metrics` with `"reliability": true`.
    static func reliability(_ route: RouteRequest) throws(ServiceError) -> HTTPResponse {
        let request = route.request
        let body = try RequestBody.object(route)
        try WorkingSet.reserve(WorkingSet.typical(for: body), for: "this reliability diagram", in: route.context)
        let parsed = try parse(body, forceReliability: true)
        let title = try CalibratorReliability.readTitle(body["title"])
        guard AcceptHeader.prefers("image/svg+xml", request.headers["accept"]) else {
            return LossdService.json(evaluate(parsed), output: try OutputEncoding(body, for: route))
        }
        guard let p = parsed.probabilities else {
            throw ServiceError.invalid(.missingField, field: "/logits", "`logits` or `probs` is required for a reliability diagram")
        }
        let bins = CalibrationMetrics.reliability(probabilities: p, labels: parsed.labels, bins: parsed.bins, binRule: parsed.binRule)
        let ece = CalibrationMetrics.ece(probabilities: p, labels: parsed.labels, bins: parsed.bins, binRule: parsed.binRule)
        let svg = ReliabilitySVG.render(
            bins: bins, ece: ece, accuracy: CalibrationMetrics.accuracy(scores: parsed.scores ?? p, labels: parsed.labels),
            n: p.rows, binRule: parsed.binRule, title: title)
        return HTTPResponse(status: .ok, headers: ["Content-Type": "image/svg+xml; charset=utf-8"], body: Array(svg.utf8))
    }

    // MARK: Parsing

    /// The members a metrics or reliability request may have.
    static let fields =
        ["metrics", "reliability", "params", "logits", "probs", "labels", "similarity", "distance"] + OutputEncoding.fields

    static func parse(_ body: JSONObject, forceReliability: Bool) throws(ServiceError) -> Request {
        // `title` names the picture, so only the reliability route takes it.
        try StrictFields.check(body, allowed: forceReliability ? fields + ["title"] : fields, pointer: "", place: "a metrics request")
        let tensors = TensorReader(object: body)
        // Validation order: metrics, reliability, params, inputs, labels, then opis's inputs.
        let metrics = try metricList(body["metrics"])
        var reliability = forceReliability
        switch body["reliability"] {
        case nil, .null?: break
        case .bool(let b)?: reliability = reliability || b
        case let other?:
            throw ServiceError.invalid(
                .invalidParam, field: "/reliability", "`reliability` must be true or false (got \(ResolvedParameters.text(other)))")
        }
        var paramsObject: JSONObject?
        switch body["params"] {
        case nil, .null?: paramsObject = nil
        case .object(let object)?: paramsObject = object
        default: throw ServiceError.invalid(.invalidParam, field: "/params", "`params` must be an object")
        }
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
            halveBrier: halveBrier, scores: nil, probabilities: nil, logits: nil, labels: [], opis: nil)

        let needsProbabilities = reliability || metrics.contains { $0 != "opis" }
        let hasLogits = tensors.contains("logits"), hasProbs = tensors.contains("probs")
        if hasLogits && hasProbs {
            throw ServiceError.invalid(.invalidInput, field: "/probs", "send either `logits` or `probs`, not both")
        }
        if needsProbabilities || hasLogits || hasProbs {
            guard hasLogits || hasProbs else {
                throw ServiceError.invalid(.missingField, field: "/logits", "`logits` or `probs` is required")
            }
            let name = hasLogits ? "logits" : "probs"
            let m = try tensors.requiredMatrix(name)
            guard m.cols >= 2 else {
                throw ServiceError.invalid(.invalidShape, field: "/\(name)", "`\(name)` needs at least 2 columns (got \(m.cols))")
            }
            if hasLogits {
                request.logits = m
                request.probabilities = CalibrationMetrics.softmax(m)
            } else {
                try checkProbabilities(m)
                request.probabilities = m
            }
            request.scores = m
        }
        guard let labels = try tensors.integers("labels") else { throw ServiceError.missing("labels") }
        request.labels = labels
        if let m = request.scores {
            do {
                try Validate.labels(labels, rows: m.rows, classes: m.cols)
            } catch {
                throw ServiceError(error)
            }
        }
        if metrics.contains("opis") {
            request.opis = try opisInput(tensors, labels: labels, params: params)
        }
        return request
    }

    /// `metrics`: absent or null for the default list; otherwise a non-empty array of
    /// known names (repeats are answered once).
    static func metricList(_ node: JSONNode?) throws(ServiceError) -> [String] {
        guard let node else { return defaultMetrics }
        let items: [JSONNode]
        switch node {
        case .null: return defaultMetrics
        case .array(let array): items = array
        case .numbers(let array) where array.values.isEmpty: items = []
        default:
            throw ServiceError.invalid(.invalidParam, field: "/metrics", "`metrics` must be an array of metric names")
        }
        guard !items.isEmpty else {
            throw ServiceError.invalid(.invalidParam, field: "/metrics", "`metrics` must name at least one metric")
        }
        var names: [String] = []
        for (i, item) in items.enumerated() {
            guard case .string(let name) = item, metricNames.contains(name) else {
                throw ServiceError.invalid(
                    .invalidParam, field: "/metrics/\(i)",
                    "unknown metric \(ResolvedParameters.text(item))"
                        + StrictFields.suggestion(for: ResolvedParameters.plain(item), among: metricNames)
                        + "; expected one of \(metricNames.joined(separator: ", "))")
            }
            if !names.contains(name) { names.append(name) }
        }
        return names
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

    // MARK: Evaluation

    static func evaluate(_ r: Request) -> JSONValue {
        var members: [(String, JSONValue)] = [("n", .int(r.labels.count))]
        if let p = r.probabilities { members.append(("classes", .int(p.cols))) }
        for name in r.metrics {
            if name == "opis", let o = r.opis {
                let result = CalibrationMetrics.opis(
                    scores: o.scores, labels: r.labels, dMin: o.dMin, dMax: o.dMax, thresholds: o.thresholds,
                    utility: o.utility, higherIsSimilar: o.higherIsSimilar)
                members.append(("opis", .double(result.value)))
                members.append(("opis_classes_used", .array(result.classesUsed.map { .int($0) })))
                members.append(("opis_classes_skipped", .array(result.classesSkipped.map { .int($0) })))
                continue
            }
            guard let p = r.probabilities, let scores = r.scores else { continue }
            switch name {
            case "ece":
                members.append((name, .double(CalibrationMetrics.ece(probabilities: p, labels: r.labels, bins: r.bins, binRule: r.binRule))))
            case "mce":
                members.append((name, .double(CalibrationMetrics.mce(probabilities: p, labels: r.labels, bins: r.bins, binRule: r.binRule))))
            case "ace":
                let (value, edges) = CalibrationMetrics.ace(probabilities: p, labels: r.labels, bins: r.bins)
                members.append((name, .double(value)))
                members.append(("ace_edges", .doubles(edges)))
            case "classwise_ece":
                let (value, perClass) = CalibrationMetrics.classwiseECE(probabilities: p, labels: r.labels, bins: r.bins, binRule: r.binRule)
                members.append((name, .double(value)))
                members.append(("classwise_ece_per_class", .doubles(perClass)))
            case "brier":
                members.append((name, .double(CalibrationMetrics.brier(probabilities: p, labels: r.labels, halve: r.halveBrier))))
            case "nll":
                let value =
                    r.logits.map { CalibrationMetrics.nll(logits: $0, labels: r.labels) }
                    ?? CalibrationMetrics.nll(probabilities: p, labels: r.labels)
                members.append((name, .double(value)))
            case "accuracy":
                members.append((name, .double(CalibrationMetrics.accuracy(scores: scores, labels: r.labels))))
            case "top_k_accuracy":
                members.append((name, .double(CalibrationMetrics.topKAccuracy(scores: scores, labels: r.labels, k: r.k))))
            default:
                break
            }
        }
        if r.reliability, let p = r.probabilities {
            let bins = CalibrationMetrics.reliability(probabilities: p, labels: r.labels, bins: r.bins, binRule: r.binRule)
            members.append((
                "reliability",
                .object([
                    ("bin_rule", .string(r.binRule.rawValue)),
                    ("bins", .array(bins.map(binJSON))),
                ])
            ))
        }
        return .object(members)
    }

    static func binJSON(_ bin: CalibrationMetrics.ReliabilityBin) -> JSONValue {
        .object([
            ("lower", .double(bin.lower)),
            ("upper", .double(bin.upper)),
            ("count", .int(bin.count)),
            ("confidence", bin.confidence.map { .double($0) } ?? .null),
            ("accuracy", bin.accuracy.map { .double($0) } ?? .null),
        ])
    }
}
