import LossdHTTP
import LossdJSON
import LossdKernels

/// `POST /v1/calibrators/{name}/reliability`: what a stored calibrator does to the posted
/// data, as one reliability diagram with the bins before and after calibration
/// (`Accept: image/svg+xml`), or as JSON with both sets of bins and their ECE, NLL and
/// accuracy.
///
/// The request is an apply request (`logits`, or `scores` for platt and beta, or
/// `views_logits` for correctness_aware) plus `labels`, `params` (`bins`, `bin_rule`) and
/// an optional `title` for the picture. "Before" is the uncalibrated softmax (of view 0 for
/// correctness_aware; for scores the sigmoid, or the score itself for beta).
enum CalibratorReliability {
    static let parameters: [ParameterSpec] = MetricsEndpoint.parameters.filter { ["bins", "bin_rule"].contains($0.name) }
    static let fields = ["logits", "scores", "views_logits", "labels", "params", "title"]
    /// The longest `title` accepted, in characters.
    static let maxTitleLength = 200

    static func respond(_ name: String, _ route: RouteRequest, slot: StoreSlot) throws(ServiceError) -> HTTPResponse {
        try CalibratorResource.checkName(name, field: nil)
        let body = try RequestBody.object(route)
        try StrictFields.check(body, allowed: fields, pointer: "", place: "a calibrator reliability request")
        let params = try ResolvedParameters(
            try paramsObject(body), specs: parameters, pointer: "/params", owner: "the reliability diagram")
        let title = try readTitle(body["title"])
        let record = try CalibratorEndpoints.load(name, slot: slot)
        guard let definition = CalibratorCatalogue.all[record.model.method] else {
            throw ServiceError.invalid(.invalidInput, field: nil, "calibration method `\(record.model.method)` is not available")
        }
        let tensors = TensorReader(object: body)
        var input = try CalibratorEndpoints.checked(try CalibratorEndpoints.inputs(tensors, definition: definition), against: record.model)
        guard let labels = try tensors.integers("labels") else { throw ServiceError.missing("labels") }
        try WorkingSet.reserve(WorkingSet.typical(for: body, factor: 4), for: "this reliability diagram", in: route.context)

        // Labels are checked before any calibration work: one per row, each in [0, C).
        let rows = input.logits?.rows ?? input.scores?.count ?? input.views.map { $0.shape.count == 3 ? $0.shape[1] : 0 } ?? 0
        input.labels = labels
        _ = try CalibratorInputs.labels(input, rows: rows, classes: record.model.classes)
        let after = try definition.apply(record.model, input)
        guard let before = CalibratorEndpoints.baseline(input, definition: definition), after.values.allFinite else {
            throw ServiceError.invalid(
                .valueOverflow, field: nil,
                "the calibrated probabilities are not representable in float64: the calibrator's parameters overflow on these logits")
        }
        let bins = params.integer("bins")
        let rule = BinRule(rawValue: params.string("bin_rule")) ?? .left
        let series = [("Before", before, ReliabilitySVG.beforeColour), ("After \(record.model.method)", after, ReliabilitySVG.afterColour)]
            .map { label, p, colour in
                // One top-label pass per side feeds the bins, the ECE and the accuracy.
                let top = CalibrationMetrics.topLabels(scores: p, probabilities: p, targets: .labels(labels))
                return ReliabilitySVG.Series(
                    label: label, bins: CalibrationMetrics.reliability(top, bins: bins, binRule: rule),
                    ece: CalibrationMetrics.ece(top, bins: bins, binRule: rule), accuracy: CalibrationMetrics.accuracy(top), colour: colour)
            }
        let nll = [
            input.logits.map { CalibrationMetrics.nll(logits: $0, labels: labels) } ?? CalibrationMetrics.nll(probabilities: before, labels: labels),
            CalibrationMetrics.nll(probabilities: after, labels: labels),
        ]

        if AcceptHeader.prefers("image/svg+xml", route.request.headers["accept"]) {
            let heading = title ?? "Calibrator \u{201c}\(name)\u{201d} (\(record.model.method)): before and after"
            let svg = ReliabilitySVG.renderComparison(before: series[0], after: series[1], n: labels.count, binRule: rule, title: heading)
            return HTTPResponse(status: .ok, headers: ["Content-Type": "image/svg+xml; charset=utf-8"], body: Array(svg.utf8))
        }
        func side(_ s: ReliabilitySVG.Series, nll: Double) -> JSONValue {
            .object([
                ("ece", .double(s.ece)),
                ("nll", nll.isFinite ? .double(nll) : .null),
                ("accuracy", .double(s.accuracy)),
                ("reliability", .object([("bin_rule", .string(rule.rawValue)), ("bins", .array(s.bins.map(MetricsEndpoint.binJSON)))])),
            ])
        }
        return LossdService.json(
            .object([
                ("name", .string(name)),
                ("method", .string(record.model.method)),
                ("n", .int(labels.count)),
                ("before", side(series[0], nll: nll[0])),
                ("after", side(series[1], nll: nll[1])),
            ]))
    }

    private static func paramsObject(_ body: JSONObject) throws(ServiceError) -> JSONObject? {
        try RequestMembers.params(body)
    }

    /// An optional picture title: a string of 1 to `maxTitleLength` characters.
    static func readTitle(_ node: JSONNode?) throws(ServiceError) -> String? {
        switch node {
        case nil, .null?: return nil
        case .string(let s)? where !s.isEmpty && s.count <= maxTitleLength: return s
        default:
            throw ServiceError.invalid(.invalidParam, field: "/title", "`title` must be a string of 1 to \(maxTitleLength) characters")
        }
    }
}
