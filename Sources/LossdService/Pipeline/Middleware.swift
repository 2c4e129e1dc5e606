import LossdHTTP

/// The rest of the chain, as a middleware sees it: the middleware after it, then the
/// route's handler.
typealias NextStep = (RouteRequest) throws(ServiceError) -> HTTPResponse

/// One concern of the request pipeline (authentication, routing errors, content coding,
/// cancellation, compression, metrics). `LossdService` runs an ordered list of them:
/// `screen` in order on the head, before the body is read (the first refusal wins);
/// `respond` nested around the handler, the first middleware outermost; `completed` in
/// order once the response has been sent. Each has a default that does nothing.
protocol Middleware: Sendable {
    /// A refusal from the head alone (401, 404, 405, 415, ...), or nil to let the request
    /// go on. `match` is the request's route, matched once for the whole pipeline. Runs on
    /// the I/O thread: must be quick and never block.
    func screen(_ head: HTTPRequestHead, match: Router.Match) -> HTTPResponse?

    /// Wraps the rest of the chain: may change the request before `next` and the response
    /// after it. Runs on a worker thread (the I/O thread for inline routes).
    func respond(_ request: RouteRequest, next: NextStep) throws(ServiceError) -> HTTPResponse

    /// Sees every response the server sent, its own errors included (I/O thread, quick).
    func completed(_ record: RequestRecord)
}

extension Middleware {
    func screen(_ head: HTTPRequestHead, match: Router.Match) -> HTTPResponse? { nil }

    func respond(_ request: RouteRequest, next: NextStep) throws(ServiceError) -> HTTPResponse {
        try next(request)
    }

    func completed(_ record: RequestRecord) {}
}

/// A matched route and its path parameters: the plan's route token, carried from the head
/// to the handler in `RequestContext.plan`.
struct MatchedRoute: Sendable {
    let route: Router.Route
    let parameters: [String: String]
}

extension Array where Element == any Middleware {
    /// Runs `handler` inside every middleware of the list, the first one outermost.
    func run(_ request: RouteRequest, handler: RouteHandler) throws(ServiceError) -> HTTPResponse {
        try run(from: startIndex, request, handler: handler)
    }

    private func run(from index: Int, _ request: RouteRequest, handler: RouteHandler) throws(ServiceError) -> HTTPResponse {
        guard index < endIndex else { return try handler(request) }
        return try self[index].respond(request) { (next: RouteRequest) throws(ServiceError) -> HTTPResponse in
            try run(from: index + 1, next, handler: handler)
        }
    }
}
