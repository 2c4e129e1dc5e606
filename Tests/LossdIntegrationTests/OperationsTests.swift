import Foundation
import LossdTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Running lossd as a sidecar: the operations port, the Prometheus exposition (checked by
/// promtool), JSON logs and W3C trace context, through the real binary.
@Suite("lossd operations")
struct OperationsTests {
    static let smallLoss = #"{"loss": "cross_entropy", "logits": [[1, 2, 3], [0.5, 0.1, 2]], "labels": [0, 2]}"#

    func post(_ client: RawClient, _ path: String, _ body: String, _ headers: String = "") throws -> WireResponse {
        try client.exchange(
            "POST \(path) HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\(headers)Content-Length: \(body.utf8.count)\r\n\r\n\(body)")
    }

    @Test func theOperationsPortServesOnlyProbesAndMetrics() throws {
        let lossd = try LossdProcess(["--ops-port", "0", "--ops-host", "127.0.0.1"])
        let opsPort = try #require(lossd.operationsPort)
        #expect(opsPort != lossd.port)
        for path in ["/healthz", "/readyz", "/metrics"] {
            #expect(try RawClient(port: opsPort).exchange(get(path)).status == 200, "\(path) on the ops port")
        }
        // Everything else is 404 there, a POST with a body included (answered before it is read).
        #expect(try RawClient(port: opsPort).exchange(get("/v1/version")).status == 404)
        #expect(try RawClient(port: opsPort).exchange(get("/openapi.yaml")).status == 404)
        let refused = try post(RawClient(port: opsPort), "/v1/loss", Self.smallLoss)
        #expect(refused.status == 404)
        #expect(refused.json?["type"] as? String == "urn:lossd:error:not_found")
        // The API port still serves everything, probes and metrics included.
        let api = try lossd.connect()
        #expect(try post(api, "/v1/loss", Self.smallLoss).status == 200)
        for path in ["/healthz", "/readyz", "/metrics", "/v1/version", "/openapi.yaml"] {
            #expect(try api.exchange(get(path)).status == 200, "\(path) on the API port")
        }
    }

    @Test func anOpsHostWithoutAnOpsPortIsAConfigurationError() throws {
        #expect(throws: (any Error).self) { _ = try LossdProcess(["--ops-host", "127.0.0.1"]) }
    }

    /// promtool accepts a scrape taken after mixed traffic, and every metric an operator
    /// needs is in it.
    @Test func theMetricsExpositionPassesPromtool() throws {
        let lossd = try LossdProcess(["--ops-port", "0", "--ops-host", "127.0.0.1"])
        let api = try lossd.connect()
        #expect(try post(api, "/v1/loss", Self.smallLoss).status == 200)
        let two = #"{"losses": [{"loss": "cross_entropy"}, {"loss": "focal"}], "logits": [[1, 2, 3]], "labels": [0]}"#
        #expect(try post(api, "/v1/loss", two).status == 200)
        #expect(try post(api, "/v1/loss", #"{"loss": "nope"}"#).status == 422)
        #expect(try api.exchange(get("/missing")).status == 404)
        let scrape = try RawClient(port: try #require(lossd.operationsPort)).exchange(get("/metrics")).bodyText
        for name in [
            "process_resident_memory_bytes", "process_virtual_memory_bytes", "process_cpu_seconds_total", "process_open_fds",
            "process_max_fds", "process_start_time_seconds", "lossd_inflight_body_bytes", "lossd_inflight_limit_bytes",
            #"lossd_loss_evaluations_total{loss="cross_entropy"} 2"#, #"lossd_loss_evaluations_total{loss="focal"} 1"#,
            #"lossd_batch_rows_bucket{le="1"} 2"#, "lossd_batch_rows_count 3",
            #"lossd_request_duration_seconds_bucket{route="/v1/loss",method="POST",le="0.0001"}"#,
        ] {
            #expect(scrape.contains(name), "\(name) missing from the scrape")
        }
        let rss = scrape.split(separator: "\n").first { $0.hasPrefix("process_resident_memory_bytes ") }
        let rssBytes = rss.flatMap { Double($0.split(separator: " ")[1]) } ?? 0
        #expect(rssBytes > 1_048_576)
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/promtool") else {
            Issue.record("promtool is not installed (scripts/install-deps.sh --test installs Debian's prometheus)")
            return
        }
        let result = try TLSTests.run("promtool", ["check", "metrics"], input: scrape)
        #expect(result.status == 0, "promtool: \(result.stdout) \(result.stderr)")
    }

    /// With --log-format json every line lossd writes is a JSON object; a request with a
    /// valid traceparent is logged with its trace id, and the header is echoed.
    @Test func jsonLogsCarryEveryFieldAndTheTraceID() throws {
        let lossd = try LossdProcess(["--log-format", "json", "--log-level", "info", "--ops-port", "0", "--ops-host", "127.0.0.1"])
        let traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
        let traceparent = "00-\(traceID)-00f067aa0ba902b7-01"
        let api = try lossd.connect()
        let traced = try post(api, "/v1/loss", Self.smallLoss, "traceparent: \(traceparent)\r\nX-Request-Id: traced-1\r\n")
        #expect(traced.status == 200)
        #expect(traced.header("traceparent") == traceparent)
        let invalid = try post(api, "/v1/loss", Self.smallLoss, "traceparent: 00-\(String(repeating: "0", count: 32))-00f067aa0ba902b7-01\r\n")
        #expect(invalid.header("traceparent") == nil, "an all-zero trace id is invalid and not echoed")
        #expect(try post(api, "/v1/loss", #"{"loss": "nope"}"#).status == 422)
        _ = try RawClient(port: try #require(lossd.operationsPort)).exchange(get("/metrics"))
        let startup = lossd.startupOutput
        let stderr = lossd.stopAndReadStandardError()
        let lines = (startup + stderr).split(separator: "\n").filter { !$0.isEmpty }
        #expect(lines.count >= 5)
        var tracedLine: [String: Any]?
        for line in lines {
            let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
            #expect(object != nil, "not JSON: \(line)")
            guard let object else { continue }
            #expect(object["time"] is String && object["level"] is String && object["message"] is String, "\(line)")
            if object["request_id"] as? String == "traced-1" { tracedLine = object }
        }
        let access = try #require(tracedLine)
        #expect(access["trace_id"] as? String == traceID)
        #expect(access["status"] as? Int == 200)
        #expect(access["method"] as? String == "POST")
        #expect(access["path"] as? String == "/v1/loss")
        #expect(access["route"] as? String == "/v1/loss")
        #expect(access["bytes_out"] is Int && access["ms"] is Double)
    }
}
