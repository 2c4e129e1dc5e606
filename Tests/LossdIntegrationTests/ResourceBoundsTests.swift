import Foundation
import LossdTestSupport
import Synchronization
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Memory, time and connection bounds under the traffic users really send: megabyte
/// bodies on keep-alive and fresh connections, gzip, multipart, TLS, refused requests,
/// expensive requests beside cheap ones, and clients that hold connections.
@Suite("lossd resource bounds")
struct ResourceBoundsTests {
    // MARK: Bodies

    /// A /v1/loss body with `rows` x 1000 logits (about 10 KB a row), deterministic.
    static func lossBody(rows: Int, classes: Int = 1000, labelsOffset: Int = 0) -> [UInt8] {
        var text = #"{"loss":"cross_entropy","return_grad":false,"logits":["#
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        for r in 0..<rows {
            if r > 0 { text += "," }
            text += "["
            for c in 0..<classes {
                state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
                let value = Double(Int64(bitPattern: state >> 11) % 2_000_000) / 250_000.0
                text += c == 0 ? "" : ","
                text += String(format: "%.6f", value)
            }
            text += "]"
        }
        text += #"],"labels":["# + (0..<rows).map { String($0 % classes + labelsOffset) }.joined(separator: ",") + "]}"
        return Array(text.utf8)
    }

    /// The same request as multipart: the JSON part carries the labels, an `.npy` part the logits.
    static func multipartBody(rows: Int, classes: Int = 1000, boundary: String) -> [UInt8] {
        var header = "{'descr': '<f8', 'fortran_order': False, 'shape': (\(rows), \(classes)), }"
        while (10 + header.utf8.count + 1) % 64 != 0 { header += " " }
        header += "\n"
        var npy: [UInt8] = [0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(header.utf8.count & 0xFF), UInt8(header.utf8.count >> 8)]
        npy += Array(header.utf8)
        npy.reserveCapacity(npy.count + rows * classes * 8)
        for i in 0..<(rows * classes) {
            withUnsafeBytes(of: Double(i % 97 - 48).bitPattern.littleEndian) { npy += $0 }
        }
        let request = #"{"loss":"cross_entropy","labels":["# + (0..<rows).map { String($0 % classes) }.joined(separator: ",") + "]}"
        var body: [UInt8] = []
        body += Array("--\(boundary)\r\nContent-Disposition: form-data; name=\"request\"\r\nContent-Type: application/json\r\n\r\n".utf8)
        body += Array(request.utf8) + Array("\r\n".utf8)
        body += Array("--\(boundary)\r\nContent-Disposition: form-data; name=\"logits\"; filename=\"logits.npy\"\r\nContent-Type: application/octet-stream\r\n\r\n".utf8)
        body += npy + Array("\r\n--\(boundary)--\r\n".utf8)
        return body
    }

    /// Resident memory of a process, in bytes (from /proc).
    static func residentBytes(_ pid: Int32) -> Int {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") })
        else { return 0 }
        let kilobytes = line.split(separator: " ").compactMap { Int($0) }.first ?? 0
        return kilobytes * 1024
    }

    static func post(
        _ client: RawClient, _ body: [UInt8], path: String = "/v1/loss", headers: String = "Content-Type: application/json\r\n"
    ) throws -> WireResponse {
        try client.send("POST \(path) HTTP/1.1\r\nHost: x\r\n\(headers)Content-Length: \(body.count)\r\n\r\n")
        try client.send(body)
        return try client.readResponse()
    }

    // MARK: The leak

    /// Before the fix, every finished job kept its closure (and the request body in it)
    /// until 1,024 more jobs had passed: RSS grew by about the body size per request.
    /// Now a few hundred ~1 MB requests of every kind leave RSS flat after warm-up.
    @Test(.timeLimit(.minutes(5)))
    func rssStaysFlatOverHundredsOfLargeRequestsOfEveryKind() throws {
        let certificates = try TLSTests.Certificates()
        let lossd = try LossdProcess(["--tls-cert", certificates.certificate, "--tls-key", certificates.key, "--threads", "2"])
        // The plain-HTTP traffic goes to a second process on the same binary; each is measured.
        let plain = try LossdProcess(["--threads", "2"])
        let rows = 96  // about 0.95 MB of JSON
        let json = Self.lossBody(rows: rows)
        let invalid = Self.lossBody(rows: rows, labelsOffset: 5000)  // labels out of range: 422
        let gzipped = try BinaryInputEndpointTests.gzip(["-c", "-1"], json)
        let boundary = "lossd-boundary-7d1f"
        let form = Self.multipartBody(rows: rows, boundary: boundary)

        func round(_ client: RawClient) throws {
            #expect(try Self.post(client, json).status == 200)
            #expect(try Self.post(client, invalid).status == 422)
            #expect(
                try Self.post(client, gzipped, headers: "Content-Type: application/json\r\nContent-Encoding: gzip\r\n").status == 200)
            #expect(
                try Self.post(client, form, headers: "Content-Type: multipart/form-data; boundary=\(boundary)\r\n").status == 200)
        }
        // Warm-up: allocator arenas, the worker threads' stacks, the parser buffers.
        let keepAlive = try plain.connect()
        for _ in 0..<5 { try round(keepAlive) }
        let plainStart = Self.residentBytes(plain.process.processIdentifier)
        // 40 rounds on one keep-alive connection and 20 on fresh ones: 240 requests, ~220 MB of bodies.
        for _ in 0..<40 { try round(keepAlive) }
        for _ in 0..<20 { try round(try plain.connect()) }
        let plainEnd = Self.residentBytes(plain.process.processIdentifier)

        // TLS: curl posts the body to many URLs over one kept-alive connection.
        let bodyPath = NSTemporaryDirectory() + "lossd-leak-\(UUID().uuidString).json"
        try Data(json).write(to: URL(fileURLWithPath: bodyPath))
        defer { try? FileManager.default.removeItem(atPath: bodyPath) }
        let url = "https://localhost:\(lossd.port)/v1/loss"
        func curlRound(_ count: Int) throws {
            let result = try TLSTests.run(
                "curl",
                ["-sS", "--max-time", "120", "--cacert", certificates.ca, "-H", "Content-Type: application/json",
                    "--data-binary", "@" + bodyPath, "-w", "%{http_code}\n"]
                    + (0..<count).flatMap { _ in ["-o", "/dev/null", url] })
            #expect(result.status == 0, "\(result.stderr)")
            #expect(result.stdout.split(separator: "\n").allSatisfy { $0 == "200" }, "\(result.stdout)")
        }
        try curlRound(10)
        let tlsStart = Self.residentBytes(lossd.process.processIdentifier)
        try curlRound(80)
        let tlsEnd = Self.residentBytes(lossd.process.processIdentifier)

        let mib = 1 << 20
        // Before the fix: about 1 MB per request, i.e. > 200 MiB (plain) and > 75 MiB (TLS).
        #expect(plainEnd - plainStart < 48 * mib, "plain: RSS \(plainStart / mib) -> \(plainEnd / mib) MiB over 240 requests")
        #expect(tlsEnd - tlsStart < 32 * mib, "TLS: RSS \(tlsStart / mib) -> \(tlsEnd / mib) MiB over 80 requests")
    }

    // MARK: Refused before the body

    /// A request refused from its head (no key, unknown path, wrong method, unsupported
    /// media type) is answered before `100 Continue`, and its body is never buffered.
    @Test func refusedRequestsAreAnsweredBeforeTheirBodyAndNeverBufferIt() throws {
        let lossd = try LossdProcess(["--api-key", "secret-key"])
        let auth = "Authorization: Bearer secret-key\r\n"
        let cases: [(String, String, Int)] = [
            ("/v1/loss", "Content-Type: application/json\r\n", 401),
            ("/v1/nope", auth + "Content-Type: application/json\r\n", 404),
            ("/v1/losses", auth + "Content-Type: application/json\r\n", 405),
            ("/v1/loss", auth + "Content-Type: text/csv\r\n", 415),
            ("/v1/loss", auth + "Content-Type: application/json\r\nContent-Encoding: br\r\n", 415),
        ]
        let before = Self.residentBytes(lossd.process.processIdentifier)
        for (path, headers, status) in cases {
            // Announces 60 MB and waits for 100 Continue, as curl does for large bodies.
            let client = try lossd.connect()
            try client.send("POST \(path) HTTP/1.1\r\nHost: x\r\n\(headers)Expect: 100-continue\r\nContent-Length: 60000000\r\n\r\n")
            let response = try client.readResponse()
            #expect(response.status == status, "\(path) \(headers)")
            #expect(response.header("connection") == "close")
            #expect(client.isClosedByPeer())
        }
        // Without Expect: the client starts sending at once; the answer still comes first
        // and what arrives is discarded, not kept.
        let client = try lossd.connect()
        try client.send("POST /v1/loss HTTP/1.1\r\nHost: x\r\nContent-Length: 60000000\r\n\r\n")
        try client.send([UInt8](repeating: 0x20, count: 1 << 20))
        #expect(try client.readResponse().status == 401)
        let after = Self.residentBytes(lossd.process.processIdentifier)
        #expect(after - before < 16 << 20, "RSS \(before >> 20) -> \(after >> 20) MiB")
        // The same request with the key gets its 100 Continue.
        let good = try lossd.connect()
        try good.send("POST /v1/loss HTTP/1.1\r\nHost: x\r\n\(auth)Expect: 100-continue\r\nContent-Length: 10\r\n\r\n")
        #expect(try good.readResponse().status == 100)
    }

    // MARK: The memory budget

    /// Eight clients announce 1 MB bodies at once against a 6 MiB budget: the bodies that
    /// fit are charged as their heads arrive and answered 200; the others get 503 with
    /// `Retry-After` before their bodies are read. RSS stays bounded and `/healthz`
    /// answers throughout.
    @Test(.timeLimit(.minutes(3)))
    func concurrentLargeBodiesBeyondTheBudgetGet503AndTheRestSucceed() throws {
        let lossd = try LossdProcess(["--max-inflight-bytes", String(6 << 20), "--threads", "2"])
        let body = Self.lossBody(rows: 100)  // about 1 MB; with its working set about 4 MB
        let half = body.count / 2
        let statuses = Mutex<[Int]>([])
        let retryAfter = Mutex<[String?]>([])
        let headsSent = DispatchSemaphore(value: 0)
        let proceed = DispatchGroup()
        proceed.enter()
        let done = DispatchGroup()
        let port = lossd.port
        for _ in 0..<8 {
            done.enter()
            Thread {
                defer { done.leave() }
                guard let client = try? RawClient(port: port, receiveTimeout: 60) else {
                    headsSent.signal()
                    return
                }
                // Every head (and half of every body) is in before any body is complete.
                _ = try? client.send("POST /v1/loss HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: \(body.count)\r\n\r\n")
                _ = try? client.send(Array(body[..<half]))
                headsSent.signal()
                proceed.wait()
                _ = try? client.send(Array(body[half...]))  // may fail on a refused, closed connection
                guard let response = try? client.readResponse() else { return }
                statuses.withLock { $0.append(response.status) }
                if response.status == 503 { retryAfter.withLock { $0.append(response.header("retry-after")) } }
            }.start()
        }
        for _ in 0..<8 { headsSent.wait() }
        usleep(300_000)
        var health = [try lossd.connect().exchange(get("/healthz")).status]
        proceed.leave()
        while done.wait(timeout: .now() + 0.05) == .timedOut {
            health.append((try? lossd.connect().exchange(get("/healthz")).status) ?? 0)
        }
        let seen = statuses.withLock { $0 }
        #expect(seen.count == 8, "\(seen)")
        #expect(seen.contains(200), "\(seen)")
        #expect(seen.contains(503), "\(seen)")
        #expect(seen.allSatisfy { $0 == 200 || $0 == 503 }, "\(seen)")
        #expect(retryAfter.withLock { $0 }.allSatisfy { $0 == "1" })
        #expect(health.allSatisfy { $0 == 200 }, "\(health)")
        let rss = Self.residentBytes(lossd.process.processIdentifier)
        #expect(rss < 200 << 20, "RSS \(rss >> 20) MiB")
        // With the budget free again, the same request succeeds.
        #expect(try Self.post(try lossd.connect(), body).status == 200)
    }

    /// A body larger than the whole budget is refused with 413 from its head alone.
    @Test func aBodyLargerThanTheWholeBudgetIs413() throws {
        let lossd = try LossdProcess(["--max-inflight-bytes", String(2 << 20)])
        let client = try lossd.connect()
        try client.send("POST /v1/loss HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 3000000\r\n\r\n")
        let response = try client.readResponse()
        #expect(response.status == 413)
        #expect(response.json?["type"] as? String == "urn:lossd:error:content_too_large")
    }

    /// A matrix fit with thousands of classes from a small body is refused before it
    /// allocates anything of C×C size; the working-set estimate refuses a contrastive
    /// request whose similarity matrices cannot fit the budget.
    @Test func hugeClassCountsAndSimilarityMatricesAreRefusedBeforeTheyAllocate() throws {
        let lossd = try LossdProcess(["--max-inflight-bytes", String(64 << 20)])
        let client = try lossd.connect()
        let classes = 4000
        let row = "[" + (0..<classes).map { $0 == 0 ? "1" : "0" }.joined(separator: ",") + "]"
        for method in ["matrix", "dirichlet"] {
            let fit = #"{"method":"\#(method)","logits":[\#(row),\#(row)],"labels":[0,1]}"#
            let response = try Self.post(client, Array(fit.utf8), path: "/v1/calibrators/fit")
            #expect(response.status == 413, "\(method)")
            #expect(response.json?["field"] as? String == "/logits")
            #expect((response.json?["detail"] as? String)?.contains("1000 classes") == true)
        }
        // info_nce with N = M = 8192, D = 2: 67M similarity entries, about 2 GB of work.
        let n = 8192
        let vectors = "[" + (0..<n).map { "[\($0 % 7),\($0 % 5 + 1)]" }.joined(separator: ",") + "]"
        let contrastive = #"{"loss":"info_nce","queries":\#(vectors),"keys":\#(vectors),"return_grad":true}"#
        let response = try Self.post(client, Array(contrastive.utf8))
        #expect(response.status == 413)
        #expect((response.json?["detail"] as? String)?.contains("memory") == true)
        let rss = Self.residentBytes(lossd.process.processIdentifier)
        #expect(rss < 200 << 20, "RSS \(rss >> 20) MiB")
    }

    // MARK: Time

    /// `--request-timeout` ends a slow aggregation with 503 and frees its thread: other
    /// requests are served meanwhile and afterwards.
    @Test(.timeLimit(.minutes(2)))
    func requestTimeoutEndsASlowAggregationWhileOthersAreServed() throws {
        let lossd = try LossdProcess(["--request-timeout", "1", "--threads", "1", "--light-threads", "1"])
        // MACE with 1,000 restarts of 10,000 iterations each on a crowd of 400 annotations:
        // minutes of work without the timeout.
        var annotations: [String] = []
        for item in 0..<100 { for worker in 0..<4 { annotations.append("[\(item),\(worker),\((item + worker) % 3)]") } }
        let slow = #"{"method":"mace","num_classes":3,"params":{"n_restarts":1000,"n_iter":10000},"annotations":[\#(annotations.joined(separator: ","))]}"#
        let slowClient = try lossd.connect()
        slowClient.setReceiveTimeout(30)
        let started = Date()
        try slowClient.send("POST /v1/aggregate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: \(slow.utf8.count)\r\n\r\n\(slow)")
        // Meanwhile a cheap loss is served on the light lane.
        let light = try lossd.connect()
        let small = Array(#"{"loss":"cross_entropy","logits":[[1,2,3]],"labels":[0]}"#.utf8)
        #expect(try Self.post(light, small).status == 200)
        let response = try slowClient.readResponse()
        let elapsed = Date().timeIntervalSince(started)
        #expect(response.status == 503, "\(response.status) \(String(decoding: response.body, as: UTF8.self))")
        #expect(elapsed < 5, "answered after \(elapsed) s")
        #expect(response.header("retry-after") != nil)
        // The worker thread is free again: a heavy request (a fit) runs at once.
        let fit = Array(#"{"method":"temperature","logits":[[2,0,0],[0,2,0],[0,0,2]],"labels":[0,1,2]}"#.utf8)
        let fitStarted = Date()
        #expect(try Self.post(try lossd.connect(), fit, path: "/v1/calibrators/fit").status == 200)
        #expect(Date().timeIntervalSince(fitStarted) < 2)
    }

    /// A client that disconnects while its request runs cancels it: the worker is free
    /// again long before the work would have finished.
    @Test(.timeLimit(.minutes(2)))
    func aClientThatLeavesCancelsItsRequest() throws {
        let lossd = try LossdProcess(["--threads", "1", "--light-threads", "0"])
        var annotations: [String] = []
        for item in 0..<100 { for worker in 0..<4 { annotations.append("[\(item),\(worker),\((item + worker) % 3)]") } }
        let slow = #"{"method":"mace","num_classes":3,"params":{"n_restarts":1000,"n_iter":10000},"annotations":[\#(annotations.joined(separator: ","))]}"#
        do {
            let client = try lossd.connect()
            try client.send("POST /v1/aggregate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: \(slow.utf8.count)\r\n\r\n\(slow)")
            usleep(300_000)
        }  // the client closes here
        let started = Date()
        let small = Array(#"{"loss":"cross_entropy","logits":[[1,2,3]],"labels":[0]}"#.utf8)
        let other = try lossd.connect()
        other.setReceiveTimeout(30)
        #expect(try Self.post(other, small).status == 200)
        #expect(Date().timeIntervalSince(started) < 3, "the only worker was still busy with abandoned work")
    }

    // MARK: Connections

    /// Slow clients hold every slot of the connection cap; `/healthz` and `/readyz` still
    /// answer on the slots kept for probes, and an idle keep-alive connection is evicted to
    /// admit a new client.
    @Test(.timeLimit(.minutes(2)))
    func probesAreAnsweredWhileSlowClientsHoldTheConnectionCap() throws {
        let lossd = try LossdProcess(["--max-connections", "10", "--body-timeout", "30"])
        var slow: [RawClient] = []
        for _ in 0..<10 {
            let client = try lossd.connect()
            // A body that trickles: the connection is busy, not idle.
            try client.send("POST /v1/loss HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{")
            slow.append(client)
        }
        usleep(200_000)
        for _ in 0..<20 {
            #expect(try lossd.connect().exchange(get("/healthz")).status == 200)
        }
        #expect(try lossd.connect().exchange(get("/readyz")).status == 200)
        // Other work on a probe slot is turned away with 503.
        let refused = try lossd.connect().exchange(
            "POST /v1/loss HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}")
        #expect(refused.status == 503)
        #expect(refused.header("retry-after") != nil)

        // Idle keep-alive connections give way: fill the cap with idle ones, then connect anew.
        let idleServer = try LossdProcess(["--max-connections", "4"])
        var idle: [RawClient] = []
        for _ in 0..<4 {
            let client = try idleServer.connect()
            #expect(try client.exchange(get("/healthz")).status == 200)
            idle.append(client)
        }
        let newcomer = try idleServer.connect()
        let small = Array(#"{"loss":"cross_entropy","logits":[[1,2,3]],"labels":[0]}"#.utf8)
        #expect(try Self.post(newcomer, small).status == 200)
        #expect(idle[0].isClosedByPeer(), "the longest-idle connection was closed to admit the new one")
        withExtendedLifetime(slow) {}
    }

    /// A body that trickles in steadily (never stalling past --body-timeout) still has to
    /// arrive within --read-timeout.
    @Test(.timeLimit(.minutes(1)))
    func aTricklingBodyMeetsTheReadTimeout() throws {
        let lossd = try LossdProcess(["--read-timeout", "2", "--body-timeout", "1"])
        let client = try lossd.connect()
        try client.send("POST /v1/loss HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n")
        let started = Date()
        let port = lossd.port
        _ = port
        // One byte every 0.3 s never stalls past --body-timeout, yet the whole request is late.
        var sendFailed = false
        for _ in 0..<30 {
            usleep(300_000)
            if (try? client.send(" ")) == nil {
                sendFailed = true
                break
            }
            if Date().timeIntervalSince(started) > 3 { break }
        }
        client.setReceiveTimeout(5)
        let response = try? client.readResponse()
        let elapsed = Date().timeIntervalSince(started)
        #expect(response?.status == 408 || sendFailed, "no 408 after \(elapsed) s")
        #expect(elapsed < 6)
    }
}
