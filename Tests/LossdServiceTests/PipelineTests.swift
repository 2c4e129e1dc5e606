import Foundation
import LossdHTTP
import Testing

@testable import LossdService

/// The request pipeline: one plan per request (the route matched once, carried in the
/// context), the middleware's order, and where routes run.
@Suite("Request pipeline")
struct PipelineTests {
    static func head(
        _ method: String, _ path: String, _ headers: HTTPHeaders = ["Host": "x"], body: Int? = nil
    ) -> HTTPRequestHead {
        HTTPRequestHead(
            method: method, target: path, version: .http1_1, headers: headers,
            framing: body.map { .contentLength($0) } ?? .none)
    }

    /// The handler runs the route of the plan in the context, without matching the path again.
    @Test func theHandlerRunsThePlannedRouteWithoutMatchingAgain() throws {
        let service = LossdService(configuration: ServiceConfiguration())
        let healthPlan = service.plan(Self.head("GET", "/healthz"))
        #expect(healthPlan.label == "/healthz")
        let request = HTTPRequest(head: Self.head("GET", "/v1/version"))
        let context = RequestContext(requestID: "t", remoteAddress: "t", plan: healthPlan)
        let answer = try JSONSerialization.jsonObject(with: Data(service.respond(to: request, context: context).body)) as? [String: Any]
        #expect(answer?["status"] as? String == "ok")
    }

    /// Authentication, then routing errors, then content checks: the first refusal wins.
    @Test(arguments: [
        // no key, unknown /v1 path: 401 before 404
        ("POST", "/v1/nothing", nil as String?, "text/plain", 401),
        // the key, unknown path, bad media type: 404 before 415
        ("POST", "/v1/nothing", "Bearer k", "text/plain", 404),
        // a known path with the wrong method: 405 before 415
        ("GET", "/v1/loss", "Bearer k", "text/plain", 405),
        ("POST", "/v1/loss", "Bearer k", "text/plain", 415),
        ("POST", "/v1/loss", "Bearer k", "application/json", 0),
    ])
    func middlewareScreensInOrder(method: String, path: String, authorization: String?, type: String, status: Int) {
        var configuration = ServiceConfiguration()
        configuration.apiKey = "k"
        let service = LossdService(configuration: configuration)
        var headers: HTTPHeaders = ["Host": "x", "Content-Type": type]
        if let authorization { headers.add(name: "Authorization", value: authorization) }
        let plan = service.plan(Self.head(method, path, headers, body: 2))
        #expect(plan.refusal?.status.code ?? 0 == status)
    }

    /// Inline routes run on the I/O thread; declared-heavy routes and large or chunked
    /// bodies use the general workers only; the rest is light.
    @Test func routesDeclareWhereTheyRun() {
        let service = LossdService(configuration: ServiceConfiguration())
        let json: HTTPHeaders = ["Host": "x", "Content-Type": "application/json"]
        #expect(service.plan(Self.head("GET", "/healthz")).inline)
        #expect(service.plan(Self.head("GET", "/v1/losses")).inline)
        #expect(!service.plan(Self.head("POST", "/v1/loss", json, body: 100)).inline)
        #expect(service.plan(Self.head("POST", "/v1/loss", json, body: 100)).workClass == .light)
        #expect(service.plan(Self.head("POST", "/v1/loss", json, body: 2 << 20)).workClass == .heavy)
        for heavy in ["/v1/calibrators/fit", "/v1/calibrators/select", "/v1/aggregate", "/v1/scaling/fit", "/v1/embedding-metrics"] {
            #expect(service.plan(Self.head("POST", heavy, json, body: 100)).workClass == .heavy, "\(heavy)")
        }
        #expect(service.plan(Self.head("GET", "/v1/calibrators/some-model")).workClass == .light)
        let unmatched = service.plan(Self.head("GET", "/nowhere"))
        #expect(unmatched.label == "unmatched" && unmatched.refusal?.status.code == 404)
    }

    /// A cancelled request is a 503, never compressed, whatever the handler produced.
    @Test func aCancelledRequestIs503Uncompressed() {
        let service = LossdService(configuration: ServiceConfiguration())
        let cancellation = CancellationFlag()
        cancellation.cancel()
        let request = HTTPRequest(head: Self.head("GET", "/v1/losses", ["Host": "x", "Accept-Encoding": "gzip"]))
        let response = service.respond(
            to: request, context: RequestContext(requestID: "t", remoteAddress: "t", cancellation: cancellation))
        #expect(response.status.code == 503)
        #expect(response.headers["Content-Encoding"] == nil)
        #expect(response.headers["Retry-After"] == "1")
    }

    /// Compression wraps the handler's errors too: a 4xx problem+json goes out gzipped.
    @Test func errorsAreCompressedLikeAnswers() {
        var configuration = ServiceConfiguration()
        configuration.compression.minBytes = 0
        let service = LossdService(configuration: configuration)
        let body = Array(#"{"loss":"cross_entropy","logits":[[1,2]],"labels":[0],"extra":1}"#.utf8)
        let headers: HTTPHeaders = ["Host": "x", "Content-Type": "application/json", "Accept-Encoding": "gzip"]
        let response = service.respond(
            to: HTTPRequest(head: Self.head("POST", "/v1/loss", headers, body: body.count), body: body),
            context: RequestContext(requestID: "t", remoteAddress: "t"))
        #expect(response.status.code == 422)
        #expect(response.headers["Content-Encoding"] == "gzip")
    }

    /// A refusal goes out like any answer: a 404 long enough for the compression policy is
    /// gzipped for a client that takes gzip.
    @Test func aLargeRefusalIsCompressed() {
        let service = LossdService(configuration: ServiceConfiguration())
        let path = "/v1/" + String(repeating: "x", count: 1500)
        let plan = service.plan(Self.head("GET", path, ["Host": "x", "Accept-Encoding": "gzip"]))
        #expect(plan.refusal?.status.code == 404)
        #expect(plan.refusal?.headers["Content-Encoding"] == "gzip")
    }
}
