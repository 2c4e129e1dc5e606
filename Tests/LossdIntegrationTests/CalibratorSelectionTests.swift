import Foundation
import LossdTestSupport
import Testing

/// `POST /v1/calibrators/select` through the real binary, on the committed digits fixture
/// (Tests/LossdKernelsTests/Fixtures/digits_logits.json: an over-confident logistic
/// regression on scikit-learn's digits, 10 classes).
@Suite("lossd calibrator selection over real sockets")
struct CalibratorSelectionTests {
    /// Both splits of the fixture, 1079 rows.
    static func digits() throws -> (logits: [[Double]], labels: [Int]) {
        let url = LossdProcess.packageRoot.appendingPathComponent("Tests/LossdKernelsTests/Fixtures/digits_logits.json")
        let root = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
        var logits: [[Double]] = [], labels: [Int] = []
        for split in ["fit", "heldout"] {
            let part = try #require(root[split] as? [String: Any])
            logits += try #require(part["logits"] as? [[Double]])
            labels += try #require(part["labels"] as? [Int])
        }
        return (logits, labels)
    }

    func post(_ lossd: LossdProcess, _ path: String, _ body: [String: Any], headers: String = "") throws -> WireResponse {
        // A debug build on a loaded machine takes tens of seconds for the digits selection.
        let client = try RawClient(port: lossd.port, receiveTimeout: 600)
        let data = Array(try JSONSerialization.data(withJSONObject: body))
        try client.send(
            "POST \(path) HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\(headers)Content-Length: \(data.count)\r\n\r\n")
        try client.send(data)
        return try client.readResponse()
    }

    @Test func digitsSelectionStoresAWinnerThatApplies() throws {
        let lossd = try LossdProcess(["--request-timeout", "600"])
        let (logits, labels) = try Self.digits()
        let request: [String: Any] = ["logits": logits, "labels": labels, "folds": 5, "seed": 0, "name": "digits-best"]
        let response = try post(lossd, "/v1/calibrators/select", request)
        #expect(response.status == 201, "\(response.bodyText.prefix(400))")
        #expect(response.header("location") == "/v1/calibrators/digits-best")
        let etag = try #require(response.header("etag"))
        let json = try #require(response.json)
        let ranking = try #require(json["ranking"] as? [[String: Any]])
        #expect(ranking.count == 7)
        let means = ranking.compactMap { $0["mean"] as? Double }
        #expect(means == means.sorted(), "ranking not sorted: \(means)")
        let best = try #require(json["best"] as? [String: Any])
        #expect(best["method"] as? String == ranking.first?["method"] as? String)
        #expect(best["name"] as? String == "digits-best")
        #expect(best["fitted_on"] as? Int == labels.count)
        let uncalibrated = try #require((json["uncalibrated"] as? [String: Any])?["mean"] as? Double)
        #expect(means[0] < uncalibrated, "the winner beats the over-confident model")

        // The table for the closing note.
        var table = "method                 mean NLL   std      fit failures\n"
        for row in ranking {
            let method = (row["method"] as? String ?? "").padding(toLength: 22, withPad: " ", startingAt: 0)
            let mean = (row["mean"] as? Double).map { String(format: "%.5f", $0) } ?? "  -    "
            let std = (row["std"] as? Double).map { String(format: "%.5f", $0) } ?? "  -    "
            table += "\(method) \(mean)    \(std)  \((row["fit_failures"] as? [Any])?.count ?? -1)\n"
        }
        table += "uncalibrated           \(String(format: "%.5f", uncalibrated))\n"
        try? table.write(toFile: NSTemporaryDirectory() + "lossd-digits-selection.txt", atomically: true, encoding: .utf8)
        print(table)

        // Deterministic for a seed (store aside): the same ranking again.
        var again = request
        again["name"] = nil
        let second = try post(lossd, "/v1/calibrators/select", again)
        #expect(second.status == 200)
        let rankingAgain = try #require(second.json?["ranking"] as? [[String: Any]])
        #expect(
            try JSONSerialization.data(withJSONObject: rankingAgain, options: .sortedKeys)
                == JSONSerialization.data(withJSONObject: ranking, options: .sortedKeys))

        // The stored winner applies: by name, the same probabilities as `best` inline.
        let sample = Array(logits.prefix(50))
        let byName = try post(lossd, "/v1/calibrate", ["name": "digits-best", "logits": sample])
        var inline = best
        inline["name"] = nil
        let byObject = try post(lossd, "/v1/calibrate", ["calibrator": inline, "logits": sample])
        #expect(byName.status == 200, "\(byName.bodyText.prefix(300))")
        #expect(byObject.status == 200, "\(byObject.bodyText.prefix(300))")
        let p1 = try #require(byName.json?["probs"] as? [[Double]]), p2 = try #require(byObject.json?["probs"] as? [[Double]])
        #expect(p1 == p2)

        // The store's rules: If-None-Match: * refuses to overwrite (412); If-Match with the
        // current ETag replaces (201 with a new ETag).
        var small = request
        small["logits"] = Array(logits.prefix(200))
        small["labels"] = Array(labels.prefix(200))
        small["methods"] = ["temperature"]
        let refused = try post(lossd, "/v1/calibrators/select", small, headers: "If-None-Match: *\r\n")
        #expect(refused.status == 412, "\(refused.bodyText.prefix(300))")
        let replaced = try post(lossd, "/v1/calibrators/select", small, headers: "If-Match: \(etag)\r\n")
        #expect(replaced.status == 201, "\(replaced.bodyText.prefix(300))")
        #expect(replaced.header("etag") != etag)
        let stale = try post(lossd, "/v1/calibrators/select", small, headers: "If-Match: \(etag)\r\n")
        #expect(stale.status == 412)
    }

    @Test func errorsAndTheSVG() throws {
        let lossd = try LossdProcess()
        let (logits, labels) = try Self.digits()
        let rows = Array(logits.prefix(120)), ys = Array(labels.prefix(120))
        let bad = try post(lossd, "/v1/calibrators/select", ["logits": rows, "labels": ys, "methods": ["platt"]])
        #expect(bad.status == 422)
        #expect(bad.json?["field"] as? String == "/methods/0")
        let folds = try post(lossd, "/v1/calibrators/select", ["logits": rows, "labels": ys, "folds": 25])
        #expect(folds.status == 422 && folds.json?["field"] as? String == "/folds")
        let reserved = try post(lossd, "/v1/calibrators/select", ["logits": rows, "labels": ys, "name": "select"])
        #expect(reserved.status == 422 && reserved.json?["field"] as? String == "/name")
        let svg = try post(lossd, "/v1/calibrators/select", ["logits": rows, "labels": ys, "folds": 3], headers: "Accept: image/svg+xml\r\n")
        #expect(svg.status == 200)
        #expect(svg.header("content-type")?.hasPrefix("image/svg+xml") == true)
        #expect(svg.bodyText.contains("Calibrator selection"))
    }
}
