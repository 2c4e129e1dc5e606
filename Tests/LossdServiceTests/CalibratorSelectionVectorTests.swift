import Foundation
import LossdHTTP
import Testing

@testable import LossdService

/// The `calibrators_select` cases of metrics_vectors_2.json (scripts/reference-metrics-2.py,
/// "Calibrator selection"): the fold-independent winner and the request errors.
@Suite("Calibrator selection reference vectors")
struct CalibratorSelectionVectorTests {
    static var cases: [[String: Any]] { vectorFile("metrics_vectors_2")["calibrators_select"] as! [[String: Any]] }

    @Test func everyCaseIsPresent() {
        #expect(Self.cases.count == 11)
    }

    @Test(arguments: cases.map { $0["name"] as! String })
    func vector(_ name: String) throws {
        let vector = try #require(Self.cases.first { $0["name"] as? String == name })
        let input = try #require(vector["input"] as? [String: Any])
        let (status, json) = try InProcessCall.postJSON("/v1/calibrators/select", input)
        if let error = vector["expected_error"] as? [String: Any] {
            #expect(status == error["status"] as? Int, "\(name): \(json)")
            #expect(code(json) == error["code"] as? String, "\(name): \(json)")
            #expect(json["field"] as? String == error["field"] as? String, "\(name): \(json)")
            return
        }
        #expect(status == 200, "\(name): \(json)")
        let tol = vector["tol"] as? Double ?? 1e-9
        let expected = try #require((vector["expected"] as? [String: Any])?["best"] as? [String: Any])
        let best = try #require(json["best"] as? [String: Any])
        #expect(best["method"] as? String == expected["method"] as? String)
        let params = try #require(best["params"] as? [String: Any])
        for (key, value) in try #require(expected["params"] as? [String: Any]) {
            let want = try #require(value as? Double), got = try #require(params[key] as? Double, "\(key)")
            #expect(abs(got - want) <= tol * max(1, abs(want)), "\(name): \(key) = \(got), expected \(want)")
        }
        #expect(best["fitted_on"] as? Int == (input["labels"] as? [Any])?.count)
        let ranking = try #require(json["ranking"] as? [[String: Any]])
        let structure = try #require((vector["expected_structure"] as? [String: Any])?["ranking"] as? [[String: Any]])
        #expect(ranking.count == structure.count)
        for (got, want) in zip(ranking, structure) {
            #expect(got["method"] as? String == want["method"] as? String)
            #expect((got["per_fold"] as? [Any])?.count == want["per_fold_length"] as? Int)
            #expect((got["fit_failures"] as? [Any])?.count == want["fit_failures"] as? Int)
        }
    }

    /// A small 3-class problem every multi-class method fits.
    static var small: [String: Any] {
        let first = cases[0]["input"] as! [String: Any]
        return ["logits": first["logits"]!, "labels": first["labels"]!, "folds": 3]
    }

    @Test func defaultsTryEveryMultiClassMethodRankedAndDeterministic() throws {
        let (status, json) = try InProcessCall.postJSON("/v1/calibrators/select", Self.small)
        #expect(status == 200, "\(json)")
        let ranking = try #require(json["ranking"] as? [[String: Any]])
        let methods = Set(ranking.compactMap { $0["method"] as? String })
        #expect(methods == ["temperature", "histogram", "isotonic", "vector", "ensemble_temperature", "matrix", "dirichlet"])
        let means = ranking.compactMap { $0["mean"] as? Double }
        #expect(means == means.sorted())
        #expect((json["fold_sizes"] as? [Int]) == [8, 8, 8])
        #expect((json["uncalibrated"] as? [String: Any])?["mean"] is Double)
        #expect((json["best"] as? [String: Any])?["method"] as? String == ranking.first?["method"] as? String)
        // Deterministic for a seed: the same ranking again, and another seed other folds.
        let (_, again) = try InProcessCall.postJSON("/v1/calibrators/select", Self.small)
        #expect(try canonical(json["ranking"]) == canonical(again["ranking"]))
        var reseeded = Self.small
        reseeded["seed"] = 7
        let (_, other) = try InProcessCall.postJSON("/v1/calibrators/select", reseeded)
        #expect(try canonical((other["uncalibrated"] as? [String: Any])?["per_fold"]) != canonical((json["uncalibrated"] as? [String: Any])?["per_fold"]))
    }

    /// The error code of a problem document (`type` is `urn:lossd:error:<code>`).
    func code(_ problem: [String: Any]) -> String? {
        (problem["type"] as? String).map { String($0.dropFirst("urn:lossd:error:".count)) }
    }

    func canonical(_ value: Any?) throws -> String {
        String(decoding: try JSONSerialization.data(withJSONObject: value ?? NSNull(), options: [.sortedKeys, .fragmentsAllowed]), as: UTF8.self)
    }

    @Test func binaryInputAddsPlattAndBetaAndScoresWork() throws {
        var logits: [[Double]] = []
        for i in 0..<20 {
            let shift: Double = i % 2 == 0 ? 0.8 : -0.8
            logits.append([0, Double(i % 7) - 3 + shift])
        }
        let labels = (0..<20).map { $0 % 2 == 0 ? 1 : 0 }
        let (status, json) = try InProcessCall.postJSON("/v1/calibrators/select", ["logits": logits, "labels": labels, "folds": 2])
        #expect(status == 200, "\(json)")
        let methods = Set((json["ranking"] as? [[String: Any]] ?? []).compactMap { $0["method"] as? String })
        #expect(methods.isSuperset(of: ["platt", "beta", "temperature"]))
        let scores = logits.map { $0[1] }
        let (s2, j2) = try InProcessCall.postJSON("/v1/calibrators/select", ["scores": scores, "labels": labels, "folds": 2, "metric": "brier"])
        #expect(s2 == 200, "\(j2)")
        // Scores outside [0, 1] are logits: platt only.
        #expect((j2["ranking"] as? [[String: Any]])?.compactMap { $0["method"] as? String } == ["platt"])
    }

    @Test func errorsNamedByPointer() throws {
        var body = Self.small
        body["params"] = ["vector": ["l2": 1]]
        body["methods"] = ["temperature"]
        #expect(try InProcessCall.postJSON("/v1/calibrators/select", body).json["field"] as? String == "/params/vector")
        body["params"] = ["tempreature": [:]]
        let typo = try InProcessCall.postJSON("/v1/calibrators/select", body)
        #expect(typo.status == 422 && code(typo.json) == "unknown_field" && typo.json["field"] as? String == "/params/tempreature")
        body = Self.small
        body["folds"] = 30
        #expect(try InProcessCall.postJSON("/v1/calibrators/select", body).json["field"] as? String == "/folds")
        body = Self.small
        body["methods"] = ["temperature", "temperature"]
        #expect(try InProcessCall.postJSON("/v1/calibrators/select", body).json["field"] as? String == "/methods/1")
        body = Self.small
        body["bogus"] = 1
        #expect(try InProcessCall.postJSON("/v1/calibrators/select", body).json["field"] as? String == "/bogus")
    }

    @Test func costGuardIs413() throws {
        #expect(throws: Never.self) { try CalibratorSelection.checkCost(rows: 10_000, classes: 100, folds: 5, methods: 7) }
        let error = #expect(throws: ServiceError.self) { try CalibratorSelection.checkCost(rows: 50_000, classes: 1000, folds: 6, methods: 1) }
        #expect(error?.status.code == 413 && error?.code == "content_too_large")
    }

    @Test func svgAnswer() throws {
        let response = try InProcessCall.post("/v1/calibrators/select", Self.small, headers: [("Accept", "image/svg+xml")])
        #expect(response.status.code == 200)
        #expect(response.headers["content-type"]?.hasPrefix("image/svg+xml") == true)
        let svg = String(decoding: response.body, as: UTF8.self)
        #expect(svg.contains("<svg") && svg.contains("uncalibrated") && svg.contains("temperature"))
    }

    @Test func tieOrderCoversTheCatalogue() {
        #expect(Set(CalibratorCatalogue.simplestFirst) == Set(CalibratorCatalogue.all.map(\.name)))
        #expect(CalibratorCatalogue.simplestFirst.count == CalibratorCatalogue.all.count)
    }
}
