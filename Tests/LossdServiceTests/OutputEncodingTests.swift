import Foundation
import LossdHTTP
import LossdJSON
import Testing

@testable import LossdService

/// Binary answers: with `"output_encoding": "base64"` every float tensor of an answer is
/// `{"shape", "dtype", "base64"}` and decodes to the JSON answer's numbers (exactly for
/// float64, rounded to nearest for float32); scalars and integer lists are unchanged.
@Suite("Binary answers")
struct OutputEncodingTests {
    let context = InProcessCall.context

    func call(_ path: String, _ body: [String: Any]) throws -> (status: Int, json: [String: Any]) {
        try InProcessCall.postJSON(path, body)
    }

    /// The flat values and shape of an encoded tensor.
    func decode(_ node: Any?) -> (shape: [Int], values: [Double], dtype: String)? {
        guard let object = node as? [String: Any], let shape = object["shape"] as? [Int], let dtype = object["dtype"] as? String,
            let text = object["base64"] as? String, let bytes = Data(base64Encoded: text)
        else { return nil }
        let width = dtype == "float32" ? 4 : 8
        guard bytes.count == shape.reduce(1, *) * width else { return nil }
        let values: [Double] = bytes.withUnsafeBytes { raw in
            (0..<(bytes.count / width)).map { i in
                width == 4
                    ? Double(Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self))))
                    : Double(bitPattern: UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self)))
            }
        }
        return (shape, values, dtype)
    }

    func flat(_ node: Any?) -> [Double] {
        if let number = node as? Double { return [number] }
        if let items = node as? [Any] { return items.flatMap { flat($0) } }
        return []
    }

    /// The numbers of a member path of a JSON answer, read with lossd's own exact reader
    /// (Foundation's JSONSerialization on Linux does not round every decimal correctly).
    func exactNumbers(_ path: [String], in body: [String: Any]) throws -> [Double] {
        let service = LossdService(configuration: ServiceConfiguration())
        let head = HTTPRequestHead(
            method: "POST", target: "/v1/loss", version: .http1_1, headers: ["Host": "x", "Content-Type": "application/json"])
        let response = service.respond(
            to: HTTPRequest(head: head, body: Array(try JSONSerialization.data(withJSONObject: body))), context: context)
        var node = try JSONReader.parse(response.body)
        for key in path {
            guard case .object(let object) = node, let next = object[key] else { return [] }
            node = next
        }
        guard case .numbers(let array) = node else { return [] }
        return array.values
    }

    @Test(arguments: ["float64", "float32"])
    func lossValuesGradientsAndExtrasDecodeToTheJSONAnswer(_ dtype: String) throws {
        var body: [String: Any] = [
            "loss": "cross_entropy", "logits": [[2, 0.5, -1], [0.1, 0.2, 0.3], [-3, 4, 0.25]], "labels": [0, 2, 1],
            "return_grad": true, "reduction": "none",
        ]
        let plain = try call("/v1/loss", body)
        body["output_encoding"] = "base64"
        body["output_dtype"] = dtype
        let binary = try call("/v1/loss", body)
        #expect(binary.status == 200)
        var plainBody = body
        plainBody["output_encoding"] = nil
        plainBody["output_dtype"] = nil
        let pairs: [([String], Any?)] = [
            (["values"], binary.json["values"]),
            (["grad", "logits"], (binary.json["grad"] as? [String: Any])?["logits"]),
            (["extras", "per_sample_bits"], (binary.json["extras"] as? [String: Any])?["per_sample_bits"]),
        ]
        #expect(plain.status == 200)
        for (path, encoded) in pairs {
            guard let decoded = decode(encoded) else {
                Issue.record("not an encoded tensor: \(String(describing: encoded))")
                continue
            }
            #expect(decoded.dtype == dtype)
            let expected = try exactNumbers(path, in: plainBody)
            #expect(decoded.values.count == expected.count)
            for (a, b) in zip(decoded.values, expected) {
                #expect(dtype == "float64" ? a == b : a == Double(Float(b)))
            }
        }
        #expect(decode(binary.json["grad"].flatMap { ($0 as? [String: Any])?["logits"] })?.shape == [3, 3])
        // Scalars stay numbers.
        #expect((binary.json["extras"] as? [String: Any])?["perplexity"] is Double)
        #expect(binary.json["n"] as? Int == 3)
    }

    @Test func everyEndpointWithTensorsEncodesThem() throws {
        let logits: [[Double]] = [[2, 0.5, -1], [0.1, 0.2, 0.3]]
        let ensemble = try call("/v1/ensemble", ["method": "mean_probs", "logits": [logits, logits], "output_encoding": "base64"])
        #expect(decode(ensemble.json["probs"])?.shape == [2, 3])
        #expect(ensemble.json["predictions"] as? [Int] == [0, 2], "integer lists stay lists")
        let calibrate = try call(
            "/v1/calibrate",
            ["calibrator": ["method": "temperature", "params": ["temperature": 2]], "logits": logits, "output_encoding": "base64"])
        #expect(decode(calibrate.json["probs"])?.shape == [2, 3])
        let aggregate = try call(
            "/v1/aggregate",
            ["method": "frequency", "num_classes": 3, "annotations": [[1, "a", 0], [1, "b", 2], [2, "a", 1]], "output_encoding": "base64"])
        #expect(decode(aggregate.json["soft_labels"])?.shape == [2, 3], "\(aggregate.json)")
        let metrics = try call("/v1/metrics", ["logits": logits, "labels": [0, 1], "output_encoding": "base64"])
        #expect(metrics.status == 200)
        #expect(metrics.json["ece"] is Double)
    }

    @Test func badEncodingOptionsAre422() throws {
        let base: [String: Any] = ["loss": "cross_entropy", "logits": [[1, 2]], "labels": [0]]
        var wrong = base
        wrong["output_encoding"] = "hex"
        let answer = try call("/v1/loss", wrong)
        #expect(answer.status == 422)
        #expect(answer.json["field"] as? String == "/output_encoding")
        var dtype = base
        dtype["output_dtype"] = "float16"
        #expect(try call("/v1/loss", dtype).json["field"] as? String == "/output_dtype")
    }

    @Test func base64MatchesFoundationBothWays() {
        var generator = SystemRandomNumberGenerator()
        for length in [0, 1, 2, 3, 4, 5, 1023, 1024, 1025, 3071, 3072, 3073, 10_000] {
            let bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }
            let encoded = String(decoding: Base64.encode(bytes), as: UTF8.self)
            #expect(encoded == Data(bytes).base64EncodedString())
            #expect(Base64.decode(encoded) == bytes)
        }
        for bad in ["A", "AB=C", "A===", "AB*D", "ABC=DEFG", "=AAA", "AAAAA==="] {
            #expect(Base64.decode(bad) == nil, "\(bad)")
        }
        // Large tensors cross the writer's 3 KiB chunks.
        let values = (0..<5000).map { Double($0) * 0.37 - 11 }
        var out: [UInt8] = []
        JSONValue.writeEncodedTensor(shape: [5000], values: values, float32: false, into: &out)
        let object = try? JSONSerialization.jsonObject(with: Data(out)) as? [String: Any]
        let decoded = decode(object)
        #expect(decoded?.values == values)
    }
}
