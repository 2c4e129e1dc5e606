import Foundation
import LossdTestSupport
import Testing

/// Stored scaling laws (`/v1/scaling/laws`) through the real binary, on the SQLite store
/// and, when scripts/test.sh has started one, on PostgreSQL: a fit stored by name, read
/// back with its ETag, predicted from by name, PUT back under another name, conditional
/// writes, deletes, and the 4xx of every bad law. The routes are the calibrators'
/// (`StoredRoutes`), so names, ETags and 304/412 behave exactly alike.
@Suite("Stored scaling laws over real sockets")
struct ScalingLawStoreTests {
    static func send(
        _ lossd: LossdProcess, _ method: String, _ path: String, _ json: String? = nil, headers: [(String, String)] = []
    ) throws -> WireResponse {
        try PostgresStoreTests.send(lossd.port, method, path, json, headers: headers)
    }

    static func json(_ object: Any) throws -> String {
        String(decoding: try JSONSerialization.data(withJSONObject: object), as: UTF8.self)
    }

    @Test func onSQLite() throws {
        try Self.roundTrip(try LossdProcess(), prefix: "law")
    }

    @Test(.enabled(if: TestPostgres.available, TestPostgres.skipped))
    func onPostgreSQL() throws {
        try Self.roundTrip(try PostgresStoreTests.start(), prefix: TestPostgres.unique("law"))
    }

    static func roundTrip(_ lossd: LossdProcess, prefix: String) throws {
        let name = prefix + "-kaplan"
        // Fit with a name: 201, Location, ETag; the answer is the fit's.
        let fitBody = try json(["law": "power_law", "name": name, "data": ScalingEndpointTests.powerLawPoints])
        let fit = try send(lossd, "POST", "/v1/scaling/fit", fitBody)
        #expect(fit.status == 201, "\(fit.bodyText)")
        #expect(fit.header("location") == "/v1/scaling/laws/\(name)")
        let etag = try #require(fit.header("etag"))
        let fitted = try #require(fit.json?["params"] as? [String: Double])

        // GET answers the stored law with the same ETag; If-None-Match with it is a 304.
        let got = try send(lossd, "GET", "/v1/scaling/laws/\(name)")
        #expect(got.status == 200)
        #expect(got.header("etag") == etag)
        let law = try #require(got.json)
        #expect(law["name"] as? String == name && law["law"] as? String == "power_law")
        #expect(law["params"] as? [String: Double] == fitted)
        #expect((law["options"] as? [String: Any])?["irreducible"] as? Bool == true)
        #expect(law["fitted_on"] as? Int == 9)
        #expect(Set(law.keys) == ["name", "law", "params", "options", "fitted_on", "created_at"])
        let notModified = try send(lossd, "GET", "/v1/scaling/laws/\(name)", headers: [("If-None-Match", etag)])
        #expect(notModified.status == 304 && notModified.body.isEmpty)

        // The listing.
        let listed = try #require(try send(lossd, "GET", "/v1/scaling/laws").json?["laws"] as? [[String: Any]])
        let line = try #require(listed.first { $0["name"] as? String == name })
        #expect(line["law"] as? String == "power_law" && line["fitted_on"] as? Int == 9 && line["created_at"] is String)

        // Predicting by name answers exactly what predicting with the inline law does.
        let byName = try send(lossd, "POST", "/v1/scaling/predict", try json(["name": name, "x": [1e11, 1e12], "target_loss": 1.8]))
        let inline = try send(
            lossd, "POST", "/v1/scaling/predict", try json(["law": "power_law", "params": fitted, "x": [1e11, 1e12], "target_loss": 1.8]))
        #expect(byName.status == 200, "\(byName.bodyText)")
        // (The inline params went through JSONSerialization, which may round the last digit.)
        let byNameLoss = try #require(byName.json?["loss"] as? [Double]), inlineLoss = try #require(inline.json?["loss"] as? [Double])
        #expect(byNameLoss.count == 2 && zip(byNameLoss, inlineLoss).allSatisfy { abs($0 / $1 - 1) < 1e-12 })
        let xForLoss = (byName.json?["derived"] as? [String: Any])?["x_for_loss"] as? Double ?? 0
        #expect(abs(xForLoss / ((inline.json?["derived"] as? [String: Any])?["x_for_loss"] as? Double ?? 1) - 1) < 1e-12)

        // The GET's answer PUT back under another name is a new law with the same params.
        let copy = prefix + "-copy"
        let put = try send(lossd, "PUT", "/v1/scaling/laws/\(copy)", got.bodyText)
        #expect(put.status == 201, "\(put.bodyText)")
        #expect(put.header("location") == "/v1/scaling/laws/\(copy)")
        let copyTag = try #require(put.header("etag"))
        #expect(copyTag != etag)
        #expect(put.json?["params"] as? [String: Double] == fitted)
        #expect(put.json?["name"] as? String == copy)
        // Conditional writes: a stale If-Match and If-None-Match: * on an existing law are 412.
        let changed = try json(["law": "power_law", "params": ["L_inf": 1.5, "x0": 1e7, "alpha": 0.3]])
        #expect(try send(lossd, "PUT", "/v1/scaling/laws/\(copy)", changed, headers: [("If-Match", etag)]).status == 412)
        #expect(try send(lossd, "PUT", "/v1/scaling/laws/\(copy)", changed, headers: [("If-None-Match", "*")]).status == 412)
        let replaced = try send(lossd, "PUT", "/v1/scaling/laws/\(copy)", changed, headers: [("If-Match", copyTag)])
        #expect(replaced.status == 200, "\(replaced.bodyText)")
        #expect(replaced.json?["fitted_on"] is NSNull)
        let newTag = try #require(replaced.header("etag"))
        // A fit stored with If-None-Match: * over an existing name is refused and stores nothing.
        let refitBody = try json(["law": "power_law", "name": copy, "data": ScalingEndpointTests.powerLawPoints])
        #expect(try send(lossd, "POST", "/v1/scaling/fit", refitBody, headers: [("If-None-Match", "*")]).status == 412)
        #expect(try send(lossd, "GET", "/v1/scaling/laws/\(copy)").header("etag") == newTag)

        // A calibrator may share the name: the collections are separate.
        let calibrator = try send(lossd, "PUT", "/v1/calibrators/\(name)", PostgresStoreTests.temperatureBody(1.5))
        #expect(calibrator.status == 201)
        #expect(try send(lossd, "GET", "/v1/scaling/laws/\(name)").header("etag") == etag)

        // Deletes: a stale tag is 412, the current one 204, then 404 everywhere.
        #expect(try send(lossd, "DELETE", "/v1/scaling/laws/\(copy)", headers: [("If-Match", copyTag)]).status == 412)
        #expect(try send(lossd, "DELETE", "/v1/scaling/laws/\(copy)", headers: [("If-Match", newTag)]).status == 204)
        #expect(try send(lossd, "GET", "/v1/scaling/laws/\(copy)").status == 404)
        #expect(try send(lossd, "DELETE", "/v1/scaling/laws/\(copy)").status == 404)
        let gone = try send(lossd, "POST", "/v1/scaling/predict", try json(["name": copy, "x": [1e9]]))
        #expect(gone.status == 404)
        #expect(try send(lossd, "DELETE", "/v1/scaling/laws/\(name)").status == 204)
        #expect(try send(lossd, "DELETE", "/v1/calibrators/\(name)").status == 204)
        #expect(try send(lossd, "GET", "/v1/calibrators/\(name)").status == 404)
    }

    /// Every bad law, name or predict-by-name request: status and pointer.
    static let badRequests: [(method: String, path: String, body: String, status: Int, field: String?)] = [
        ("PUT", "/v1/scaling/laws/x", #"{"law": "power_law", "params": {"L_inf": 1, "x0": 1e6}}"#, 422, "/params/alpha"),
        ("PUT", "/v1/scaling/laws/x", #"{"law": "kaplan", "params": {}}"#, 422, "/law"),
        ("PUT", "/v1/scaling/laws/x", #"{"params": {"L_inf": 1, "x0": 1e6, "alpha": 0.3}}"#, 422, "/law"),
        ("PUT", "/v1/scaling/laws/x", #"{"law": "power_law", "params": {"L_inf": 1, "x0": 1e6, "alpha": 0.3, "beta": 1}}"#, 422, "/params/beta"),
        ("PUT", "/v1/scaling/laws/x", #"{"law": "power_law", "params": {"L_inf": 1, "x0": -1, "alpha": 0.3}}"#, 422, "/params/x0"),
        ("PUT", "/v1/scaling/laws/x", #"{"law": "lr_annealing", "params": {"L0": 2, "A": 1, "alpha": 0.5, "C": 1}, "options": {"decay": 2}}"#, 422, "/options/decay"),
        ("PUT", "/v1/scaling/laws/x", #"{"law": "power_law", "params": {"L_inf": 1, "x0": 1e6, "alpha": 0.3}, "options": {"irreducable": true}}"#, 422, "/options/irreducable"),
        ("PUT", "/v1/scaling/laws/x", #"{"law": "power_law", "params": {"L_inf": 1, "x0": 1e6, "alpha": 0.3}, "fitted_on": -1}"#, 422, "/fitted_on"),
        ("PUT", "/v1/scaling/laws/x", #"{"law": "power_law", "params": {"L_inf": 1, "x0": 1e6, "alpha": 0.3}, "fit": {}}"#, 422, "/fit"),
        ("PUT", "/v1/scaling/laws/..", #"{"law": "power_law", "params": {"L_inf": 1, "x0": 1e6, "alpha": 0.3}}"#, 422, nil),
        ("GET", "/v1/scaling/laws/a%20b", "", 422, nil),
        ("POST", "/v1/scaling/fit", #"{"law": "power_law", "name": 7, "data": []}"#, 422, "/name"),
        ("POST", "/v1/scaling/predict", #"{"name": "x", "law": "power_law", "x": [1]}"#, 422, "/name"),
        ("POST", "/v1/scaling/predict", #"{"name": "no-such-law", "x": [1]}"#, 404, nil),
    ]

    @Test func badLawsAndNamesAreRefusedWithTheirPointer() throws {
        let lossd = try LossdProcess()
        for request in Self.badRequests {
            let answer = try Self.send(lossd, request.method, request.path, request.body.isEmpty ? nil : request.body)
            #expect(answer.status == request.status, "\(request.path) \(request.body): \(answer.bodyText)")
            #expect(answer.json?["field"] as? String == request.field, "\(request.body): \(answer.bodyText)")
        }
        // Nothing was stored by any of them.
        #expect((try Self.send(lossd, "GET", "/v1/scaling/laws").json?["laws"] as? [Any])?.isEmpty == true)
    }

    @Test func aStoredLrAnnealingLawPredictsAScheduleByName() throws {
        let lossd = try LossdProcess()
        let law = #"{"law": "lr_annealing", "params": {"L0": 2.0, "A": 1.5, "alpha": 0.5, "C": 0.8}, "options": {"decay": 0.999, "warmup_steps": 2}}"#
        #expect(try Self.send(lossd, "PUT", "/v1/scaling/laws/wsd", law).status == 201)
        let schedule = (0..<40).map { $0 < 30 ? 1e-3 : 1e-3 * Double(40 - $0) / 10 }
        let byName = try Self.send(lossd, "POST", "/v1/scaling/predict", try Self.json(["name": "wsd", "curve": ["lr": schedule]]))
        let inline = try Self.send(
            lossd, "POST", "/v1/scaling/predict",
            try Self.json([
                "law": "lr_annealing", "params": ["L0": 2.0, "A": 1.5, "alpha": 0.5, "C": 0.8, "decay": 0.999, "warmup_steps": 2],
                "curve": ["lr": schedule],
            ]))
        #expect(byName.status == 200, "\(byName.bodyText)")
        #expect(byName.bodyText == inline.bodyText)
        #expect((byName.json?["loss"] as? [Double])?.count == 38)
    }
}
