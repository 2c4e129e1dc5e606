import Dispatch
import Synchronization
import Foundation
import LossdHTTP
import LossdJSON
import LossdKernels
import Testing

@testable import LossdService
@testable import LossdStore

/// The SQLite calibrator store: operations, replacement, concurrency, corruption, reopening.
@Suite("Calibrator store")
struct CalibratorStoreTests {
    /// The collection these tests write to.
    static let kind = CalibratorResource.collection
    var kind: String { Self.kind }
    /// A fresh directory, removed by the caller's `defer`.
    static func temporaryDirectory() throws -> String {
        let path = NSTemporaryDirectory() + "lossd-store-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    static func calibrator(_ name: String, method: String = "temperature", classes: Int = 3, tag: Int = 0) -> StoredDocument {
        let document = #"{"name":"\#(name)","method":"\#(method)","params":{"temperature":\#(1.5 + Double(tag))},"classes":\#(classes),"fitted_on":\#(tag),"created_at":"2026-11-29T00:00:00.000Z"}"#
        return StoredDocument(name: name, kind: method, size: classes, createdAt: "2026-11-29T00:00:00.000Z", json: document)
    }

    @Test func putGetListDelete() throws {
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let store = try SQLiteDocumentStore(directory: directory)
        defer { store.close() }
        #expect(try store.list(in: kind).isEmpty)
        #expect(try store.get("a", in: kind) == nil)

        #expect(try store.put(Self.calibrator("b", method: "vector", classes: 4), in: kind) == .created)
        #expect(try store.put(Self.calibrator("a"), in: kind) == .created)
        #expect(try store.get("a", in: kind) == Self.calibrator("a"))
        #expect(try store.list(in: kind).map(\.name) == ["a", "b"])
        #expect(try store.list(in: kind)[1] == DocumentSummary(name: "b", kind: "vector", size: 4, createdAt: "2026-11-29T00:00:00.000Z"))
        #expect(try store.count(in: kind) == 2)

        #expect(try store.delete("a", in: kind))
        #expect(try !store.delete("a", in: kind))
        #expect(try store.get("a", in: kind) == nil)
        #expect(try store.list(in: kind).map(\.name) == ["b"])
        #expect(FileManager.default.fileExists(atPath: directory + "/calibrators.sqlite"))
    }

    @Test func putReplacesAndSaysSo() throws {
        let store = SQLiteDocumentStore.inMemory()
        #expect(try store.put(Self.calibrator("t", tag: 1), in: kind) == .created)
        #expect(try store.put(Self.calibrator("t", method: "matrix", classes: 5, tag: 2), in: kind) == .replaced)
        #expect(try store.get("t", in: kind) == Self.calibrator("t", method: "matrix", classes: 5, tag: 2))
        #expect(try store.count(in: kind) == 1)
    }

    @Test func walAndFullSynchronousAreOn() throws {
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let store = try SQLiteDocumentStore(directory: directory)
        try store.put(Self.calibrator("x"), in: kind)
        // The WAL file exists while the connection is open and holds the commit.
        #expect(FileManager.default.fileExists(atPath: directory + "/calibrators.sqlite-wal"))
        store.close()
        #expect(throws: StoreError.self) { try store.get("x", in: kind) }
    }

    @Test func concurrentPutsOfOneNameLeaveOneCompleteVersion() throws {
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        // Two connections on one file (as two processes would be) plus many threads each.
        let first = try SQLiteDocumentStore(directory: directory)
        let second = try SQLiteDocumentStore(directory: directory)
        let outcomes = Mutex<[PutOutcome]>([])
        let failures = Mutex<[String]>([])
        let versions = (0..<64).map { tag in
            // Large documents, so a torn write would show.
            var c = Self.calibrator("shared", classes: 2 + tag, tag: tag)
            c = StoredDocument(
                name: c.name, kind: c.kind, size: c.size, createdAt: c.createdAt,
                json: c.json + String(repeating: " ", count: 20_000 + tag))
            return c
        }
        DispatchQueue.concurrentPerform(iterations: versions.count) { i in
            do {
                let outcome = try (i % 2 == 0 ? first : second).put(versions[i], in: kind)
                outcomes.withLock { $0.append(outcome) }
            } catch {
                failures.withLock { $0.append("\(error)") }
            }
        }
        #expect(failures.withLock { $0 }.isEmpty)
        #expect(outcomes.withLock { $0.filter { $0 == .created }.count } == 1)
        #expect(outcomes.withLock { $0.count } == versions.count)
        let stored = try #require(try first.get("shared", in: kind))
        #expect(versions.contains(stored), "the stored row must equal one whole version")
        #expect(try second.get("shared", in: kind) == stored)
        #expect(try first.list(in: kind).count == 1)
        first.close()
        second.close()
    }

    @Test func reopenKeepsData() throws {
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        do {
            let store = try SQLiteDocumentStore(directory: directory)
            for i in 0..<20 { try store.put(Self.calibrator("c\(i)", tag: i), in: kind) }
            try store.delete("c3", in: kind)
            store.close()
        }
        let reopened = try SQLiteDocumentStore(directory: directory)
        defer { reopened.close() }
        #expect(try reopened.count(in: kind) == 19)
        #expect(try reopened.get("c7", in: kind) == Self.calibrator("c7", tag: 7))
        #expect(try reopened.get("c3", in: kind) == nil)
    }

    @Test func dataCommittedWithoutCloseSurvivesInTheWAL() throws {
        // A commit is in the WAL (fsynced) when put returns; a second connection opened
        // without the first closing (as after kill -9) sees it.
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let writer = try SQLiteDocumentStore(directory: directory)
        try writer.put(Self.calibrator("durable", tag: 5), in: kind)
        let reader = try SQLiteDocumentStore(directory: directory)
        #expect(try reader.get("durable", in: kind) == Self.calibrator("durable", tag: 5))
        reader.close()
        writer.close()
    }

    @Test func garbageFileIsACorruptStore() throws {
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let garbage = Data((0..<8192).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) })
        try garbage.write(to: URL(fileURLWithPath: directory + "/calibrators.sqlite"))
        do {
            _ = try SQLiteDocumentStore(directory: directory)
            Issue.record("opening a garbage file must fail")
        } catch {
            guard case .corrupt(let path, _) = error else {
                Issue.record("expected .corrupt, got \(error)")
                return
            }
            #expect(path.hasSuffix("/calibrators.sqlite"))
            #expect("\(error)".contains("corrupt"))
        }
        // The file was left as it was (no silent re-initialisation).
        #expect(try Data(contentsOf: URL(fileURLWithPath: directory + "/calibrators.sqlite")) == garbage)
    }

    @Test func damagedPagesAreACorruptStore() throws {
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let file = directory + "/calibrators.sqlite"
        do {
            let store = try SQLiteDocumentStore(directory: directory)
            for i in 0..<200 { try store.put(Self.calibrator("calibrator-\(i)", tag: i), in: kind) }
            store.close()  // checkpoints the WAL into the main file
        }
        var bytes = try Data(contentsOf: URL(fileURLWithPath: file))
        #expect(bytes.count > 4096 * 4)
        // Scribble over the middle of the file, past the header page.
        for k in 4096 * 2..<(4096 * 2 + 3000) { bytes[k] = UInt8(truncatingIfNeeded: k &* 13) }
        try bytes.write(to: URL(fileURLWithPath: file))
        #expect {
            _ = try SQLiteDocumentStore(directory: directory)
        } throws: { error in
            guard let error = error as? StoreError, case .corrupt = error else { return false }
            return true
        }
    }

    @Test func missingDirectoryIsUnwritable() {
        #expect {
            _ = try SQLiteDocumentStore(directory: "/nonexistent-lossd-\(UUID().uuidString)/data")
        } throws: { error in
            guard let error = error as? StoreError, case .unwritable = error else { return false }
            return true
        }
    }

    @Test func newerSchemaIsRefused() throws {
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        do {
            let store = try SQLiteDocumentStore(directory: directory)
            store.close()
        }
        // Bump the version with the sqlite3 tool's equivalent: a second connection.
        let connection = try SQLiteConnection(path: directory + "/calibrators.sqlite")
        try connection.execute("UPDATE schema_version SET version = 99", [], operation: "test")
        connection.close()
        #expect(throws: StoreError.unsupportedSchema(path: directory + "/calibrators.sqlite", found: 99, supported: SQLiteDocumentStore.schemaVersion)) {
            _ = try SQLiteDocumentStore(directory: directory)
        }
    }

    // MARK: In process

    @Test func serviceAnswers503UntilAStoreIsAttached() throws {
        let service = LossdService(configuration: ServiceConfiguration())
        let context = RequestContext(requestID: "t", remoteAddress: "test")
        func send(_ method: String, _ target: String, _ body: String = "") -> HTTPResponse {
            let head = HTTPRequestHead(method: method, target: target, version: .http1_1, headers: ["Content-Type": "application/json"])
            return service.respond(to: HTTPRequest(head: head, body: Array(body.utf8)), context: context)
        }
        let put = #"{"method": "temperature", "params": {"temperature": 2}, "classes": 2}"#
        #expect(send("GET", "/v1/calibrators").status.code == 503)
        #expect(send("PUT", "/v1/calibrators/t", put).status.code == 503)
        #expect(send("GET", "/readyz").status.code == 503)
        // Inline calibration needs no store.
        let inline = send("POST", "/v1/calibrate", #"{"calibrator": {"method": "temperature", "params": {"temperature": 2}}, "logits": [[2, 0]]}"#)
        #expect(inline.status.code == 200, "\(String(decoding: inline.body, as: UTF8.self))")

        service.attachStore(SQLiteDocumentStore.inMemory())
        #expect(send("GET", "/readyz").status.code == 200)
        let created = send("PUT", "/v1/calibrators/t", put)
        #expect(created.status.code == 201)
        #expect(created.headers["location"] == "/v1/calibrators/t")
        #expect(send("PUT", "/v1/calibrators/t", put).status.code == 200)
        #expect(send("POST", "/v1/calibrators/t/apply", #"{"logits": [[2, 0]]}"#).body == inline.body)
        #expect(send("DELETE", "/v1/calibrators/t").status.code == 204)
        #expect(send("GET", "/v1/calibrators/t").status.code == 404)
    }

    // MARK: Codec

    @Test func codecRoundTripsEveryValueKind() throws {
        let model = CalibratorModel(
            method: "temperature", classes: 3,
            parameters: [
                "t": .number(0.1 + 0.2),
                "v": .vector([1, -0.0, 1e-300, 123456.789]),
                "m": .matrix(Matrix(rows: 2, cols: 3, values: [1, 2, 3, 4.5, 5, 6])),
                "r": .rows([[1, 2, 3], [4], []]),
                "s": .text("max_temperature"),
            ])
        let record = CalibratorRecord(name: "x", model: model, fittedOn: 10, createdAt: "2026-11-29T00:00:00.000Z")
        let node = try JSONReader.parse(record.json.bytes)
        guard case .object(let object) = node, case .object(let params)? = object["params"] else {
            Issue.record("not an object")
            return
        }
        #expect(object.keys == ["name", "method", "params", "classes", "fitted_on", "created_at"])
        var decoded: [String: CalibratorValue] = [:]
        for (key, value) in params.members { decoded[key] = try CalibratorCodec.decodeValue(value, field: "/params/\(key)") }
        #expect(decoded == model.parameters)
        #expect(decoded["m"]?.rowArrays == [[1, 2, 3], [4.5, 5, 6]])
    }

    @Test func codecRejectsBadParams() throws {
        for text in [#"{"a": true}"#, #"{"a": {"b": 1}}"#, #"{"a": [[[1]]]}"#, #"{"a": [1, "x"]}"#, #"{"a": 1e400}"#] {
            guard case .object(let object) = try JSONReader.parse(Array(text.utf8)), let node = object["a"] else {
                Issue.record("bad fixture \(text)")
                continue
            }
            #expect(throws: ServiceError.self, "\(text)") { try CalibratorCodec.decodeValue(node, field: "/params/a") }
        }
    }

    @Test func namesFollowThePattern() {
        for good in ["a", "A-b_c.9", String(repeating: "x", count: 64)] { #expect(CalibratorResource.isValidName(good), "\(good)") }
        for bad in ["", String(repeating: "x", count: 65), "a/b", "a b", "é", "a%", "a\n"] {
            #expect(!CalibratorResource.isValidName(bad), "\(bad)")
        }
    }

    @Test func timestampsAreRFC3339UTC() {
        let stamp = CalibratorResource.timestamp()
        #expect(stamp.count == 24 && stamp.hasSuffix("Z") && stamp.dropFirst(10).first == "T", "\(stamp)")
    }
}
