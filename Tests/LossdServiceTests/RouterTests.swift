import LossdHTTP
import Testing

@testable import LossdService

@Suite("Router")
struct RouterTests {
    func router() -> Router {
        var router = Router()
        router.add("GET", "/healthz") { _ throws(ServiceError) in HTTPResponse(status: .ok) }
        router.add("GET", "/v1/calibrators/{name}") { request throws(ServiceError) in
            HTTPResponse(status: .ok, contentType: "text/plain", body: request.parameters["name"] ?? "")
        }
        router.add("PUT", "/v1/calibrators/{name}") { _ throws(ServiceError) in HTTPResponse(status: .created) }
        return router
    }

    @Test func matchesLiteralPaths() {
        guard case .found(let route, _) = router().match(method: "GET", path: "/healthz") else {
            Issue.record("no match")
            return
        }
        #expect(route.pattern == "/healthz")
    }

    @Test func bindsAndPercentDecodesPathParameters() {
        guard case .found(_, let parameters) = router().match(method: "GET", path: "/v1/calibrators/my%2Dmodel") else {
            Issue.record("no match")
            return
        }
        #expect(parameters["name"] == "my-model")
    }

    @Test func headIsAnsweredByTheGetRoute() {
        guard case .found(let route, _) = router().match(method: "HEAD", path: "/healthz") else {
            Issue.record("no match")
            return
        }
        #expect(route.method == "GET")
    }

    @Test func knownPathWithOtherMethodListsAllowedMethods() {
        guard case .methodNotAllowed(let allow) = router().match(method: "DELETE", path: "/v1/calibrators/x") else {
            Issue.record("expected 405")
            return
        }
        #expect(allow == ["GET", "HEAD", "PUT"])
    }

    @Test(arguments: ["/", "/healthz/", "/v1/calibrators", "/v1/calibrators/", "/v1/calibrators/a/b", "//healthz"])
    func unknownPathsAreNotFound(_ path: String) {
        guard case .notFound = router().match(method: "GET", path: path) else {
            Issue.record("\(path) matched")
            return
        }
    }
}

@Suite("Service errors and JSON")
struct ServiceErrorTests {
    @Test func problemDetailsCarryTypeTitleStatusDetailAndField() {
        let error = ServiceError(status: .unprocessableContent, code: "invalid_shape", detail: "bad", field: "/labels")
        #expect(
            String(decoding: error.problem.bytes, as: UTF8.self)
                == #"{"type":"urn:lossd:error:invalid_shape","title":"Invalid shape","status":422,"detail":"bad","field":"/labels"}"#)
        #expect(error.response.headers["content-type"] == "application/problem+json")
    }

    @Test func transportErrorsMapToStableCodes() {
        let service = LossdService(configuration: ServiceConfiguration())
        let response = service.errorResponse(status: .requestHeaderFieldsTooLarge, detail: "too big")
        #expect(response.status.code == 431)
        #expect(String(decoding: response.body, as: UTF8.self).contains("urn:lossd:error:headers_too_large"))
    }

    @Test func jsonStringsAreEscaped() {
        let value: JSONValue = .string("a\"b\\c\n\u{1}é")
        #expect(String(decoding: value.bytes, as: UTF8.self) == #""a\"b\\c\n\u0001é""#)
    }

    @Test func jsonNumbersAreShortestRoundTrip() {
        let value: JSONValue = [.double(0.1), .double(2.0), .double(-0.0), .double(1e300), .double(.nan), .int(-3)]
        #expect(String(decoding: value.bytes, as: UTF8.self) == "[0.1,2,-0,1e+300,null,-3]")
    }

    @Test func readinessFollowsTheStoreAndTheServer() {
        let service = LossdService(configuration: ServiceConfiguration(), acceptingWork: { true })
        let request = HTTPRequest(head: HTTPRequestHead(method: "GET", target: "/readyz", version: .http1_1, headers: [:]))
        let context = RequestContext(requestID: "t", remoteAddress: "test")
        #expect(service.respond(to: request, context: context).status.code == 503)
        service.setStoreReady(true)
        #expect(service.respond(to: request, context: context).status.code == 200)
        let draining = LossdService(configuration: ServiceConfiguration(), acceptingWork: { false })
        draining.setStoreReady(true)
        #expect(draining.respond(to: request, context: context).status.code == 503)
    }
}

@Suite("Router precedence")
struct RouterPrecedenceTests {
    /// A literal segment beats a parameter: `/v1/calibrators/fit` is the fit route only.
    @Test func theMostSpecificRouteWins() {
        var router = Router()
        router.add("POST", "/v1/calibrators/fit") { _ throws(ServiceError) in HTTPResponse(status: .ok) }
        router.add("GET", "/v1/calibrators/{name}") { _ throws(ServiceError) in HTTPResponse(status: .ok) }
        router.add("PUT", "/v1/calibrators/{name}") { _ throws(ServiceError) in HTTPResponse(status: .ok) }
        guard case .found(let fit, _) = router.match(method: "POST", path: "/v1/calibrators/fit") else {
            Issue.record("no fit route")
            return
        }
        #expect(fit.pattern == "/v1/calibrators/fit")
        guard case .methodNotAllowed(let allow) = router.match(method: "GET", path: "/v1/calibrators/fit") else {
            Issue.record("GET /v1/calibrators/fit should be 405")
            return
        }
        #expect(allow == ["POST"])
        guard case .found(let named, let parameters) = router.match(method: "GET", path: "/v1/calibrators/model-1") else {
            Issue.record("no named route")
            return
        }
        #expect(named.pattern == "/v1/calibrators/{name}" && parameters["name"] == "model-1")
    }

    @Test func reservedCalibratorNamesAreRefused() {
        for name in [".", "..", "fit"] { #expect(!CalibratorResource.isValidName(name), "\(name)") }
        for name in ["fit2", "fitted", ".hidden", "a..b"] { #expect(CalibratorResource.isValidName(name), "\(name)") }
    }
}
