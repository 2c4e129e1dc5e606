import Foundation
import LossdHTTP
import LossdJSON
import Testing

@testable import LossdService
@testable import LossdStore

/// Numerical and contract edge cases found by an independent review, each checked against
/// a value computed here independently of the service's kernels.
@Suite("Contract edge cases")
struct ContractEdgeCaseTests {
    let context = RequestContext(requestID: "t-1", remoteAddress: "127.0.0.1")

    func call(
        _ service: LossdService, _ method: String, _ path: String, _ json: String? = nil, headers: [(String, String)] = []
    ) -> (status: Int, object: [String: Any]) {
        var fields: HTTPHeaders = ["Host": "x", "Content-Type": "application/json"]
        for (name, value) in headers { fields.add(name: name, value: value) }
        let head = HTTPRequestHead(method: method, target: path, version: .http1_1, headers: fields)
        let response = service.respond(to: HTTPRequest(head: head, body: Array((json ?? "").utf8)), context: context)
        let object = (try? JSONSerialization.jsonObject(with: Data(response.body))) as? [String: Any] ?? [:]
        return (response.status.code, object)
    }

    func withStore<R>(_ body: (LossdService) throws -> R) throws -> R {
        let directory = NSTemporaryDirectory() + "lossd-edge-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let store = try SQLiteDocumentStore(directory: directory)
        defer { store.close() }
        let service = LossdService(configuration: ServiceConfiguration(dataDirectory: directory))
        service.attachStore(store)
        return try body(service)
    }

    /// log-softmax of a row, computed plainly with a max shift.
    static func logSoftmax(_ row: [Double]) -> [Double] {
        let m = row.max()!
        let s = row.reduce(0) { $0 + exp($1 - m) }
        return row.map { ($0 - m) - log(s) }
    }

    /// pass_at_n where the label's log-probability is about −2000 and −5000: the series of
    /// the stable recipe gives −log p − log n − log1p(−(n−1)p/2) = −log p − log n (p
    /// underflows), and the gradient is w·(softmax − e_y) with w → 1.
    @Test func passAtNStaysFiniteAtExtremeLogitScales() throws {
        let service = LossdService(configuration: ServiceConfiguration())
        let rows: [[Double]] = [[1000, -1000, 0], [-1000, 1000, 500], [1000, -4000, 1000]]
        let labels = [1, 0, 1]
        let json = #"{"loss": "pass_at_n", "params": {"n": 16}, "logits": \#(rows), "labels": \#(labels), "reduction": "none", "return_grad": true}"#
        let answer = call(service, "POST", "/v1/loss", json)
        #expect(answer.status == 200, "\(answer.object)")
        let values = answer.object["values"] as? [Double] ?? []
        #expect(values.count == 3)
        for (r, row) in rows.enumerated() {
            let logP = Self.logSoftmax(row)[labels[r]]
            let expected = -logP - log(16.0)
            #expect(abs(values[r] - expected) <= 1e-9 * abs(expected), "row \(r): \(values[r]) vs \(expected)")
        }
        let grad = (answer.object["grad"] as? [String: Any])?["logits"] as? [[Double]] ?? []
        #expect(grad.count == 3 && grad.allSatisfy { $0.allSatisfy(\.isFinite) })
        // Row 0: softmax ≈ e_0, so the gradient ≈ w·(e_0 − e_1) with w ≈ 1.
        #expect(abs(grad[0][0] - 1) < 1e-9 && abs(grad[0][1] + 1) < 1e-9)
        // The same through log_probs.
        let direct = call(service, "POST", "/v1/loss", #"{"loss": "pass_at_n", "log_probs": [-5000, -1e6], "reduction": "none", "return_grad": true}"#)
        #expect(direct.status == 200, "\(direct.object)")
        let directValues = direct.object["values"] as? [Double] ?? []
        #expect(directValues.count == 2 && abs(directValues[0] - (5000 - log(16.0))) < 1e-9)
    }

    /// The label holds the maximum by hundreds: p = 1 − (tiny) with 1 − p below the
    /// log-sum-exp's rounding. The loss and weight are then (near) 0, never an overflow.
    @Test(arguments: [1.5, 16, 1e12])
    func passAtNOnAConfidentRowIsZeroNotAnOverflow(_ n: Double) throws {
        let service = LossdService(configuration: ServiceConfiguration())
        let rows: [[Double]] = [[1000, -1000, -1000], [613.2, -214.3, 100], [1000, 940.8, -5000]]
        let json = #"{"loss": "pass_at_n", "params": {"n": \#(n)}, "logits": \#(rows), "labels": [0, 0, 0], "reduction": "none", "return_grad": true}"#
        let answer = call(service, "POST", "/v1/loss", json)
        #expect(answer.status == 200, "\(answer.object)")
        let values = answer.object["values"] as? [Double] ?? []
        let weights = (answer.object["extras"] as? [String: Any])?["weight"] as? [Double] ?? []
        #expect(values.count == 3 && weights.count == 3)
        for (r, row) in rows.enumerated() {
            // 1 − p ≈ Σ_{k≠y} exp(z_k − z_y); ℓ = −log(1 − (1 − p)^n) ≈ (1 − p)^n.
            let q = row.dropFirst().reduce(0) { $0 + exp($1 - row[0]) }
            let expected = n == 1 ? q : pow(q, n)
            #expect(values[r] >= 0 && abs(values[r] - expected) <= 1e-12 * max(expected, 1e-300) + 1e-300, "row \(r): \(values[r]) vs \(expected)")
            // w = n·p·(1 − p)^(n−1) / (1 − (1 − p)^n) ≈ n·q^(n−1).
            let weight = n * pow(q, n - 1)
            #expect(abs(weights[r] - weight) <= 1e-9 * weight + 1e-300, "row \(r) weight \(weights[r]) vs \(weight)")
        }
    }

    /// The fit report's `nll_before` is the true NLL of the logits (log-softmax, no clip):
    /// at logit scales of 50 to 1000, clipped probabilities gave 18.2 instead of 131.
    @Test func fitReportNLLBeforeUsesLogSoftmaxWithoutClipping() throws {
        let service = LossdService(configuration: ServiceConfiguration())
        let logits: [[Double]] = [[50, 0, -50], [0, 200, -100], [1000, 0, 10], [-80, 60, 0], [3, 1, 2], [0, 0, 400]]
        let labels = [1, 0, 2, 0, 0, 1]
        let json = #"{"method": "temperature", "logits": \#(logits), "labels": \#(labels)}"#
        let answer = call(service, "POST", "/v1/calibrators/fit", json)
        #expect(answer.status == 200, "\(answer.object)")
        let fit = answer.object["fit"] as? [String: Any] ?? [:]
        let expected = zip(logits, labels).map { -Self.logSoftmax($0)[$1] }.reduce(0, +) / Double(labels.count)
        let reported = fit["nll_before"] as? Double ?? .nan
        #expect(abs(reported - expected) <= 1e-9 * expected, "nll_before \(reported), true NLL \(expected)")
        #expect(expected > 100)
    }

    /// Entries 1e300, −1e300, 0, 1e300, 5 of one row: the two maxima split the probability.
    @Test(arguments: ["mean_logits", "median_logits", "crossmax"])
    func ensembleProbabilitiesSplitTiesAtExtremeValues(_ method: String) throws {
        let service = LossdService(configuration: ServiceConfiguration())
        let json = #"{"method": "\#(method)", "logits": [[[1e300, -1e300, 0, 1e300, 5]]]}"#
        let answer = call(service, "POST", "/v1/ensemble", json)
        #expect(answer.status == 200, "\(answer.object)")
        let probs = (answer.object["probs"] as? [[Double]])?.first ?? []
        if method == "crossmax" {
            // CrossMax subtracts each row's own maximum first; the tie still splits evenly.
            #expect(probs.count == 5 && abs(probs[0] - probs[3]) < 1e-12, "\(probs)")
        } else {
            #expect(probs == [0.5, 0, 0, 0.5, 0], "\(probs)")
        }
    }

    /// A PUT body is the model itself: an invalid parameter is `/params/NAME`.
    @Test func putPointersNameTheFieldsOfThePutBody() throws {
        try withStore { service in
            let bad = call(service, "PUT", "/v1/calibrators/t1", #"{"method": "temperature", "classes": 3, "params": {"temperature": -1}}"#)
            #expect(bad.status == 422)
            #expect(bad.object["field"] as? String == "/params/temperature", "\(bad.object)")
            let inline = call(
                service, "POST", "/v1/calibrate",
                #"{"calibrator": {"method": "temperature", "classes": 3, "params": {"temperature": -1}}, "logits": [[1, 2, 3]]}"#)
            #expect(inline.object["field"] as? String == "/calibrator/params/temperature", "\(inline.object)")
        }
    }

    @Test(arguments: ["%2E", "%2E%2E", ".", ".."])
    func dotSegmentNamesAreRefused(_ name: String) throws {
        try withStore { service in
            let answer = call(service, "PUT", "/v1/calibrators/\(name)", #"{"method": "temperature", "classes": 3, "params": {"temperature": 1.5}}"#)
            // A raw `.`/`..` segment is not matched by the route (404); encoded, it is a 422.
            #expect(answer.status == 422 || answer.status == 404, "\(answer.object)")
            #expect(answer.status != 201)
        }
    }

    @Test func locationIsPercentEncoded() {
        #expect(CalibratorResource.location("model-1.v2_b") == "/v1/calibrators/model-1.v2_b")
        #expect(CalibratorResource.location("..") == "/v1/calibrators/%2E%2E")
        #expect(CalibratorResource.location("a/b c") == "/v1/calibrators/a%2Fb%20c")
    }

    @Test func twoAuthorizationHeadersAreABadRequest() {
        let service = LossdService(configuration: ServiceConfiguration(apiKey: "s3cret"))
        let two = call(
            service, "GET", "/v1/version", headers: [("Authorization", "Bearer s3cret"), ("Authorization", "Bearer other")])
        #expect(two.status == 400)
        let one = call(service, "GET", "/v1/version", headers: [("Authorization", "Bearer s3cret")])
        #expect(one.status == 200)
    }

    /// Shape errors say what arrived, and point at the first ragged row or bad element.
    @Test(arguments: [
        (#"[1, 2, 3]"#, "/logits", "got a 1-D array of 3 numbers"),
        (#"[[1, 2, 3], [4, 5]]"#, "/logits/1", "row 1 of `logits` has 2 entries, row 0 has 3"),
        (#"[[[1, 2], [3, 4]]]"#, "/logits", "got a 3-D array of shape [1][2][2]"),
        (#""1,2,3""#, "/logits", "got a string"),
        (#"[[1, "2", 3]]"#, "/logits/0/1", "`logits[0][1]` is a string, not a number or an array"),
        (#"[[1, 2], 3]"#, "/logits/1", "`logits[1]` is a number but `logits[0]` is an array"),
        (#"[]"#, "/logits", "got an empty array"),
    ] as [(String, String, String)])
    func shapeErrorsNameWhatArrived(_ logits: String, _ pointer: String, _ arrived: String) {
        let service = LossdService(configuration: ServiceConfiguration())
        let answer = call(service, "POST", "/v1/loss", #"{"loss": "cross_entropy", "logits": \#(logits), "labels": [0]}"#)
        #expect(answer.status == 422)
        #expect(answer.object["field"] as? String == pointer, "\(answer.object)")
        let detail = answer.object["detail"] as? String ?? ""
        #expect(detail.hasPrefix("`logits` must be a rectangular 2-D array"), "\(detail)")
        #expect(detail.hasSuffix(arrived), "\(detail)")
    }
}
