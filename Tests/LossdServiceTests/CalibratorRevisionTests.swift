import CSQLite
import Dispatch
import Foundation
import LossdHTTP
import Synchronization
import Testing

@testable import LossdService
@testable import LossdStore

/// Revisions, ETags and conditional writes on the SQLite store, and the schema migration
/// from version 1 (no revisions) to 2.
@Suite("Calibrator revisions and conditional writes")
struct CalibratorRevisionTests {
    var kind: String { CalibratorStoreTests.kind }
    static func calibrator(_ name: String, tag: Int = 0) -> StoredDocument {
        CalibratorStoreTests.calibrator(name, tag: tag)
    }

    static func written(_ result: ConditionalPut) -> (PutOutcome, Int64)? {
        if case let .written(outcome, revision) = result { return (outcome, revision) }
        return nil
    }

    @Test func revisionsGrowAndAreNeverReused() throws {
        let directory = try CalibratorStoreTests.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var seen: [Int64] = []
        do {
            let store = try SQLiteDocumentStore(directory: directory)
            let first = try #require(Self.written(try store.put(Self.calibrator("a"), in: kind, preconditions: .none)))
            #expect(first.0 == .created)
            let second = try #require(Self.written(try store.put(Self.calibrator("a", tag: 1), in: kind, preconditions: .none)))
            #expect(second.0 == .replaced)
            #expect(try store.fetch("a", in: kind)?.revision == second.1)
            #expect(try store.delete("a", in: kind))
            let recreated = try #require(Self.written(try store.put(Self.calibrator("a"), in: kind, preconditions: .none)))
            #expect(recreated.0 == .created)
            seen = [first.1, second.1, recreated.1]
            store.close()
        }
        let reopened = try SQLiteDocumentStore(directory: directory)
        defer { reopened.close() }
        let later = try #require(Self.written(try reopened.put(Self.calibrator("b"), in: kind, preconditions: .none)))
        seen.append(later.1)
        #expect(seen == seen.sorted() && Set(seen).count == seen.count, "\(seen)")
    }

    @Test func ifMatchAndIfNoneMatchOnTheStore() throws {
        let store = SQLiteDocumentStore.inMemory()
        let tags = { (revisions: [Int64]) in EntityTagCondition.tags(revisions.map { EntityTag(revision: $0) }) }
        // If-Match on a missing calibrator fails, * included.
        #expect(try store.put(Self.calibrator("x"), in: kind, preconditions: WritePreconditions(ifMatch: .any)) == .preconditionFailed(current: nil))
        #expect(try store.put(Self.calibrator("x"), in: kind, preconditions: WritePreconditions(ifMatch: tags([1]))) == .preconditionFailed(current: nil))
        #expect(try store.get("x", in: kind) == nil)
        // If-None-Match: * creates only.
        let created = try #require(Self.written(try store.put(Self.calibrator("x"), in: kind, preconditions: WritePreconditions(ifNoneMatch: .any))))
        #expect(created.0 == .created)
        let r1 = created.1
        #expect(try store.put(Self.calibrator("x", tag: 9), in: kind, preconditions: WritePreconditions(ifNoneMatch: .any)) == .preconditionFailed(current: r1))
        // If-Match with a stale tag fails and leaves the stored version alone.
        #expect(try store.put(Self.calibrator("x", tag: 2), in: kind, preconditions: WritePreconditions(ifMatch: tags([r1 + 100]))) == .preconditionFailed(current: r1))
        // A weak tag never matches If-Match (strong comparison).
        #expect(
            try store.put(Self.calibrator("x", tag: 2), in: kind, preconditions: WritePreconditions(ifMatch: .tags([EntityTag(revision: r1, weak: true)])))
                == .preconditionFailed(current: r1))
        #expect(try store.get("x", in: kind) == Self.calibrator("x"))
        // The current tag, alone or in a list, matches.
        let replaced = try #require(Self.written(try store.put(Self.calibrator("x", tag: 3), in: kind, preconditions: WritePreconditions(ifMatch: tags([77, r1])))))
        #expect(replaced.0 == .replaced && replaced.1 > r1)
        #expect(try store.get("x", in: kind) == Self.calibrator("x", tag: 3))
        // If-None-Match with the current tag fails (weak comparison: W/ matches too).
        #expect(
            try store.put(Self.calibrator("x"), in: kind, preconditions: WritePreconditions(ifNoneMatch: .tags([EntityTag(revision: replaced.1, weak: true)])))
                == .preconditionFailed(current: replaced.1))
        // Delete: a missing name is notFound whatever the preconditions; stale tags fail.
        #expect(try store.delete("nope", in: kind, preconditions: WritePreconditions(ifMatch: tags([1]))) == .notFound)
        #expect(try store.delete("x", in: kind, preconditions: WritePreconditions(ifMatch: tags([r1]))) == .preconditionFailed(current: replaced.1))
        #expect(try store.delete("x", in: kind, preconditions: WritePreconditions(ifMatch: tags([replaced.1]))) == .deleted)
        #expect(try store.count(in: kind) == 0)
    }

    @Test func entityTagListsParse() {
        #expect(EntityTagCondition.parse([]) == nil)
        #expect(EntityTagCondition.parse(["*"]) == .any)
        #expect(EntityTagCondition.parse([" * "]) == .any)
        // `*` is "any" only as the whole field; inside a list it is a tag that never matches.
        #expect(EntityTagCondition.parse([#""1", *"#]) == .tags([EntityTag(revision: 1), EntityTag(revision: nil)]))
        #expect(EntityTagCondition.parse([#""007""#]) == .tags([EntityTag(revision: nil)]))
        #expect(EntityTagCondition.parse([#""0""#]) == .tags([EntityTag(revision: 0)]))
        #expect(
            EntityTagCondition.parse([#""12", W/"3""#, #" "x" ,garbage"#])
                == .tags([
                    EntityTag(revision: 12), EntityTag(revision: 3, weak: true), EntityTag(revision: nil), EntityTag(revision: nil),
                ]))
        #expect(EntityTag.header(for: 42) == #""42""#)
    }

    @Test func concurrentIfMatchWritersOneWinsPerRevision() throws {
        let directory = try CalibratorStoreTests.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        // Two connections on one file, as two processes would be.
        let stores = [try SQLiteDocumentStore(directory: directory), try SQLiteDocumentStore(directory: directory)]
        defer { stores.forEach { $0.close() } }
        try stores[0].put(Self.calibrator("race"), in: kind)
        for round in 0..<5 {
            let current = try #require(try stores[1].fetch("race", in: kind)).revision
            let results = Mutex<[ConditionalPut]>([])
            DispatchQueue.concurrentPerform(iterations: 12) { i in
                let precondition = WritePreconditions(ifMatch: .tags([EntityTag(revision: current)]))
                if let result = try? stores[i % 2].put(Self.calibrator("race", tag: round * 100 + i), in: kind, preconditions: precondition) {
                    results.withLock { $0.append(result) }
                }
            }
            let all = results.withLock { $0 }
            #expect(all.count == 12)
            #expect(all.filter { Self.written($0) != nil }.count == 1, "round \(round): \(all)")
            #expect(all.filter { $0 == .preconditionFailed(current: current) }.count == 0, "losers see the winner's revision")
        }
    }

    @Test func version1FileIsMigratedWithRevisions() throws {
        let directory = try CalibratorStoreTests.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/" + SQLiteDocumentStore.fileName
        // A file as lossd's first store wrote it (schema version 1, no revision column).
        var db: OpaquePointer?
        #expect(sqlite3_open(path, &db) == SQLITE_OK)
        let v1 = """
            PRAGMA journal_mode=WAL;
            CREATE TABLE schema_version (version INTEGER NOT NULL);
            INSERT INTO schema_version (version) VALUES (1);
            CREATE TABLE calibrators (
                name TEXT PRIMARY KEY NOT NULL, method TEXT NOT NULL, classes INTEGER NOT NULL,
                created_at TEXT NOT NULL, document TEXT NOT NULL
            ) WITHOUT ROWID;
            """
        #expect(sqlite3_exec(db, v1, nil, nil, nil) == SQLITE_OK)
        for name in ["c", "a", "b"] {
            let c = Self.calibrator(name)
            let insert = "INSERT INTO calibrators VALUES ('\(c.name)', '\(c.kind)', \(c.size), '\(c.createdAt)', '\(c.json)')"
            #expect(sqlite3_exec(db, insert, nil, nil, nil) == SQLITE_OK)
        }
        sqlite3_close(db)

        let store = try SQLiteDocumentStore(directory: directory)
        #expect(try store.list(in: kind).map(\.name) == ["a", "b", "c"])
        #expect(try store.get("b", in: kind) == Self.calibrator("b"))
        let revisions = try ["a", "b", "c"].map { try #require(try store.fetch($0, in: kind)).revision }
        #expect(revisions == [1, 2, 3])
        let next = try #require(Self.written(try store.put(Self.calibrator("d"), in: kind, preconditions: .none)))
        #expect(next.1 == 4)
        store.close()
        // Reopening a current file changes nothing.
        let again = try SQLiteDocumentStore(directory: directory)
        #expect(try again.fetch("d", in: kind)?.revision == 4)
        let version = try SQLiteConnection(path: path)
        #expect(try version.query("SELECT version FROM schema_version", [], operation: "test") { $0.int(0) } == [SQLiteDocumentStore.schemaVersion])
        version.close()
        again.close()
    }

    // MARK: PostgreSQL settings (no server needed)

    @Test func postgresURLsNeverShowTheirPassword() throws {
        #expect(
            PostgresURL.redacted("postgres://u:p%40ss@h:5432/db?sslmode=require&password=x")
                == "postgres://u:***@h:5432/db?sslmode=require&password=***")
        #expect(PostgresURL.redacted("postgresql://h/db") == "postgresql://h/db")
        #expect(PostgresURL.redacted("postgres://u@h/db") == "postgres://u@h/db")
        let url = "postgres://u:s3cr%65t@[::1/x"
        #expect(PostgresURL.scrubbed(#"in URI: "\#(url)", "s3cret""#, url: url) == #"in URI: "postgres://u:***@[::1/x", "***""#)
        do {
            try PostgresURL.validate(url)
            Issue.record("an unterminated IPv6 host must be refused")
        } catch {
            guard case .invalidLocation(let detail) = error else {
                Issue.record("expected .invalidLocation, got \(error)")
                return
            }
            #expect(!detail.contains("s3cr") && detail.contains("***"), "\(detail)")
        }
        #expect(throws: StoreError.self) { try PostgresURL.validate("mysql://u:pw@h/db") }
    }

    /// A PostgreSQL database as lossd's first store left it (schema 1: `calibrators` and
    /// the `calibrator_revision` sequence), in a schema of its own, is migrated at open:
    /// the calibrators keep their revisions, the sequence goes on from them, and scaling
    /// laws share it. Runs when scripts/test.sh has started a server.
    @Test(.enabled(if: ProcessInfo.processInfo.environment["LOSSD_TEST_POSTGRES_URL"].map { !$0.isEmpty } ?? false))
    func postgresVersion1DatabaseIsMigrated() throws {
        let base = ProcessInfo.processInfo.environment["LOSSD_TEST_POSTGRES_URL"]!
        let schema = "lossd_v1_\(UInt32.random(in: 0...UInt32.max))"
        let url = base + (base.contains("?") ? "&" : "?") + "options=-csearch_path%3D" + schema
        let setup = try PostgresConnection(
            parameters: .init(configuration: PostgresStoreConfiguration(url: base, poolSize: 1)), location: "test")
        defer { _ = try? setup.query("DROP SCHEMA \(schema) CASCADE", [], operation: "test") }
        for statement in [
            "CREATE SCHEMA \(schema)",
            "CREATE TABLE \(schema).schema_version (version integer NOT NULL)",
            "INSERT INTO \(schema).schema_version VALUES (1)",
            "CREATE SEQUENCE \(schema).calibrator_revision AS bigint",
            """
            CREATE TABLE \(schema).calibrators (name text PRIMARY KEY, method text NOT NULL, classes integer NOT NULL,
                created_at text NOT NULL, document text NOT NULL, revision bigint NOT NULL)
            """,
        ] {
            _ = try setup.query(statement, [], operation: "test")
        }
        for name in ["b", "a"] {
            let c = Self.calibrator(name)
            _ = try setup.query(
                "INSERT INTO \(schema).calibrators VALUES ($1, $2, $3, $4, $5, nextval('\(schema).calibrator_revision'))",
                [c.name, c.kind, String(c.size), c.createdAt, c.json], operation: "test")
        }

        var configuration = PostgresStoreConfiguration(url: url, poolSize: 2)
        configuration.startupWait = 0
        let store = try PostgresDocumentStore(configuration: configuration)
        defer { store.close() }
        #expect(try store.list(in: kind).map(\.name) == ["a", "b"])
        #expect(try store.get("a", in: kind) == Self.calibrator("a"))
        #expect(try store.fetch("b", in: kind)?.revision == 1)
        #expect(try store.fetch("a", in: kind)?.revision == 2)
        let law = StoredDocument(name: "a", kind: "power_law", size: 9, createdAt: "2026-12-06T00:00:00.000Z", json: "{}")
        #expect(try store.put(law, in: "scaling_laws", preconditions: .none) == .written(.created, revision: 3))
        #expect(try store.get("a", in: "scaling_laws") == law)
        #expect(try store.count(in: kind) == 2)
        let version = try setup.query("SELECT version FROM \(schema).schema_version", [], operation: "test")
        #expect(version.first?.first == String(PostgresDocumentStore.schemaVersion))
        let oldTable = try setup.query("SELECT to_regclass('\(schema).calibrators') IS NULL", [], operation: "test")
        #expect(oldTable.first?.first == "t")
    }

    @Test func unreachablePostgresFailsFastWithoutThePassword() {
        var configuration = PostgresStoreConfiguration(url: "postgres://u:topsecret@127.0.0.1:1/db", poolSize: 2)
        configuration.startupWait = 0
        let started = Date()
        do {
            _ = try PostgresDocumentStore(configuration: configuration)
            Issue.record("nothing listens on port 1")
        } catch {
            guard case .unreachable(let location, _) = error else {
                Issue.record("expected .unreachable, got \(error)")
                return
            }
            #expect(location == "postgres://u:***@127.0.0.1:1/db")
            #expect(!"\(error)".contains("topsecret"))
        }
        #expect(Date().timeIntervalSince(started) < 5)
    }

    // MARK: HTTP, in process

    let context = RequestContext(requestID: "t", remoteAddress: "test")

    func send(_ service: LossdService, _ method: String, _ target: String, _ body: String = "", headers: [(String, String)] = []) -> HTTPResponse {
        var fields: HTTPHeaders = ["Content-Type": "application/json"]
        for (name, value) in headers { fields.add(name: name, value: value) }
        let head = HTTPRequestHead(method: method, target: target, version: .http1_1, headers: fields)
        return service.respond(to: HTTPRequest(head: head, body: Array(body.utf8)), context: context)
    }

    @Test func etagsAndPreconditionsOverHTTP() throws {
        let service = LossdService(configuration: ServiceConfiguration())
        service.attachStore(SQLiteDocumentStore.inMemory())
        let body = #"{"method": "temperature", "params": {"temperature": 2}, "classes": 2}"#
        let other = #"{"method": "temperature", "params": {"temperature": 3}, "classes": 2}"#

        // If-Match on a missing calibrator: 412; If-None-Match: * creates.
        #expect(send(service, "PUT", "/v1/calibrators/t", body, headers: [("If-Match", "*")]).status.code == 412)
        let created = send(service, "PUT", "/v1/calibrators/t", body, headers: [("If-None-Match", "*")])
        #expect(created.status.code == 201)
        let etag = try #require(created.headers["ETag"])
        #expect(etag.hasPrefix("\"") && etag.hasSuffix("\"") && etag.count >= 3)
        let get = send(service, "GET", "/v1/calibrators/t")
        #expect(get.status.code == 200 && get.headers["ETag"] == etag)

        let exists = send(service, "PUT", "/v1/calibrators/t", other, headers: [("If-None-Match", "*")])
        #expect(exists.status.code == 412)
        #expect(exists.headers["Content-Type"] == "application/problem+json")
        let problem = String(decoding: exists.body, as: UTF8.self)
        #expect(problem.contains("urn:lossd:error:precondition_failed") && problem.contains(#""status":412"#), "\(problem)")

        #expect(send(service, "PUT", "/v1/calibrators/t", other, headers: [("If-Match", #""999999""#)]).status.code == 412)
        #expect(send(service, "PUT", "/v1/calibrators/t", other, headers: [("If-Match", "W/" + etag)]).status.code == 412)
        #expect(send(service, "PUT", "/v1/calibrators/t", other, headers: [("If-Match", "not a tag")]).status.code == 412)
        #expect(send(service, "GET", "/v1/calibrators/t").body == get.body, "a refused PUT leaves the stored version")

        let replaced = send(service, "PUT", "/v1/calibrators/t", other, headers: [("If-Match", #""1", "# + etag)])
        #expect(replaced.status.code == 200)
        let newTag = try #require(replaced.headers["ETag"])
        #expect(newTag != etag)
        #expect(send(service, "GET", "/v1/calibrators/t").headers["ETag"] == newTag)
        // Unconditional PUTs still work and move the tag.
        let plain = send(service, "PUT", "/v1/calibrators/t", body)
        #expect(plain.status.code == 200 && plain.headers["ETag"] != newTag)

        // Strong comparison is by characters: a padded revision does not match; nor does a
        // `*` inside a list (only a whole-field `*` means any).
        let current = try #require(plain.headers["ETag"])
        let padded = "\"0" + current.dropFirst()
        #expect(send(service, "PUT", "/v1/calibrators/t", body, headers: [("If-Match", padded)]).status.code == 412)
        #expect(send(service, "PUT", "/v1/calibrators/t", body, headers: [("If-Match", #""999999", *"#)]).status.code == 412)

        // DELETE honours If-Match and If-None-Match; a missing name is 404 whatever the
        // preconditions.
        #expect(send(service, "DELETE", "/v1/calibrators/t", headers: [("If-Match", newTag)]).status.code == 412)
        #expect(send(service, "DELETE", "/v1/calibrators/t", headers: [("If-None-Match", "*")]).status.code == 412)
        #expect(send(service, "DELETE", "/v1/calibrators/t", headers: [("If-None-Match", current)]).status.code == 412)
        #expect(send(service, "DELETE", "/v1/calibrators/t", headers: [("If-Match", try #require(plain.headers["ETag"]))]).status.code == 204)
        #expect(send(service, "DELETE", "/v1/calibrators/t", headers: [("If-Match", "*")]).status.code == 404)

        // A named fit answers the stored revision's ETag too, and honours the same conditions.
        let fitBody = #"{"method": "temperature", "logits": [[2, 0], [0, 1], [1, 0]], "labels": [0, 1, 0], "name": "fitted"}"#
        let fit = send(service, "POST", "/v1/calibrators/fit", fitBody)
        #expect(fit.status.code == 201)
        let fitTag = try #require(fit.headers["ETag"])
        #expect(send(service, "GET", "/v1/calibrators/fitted").headers["ETag"] == fitTag)
        #expect(send(service, "POST", "/v1/calibrators/fit", fitBody, headers: [("If-None-Match", "*")]).status.code == 412)
        #expect(send(service, "POST", "/v1/calibrators/fit", fitBody, headers: [("If-Match", #""999999""#)]).status.code == 412)
        #expect(send(service, "GET", "/v1/calibrators/fitted").headers["ETag"] == fitTag, "a refused fit stores nothing")
        let refit = send(service, "POST", "/v1/calibrators/fit", fitBody, headers: [("If-Match", fitTag)])
        #expect(refit.status.code == 201 && refit.headers["ETag"] != fitTag)

        // GET with If-None-Match holding the current revision: 304, the ETag, no body.
        let refitTag = try #require(refit.headers["ETag"])
        let notModified = send(service, "GET", "/v1/calibrators/fitted", headers: [("If-None-Match", "W/" + refitTag)])
        #expect(notModified.status.code == 304 && notModified.body.isEmpty && notModified.headers["ETag"] == refitTag)
        #expect(send(service, "GET", "/v1/calibrators/fitted", headers: [("If-None-Match", fitTag)]).status.code == 200)
        #expect(send(service, "GET", "/v1/calibrators/fitted", headers: [("If-None-Match", "*")]).status.code == 304)
    }
}
