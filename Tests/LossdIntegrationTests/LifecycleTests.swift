import Foundation
import LossdTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Shutdown, concurrency and robustness of the real binary.
@Suite("lossd lifecycle and robustness")
struct LifecycleTests {
    @Test func sigtermLetsAnInFlightRequestFinishThenExitsZero() throws {
        let lossd = try LossdProcess()
        let inFlight = try lossd.connect()
        let idle = try lossd.connect()
        #expect(try idle.exchange(get("/healthz")).status == 200)

        // A request whose body is still arriving when the signal comes.
        try inFlight.send("POST /v1/loss HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n01234")
        usleep(200_000)
        lossd.signal(SIGTERM)
        usleep(300_000)

        // Idle keep-alive connections are closed, new connections refused...
        #expect(idle.isClosedByPeer(within: 2))
        #expect(throws: (any Error).self) { _ = try lossd.connect().exchange(get("/healthz")) }
        #expect(lossd.isRunning)

        // ...but the in-flight request completes, with Connection: close.
        try inFlight.send("56789")
        let response = try inFlight.readResponse()
        #expect(response.status == 400)
        #expect(response.header("connection") == "close")
        #expect(lossd.waitForExit(timeout: 5) == 0)
    }

    @Test func sigintAlsoShutsDownCleanly() throws {
        let lossd = try LossdProcess()
        lossd.signal(SIGINT)
        #expect(lossd.waitForExit(timeout: 5) == 0)
    }

    @Test func shutdownGiveUpOnStuckClientsAfterTheGracePeriod() throws {
        let lossd = try LossdProcess(["--shutdown-grace", "0.5", "--body-timeout", "30"])
        let stuck = try lossd.connect()
        try stuck.send("POST /v1/loss HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n0")
        usleep(100_000)
        lossd.signal(SIGTERM)
        #expect(lossd.waitForExit(timeout: 5) == 0)
    }

    @Test func healthzAnswersWhileA60MBBodyArrivesSlowly() throws {
        let lossd = try LossdProcess()
        let uploader = try lossd.connect()
        let total = 60 * 1024 * 1024
        try uploader.send("POST /v1/loss HTTP/1.1\r\nHost: x\r\nContent-Length: \(total)\r\n\r\n")
        let piece = [UInt8](repeating: 0x61, count: 1024 * 1024)
        let probe = try lossd.connect()
        var latencies: [Double] = []
        for _ in 0..<60 {
            try uploader.send(piece)
            let start = Date()
            let response = try probe.exchange(get("/healthz"))
            latencies.append(Date().timeIntervalSince(start))
            #expect(response.status == 200)
            usleep(20_000)
        }
        #expect(try uploader.readResponse().status == 400)
        #expect(latencies.max()! < 1.0, "healthz took \(latencies.max()!) s")
    }

    @Test func garbageNeverYieldsA5xxOrKillsTheProcess() throws {
        let lossd = try LossdProcess()
        var generator = SystemRandomNumberGenerator()
        let fragments = [
            "GET ", "POST ", "/healthz", " HTTP/1.1", "\r\n", "Host: x", "Content-Length: ", "99999999999999999999",
            "Transfer-Encoding: chunked", ":", " ", "\t", "\0", "\u{7f}", "\u{ff}", "ffffffffffffffffff\r\n", "0\r\n\r\n",
            "\r\n\r\n", "Expect: 100-continue", "HTTP/1.0", "%00", "../../etc/passwd", "\n",
        ]
        for _ in 0..<150 {
            var request = ""
            for _ in 0..<Int.random(in: 1...12, using: &generator) { request += fragments.randomElement(using: &generator)! }
            request += "\r\n\r\n"
            let client = try lossd.connect()
            client.setReceiveTimeout(0.5)
            try? client.send(request)
            while let response = try? client.readResponse() {
                #expect(response.status < 500, "\(request.debugDescription) -> \(response.status)")
            }
        }
        #expect(lossd.isRunning)
        #expect(try lossd.connect().exchange(get("/healthz")).status == 200)
    }

    @Test func thousandsOfPipelinedRequestsAreAllAnsweredInOrder() throws {
        let lossd = try LossdProcess()
        let client = try lossd.connect()
        let count = 5000
        var batch = ""
        for i in 0..<count { batch += get("/healthz", "X-Request-Id: r\(i)\r\n") }
        let bytes = Array(batch.utf8)
        // Send from another thread: the server stops reading while our unread answers pile up.
        let fd = client.fd
        let sender = Thread {
            var offset = 0
            while offset < bytes.count {
                let n = bytes[offset...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                if n <= 0 { return }
                offset += n
            }
        }
        sender.start()
        for i in 0..<count {
            let response = try client.readResponse()
            #expect(response.status == 200)
            if response.header("x-request-id") != "r\(i)" {
                Issue.record("response \(i) out of order: \(response.header("x-request-id") ?? "-")")
                break
            }
        }
        #expect(lossd.isRunning)
    }

    @Test func manyConcurrentKeepAliveClientsAreAllServed() async throws {
        let lossd = try LossdProcess()
        let port = lossd.port
        let okCount = await withTaskGroup(of: Int.self) { group in
            for _ in 0..<32 {
                group.addTask {
                    guard let client = try? RawClient(port: port) else { return 0 }
                    var ok = 0
                    for _ in 0..<20 where (try? client.exchange(get("/healthz")))?.status == 200 { ok += 1 }
                    return ok
                }
            }
            return await group.reduce(0, +)
        }
        #expect(okCount == 32 * 20)
    }

    @Test func helpExplainsEveryOptionAndItsEnvironmentVariable() throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: LossdProcess.binaryPath)
        process.arguments = ["--help"]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        process.waitUntilExit()
        let help = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        for (flag, variable) in [
            ("--host", "LOSSD_HOST"), ("--port", "LOSSD_PORT"), ("--max-body-bytes", "LOSSD_MAX_BODY_BYTES"),
            ("--threads", "LOSSD_THREADS"), ("--data-dir", "LOSSD_DATA_DIR"),
        ] {
            #expect(help.contains(flag) && help.contains(variable), "\(flag) / \(variable) missing from --help")
        }
    }

    @Test func invalidConfigurationFailsAtStartUpWithAMessage() throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: LossdProcess.binaryPath)
        process.arguments = ["--port", "70000"]
        let pipe = Pipe()
        process.standardError = pipe
        process.standardOutput = Pipe()
        try process.run()
        process.waitUntilExit()
        #expect(process.terminationStatus != 0)
        let message = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(message.contains("port"))
    }

    @Test func unusableDataDirectoryFailsAtStartUp() throws {
        let file = NSTemporaryDirectory() + "lossd-not-a-dir-\(UUID().uuidString)"
        #expect(FileManager.default.createFile(atPath: file, contents: Data("x".utf8)))
        defer { try? FileManager.default.removeItem(atPath: file) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: LossdProcess.binaryPath)
        process.arguments = ["--port", "0", "--data-dir", file]
        let pipe = Pipe()
        process.standardError = pipe
        process.standardOutput = Pipe()
        try process.run()
        process.waitUntilExit()
        #expect(process.terminationStatus == 1)
        let message = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(message.contains("data directory"))
    }
}
