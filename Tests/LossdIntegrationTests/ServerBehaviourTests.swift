import Foundation
import LossdTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// The real binary over real sockets: routes, connection handling and error bodies.
@Suite("lossd routes and connections")
struct ServerBehaviourTests {
    @Test func healthzAnswersOkJSON() throws {
        let lossd = try LossdProcess()
        let client = try lossd.connect()
        let response = try client.exchange(get("/healthz"))
        #expect(response.status == 200)
        #expect(response.header("content-type") == "application/json")
        #expect(response.json?["status"] as? String == "ok")
        #expect(response.header("date") != nil)
        #expect(response.header("x-request-id") != nil)
    }

    @Test func readyzIsReadyOnceTheStoreIsOpen() throws {
        let lossd = try LossdProcess()
        let response = try lossd.connect().exchange(get("/readyz"))
        #expect(response.status == 200)
        #expect(response.json?["status"] as? String == "ready")
    }

    @Test func versionNamesTheServiceAndItsBLAS() throws {
        let lossd = try LossdProcess()
        let json = try lossd.connect().exchange(get("/v1/version")).json
        #expect(json?["name"] as? String == "lossd")
        #expect((json?["version"] as? String)?.isEmpty == false)
        #expect((json?["blas"] as? String)?.contains("OpenBLAS") == true)
        #expect(json?["simd"] is String)
    }

    @Test func openAPIDocumentIsTheFileInThePackage() throws {
        let lossd = try LossdProcess()
        let response = try lossd.connect().exchange(get("/openapi.yaml"))
        let file = try Data(contentsOf: LossdProcess.packageRoot.appendingPathComponent("openapi.yaml"))
        #expect(response.status == 200)
        #expect(response.header("content-type") == "application/yaml")
        #expect(response.body == Array(file))
    }

    @Test func headAnswersHeadersWithoutBody() throws {
        let lossd = try LossdProcess()
        let client = try lossd.connect()
        try client.send("HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        let head = try client.readResponse(forHead: true)
        #expect(head.status == 200)
        #expect(head.header("content-length") == "15")
        // The connection is still in sync: the next response follows directly.
        #expect(try client.exchange(get("/healthz")).bodyText == #"{"status":"ok"}"#)
    }

    @Test func unknownPathIs404ProblemJSON() throws {
        let lossd = try LossdProcess()
        let response = try lossd.connect().exchange(get("/no/such/thing"))
        #expect(response.status == 404)
        #expect(response.header("content-type") == "application/problem+json")
        #expect(response.json?["type"] as? String == "urn:lossd:error:not_found")
        #expect(response.json?["status"] as? Int == 404)
        #expect(response.json?["title"] is String)
        #expect(response.json?["detail"] is String)
    }

    @Test func wrongMethodIs405WithAllow() throws {
        let lossd = try LossdProcess()
        let response = try lossd.connect().exchange("DELETE /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(response.status == 405)
        #expect(response.header("allow") == "GET, HEAD")
        #expect(response.header("content-type") == "application/problem+json")
        #expect(response.json?["type"] as? String == "urn:lossd:error:method_not_allowed")
    }

    @Test func keepAliveServesSeveralRequestsOnOneConnection() throws {
        let lossd = try LossdProcess()
        let client = try lossd.connect()
        for _ in 0..<5 {
            let response = try client.exchange(get("/healthz"))
            #expect(response.status == 200)
            #expect(response.header("connection") == nil)
        }
        #expect(!client.isClosedByPeer(within: 0.3))
    }

    @Test func pipelinedRequestsInOneWriteAreAnsweredInOrder() throws {
        let lossd = try LossdProcess()
        let client = try lossd.connect()
        try client.send(get("/healthz") + get("/v1/version") + get("/missing") + get("/readyz", "X-Request-Id: last-one\r\n"))
        let statuses = try (0..<4).map { _ in try client.readResponse() }
        #expect(statuses.map(\.status) == [200, 200, 404, 200])
        #expect(statuses[1].json?["name"] as? String == "lossd")
        #expect(statuses[3].header("x-request-id") == "last-one")
    }

    @Test func chunkedBodyIsReadAndTheConnectionStaysInSync() throws {
        let lossd = try LossdProcess()
        let client = try lossd.connect()
        let chunked = "POST /v1/loss HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            + "5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Trailer: yes\r\n\r\n"
        try client.send(chunked + get("/healthz"))
        #expect(try client.readResponse().status == 400)
        #expect(try client.readResponse().status == 200)
    }

    @Test func expectContinueIsAnsweredBeforeTheBodyIsSent() throws {
        let lossd = try LossdProcess()
        let client = try lossd.connect()
        let body = String(repeating: "x", count: 2048)
        try client.send("POST /v1/loss HTTP/1.1\r\nHost: x\r\nContent-Length: 2048\r\nExpect: 100-continue\r\n\r\n")
        let interim = try client.readResponse()
        #expect(interim.status == 100)
        try client.send(body)
        #expect(try client.readResponse().status == 400)
        #expect(try client.exchange(get("/healthz")).status == 200)
    }

    @Test func expectContinueOverTheLimitGets413WithoutReadingTheBody() throws {
        let lossd = try LossdProcess(["--max-body-bytes", "1000"])
        let client = try lossd.connect()
        try client.send("POST /v1/loss HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\nExpect: 100-continue\r\n\r\n")
        let response = try client.readResponse()
        #expect(response.status == 413)
        #expect(response.header("connection") == "close")
        #expect(response.json?["type"] as? String == "urn:lossd:error:content_too_large")
        #expect(client.isClosedByPeer())
    }

    @Test func unsupportedExpectationIs417() throws {
        let lossd = try LossdProcess()
        let response = try lossd.connect().exchange(
            "POST /v1/loss HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nExpect: teapot\r\n\r\nx")
        #expect(response.status == 417)
    }

    @Test func http10WithoutKeepAliveIsClosedAfterTheResponse() throws {
        let lossd = try LossdProcess()
        let client = try lossd.connect()
        let response = try client.exchange("GET /healthz HTTP/1.0\r\n\r\n")
        #expect(response.status == 200)
        #expect(response.header("connection") == "close")
        #expect(client.isClosedByPeer())
    }

    @Test func http10WithKeepAliveStaysOpen() throws {
        let lossd = try LossdProcess()
        let client = try lossd.connect()
        let first = try client.exchange("GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        #expect(first.header("connection")?.lowercased() == "keep-alive")
        let second = try client.exchange("GET /v1/version HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        #expect(second.status == 200)
    }

    @Test func connectionCloseIsHonoured() throws {
        let lossd = try LossdProcess()
        let client = try lossd.connect()
        let response = try client.exchange(get("/healthz", "Connection: close\r\n"))
        #expect(response.status == 200)
        #expect(response.header("connection") == "close")
        #expect(client.isClosedByPeer())
    }

    @Test func requestIDIsEchoedOrGenerated() throws {
        let lossd = try LossdProcess()
        let client = try lossd.connect()
        #expect(try client.exchange(get("/healthz", "X-Request-Id: abc-123\r\n")).header("x-request-id") == "abc-123")
        let generated = try client.exchange(get("/healthz")).header("x-request-id")
        #expect(generated != nil && generated != "abc-123")
    }
}
