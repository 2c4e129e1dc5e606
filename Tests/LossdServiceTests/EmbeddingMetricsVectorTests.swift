import Foundation
import Testing

@testable import LossdService

/// The `embedding_metrics` cases of metrics_vectors_2.json (scripts/reference-metrics-2.py,
/// docs/embedding-metrics.md), posted in-process to /v1/embedding-metrics.
enum EmbeddingMetricsVectors {
    static var cases: [[String: Any]] { vectorFile("metrics_vectors_2")["embedding_metrics"] as! [[String: Any]] }

    static var names: [String] { cases.map { $0["name"] as! String } }

    static func named(_ name: String) -> [String: Any] { cases.first { $0["name"] as! String == name }! }
}

@Suite("Embedding metrics reference vectors")
struct EmbeddingMetricsVectorTests {
    @Test func everyCaseRuns() {
        #expect(EmbeddingMetricsVectors.cases.count == 38)
        #expect(Set(EmbeddingMetricsVectors.names).count == 38)
    }

    @Test(arguments: EmbeddingMetricsVectors.names)
    func matchesTheReference(_ name: String) throws {
        let vector = EmbeddingMetricsVectors.named(name)
        let (status, json) = try InProcessCall.postJSON("/v1/embedding-metrics", vector["input"] as! [String: Any])
        if let expected = vector["expected_error"] as? [String: Any] {
            LossVectors2Tests.expectError(status, json, expected)
            return
        }
        try #require(status == 200, "\(json)")
        let expected = vector["expected"] as! [String: Any]
        let tol = vector["tol"] as! Double
        for (key, want) in expected {
            // Every listed key is present; null must be null.
            guard let got = json[key] else {
                Issue.record("\(name): `\(key)` is missing from \(json)")
                continue
            }
            if want is NSNull {
                #expect(got is NSNull, "\(name)/\(key): expected null, got \(got)")
            } else {
                let w = (want as! NSNumber).doubleValue
                let g = (got as? NSNumber)?.doubleValue ?? .nan
                #expect(abs(g - w) <= tol, "\(name)/\(key): got \(g), expected \(w) (tol \(tol))")
            }
        }
        // The default list answers exactly the metrics the inputs allow.
        let input = vector["input"] as! [String: Any]
        if input["metrics"] == nil {
            let answered = Set(json.keys).intersection(EmbeddingMetricsEndpoint.metricNames)
            #expect(answered == Set(expected.keys), "\(name): answered \(answered.sorted())")
        }
    }
}
