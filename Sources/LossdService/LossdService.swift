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

/// The lossd application: plans each request from its head once (the route and the
/// middleware's refusals), runs it through the middleware chain to its route's handler,
/// and renders every error as problem+json. It knows the API; the server below it knows
/// only HTTP.
public final class LossdService: HTTPResponder {
    public static let version = "0.1.0"

    public let configuration: ServiceConfiguration
    private let router: Router
    private let state: ServiceState
    /// The pipeline, in order: `screen` runs first to last on the head, `respond` nests the
    /// first outermost, `completed` runs first to last.
    private let middleware: [any Middleware]

    /// - Parameter acceptingWork: whether the server still takes requests (false while draining).
    public init(configuration: ServiceConfiguration, acceptingWork: @escaping @Sendable () -> Bool = { true }) {
        self.configuration = configuration
        let state = ServiceState(acceptingWork: acceptingWork)
        self.state = state
        var router = Router()
        LossdService.registerRoutes(on: &router, state: state)
        self.router = router
        // Cancelling wraps everything after it (nothing is compressed for a client that has
        // gone); Compression wraps content decoding, so its errors are compressed too.
        middleware = [
            Authentication(apiKey: configuration.apiKey),
            RoutingErrors(),
            Cancelling(),
            Compression(policy: configuration.compression),
            ContentDecoding(maxInflatedBytes: configuration.maxBodyBytes),
            RequestMetrics(metrics: state.metrics),
        ]
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

    // MARK: HTTPResponder

    /// Matches the route once and asks each middleware to screen the head (API key,
    /// route and method, media type and content coding), before the body is read.
    /// Inline routes (and 404/405) run on the I/O thread; routes declared heavy, and any
    /// request with a body over 1 MiB or chunked, use the general workers only.
    public func plan(_ head: HTTPRequestHead) -> RequestPlan {
        let match = router.match(method: head.method, path: head.path)
        var refusal: HTTPResponse?
        for step in middleware {
            refusal = step.screen(head, match: match)
            if refusal != nil { break }
        }
        // A refusal goes out as any answer would: gzipped when the client takes it and the
        // policy allows (a 404 naming a long path can pass the policy's minimum size).
        refusal = refusal.map { Gzip.compressed($0, for: HTTPRequest(head: head), policy: configuration.compression) }
        guard case let .found(route, parameters) = match else {
            return RequestPlan(label: "unmatched", inline: true, workClass: .light, refusal: refusal)
        }
        return RequestPlan(
            label: route.pattern, inline: route.inline, quick: route.cost.isQuick(head),
            workClass: route.cost.workClass(head),
            route: MatchedRoute(route: route, parameters: parameters), refusal: refusal)
    }

    public func respond(to request: HTTPRequest, context: RequestContext) -> HTTPResponse {
        let plan = context.plan ?? plan(request.head)
        if let refusal = plan.refusal { return refusal }
        guard let matched = plan.route as? MatchedRoute else {
            return ServiceError.notFound("no resource at \(request.path)").response
        }
        do {
            return try middleware.run(
                RouteRequest(request: request, context: context, parameters: matched.parameters),
                handler: matched.route.handler)
        } catch {
            return error.response
        }
    }

    public func errorResponse(status: HTTPStatus, detail: String) -> HTTPResponse {
        ServiceError(status: status, code: ServiceError.code(forTransportStatus: status), detail: detail).response
    }

    public func requestCompleted(_ record: RequestRecord) {
        for step in middleware { step.completed(record) }
    }

    /// The route pattern of a request whose head never completed, `unmatched` for 404/405,
    /// `none` when no request line was read.
    public func routeLabel(method: String?, path: String?) -> String {
        guard let method, let path else { return "none" }
        if case .found(let matched, _) = router.match(method: method, path: path) { return matched.pattern }
        return "unmatched"
    }

    // MARK: Routes

    /// Every endpoint family registers its own routes, with their cost.
    private static func registerRoutes(on router: inout Router, state: ServiceState) {
        OperationsEndpoints.register(on: &router, state: state)
        LossEndpoint.register(on: &router, metrics: state.metrics)
        MetricsEndpoint.register(on: &router)
        EmbeddingMetricsEndpoint.register(on: &router)
        CalibratorEndpoints.register(on: &router, slot: state.store)
        AggregateEndpoint.register(on: &router)
        EnsembleEndpoint.register(on: &router)
        ScalingEndpoints.register(on: &router, slot: state.store)
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
