import Foundation
import LossdTestSupport
import Testing

/// `/v1/aggregate` through the real binary.
@Suite("lossd /v1/aggregate over real sockets")
struct AggregateEndpointTests {
    func post(_ lossd: LossdProcess, _ json: String) throws -> WireResponse {
        let body = Array(json.utf8)
        let client = try lossd.connect()
        try client.send("POST /v1/aggregate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: \(body.count)\r\n\r\n")
        try client.send(body)
        return try client.readResponse()
    }

    @Test func stringIDsAreEchoedInFirstSeenOrder() throws {
        let lossd = try LossdProcess()
        let response = try post(
            lossd,
            #"{"method": "dawid_skene", "num_classes": 3, "annotations": [["cat-7", "ann", 2], ["dog-1", "bob", 0], ["cat-7", "bob", 2], ["emu", "ann", 1], ["dog-1", "ann", 0]]}"#)
        #expect(response.status == 200, "\(response.bodyText)")
        #expect(response.header("content-type") == "application/json")
        #expect(response.bodyText.contains(#""items":["cat-7","dog-1","emu"]"#), "\(response.bodyText)")
        #expect(response.bodyText.contains(#""ids":["ann","bob"]"#), "\(response.bodyText)")
        let json = try #require(response.json)
        #expect(json["labels"] as? [Int] == [2, 0, 1])
        let soft = try #require(json["soft_labels"] as? [[Double]])
        #expect(soft.count == 3 && soft.allSatisfy { abs($0.reduce(0, +) - 1) < 1e-12 })
        let confusion = try #require((json["annotators"] as? [String: Any])?["confusion"] as? [[[Double]]])
        #expect(confusion.count == 2 && confusion[0].count == 3 && confusion[0][0].count == 3)
        #expect(json["converged"] as? Bool == true)
    }

    @Test func intIDsStayInts() throws {
        let lossd = try LossdProcess()
        // Packed as a numeric [A][3] array by the reader.
        let response = try post(
            lossd, #"{"method": "majority_vote", "num_classes": 2, "annotations": [[30, 5, 1], [10, 5, 0], [30, 4, 1], [20, 4, 0]]}"#)
        #expect(response.status == 200, "\(response.bodyText)")
        #expect(response.bodyText.contains(#""items":[30,10,20]"#), "\(response.bodyText)")
        #expect(response.bodyText.contains(#""ids":[5,4]"#), "\(response.bodyText)")
        // `1` and `"1"` are different ids; mixed rows are read too.
        let mixed = try post(
            lossd, #"{"method": "wawa", "num_classes": 2, "annotations": [[1, "1", 1], ["1", 1, 0], [1, 1, 1]], "params": {"items": ["1", 1, "x"]}}"#)
        #expect(mixed.status == 200, "\(mixed.bodyText)")
        #expect(mixed.bodyText.contains(#""items":["1",1,"x"]"#), "\(mixed.bodyText)")
        #expect(mixed.bodyText.contains(#""ids":["1",1]"#), "\(mixed.bodyText)")
        #expect(mixed.bodyText.contains(#""labels":[0,1,-1]"#), "\(mixed.bodyText)")
    }

    @Test func everyMethodAnswers() throws {
        let lossd = try LossdProcess()
        for method in ["majority_vote", "frequency", "softmax", "dawid_skene", "glad", "mace", "wawa", "zero_based_skill", "average"] {
            let response = try post(
                lossd,
                #"{"method": "\#(method)", "num_classes": 3, "annotations": [[0, "a", 0], [0, "b", 1], [1, "a", 1], [1, "b", 1], [1, "c", 0], [2, "c", 2]]}"#)
            #expect(response.status == 200, "\(method): \(response.bodyText)")
            #expect(response.json?["method"] as? String == method)
            #expect((response.json?["soft_labels"] as? [[Double]])?.count == 3)
        }
    }

    static let invalid: [(String, Int, String, String)] = [
        (#"{"method": "frequency", "num_classes": 2, "annotations": [[0, 1, 0], [1, 1, 2]]}"#, 422, "invalid_label", "/annotations/1/2"),
        (#"{"method": "frequency", "num_classes": 2, "annotations": []}"#, 422, "invalid_shape", "/annotations"),
        (#"{"method": "frequency", "num_classes": 2, "annotations": [[0, 1, 0], [1, 1]]}"#, 422, "invalid_shape", "/annotations/1"),
        (#"{"method": "frequency", "num_classes": 2, "annotations": [[0, "a", 0], [null, "a", 1]]}"#, 422, "invalid_input", "/annotations/1/0"),
        (#"{"method": "frequency", "num_classes": 2, "annotations": [[0, 0.5, 0]]}"#, 422, "invalid_input", "/annotations/0/1"),
        (#"{"method": "frequency", "num_classes": 2, "annotations": [[0, {}, 0]]}"#, 422, "invalid_input", "/annotations/0/1"),
        (#"{"method": "frequency", "num_classes": 2, "annotations": [[false, "a", 0]]}"#, 422, "invalid_input", "/annotations/0/0"),
        (#"{"method": "best", "num_classes": 2, "annotations": [[0, "a", 0]]}"#, 422, "invalid_param", "/method"),
        (#"{"method": "frequency", "num_classes": 20000, "annotations": [[0, "a", 0]]}"#, 422, "invalid_param", "/num_classes"),
        (#"{"method": "frequency", "annotations": [[0, "a", 0]]}"#, 422, "missing_field", "/num_classes"),
        (#"{"method": "glad", "num_classes": 2, "annotations": [[0, "a", 0]], "params": {"tol": -1}}"#, 422, "invalid_param", "/params/tol"),
        (#"{"method": "frequency", "num_classes": 2, "annotations": [[0, "a", 0], [1, "a", 1]], "params": {"items": [1]}}"#, 422, "invalid_input", "/params/items"),
        (#"{"method": "frequency", "num_classes": 2, "annotations": [[0, "a", 0]], "params": {"items": [0, 0]}}"#, 422, "invalid_input", "/params/items/1"),
    ]

    @Test func eachInvalidRequestIs422NamingTheField() throws {
        let lossd = try LossdProcess()
        for (body, status, code, field) in Self.invalid {
            let response = try post(lossd, body)
            #expect(response.status == status, "\(body): \(response.bodyText)")
            #expect(response.header("content-type") == "application/problem+json")
            #expect(response.json?["type"] as? String == "urn:lossd:error:\(code)", "\(body): \(response.bodyText)")
            #expect(response.json?["field"] as? String == field, "\(body): \(response.bodyText)")
        }
        let malformed = try post(lossd, #"{"method": "frequency", "#)
        #expect(malformed.status == 400)
    }
}
