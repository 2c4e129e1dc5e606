import Foundation
import Testing

@testable import LossdService

/// The contrastive losses' similarity-matrix limit (2^26 entries) as the service reports it:
/// a small body of many short rows gets 413 `content_too_large`, not an allocation of gigabytes.
@Suite("Contrastive similarity-matrix limit")
struct ContrastiveLimitTests {
    @Test func infoNCEAboveTheLimitIs413AtKeys() throws {
        // 8193 x 8193 > 2^26 from a body of about 70 kB.
        let rows = [[Double]](repeating: [1], count: 8193)
        let (status, json) = try post(["loss": "info_nce", "queries": rows, "keys": rows])
        #expect(status == 413)
        #expect(json["type"] as? String == "urn:lossd:error:content_too_large")
        #expect(json["field"] as? String == "/keys")
        #expect(json["detail"] as? String == "`queries` and `keys` need a 8193 x 8193 similarity matrix; the limit is 67108864 entries")
    }

    @Test func supconAboveTheLimitIs413AtEmbeddings() throws {
        let (status, json) = try post([
            "loss": "supcon", "embeddings": [[Double]](repeating: [1], count: 8193), "labels": [Int](repeating: 0, count: 8193),
        ])
        #expect(status == 413)
        #expect(json["field"] as? String == "/embeddings")
    }

    @Test func otherKernelRefusalsStay422() throws {
        let (status, json) = try post(["loss": "info_nce", "queries": [[1.0], [2.0]], "keys": [[1.0]]])
        #expect(status == 422)
        #expect(json["field"] as? String == "/keys")
    }
}
