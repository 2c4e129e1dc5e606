import Foundation
import LossdTestSupport
import Testing

#if canImport(FoundationXML)
    import FoundationXML
#endif

/// `/v1/metrics` and `/v1/reliability` through the real binary.
@Suite("lossd /v1/metrics and /v1/reliability over real sockets")
struct MetricsEndpointTests {
    func post(_ lossd: LossdProcess, _ path: String, _ json: String, accept: String? = nil) throws -> WireResponse {
        try lossd.postJSON(path, json, accept: accept)
    }

    static let logits = "[[2.0, 0.5, -1.0], [0.1, 0.2, 0.3], [0.0, 3.0, 1.0], [1.5, 1.5, -2.0], [-1.0, 0.0, 2.5], [0.3, 0.1, 0.2]]"
    static let labels = "[0, 2, 1, 1, 2, 0]"
    static let probs = "[[0.7, 0.2, 0.1], [0.3, 0.3, 0.4], [0.1, 0.8, 0.1], [0.5, 0.4, 0.1], [0.2, 0.2, 0.6], [0.6, 0.3, 0.1]]"
    static let similarity = "[[1, 0.9, 0.1, 0.2], [0.9, 1, 0.2, 0.1], [0.1, 0.2, 1, 0.4], [0.2, 0.1, 0.4, 1]]"

    @Test(arguments: ["ece", "ace", "mce", "classwise_ece", "brier", "nll", "accuracy", "top_k_accuracy"])
    func eachMetricAnswers(_ metric: String) throws {
        let lossd = try LossdProcess()
        for input in [#""logits": \#(Self.logits)"#, #""probs": \#(Self.probs)"#] {
            let response = try post(
                lossd, "/v1/metrics", #"{\#(input), "labels": \#(Self.labels), "metrics": ["\#(metric)"], "params": {"k": 2}}"#)
            #expect(response.status == 200, "\(response.bodyText)")
            #expect(response.header("content-type") == "application/json")
            let value = try #require(response.json?[metric] as? Double, "\(response.bodyText)")
            #expect(value.isFinite && value >= 0)
            #expect(response.json?["n"] as? Int == 6)
        }
    }

    @Test func defaultMetricsAndOPIS() throws {
        let lossd = try LossdProcess()
        let defaults = try post(lossd, "/v1/metrics", #"{"logits": \#(Self.logits), "labels": \#(Self.labels)}"#)
        #expect(defaults.status == 200, "\(defaults.bodyText)")
        for key in ["ece", "nll", "brier", "accuracy"] { #expect(defaults.json?[key] is Double, "\(key)") }
        #expect(defaults.json?["reliability"] == nil)

        let opis = try post(
            lossd, "/v1/metrics",
            #"{"similarity": \#(Self.similarity), "labels": [0, 0, 1, 1], "metrics": ["opis"], "params": {"d_min": 0, "d_max": 1, "n_thresholds": 3}}"#)
        #expect(opis.status == 200, "\(opis.bodyText)")
        let value = try #require(opis.json?["opis"] as? Double)
        #expect(abs(value - 1.0 / 12) < 1e-12)
        #expect(opis.json?["opis_classes_used"] as? [Int] == [0, 1])
    }

    @Test func reliabilityJSON() throws {
        let lossd = try LossdProcess()
        let viaMetrics = try post(
            lossd, "/v1/metrics", #"{"logits": \#(Self.logits), "labels": \#(Self.labels), "reliability": true, "params": {"bins": 10}}"#)
        let viaReliability = try post(
            lossd, "/v1/reliability", #"{"logits": \#(Self.logits), "labels": \#(Self.labels), "params": {"bins": 10}}"#)
        for response in [viaMetrics, viaReliability] {
            #expect(response.status == 200, "\(response.bodyText)")
            #expect(response.header("content-type") == "application/json")
            let reliability = try #require(response.json?["reliability"] as? [String: Any])
            let bins = try #require(reliability["bins"] as? [[String: Any]])
            #expect(bins.count == 10)
            #expect(bins.map { $0["count"] as? Int ?? -1 }.reduce(0, +) == 6)
            #expect(bins.contains { $0["accuracy"] is NSNull && $0["confidence"] is NSNull && $0["count"] as? Int == 0 })
            #expect(bins.first?["lower"] as? Double == 0 && bins.last?["upper"] as? Double == 1)
        }
        #expect(viaMetrics.bodyText == viaReliability.bodyText)
    }

    @Test func reliabilitySVG() throws {
        let lossd = try LossdProcess()
        let response = try post(
            lossd, "/v1/reliability", #"{"logits": \#(Self.logits), "labels": \#(Self.labels)}"#, accept: "image/svg+xml")
        #expect(response.status == 200, "\(response.bodyText)")
        #expect(response.header("content-type")?.hasPrefix("image/svg+xml") == true)
        let text = response.bodyText
        #expect(text.contains(#"xmlns="http://www.w3.org/2000/svg""#))
        #expect(text.contains("viewBox=") && text.contains("width=") && text.contains("height="))
        #expect(text.contains("ECE = ") && text.contains("N = 6"))

        final class Root: NSObject, XMLParserDelegate {
            var first: String?
            var elements = 0
            func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?, attributes: [String: String] = [:]) {
                if first == nil { first = name }
                elements += 1
            }
        }
        let parser = XMLParser(data: Data(response.body))
        let root = Root()
        parser.delegate = root
        #expect(parser.parse(), "SVG is not well-formed XML: \(String(describing: parser.parserError))")
        #expect(root.first == "svg")
        #expect(root.elements > 20)

        // Without the Accept header (or preferring JSON) the answer is JSON.
        let json = try post(
            lossd, "/v1/reliability", #"{"logits": \#(Self.logits), "labels": \#(Self.labels)}"#,
            accept: "application/json, image/svg+xml;q=0.5")
        #expect(json.header("content-type") == "application/json")
    }

    /// Soft targets, binary `scores`, rmsce and calibrated NLL through the real binary: one-hot
    /// targets answer what labels answer, `scores` [N] what probs [N][2] answer, the same seed
    /// the same calibrated NLL, and the diagram takes soft targets.
    @Test func softTargetsBinaryInputAndCalibratedNLL() throws {
        let lossd = try LossdProcess()
        let all = #"["nll", "brier", "accuracy", "top_k_accuracy", "ece", "mce", "ace", "classwise_ece", "rmsce", "target_entropy", "kl"]"#
        let oneHot = "[[1, 0, 0], [0, 0, 1], [0, 1, 0], [0, 1, 0], [0, 0, 1], [1, 0, 0]]"
        let hard = try post(lossd, "/v1/metrics", #"{"logits": \#(Self.logits), "labels": \#(Self.labels), "metrics": \#(all)}"#)
        let soft = try post(lossd, "/v1/metrics", #"{"logits": \#(Self.logits), "targets": \#(oneHot), "metrics": \#(all)}"#)
        #expect(hard.status == 200 && soft.status == 200, "\(hard.bodyText) \(soft.bodyText)")
        #expect(hard.bodyText == soft.bodyText)
        #expect(soft.json?["target_entropy"] as? Double == 0)
        #expect(soft.json?["kl"] as? Double == soft.json?["nll"] as? Double)

        let votes = "[[0.6, 0.2, 0.2], [0.1, 0.3, 0.6], [0, 0.9, 0.1], [0.5, 0.5, 0], [0, 0, 1], [0.4, 0.3, 0.3]]"
        let crowd = try post(lossd, "/v1/metrics", #"{"logits": \#(Self.logits), "targets": \#(votes), "metrics": \#(all), "reliability": true}"#)
        #expect(crowd.status == 200, "\(crowd.bodyText)")
        let entropy = try #require(crowd.json?["target_entropy"] as? Double)
        let nll = try #require(crowd.json?["nll"] as? Double), kl = try #require(crowd.json?["kl"] as? Double)
        #expect(entropy > 0 && abs(kl - (nll - entropy)) < 1e-15 && kl >= 0)
        let svg = try post(lossd, "/v1/reliability", #"{"logits": \#(Self.logits), "targets": \#(votes)}"#, accept: "image/svg+xml")
        #expect(svg.status == 200 && svg.bodyText.contains("<svg"), "\(svg.bodyText)")

        let s = "[0.9, 0.2, 0.65, 0.4, 0.5, 0.05]", y = "[1, 0, 1, 1, 0, 0]"
        let twoColumns = "[[0.09999999999999998, 0.9], [0.8, 0.2], [0.35, 0.65], [0.6, 0.4], [0.5, 0.5], [0.95, 0.05]]"
        let binary = try post(lossd, "/v1/metrics", #"{"scores": \#(s), "labels": \#(y), "metrics": ["nll", "brier", "ece", "rmsce"]}"#)
        let matrix = try post(lossd, "/v1/metrics", #"{"probs": \#(twoColumns), "labels": \#(y), "metrics": ["nll", "brier", "ece", "rmsce"]}"#)
        #expect(binary.status == 200 && binary.bodyText == matrix.bodyText, "\(binary.bodyText) \(matrix.bodyText)")

        let body = #"{"logits": \#(Self.logits), "labels": \#(Self.labels), "metrics": ["calibrated_nll"], "params": {"repeats": 3, "seed": 11}}"#
        let first = try post(lossd, "/v1/metrics", body), second = try post(lossd, "/v1/metrics", body)
        #expect(first.status == 200, "\(first.bodyText)")
        let value = try #require(first.json?["calibrated_nll"] as? Double)
        #expect(value.isFinite && value > 0 && (first.json?["calibrated_nll_std"] as? Double ?? -1) >= 0)
        #expect(first.bodyText == second.bodyText)
        let refused = try post(lossd, "/v1/metrics", #"{"probs": \#(Self.probs), "labels": \#(Self.labels), "metrics": ["calibrated_nll"]}"#)
        #expect(refused.status == 422 && refused.json?["field"] as? String == "/logits", "\(refused.bodyText)")
    }

    @Test(arguments: [
        (#"{"logits": \#(logits), "probs": \#(probs), "labels": \#(labels)}"#, "/probs", "invalid_input"),
        (#"{"labels": \#(labels)}"#, "/logits", "missing_field"),
        (#"{"logits": \#(logits)}"#, "/labels", "missing_field"),
        (#"{"logits": \#(logits), "labels": [0, 2, 1, 1, 3, 0]}"#, "/labels/4", "invalid_label"),
        (#"{"logits": \#(logits), "labels": [0, 2]}"#, "/labels", "invalid_shape"),
        (#"{"logits": [[1.0], [2.0]], "labels": [0, 0]}"#, "/logits", "invalid_shape"),
        (#"{"logits": [[1.0, 2.0], [2.0]], "labels": [0, 0]}"#, "/logits/1", "invalid_shape"),
        (#"{"logits": [[1.0, 1e400], [2.0, 0]], "labels": [0, 0]}"#, "/logits/0/1", "non_finite"),
        (#"{"probs": [[0.5, 0.6], [0.5, 0.5]], "labels": [0, 0]}"#, "/probs", "invalid_input"),
        (#"{"probs": [[1.5, -0.5], [0.5, 0.5]], "labels": [0, 0]}"#, "/probs", "invalid_input"),
        (#"{"logits": \#(logits), "labels": \#(labels), "params": {"bins": 0}}"#, "/params/bins", "invalid_param"),
        (#"{"logits": \#(logits), "labels": \#(labels), "params": {"bins": 10001}}"#, "/params/bins", "invalid_param"),
        (#"{"logits": \#(logits), "labels": \#(labels), "params": {"bins": 2.5}}"#, "/params/bins", "invalid_param"),
        (#"{"logits": \#(logits), "labels": \#(labels), "params": {"k": 0}}"#, "/params/k", "invalid_param"),
        (#"{"logits": \#(logits), "labels": \#(labels), "params": {"bin_rule": "middle"}}"#, "/params/bin_rule", "invalid_param"),
        (#"{"logits": \#(logits), "labels": \#(labels), "params": {"brier_scale_by_half": "yes"}}"#, "/params/brier_scale_by_half", "invalid_param"),
        (#"{"logits": \#(logits), "labels": \#(labels), "metrics": ["ece", "auc"]}"#, "/metrics/1", "invalid_param"),
        (#"{"logits": \#(logits), "labels": \#(labels), "metrics": "ece"}"#, "/metrics", "invalid_param"),
        (#"{"logits": \#(logits), "labels": \#(labels), "reliability": "yes"}"#, "/reliability", "invalid_param"),
        (#"{"similarity": [[1, 0.5], [0.5, 1]], "labels": [0, 1], "metrics": ["opis"], "params": {"d_min": 0, "d_max": 1}}"#, "/similarity", "invalid_shape"),
        (#"{"similarity": \#(similarity), "labels": [0, 0, 1, 1], "metrics": ["opis"], "params": {"d_min": 1, "d_max": 0}}"#, "/params/d_max", "invalid_param"),
        (#"{"similarity": \#(similarity), "labels": [0, 0, 1, 1], "metrics": ["opis"], "params": {"d_max": 1}}"#, "/params/d_min", "invalid_param"),
        (#"{"similarity": \#(similarity), "labels": [0, 0, 1, 1], "metrics": ["opis"], "params": {"d_min": 0, "d_max": 1, "n_thresholds": 1}}"#, "/params/n_thresholds", "invalid_param"),
        (#"{"labels": [0, 0, 1, 1], "metrics": ["opis"], "params": {"d_min": 0, "d_max": 1}}"#, "/similarity", "missing_field"),
    ])
    func invalidRequestsName422AndField(_ json: String, _ field: String, _ code: String) throws {
        let lossd = try LossdProcess()
        // A reliability diagram needs logits or probs, so opis-only requests are checked
        // on /v1/metrics (on /v1/reliability they are 422 too, for a bad param or `/logits`).
        let opisOnly = json.contains(#""metrics": ["opis"]"#)
        if opisOnly {
            let response = try post(lossd, "/v1/reliability", json)
            #expect(response.status == 422, "\(response.bodyText)")
            let field = response.json?["field"] as? String
            #expect(field == "/logits" || field?.hasPrefix("/params/") == true, "\(response.bodyText)")
        }
        for path in opisOnly ? ["/v1/metrics"] : ["/v1/metrics", "/v1/reliability"] {
            let response = try post(lossd, path, json)
            #expect(response.status == 422, "\(path) \(json): \(response.bodyText)")
            #expect(response.header("content-type") == "application/problem+json")
            #expect(response.json?["field"] as? String == field, "\(json): \(response.bodyText)")
            #expect(response.json?["type"] as? String == "urn:lossd:error:\(code)", "\(json): \(response.bodyText)")
        }
    }
}
