import Foundation
import LossdTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// The SQLite store on a full disk (a 3 MiB tmpfs): writes answer 507 `store_full`,
/// `/readyz` says not ready, reads go on, and DELETE still works and makes room.
@Suite("lossd on a full disk")
struct StoreFullTests {
    /// A tmpfs mounted for one test; nil when this process may not mount (not root).
    final class SmallDisk {
        let path = NSTemporaryDirectory() + "lossd-full-\(UUID().uuidString)"

        init?(megabytes: Int) {
            try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
            guard (try? TLSTests.run("mount", ["-t", "tmpfs", "-o", "size=\(megabytes)m", "tmpfs", path]))?.status == 0 else {
                try? FileManager.default.removeItem(atPath: path)
                return nil
            }
        }

        deinit {
            _ = try? TLSTests.run("umount", [path])
            try? FileManager.default.removeItem(atPath: path)
        }
    }

    /// A matrix calibrator of 60 classes: about 30 KB of JSON.
    static let calibrator: String = {
        let c = 60
        let w = (0..<c).map { i in "[" + (0..<c).map { j in i == j ? "1.0000001" : "0.0000001" }.joined(separator: ",") + "]" }
        let b = "[" + Array(repeating: "0.0000002", count: c).joined(separator: ",") + "]"
        return #"{"method": "matrix", "classes": \#(c), "params": {"W": [\#(w.joined(separator: ","))], "b": \#(b)}}"#
    }()

    func request(_ lossd: LossdProcess, _ method: String, _ path: String, _ body: String = "") throws -> WireResponse {
        let client = try lossd.connect()
        let framing = body.isEmpty ? "" : "Content-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n"
        return try client.exchange("\(method) \(path) HTTP/1.1\r\nHost: x\r\n\(framing)\r\n\(body)")
    }

    @Test(.timeLimit(.minutes(2)))
    func writesAre507AndDeleteStillWorksOnAFullDisk() throws {
        guard let disk = SmallDisk(megabytes: 3) else {
            print("skipped: cannot mount a tmpfs here (needs root)")
            return
        }
        let lossd = try LossdProcess([], dataDirectory: disk.path)
        var stored: [String] = []
        var full: WireResponse?
        for i in 0..<200 {
            let response = try request(lossd, "PUT", "/v1/calibrators/c\(i)", Self.calibrator)
            if response.status == 507 {
                full = response
                break
            }
            #expect(response.status == 201, "PUT c\(i): \(response.status) \(response.bodyText)")
            stored.append("c\(i)")
        }
        guard let full else {
            Issue.record("the disk never filled")
            return
        }
        #expect(full.json?["type"] as? String == "urn:lossd:error:store_full")
        #expect(!stored.isEmpty)
        let ready = try request(lossd, "GET", "/readyz")
        #expect(ready.status == 503)
        #expect(ready.json?["store"] as? String == "full", "\(ready.bodyText)")
        // Reads go on.
        #expect(try request(lossd, "GET", "/v1/calibrators/\(stored[0])").status == 200)
        // Deleting frees room, even when the disk has none left for the delete itself.
        #expect(try request(lossd, "DELETE", "/v1/calibrators/\(stored[0])").status == 204)
        #expect(try request(lossd, "DELETE", "/v1/calibrators/\(stored[1])").status == 204)
        let again = try request(lossd, "PUT", "/v1/calibrators/again", Self.calibrator)
        #expect(again.status == 201, "\(again.bodyText)")
        #expect(try request(lossd, "GET", "/readyz").status == 200)
        #expect(lossd.stopAndReadStandardError().contains("full"))
        withExtendedLifetime(disk) {}
    }
}
