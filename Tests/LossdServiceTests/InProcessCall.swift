import Foundation
import LossdHTTP

@testable import LossdService

/// Calls a service in process, as the HTTP server would after parsing a request: the
/// shared helper of the service tests that need no socket.
enum InProcessCall {
    static let context = RequestContext(requestID: "t-1", remoteAddress: "127.0.0.1")

    /// POSTs `body` as JSON to `path` (with any extra headers) and returns the response.
    static func post(
        _ path: String, _ body: [String: Any], headers: [(String, String)] = [],
        service: LossdService = LossdService(configuration: ServiceConfiguration())
    ) throws -> HTTPResponse {
        var fields: HTTPHeaders = ["Host": "x", "Content-Type": "application/json"]
        for (name, value) in headers { fields.add(name: name, value: value) }
        let head = HTTPRequestHead(method: "POST", target: path, version: .http1_1, headers: fields)
        return service.respond(to: HTTPRequest(head: head, body: Array(try JSONSerialization.data(withJSONObject: body))), context: context)
    }

    /// The status and JSON object of a POST.
    static func postJSON(_ path: String, _ body: [String: Any]) throws -> (status: Int, json: [String: Any]) {
        let response = try post(path, body)
        return (response.status.code, try JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any] ?? [:])
    }
}
