import Foundation
import LossdTestSupport
import Testing

/// `/v1/ensemble` through the real binary.
@Suite("lossd /v1/ensemble over real sockets")
struct EnsembleEndpointTests {
    func post(_ lossd: LossdProcess, _ json: String, contentType: String = "application/json") throws -> WireResponse {
        let body = Array(json.utf8)
        let client = try lossd.connect()
        try client.send("POST /v1/ensemble HTTP/1.1\r\nHost: x\r\nContent-Type: \(contentType)\r\nContent-Length: \(body.count)\r\n\r\n")
        try client.send(body)
        return try client.readResponse()
    }

    /// Three members, two samples, three classes.
    static let logits = "[[[2.0, 0.5, -1.0], [0.1, 0.2, 0.3]], [[1.5, 1.0, 0.0], [0.0, 2.0, 0.1]], [[0.2, 3.0, -0.5], [1.0, 0.0, 0.5]]]"

    @Test(arguments: [
        ("crossmax", #"{"method": "crossmax", "logits": \#(logits)}"#),
        ("crossmax", #"{"method": "crossmax", "logits": \#(logits), "params": {"k": 2}}"#),
        ("crossmax", #"{"method": "crossmax", "logits": \#(logits), "params": {"reduce": "median"}}"#),
        ("mean_logits", #"{"method": "mean_logits", "logits": \#(logits)}"#),
        ("mean_probs", #"{"method": "mean_probs", "logits": \#(logits)}"#),
        ("geometric_mean", #"{"method": "geometric_mean", "logits": \#(logits)}"#),
        ("median_logits", #"{"method": "median_logits", "logits": \#(logits)}"#),
        ("majority_vote", #"{"method": "majority_vote", "logits": \#(logits)}"#),
        ("mean_logits", #"{"method": "mean_logits", "logits": \#(logits), "weights": [1, 2, 3]}"#),
        ("mean_probs", #"{"method": "mean_probs", "logits": \#(logits), "weights": [0, 1, 1]}"#),
        ("geometric_mean", #"{"method": "geometric_mean", "logits": \#(logits), "weights": [3, 1, 0.5]}"#),
        ("majority_vote", #"{"method": "majority_vote", "logits": \#(logits), "weights": [1, 1, 5]}"#),
    ])
    func eachMethodAnswersScoresPredictionsAndProbs(_ method: String, _ json: String) throws {
        let lossd = try LossdProcess()
        let response = try post(lossd, json)
        #expect(response.status == 200, "\(response.bodyText)")
        #expect(response.header("content-type") == "application/json")
        let body = try #require(response.json)
        #expect(body["method"] as? String == method)
        let scores = try #require(body["scores"] as? [[Double]])
        let probs = try #require(body["probs"] as? [[Double]])
        let predictions = try #require(body["predictions"] as? [Int])
        #expect(scores.count == 2 && scores.allSatisfy { $0.count == 3 })
        #expect(predictions.count == 2)
        for (row, prediction) in zip(scores, predictions) {
            #expect(row.firstIndex(of: row.max()!) == prediction)
        }
        for row in probs { #expect(abs(row.reduce(0, +) - 1) < 1e-12 && row.allSatisfy { $0 >= 0 }) }
        if method == "crossmax" { #expect(scores.joined().allSatisfy { $0 <= 0 }) }
    }

    @Test func weightsMoveTheAnswer() throws {
        let lossd = try LossdProcess()
        // Sample 1: members vote 2, 1, 0. All weight on member 2 makes it class 0.
        let even = try post(lossd, #"{"method": "majority_vote", "logits": \#(Self.logits)}"#)
        let heavy = try post(lossd, #"{"method": "majority_vote", "logits": \#(Self.logits), "weights": [0, 0, 1]}"#)
        #expect((even.json?["predictions"] as? [Int])?[1] == 0)  // a three-way tie: lowest class
        #expect(heavy.json?["predictions"] as? [Int] == [1, 0])
        #expect(heavy.json?["probs"] as? [[Double]] == [[0, 1, 0], [1, 0, 0]])
    }

    @Test func theEncodedFormsGiveTheSameAnswer() throws {
        let lossd = try LossdProcess()
        let values: [Double] = [2.0, 0.5, -1.0, 0.1, 0.2, 0.3, 1.5, 1.0, 0.0, 0.0, 2.0, 0.1, 0.2, 3.0, -0.5, 1.0, 0.0, 0.5]
        let base64 = Data(values.flatMap { withUnsafeBytes(of: $0.bitPattern.littleEndian, Array.init) }).base64EncodedString()
        let data = values.map { "\($0)" }.joined(separator: ", ")
        let bodies = [
            #"{"method": "crossmax", "logits": \#(Self.logits)}"#,
            #"{"method": "crossmax", "logits": {"shape": [3, 2, 3], "data": [\#(data)]}}"#,
            #"{"method": "crossmax", "logits": {"shape": [3, 2, 3], "dtype": "float64", "base64": "\#(base64)"}}"#,
        ]
        let answers = try bodies.map { try post(lossd, $0).json?["scores"] as? [[Double]] }
        #expect(answers[0] != nil)
        #expect(answers[0] == answers[1] && answers[1] == answers[2])
    }

    @Test(arguments: [
        (#"{"logits": \#(logits)}"#, 422, "missing_field", "/method"),
        (#"{"method": "crossmix", "logits": \#(logits)}"#, 422, "invalid_param", "/method"),
        (#"{"method": "crossmax"}"#, 422, "missing_field", "/logits"),
        (#"{"method": "crossmax", "logits": []}"#, 422, "invalid_shape", "/logits"),
        (#"{"method": "crossmax", "logits": [[1, 2], [3, 4]]}"#, 422, "invalid_shape", "/logits"),
        (#"{"method": "crossmax", "logits": [[[1], [2]], [[3], [4]]]}"#, 422, "invalid_shape", "/logits/0/0"),
        (#"{"method": "crossmax", "logits": [[[1, 2], [3, 4]], [[1, 2]]]}"#, 422, "invalid_shape", "/logits/1"),
        (#"{"method": "mean_logits", "logits": [[[1, 2], [3, 4]], [[1, 2], [3]]]}"#, 422, "invalid_shape", "/logits/1/1"),
        (#"{"method": "mean_logits", "logits": [[[1, 2]], [[1, 1e400]]]}"#, 422, "non_finite", "/logits/1/0/1"),
        (#"{"method": "mean_logits", "logits": {"shape": [2, 1, 2], "dtype": "float64", "base64": "AAAAAAAA8D8AAAAAAAAAQAAAAAAAAPh/AAAAAAAAAEA="}}"#, 422, "non_finite", "/logits/1/0/0"),
        (#"{"method": "crossmax", "logits": \#(logits), "params": {"k": 4}}"#, 422, "invalid_param", "/params/k"),
        (#"{"method": "crossmax", "logits": \#(logits), "params": {"k": 0}}"#, 422, "invalid_param", "/params/k"),
        (#"{"method": "crossmax", "logits": \#(logits), "params": {"reduce": "mean"}}"#, 422, "invalid_param", "/params/reduce"),
        (#"{"method": "crossmax", "logits": \#(logits), "weights": [1, 1, 1]}"#, 422, "invalid_input", "/weights"),
        (#"{"method": "median_logits", "logits": \#(logits), "weights": [1, 1, 1]}"#, 422, "invalid_input", "/weights"),
        (#"{"method": "mean_probs", "logits": \#(logits), "weights": [1, 1]}"#, 422, "invalid_shape", "/weights"),
        (#"{"method": "mean_probs", "logits": \#(logits), "weights": [1, -2, 1]}"#, 422, "invalid_input", "/weights/1"),
        (#"{"method": "majority_vote", "logits": \#(logits), "weights": [0, 0, 0]}"#, 422, "invalid_input", "/weights"),
        (#"{"method": "mean_logits", "logits": \#(logits), "weights": [1, 1e999, 1]}"#, 422, "non_finite", "/weights/1"),
    ])
    func errorsNameTheirFieldAndStatus(_ json: String, _ status: Int, _ code: String, _ field: String) throws {
        let lossd = try LossdProcess()
        let response = try post(lossd, json)
        #expect(response.status == status, "\(response.bodyText)")
        #expect(response.header("content-type") == "application/problem+json")
        #expect(response.json?["type"] as? String == "urn:lossd:error:\(code)", "\(response.bodyText)")
        #expect(response.json?["field"] as? String == field, "\(response.bodyText)")
    }

    @Test func transportErrorsAreProblems() throws {
        let lossd = try LossdProcess()
        let malformed = try post(lossd, #"{"method": "crossmax", "logits": [[[1, 2]]"#)
        #expect(malformed.status == 400)
        #expect(malformed.json?["type"] as? String == "urn:lossd:error:invalid_json")
        #expect(try post(lossd, "{}", contentType: "text/csv").status == 415)
        let wrongMethod = try lossd.connect().exchange(get("/v1/ensemble"))
        #expect(wrongMethod.status == 405)
        #expect(wrongMethod.header("allow") == "POST")
    }
}
