import Foundation
import LossdHTTP
import Testing

@testable import LossdService

/// The segmentation losses' 4-D/5-D logits and class maps in every encoding the API has
/// (nested arrays, `{shape, data}`, `{shape, dtype, base64}`, multipart `.npy` parts), and
/// their size limits.
@Suite("Segmentation inputs")
struct SegmentationInputTests {
    /// logits [1][2][2][3][2] (rank 5), exact in float32, and a class map [1][2][3][2].
    static let logits: [Double] = (0..<24).map { Double(($0 * 7) % 11) / 4 - 1.25 }
    static let labels: [Double] = (0..<12).map { Double(($0 * 5) % 3 == 0 ? 1 : 0) }
    static let logitsShape = [1, 2, 2, 3, 2], labelsShape = [1, 2, 3, 2]

    static func base64(_ values: [Double], float32: Bool) -> String {
        let bytes: [UInt8] = float32
            ? values.flatMap { withUnsafeBytes(of: Float($0).bitPattern.littleEndian, Array.init) }
            : values.flatMap { withUnsafeBytes(of: $0.bitPattern.littleEndian, Array.init) }
        return Data(bytes).base64EncodedString()
    }

    func value(_ body: [String: Any]) throws -> Double {
        let (status, json) = try post(body)
        try #require(status == 200, "\(json)")
        return json["value"] as! Double
    }

    @Test(arguments: ["dice", "cldice", "skeleton_recall"])
    func everyEncodingGivesTheSameAnswer(_ loss: String) throws {
        let truth = loss == "skeleton_recall" ? "skeleton" : "labels"
        let nested: [String: Any] = [
            "loss": loss, "logits": SampleInputs.nest(Self.logits, Self.logitsShape),
            truth: SampleInputs.nest(Self.labels, Self.labelsShape),
        ]
        let expected = try value(nested)
        let data: [String: Any] = [
            "loss": loss, "logits": ["shape": Self.logitsShape, "data": Self.logits],
            truth: ["shape": Self.labelsShape, "data": Self.labels],
        ]
        #expect(try value(data) == expected)
        for float32 in [true, false] {
            let encoded: [String: Any] = [
                "loss": loss,
                "logits": ["shape": Self.logitsShape, "dtype": float32 ? "float32" : "float64", "base64": Self.base64(Self.logits, float32: float32)],
                truth: ["shape": Self.labelsShape, "dtype": "float32", "base64": Self.base64(Self.labels, float32: true)],
            ]
            #expect(try value(encoded) == expected)
        }
        // Multipart: the request part, logits as float64 .npy and the class map as int64 .npy.
        let parts = BinaryInputTests()
        let npyLogits = parts.npy("<f8", shape: Self.logitsShape, data: BinaryInputTests.float64(Self.logits))
        let npyLabels = parts.npy("<i8", shape: Self.labelsShape, data: BinaryInputTests.littleEndian(Self.labels.map { Int64($0) }))
        let (body, contentType) = parts.multipart([
            ("request", Array(#"{"loss": "\#(loss)"}"#.utf8)), ("logits", npyLogits), (truth, npyLabels),
        ])
        let response = parts.send(body, [("Content-Type", contentType)])
        #expect(response.status.code == 200)
        #expect(parts.object(response)["value"] as? Double == expected)
    }

    @Test func aClassMapEntryThatIsNotIntegralIsAnInvalidLabelAtItsIndex() throws {
        var labels = Self.labels
        labels[7] = 0.5
        let body: [String: Any] = [
            "loss": "dice", "logits": ["shape": Self.logitsShape, "data": Self.logits],
            "labels": ["shape": Self.labelsShape, "dtype": "float32", "base64": Self.base64(labels, float32: true)],
        ]
        let (status, json) = try post(body)
        #expect(status == 422)
        #expect(json["type"] as? String == "urn:lossd:error:invalid_label")
        #expect(json["field"] as? String == "/labels/0/1/0/1")
    }

    @Test func moreThan2To26LogitsOrAnUnaffordableSkeletonIs413() throws {
        let tooMany: [String: Any] = [
            "loss": "dice", "logits": ["shape": [1, 2, 8192, 4097], "dtype": "float32", "base64": "AAAA"], "labels": [[[0]]],
        ]
        #expect(try post(tooMany).status == 413)
        // 2^24 pixels a map and 100 skeleton rounds kept for the gradient: tens of GB, more
        // than an 8 GiB budget can ever give (refused before the tensors are read).
        let deep: [String: Any] = [
            "loss": "cldice", "params": ["iterations": 100], "return_grad": true,
            "logits": ["shape": [1, 2, 4096, 4096], "dtype": "float32", "base64": "AAAA"], "labels": [[[0]]],
        ]
        let head = HTTPRequestHead(
            method: "POST", target: "/v1/loss", version: .http1_1, headers: ["Host": "x", "Content-Type": "application/json"])
        let context = RequestContext(requestID: "t", remoteAddress: "t", memory: MemoryCharge(budget: MemoryBudget(limit: 8 << 30)))
        let response = LossdService(configuration: ServiceConfiguration())
            .respond(to: HTTPRequest(head: head, body: Array(try JSONSerialization.data(withJSONObject: deep))), context: context)
        #expect(response.status.code == 413)
    }

    @Test func extremeLogitsGiveFiniteValuesAndZeroGradients() throws {
        for loss in ["dice", "cldice", "skeleton_recall"] {
            let truth = loss == "skeleton_recall" ? "skeleton" : "labels"
            // ±1e4 logits that agree with the class map: hard probabilities, a perfect prediction.
            var logits = [Double](repeating: 0, count: 24)
            for c in 0..<2 {
                for s in 0..<12 { logits[c * 12 + s] = Self.labels[s] == Double(c) ? 1e4 : -1e4 }
            }
            let (status, json) = try post([
                "loss": loss, "return_grad": true, "params": ["include_background": true],
                "logits": SampleInputs.nest(logits, Self.logitsShape), truth: SampleInputs.nest(Self.labels, Self.labelsShape),
            ])
            try #require(status == 200, "\(json)")
            #expect((json["value"] as! Double).isFinite)
            #expect(flat((json["grad"] as! [String: Any])["logits"]).allSatisfy { $0 == 0 })
        }
    }
}
