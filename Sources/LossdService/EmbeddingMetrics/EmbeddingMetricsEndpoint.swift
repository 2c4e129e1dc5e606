import LossdHTTP
import LossdJSON
import LossdKernels

/// `POST /v1/embedding-metrics`: alignment, uniformity, tolerance, nc1 and the mean
/// positive/negative cosines of `embeddings` (+ optional `labels`) or of paired `queries`
/// and `keys` (docs/embedding-metrics.md; kernels in `EmbeddingMetrics`).
enum EmbeddingMetricsEndpoint {
    typealias Metric = EmbeddingMetrics.Metric

    static func register(on router: inout Router) {
        router.add("POST", "/v1/embedding-metrics", cost: .heavy) { route throws(ServiceError) in try respond(route) }
    }

    static let parameters: [ParameterSpec] = [
        .boolean("normalize", default: true, "Scale every row to unit L2 norm first (cosines are true cosines either way)"),
        .number("alignment_alpha", default: 2, min: 0, minOpen: true, "alignment: the power α of ‖u − v‖₂^α"),
        .number("uniformity_t", default: 2, min: 0, minOpen: true, "uniformity: the t of log mean exp(−t‖u_i − u_j‖²)"),
    ]

    /// The members a request may have.
    static let fields = ["embeddings", "labels", "queries", "keys", "metrics", "params"] + OutputEncoding.fields

    /// The metrics by name, in the kernel's order (`EmbeddingMetrics` computes the asked
    /// ones together).
    static let catalogue = Catalogue<NamedMethod>([
        NamedMethod(name: Metric.alignment.rawValue, summary: "Mean ‖u_i − u_j‖^α over positive pairs (Wang & Isola 2020)."),
        NamedMethod(name: Metric.uniformity.rawValue, summary: "log of the mean exp(−t‖u_i − u_j‖²) over all pairs (Wang & Isola 2020)."),
        NamedMethod(name: Metric.tolerance.rawValue, summary: "Mean cosine of same-label pairs (Wang & Liu 2021)."),
        NamedMethod(name: Metric.nc1.rawValue, summary: "tr(Σ_W Σ_B⁺) / C: within-class variability against the spread of the class means (Papyan et al. 2020)."),
        NamedMethod(name: Metric.meanPositiveCosine.rawValue, summary: "Mean cosine of the positive pairs."),
        NamedMethod(name: Metric.meanNegativeCosine.rawValue, summary: "Mean cosine of the negative pairs."),
    ])

    static var metricNames: [String] { catalogue.names }

    enum Input {
        case embeddings(Matrix, labels: (indices: [Int], count: Int)?)
        case pairs(queries: Matrix, keys: Matrix)
    }

    struct Request {
        var input: Input
        var metrics: [Metric]
        var normalize: Bool
        var alpha: Double
        var t: Double
    }

    static func respond(_ route: RouteRequest) throws(ServiceError) -> HTTPResponse {
        let body = try RequestBody.object(route)
        try WorkingSet.reserve(workingSet(body), for: "these embedding metrics", in: route.context)
        let request = try parse(body)
        let value = try evaluate(request)
        return LossdService.json(value, output: try OutputEncoding(body, for: route))
    }

    /// The decoded rows (twice: as sent and as unit rows), the Gram block of
    /// `EmbeddingMetrics.blockRows` × N, nc1's residuals, and the request's own numbers.
    static func workingSet(_ body: JSONObject) -> Int {
        var rows = 0, cols = 0
        for name in ["embeddings", "queries", "keys"] {
            if let shape = WorkingSet.shape(of: body[name]), shape.count == 2 {
                rows = max(rows, shape[0])
                cols = max(cols, shape[1])
            }
        }
        let n = min(rows, EmbeddingMetrics.maxRows)
        let gram = WorkingSet.product(min(n, EmbeddingMetrics.blockRows), n, WorkingSet.valueBytes)
        return WorkingSet.sum(WorkingSet.typical(for: body), gram, WorkingSet.product(n, cols, 3, WorkingSet.valueBytes))
    }

    // MARK: Parsing

    static func parse(_ body: JSONObject) throws(ServiceError) -> Request {
        try StrictFields.check(body, allowed: fields, pointer: "", place: "an embedding-metrics request")
        let paramsObject = try RequestMembers.params(body)
        let params = try ResolvedParameters(paramsObject, specs: parameters, pointer: "/params", owner: "the embedding metrics")
        let requested = try metricList(body["metrics"])

        let tensors = TensorReader(object: body)
        let hasEmbeddings = tensors.contains("embeddings")
        let hasQueries = tensors.contains("queries"), hasKeys = tensors.contains("keys")
        if hasEmbeddings && (hasQueries || hasKeys) {
            throw ServiceError.invalid(
                .invalidInput, field: hasQueries ? "/queries" : "/keys", "send either `embeddings` or `queries` with `keys`, not both")
        }
        guard hasEmbeddings || hasQueries || hasKeys else {
            throw ServiceError.invalid(.missingField, field: "/embeddings", "`embeddings` (or `queries` with `keys`) is required")
        }
        guard hasQueries == hasKeys else {
            let missing = hasQueries ? "keys" : "queries"
            throw ServiceError.invalid(.missingField, field: "/\(missing)", "`queries` and `keys` come together; `\(missing)` is missing")
        }
        let input: Input
        if hasQueries {
            try checkRowLimit(body, "queries")
            let q = try tensors.requiredMatrix("queries")
            let k = try tensors.requiredMatrix("keys")
            guard k.rows == q.rows, k.cols == q.cols else {
                throw ServiceError.invalid(
                    .invalidShape, field: "/keys",
                    "`keys` must have the shape of `queries`, [\(q.rows)][\(q.cols)] (got [\(k.rows)][\(k.cols)])")
            }
            try checkRowCount(q.rows, "queries")
            if tensors.contains("labels") {
                throw ServiceError.invalid(
                    .invalidInput, field: "/labels", "`labels` go with `embeddings`; with `queries` and `keys`, row i of each is a positive pair")
            }
            input = .pairs(queries: q, keys: k)
        } else {
            try checkRowLimit(body, "embeddings")
            let e = try tensors.requiredMatrix("embeddings")
            try checkRowCount(e.rows, "embeddings")
            var labels: (indices: [Int], count: Int)?
            if let raw = try tensors.integers("labels") {
                guard raw.count == e.rows else {
                    throw ServiceError.invalid(
                        .invalidShape, field: "/labels", "`labels` has \(raw.count) entries but `embeddings` has \(e.rows) rows")
                }
                labels = EmbeddingMetrics.classIndices(raw)
            }
            input = .embeddings(e, labels: labels)
        }

        var metrics: [Metric]
        if let requested {
            metrics = []
            for (i, metric) in requested.enumerated() {
                if let reason = unavailable(metric, input: input) {
                    if reason.tooLarge {
                        throw ServiceError(
                            status: .contentTooLarge, code: "content_too_large", detail: reason.text, field: "/metrics/\(i)")
                    }
                    throw ServiceError.invalid(.invalidInput, field: "/metrics/\(i)", reason.text)
                }
                if !metrics.contains(metric) { metrics.append(metric) }
            }
        } else {
            metrics = Metric.allCases.filter { unavailable($0, input: input) == nil }
        }
        return Request(
            input: input, metrics: metrics, normalize: params.bool("normalize"), alpha: params.number("alignment_alpha"),
            t: params.number("uniformity_t"))
    }

    /// 413 from the declared shape before anything is decoded.
    static func checkRowLimit(_ body: JSONObject, _ name: String) throws(ServiceError) {
        if let shape = WorkingSet.shape(of: body[name]), let rows = shape.first { try checkRowCount(rows, name) }
    }

    static func checkRowCount(_ rows: Int, _ name: String) throws(ServiceError) {
        guard rows <= EmbeddingMetrics.maxRows else {
            throw ServiceError(
                status: .contentTooLarge, code: "content_too_large",
                detail: "`\(name)` has \(rows) rows; the limit is \(EmbeddingMetrics.maxRows) (the metrics cost O(N²·D))",
                field: "/\(name)")
        }
    }

    /// Why the inputs cannot give `metric`, or nil when they can.
    static func unavailable(_ metric: Metric, input: Input) -> (text: String, tooLarge: Bool)? {
        switch input {
        case .pairs:
            switch metric {
            case .tolerance, .nc1: return ("`\(metric.rawValue)` needs `embeddings` with `labels`, not `queries`/`keys`", false)
            default: return nil
            }
        case .embeddings(_, let labels):
            if metric == .uniformity { return nil }
            guard let labels else {
                return ("`\(metric.rawValue)` needs `labels` (or `queries` with `keys`); `embeddings` alone give only uniformity", false)
            }
            if metric == .nc1 {
                if labels.count < 2 { return ("`nc1` needs at least 2 distinct labels (got \(labels.count))", false) }
                if labels.count > EmbeddingMetrics.maxNC1Classes {
                    return ("`nc1` is computed for at most \(EmbeddingMetrics.maxNC1Classes) classes (got \(labels.count))", true)
                }
            }
            return nil
        }
    }

    /// `metrics`: absent for the default list (nil); otherwise a non-empty array of known
    /// names.
    static func metricList(_ node: JSONNode?) throws(ServiceError) -> [Metric]? {
        // Every name `parse` returns is a raw value of `Metric`.
        try MetricNameList.parse(node, known: metricNames)?.compactMap(Metric.init(rawValue:))
    }

    // MARK: Evaluation

    static func evaluate(_ r: Request) throws(ServiceError) -> JSONValue {
        do {
            return try compute(r)
        } catch {
            throw ServiceError.invalid(
                .invalidInput, field: "/\(error.field.rawValue)/\(error.row)",
                "`\(error.field.rawValue)[\(error.row)]` is all zeros: it has no direction to normalise or take a cosine of")
        }
    }

    static func compute(_ r: Request) throws(EmbeddingMetrics.ZeroRow) -> JSONValue {
        let wantsCosine = r.metrics.contains(where: \.isCosine)
        var values: [Metric: Double?] = [:]
        var members: [(String, JSONValue)] = []
        switch r.input {
        case .pairs(let q, let k):
            members = [("n", .int(q.rows)), ("dimension", .int(q.cols))]
            var unitQ: Matrix?, unitK: Matrix?
            if r.normalize || wantsCosine {
                unitQ = try EmbeddingMetrics.unitRows(q, field: .queries)
                unitK = try EmbeddingMetrics.unitRows(k, field: .keys)
            }
            let rowsQ = r.normalize ? unitQ ?? q : q, rowsK = r.normalize ? unitK ?? k : k
            if r.metrics.contains(.alignment) {
                values[.alignment] = EmbeddingMetrics.pairedAlignment(queries: rowsQ, keys: rowsK, alpha: r.alpha)
            }
            if r.metrics.contains(.uniformity) {
                let a = EmbeddingMetrics.pairSums(rows: rowsQ, classes: nil, alpha: nil, t: r.t).uniformity
                let b = EmbeddingMetrics.pairSums(rows: rowsK, classes: nil, alpha: nil, t: r.t).uniformity
                values[.uniformity] = a.flatMap { a in b.map { (a + $0) / 2 } }
            }
            if wantsCosine, let unitQ, let unitK {
                let cosines = EmbeddingMetrics.pairedCosines(unitQueries: unitQ, unitKeys: unitK)
                values[.meanPositiveCosine] = cosines.positive
                values[.meanNegativeCosine] = cosines.negative
            }
        case .embeddings(let e, let labels):
            members = [("n", .int(e.rows)), ("dimension", .int(e.cols))]
            if let labels { members.append(("classes", .int(labels.count))) }
            var unit: Matrix?
            if r.normalize || wantsCosine { unit = try EmbeddingMetrics.unitRows(e, field: .embeddings) }
            let rows = r.normalize ? unit ?? e : e
            let wantsAlignment = r.metrics.contains(.alignment), wantsUniformity = r.metrics.contains(.uniformity)
            if wantsAlignment || wantsUniformity {
                let sums = EmbeddingMetrics.pairSums(
                    rows: rows, classes: labels?.indices, alpha: wantsAlignment ? r.alpha : nil, t: wantsUniformity ? r.t : nil)
                values[.alignment] = sums.alignment
                values[.uniformity] = sums.uniformity
            }
            if let labels {
                if wantsCosine, let unit {
                    let cosines = EmbeddingMetrics.cosineMeans(unitRows: unit, classes: labels.indices, classCount: labels.count)
                    values[.tolerance] = cosines.positive
                    values[.meanPositiveCosine] = cosines.positive
                    values[.meanNegativeCosine] = cosines.negative
                }
                if r.metrics.contains(.nc1) {
                    values[.nc1] = EmbeddingMetrics.nc1(rows: rows, classes: labels.indices, classCount: labels.count)
                }
            }
        }
        for metric in r.metrics {
            // A metric with no pair to average over (or a value JSON cannot hold) is null.
            let value = values[metric] ?? nil
            members.append((metric.rawValue, value.map { $0.isFinite ? .double($0) : .null } ?? .null))
        }
        return .object(members)
    }
}
