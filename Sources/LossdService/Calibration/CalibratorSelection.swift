import LossdHTTP
import LossdJSON
import LossdKernels
import LossdStore

#if canImport(Glibc)
    import Glibc
#endif

/// `POST /v1/calibrators/select` (docs/calibration.md §5): stratified
/// k-fold cross-validation of every applicable calibrator, ranked by a held-out metric,
/// with the uncalibrated baseline, the failed fits, and the winner refitted on all rows
/// (stored under `name` when given, as a fit with a name is). One loop over the
/// catalogue's records: a method takes part through its `fit` and `apply` adapters.
enum CalibratorSelection {
    static let fields = ["logits", "scores", "labels", "views_logits", "methods", "folds", "seed", "metric", "params", "name"]

    static let options: [ParameterSpec] = [
        .integer("folds", default: 5, min: 2, max: 20, "k of the stratified k-fold cross-validation (at most N)"),
        .integer("seed", default: 0, min: 0, max: 999_999_999_999_999, "SplitMix64 seed of the fold assignment"),
        .choice("metric", ["nll", "ece", "brier", "rmsce"], default: "nll", "held-out metric the methods are ranked by (lower is better)"),
    ]

    /// The cost guard: N·C·k·|methods| at most this (413 beyond). 2.5·10⁸ is, e.g., every
    /// multi-class method on 10 000 rows of 100 classes with 5 folds (3.5·10⁷) with room for
    /// ImageNet-sized validation sets with fewer methods or folds.
    static let maxWork = 250_000_000

    /// One method under test: its catalogue record and its resolved fit options.
    struct Candidate {
        let definition: CalibratorDefinition
        let parameters: ResolvedParameters
    }

    /// A fold whose fit (or apply, or score) failed.
    struct Failure {
        let fold: Int
        let code: String
        let reason: String
    }

    /// A method's (or the baseline's) held-out scores.
    struct Scores {
        let method: String
        var perFold: [Double?]
        var failures: [Failure] = []

        var scored: [Double] { perFold.compactMap { $0 } }
        /// The mean over the folds it was scored on (nil when none, or when it overflows).
        var mean: Double? {
            guard !scored.isEmpty else { return nil }
            let value = scored.reduce(0, +) / Double(scored.count)
            return value.isFinite ? value : nil
        }
        /// Population standard deviation (ddof 0) over the folds it was scored on.
        var std: Double? {
            guard let mean else { return nil }
            let values = scored
            let value = (values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(values.count)).squareRoot()
            return value.isFinite ? value : nil
        }
    }

    /// What a selection produced, for the JSON and the SVG answers.
    struct Outcome {
        let metric: String
        let folds: Int
        let seed: UInt64
        let foldSizes: [Int]
        let ranking: [Scores]
        let uncalibrated: Scores
        let best: CalibratorRecord
    }

    // MARK: Endpoint

    static func select(_ route: RouteRequest, slot: StoreSlot) throws(ServiceError) -> HTTPResponse {
        let request = route.request
        let body = try RequestBody.object(route)
        try StrictFields.check(body, allowed: fields, pointer: "", place: "a calibrator selection")
        // Validation order: options, name, inputs and labels, methods, params, then the cost.
        let resolved = try ResolvedParameters(body, specs: options, pointer: "", extra: fields.filter { !["folds", "seed", "metric"].contains($0) })
        let k = resolved.integer("folds"), seed = UInt64(resolved.integer("seed")), metric = resolved.string("metric")
        let name = try CalibratorResource.optionalName(in: body)
        let store = name == nil ? nil : try slot.current()
        let data = try SelectionData(TensorReader(object: body))
        guard k <= data.rows else {
            throw ServiceError.invalid(.invalidParam, field: "/folds", "`folds` = \(k) exceeds the \(data.rows) rows: every fold needs a row")
        }
        let candidates = try candidates(body, data: data)

        try checkCost(rows: data.rows, classes: data.classes, folds: k, methods: candidates.count)
        let fitSet = candidates.map { $0.definition.fitWorkingSet(data.input) }.max() ?? 0
        let copies = WorkingSet.product(data.rows, data.classes, (data.input.views?.shape.first ?? 1) + 3, WorkingSet.valueBytes)
        try WorkingSet.reserve(
            WorkingSet.sum(WorkingSet.typical(for: body, factor: 8), fitSet, copies),
            for: "this calibrator selection", in: route.context)

        let outcome = try run(data, candidates: candidates, folds: k, seed: seed, metric: metric, name: name)
        let answer: HTTPResponse
        if AcceptHeader.prefers("image/svg+xml", request.headers["accept"]) {
            let svg = SelectionSVG.render(outcome)
            answer = HTTPResponse(status: .ok, headers: ["Content-Type": "image/svg+xml; charset=utf-8"], body: Array(svg.utf8))
        } else {
            answer = LossdService.json(json(outcome))
        }
        guard let store else { return answer }
        return try StoredRoutes<CalibratorResource>.storeFitted(outcome.best.stored, answer: answer, request: request, store: store)
    }

    /// The cost guard: 413 when N·C·k·|methods| exceeds `maxWork`.
    static func checkCost(rows: Int, classes: Int, folds: Int, methods: Int) throws(ServiceError) {
        let work = WorkingSet.product(rows, classes, folds, methods)
        guard work <= maxWork else {
            throw ServiceError(
                status: .contentTooLarge, code: "content_too_large",
                detail: "N·C·folds·methods = \(rows)·\(classes)·\(folds)·\(methods) exceeds \(maxWork); send fewer rows, folds or methods")
        }
    }

    /// The methods to try, in the tie order, with their options: `methods` as sent (each
    /// known, once, applicable to the input) or every applicable one; `params` keyed by
    /// method, each checked against that method's parameters.
    static func candidates(_ body: JSONObject, data: SelectionData) throws(ServiceError) -> [Candidate] {
        var chosen: [CalibratorDefinition] = []
        switch body["methods"] {
        case nil:
            chosen = CalibratorCatalogue.simplestFirst.compactMap { CalibratorCatalogue.all[$0] }.filter {
                data.applicability($0) == nil && $0.maxClasses.map { data.classes <= $0 } ?? true
            }
        case .array(let items)?:
            guard !items.isEmpty else { throw ServiceError.invalid(.invalidParam, field: "/methods", "`methods` must name at least one method") }
            for (i, item) in items.enumerated() {
                let field = "/methods/\(i)"
                let definition = try CalibratorCodec.definition(item, field: field)
                if chosen.contains(where: { $0.name == definition.name }) {
                    throw ServiceError.invalid(.invalidParam, field: field, "`\(definition.name)` is listed twice")
                }
                if let refusal = data.applicability(definition) { throw refusal.error(field) }
                try definition.checkSize(data.input)
                chosen.append(definition)
            }
            let rank = { (d: CalibratorDefinition) in CalibratorCatalogue.simplestFirst.firstIndex(of: d.name) ?? Int.max }
            chosen.sort { rank($0) < rank($1) }
        default:
            throw ServiceError.invalid(.invalidParam, field: "/methods", "`methods` must be an array of method names")
        }

        var options: [String: JSONObject] = [:]
        switch body["params"] {
        case nil: break
        case .object(let object)?:
            try StrictFields.check(object, allowed: CalibratorCatalogue.all.map(\.name), pointer: "/params", place: "`params` (keyed by method)")
            for (method, node) in object.members {
                let field = "/params/\(JSONPointer.escape(method))"
                guard chosen.contains(where: { $0.name == method }) else {
                    throw ServiceError.invalid(.invalidParam, field: field, "`\(method)` is not among the methods tried (\(chosen.map(\.name).joined(separator: ", ")))")
                }
                guard case .object(let params) = node else {
                    throw ServiceError.invalid(.invalidParam, field: field, "`params.\(method)` must be an object")
                }
                options[method] = params
            }
        default:
            throw ServiceError.invalid(.invalidParam, field: "/params", "`params` must be an object keyed by method")
        }
        var result: [Candidate] = []
        for definition in chosen {
            let parameters = try ResolvedParameters(
                options[definition.name], specs: definition.parameters, pointer: "/params/\(definition.name)",
                owner: "calibrator `\(definition.name)`")
            result.append(Candidate(definition: definition, parameters: parameters))
        }
        return result
    }

    // MARK: Cross-validation

    static func run(
        _ data: SelectionData, candidates: [Candidate], folds k: Int, seed: UInt64, metric: String, name: String?
    ) throws(ServiceError) -> Outcome {
        let assignment = StratifiedFolds.assign(labels: data.labels, classes: data.classes, folds: k, seed: seed)
        let members = StratifiedFolds.members(assignment, folds: k)
        var uncalibrated = Scores(method: "uncalibrated", perFold: [])
        var scores = candidates.map { Scores(method: $0.definition.name, perFold: []) }
        for (fold, heldOut) in members.enumerated() {
            var training: [Int] = []
            training.reserveCapacity(data.rows - heldOut.count)
            for row in 0..<data.rows where assignment[row] != fold { training.append(row) }
            var train = data.subset(training)
            train.labels = training.map { data.labels[$0] }
            let test = data.subset(heldOut)
            let testLabels = heldOut.map { data.labels[$0] }
            uncalibrated.perFold.append(score(data.baseline(test), logits: test.logits, labels: testLabels, metric: metric))
            for (i, candidate) in candidates.enumerated() {
                // Long work: stop between fits once the client has gone or the deadline passed
                // (LossdService answers 503 for a cancelled request).
                if Cancellation.isCancelled { throw cancelled }
                do {
                    let (model, _) = try candidate.definition.fit(train, candidate.parameters)
                    let probs = try candidate.definition.apply(model, test)
                    let value = score(probs, logits: nil, labels: testLabels, metric: metric)
                    guard let value else {
                        scores[i].perFold.append(nil)
                        scores[i].failures.append(Failure(fold: fold, code: "non_finite", reason: "the held-out \(metric) is not finite"))
                        continue
                    }
                    scores[i].perFold.append(value)
                } catch {
                    scores[i].perFold.append(nil)
                    scores[i].failures.append(Failure(fold: fold, code: error.code, reason: error.detail))
                }
            }
        }
        let rank = { (method: String) in CalibratorCatalogue.simplestFirst.firstIndex(of: method) ?? Int.max }
        let ranking = scores.sorted { a, b in
            switch (a.mean, b.mean) {
            case let (x?, y?) where x != y: return x < y
            case (_?, nil): return true
            case (nil, _?): return false
            default: return rank(a.method) < rank(b.method)
            }
        }
        // The winner refitted on all rows: the best-ranked method whose full fit succeeds.
        var full = data.input
        full.labels = data.labels
        var lastError: ServiceError?
        for entry in ranking where entry.mean != nil {
            guard let candidate = candidates.first(where: { $0.definition.name == entry.method }) else { continue }
            if Cancellation.isCancelled { throw cancelled }
            do {
                let (model, _) = try candidate.definition.fit(full, candidate.parameters)
                let record = CalibratorRecord(name: name, model: model, fittedOn: data.rows, createdAt: CalibratorResource.timestamp())
                return Outcome(
                    metric: metric, folds: k, seed: seed, foldSizes: members.map(\.count), ranking: ranking,
                    uncalibrated: uncalibrated, best: record)
            } catch {
                lastError = error
            }
        }
        if let lastError { throw lastError }
        let first = ranking.first?.failures.first
        throw ServiceError.invalid(
            .invalidInput, field: nil,
            "no method could be fitted on any fold" + (first.map { " (e.g. \(ranking[0].method), fold \($0.fold): \($0.reason))" } ?? ""))
    }

    static var cancelled: ServiceError {
        var error = ServiceError(status: .serviceUnavailable, code: "overloaded", detail: "the request was cancelled")
        error.headers = [("Retry-After", "1")]
        return error
    }

    /// The metric of held-out probabilities (nil when not finite). The uncalibrated NLL of
    /// logits is log-softmax's, unclipped, as the fit's `nll_before`.
    static func score(_ p: Matrix, logits: Matrix?, labels: [Int], metric: String) -> Double? {
        let value: Double
        switch metric {
        case "ece": value = CalibrationMetrics.ece(probabilities: p, labels: labels)
        case "brier": value = CalibrationMetrics.brier(probabilities: p, labels: labels)
        case "rmsce": value = CalibrationMetrics.rmsce(probabilities: p, labels: labels)
        default:
            value = logits.map { CalibrationMetrics.nll(logits: $0, labels: labels) } ?? CalibrationMetrics.nll(probabilities: p, labels: labels)
        }
        return value.isFinite ? value : nil
    }

    // MARK: JSON

    static func json(_ outcome: Outcome) -> JSONValue {
        .object([
            ("metric", .string(outcome.metric)),
            ("folds", .int(outcome.folds)),
            ("seed", .int(Int(outcome.seed))),
            ("fold_sizes", .array(outcome.foldSizes.map { .int($0) })),
            ("ranking", .array(outcome.ranking.map(json))),
            ("uncalibrated", .object(summary(outcome.uncalibrated))),
            ("best", outcome.best.json),
        ])
    }

    static func json(_ scores: Scores) -> JSONValue {
        var members: [(String, JSONValue)] = [("method", .string(scores.method))]
        members += summary(scores)
        members.append(
            ("fit_failures", .array(scores.failures.map { .object([("fold", .int($0.fold)), ("code", .string($0.code)), ("reason", .string($0.reason))]) })))
        return .object(members)
    }

    static func summary(_ scores: Scores) -> [(String, JSONValue)] {
        [
            ("mean", scores.mean.map { .double($0) } ?? .null),
            ("std", scores.std.map { .double($0) } ?? .null),
            ("per_fold", .array(scores.perFold.map { $0.map { .double($0) } ?? .null })),
        ]
    }
}
