import Foundation
import Testing

@testable import LossdService

/// The `ensemble` section of calib_vectors.json (docs/ensembles.md §2–§3; docs/test-vectors.md),
/// posted in-process.
enum EnsembleVectors {
    static var cases: [[String: Any]] {
        let url = Bundle.module.url(forResource: "Vectors/calib_vectors", withExtension: "json")!
        let document = try! JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
        return document["ensemble"] as! [[String: Any]]
    }

    static var names: [String] { cases.map { $0["name"] as! String } }

    static func named(_ name: String) -> [String: Any] { cases.first { $0["name"] as! String == name }! }

    /// The vector's baseline keys and the request each stands for.
    static let baselineRequests: [String: (method: String, weighted: Bool)] = [
        "mean_logits": ("mean_logits", false),
        "mean_probs": ("mean_probs", false),
        "geometric_mean": ("geometric_mean", false),
        "median_logits": ("median_logits", false),
        "majority_vote": ("majority_vote", false),
        "weighted_probs": ("mean_probs", true),
        "weighted_logits": ("mean_logits", true),
    ]
}

func postEnsemble(_ body: [String: Any]) throws -> (status: Int, json: [String: Any]) {
    try post(body, path: "/v1/ensemble")
}

/// Compares every key of `expected` that the response carries (`predicted` is `predictions`).
func expectMatches(_ json: [String: Any], _ expected: [String: Any], tol: Double, _ label: String) {
    for (key, want) in expected {
        let responseKey = key == "predicted" ? "predictions" : key
        let got = flat(json[responseKey]), wanted = flat(want)
        #expect(got.count == wanted.count, "\(label) \(key) size")
        for (g, w) in zip(got, wanted) { #expect(abs(g - w) <= tol, "\(label) \(key): \(g) vs \(w)") }
    }
}

@Suite("Ensemble reference vectors")
struct EnsembleVectorTests {
    @Test func everyEnsembleCaseIsCovered() {
        #expect(EnsembleVectors.names.count == 7)
        let baselines = EnsembleVectors.named("baselines_M5")["expected"] as! [String: Any]
        #expect(Set(baselines.keys) == Set(EnsembleVectors.baselineRequests.keys))
    }

    @Test(arguments: EnsembleVectors.names.filter { $0.hasPrefix("crossmax") })
    func crossMaxMatchesTheReference(_ name: String) throws {
        let vector = EnsembleVectors.named(name)
        let input = vector["input"] as! [String: Any]
        var params: [String: Any] = [:]
        if let k = input["k"] { params["k"] = k }
        if let reduce = input["reduce"] { params["reduce"] = reduce }
        let (status, json) = try postEnsemble(["method": "crossmax", "logits": input["logits"]!, "params": params])
        try #require(status == 200, "\(json)")
        #expect(json["method"] as? String == "crossmax")
        let tol = vector["tol"] as! Double
        expectMatches(json, vector["expected"] as! [String: Any], tol: tol, name)
        // Scores are all <= 0 and probs rows sum to 1.
        #expect(flat(json["scores"]).allSatisfy { $0 <= 0 })
        for row in json["probs"] as! [[Double]] { #expect(abs(row.reduce(0, +) - 1) <= 1e-12) }
    }

    @Test(arguments: EnsembleVectors.baselineRequests.keys.sorted())
    func baselineMatchesTheReference(_ key: String) throws {
        let vector = EnsembleVectors.named("baselines_M5")
        let input = vector["input"] as! [String: Any]
        let (method, weighted) = EnsembleVectors.baselineRequests[key]!
        var body: [String: Any] = ["method": method, "logits": input["logits"]!]
        if weighted { body["weights"] = input["weights"]! }
        let (status, json) = try postEnsemble(body)
        try #require(status == 200, "\(json)")
        #expect(json["method"] as? String == method)
        var expected = (vector["expected"] as! [String: Any])[key] as! [String: Any]
        // mean_probs and majority_vote: scores are the probabilities themselves.
        if method == "mean_probs" || method == "majority_vote", let probs = expected["probs"] { expected["scores"] = probs }
        expectMatches(json, expected, tol: vector["tol"] as! Double, key)
        for row in json["probs"] as! [[Double]] { #expect(abs(row.reduce(0, +) - 1) <= 1e-12) }
    }

    @Test func majorityVoteTiesGoToTheLowestClass() throws {
        let vector = EnsembleVectors.named("majority_vote_tie_lowest_class")
        let input = vector["input"] as! [String: Any]
        let (status, json) = try postEnsemble(["method": "majority_vote", "logits": input["logits"]!])
        try #require(status == 200, "\(json)")
        let expected = vector["expected"] as! [String: Any]
        let members = Double((input["logits"] as! [Any]).count)
        #expect(flat(json["predictions"]) == flat(expected["predicted"]))
        #expect(flat(json["probs"]) == flat(expected["votes"]).map { $0 / members })
    }

    @Test func weightsChangeTheVote() throws {
        let logits = EnsembleVectors.named("majority_vote_tie_lowest_class")["input"] as! [String: Any]
        // Members 0 and 2 vote 0 and 2; member 1 and 3 vote 1. Weighting member 0 wins class 0.
        let (status, json) = try postEnsemble(["method": "majority_vote", "logits": logits["logits"]!, "weights": [5, 1, 1, 1]])
        try #require(status == 200)
        #expect(flat(json["predictions"]) == [0])
        #expect(flat(json["probs"]) == [0.625, 0.25, 0.125])
    }

    @Test func defaultKIsThreeOrM() throws {
        let logits: [[[Double]]] = [[[1, 0, 2]], [[0, 3, 1]]]
        // M = 2: default k = 2 (the smallest of two), same as an explicit k = 2.
        let (s1, j1) = try postEnsemble(["method": "crossmax", "logits": logits])
        let (s2, j2) = try postEnsemble(["method": "crossmax", "logits": logits, "params": ["k": 2]])
        #expect(s1 == 200 && s2 == 200)
        #expect(flat(j1["scores"]) == flat(j2["scores"]))
        // M = 1: every score is 0, probs uniform, prediction 0.
        let (s3, j3) = try postEnsemble(["method": "crossmax", "logits": [[[5, 1, 9]]]])
        #expect(s3 == 200)
        #expect(flat(j3["scores"]) == [0, 0, 0])
        #expect(flat(j3["predictions"]) == [0])
    }

    static var ok: [[[Double]]] { [[[1, 2, 3], [0, 1, 0]], [[2, 1, 0], [1, 1, 1]], [[0, 0, 5], [3, 2, 1]]] }

    /// Each rejection: body, status, code, field.
    static var rejections: [(String, [String: Any], Int, String, String)] {
        [
            ("missing method", ["logits": ok], 422, "missing_field", "/method"),
            ("unknown method", ["method": "vote", "logits": ok], 422, "invalid_param", "/method"),
            ("missing logits", ["method": "crossmax"], 422, "missing_field", "/logits"),
            ("M = 0", ["method": "crossmax", "logits": [] as [Any]], 422, "invalid_shape", "/logits"),
            ("C < 2", ["method": "mean_logits", "logits": [[[1]], [[2]]]], 422, "invalid_shape", "/logits/0/0"),
            ("rank 2", ["method": "mean_logits", "logits": [[1, 2], [3, 4]]], 422, "invalid_shape", "/logits"),
            ("ragged members", ["method": "crossmax", "logits": [[[1, 2], [3, 4]], [[1, 2]]]], 422, "invalid_shape", "/logits/1"),
            ("ragged rows", ["method": "crossmax", "logits": [[[1, 2], [3, 4]], [[1, 2], [3, 4, 5]]]], 422, "invalid_shape", "/logits/1/1"),
            ("non-number entry", ["method": "crossmax", "logits": [[[1, 2]], [[1, "x"]]]], 422, "invalid_shape", "/logits/1/0/1"),
            ("k too large", ["method": "crossmax", "logits": ok, "params": ["k": 4]], 422, "invalid_param", "/params/k"),
            ("k zero", ["method": "crossmax", "logits": ok, "params": ["k": 0]], 422, "invalid_param", "/params/k"),
            ("k fractional", ["method": "crossmax", "logits": ok, "params": ["k": 1.5]], 422, "invalid_param", "/params/k"),
            ("bad reduce", ["method": "crossmax", "logits": ok, "params": ["reduce": "mean"]], 422, "invalid_param", "/params/reduce"),
            ("params not object", ["method": "crossmax", "logits": ok, "params": [1]], 422, "invalid_param", "/params"),
            ("weights on crossmax", ["method": "crossmax", "logits": ok, "weights": [1, 1, 1]], 422, "invalid_input", "/weights"),
            ("weights on median", ["method": "median_logits", "logits": ok, "weights": [1, 1, 1]], 422, "invalid_input", "/weights"),
            ("weights count", ["method": "mean_logits", "logits": ok, "weights": [1, 1]], 422, "invalid_shape", "/weights"),
            ("negative weight", ["method": "mean_probs", "logits": ok, "weights": [1, -1, 1]], 422, "invalid_input", "/weights/1"),
            ("zero weights", ["method": "majority_vote", "logits": ok, "weights": [0, 0, 0]], 422, "invalid_input", "/weights"),
            ("weights rank 2", ["method": "mean_logits", "logits": ok, "weights": [[1, 1, 1]]], 422, "invalid_shape", "/weights"),
        ]
    }

    @Test(arguments: 0..<20)
    func rejectsBadInputWithFieldAndIndex(_ index: Int) throws {
        let (label, body, status, code, field) = Self.rejections[index]
        let (got, json) = try postEnsemble(body)
        #expect(got == status, "\(label): \(json)")
        #expect(json["type"] as? String == "urn:lossd:error:\(code)", "\(label): \(json)")
        #expect(json["field"] as? String == field, "\(label): \(json)")
    }

    @Test func everyRejectionIsTested() { #expect(Self.rejections.count == 20) }

    @Test func messagesFollowTheSpec() throws {
        let (_, weights) = try postEnsemble(["method": "crossmax", "logits": Self.ok, "weights": [1, 1, 1]])
        #expect(weights["detail"] as? String == "weights are not supported by crossmax")
        let (_, k) = try postEnsemble(["method": "crossmax", "logits": Self.ok, "params": ["k": 4]])
        #expect(k["detail"] as? String == "k = 4 exceeds the number of members (3)")
        let (_, ragged) = try postEnsemble(["method": "crossmax", "logits": [[[1, 2], [3, 4]], [[1, 2]]]])
        #expect(ragged["detail"] as? String == "`logits[1]` has 1 row but `logits[0]` has 2")
    }

    @Test func nonFiniteLogitsNameTheEntry() throws {
        let values: [Double] = [1, 2, 3, 4, .infinity, 6]
        let base64 = Data(values.flatMap { withUnsafeBytes(of: $0.bitPattern.littleEndian, Array.init) }).base64EncodedString()
        let (status, json) = try postEnsemble([
            "method": "mean_logits", "logits": ["shape": [2, 1, 3], "dtype": "float64", "base64": base64],
        ])
        #expect(status == 422)
        #expect(json["type"] as? String == "urn:lossd:error:non_finite")
        #expect(json["field"] as? String == "/logits/1/0/1")
    }
}
