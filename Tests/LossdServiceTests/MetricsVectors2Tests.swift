import Foundation
import Testing

@testable import LossdService

/// The `metrics` cases of metrics_vectors_2.json (written by scripts/reference-metrics-2.py;
/// docs/calibration.md §2.10-§2.12): soft targets, rmsce, binary input and calibrated NLL,
/// posted in-process to /v1/metrics (and /v1/reliability when a case asks for the bins).
enum MetricsVectors2 {
    static var cases: [[String: Any]] { vectorFile("metrics_vectors_2")["metrics"] as! [[String: Any]] }

    static var names: [String] { cases.map { $0["name"] as! String } }

    static func named(_ name: String) -> [String: Any] { cases.first { $0["name"] as! String == name }! }

    /// Every key of `expected` against `got` (objects by key, arrays element-wise, null for
    /// null, strings equal, numbers within the absolute `tol`).
    static func compare(_ got: Any?, _ expected: Any, tol: Double, path: String) {
        switch expected {
        case is NSNull:
            #expect(got is NSNull, "\(path): expected null, got \(String(describing: got))")
        case let object as [String: Any]:
            let gotObject = got as? [String: Any]
            #expect(gotObject != nil, "\(path): expected an object, got \(String(describing: got))")
            for (key, value) in object {
                #expect(gotObject?[key] != nil, "\(path)/\(key) is missing")
                compare(gotObject?[key] ?? NSNull(), value, tol: tol, path: path + "/" + key)
            }
        case let text as String:
            #expect(got as? String == text, "\(path)")
        case let array as [Any]:
            guard let gotArray = got as? [Any], gotArray.count == array.count else {
                Issue.record("\(path): expected \(array.count) elements, got \(String(describing: got))")
                return
            }
            for (i, (g, w)) in zip(gotArray, array).enumerated() { compare(g, w, tol: tol, path: "\(path)/\(i)") }
        default:
            let want = flat(expected), have = flat(got)
            #expect(have.count == 1 && want.count == 1 && abs(have[0] - want[0]) <= tol, "\(path): \(have) vs \(want)")
        }
    }
}

@Suite("Metrics reference vectors, second wave")
struct MetricsVectors2Tests {
    @Test func everyCaseRuns() {
        #expect(MetricsVectors2.cases.count == 37)
        #expect(MetricsVectors2.cases.filter { $0["expected_error"] != nil }.count == 17)
        #expect(MetricsVectors2.cases.filter { $0["input_hard"] != nil }.count == 4)
        #expect(MetricsVectors2.cases.filter { $0["input_equivalent"] != nil }.count == 2)
        #expect(MetricsVectors2.cases.filter { $0["per_split"] != nil }.count == 3)
    }

    @Test(arguments: MetricsVectors2.names)
    func matchesTheReference(_ name: String) throws {
        let vector = MetricsVectors2.named(name)
        let input = vector["input"] as! [String: Any]
        let (status, json) = try post(input, path: "/v1/metrics")
        if let expected = vector["expected_error"] as? [String: Any] {
            LossVectors2Tests.expectError(status, json, expected)
            // /v1/reliability takes the same request and refuses it the same way.
            let (rStatus, rJSON) = try post(input, path: "/v1/reliability")
            LossVectors2Tests.expectError(rStatus, rJSON, expected)
            return
        }
        try #require(status == 200, "\(json)")
        let tol = vector["tol"] as! Double
        MetricsVectors2.compare(json, vector["expected"]!, tol: tol, path: name)

        // /v1/reliability answers the same bins for the same request.
        if let bins = (vector["expected"] as! [String: Any])["reliability"] {
            let (rStatus, rJSON) = try post(input, path: "/v1/reliability")
            try #require(rStatus == 200, "\(rJSON)")
            MetricsVectors2.compare(rJSON["reliability"], bins, tol: tol, path: name + " (reliability)")
        }
    }

    /// One-hot targets answer exactly what the same request with labels answers, and both
    /// match the separate hard-label reference.
    @Test(arguments: MetricsVectors2.names.filter { MetricsVectors2.named($0)["input_hard"] != nil })
    func oneHotTargetsEqualLabels(_ name: String) throws {
        let vector = MetricsVectors2.named(name)
        let (softStatus, soft) = try post(vector["input"] as! [String: Any], path: "/v1/metrics")
        let (hardStatus, hard) = try post(vector["input_hard"] as! [String: Any], path: "/v1/metrics")
        try #require(softStatus == 200 && hardStatus == 200, "\(soft) \(hard)")
        MetricsVectors2.compare(hard, vector["expected_hard"]!, tol: vector["tol"] as! Double, path: name + " (hard)")
        MetricsVectors2.compare(soft, hard, tol: 0, path: name + " (soft = hard)")
    }

    /// Binary `probs`/`scores` [N] answer exactly what probs [N][2] = [1 − s, s] answers.
    @Test(arguments: MetricsVectors2.names.filter { MetricsVectors2.named($0)["input_equivalent"] != nil })
    func binaryInputEqualsTwoColumns(_ name: String) throws {
        let vector = MetricsVectors2.named(name)
        let (status, json) = try post(vector["input"] as! [String: Any], path: "/v1/metrics")
        let (eqStatus, equivalent) = try post(vector["input_equivalent"] as! [String: Any], path: "/v1/metrics")
        try #require(status == 200 && eqStatus == 200, "\(json) \(equivalent)")
        MetricsVectors2.compare(json, equivalent, tol: 0, path: name)
    }

    /// calibrated_nll is deterministic for a seed, and another seed draws other halvings.
    @Test func calibratedNLLIsDeterministicPerSeed() throws {
        var input = MetricsVectors2.named("calibrated_nll_K3_N20_defaults")["input"] as! [String: Any]
        let (_, first) = try post(input, path: "/v1/metrics")
        let (_, second) = try post(input, path: "/v1/metrics")
        #expect(flat(first["calibrated_nll"]) == flat(second["calibrated_nll"]))
        #expect(flat(first["calibrated_nll_std"]) == flat(second["calibrated_nll_std"]))
        input["params"] = ["seed": 1]
        let (_, other) = try post(input, path: "/v1/metrics")
        #expect(flat(first["calibrated_nll"]) != flat(other["calibrated_nll"]))
    }

    /// The work bound N·C·repeats is a 413 at /params/repeats; opis with soft targets a 422.
    @Test func limitsAndHardLabelOnlyMetrics() throws {
        let rows = 1 << 14
        let big: [String: Any] = [
            "logits": ["shape": [rows, 8], "data": (0..<(rows * 8)).map { Double($0 % 7) }],
            "labels": (0..<rows).map { $0 % 8 }, "metrics": ["calibrated_nll"], "params": ["repeats": 1000],
        ]
        let (status, json) = try post(big, path: "/v1/metrics")
        #expect(status == 413, "\(json)")
        #expect(json["field"] as? String == "/params/repeats")

        let opis: [String: Any] = [
            "logits": [[1, 0], [0, 1], [1, 0], [0, 1]], "targets": [[1, 0], [0, 1], [1, 0], [0, 1]],
            "metrics": ["ece", "opis"], "similarity": [[1, 0, 1, 0], [0, 1, 0, 1], [1, 0, 1, 0], [0, 1, 0, 1]],
            "params": ["d_min": 0, "d_max": 1],
        ]
        let (opisStatus, opisJSON) = try post(opis, path: "/v1/metrics")
        #expect(opisStatus == 422 && opisJSON["field"] as? String == "/targets", "\(opisJSON)")
    }

    /// The SVG diagram takes soft targets and binary input too.
    @Test func reliabilitySVGTakesSoftTargetsAndBinaryInput() throws {
        for name in ["soft_targets_logits_K4_N16", "binary_scores_1d"] {
            let response = try InProcessCall.post(
                "/v1/reliability", MetricsVectors2.named(name)["input"] as! [String: Any], headers: [("Accept", "image/svg+xml")])
            #expect(response.status.code == 200)
            #expect(String(decoding: response.body, as: UTF8.self).hasPrefix("<svg") || String(decoding: response.body, as: UTF8.self).contains("<svg"))
        }
    }
}
