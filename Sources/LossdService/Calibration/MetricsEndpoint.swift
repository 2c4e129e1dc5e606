import LossdHTTP
import LossdJSON
import LossdKernels

/// `POST /v1/metrics` and `POST /v1/reliability`: calibration metrics of `logits`, `probs`
/// or binary `probs`/`scores` against hard `labels` or soft `targets` (docs/calibration.md
/// §1-§2), the reliability diagram's bins, and its SVG. Parsing is in
/// MetricsEndpoint+Parsing.swift.
enum MetricsEndpoint {
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
        .integer("repeats", default: 5, min: 1, max: 1000, "calibrated_nll: random halvings of the rows (two temperature fits each)"),
        .integer("seed", default: 0, min: 0, max: 9_007_199_254_740_991, "calibrated_nll: seed of the halvings (SplitMix64)"),
    ]

    /// A validated request.
    struct Request {
        var metrics: [String]
        var reliability: Bool
        var bins: Int
        var binRule: BinRule
        var k: Int
        var halveBrier: Bool?
        /// calibrated_nll's halvings and their seed.
        var repeats: Int
        var seed: UInt64
        /// The matrix argmax-based metrics rank (logits or probs as sent); nil for an
        /// opis-only request.
        var scores: Matrix?
        /// softmax(logits), probs as sent, or [1 − s, s] for binary input.
        var probabilities: Matrix?
        var logits: Matrix?
        /// Hard labels or soft targets.
        var targets: MetricTargets
        var opis: OPISInput?
        /// The picture's heading (`title`; drawn by /v1/reliability only).
        var title: String?

        /// The rows scored (the labels' count when only opis is asked for).
        var rows: Int { targets.rows }
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
        return LossdService.json(try evaluate(parsed), output: try OutputEncoding(body, for: route))
    }

    /// `/v1/reliability`: the SVG diagram when the client accepts `image/svg+xml`, else the
    /// JSON of `/v1/metrics` with `"reliability": true`.
    static func reliability(_ route: RouteRequest) throws(ServiceError) -> HTTPResponse {
        let request = route.request
        let body = try RequestBody.object(route)
        try WorkingSet.reserve(WorkingSet.typical(for: body), for: "this reliability diagram", in: route.context)
        let parsed = try parse(body, forceReliability: true)
        guard AcceptHeader.prefers("image/svg+xml", request.headers["accept"]) else {
            return LossdService.json(try evaluate(parsed), output: try OutputEncoding(body, for: route))
        }
        guard let p = parsed.probabilities else {
            throw ServiceError.invalid(.missingField, field: "/logits", "`logits` or `probs` is required for a reliability diagram")
        }
        let top = CalibrationMetrics.topLabels(scores: parsed.scores ?? p, probabilities: p, targets: parsed.targets)
        let bins = CalibrationMetrics.reliability(top, bins: parsed.bins, binRule: parsed.binRule)
        let ece = CalibrationMetrics.ece(top, bins: parsed.bins, binRule: parsed.binRule)
        let svg = ReliabilitySVG.render(
            bins: bins, ece: ece, accuracy: CalibrationMetrics.accuracy(top), n: p.rows, binRule: parsed.binRule, title: parsed.title)
        return HTTPResponse(status: .ok, headers: ["Content-Type": "image/svg+xml; charset=utf-8"], body: Array(svg.utf8))
    }

    // MARK: Evaluation

    /// One member per metric asked for, in order, after `n` and `classes`; soft targets
    /// replace the indicator [y_i = j] with t_ij everywhere (docs/calibration.md §2.10).
    static func evaluate(_ r: Request) throws(ServiceError) -> JSONValue {
        var members: [(String, JSONValue)] = [("n", .int(r.rows))]
        if let p = r.probabilities { members.append(("classes", .int(p.cols))) }
        // Top labels (argmax of the scores as sent), computed once for every binned metric.
        let top = r.probabilities.map { CalibrationMetrics.topLabels(scores: r.scores ?? $0, probabilities: $0, targets: r.targets) }
        let context = MetricContext(request: r, probabilities: r.probabilities, scores: r.scores, top: top)
        for name in r.metrics {
            guard let metric = MetricCatalogue.all[name] else { continue }
            members.append(contentsOf: try metric.evaluate(context))
        }
        if r.reliability, let top {
            let bins = CalibrationMetrics.reliability(top, bins: r.bins, binRule: r.binRule)
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

    /// Calibrated NLL over `repeats` seeded halvings (logits and labels, checked by
    /// `checkCalibratedNLL`).
    static func calibratedNLL(_ r: Request) throws(ServiceError) -> CalibratedNLL.Result {
        guard let logits = r.logits, case .labels(let labels) = r.targets else {
            throw ServiceError.invalid(.missingField, field: "/logits", "calibrated_nll needs `logits` and `labels`")
        }
        do {
            return try CalibratedNLL.evaluate(logits: logits, labels: labels, repeats: r.repeats, seed: r.seed)
        } catch {
            throw ServiceError.invalid(.invalidInput, field: "/logits", "calibrated_nll: temperature scaling failed (\(error))")
        }
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
