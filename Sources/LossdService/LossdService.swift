import LossdHTTP
import LossdKernels
import LossdStore
import Logging
import Synchronization

/// Settings of the service layer (the HTTP server has its own).
public struct ServiceConfiguration: Sendable {
    /// Where the embedded store lives.
    public var dataDirectory: String = "./data"
    /// When set, every `/v1` route needs `Authorization: Bearer <apiKey>` (401 otherwise).
    public var apiKey: String?
    /// The largest body accepted (the server's `--max-body-bytes`); a gzip body may not
    /// inflate beyond it either (413).
    public var maxBodyBytes: Int = HTTPParserLimits.defaultMaxBodyBytes
    /// Which responses are gzip-encoded for clients that accept it.
    public var compression = CompressionPolicy()

    public init(dataDirectory: String = "./data", apiKey: String? = nil, maxBodyBytes: Int = HTTPParserLimits.defaultMaxBodyBytes) {
        self.dataDirectory = dataDirectory
        self.apiKey = apiKey
        self.maxBodyBytes = maxBodyBytes
    }
}

/// The lossd application: routes requests to handlers and renders every error as
/// problem+json. It knows the API; the server below it knows only HTTP.
public final class LossdService: HTTPResponder {
    public static let version = "0.1.0"

    public let configuration: ServiceConfiguration
    private let router: Router
    private let state: ServiceState

    /// - Parameter acceptingWork: whether the server still takes requests (false while draining).
    public init(configuration: ServiceConfiguration, acceptingWork: @escaping @Sendable () -> Bool = { true }) {
        self.configuration = configuration
        let state = ServiceState(acceptingWork: acceptingWork)
        self.state = state
        var router = Router()
        LossdService.registerRoutes(on: &router, state: state)
        self.router = router
    }

    /// Marks the store open (or not); `/readyz` answers 503 until it is.
    public func setStoreReady(_ ready: Bool) {
        state.storeReady.store(ready, ordering: .releasing)
    }

    /// Gives the service its document store (opened at start-up: the SQLite file or the
    /// PostgreSQL pool) and marks the store ready; the store routes (calibrators, scaling
    /// laws) answer 503 until then. Afterwards `/readyz` also follows the store's own `isAvailable` (a PostgreSQL
    /// store that lost its database is not ready).
    public func attachStore(_ store: any DocumentStore) {
        state.store.attach(store)
        setStoreReady(true)
    }

    /// Where `/metrics` reads the server's open connections and queue depth (set at start-up).
    public func setServerGauges(_ source: @escaping @Sendable () -> ServerGauges) {
        state.metrics.setGaugeSource(source)
    }

    // MARK: HTTPResponder

    public func answersInline(_ head: HTTPRequestHead) -> Bool {
        if case .found(let route, _) = router.match(method: head.method, path: head.path) { return route.inline }
        return true  // 404 and 405 are cheap too
    }

    /// Everything that can be refused from the head alone, before the body is read:
    /// the API key, the route and method, the media type and the content coding.
    public func screen(_ head: HTTPRequestHead) -> HTTPResponse? {
        if let denied = Auth.check(path: head.path, headers: head.headers, key: configuration.apiKey) { return denied }
        switch router.match(method: head.method, path: head.path) {
        case .notFound, .methodNotAllowed:
            return routingError(method: head.method, path: head.path)
        case .found:
            do throws(ServiceError) {
                try RequestBody.checkContentType(head.headers)
                try RequestBody.checkContentEncoding(head.headers)
            } catch {
                return error.response
            }
            return nil
        }
    }

    /// Light work may run on the reserved light lane: a loss, metrics, ensemble or apply
    /// over a body of at most 1 MiB, or a store read. Fits, aggregation, embedding metrics (O(N²·D) from
    /// a small body) and large bodies are heavy.
    public func workClass(_ head: HTTPRequestHead) -> WorkClass {
        guard case .found(let route, _) = router.match(method: head.method, path: head.path) else { return .light }
        guard !Self.heavyRoutes.contains(route.pattern) else { return .heavy }
        switch head.framing {
        case .none: return .light
        case .contentLength(let length): return length <= Self.lightBodyBytes ? .light : .heavy
        case .chunked: return .heavy
        }
    }

    static let heavyRoutes: Set<String> = [
        "/v1/calibrators/fit", "/v1/calibrators/select", "/v1/aggregate", "/v1/scaling/fit", "/v1/embedding-metrics",
    ]
    static let lightBodyBytes = 1 << 20

    public func respond(to request: HTTPRequest, context: RequestContext) -> HTTPResponse {
        // Kernels called by the handler poll the request's cancellation flag and stop early
        // when the client has gone or the request timed out; their output is then dropped.
        let cancellation = context.cancellation
        let response = Cancellation.withCheck({ cancellation.isCancelled }) {
            routedResponse(to: request, context: context)
        }
        if cancellation.isCancelled {
            var error = ServiceError(status: .serviceUnavailable, code: "overloaded", detail: "the request was cancelled")
            error.headers = [("Retry-After", "1")]
            return error.response
        }
        return Gzip.compressed(response, for: request, policy: configuration.compression)
    }

    private func routingError(method: String, path: String) -> HTTPResponse {
        switch router.match(method: method, path: path) {
        case .methodNotAllowed(let allow):
            var error = ServiceError(
                status: .methodNotAllowed, code: "method_not_allowed",
                detail: "\(method) is not allowed on \(path); use \(allow.joined(separator: ", "))")
            error.headers = [("Allow", allow.joined(separator: ", "))]
            return error.response
        default:
            return ServiceError.notFound("no resource at \(path)").response
        }
    }

    private func routedResponse(to request: HTTPRequest, context: RequestContext) -> HTTPResponse {
        if let denied = Auth.check(path: request.path, headers: request.headers, key: configuration.apiKey) { return denied }
        switch router.match(method: request.method, path: request.path) {
        case .notFound, .methodNotAllowed:
            return routingError(method: request.method, path: request.path)
        case let .found(route, parameters):
            do {
                // Content-Encoding is undone once, here, within the configured body limit and
                // the memory budget; handlers see plain bodies.
                let plain = try RequestBody.contentDecoded(
                    request, maxInflatedBytes: configuration.maxBodyBytes, charge: context.memory)
                return try route.handler(RouteRequest(request: plain, context: context, parameters: parameters))
            } catch {
                return error.response
            }
        }
    }

    public func errorResponse(status: HTTPStatus, detail: String) -> HTTPResponse {
        ServiceError(status: status, code: ServiceError.code(forTransportStatus: status), detail: detail).response
    }

    public func requestCompleted(_ record: RequestRecord) {
        state.metrics.record(
            route: record.route, method: record.method, status: record.status.code, bytesIn: record.bytesIn,
            bytesOut: record.bytesOut, seconds: record.duration)
    }

    /// The route pattern (`/v1/calibrators/{name}`), `unmatched` for 404/405, `none` when
    /// no request line was read.
    public func routeLabel(method: String?, path: String?) -> String {
        guard let method, let path else { return "none" }
        if case .found(let matched, _) = router.match(method: method, path: path) { return matched.pattern }
        return "unmatched"
    }

    // MARK: Routes

    private static func registerRoutes(on router: inout Router, state: ServiceState) {
        router.add("GET", "/healthz", inline: true) { _ throws(ServiceError) in
            json(["status": "ok"])
        }
        router.add("GET", "/readyz", inline: true) { _ throws(ServiceError) in
            // Flags only: this runs on the I/O thread and must never wait on a database.
            let opened = state.storeReady.load(ordering: .acquiring)
            let full = opened && state.store.attachedStoreIsFull
            let store = opened && !state.store.attachedStoreIsUnavailable && !full
            let accepting = state.acceptingWork()
            // Saturated: every general worker busy with requests waiting; a load balancer
            // should send new work elsewhere until it drains.
            let saturated = state.metrics.currentGauges?.saturated ?? false
            let body: JSONValue = [
                "status": .string(store && accepting && !saturated ? "ready" : "not_ready"),
                "store": .string(store ? "open" : full ? "full" : opened ? "unreachable" : "closed"),
                "accepting": .bool(accepting),
                "saturated": .bool(saturated),
            ]
            guard store && accepting && !saturated else {
                var response = json(body, status: .serviceUnavailable)
                response.headers.add(name: "Retry-After", value: "1")
                return response
            }
            return json(body)
        }
        router.add("GET", "/v1/version", inline: true) { _ throws(ServiceError) in
            json([
                "name": "lossd",
                "version": .string(version),
                "blas": .string(BLAS.libraryDescription),
                "simd": .string(KernelLevel.summary),
                "kernels": .string(KernelLevel.current.name),
            ])
        }
        router.add("GET", "/v1/losses", inline: true) { _ throws(ServiceError) in
            LossEndpoint.listLosses()
        }
        router.add("POST", "/v1/loss") { route throws(ServiceError) in
            try LossEndpoint.evaluate(route, metrics: state.metrics)
        }
        router.add("POST", "/v1/metrics") { route throws(ServiceError) in try MetricsEndpoint.metrics(route) }
        router.add("POST", "/v1/reliability") { route throws(ServiceError) in try MetricsEndpoint.reliability(route) }
        EmbeddingMetricsEndpoint.register(on: &router)
        CalibratorEndpoints.register(on: &router, slot: state.store)
        router.add("POST", "/v1/aggregate") { route throws(ServiceError) in try AggregateEndpoint.respond(route) }
        router.add("POST", "/v1/ensemble") { route throws(ServiceError) in try EnsembleEndpoint.respond(route) }
        ScalingEndpoints.register(on: &router, slot: state.store)
        router.add("GET", "/metrics", inline: true) { _ throws(ServiceError) in
            HTTPResponse(
                status: .ok, contentType: "text/plain; version=0.0.4; charset=utf-8",
                body: state.metrics.render(storeEntries: state.store.sampledCounts(), collections: LossdService.storedCollections))
        }
        router.add("GET", "/openapi.yaml", inline: true) { _ throws(ServiceError) in
            HTTPResponse(status: .ok, headers: ["Content-Type": "application/yaml"], body: OpenAPIDocument.bytes)
        }
    }

    /// The store's collections, each with a `lossd_store_entries` sample (0 when empty).
    static let storedCollections = [CalibratorResource.collection, ScalingLawResource.collection]

    /// A JSON answer, with its tensors in the form `output` asks for (multipart with `.npy`
    /// parts when the client's Accept prefers it).
    static func json(_ value: JSONValue, status: HTTPStatus = .ok, output: OutputEncoding = .json) -> HTTPResponse {
        var response =
            output.tensors == .parts
            ? MultipartAnswer.response(value, status: status, dtype: output.dtype)
            : HTTPResponse(status: status, headers: ["Content-Type": "application/json"], body: value.encoded(output).bytes)
        if output.negotiated { response.headers.add(name: "Vary", value: "Accept") }
        return response
    }
}

/// State shared by the service and its route handlers.
final class ServiceState: Sendable {
    let storeReady = Atomic<Bool>(false)
    let store = StoreSlot()
    let metrics = ServiceMetrics(version: LossdService.version, blas: BLAS.libraryDescription, simd: KernelLevel.summary)
    let acceptingWork: @Sendable () -> Bool

    init(acceptingWork: @escaping @Sendable () -> Bool) {
        self.acceptingWork = acceptingWork
    }
}
