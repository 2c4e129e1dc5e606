/// What a responder decides about a request from its head alone, once, before the body
/// is read: whether to refuse it, where it runs and how it is labelled. The server keeps
/// the plan with the request and hands it back in ``RequestContext/plan``, so the responder
/// never matches the same request twice.
public struct RequestPlan: Sendable {
    /// An answer given without reading the body (401, 404, 405, 415, ...); for a request
    /// with a body the connection then closes without buffering it.
    public var refusal: HTTPResponse?
    /// Cheap and non-blocking: answered on the I/O thread, even while every worker is busy.
    public var inline: Bool
    /// Pure computation on a small body, cheaper to run than to hand to a worker (two
    /// thread wake-ups): the I/O thread runs it itself. Unlike `inline`, not served on a
    /// probe-only connection.
    public var quick: Bool
    /// Which lane of the worker pool it may use.
    public var workClass: WorkClass
    /// A bounded label for the access log and the metrics (a route pattern, never the raw path).
    public var label: String
    /// The responder's own resolution of the request (its matched route), opaque to the server.
    public var route: (any Sendable)?

    public init(
        label: String, inline: Bool = false, quick: Bool = false, workClass: WorkClass = .heavy,
        route: (any Sendable)? = nil, refusal: HTTPResponse? = nil
    ) {
        self.label = label
        self.inline = inline
        self.quick = quick
        self.workClass = workClass
        self.route = route
        self.refusal = refusal
    }
}

/// The server's load as `/metrics` and `/readyz` report it, read when asked.
public struct ServerGauges: Sendable {
    public var openConnections: Int
    public var queueDepth: Int
    /// Bytes requests hold against the memory budget now, and the budget.
    public var inflightBytes: Int
    public var inflightLimit: Int
    /// Every general worker is busy and requests wait (`/readyz` then says not ready).
    public var saturated: Bool

    public init(
        openConnections: Int, queueDepth: Int, inflightBytes: Int = 0, inflightLimit: Int = 0, saturated: Bool = false
    ) {
        self.openConnections = openConnections
        self.queueDepth = queueDepth
        self.inflightBytes = inflightBytes
        self.inflightLimit = inflightLimit
        self.saturated = saturated
    }
}

/// What the server knows about a request beyond its bytes.
public struct RequestContext: Sendable {
    /// The client's `X-Request-Id` when it sent a usable one, else one made by the server.
    public let requestID: String
    public let remoteAddress: String
    /// The bytes this request holds against the server's memory budget; a handler adds
    /// its estimated working set here before it computes.
    public let memory: MemoryCharge
    /// Set when the answer is no longer wanted (client gone, request timeout).
    public let cancellation: CancellationFlag
    /// The responder's plan for this request, made from its head; nil when the request did
    /// not come through a server (a test or a benchmark calling the responder directly).
    public let plan: RequestPlan?
    /// Reads the server's gauges now; zeros outside a server.
    public let gauges: @Sendable () -> ServerGauges

    /// Without a charge, the request is measured against an unlimited budget of its own.
    public init(
        requestID: String, remoteAddress: String, memory: MemoryCharge? = nil,
        cancellation: CancellationFlag = CancellationFlag(), plan: RequestPlan? = nil,
        gauges: @escaping @Sendable () -> ServerGauges = { ServerGauges(openConnections: 0, queueDepth: 0) }
    ) {
        self.requestID = requestID
        self.remoteAddress = remoteAddress
        self.memory = memory ?? MemoryCharge(budget: MemoryBudget(limit: Int.max))
        self.cancellation = cancellation
        self.plan = plan
        self.gauges = gauges
    }
}

/// One finished exchange, as the access log records it: handed to
/// ``HTTPResponder/requestCompleted(_:)`` for every response the server sends, its own
/// errors (400, 408, 413, 431, 503) included. Only the server makes them (its memberwise
/// initialiser is internal); a responder reads them.
public struct RequestRecord: Sendable {
    /// Nil when the request line was never read (a timeout or an oversized header block).
    public var method: String?
    public var path: String?
    /// The label of the request's plan (``RequestPlan/label``), or for a request whose head
    /// was never complete, ``HTTPResponder/routeLabel(method:path:)``.
    public var route: String = "none"
    public var status: HTTPStatus
    public var bytesIn: Int
    public var bytesOut: Int
    /// Seconds from the request's first byte to its response being queued for sending.
    public var duration: Double
    /// The client's address (`host:port`).
    public var peer = ""
    /// The request's ID (``RequestContext/requestID``); empty when no request was read.
    public var requestID = ""
    /// The trace ID of a valid W3C `traceparent` the request carried.
    public var traceID: String?

    /// The access log's message: the method and path, `-` when no request line was read.
    public var line: String { method.map { "\($0) \(path ?? "")" } ?? "-" }

    /// Milliseconds, truncated to the microsecond (the access log's `ms`).
    public var milliseconds: Double { Double(Int(duration * 1_000_000)) / 1000 }
}

/// Writes access-log lines without swift-log's metadata dictionaries: the server formats
/// each finished exchange into its I/O thread's buffer and writes that buffer to standard
/// error once per event-loop turn (complete lines, at most `PIPE_BUF` bytes a write, so
/// lines from several threads never interleave). Without one, every exchange is logged at
/// `info` through the server's `Logger`.
public protocol AccessLogFormat: Sendable {
    /// Appends one line, newline included.
    func append(_ record: RequestRecord, to buffer: inout [UInt8])
}

/// The application side of the server: turns complete requests into responses.
/// The server owns framing, limits and timeouts; a responder never sees raw bytes.
public protocol HTTPResponder: Sendable {
    /// Decides on a request from its head, once (route, refusal, lane, label); runs on the
    /// I/O thread before `100 Continue` and before any of the body is kept: must be quick.
    func plan(_ head: HTTPRequestHead) -> RequestPlan

    /// Produces the response, with the plan in `context.plan`. Runs on a worker thread
    /// unless the plan said inline.
    func respond(to request: HTTPRequest, context: RequestContext) -> HTTPResponse

    /// The response for an error found by the server itself (malformed request, limits,
    /// timeouts, overload), so that every error has the application's format.
    func errorResponse(status: HTTPStatus, detail: String) -> HTTPResponse

    /// Called on the I/O thread once per response sent (for metrics); must be quick.
    func requestCompleted(_ record: RequestRecord)

    /// The label of a request whose head was never complete (a timeout, an oversized
    /// header block) but whose request line may have been read: `none` without one.
    func routeLabel(method: String?, path: String?) -> String
}

extension HTTPResponder {
    public func plan(_ head: HTTPRequestHead) -> RequestPlan { RequestPlan(label: "unmatched") }

    public func errorResponse(status: HTTPStatus, detail: String) -> HTTPResponse {
        HTTPResponse(status: status, contentType: "text/plain; charset=utf-8", body: detail + "\n")
    }

    public func requestCompleted(_ record: RequestRecord) {}

    public func routeLabel(method: String?, path: String?) -> String { method == nil ? "none" : "unmatched" }
}
