import Foundation
import LossdHTTP
import Testing

@testable import LossdService

/// The reference vectors of the second wave of losses and of composite requests
/// (loss_vectors_2.json, written by scripts/reference-losses-2.py; docs/test-vectors.md).
enum LossVectors2 {
    static var document: [String: Any] { vectorFile("loss_vectors_2") }

    static var cases: [[String: Any]] { document["cases"] as! [[String: Any]] }

    /// Whether `POST /v1/loss` takes the composite forms (`weight`, `columns`, `total`,
    /// `reduction: group_mean`); until then their cases wait.
    static let compositesImplemented = true

    /// The losses a case needs: its own, or every entry's of a composite request.
    static func losses(of vector: [String: Any]) -> [String] {
        if let loss = vector["loss"] as? String { return [loss] }
        let request = (vector["composite"] as! [String: Any])["request"] as! [String: Any]
        if let entries = request["losses"] as? [[String: Any]] { return entries.map { $0["loss"] as! String } }
        return [request["loss"] as! String]
    }

    /// Cases whose losses the catalogue has (and composites once they are implemented).
    static var implementedNames: [String] {
        cases.filter { vector in
            (vector["composite"] == nil || compositesImplemented) && losses(of: vector).allSatisfy { LossCatalogue.all[$0] != nil }
        }.map { $0["name"] as! String }
    }

    static func named(_ name: String) -> [String: Any] { cases.first { $0["name"] as! String == name }! }
}

@Suite("Loss reference vectors, second wave")
struct LossVectors2Tests {
    @Test func everyCaseRuns() {
        // Every loss of the vectors is in the catalogue and the composite forms exist, so
        // no case waits.
        #expect(LossVectors2.cases.count == 136)
        #expect(LossVectors2.implementedNames.count == LossVectors2.cases.count)
    }

    @Test(arguments: LossVectors2.implementedNames)
    func matchesTheReference(_ name: String) throws {
        let vector = LossVectors2.named(name)
        if let composite = vector["composite"] as? [String: Any] {
            let (status, json) = try post(composite["request"] as! [String: Any])
            if let expected = (composite["expected_error"] ?? vector["expected_error"]) as? [String: Any] {
                Self.expectError(status, json, expected)
            } else {
                try #require(status == 200, "\(json)")
                Self.compare(json, composite["expected"]!, path: "")
            }
            return
        }
        var body = vector["inputs"] as! [String: Any]
        body["loss"] = vector["loss"]
        body["params"] = vector["params"]
        if let reduction = vector["reduction"] { body["reduction"] = reduction }
        if let expected = vector["expected_error"] as? [String: Any] {
            let (status, json) = try post(body)
            Self.expectError(status, json, expected)
            return
        }
        body["return_grad"] = true
        let reductions = vector["values"] is NSNull ? ["sum", "mean"] : ["none", "sum", "mean"]
        for reduction in reductions {
            body["reduction"] = reduction
            let (status, json) = try post(body)
            try #require(status == 200, "\(reduction): \(json)")
            switch reduction {
            case "none": Self.compare(json["values"] as Any, vector["values"]!, path: "values")
            case "sum": Self.compare(json["value"] as Any, vector["sum"]!, path: "sum")
            default:
                Self.compare(json["value"] as Any, vector["mean"]!, path: "mean")
                Self.compare(json["grad"] as Any, vector["grad_mean"]!, path: "grad")
                if let extras = vector["extras"] as? [String: Any] {
                    Self.compare(json["extras"] as Any, extras, path: "extras")
                }
            }
        }
    }

    static func expectError(_ status: Int, _ json: [String: Any], _ expected: [String: Any]) {
        #expect(status == expected["status"] as! Int, "\(json)")
        #expect(json["type"] as? String == "urn:lossd:error:\(expected["code"] as! String)", "\(json)")
        #expect(json["field"] as? String == expected["field"] as? String, "\(json)")
    }

    /// Every number of `expected` against the same path of `got` (dictionaries by key,
    /// arrays element by element, null for null).
    static func compare(_ got: Any, _ expected: Any, path: String) {
        switch expected {
        case is NSNull:
            #expect(got is NSNull, "\(path): expected null, got \(got)")
        case let object as [String: Any]:
            let gotObject = got as? [String: Any] ?? [:]
            for (key, value) in object { compare(gotObject[key] ?? NSNull(), value, path: path + "/" + key) }
        case is String:
            #expect(got as? String == expected as? String, "\(path)")
        case let array as [Any]:
            guard let gotArray = got as? [Any], gotArray.count == array.count else {
                Issue.record("\(path): expected \(array.count) elements, got \(got)")
                return
            }
            for (i, (g, w)) in zip(gotArray, array).enumerated() { compare(g, w, path: "\(path)/\(i)") }
        default:
            let want = flat(expected), have = flat(got)
            #expect(have.count == 1 && want.count == 1 && close(have[0], want[0]), "\(path): \(have) vs \(want)")
        }
    }
}
