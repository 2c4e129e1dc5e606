import Foundation
import Testing

@testable import LossdService

/// The `aggregation` section of Vectors/calib_vectors.json (docs/aggregation.md), posted in-process.
enum AggregationVectors {
    static var cases: [[String: Any]] {
        let url = Bundle.module.url(forResource: "Vectors/calib_vectors", withExtension: "json")!
        let document = try! JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
        return document["aggregation"] as! [[String: Any]]
    }

    static var names: [String] { cases.map { $0["name"] as! String } }

    static let methods = [
        "majority_vote", "frequency", "softmax", "dawid_skene", "glad", "mace", "wawa", "zero_based_skill", "average",
    ]

    /// Every (case, method) pair.
    static var pairs: [String] { names.flatMap { n in methods.map { "\(n)/\($0)" } } }

    static func named(_ name: String) -> [String: Any] { cases.first { $0["name"] as! String == name }! }

    /// The request body of a case for one method; the case's `items` become `params.items`.
    static func body(_ vector: [String: Any], method: String) -> [String: Any] {
        let input = vector["input"] as! [String: Any]
        var body: [String: Any] = [
            "method": method, "num_classes": input["num_classes"]!, "annotations": input["annotations"]!,
        ]
        if let items = input["items"] { body["params"] = ["items": items] }
        return body
    }
}

/// Posts to /v1/aggregate.
func aggregate(_ body: [String: Any]) throws -> (status: Int, json: [String: Any]) {
    try post(body, path: "/v1/aggregate")
}

/// Ids compare by JSON type: 1 and "1" differ.
func sameIDs(_ got: Any?, _ want: Any?) -> Bool {
    guard let g = got as? [Any], let w = want as? [Any], g.count == w.count else { return false }
    return zip(g, w).allSatisfy { a, b in
        if let s = b as? String { return (a as? String) == s }
        if a is String { return false }
        return (a as? NSNumber)?.intValue == (b as? NSNumber)?.intValue
    }
}

@Suite("Aggregation reference vectors")
struct AggregationVectorTests {
    @Test func everyCaseIsPresent() {
        #expect(AggregationVectors.cases.count == 6)
    }

    @Test(arguments: AggregationVectors.pairs)
    func matchesTheReference(_ pair: String) throws {
        let parts = pair.split(separator: "/").map(String.init)
        let vector = AggregationVectors.named(parts[0])
        let method = parts[1]
        let expected = vector["expected"] as! [String: Any]
        let want = expected[method] as! [String: Any]
        let tolerances = vector["tol"] as! [String: Double]
        let tol = tolerances[method] ?? tolerances["default"]!

        let (status, json) = try aggregate(AggregationVectors.body(vector, method: method))
        try #require(status == 200, "\(json)")
        #expect(json["method"] as? String == method)
        #expect(sameIDs(json["items"], expected["items"]), "items \(json["items"] ?? "nil")")
        let annotators = json["annotators"] as! [String: Any]
        let ids = annotators["ids"] as! [Any]
        #expect(sameIDs(ids, expected["annotator_ids"]), "annotators \(ids)")

        let soft = flat(json["soft_labels"]), wantSoft = flat(want["soft"])
        #expect(soft.count == wantSoft.count)
        for (g, w) in zip(soft, wantSoft) { #expect(abs(g - w) <= tol, "soft: \(g) vs \(w)") }
        // Rows sum to 1.
        let k = vector["input"].flatMap { ($0 as! [String: Any])["num_classes"] as? Int }!
        for r in 0..<(soft.count / k) {
            #expect(abs(soft[(r * k)..<((r + 1) * k)].reduce(0, +) - 1) < 1e-12)
        }

        let labels = (json["labels"] as! [Any]).map { ($0 as! NSNumber).intValue }
        if let wantHard = want["hard"] as? [Int] {
            if method == "glad" {
                // Hard labels must agree where the reference's top two differ by more than 1e-2.
                for (r, w) in wantHard.enumerated() {
                    let row = Array(wantSoft[(r * k)..<((r + 1) * k)]).sorted(by: >)
                    if row[0] - row[1] > 1e-2 { #expect(labels[r] == w, "glad hard label of row \(r)") }
                }
            } else {
                #expect(labels == wantHard)
            }
        }

        if let iterations = want["iterations"] as? Int { #expect(json["iterations"] as? Int == iterations, "iterations") }
        if let converged = want["converged"] as? Bool { #expect(json["converged"] as? Bool == converged, "converged") }
        let skill = flat(annotators["skill"])
        func compare(_ got: [Double], _ want: [Double], _ what: String, _ tol: Double) {
            #expect(got.count == want.count, "\(what) size")
            for (g, w) in zip(got, want) { #expect(abs(g - w) <= tol, "\(what): \(g) vs \(w)") }
        }
        if let priors = want["priors"] { compare(flat(json["priors"]), flat(priors), "priors", tol) }
        if let confusion = want["confusion"] { compare(flat(annotators["confusion"]), flat(confusion), "confusion", tol) }
        if method == "dawid_skene", let s = want["skill"] { compare(skill, flat(s), "skill", tol) }
        if method == "glad", let alpha = want["alpha"] { compare(skill, flat(alpha), "alpha", 0.05) }
        // Per-annotator dictionaries (mace competence, wawa/zbs skill) by id.
        if let byID = (want["competence"] ?? (method == "dawid_skene" ? nil : want["skill"])) as? [String: Any] {
            for (i, id) in ids.enumerated() {
                let key = (id as? String) ?? "\((id as! NSNumber).intValue)"
                if let w = byID[key] { compare([skill[i]], flat(w), "skill of \(key)", tol) }
            }
        }
    }

    // MARK: Validation

    static var triples: [[Any]] { [[0, "a", 0], [0, "b", 1], [1, "a", 1]] }

    func expectError(_ body: [String: Any], status: Int = 422, code: String, field: String) throws {
        let (got, json) = try aggregate(body)
        #expect(got == status, "\(json)")
        #expect(json["type"] as? String == "urn:lossd:error:\(code)", "\(json)")
        #expect(json["field"] as? String == field, "\(json)")
    }

    @Test func labelOutOfRangeNamesTheElement() throws {
        try expectError(
            ["method": "frequency", "num_classes": 2, "annotations": [[0, 1, 0], [1, 1, 1], [2, 3, 2]]],
            code: "invalid_label", field: "/annotations/2/2")
        try expectError(
            ["method": "frequency", "num_classes": 2, "annotations": [[0, "a", 0], [1, "a", -1]]],
            code: "invalid_label", field: "/annotations/1/2")
        try expectError(
            ["method": "frequency", "num_classes": 2, "annotations": [[0, "a", 0], [1, "a", 0.5]]],
            code: "invalid_label", field: "/annotations/1/2")
        try expectError(
            ["method": "frequency", "num_classes": 2, "annotations": [[0, "a", "1"]]],
            code: "invalid_label", field: "/annotations/0/2")
    }

    @Test func emptyAnnotations() throws {
        try expectError(["method": "wawa", "num_classes": 2, "annotations": [Any]()], code: "invalid_shape", field: "/annotations")
        try expectError(["method": "wawa", "num_classes": 2], code: "missing_field", field: "/annotations")
        try expectError(["method": "wawa", "num_classes": 2, "annotations": "x"], code: "invalid_shape", field: "/annotations")
    }

    @Test func badTriples() throws {
        try expectError(
            ["method": "dawid_skene", "num_classes": 2, "annotations": [[0, 1, 0], [1, 1]]],
            code: "invalid_shape", field: "/annotations/1")
        try expectError(
            ["method": "dawid_skene", "num_classes": 2, "annotations": [[0, 1, 0, 1], [1, 1, 0, 1]]],
            code: "invalid_shape", field: "/annotations/0")
        try expectError(
            ["method": "dawid_skene", "num_classes": 2, "annotations": [[0, "a", 0], ["x"], [1, "b", 1]]],
            code: "invalid_shape", field: "/annotations/1")
        try expectError(
            ["method": "dawid_skene", "num_classes": 2, "annotations": [[0, "a", 0], 7]],
            code: "invalid_shape", field: "/annotations/1")
    }

    @Test func badIDTypes() throws {
        try expectError(
            ["method": "mace", "num_classes": 2, "annotations": [[0, "a", 0], [NSNull(), "a", 1]]],
            code: "invalid_input", field: "/annotations/1/0")
        try expectError(
            ["method": "mace", "num_classes": 2, "annotations": [[0, "a", 0], [1, true, 1]]],
            code: "invalid_input", field: "/annotations/1/1")
        try expectError(
            ["method": "mace", "num_classes": 2, "annotations": [[0, 1, 0], [1.5, 2, 1]]],
            code: "invalid_input", field: "/annotations/1/0")
        try expectError(
            ["method": "mace", "num_classes": 2, "annotations": [[0, "a", 0], [1, ["k": 1], 1]]],
            code: "invalid_input", field: "/annotations/1/1")
    }

    @Test func methodClassesAndParams() throws {
        try expectError(["method": "vote", "num_classes": 2, "annotations": Self.triples], code: "invalid_param", field: "/method")
        try expectError(["num_classes": 2, "annotations": Self.triples], code: "missing_field", field: "/method")
        try expectError(["method": "glad", "num_classes": 1, "annotations": Self.triples], code: "invalid_param", field: "/num_classes")
        try expectError(["method": "glad", "num_classes": 10001, "annotations": Self.triples], code: "invalid_param", field: "/num_classes")
        try expectError(
            ["method": "dawid_skene", "num_classes": 2, "annotations": Self.triples, "params": ["n_iter": 0]],
            code: "invalid_param", field: "/params/n_iter")
        try expectError(
            ["method": "softmax", "num_classes": 2, "annotations": Self.triples, "params": ["temperature": 0]],
            code: "invalid_param", field: "/params/temperature")
        try expectError(
            ["method": "average", "num_classes": 2, "annotations": Self.triples, "params": ["methods": ["wawa", "average"]]],
            code: "invalid_param", field: "/params/methods/1")
        try expectError(
            ["method": "average", "num_classes": 2, "annotations": Self.triples, "params": ["methods": ["wawa", "glad"], "weights": [1]]],
            code: "invalid_param", field: "/params/weights")
        try expectError(
            ["method": "average", "num_classes": 2, "annotations": Self.triples, "params": ["mace": ["method": "gibbs"]]],
            code: "invalid_param", field: "/params/mace/method")
    }

    @Test func explicitItems() throws {
        try expectError(
            ["method": "frequency", "num_classes": 2, "annotations": Self.triples, "params": ["items": [0]]],
            code: "invalid_input", field: "/params/items")
        try expectError(
            ["method": "frequency", "num_classes": 2, "annotations": Self.triples, "params": ["items": [0, 1, 0]]],
            code: "invalid_input", field: "/params/items/2")
        let (status, json) = try aggregate(
            ["method": "frequency", "num_classes": 2, "annotations": Self.triples, "params": ["items": ["z", 1, 0]]])
        #expect(status == 200)
        #expect(sameIDs(json["items"], ["z", 1, 0]))
        #expect(flat(json["soft_labels"]) == [0.5, 0.5, 0, 1, 0.5, 0.5])
        #expect((json["labels"] as? [Int]) == [-1, 1, 0])
    }

    @Test func intAndStringIDsAreDistinct() throws {
        let (status, json) = try aggregate(
            ["method": "majority_vote", "num_classes": 3, "annotations": [[1, 1, 0], ["1", "1", 2], [1, "1", 0]]])
        #expect(status == 200)
        #expect(sameIDs(json["items"], [1, "1"]))
        #expect(sameIDs((json["annotators"] as! [String: Any])["ids"], [1, "1"]))
        #expect((json["labels"] as? [Int]) == [0, 2])
    }

    @Test func tooLargeIs413() throws {
        let items = Array(0..<2000)
        try expectError(
            ["method": "frequency", "num_classes": 10000, "annotations": [[0, 0, 1]], "params": ["items": items]],
            status: 413, code: "content_too_large", field: "/params/items")
    }

    @Test func averageReportsComponents() throws {
        let (status, json) = try aggregate(
            ["method": "average", "num_classes": 2, "annotations": Self.triples,
             "params": ["methods": ["frequency", "wawa"], "weights": [3, 1]]])
        #expect(status == 200)
        #expect(flat(json["weights"]) == [0.75, 0.25])
        let components = json["components"] as? [String: Any]
        #expect(components?.keys.sorted() == ["frequency", "wawa"])
    }
}

/// GLAD against crowd-kit 1.4.2 on simulated crowds larger than those of calib_vectors.json
/// (scripts/crowdkit-glad-vectors.py). Matching them needs SciPy's exact M-step: its CG's
/// MINPACK line search first, Nocedal–Wright only when that fails; with the second alone
/// the soft labels differed by up to 1.9e-2.
@Suite("GLAD against crowd-kit on larger crowds")
struct CrowdKitGLADTests {
    static var cases: [[String: Any]] {
        let url = Bundle.module.url(forResource: "Vectors/crowd_glad_vectors", withExtension: "json")!
        let document = try! JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
        return document["cases"] as! [[String: Any]]
    }

    @Test(arguments: cases.map { $0["name"] as! String })
    func softLabelsMatchCrowdKit(_ name: String) throws {
        let vector = Self.cases.first { $0["name"] as! String == name }!
        let (status, json) = try aggregate([
            "method": "glad", "num_classes": vector["num_classes"]!, "annotations": vector["annotations"]!,
        ])
        #expect(status == 200)
        let got = json["soft_labels"] as? [[Double]] ?? []
        let want = vector["glad_soft_labels"] as! [[Double]]
        #expect(got.count == want.count)
        var worst = 0.0
        for (g, w) in zip(got, want) {
            for (a, b) in zip(g, w) { worst = max(worst, abs(a - b)) }
        }
        // calib_vectors.json's GLAD cases allow 5e-3; the port follows SciPy's iterates to
        // round-off.
        #expect(worst < 1e-6, "max |soft − crowd-kit| = \(worst)")
    }
}
