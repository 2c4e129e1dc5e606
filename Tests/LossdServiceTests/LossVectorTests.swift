import Foundation
import LossdHTTP
import Testing

@testable import LossdService

/// The reference vectors of the losses (loss_vectors.json; docs/losses.md, docs/test-vectors.md).
enum LossVectors {
    static var document: [String: Any] { vectorFile("loss_vectors") }

    static var cases: [[String: Any]] { document["cases"] as! [[String: Any]] }

    /// Cases of losses the catalogue has; the rest wait for their loss to be implemented.
    static var implemented: [[String: Any]] {
        cases.filter {
            LossCatalogue.all[$0["loss"] as! String] != nil
                || ($0["expected_error"] as? [String: Any])?["code"] as? String == "unknown_loss"
        }
    }

    static var implementedNames: [String] { implemented.map { $0["name"] as! String } }

    static func named(_ name: String) -> [String: Any] { cases.first { $0["name"] as! String == name }! }
}

/// A vector file of Tests/LossdServiceTests/Vectors as a JSON object. Parsed on each use:
/// `[String: Any]` is not Sendable, so it cannot be a shared static.
func vectorFile(_ name: String) -> [String: Any] {
    let url = Bundle.module.url(forResource: "Vectors/" + name, withExtension: "json")!
    return try! JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
}

/// Sends a JSON body to the service in-process and returns status and parsed body.
func post(_ body: [String: Any], path: String = "/v1/loss") throws -> (status: Int, json: [String: Any]) {
    let service = LossdService(configuration: ServiceConfiguration())
    let data = try JSONSerialization.data(withJSONObject: body)
    let head = HTTPRequestHead(method: "POST", target: path, version: .http1_1, headers: ["Content-Type": "application/json"])
    let response = service.respond(to: HTTPRequest(head: head, body: Array(data)), context: RequestContext(requestID: "t", remoteAddress: "t"))
    let json = try JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any] ?? [:]
    return (response.status.code, json)
}

func close(_ got: Double, _ expected: Double, rtol: Double = 1e-9, atol: Double = 1e-12) -> Bool {
    abs(got - expected) <= atol + rtol * abs(expected)
}

/// Flattens nested arrays of numbers.
func flat(_ value: Any?) -> [Double] {
    if let number = value as? Double { return [number] }
    if let number = value as? Int { return [Double(number)] }
    if let number = value as? NSNumber { return [number.doubleValue] }
    if let array = value as? [Any] { return array.flatMap { flat($0) } }
    return []
}

@Suite("Loss reference vectors")
struct LossVectorTests {
    @Test func everyReferenceCaseRuns() {
        // Every case runs: each loss of the vectors is in the catalogue, and the one unknown name
        // is an expected `unknown_loss` error.
        #expect(LossVectors.implemented.count == LossVectors.cases.count)
        #expect(LossVectors.cases.count == 154)
    }

    @Test(arguments: LossVectors.implementedNames)
    func matchesTheReference(_ name: String) throws {
        let vector = LossVectors.named(name)
        var body = vector["inputs"] as! [String: Any]
        body["loss"] = vector["loss"]
        body["params"] = vector["params"]
        if let reduction = vector["reduction"] { body["reduction"] = reduction }

        if let expected = vector["expected_error"] as? [String: Any] {
            let (status, json) = try post(body)
            #expect(status == expected["status"] as! Int)
            #expect(json["type"] as? String == "urn:lossd:error:\(expected["code"] as! String)")
            #expect(json["field"] as? String == expected["field"] as? String)
            #expect(json["detail"] as? String == expected["detail"] as? String)
            return
        }

        body["return_grad"] = true
        for reduction in ["none", "sum", "mean"] {
            body["reduction"] = reduction
            let (status, json) = try post(body)
            try #require(status == 200, "\(reduction): \(json)")
            switch reduction {
            case "none":
                let got = flat(json["values"]), want = flat(vector["values"])
                #expect(got.count == want.count)
                for (g, w) in zip(got, want) { #expect(close(g, w), "values: \(g) vs \(w)") }
            case "sum":
                #expect(close(json["value"] as! Double, vector["sum"] as! Double), "sum")
            default:
                #expect(close(json["value"] as! Double, vector["mean"] as! Double), "mean")
                let grads = json["grad"] as! [String: Any]
                for (input, expected) in vector["grad_mean"] as! [String: Any] {
                    let got = flat(grads[input]), want = flat(expected)
                    #expect(got.count == want.count, "grad \(input) size")
                    for (g, w) in zip(got, want) { #expect(close(g, w), "grad \(input): \(g) vs \(w)") }
                }
                if let extras = vector["extras"] as? [String: Any] {
                    let gotExtras = json["extras"] as? [String: Any] ?? [:]
                    for (key, expected) in extras {
                        if expected is NSNull {
                            #expect(gotExtras[key] is NSNull, "extra \(key)")
                            continue
                        }
                        let got = flat(gotExtras[key]), want = flat(expected)
                        #expect(got.count == want.count, "extra \(key) size")
                        for (g, w) in zip(got, want) { #expect(close(g, w), "extra \(key): \(g) vs \(w)") }
                    }
                }
            }
        }
    }
}
