import Dispatch
import Foundation
import LossdTestSupport
import Synchronization
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// The throwaway PostgreSQL server of scripts/postgres-test-server.sh (scripts/test.sh
/// starts one): its URL, and the pg_ctl command prefix that stops and starts it.
enum TestPostgres {
    static var url: String? { ProcessInfo.processInfo.environment["LOSSD_TEST_POSTGRES_URL"].flatMap { $0.isEmpty ? nil : $0 } }
    static var pgctl: String? { ProcessInfo.processInfo.environment["LOSSD_TEST_PGCTL"].flatMap { $0.isEmpty ? nil : $0 } }
    static var available: Bool { url != nil && pgctl != nil }
    static let skipped: Comment =
        "LOSSD_TEST_POSTGRES_URL / LOSSD_TEST_PGCTL not set: skipped (scripts/test.sh starts a server; by hand: eval \"$(scripts/postgres-test-server.sh start)\")"

    /// Runs `pg_ctl <arguments>` (stop -m fast, start, status) and says whether it
    /// succeeded. posix_spawn and waitpid rather than Foundation's Process, whose
    /// waitUntilExit can hang when the child leaves a daemon (the postmaster) behind; the
    /// shell closes every inherited descriptor above 2 so the postmaster holds none of ours.
    @discardableResult
    static func pgctl(_ arguments: String) -> Bool {
        guard let pgctl else { return false }
        let script = "for fd in $(ls /proc/$$/fd); do [ \"$fd\" -gt 2 ] && eval \"exec $fd>&-\"; done; exec \(pgctl) \(arguments) >/dev/null 2>&1"
        let words: [String] = ["/bin/bash", "-c", script]
        let argv: [UnsafeMutablePointer<CChar>?] = words.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        guard posix_spawn(&pid, "/bin/bash", nil, nil, argv, environ) == 0 else { return false }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        return status == 0
    }

    /// A name no other test run uses.
    static func unique(_ prefix: String) -> String { "\(prefix)-\(UUID().uuidString.prefix(8))" }
}

/// lossd on a real PostgreSQL server, through the real binary and sockets: two processes
/// on one database, concurrent writers, the database stopped and restarted under load,
/// start-up failures. Serialized: the restart test must not pull the database from
/// under the others.
@Suite("PostgreSQL store over real sockets", .serialized)
struct PostgresStoreTests {
    static func temperatureBody(_ t: Double, classes: Int = 3) -> String {
        #"{"method": "temperature", "params": {"temperature": \#(t)}, "classes": \#(classes)}"#
    }

    static func start(_ extra: [String] = []) throws -> LossdProcess {
        // critical: the tests never read standard error, whose pipe must not fill up.
        try LossdProcess(["--store", TestPostgres.url ?? "", "--log-level", "critical", "--threads", "4"] + extra)
    }

    func send(
        _ lossd: LossdProcess, _ method: String, _ path: String, _ json: String? = nil, headers: [(String, String)] = [],
        timeout: Double = 10
    ) throws -> WireResponse {
        try Self.send(lossd.port, method, path, json, headers: headers, timeout: timeout)
    }

    static func send(
        _ port: Int, _ method: String, _ path: String, _ json: String? = nil, headers: [(String, String)] = [],
        timeout: Double = 10
    ) throws -> WireResponse {
        let client = try RawClient(port: port, receiveTimeout: timeout)
        var head = "\(method) \(path) HTTP/1.1\r\nHost: x\r\n"
        for (name, value) in headers { head += "\(name): \(value)\r\n" }
        if let json {
            let body = Array(json.utf8)
            try client.send(head + "Content-Type: application/json\r\nContent-Length: \(body.count)\r\n\r\n")
            try client.send(body)
        } else {
            try client.send(head + "\r\n")
        }
        return try client.readResponse()
    }

    @Test(.enabled(if: TestPostgres.available, TestPostgres.skipped))
    func twoProcessesSeeEachOthersWritesAtOnce() throws {
        let a = try Self.start(), b = try Self.start()
        let name = TestPostgres.unique("shared")
        let put = try send(a, "PUT", "/v1/calibrators/\(name)", Self.temperatureBody(1.25))
        #expect(put.status == 201, "\(put.bodyText)")
        let etag = try #require(put.header("etag"))

        let get = try send(b, "GET", "/v1/calibrators/\(name)")
        #expect(get.status == 200)
        #expect(get.header("etag") == etag)
        #expect(get.bodyText == put.bodyText)
        let names = (try send(b, "GET", "/v1/calibrators").json?["calibrators"] as? [[String: Any]])?.compactMap { $0["name"] as? String }
        #expect(names?.contains(name) == true)
        #expect(try send(b, "POST", "/v1/calibrators/\(name)/apply", #"{"logits": [[1, 2, 3]]}"#).status == 200)

        // A conditional replace on B with A's tag; A sees the new version and tag at once.
        let replaced = try send(b, "PUT", "/v1/calibrators/\(name)", Self.temperatureBody(2.5), headers: [("If-Match", etag)])
        #expect(replaced.status == 200, "\(replaced.bodyText)")
        let newTag = try #require(replaced.header("etag"))
        #expect(newTag != etag)
        let seen = try send(a, "GET", "/v1/calibrators/\(name)")
        #expect(seen.header("etag") == newTag)
        #expect((seen.json?["params"] as? [String: Any])?["temperature"] as? Double == 2.5)
        // A stale tag is refused on either process.
        #expect(try send(a, "PUT", "/v1/calibrators/\(name)", Self.temperatureBody(9), headers: [("If-Match", etag)]).status == 412)
        #expect(try send(a, "DELETE", "/v1/calibrators/\(name)", headers: [("If-Match", etag)]).status == 412)

        // A fit with a name on B is applied by name on A.
        let fitName = TestPostgres.unique("fit")
        let fit = try send(
            b, "POST", "/v1/calibrators/fit",
            #"{"method": "temperature", "logits": [[2, 0.5, -1], [0.1, 0.2, 0.3], [1.5, -0.5, 0.2]], "labels": [0, 2, 0], "name": "\#(fitName)"}"#)
        #expect(fit.status == 201)
        #expect(try send(a, "GET", "/v1/calibrators/\(fitName)").header("etag") == fit.header("etag"))
        #expect(try send(a, "POST", "/v1/calibrate", #"{"name": "\#(fitName)", "logits": [[1, 2, 3]]}"#).status == 200)

        #expect(try send(a, "DELETE", "/v1/calibrators/\(name)", headers: [("If-Match", newTag)]).status == 204)
        #expect(try send(b, "GET", "/v1/calibrators/\(name)").status == 404)
        #expect(try send(b, "DELETE", "/v1/calibrators/\(fitName)").status == 204)
        let ready = try send(a, "GET", "/readyz")
        #expect(ready.status == 200 && ready.bodyText.contains(#""store":"open""#))
    }

    @Test(.enabled(if: TestPostgres.available, TestPostgres.skipped))
    func concurrentPutsOfOneNameLeaveOneCompleteVersion() throws {
        let processes = [try Self.start(), try Self.start()]
        let ports = processes.map(\.port)
        let name = TestPostgres.unique("race")
        let answers = Mutex<[(Int, String, String?)]>([])
        let errors = Mutex<[String]>([])
        DispatchQueue.concurrentPerform(iterations: 32) { i in
            // Distinct, fairly large versions (a torn write would show).
            let weights = (0..<200).map { _ in String(Double(i) + 0.5) }.joined(separator: ", ")
            let body = #"{"method": "vector", "params": {"w": [\#(weights)], "b": [\#(weights)]}, "classes": 200, "fitted_on": \#(i)}"#
            do {
                let response = try Self.send(ports[i % 2], "PUT", "/v1/calibrators/\(name)", body)
                answers.withLock { $0.append((response.status, response.bodyText, response.header("etag"))) }
            } catch {
                errors.withLock { $0.append("\(error)") }
            }
        }
        #expect(errors.withLock { $0 }.isEmpty, "\(errors.withLock { $0 })")
        let all = answers.withLock { $0 }
        #expect(all.count == 32)
        #expect(all.allSatisfy { $0.0 == 200 || $0.0 == 201 }, "\(all.map(\.0))")
        #expect(all.filter { $0.0 == 201 }.count == 1)
        let tags = all.compactMap(\.2)
        #expect(Set(tags).count == 32, "every write has its own revision")
        for lossd in processes {
            let final = try send(lossd, "GET", "/v1/calibrators/\(name)")
            #expect(final.status == 200)
            let match = all.first { $0.1 == final.bodyText }
            #expect(match != nil, "the stored calibrator must be one whole PUT")
            // The last write (highest revision) is the one stored.
            let revisions = tags.compactMap { Int64($0.dropFirst().dropLast()) }
            #expect(final.header("etag") == "\"\(revisions.max() ?? -1)\"")
            #expect(match?.2 == final.header("etag"))
        }
        #expect(try send(processes[0], "DELETE", "/v1/calibrators/\(name)").status == 204)
    }

    @Test(.enabled(if: TestPostgres.available, TestPostgres.skipped))
    func conditionalRacesHaveOneWinner() throws {
        let processes = [try Self.start(), try Self.start()]
        let ports = processes.map(\.port)
        // If-None-Match: * — one create wins.
        let name = TestPostgres.unique("cas")
        let creates = Mutex<[Int]>([])
        DispatchQueue.concurrentPerform(iterations: 8) { i in
            let status = (try? Self.send(ports[i % 2], "PUT", "/v1/calibrators/\(name)", Self.temperatureBody(Double(i + 1)), headers: [("If-None-Match", "*")]).status) ?? -1
            creates.withLock { $0.append(status) }
        }
        #expect(creates.withLock { $0 }.sorted() == [201] + Array(repeating: 412, count: 7), "\(creates.withLock { $0 })")

        // GET then PUT with If-Match, 8 clients per round: one wins each round, the rest 412.
        for round in 0..<5 {
            let etag = try #require(try send(processes[round % 2], "GET", "/v1/calibrators/\(name)").header("etag"))
            let statuses = Mutex<[Int]>([])
            DispatchQueue.concurrentPerform(iterations: 8) { i in
                let body = Self.temperatureBody(Double(round * 10 + i + 1))
                let status = (try? Self.send(ports[i % 2], "PUT", "/v1/calibrators/\(name)", body, headers: [("If-Match", etag)]).status) ?? -1
                statuses.withLock { $0.append(status) }
            }
            #expect(statuses.withLock { $0 }.sorted() == [200] + Array(repeating: 412, count: 7), "round \(round): \(statuses.withLock { $0 })")
        }
        #expect(try send(processes[1], "DELETE", "/v1/calibrators/\(name)").status == 204)
    }

    @Test(.enabled(if: TestPostgres.available, TestPostgres.skipped))
    func databaseStoppedAndRestartedUnderLoad() throws {
        let processes = [try Self.start(), try Self.start()]
        let ports = processes.map(\.port)
        // Whatever happens below, the database is running again afterwards.
        defer { if !TestPostgres.pgctl("status") { TestPostgres.pgctl("start") } }
        let prefix = TestPostgres.unique("load")
        let stop = Atomic<Bool>(false)
        let acknowledged = Mutex<[String: Double]>([:])
        let statuses = Mutex<[Int: Int]>([:])
        let problems = Mutex<[String]>([])
        let slowest = Mutex<Double>(0)

        let group = DispatchGroup()
        // Load stops when told, or after 60 s whatever happens to the test thread.
        let hardStop = Date().addingTimeInterval(60)
        for worker in 0..<6 {
            DispatchQueue.global().async(group: group) {
                var i = 0
                while !stop.load(ordering: .acquiring) && Date() < hardStop {
                    i += 1
                    let lossd = ports[(worker + i) % 2]
                    let name = "\(prefix)-\(worker)-\(i)"
                    let t = Double(worker) + Double(i) / 1000 + 0.5
                    let started = Date()
                    do {
                        let put = try Self.send(lossd, "PUT", "/v1/calibrators/\(name)", Self.temperatureBody(t), timeout: 15)
                        statuses.withLock { $0[put.status, default: 0] += 1 }
                        if put.status == 201 || put.status == 200 { acknowledged.withLock { $0[name] = t } }
                        if put.status == 503 && put.header("retry-after") == nil { problems.withLock { $0.append("503 without Retry-After") } }
                        if ![200, 201, 503].contains(put.status) { problems.withLock { $0.append("PUT \(put.status): \(put.bodyText)") } }
                        let get = try Self.send(ports[(worker + i + 1) % 2], "GET", "/v1/calibrators/\(prefix)-\(worker)-\(max(1, i - 1))", timeout: 15)
                        statuses.withLock { $0[get.status, default: 0] += 1 }
                        if ![200, 404, 503].contains(get.status) { problems.withLock { $0.append("GET \(get.status): \(get.bodyText)") } }
                    } catch {
                        problems.withLock { $0.append("\(error)") }
                    }
                    let elapsed = Date().timeIntervalSince(started)
                    slowest.withLock { $0 = max($0, elapsed) }
                    usleep(2_000)
                }
            }
        }

        func waitForReadiness(_ status: Int, within seconds: Double) -> Bool {
            let deadline = Date().addingTimeInterval(seconds)
            while Date() < deadline {
                if processes.allSatisfy({ (try? send($0, "GET", "/readyz", timeout: 2).status) == status }) { return true }
                usleep(100_000)
            }
            return false
        }

        usleep(1_000_000)
        let before = acknowledged.withLock { $0.count }
        #expect(before > 0, "writes succeed before the stop")
        #expect(TestPostgres.pgctl("stop -m fast"), "pg_ctl stop")
        #expect(waitForReadiness(503, within: 5), "/readyz goes 503 while the database is down")
        let down = statuses.withLock { $0[503, default: 0] }
        usleep(1_500_000)
        #expect(statuses.withLock { $0[503, default: 0] } > down, "requests answer 503 while the database is down")
        #expect(TestPostgres.pgctl("start"), "pg_ctl start")
        #expect(waitForReadiness(200, within: 10), "/readyz is 200 again after the restart")
        let afterRestart = acknowledged.withLock { $0.count }
        usleep(1_500_000)
        stop.store(true, ordering: .releasing)
        group.wait()
        #expect(acknowledged.withLock { $0.count } > afterRestart, "writes succeed again after the restart")
        #expect(problems.withLock { $0 }.isEmpty, "\(problems.withLock { Array($0.prefix(10)) })")
        #expect(slowest.withLock { $0 } < 8, "no request hangs (slowest PUT+GET pair: \(slowest.withLock { $0 }) s)")

        // Nothing acknowledged was lost.
        let expected = acknowledged.withLock { $0 }
        var missing: [String] = []
        for (name, t) in expected {
            let get = try send(processes[0], "GET", "/v1/calibrators/\(name)")
            // Swift's own parser: Foundation's JSON parser on Linux may not round-trip every double.
            let stored = get.bodyText.firstRange(of: #""temperature":"#).flatMap { range in
                Double(get.bodyText[range.upperBound...].prefix { $0.isNumber || $0 == "." || $0 == "-" || $0 == "e" || $0 == "E" || $0 == "+" })
            }
            if get.status != 200 || stored != t { missing.append("\(name) (\(get.status))") }
        }
        #expect(missing.isEmpty, "acknowledged but lost: \(missing.prefix(10))")
        #expect(statuses.withLock { $0 }.keys.allSatisfy { [200, 201, 404, 503].contains($0) }, "\(statuses.withLock { $0 })")
    }

    @Test(.enabled(if: TestPostgres.available, TestPostgres.skipped))
    func startUpWaitsForTheDatabaseThenServes() throws {
        defer { if !TestPostgres.pgctl("status") { TestPostgres.pgctl("start") } }
        #expect(TestPostgres.pgctl("stop -m fast"))
        let starter = DispatchQueue(label: "pg-start")
        starter.asyncAfter(deadline: .now() + 1.5) { TestPostgres.pgctl("start") }
        let lossd = try Self.start(["--store-startup-wait", "20"])
        #expect(try send(lossd, "GET", "/readyz").status == 200)
        let name = TestPostgres.unique("late")
        #expect(try send(lossd, "PUT", "/v1/calibrators/\(name)", Self.temperatureBody(1)).status == 201)
        #expect(try send(lossd, "DELETE", "/v1/calibrators/\(name)").status == 204)
    }

    @Test(.enabled(if: TestPostgres.available, TestPostgres.skipped))
    func wrongPasswordStopsStartUpAtOnceWithoutPrintingIt() throws {
        let url = try #require(TestPostgres.url)
        let wrong = url.replacingOccurrences(of: "test-secret-pw", with: "wrong-secret-pw")
        #expect(wrong != url)
        let (status, output, seconds) = try Self.runToExit(["--store", wrong, "--store-startup-wait", "30"])
        #expect(status == 1)
        #expect(output.contains("store") && output.contains("authentication failed"), "\(output)")
        #expect(!output.contains("wrong-secret-pw"), "the password must never be printed: \(output)")
        #expect(seconds < 10, "a wrong password is not retried for the whole start-up wait")
    }

    @Test(.enabled(if: TestPostgres.available, TestPostgres.skipped))
    func startUpSummaryRedactsThePassword() throws {
        let lossd = try LossdProcess(["--store", TestPostgres.url ?? "", "--log-level", "info"])
        let output = lossd.stopAndReadStandardError()
        #expect(output.contains("store=postgres://lossd:***@127.0.0.1"), "\(output)")
        #expect(!output.contains("test-secret-pw"), "\(output)")
    }

    // These need no server.

    @Test func unreachableDatabaseAtStartUpExits1WithAClearMessage() throws {
        let (status, output, seconds) = try Self.runToExit([
            "--store", "postgres://lossd:hunter2-secret@127.0.0.1:1/lossd?connect_timeout=2", "--store-startup-wait", "1",
        ])
        #expect(status == 1)
        #expect(output.contains("cannot open the store"), "\(output)")
        #expect(output.contains("postgres://lossd:***@127.0.0.1:1/lossd") && output.contains("unreachable"), "\(output)")
        #expect(!output.contains("hunter2"), "\(output)")
        #expect(seconds < 10)
    }

    @Test func badStoreSettingsAreRefused() throws {
        for (arguments, fragment) in [
            (["--store", "mysql://root:hunter2@db/x"], "store must be"),
            (["--store", "postgres://u:hunter2@[::1/x"], "invalid PostgreSQL URL"),
            (["--store", "sqlite", "--store-pool-size", "0"], "pool size"),
        ] {
            let (status, output, _) = try Self.runToExit(arguments)
            #expect(status != 0, "\(arguments)")
            #expect(output.contains(fragment), "\(arguments): \(output)")
            #expect(!output.contains("hunter2"), "\(output)")
        }
    }

    /// Runs lossd until it exits; its status, stdout + stderr, and how long it ran.
    static func runToExit(_ arguments: [String]) throws -> (Int32, String, Double) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: LossdProcess.binaryPath)
        let directory = NSTemporaryDirectory() + "lossd-pg-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        process.arguments = ["--port", "0", "--data-dir", directory] + arguments
        let output = Pipe()
        process.standardError = output
        process.standardOutput = output
        let started = Date()
        try process.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return (process.terminationStatus, text, Date().timeIntervalSince(started))
    }
}
