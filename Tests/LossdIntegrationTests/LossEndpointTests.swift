import Foundation
import LossdTestSupport
import Testing

/// `/v1/loss` and `/v1/losses` through the real binary.
@Suite("lossd /v1/loss over real sockets")
struct LossEndpointTests {
    func post(_ lossd: LossdProcess, _ json: String, contentType: String = "application/json") throws -> WireResponse {
        let body = Array(json.utf8)
        let client = try lossd.connect()
        try client.send("POST /v1/loss HTTP/1.1\r\nHost: x\r\nContent-Type: \(contentType)\r\nContent-Length: \(body.count)\r\n\r\n")
        try client.send(body)
        return try client.readResponse()
    }

    static let logits = "[[2.0, 0.5, -1.0], [0.1, 0.2, 0.3]]"

    @Test(arguments: [
        #"{"loss": "cross_entropy", "logits": \#(logits), "labels": [0, 2]}"#,
        #"{"loss": "binary_cross_entropy", "logits": \#(logits), "targets": [[1, 0, 0.5], [0, 1, 0]]}"#,
        #"{"loss": "focal", "logits": \#(logits), "labels": [0, 2], "params": {"gamma": 1}}"#,
        #"{"loss": "focal", "logits": \#(logits), "targets": [[1, 0, 0], [0, 1, 0]], "params": {"mode": "sigmoid"}}"#,
    ])
    func eachLossAnswersWithValueAndGradient(_ json: String) throws {
        let lossd = try LossdProcess()
        let withGradient = String(json.dropLast()) + #", "return_grad": true}"#
        let response = try post(lossd, withGradient)
        #expect(response.status == 200, "\(response.bodyText)")
        #expect(response.header("content-type") == "application/json")
        let value = try #require(response.json?["value"] as? Double)
        #expect(value.isFinite && value > 0)
        let grad = try #require((response.json?["grad"] as? [String: Any])?["logits"] as? [[Double]])
        #expect(grad.count == 2 && grad[0].count == 3)
    }

    @Test func theThreeTensorEncodingsGiveTheSameAnswer() throws {
        let lossd = try LossdProcess()
        let values: [Double] = [2.0, 0.5, -1.0, 0.1, 0.2, 0.3]
        let base64 = Data(values.flatMap { withUnsafeBytes(of: $0.bitPattern.littleEndian, Array.init) }).base64EncodedString()
        let bodies = [
            #"{"loss": "cross_entropy", "logits": \#(Self.logits), "labels": [0, 2]}"#,
            #"{"loss": "cross_entropy", "logits": {"shape": [2, 3], "data": [2.0, 0.5, -1.0, 0.1, 0.2, 0.3]}, "labels": {"shape": [2], "data": [0, 2]}}"#,
            #"{"loss": "cross_entropy", "logits": {"shape": [2, 3], "dtype": "float64", "base64": "\#(base64)"}, "labels": [0, 2.0]}"#,
        ]
        let answers = try bodies.map { try post(lossd, $0).json?["value"] as? Double }
        #expect(answers[0] != nil)
        #expect(answers[0] == answers[1] && answers[1] == answers[2])
    }

    @Test func severalLossesOverOneBatch() throws {
        let lossd = try LossdProcess()
        let response = try post(
            lossd,
            #"{"losses": [{"loss": "cross_entropy"}, {"loss": "focal", "reduction": "none"}], "logits": \#(Self.logits), "labels": [0, 2], "return_grad": true}"#)
        let results = try #require(response.json?["results"] as? [[String: Any]])
        #expect(results.map { $0["loss"] as? String } == ["cross_entropy", "focal"])
        #expect(results[1]["values"] is [Double])
        #expect(results.allSatisfy { $0["grad"] != nil })
    }

    @Test func curlFormEncodedBodiesAreReadAsJSON() throws {
        let lossd = try LossdProcess()
        let response = try post(
            lossd, #"{"loss": "cross_entropy", "logits": \#(Self.logits), "labels": [0, 2]}"#,
            contentType: "application/x-www-form-urlencoded")
        #expect(response.status == 200)
    }

    @Test(arguments: [
        (#"{"loss": "hinge_plus", "logits": [[1, 2]], "labels": [0]}"#, 422, "unknown_loss", "/loss"),
        (#"{"loss": "cross_entropy", "logits": [[1, 2], [3, 4]], "labels": [0]}"#, 422, "invalid_shape", "/labels"),
        (#"{"loss": "cross_entropy", "logits": [[1, 2], [3]], "labels": [0, 1]}"#, 422, "invalid_shape", "/logits/1"),
        (#"{"loss": "cross_entropy", "logits": [[1, 2]], "labels": [2]}"#, 422, "invalid_label", "/labels/0"),
        (#"{"loss": "cross_entropy", "logits": {"shape": [1, 2], "dtype": "float64", "base64": "AAAAAAAA8H8AAAAAAADwPw=="}, "labels": [0]}"#, 422, "non_finite", "/logits/0/0"),
        (#"{"loss": "cross_entropy", "logits": [[1, 1e400]], "labels": [0]}"#, 422, "non_finite", "/logits/0/1"),
        (#"{"loss": "cross_entropy", "logits": [[1, 2]], "labels": [0], "params": {"label_smoothing": 2}}"#, 422, "invalid_param", "/params/label_smoothing"),
        (#"{"loss": "focal", "logits": [[1, 2]], "labels": [0], "params": {"gamma": "x"}}"#, 422, "invalid_param", "/params/gamma"),
        (#"{"logits": [[1, 2]], "labels": [0]}"#, 422, "missing_field", "/loss"),
        (#"{"loss": "cross_entropy", "labels": [0]}"#, 422, "missing_field", "/logits"),
        (#"{"loss": "cross_entropy", "logits": [[1, 2]], "labels": [0], "return_grad": "yes"}"#, 422, "invalid_param", "/return_grad"),
    ])
    func errorsNameTheirFieldAndStatus(_ json: String, _ status: Int, _ code: String, _ field: String) throws {
        let lossd = try LossdProcess()
        let response = try post(lossd, json)
        #expect(response.status == status, "\(response.bodyText)")
        #expect(response.header("content-type") == "application/problem+json")
        #expect(response.json?["type"] as? String == "urn:lossd:error:\(code)")
        #expect(response.json?["field"] as? String == field)
    }

    @Test func aFullWorkQueueGets503WithRetryAfter() throws {
        // One worker thread and room for one waiting request: a third heavy request is refused.
        let lossd = try LossdProcess(["--threads", "1", "--queue-depth", "1"])
        let (rows, cols) = (1000, 1000)
        let floats = (0..<(rows * cols)).map { Float($0 % 97) / 10 }
        let base64 = Data(floats.flatMap { withUnsafeBytes(of: $0.bitPattern.littleEndian, Array.init) }).base64EncodedString()
        let labels = (0..<rows).map { String($0 % cols) }.joined(separator: ",")
        let heavy = Array(#"{"loss": "cross_entropy", "return_grad": true, "labels": [\#(labels)], "logits": {"shape": [\#(rows), \#(cols)], "dtype": "float32", "base64": "\#(base64)"}}"#.utf8)
        let clients = try (0..<3).map { _ in try lossd.connect() }
        for client in clients {
            try client.send("POST /v1/loss HTTP/1.1\r\nHost: x\r\nContent-Length: \(heavy.count)\r\n\r\n")
            try client.send(heavy)
            usleep(100_000)
        }
        // Normally the third is refused; on a loaded machine the worker may pick up the first
        // late and the second is refused instead. Either way exactly one gets 503.
        let responses = try clients.map { try $0.readResponse() }
        #expect(responses.map(\.status).sorted() == [200, 200, 503])
        let refused = try #require(responses.first { $0.status == 503 })
        #expect(refused.header("retry-after") == "1")
        #expect(refused.json?["type"] as? String == "urn:lossd:error:overloaded")
        // Health checks never wait for the workers.
        #expect(try lossd.connect().exchange(get("/healthz")).status == 200)
    }

    @Test func malformedJSONIs400WithAPosition() throws {
        let lossd = try LossdProcess()
        let response = try post(lossd, #"{"loss": "cross_entropy", "logits": [[1, 2]"#)
        #expect(response.status == 400)
        #expect(response.json?["type"] as? String == "urn:lossd:error:invalid_json")
        #expect((response.json?["detail"] as? String)?.contains("line 1") == true)
    }

    @Test func otherContentTypesAre415() throws {
        let lossd = try LossdProcess()
        #expect(try post(lossd, "{}", contentType: "text/csv").status == 415)
    }

    @Test func emptyPostIs400() throws {
        let lossd = try LossdProcess()
        let response = try lossd.connect().exchange("POST /v1/loss HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(response.status == 400)
    }

    @Test func catalogueListsEachLossWithItsParameters() throws {
        let lossd = try LossdProcess()
        let response = try lossd.connect().exchange(get("/v1/losses"))
        let catalogue = try #require(try JSONSerialization.jsonObject(with: Data(response.body)) as? [[String: Any]])
        let names = catalogue.compactMap { $0["name"] as? String }
        #expect(names.contains("cross_entropy") && names.contains("binary_cross_entropy") && names.contains("focal"))
        let focal = try #require(catalogue.first { $0["name"] as? String == "focal" })
        let gamma = try #require((focal["params"] as? [String: Any])?["gamma"] as? [String: Any])
        #expect(gamma["default"] as? Double == 2)
        #expect(gamma["min"] as? Double == 0)
    }
}
