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

    /// Without a charge, the request is measured against an unlimited budget of its own.
    public init(
        requestID: String, remoteAddress: String, memory: MemoryCharge? = nil,
        cancellation: CancellationFlag = CancellationFlag()
    ) {
        self.requestID = requestID
        self.remoteAddress = remoteAddress
        self.memory = memory ?? MemoryCharge(budget: MemoryBudget(limit: Int.max))
        self.cancellation = cancellation
    }
}

/// One finished exchange, as the access log records it: handed to
/// ``HTTPResponder/requestCompleted(_:)`` for every response the server sends, its own
/// errors (400, 408, 413, 431, 503) included.
public struct RequestRecord: Sendable {
    /// Nil when the request line was never read (a timeout or an oversized header block).
    public var method: String?
    public var path: String?
    /// The responder's label for the request's route (``HTTPResponder/routeLabel(method:path:)``).
    public var route: String
    public var status: HTTPStatus
    public var bytesIn: Int
    public var bytesOut: Int
    /// Seconds from the request's first byte to its response being queued for sending.
    public var duration: Double

    public init(
        method: String?, path: String?, route: String = "none", status: HTTPStatus, bytesIn: Int, bytesOut: Int,
        duration: Double
    ) {
        self.method = method
        self.path = path
        self.route = route
        self.status = status
        self.bytesIn = bytesIn
        self.bytesOut = bytesOut
        self.duration = duration
    }
}

/// The application side of the server: turns complete requests into responses.
/// The server owns framing, limits and timeouts; a responder never sees raw bytes.
public protocol HTTPResponder: Sendable {
    /// Whether the request is cheap enough to answer on the I/O thread (health checks),
    /// so that it is answered even while every worker is busy.
    func answersInline(_ head: HTTPRequestHead) -> Bool

    /// Looks at a request head before its body is read (and before `100 Continue` is
    /// sent): a response here (401, 404, 405, 415, ...) is answered at once, and the body
    /// is never buffered. Nil lets the request go on. Runs on the I/O thread: must be quick.
    func screen(_ head: HTTPRequestHead) -> HTTPResponse?

    /// How expensive the request will be, from its head: light work may use the reserved
    /// light lane of the worker pool.
    func workClass(_ head: HTTPRequestHead) -> WorkClass

    /// Produces the response. Runs on a worker thread unless ``answersInline(_:)`` said yes.
    func respond(to request: HTTPRequest, context: RequestContext) -> HTTPResponse

    /// The response for an error found by the server itself (malformed request, limits,
    /// timeouts, overload), so that every error has the application's format.
    func errorResponse(status: HTTPStatus, detail: String) -> HTTPResponse

    /// Called on the I/O thread once per response sent (for metrics); must be quick.
    func requestCompleted(_ record: RequestRecord)

    /// A bounded label for the request's route, for the access log and the metrics (a
    /// route pattern, never the raw path): computed once per request. `none` when no
    /// request line was read.
    func routeLabel(method: String?, path: String?) -> String
}

extension HTTPResponder {
    public func answersInline(_ head: HTTPRequestHead) -> Bool { false }

    public func screen(_ head: HTTPRequestHead) -> HTTPResponse? { nil }

    public func workClass(_ head: HTTPRequestHead) -> WorkClass { .heavy }

    public func errorResponse(status: HTTPStatus, detail: String) -> HTTPResponse {
        HTTPResponse(status: status, contentType: "text/plain; charset=utf-8", body: detail + "\n")
    }

    public func requestCompleted(_ record: RequestRecord) {}

    public func routeLabel(method: String?, path: String?) -> String { method == nil ? "none" : "unmatched" }
}
