import LossdHTTP
import LossdKernels

/// 401 (or 400 for two credentials) on a `/v1` route without the configured API key.
struct Authentication: Middleware {
    let apiKey: String?

    func screen(_ head: HTTPRequestHead, match: Router.Match) -> HTTPResponse? {
        Auth.check(path: head.path, headers: head.headers, key: apiKey)
    }
}

/// 404 for a path no route serves; 405 with `Allow` for a method the path does not take.
struct RoutingErrors: Middleware {
    func screen(_ head: HTTPRequestHead, match: Router.Match) -> HTTPResponse? {
        switch match {
        case .found:
            return nil
        case .methodNotAllowed(let allow):
            var error = ServiceError(
                status: .methodNotAllowed, code: "method_not_allowed",
                detail: "\(head.method) is not allowed on \(head.path); use \(allow.joined(separator: ", "))")
            error.headers = [("Allow", allow.joined(separator: ", "))]
            return error.response
        case .notFound:
            return ServiceError.notFound("no resource at \(head.path)").response
        }
    }
}

/// The one owner of request content coding: from the head, 415 for a media type or a
/// Content-Encoding the API does not take; on the worker, a gzip body inflated within
/// `maxInflatedBytes` (the server's body limit; 413 beyond) and charged to the request's
/// memory as it grows, so that every handler reads a plain body.
struct ContentDecoding: Middleware {
    let maxInflatedBytes: Int

    func screen(_ head: HTTPRequestHead, match: Router.Match) -> HTTPResponse? {
        guard head.hasBody else { return nil }
        do throws(ServiceError) {
            try RequestBody.checkContentType(head.headers)
            try ContentCoding.check(head.headers)
        } catch {
            return error.response
        }
        return nil
    }

    func respond(_ request: RouteRequest, next: NextStep) throws(ServiceError) -> HTTPResponse {
        guard request.request.headers["content-encoding"] != nil else { return try next(request) }
        let plain = try ContentCoding.decoded(request.request, maxInflatedBytes: maxInflatedBytes, charge: request.context.memory)
        return try next(RouteRequest(request: plain, context: request.context, parameters: request.parameters))
    }
}

/// Lets kernels poll the request's cancellation flag (set when the client has gone or the
/// request timed out) and answers 503 for a cancelled request, its output dropped.
/// Placed before `Compression` and `ContentDecoding`, so that it wraps them: nothing is
/// compressed for a client that has gone.
struct Cancelling: Middleware {
    func respond(_ request: RouteRequest, next: NextStep) throws(ServiceError) -> HTTPResponse {
        let cancellation = request.context.cancellation
        let outcome = Cancellation.withCheck({ cancellation.isCancelled }) { () -> Result<HTTPResponse, ServiceError> in
            do throws(ServiceError) {
                return .success(try next(request))
            } catch {
                return .failure(error)
            }
        }
        if cancellation.isCancelled {
            var error = ServiceError(status: .serviceUnavailable, code: "overloaded", detail: "the request was cancelled")
            error.headers = [("Retry-After", "1")]
            throw error
        }
        return try outcome.get()
    }
}

/// Gzips a 2xx or 4xx text answer, errors included, when the client's `Accept-Encoding`
/// takes gzip and the `CompressionPolicy` allows.
struct Compression: Middleware {
    let policy: CompressionPolicy

    func respond(_ request: RouteRequest, next: NextStep) throws(ServiceError) -> HTTPResponse {
        let response: HTTPResponse
        do throws(ServiceError) {
            response = try next(request)
        } catch {
            response = error.response
        }
        return Gzip.compressed(response, for: request.request, policy: policy)
    }
}

/// Counts every response sent (requests, durations, bytes by route pattern) for `/metrics`.
struct RequestMetrics: Middleware {
    let metrics: ServiceMetrics

    func completed(_ record: RequestRecord) {
        metrics.record(
            route: record.route, method: record.method, status: record.status.code, bytesIn: record.bytesIn,
            bytesOut: record.bytesOut, seconds: record.duration)
    }
}
