import Foundation
import Testing

@testable import LossdService

/// Composite `/v1/loss` requests against the separate answers they combine: `total` is the
/// weighted sum of the entries, its gradient their gradients placed back in their columns,
/// and `group_mean` the mean of hand-computed group means.
@Suite("Composite loss requests")
struct CompositeRequestTests {
    static let logits: [[Double]] = [[2, 0.5, -1, 1.2, -0.3], [0.1, 0.2, 0.3, -2, 0.8], [-1, 0, 2.5, 0.4, 0.4]]
    static let targets: [[Double]] = [[1, 0, 0, 1, 0], [0, 0, 1, 0, 1], [0, 1, 0, 1, 1]]

    static func columns(_ matrix: [[Double]], _ range: Range<Int>) -> [[Double]] { matrix.map { Array($0[range]) } }

    @Test func theTotalGradientIsTheWeightedSumOfTheSeparateGradientsInTheirColumns() throws {
        let composite = try post([
            "losses": [
                ["loss": "comp_sum", "params": ["tau": 0.5], "columns": [0, 3]],
                ["loss": "binary_cross_entropy", "columns": [3, 5], "weight": 0.5],
                ["loss": "mae", "reduction": "sum", "weight": -0.25],
            ],
            "logits": Self.logits, "labels": [0, 2, 1], "targets": Self.targets, "return_grad": true,
        ])
        try #require(composite.status == 200, "\(composite.json)")
        // The separate answers, each on its own slice.
        let ce = try post(["loss": "comp_sum", "params": ["tau": 0.5], "logits": Self.columns(Self.logits, 0..<3), "labels": [0, 2, 1], "return_grad": true])
        let bce = try post(["loss": "binary_cross_entropy", "logits": Self.columns(Self.logits, 3..<5), "targets": Self.columns(Self.targets, 3..<5), "return_grad": true])
        let focal = try post(["loss": "mae", "reduction": "sum", "logits": Self.logits, "labels": [0, 2, 1], "return_grad": true])
        let separate = [(ce.json, 0..<3, 1.0), (bce.json, 3..<5, 0.5), (focal.json, 0..<5, -0.25)]

        let results = try #require(composite.json["results"] as? [[String: Any]])
        var expectedValue = 0.0
        var expectedGrad = [[Double]](repeating: [Double](repeating: 0, count: 5), count: 3)
        for (i, (answer, range, weight)) in separate.enumerated() {
            let value = try #require(answer["value"] as? Double)
            #expect(close(results[i]["value"] as? Double ?? .nan, value), "entry \(i)")
            expectedValue += weight * value
            let grad = try #require((answer["grad"] as? [String: Any])?["logits"] as? [[Double]])
            for r in 0..<3 {
                for (j, column) in range.enumerated() { expectedGrad[r][column] += weight * grad[r][j] }
            }
            // The entry's own gradient is at full width, zeros outside its columns.
            let own = try #require((results[i]["grad"] as? [String: Any])?["logits"] as? [[Double]])
            for r in 0..<3 {
                for c in 0..<5 {
                    let want = range.contains(c) ? grad[r][c - range.lowerBound] : 0
                    #expect(close(own[r][c], want), "entry \(i) grad [\(r)][\(c)]")
                }
            }
        }
        let total = try #require(composite.json["total"] as? [String: Any])
        #expect(close(total["value"] as? Double ?? .nan, expectedValue))
        let totalGrad = try #require((total["grad"] as? [String: Any])?["logits"] as? [[Double]])
        for r in 0..<3 {
            for c in 0..<5 { #expect(close(totalGrad[r][c], expectedGrad[r][c]), "total grad [\(r)][\(c)]") }
        }
    }

    @Test func groupMeanIsTheMeanOfTheGroupMeans() throws {
        // Per-row cross-entropies from a reduction `none` answer, grouped by hand.
        let logits: [[Double]] = [[2, 0.5, -1], [0.1, 0.2, 0.3], [1, 1, 0], [0, 3, 0], [0.5, -0.5, 0]]
        let labels = [0, 2, 1, 0, 2], groups = [7, 7, 7, 2, 7], weights = [1.0, 2.0, 0.5, 1.0, 0.0]
        let rows = try post(["loss": "cross_entropy", "reduction": "none", "logits": logits, "labels": labels])
        let values = try #require(rows.json["values"] as? [Double])
        // Group 2: row 3 alone; group 7: rows 0, 1, 2, 4 weighted 1, 2, 0.5, 0.
        let group2 = values[3]
        let group7 = (weights[0] * values[0] + weights[1] * values[1] + weights[2] * values[2]) / (weights[0] + weights[1] + weights[2])
        let answer = try post([
            "loss": "cross_entropy", "reduction": "group_mean", "groups": groups, "sample_weights": weights,
            "logits": logits, "labels": labels, "return_grad": true,
        ])
        try #require(answer.status == 200, "\(answer.json)")
        #expect(close(answer.json["value"] as? Double ?? .nan, (group2 + group7) / 2))
        let groupValues = try #require((answer.json["extras"] as? [String: Any])?["group_values"] as? [Double])
        #expect(groupValues.count == 2 && close(groupValues[0], group2) && close(groupValues[1], group7))
        // A weightless row has no gradient; the lone row of group 2 has half its own.
        let grad = try #require((answer.json["grad"] as? [String: Any])?["logits"] as? [[Double]])
        #expect(grad[4] == [0, 0, 0])
        let alone = try post(["loss": "cross_entropy", "logits": [logits[3]], "labels": [0], "return_grad": true])
        let own = try #require((alone.json["grad"] as? [String: Any])?["logits"] as? [[Double]])
        for c in 0..<3 { #expect(close(grad[3][c], own[0][c] / 2)) }
    }

    @Test func compositeErrorsNameTheirEntry() throws {
        let base: [String: Any] = ["logits": Self.logits, "labels": [0, 2, 1]]
        func problem(_ extra: [String: Any]) throws -> (Int, String?, String?) {
            let answer = try post(base.merging(extra) { $1 })
            return (answer.status, answer.json["type"] as? String, answer.json["field"] as? String)
        }
        #expect(try problem(["losses": [["loss": "cross_entropy", "columns": [0, 6]]]]) == (422, "urn:lossd:error:invalid_param", "/losses/0/columns"))
        #expect(try problem(["losses": [["loss": "cross_entropy", "columns": [2, 2]]]]) == (422, "urn:lossd:error:invalid_param", "/losses/0/columns"))
        #expect(try problem(["losses": [["loss": "cross_entropy", "columns": [0.5, 2]]]]) == (422, "urn:lossd:error:invalid_param", "/losses/0/columns"))
        #expect(try problem(["losses": [["loss": "cross_entropy", "weight": "x"]]]) == (422, "urn:lossd:error:invalid_param", "/losses/0/weight"))
        #expect(try problem(["losses": [["loss": "cross_entropy", "columns": [0, 2]]]]) == (422, "urn:lossd:error:invalid_label", "/labels/1"))
        #expect(try problem(["loss": "cross_entropy", "reduction": "group_mean"]) == (422, "urn:lossd:error:missing_field", "/groups"))
        #expect(try problem(["loss": "cross_entropy", "reduction": "group_mean", "groups": [0, 1]]) == (422, "urn:lossd:error:invalid_shape", "/groups"))
        #expect(try problem(["loss": "cross_entropy", "groups": [0, "a", 1]]) == (422, "urn:lossd:error:invalid_label", "/groups/1"))
        let embeddings: [String: Any] = ["queries": [[1, 0], [0, 1]], "keys": [[1, 0], [0, 1]]]
        let coupled = try post(embeddings.merging(["loss": "info_nce", "reduction": "group_mean", "groups": [0, 1]]) { $1 })
        #expect(coupled.status == 422 && coupled.json["field"] as? String == "/reduction", "\(coupled.json)")
        // `none` entries leave no single total.
        let none = try post(base.merging(["losses": [["loss": "cross_entropy", "reduction": "none"], ["loss": "cross_entropy"]]]) { $1 })
        #expect(none.status == 200 && none.json["total"] == nil)
    }
}
