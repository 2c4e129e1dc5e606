import Foundation
import LossdHTTP
import Testing

@testable import LossdService

/// Parameters at the edge of their documented range, found by schemathesis: each answer is
/// finite numbers or a 422 naming the problem, never nulls in place of probabilities.
@Suite("Edge-of-range parameters")
struct OverflowEdgeTests {

    func call(_ path: String, _ body: [String: Any]) throws -> (status: Int, json: [String: Any]) {
        try InProcessCall.postJSON(path, body)
    }

    let logits: [[Double]] = [[-1.0, 0.25, -0.75], [-0.25, 1.0, 0.5]]
    let annotations: [[Any]] = [[1, 7, 0], [1, 8, 2], [2, 7, 1]]

    @Test func aTemperatureWhoseReciprocalOverflowsGivesTheOneHotOfTheMaximum() throws {
        for method in ["temperature", "ensemble_temperature"] {
            var params: [String: Any] = ["temperature": Double.leastNonzeroMagnitude]
            if method == "ensemble_temperature" { params["weights"] = [1.0, 0.0, 0.0] }
            let answer = try call("/v1/calibrate", ["calibrator": ["method": method, "params": params], "logits": logits])
            #expect(answer.status == 200, "\(method): \(answer.json)")
            #expect(answer.json["probs"] as? [[Double]] == [[0, 1, 0], [0, 1, 0]], "\(method)")
        }
    }

    @Test func aMatrixThatOverflowsOnTheLogitsIs422ValueOverflow() throws {
        let big = 1e308
        let answer = try call(
            "/v1/calibrate",
            [
                // Row 0 gives z·W = [1e308 + 1e308, …]: +∞ in two classes, and ∞ − ∞ in the softmax.
                "calibrator": ["method": "matrix", "params": ["W": [[big, big, big], [big, big, big], [big, big, big]], "b": [0, 0, 0]]],
                "logits": [[1.0, 1.0, -0.75], [-0.25, 1.0, 0.5]],
            ])
        #expect(answer.status == 422, "\(answer.json)")
        #expect(answer.json["type"] as? String == "urn:lossd:error:value_overflow")
    }

    @Test func softmaxAggregationAtATinyTemperatureIsTheMajorityOneHot() throws {
        let answer = try call(
            "/v1/aggregate", ["method": "softmax", "num_classes": 3, "annotations": annotations, "params": ["temperature": Double.leastNonzeroMagnitude]])
        #expect(answer.status == 200, "\(answer.json)")
        #expect(answer.json["soft_labels"] as? [[Double]] == [[0.5, 0, 0.5], [0, 1, 0]])
    }

    @Test func maceRejectsPriorsBelowItsMinimumAndDivergingMethodsAre422() throws {
        let tiny = try call("/v1/aggregate", ["method": "mace", "num_classes": 3, "annotations": annotations, "params": ["alpha": Double.leastNonzeroMagnitude]])
        #expect(tiny.status == 422)
        #expect(tiny.json["field"] as? String == "/params/alpha")
        let smallest = try call(
            "/v1/aggregate", ["method": "mace", "num_classes": 3, "annotations": annotations, "params": ["alpha": 1e-6, "beta": 1e-6]])
        #expect(smallest.status == 200, "\(smallest.json)")
        let diverging = try call(
            "/v1/aggregate", ["method": "zero_based_skill", "num_classes": 3, "annotations": annotations, "params": ["lr_init": 999_999]])
        #expect(diverging.status == 422)
        #expect(diverging.json["type"] as? String == "urn:lossd:error:value_overflow")
        #expect(diverging.json["field"] as? String == "/params")
    }

    @Test func temperatureBoundsOutsideTheFloat64RangeAre422OnTheirOwnField() throws {
        let answer = try call(
            "/v1/calibrators/fit",
            ["method": "temperature", "params": ["log_beta_bounds": [-800, -750]], "logits": [[1, 2], [2, 1], [0, 1]], "labels": [1, 0, 1]])
        #expect(answer.status == 422)
        #expect(answer.json["field"] as? String == "/params/log_beta_bounds")
        #expect((answer.json["detail"] as? String)?.contains("[-709, 709]") == true)
    }

    @Test func anOverflowingNLLIsNull() throws {
        let answer = try call("/v1/metrics", ["logits": [[1e308, -1e308]], "labels": [1]])
        #expect(answer.status == 200)
        #expect(answer.json["nll"] is NSNull)
        #expect(answer.json["ece"] as? Double == 1)
    }
}
