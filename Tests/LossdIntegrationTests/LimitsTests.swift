import Foundation
import LossdTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Every limit and deadline of the server, through the real binary.
@Suite("lossd limits, deadlines and framing errors")
struct LimitsTests {
    /// Reads the one response a broken request gets and checks the connection is closed.
    func expectRejected(_ request: String, status: Int, code: String, on lossd: LossdProcess) throws {
        let client = try lossd.connect()
        let response = try client.exchange(request)
        #expect(response.status == status, "\(request.debugDescription)")
        #expect(response.header("connection") == "close")
        #expect(response.header("content-type") == "application/problem+json")
        #expect(response.json?["type"] as? String == "urn:lossd:error:\(code)")
        #expect(response.json?["status"] as? Int == status)
        #expect(client.isClosedByPeer(), "connection left open after \(status)")
    }

    @Test func headerBlockOver16KiBIs431() throws {
        let lossd = try LossdProcess()
        let big = "X-Big: " + String(repeating: "a", count: 17 * 1024) + "\r\n"
        try expectRejected(get("/healthz", big), status: 431, code: "headers_too_large", on: lossd)
    }

    @Test func headerBlockJustUnder16KiBIsAccepted() throws {
        let lossd = try LossdProcess()
        let filler = "X-Fill: " + String(repeating: "a", count: 15 * 1024) + "\r\n"
        #expect(try lossd.connect().exchange(get("/healthz", filler)).status == 200)
    }

    @Test func bodyOverTheLimitIs413FromContentLengthAlone() throws {
        let lossd = try LossdProcess(["--max-body-bytes", "1000"])
        // No body bytes are sent: the decision is made from Content-Length.
        try expectRejected(
            "POST /v1/loss HTTP/1.1\r\nHost: x\r\nContent-Length: 1001\r\n\r\n", status: 413,
            code: "content_too_large", on: lossd)
    }

    @Test func chunkedBodyIs413AsSoonAsItPassesTheLimit() throws {
        let lossd = try LossdProcess(["--max-body-bytes", "1000"])
        let client = try lossd.connect()
        try client.send("POST /v1/loss HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        try client.send("200\r\n" + String(repeating: "a", count: 512) + "\r\n")
        // The second chunk's size line takes the total past 1000: answered before its data.
        try client.send("300\r\n")
        let response = try client.readResponse()
        #expect(response.status == 413)
        #expect(client.isClosedByPeer())
    }

    @Test func maxBodyBytesComesFromTheEnvironmentToo() throws {
        let lossd = try LossdProcess([], environment: ["LOSSD_MAX_BODY_BYTES": "10"])
        let response = try lossd.connect().exchange("POST /v1/loss HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\n")
        #expect(response.status == 413)
    }

    @Test func slowHeadersGet408AndAClose() throws {
        let lossd = try LossdProcess(["--header-timeout", "0.5"])
        let client = try lossd.connect()
        try client.send("GET /healthz HTTP/1.1\r\nHost: x\r\n")
        let response = try client.readResponse()
        #expect(response.status == 408)
        #expect(response.json?["type"] as? String == "urn:lossd:error:request_timeout")
        #expect(client.isClosedByPeer())
    }

    @Test func stalledBodyGets408AndAClose() throws {
        let lossd = try LossdProcess(["--body-timeout", "0.5"])
        let client = try lossd.connect()
        try client.send("POST /v1/loss HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789")
        let response = try client.readResponse()
        #expect(response.status == 408)
        #expect(client.isClosedByPeer())
    }

    @Test func bodyThatKeepsMovingIsNotTimedOut() throws {
        let lossd = try LossdProcess(["--body-timeout", "0.6"])
        let client = try lossd.connect()
        try client.send("POST /v1/loss HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n")
        for _ in 0..<10 {
            usleep(200_000)  // 2 s in all, each gap well under the body timeout
            try client.send("x")
        }
        #expect(try client.readResponse().status == 400)
    }

    @Test func idleKeepAliveConnectionIsClosedSilently() throws {
        let lossd = try LossdProcess(["--keep-alive-timeout", "0.5"])
        let client = try lossd.connect()
        #expect(try client.exchange(get("/healthz")).status == 200)
        #expect(client.isClosedByPeer(within: 3))
    }

    @Test func connectionsOverTheCapGet503() throws {
        let lossd = try LossdProcess(["--max-connections", "2", "--probe-connections", "1"])
        // Two clients in the middle of a request hold the cap (idle ones would be evicted).
        let first = try lossd.connect(), second = try lossd.connect()
        try first.send("GET /healthz HTTP/1.1\r\n")
        try second.send("GET /healthz HTTP/1.1\r\n")
        usleep(100_000)
        // The one probe slot serves inline routes...
        let probe = try lossd.connect()
        #expect(try probe.exchange(get("/healthz")).status == 200)
        // ...and past it, connections get 503 and are closed.
        let fourth = try lossd.connect()
        let response = try fourth.readResponse()
        #expect(response.status == 503)
        #expect(response.header("retry-after") != nil)
        // The refusal is counted in the metrics, with no route (no request was read).
        let metrics = try probe.exchange(get("/metrics")).bodyText
        #expect(metrics.contains(#"lossd_requests_total{route="none",method="none",status="503"} 1"#), "\(metrics)")
        // Once one finishes and closes, a new connection is served again.
        _ = try first.exchange("Host: x\r\nConnection: close\r\n\r\n")
        usleep(100_000)
        #expect(try lossd.connect().exchange(get("/healthz")).status == 200)
        withExtendedLifetime(second) {}
    }

    @Test(arguments: [
        ("content-length and transfer-encoding",
         "POST /v1/loss HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
        ("differing content-lengths",
         "POST /v1/loss HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!"),
        ("content-length list that differs",
         "POST /v1/loss HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 6\r\n\r\nhello!"),
        ("transfer-encoding not ending in chunked",
         "POST /v1/loss HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n"),
        ("unsupported transfer coding before chunked",
         "POST /v1/loss HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n"),
        ("whitespace before a header colon", "GET /healthz HTTP/1.1\r\nHost : x\r\n\r\n"),
        ("invalid header name", "GET /healthz HTTP/1.1\r\nHost: x\r\nBad(Name): y\r\n\r\n"),
        ("obsolete line folding", "GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n  continued\r\n\r\n"),
        ("bare LF", "GET /healthz HTTP/1.1\nHost: x\n\n"),
        ("missing host", "GET /healthz HTTP/1.1\r\n\r\n"),
        ("HTTP/2 request line", "GET /healthz HTTP/2.0\r\nHost: x\r\n\r\n"),
        ("garbage", "\u{1}\u{2}\u{3} nonsense\r\n\r\n"),
        ("invalid chunk size", "POST /v1/loss HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"),
    ])
    func badFramingIs400AndClose(_ name: String, _ request: String) throws {
        let lossd = try LossdProcess()
        try expectRejected(request, status: 400, code: "malformed_request", on: lossd)
        #expect(lossd.isRunning)
    }
}
