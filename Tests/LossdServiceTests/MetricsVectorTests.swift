import Foundation
import Testing

@testable import LossdService

/// The `metrics` section of calib_vectors.json (docs/calibration.md §2; docs/test-vectors.md),
/// posted in-process to /v1/metrics (and /v1/reliability for the reliability bins).
enum MetricsVectors {
    static var cases: [[String: Any]] {
        let url = Bundle.module.url(forResource: "Vectors/calib_vectors", withExtension: "json")!
        let document = try! JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
        return document["metrics"] as! [[String: Any]]
    }

    static func named(_ name: String) -> [String: Any] { cases.first { $0["name"] as! String == name }! }

    /// "case/key" for every expected value of every case.
    static var checks: [String] {
        cases.flatMap { c in
            (c["expected"] as! [String: Any]).keys.sorted().map { "\(c["name"] as! String)/\($0)" }
        }
    }

    /// The request that reproduces an expected key, and where its answer is in the response.
    static func request(for key: String, input: [String: Any]) -> (path: String, body: [String: Any], answer: String) {
        var body = input
        var params: [String: Any] = [:]
        var answer = key
        let parts = key.split(separator: "_").map(String.init)
        func bins(_ text: String) { params["bins"] = Int(text)! }
        switch key {
        case "accuracy", "nll", "brier":
            body["metrics"] = [key]
        case "brier_unscaled":
            body["metrics"] = ["brier"]
            params["brier_scale_by_half"] = false
            answer = "brier"
        case _ where key.hasPrefix("top_k_accuracy_k"):
            body["metrics"] = ["top_k_accuracy"]
            params["k"] = Int(key.dropFirst("top_k_accuracy_k".count))!
            answer = "top_k_accuracy"
        case _ where key.hasPrefix("ece_"):
            body["metrics"] = ["ece"]
            bins(parts[1])
            params["bin_rule"] = parts[2]
            answer = "ece"
        case _ where key.hasPrefix("mce_"):
            body["metrics"] = ["mce"]
            bins(parts[1])
            answer = "mce"
        case _ where key.hasPrefix("ace_"):
            body["metrics"] = ["ace"]
            bins(parts[1])
            answer = key.hasSuffix("_edges") ? "ace_edges" : "ace"
        case _ where key.hasPrefix("classwise_ece_"):
            body["metrics"] = ["classwise_ece"]
            bins(parts[2])
            answer = key.hasSuffix("_per_class") ? "classwise_ece_per_class" : "classwise_ece"
        case _ where key.hasPrefix("reliability_"):
            bins(parts[1])
            if parts.count > 2 { params["bin_rule"] = parts[2] }
            body["metrics"] = ["ece"]
            return ("/v1/reliability", body.merging(["params": params]) { $1 }, "reliability")
        case "opis_hmean_tpr_tnr", "opis_f1", "classes_used":
            body = ["similarity": input["similarity"]!, "labels": input["labels"]!, "metrics": ["opis"]]
            params = ["d_min": input["d_min"]!, "d_max": input["d_max"]!, "n_thresholds": input["n_thresholds"]!]
            params["utility"] = key == "opis_f1" ? "f1" : "hmean_tpr_tnr"
            answer = key == "classes_used" ? "opis_classes_used" : "opis"
        default:
            Issue.record("no request for expected key \(key)")
        }
        body["params"] = params
        return ("/v1/metrics", body, answer)
    }
}

@Suite("Calibration metric reference vectors")
struct MetricsVectorTests {
    @Test func everyMetricsCaseIsCovered() {
        #expect(MetricsVectors.cases.count == 4)
        #expect(MetricsVectors.checks.count == 31)
    }

    @Test(arguments: MetricsVectors.checks)
    func matchesTheReference(_ check: String) throws {
        let parts = check.split(separator: "/").map(String.init)
        let vector = MetricsVectors.named(parts[0])
        let tol = vector["tol"] as! Double
        let expected = (vector["expected"] as! [String: Any])[parts[1]]!
        let (path, body, answer) = MetricsVectors.request(for: parts[1], input: vector["input"] as! [String: Any])
        let (status, json) = try post(body, path: path)
        try #require(status == 200, "\(check): \(json)")
        if answer == "reliability" {
            let got = (json["reliability"] as! [String: Any])["bins"] as! [[String: Any]]
            let want = expected as! [[String: Any]]
            try #require(got.count == want.count, "\(check): \(got.count) bins, expected \(want.count)")
            for (b, (g, w)) in zip(got, want).enumerated() {
                #expect(g["count"] as? Int == w["count"] as? Int, "\(check) bin \(b) count")
                for key in ["lower", "upper", "confidence", "accuracy"] {
                    if w[key] is NSNull {
                        #expect(g[key] is NSNull, "\(check) bin \(b) \(key) should be null")
                    } else {
                        let gv = flat(g[key]), wv = flat(w[key])
                        #expect(gv.count == 1 && abs(gv[0] - wv[0]) <= tol, "\(check) bin \(b) \(key): \(gv) vs \(wv)")
                    }
                }
            }
            return
        }
        let got = flat(json[answer]), want = flat(expected)
        #expect(got.count == want.count, "\(check): \(json)")
        for (g, w) in zip(got, want) { #expect(abs(g - w) <= tol, "\(check): \(g) vs \(w)") }
    }
}
