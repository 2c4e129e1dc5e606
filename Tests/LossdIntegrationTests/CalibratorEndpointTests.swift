import Foundation
import LossdTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// The calibrator routes and the durable store, through the real binary.
@Suite("lossd calibrators over real sockets")
struct CalibratorEndpointTests {
    static let logits = "[[2.0, 0.5, -1.0], [0.1, 0.2, 0.3], [1.5, -0.5, 0.2], [-1.0, 2.5, 0.0], [0.3, 0.1, 1.8], [2.2, 2.0, -0.4], [0.0, 1.0, 0.9], [1.1, -0.2, 0.4]]"
    static let labels = "[0, 2, 0, 1, 2, 1, 2, 0]"

    func send(_ lossd: LossdProcess, _ method: String, _ path: String, _ json: String? = nil) throws -> WireResponse {
        let client = try lossd.connect()
        if let json {
            let body = Array(json.utf8)
            try client.send(
                "\(method) \(path) HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: \(body.count)\r\n\r\n")
            try client.send(body)
        } else {
            try client.send("\(method) \(path) HTTP/1.1\r\nHost: x\r\n\r\n")
        }
        return try client.readResponse()
    }

    func fitTemperature(_ lossd: LossdProcess, name: String?) throws -> WireResponse {
        let nameMember = name.map { #", "name": "\#($0)""# } ?? ""
        return try send(
            lossd, "POST", "/v1/calibrators/fit",
            #"{"method": "temperature", "logits": \#(Self.logits), "labels": \#(Self.labels)\#(nameMember)}"#)
    }

    static func temporaryDirectory() -> String {
        NSTemporaryDirectory() + "lossd-calibrators-\(UUID().uuidString)"
    }

    @Test func fitWithoutNameAnswers200WithTheReport() throws {
        let lossd = try LossdProcess()
        let response = try fitTemperature(lossd, name: nil)
        #expect(response.status == 200, "\(response.bodyText)")
        #expect(response.header("location") == nil)
        let json = try #require(response.json)
        let calibrator = try #require(json["calibrator"] as? [String: Any])
        #expect(calibrator["method"] as? String == "temperature")
        #expect(calibrator["classes"] as? Int == 3)
        #expect(calibrator["fitted_on"] as? Int == 8)
        #expect(calibrator["name"] == nil)
        let temperature = try #require((calibrator["params"] as? [String: Any])?["temperature"] as? Double)
        #expect(temperature > 0)
        let fit = try #require(json["fit"] as? [String: Any])
        for key in ["iterations", "converged", "nll_before", "nll_after", "ece_before", "ece_after"] {
            #expect(fit[key] != nil, "fit.\(key) missing: \(response.bodyText)")
        }
        let before = try #require(fit["nll_before"] as? Double), after = try #require(fit["nll_after"] as? Double)
        #expect(after <= before + 1e-12)
        // Nothing was stored.
        #expect(try send(lossd, "GET", "/v1/calibrators").bodyText == #"{"calibrators":[]}"#)
    }

    @Test func fitWithNameStoresThenGetApplyListDelete() throws {
        let lossd = try LossdProcess()
        let fit = try fitTemperature(lossd, name: "ts-1")
        #expect(fit.status == 201, "\(fit.bodyText)")
        #expect(fit.header("location") == "/v1/calibrators/ts-1")
        let fitted = try #require(fit.json?["calibrator"] as? [String: Any])
        #expect(fitted["name"] as? String == "ts-1")

        let get = try send(lossd, "GET", "/v1/calibrators/ts-1")
        #expect(get.status == 200, "\(get.bodyText)")
        let stored = try #require(get.json)
        #expect(stored["name"] as? String == "ts-1")
        #expect(stored["method"] as? String == "temperature")
        #expect(stored["created_at"] as? String == fitted["created_at"] as? String)
        #expect(
            (stored["params"] as? [String: Any])?["temperature"] as? Double
                == (fitted["params"] as? [String: Any])?["temperature"] as? Double)

        let list = try send(lossd, "GET", "/v1/calibrators")
        #expect(list.status == 200)
        let items = try #require(list.json?["calibrators"] as? [[String: Any]])
        #expect(items.count == 1)
        #expect(items.first?["name"] as? String == "ts-1" && items.first?["classes"] as? Int == 3)
        #expect(items.first?["method"] as? String == "temperature" && items.first?["created_at"] is String)

        let apply = try send(lossd, "POST", "/v1/calibrators/ts-1/apply", #"{"logits": [[2.0, 0.5, -1.0], [0.1, 0.3, 0.2]]}"#)
        #expect(apply.status == 200, "\(apply.bodyText)")
        let probs = try #require(apply.json?["probs"] as? [[Double]])
        #expect(probs.count == 2 && probs.allSatisfy { $0.count == 3 && abs($0.reduce(0, +) - 1) < 1e-12 })
        #expect(apply.json?["predictions"] as? [Int] == [0, 1])

        let byName = try send(lossd, "POST", "/v1/calibrate", #"{"name": "ts-1", "logits": [[2.0, 0.5, -1.0], [0.1, 0.3, 0.2]]}"#)
        #expect(byName.status == 200)
        #expect(byName.json?["probs"] as? [[Double]] == probs)

        // A different C than fitted is a 422.
        let wrongC = try send(lossd, "POST", "/v1/calibrators/ts-1/apply", #"{"logits": [[2.0, 0.5], [0.1, 0.3]]}"#)
        #expect(wrongC.status == 422, "\(wrongC.bodyText)")
        #expect(wrongC.json?["field"] as? String == "/logits")

        let delete = try send(lossd, "DELETE", "/v1/calibrators/ts-1")
        #expect(delete.status == 204)
        #expect(delete.body.isEmpty)
        for (method, path) in [("GET", "/v1/calibrators/ts-1"), ("DELETE", "/v1/calibrators/ts-1")] {
            let gone = try send(lossd, method, path)
            #expect(gone.status == 404, "\(method) \(path)")
            #expect(gone.header("content-type") == "application/problem+json")
        }
        let applyGone = try send(lossd, "POST", "/v1/calibrators/ts-1/apply", #"{"logits": [[1, 2, 3]]}"#)
        #expect(applyGone.status == 404)
    }

    @Test func inlineCalibrate() throws {
        let lossd = try LossdProcess()
        let response = try send(
            lossd, "POST", "/v1/calibrate",
            #"{"calibrator": {"method": "temperature", "params": {"temperature": 2}}, "logits": [[2.0, 0.0], [0.0, 0.0], [-1, 1]]}"#)
        #expect(response.status == 200, "\(response.bodyText)")
        let probs = try #require(response.json?["probs"] as? [[Double]])
        let expected = 1 / (1 + exp(-1.0))
        #expect(abs(probs[0][0] - expected) < 1e-12)
        #expect(probs[1] == [0.5, 0.5])
        #expect(response.json?["predictions"] as? [Int] == [0, 0, 1])

        // Validated through the definition: a non-positive temperature is a 422.
        let invalid = try send(
            lossd, "POST", "/v1/calibrate",
            #"{"calibrator": {"method": "temperature", "params": {"temperature": -1}}, "logits": [[2.0, 0.0]]}"#)
        #expect(invalid.status == 422, "\(invalid.bodyText)")
        // Unknown method, missing calibrator, both calibrator and name.
        let unknown = try send(
            lossd, "POST", "/v1/calibrate", #"{"calibrator": {"method": "nope", "params": {}}, "logits": [[2.0, 0.0]]}"#)
        #expect(unknown.status == 422)
        #expect(unknown.json?["field"] as? String == "/calibrator/method")
        #expect(try send(lossd, "POST", "/v1/calibrate", #"{"logits": [[2.0, 0.0]]}"#).status == 422)
        let both = try send(
            lossd, "POST", "/v1/calibrate",
            #"{"name": "x", "calibrator": {"method": "temperature", "params": {"temperature": 1}}, "logits": [[2.0, 0.0]]}"#)
        #expect(both.status == 422)
        #expect(try send(lossd, "POST", "/v1/calibrate", #"{"name": "missing", "logits": [[2.0, 0.0]]}"#).status == 404)
    }

    @Test func putCreatesThenReplaces() throws {
        let lossd = try LossdProcess()
        let create = try send(
            lossd, "PUT", "/v1/calibrators/manual.v1", #"{"method": "temperature", "params": {"temperature": 1.5}, "classes": 3}"#)
        #expect(create.status == 201, "\(create.bodyText)")
        #expect(create.header("location") == "/v1/calibrators/manual.v1")
        #expect(create.json?["name"] as? String == "manual.v1")
        #expect((create.json?["params"] as? [String: Any])?["temperature"] as? Double == 1.5)

        let replace = try send(
            lossd, "PUT", "/v1/calibrators/manual.v1", #"{"method": "temperature", "params": {"temperature": 0.5}, "classes": 3}"#)
        #expect(replace.status == 200, "\(replace.bodyText)")
        #expect(replace.header("location") == nil)
        let get = try send(lossd, "GET", "/v1/calibrators/manual.v1")
        #expect((get.json?["params"] as? [String: Any])?["temperature"] as? Double == 0.5)

        // A GET's answer can be PUT back under another name.
        let copy = try send(lossd, "PUT", "/v1/calibrators/copy", String(decoding: get.body, as: UTF8.self))
        #expect(copy.status == 201, "\(copy.bodyText)")

        // Invalid models are refused and leave the stored one alone.
        for body in [
            #"{"method": "temperature", "params": {"temperature": 0}, "classes": 3}"#,
            #"{"method": "temperature", "params": {"temperature": 1}}"#,
            #"{"method": "temperature", "classes": 3}"#,
            #"{"method": "bogus", "params": {}, "classes": 3}"#,
            #"{"method": "temperature", "params": {"temperature": 1}, "classes": 1}"#,
        ] {
            let refused = try send(lossd, "PUT", "/v1/calibrators/manual.v1", body)
            #expect(refused.status == 422, "\(body): \(refused.bodyText)")
        }
        #expect((try send(lossd, "GET", "/v1/calibrators/manual.v1").json?["params"] as? [String: Any])?["temperature"] as? Double == 0.5)
        let names = (try send(lossd, "GET", "/v1/calibrators").json?["calibrators"] as? [[String: Any]])?.compactMap { $0["name"] as? String }
        #expect(names == ["copy", "manual.v1"])
    }

    @Test func invalidNamesAre422() throws {
        let lossd = try LossdProcess()
        let long = String(repeating: "a", count: 65)
        for path in ["/v1/calibrators/\(long)", "/v1/calibrators/a%20b", "/v1/calibrators/a%2Fb", "/v1/calibrators/%C3%A9"] {
            #expect(try send(lossd, "GET", path).status == 422, "\(path)")
            #expect(try send(lossd, "DELETE", path).status == 422, "\(path)")
            let put = try send(lossd, "PUT", path, #"{"method": "temperature", "params": {"temperature": 1}, "classes": 2}"#)
            #expect(put.status == 422, "\(path)")
            #expect(try send(lossd, "POST", path + "/apply", #"{"logits": [[1, 2]]}"#).status == 422, "\(path)")
        }
        let fit = try fitTemperature(lossd, name: "bad name!")
        #expect(fit.status == 422)
        #expect(fit.json?["field"] as? String == "/name")
        #expect(try send(lossd, "GET", "/v1/calibrators/\(String(repeating: "a", count: 64))").status == 404)
    }

    @Test func storeSurvivesARestart() throws {
        let directory = Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        do {
            let first = try LossdProcess(dataDirectory: directory)
            #expect(try fitTemperature(first, name: "kept").status == 201)
            #expect(try send(first, "PUT", "/v1/calibrators/manual", #"{"method": "temperature", "params": {"temperature": 3}, "classes": 4}"#).status == 201)
            first.signal(SIGTERM)
            #expect(first.waitForExit(timeout: 10) == 0)
        }
        let second = try LossdProcess(dataDirectory: directory)
        let names = (try send(second, "GET", "/v1/calibrators").json?["calibrators"] as? [[String: Any]])?.compactMap { $0["name"] as? String }
        #expect(names == ["kept", "manual"])
        let manual = try send(second, "GET", "/v1/calibrators/manual")
        #expect(manual.status == 200 && manual.json?["classes"] as? Int == 4)
        #expect(try send(second, "POST", "/v1/calibrators/kept/apply", #"{"logits": [[1, 2, 3]]}"#).status == 200)
    }

    @Test func storeSurvivesKillNineRightAfterA201() throws {
        let directory = Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var expected: [String: Double] = [:]
        do {
            let first = try LossdProcess(dataDirectory: directory)
            for i in 0..<5 {
                let t = 0.5 + Double(i)
                let response = try send(
                    first, "PUT", "/v1/calibrators/k\(i)", #"{"method": "temperature", "params": {"temperature": \#(t)}, "classes": 3}"#)
                #expect(response.status == 201)
                expected["k\(i)"] = t
            }
            let fit = try fitTemperature(first, name: "last")
            #expect(fit.status == 201)
            // SIGKILL straight after the 201: no shutdown, no checkpoint, no close.
            first.signal(SIGKILL)
            #expect(first.waitForExit(timeout: 10) != nil)
            expected["last"] = (fit.json?["calibrator"] as? [String: Any]).flatMap { ($0["params"] as? [String: Any])?["temperature"] as? Double }
        }
        let second = try LossdProcess(dataDirectory: directory)
        for (name, t) in expected {
            let response = try send(second, "GET", "/v1/calibrators/\(name)")
            #expect(response.status == 200, "\(name) lost after kill -9")
            #expect((response.json?["params"] as? [String: Any])?["temperature"] as? Double == t, "\(name)")
        }
    }

    @Test func corruptStoreStopsStartUp() throws {
        let directory = Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let garbage = Data(repeating: 0x5A, count: 4096)
        try garbage.write(to: URL(fileURLWithPath: directory + "/calibrators.sqlite"))

        let process = Process()
        process.executableURL = URL(fileURLWithPath: LossdProcess.binaryPath)
        process.arguments = ["--port", "0", "--data-dir", directory]
        let stderr = Pipe()
        process.standardError = stderr
        process.standardOutput = Pipe()
        try process.run()
        let output = String(decoding: stderr.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 1)
        #expect(output.contains("cannot open the store"), "\(output)")
        #expect(output.contains("corrupt"), "\(output)")
        // The file is untouched.
        #expect(try Data(contentsOf: URL(fileURLWithPath: directory + "/calibrators.sqlite")) == garbage)
    }

    @Test func everyMethodRoundTripsThroughTheStore() throws {
        // Fit with a name, then apply the stored calibrator and the fit's own object
        // inline: the stored params (numbers, vectors, matrices, ragged rows) come back exactly.
        let lossd = try LossdProcess()
        let binary = "[[0.0, 1.0], [1.0, 0.0], [0.0, 2.0], [2.0, 0.5], [0.0, 0.3], [0.2, 0.0], [1.0, 1.5], [0.4, 0.0]]"
        let binaryLabels = "[1, 0, 1, 0, 0, 1, 1, 0]"
        let views = "[\(Self.logits), \(Self.logits.replacingOccurrences(of: "0.", with: "0.7"))]"
        var cases: [(String, String)] = [
            ("platt", #""logits": \#(binary), "labels": \#(binaryLabels)"#),
            ("beta", #""scores": [0.3, 0.2, 0.7, 0.4, 0.6, 0.8, 0.9, 0.1], "labels": \#(binaryLabels)"#),
            ("correctness_aware", #""views_logits": \#(views), "labels": \#(Self.labels), "params": {"steps": 20}"#),
        ]
        for method in ["temperature", "vector", "matrix", "dirichlet", "ensemble_temperature", "isotonic", "histogram"] {
            cases.append((method, #""logits": \#(Self.logits), "labels": \#(Self.labels)"#))
        }
        let known = Set(try #require(try send(lossd, "POST", "/v1/calibrators/fit", #"{"method": "nope"}"#).json?["detail"] as? String)
            .split(separator: ":").last!.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) })
        for (method, inputs) in cases where known.contains(method) {
            let fit = try send(lossd, "POST", "/v1/calibrators/fit", #"{"method": "\#(method)", "name": "m-\#(method)", \#(inputs)}"#)
            #expect(fit.status == 201, "\(method): \(fit.bodyText)")
            guard fit.status == 201 else { continue }
            let calibrator = try #require(fit.json?["calibrator"] as? [String: Any])
            let object = try JSONSerialization.data(withJSONObject: ["method": calibrator["method"]!, "params": calibrator["params"]!, "classes": calibrator["classes"]!])
            let applyInputs = inputs.components(separatedBy: #", "labels""#).first!
            let stored = try send(lossd, "POST", "/v1/calibrators/m-\(method)/apply", "{\(applyInputs)}")
            let inline = try send(lossd, "POST", "/v1/calibrate", #"{"calibrator": \#(String(decoding: object, as: UTF8.self)), \#(applyInputs)}"#)
            #expect(stored.status == 200, "\(method): \(stored.bodyText)")
            #expect(inline.status == 200, "\(method): \(inline.bodyText)")
            #expect(stored.bodyText == inline.bodyText, "\(method)")
            // The stored object can be PUT back under a new name and still applies the same.
            let get = try send(lossd, "GET", "/v1/calibrators/m-\(method)")
            let put = try send(lossd, "PUT", "/v1/calibrators/copy-\(method)", get.bodyText)
            #expect(put.status == 201, "\(method): \(put.bodyText)")
            #expect(try send(lossd, "POST", "/v1/calibrators/copy-\(method)/apply", "{\(applyInputs)}").bodyText == stored.bodyText)
        }
        #expect(known.contains("temperature"))
    }

    @Test func readyOnceTheStoreIsOpen() throws {
        let lossd = try LossdProcess()
        let ready = try send(lossd, "GET", "/readyz")
        #expect(ready.status == 200)
        #expect(ready.bodyText.contains(#""store":"open""#))
    }
}
