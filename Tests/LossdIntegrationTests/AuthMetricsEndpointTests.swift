import Foundation
import LossdTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// `--api-key` / `LOSSD_API_KEY` and `GET /metrics`, through the real binary.
@Suite("lossd API key and /metrics")
struct AuthMetricsEndpointTests {
    static let lossBody = #"{"loss": "cross_entropy", "logits": [[2.0, 0.5, -1.0]], "labels": [0]}"#

    func postLoss(_ lossd: LossdProcess, authorization: String? = nil) throws -> WireResponse {
        let body = Array(Self.lossBody.utf8)
        let auth = authorization.map { "Authorization: \($0)\r\n" } ?? ""
        let client = try lossd.connect()
        try client.send(
            "POST /v1/loss HTTP/1.1\r\nHost: x\r\n\(auth)Content-Type: application/json\r\nContent-Length: \(body.count)\r\n\r\n")
        try client.send(body)
        return try client.readResponse()
    }

    func expectKeyEnforced(_ lossd: LossdProcess, key: String) throws {
        let missing = try postLoss(lossd)
        #expect(missing.status == 401)
        #expect(missing.header("www-authenticate")?.hasPrefix(#"Bearer realm="lossd""#) == true)
        #expect(missing.header("content-type") == "application/problem+json")
        #expect(missing.json?["type"] as? String == "urn:lossd:error:unauthorized")

        let wrong = try postLoss(lossd, authorization: "Bearer \(key)x")
        #expect(wrong.status == 401)
        #expect(!wrong.bodyText.contains(key))

        let right = try postLoss(lossd, authorization: "Bearer \(key)")
        #expect(right.status == 200)
        #expect(try lossd.connect().exchange(get("/v1/version", "Authorization: Bearer \(key)\r\n")).status == 200)
        #expect(try lossd.connect().exchange(get("/v1/version")).status == 401)

        for open in ["/healthz", "/readyz", "/metrics", "/openapi.yaml"] {
            #expect(try lossd.connect().exchange(get(open)).status == 200, "\(open)")
        }
    }

    @Test func apiKeyFlag() throws {
        try expectKeyEnforced(try LossdProcess(["--api-key", "secret"]), key: "secret")
    }

    @Test func apiKeyFromTheEnvironment() throws {
        try expectKeyEnforced(try LossdProcess([], environment: ["LOSSD_API_KEY": "env-secret"]), key: "env-secret")
    }

    @Test func withoutAKeyV1IsOpen() throws {
        let lossd = try LossdProcess([], environment: ["LOSSD_API_KEY": ""])
        #expect(try postLoss(lossd).status == 200)
    }

    @Test func metricsCountRequestsByRouteAndStatus() throws {
        let lossd = try LossdProcess(["--max-body-bytes", "2000"])
        for _ in 0..<3 { #expect(try postLoss(lossd).status == 200) }
        #expect(try lossd.connect().exchange(get("/healthz")).status == 200)
        #expect(try lossd.connect().exchange(get("/no/such/thing")).status == 404)
        let tooLarge = try lossd.connect().exchange(
            "POST /v1/loss HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 5000\r\n\r\n")
        #expect(tooLarge.status == 413)

        let response = try lossd.connect().exchange(get("/metrics"))
        #expect(response.status == 200)
        #expect(response.header("content-type")?.hasPrefix("text/plain; version=0.0.4") == true)
        let text = response.bodyText
        for family in [
            "lossd_requests_total counter", "lossd_request_duration_seconds histogram", "lossd_request_bytes_total counter",
            "lossd_response_bytes_total counter", "lossd_open_connections gauge", "lossd_queue_depth gauge",
            "lossd_store_entries gauge", "lossd_build_info gauge",
        ] {
            #expect(text.contains("# TYPE \(family)\n"), "\(family)")
        }
        let samples = Dictionary(
            text.split(separator: "\n").filter { !$0.hasPrefix("#") }.compactMap { line -> (String, Double)? in
                guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else { return nil }
                return (String(line[..<space]), value)
            }, uniquingKeysWith: { a, _ in a })
        #expect(samples[#"lossd_requests_total{route="/v1/loss",method="POST",status="200"}"#] == 3)
        // A 413 decided from Content-Length, before the head is handed on, is still counted
        // under its route.
        #expect(samples[#"lossd_requests_total{route="/v1/loss",method="POST",status="413"}"#] == 1)
        #expect(samples[#"lossd_requests_total{route="unmatched",method="GET",status="404"}"#] == 1)
        #expect(samples[#"lossd_requests_total{route="/healthz",method="GET",status="200"}"#] == 1)
        #expect(samples[#"lossd_request_duration_seconds_count{route="/v1/loss",method="POST"}"#] == 4)  // the 413 too
        #expect((samples[#"lossd_request_bytes_total{route="/v1/loss",method="POST"}"#] ?? 0) > 3 * Double(Self.lossBody.utf8.count))
        #expect((samples[#"lossd_response_bytes_total{route="/v1/loss",method="POST"}"#] ?? 0) > 0)
        #expect((samples["lossd_open_connections"] ?? 0) >= 1)  // this scrape's own connection
        #expect(samples["lossd_queue_depth"] == 0)
        #expect(samples[#"lossd_store_entries{collection="calibrators"}"#] == 0)
        #expect(samples[#"lossd_store_entries{collection="scaling_laws"}"#] == 0)
        // The raw path is never a label value: labels stay bounded.
        #expect(!text.contains("/no/such/thing"))
    }

    @Test func theKeyIsNeverPrinted() throws {
        let process = Process()
        let directory = NSTemporaryDirectory() + "lossd-test-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        process.executableURL = URL(fileURLWithPath: LossdProcess.binaryPath)
        process.arguments = ["--port", "0", "--data-dir", directory, "--log-level", "info", "--api-key", "hunter2-topsecret"]
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        var text = ""
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline, !text.contains("listening on") {
            let chunk = out.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            text += String(decoding: chunk, as: UTF8.self)
        }
        process.terminate()
        process.waitUntilExit()
        text += String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let log = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(log.contains("api_key=set"))
        #expect(!(text + log).contains("hunter2"))
    }
}
