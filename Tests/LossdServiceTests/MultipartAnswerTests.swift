import Foundation
import LossdHTTP
import LossdJSON
import Testing

@testable import LossdService

/// Multipart answers: with `Accept: multipart/form-data` the JSON answer travels as the part
/// `response` with each float tensor replaced by `{"shape", "dtype", "part"}`, and each
/// tensor as a `.npy` part named by its JSON pointer, holding exactly the JSON answer's
/// numbers (float64) or their nearest float32.
@Suite("Multipart answers")
struct MultipartAnswerTests {

    func call(_ path: String, _ body: [String: Any], accept: String? = nil, acceptEncoding: String? = nil) throws -> HTTPResponse {
        try InProcessCall.post(
            path, body, headers: [("Accept", accept), ("Accept-Encoding", acceptEncoding)].compactMap { name, value in value.map { (name, $0) } })
    }

    /// The parts of a multipart body by name: (headers text, data).
    func parts(of response: HTTPResponse) -> [String: (head: String, data: [UInt8])] {
        guard let type = response.headers["content-type"], let range = type.range(of: "boundary=") else { return [:] }
        let delimiter = Array("--\(type[range.upperBound...])".utf8)
        let body = response.body
        var starts: [Int] = []
        var i = 0
        while i + delimiter.count <= body.count {
            if Array(body[i..<(i + delimiter.count)]) == delimiter { starts.append(i) }
            i += 1
        }
        var result: [String: (head: String, data: [UInt8])] = [:]
        for (start, next) in zip(starts, starts.dropFirst()) {
            let part = Array(body[(start + delimiter.count + 2)..<(next - 2)])  // after CRLF, before CRLF
            guard let split = (0..<(part.count - 3)).first(where: { part[$0..<($0 + 4)] == [13, 10, 13, 10] }) else { continue }
            let head = String(decoding: part[..<split], as: UTF8.self)
            guard let nameRange = head.range(of: "name=\"") else { continue }
            let name = String(head[nameRange.upperBound...].prefix { $0 != "\"" })
            result[name] = (head, Array(part[(split + 4)...]))
        }
        return result
    }

    /// The values of a `.npy` part (float32 widened).
    func npyValues(_ data: [UInt8]) -> (header: String, values: [Double])? {
        guard data.count >= 10, data[0] == 0x93, Array(data[1..<6]) == Array("NUMPY".utf8) else { return nil }
        let length = Int(data[8]) | Int(data[9]) << 8
        let header = String(decoding: data[10..<(10 + length)], as: UTF8.self)
        let payload = Array(data[(10 + length)...])
        let float32 = header.contains("'<f4'")
        let width = float32 ? 4 : 8
        let values: [Double] = payload.withUnsafeBytes { raw in
            (0..<(payload.count / width)).map { i in
                float32
                    ? Double(Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self))))
                    : Double(bitPattern: UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self)))
            }
        }
        return ((10 + length) % 64 == 0 ? header : "misaligned", values)
    }

    func numbers(_ path: [String], in response: HTTPResponse) throws -> [Double] {
        var node = try JSONReader.parse(response.body)
        for key in path {
            guard case .object(let object) = node, let next = object[key] else { return [] }
            node = next
        }
        if case .number(let value) = node { return [value] }
        guard case .numbers(let array) = node else { return [] }
        return array.values
    }

    let lossBody: [String: Any] = [
        "loss": "cross_entropy", "logits": [[2, 0.5, -1], [0.1, 0.2, 0.3], [-3, 4, 0.25]], "labels": [0, 2, 1],
        "return_grad": true, "reduction": "none",
    ]

    @Test(arguments: ["float64", "float32"])
    func tensorsArriveAsNpyPartsHoldingTheJSONNumbers(_ dtype: String) throws {
        let plain = try call("/v1/loss", lossBody)
        var body = lossBody
        body["output_dtype"] = dtype
        let answer = try call("/v1/loss", body, accept: "multipart/form-data")
        #expect(answer.status.code == 200)
        #expect(answer.headers["content-type"]?.hasPrefix("multipart/form-data; boundary=") == true)
        #expect(answer.headers["vary"] == "Accept")
        let parts = parts(of: answer)
        #expect(Set(parts.keys) == ["response", "/values", "/grad/logits", "/extras/per_sample_bits"])
        let document = try #require(parts["response"])
        #expect(document.head.contains("Content-Type: application/json"))
        let json = try JSONSerialization.jsonObject(with: Data(document.data)) as? [String: Any] ?? [:]
        #expect(json["loss"] as? String == "cross_entropy")
        let gradient = (json["grad"] as? [String: Any])?["logits"] as? [String: Any]
        #expect(gradient?["shape"] as? [Int] == [3, 3])
        #expect(gradient?["dtype"] as? String == dtype)
        #expect(gradient?["part"] as? String == "/grad/logits")
        for (pointer, path) in [("/values", ["values"]), ("/grad/logits", ["grad", "logits"])] {
            let expected = try numbers(path, in: plain)
            let part = try #require(parts[pointer])
            let npy = try #require(npyValues(part.data))
            #expect(npy.header.contains(dtype == "float32" ? "'<f4'" : "'<f8'"), "\(npy.header)")
            #expect(npy.values == (dtype == "float32" ? expected.map { Double(Float($0)) } : expected), "\(pointer)")
        }
    }

    @Test func acceptDecidesBetweenJSONAndMultipart() throws {
        for (accept, multipart) in [
            ("multipart/form-data", true), ("application/json, multipart/form-data;q=0.5", false),
            ("multipart/form-data;q=0", false), ("*/*", false), ("application/json;q=0.2, multipart/form-data", true),
        ] {
            let answer = try call("/v1/loss", lossBody, accept: accept)
            #expect(answer.headers["content-type"]?.hasPrefix("multipart/") == multipart, "\(accept)")
        }
        // Error answers stay problem documents.
        var bad = lossBody
        bad["loss"] = "cross_entropi"
        let problem = try call("/v1/loss", bad, accept: "multipart/form-data")
        #expect(problem.status.code == 422)
        #expect(problem.headers["content-type"] == "application/problem+json")
    }

    @Test func multipartAnswersAreNotGzipped() throws {
        var body = lossBody
        body["logits"] = (0..<64).map { r in (0..<50).map { Double(r * 50 + $0) / 100 } }
        body["labels"] = (0..<64).map { $0 % 50 }
        let answer = try call("/v1/loss", body, accept: "multipart/form-data", acceptEncoding: "gzip")
        #expect(answer.body.count > 1024)
        #expect(answer.headers["content-encoding"] == nil)
        let json = try call("/v1/loss", body, acceptEncoding: "gzip")
        #expect(json.headers["content-encoding"] == "gzip")
    }

    @Test func everyEndpointWithTensorsAnswersInParts() throws {
        let logits: [[Double]] = [[2, 0.5, -1], [0.1, 0.2, 0.3]]
        let cases: [(String, [String: Any], String)] = [
            ("/v1/ensemble", ["method": "mean_probs", "logits": [logits, logits]], "/probs"),
            ("/v1/calibrate", ["calibrator": ["method": "temperature", "params": ["temperature": 2]], "logits": logits], "/probs"),
            ("/v1/aggregate", ["method": "frequency", "num_classes": 3, "annotations": [[1, "a", 0], [1, "b", 2], [2, "a", 1]]], "/soft_labels"),
            ("/v1/loss", ["losses": [["loss": "cross_entropy", "reduction": "none"]], "logits": logits, "labels": [0, 1]], "/results/0/values"),
            ("/v1/scaling/predict", ["law": "power_law", "params": ["L_inf": 1.69, "x0": 8.8e6, "alpha": 0.34], "x": [1e9, 1e10]], "/loss"),
        ]
        for (path, body, pointer) in cases {
            let answer = try call(path, body, accept: "multipart/form-data")
            #expect(answer.status.code == 200, "\(path)")
            #expect(parts(of: answer)[pointer] != nil, "\(path): \(parts(of: answer).keys.sorted())")
        }
    }

    @Test func tensorBytesThatHoldTheBoundaryGetAnotherOne() throws {
        // Values whose bytes spell the fixed delimiter.
        var bytes = Array("\r\n--\(MultipartAnswer.fixedBoundary)".utf8)
        while bytes.count % 8 != 0 { bytes.append(0x20) }
        let values: [Double] = bytes.withUnsafeBytes { raw in
            (0..<(bytes.count / 8)).map { raw.loadUnaligned(fromByteOffset: 8 * $0, as: Double.self) }
        }
        let answer = MultipartAnswer.response(.object([("values", .doubles(values))]), status: .ok, dtype: .float64)
        let type = try #require(answer.headers["content-type"])
        #expect(!type.contains(MultipartAnswer.fixedBoundary))
        let part = try #require(parts(of: answer)["/values"])
        let npy = try #require(npyValues(part.data))
        #expect(npy.values.map(\.bitPattern) == values.map(\.bitPattern))
        let plain = MultipartAnswer.response(.object([("values", .doubles([1, 2]))]), status: .ok, dtype: .float64)
        #expect(plain.headers["content-type"]?.hasSuffix(MultipartAnswer.fixedBoundary) == true)
    }
}
