import Foundation
import LossdTestSupport
import Testing

/// `/v1/embedding-metrics` through the real binary, including the row limit.
@Suite("lossd /v1/embedding-metrics over real sockets")
struct EmbeddingMetricsEndpointTests {
    func post(_ lossd: LossdProcess, _ json: String) throws -> WireResponse {
        let body = Array(json.utf8)
        let client = try lossd.connect()
        try client.send(
            "POST /v1/embedding-metrics HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: \(body.count)\r\n\r\n")
        try client.send(body)
        return try client.readResponse()
    }

    @Test func labelsAndPairsAnswerEveryMetric() throws {
        let lossd = try LossdProcess()
        let labelled = try post(lossd, #"{"embeddings": [[1, 0.2], [0.9, 0.1], [-0.2, 1], [0.1, 0.8]], "labels": [0, 0, 1, 1]}"#)
        #expect(labelled.status == 200, "\(labelled.bodyText)")
        #expect(labelled.header("content-type") == "application/json")
        let json = try #require(labelled.json)
        #expect(json["n"] as? Int == 4 && json["dimension"] as? Int == 2 && json["classes"] as? Int == 2)
        for key in ["alignment", "uniformity", "tolerance", "nc1", "mean_positive_cosine", "mean_negative_cosine"] {
            #expect(json[key] is Double, "\(key): \(labelled.bodyText)")
        }
        #expect(json["tolerance"] as? Double == json["mean_positive_cosine"] as? Double)

        let pairs = try post(lossd, #"{"queries": [[1, 0], [0, 1]], "keys": [[0.8, 0.6], [0.1, 1]], "params": {"alignment_alpha": 1}}"#)
        #expect(pairs.status == 200, "\(pairs.bodyText)")
        #expect(pairs.json?["tolerance"] == nil)
        // cos(q0, k0) = 0.8, cos(q1, k1) = 1/√1.01.
        let positive = try #require(pairs.json?["mean_positive_cosine"] as? Double)
        #expect(abs(positive - (0.8 + 1 / 1.01.squareRoot()) / 2) < 1e-15)
    }

    @Test func manyRowsSpanSeveralGramBlocks() throws {
        // 1000 rows on the unit circle at evenly spaced angles, two alternating classes.
        let lossd = try LossdProcess()
        let n = 1000
        let rows = (0..<n).map { i -> String in
            let a = 2 * Double.pi * Double(i) / Double(n)
            return "[\(cos(a)), \(sin(a))]"
        }
        let labels = (0..<n).map { String($0 % 2) }
        let response = try post(
            lossd,
            #"{"embeddings": [\#(rows.joined(separator: ","))], "labels": [\#(labels.joined(separator: ","))], "metrics": ["uniformity", "mean_negative_cosine"]}"#)
        #expect(response.status == 200, "\(response.bodyText)")
        // Evenly spread points: mean exp(−2 d²) over all pairs → e^{−4} I₀(4) for large N
        // (the circle's Gaussian potential), so uniformity ≈ −4 + log I₀(4).
        let uniformity = try #require(response.json?["uniformity"] as? Double)
        #expect(abs(uniformity - (-4 + log(11.301_921_952_136_33))) < 1e-2)
        let negative = try #require(response.json?["mean_negative_cosine"] as? Double)
        #expect(abs(negative) < 1e-2)
    }

    @Test func moreThan16384RowsIs413() throws {
        let lossd = try LossdProcess()
        let n = 16_385
        let data = [String](repeating: "1", count: n).joined(separator: ",")
        let response = try post(lossd, #"{"embeddings": {"shape": [\#(n), 1], "data": [\#(data)]}}"#)
        #expect(response.status == 413, "\(response.bodyText)")
        #expect(response.json?["type"] as? String == "urn:lossd:error:content_too_large")
        #expect(response.json?["field"] as? String == "/embeddings")

        let paired = try post(lossd, #"{"queries": {"shape": [\#(n), 1], "data": [\#(data)]}, "keys": {"shape": [\#(n), 1], "data": [\#(data)]}}"#)
        #expect(paired.status == 413, "\(paired.bodyText)")
        #expect(paired.json?["field"] as? String == "/queries")

        // At the limit it answers (a cosine metric: O(N·D), quick even in a debug build).
        let limit = [String](repeating: "1", count: 16_384).joined(separator: ",")
        let atLimit = try post(
            lossd, #"{"embeddings": {"shape": [16384, 1], "data": [\#(limit)]}, "labels": {"shape": [16384], "data": [\#(limit)]}, "metrics": ["tolerance"]}"#)
        #expect(atLimit.status == 200, "\(atLimit.bodyText)")
        #expect(atLimit.json?["tolerance"] as? Double == 1)
    }
}
