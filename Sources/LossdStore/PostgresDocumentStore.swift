import CLibPQ
import Dispatch
import Logging
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Settings of the PostgreSQL store.
public struct PostgresStoreConfiguration: Sendable {
    /// `postgres://` or `postgresql://` URL (libpq's URI syntax; its query parameters, such
    /// as `sslmode`, `connect_timeout` or `target_session_attrs`, win over lossd's
    /// connection defaults; the session's `statement_timeout` and `lock_timeout` are set by
    /// lossd after connecting).
    public var url: String
    /// Connections at most in the request pool (the health check has one more of its own).
    public var poolSize: Int
    /// Seconds a request waits for a free pooled connection before its 503.
    public var acquireTimeout: Double = 2
    /// libpq's `connect_timeout` in seconds (libpq's minimum is 2), unless the URL sets one.
    public var connectTimeoutSeconds: Int = 3
    /// `statement_timeout` (and `lock_timeout`) set on every connection, in milliseconds.
    public var statementTimeoutMilliseconds: Int = 5000
    /// Seconds between two health checks (`/readyz`, the count for `/metrics`).
    public var healthCheckInterval: Double = 1
    /// Seconds start-up keeps retrying an unreachable database before it gives up.
    public var startupWait: Double = 30

    public init(url: String, poolSize: Int) {
        self.url = url
        self.poolSize = poolSize
    }
}

/// The document store on a PostgreSQL server, shared by any number of lossd replicas.
///
/// - Schema: created or migrated at start-up in one transaction that holds
///   `pg_advisory_xact_lock`, so replicas starting together migrate once; versions are
///   in `schema_version`. Tables: `documents` (one row per collection and name) and the
///   sequence `document_revision`, which hands out revisions (never reused).
/// - Writes: each in its own transaction; the row is locked (`SELECT ... FOR UPDATE`)
///   while `If-Match` / `If-None-Match` are checked, so a conditional write is atomic, and
///   concurrent creates of one name end with one insert and updates after it.
/// - Connections: a bounded pool (`poolSize`); a request waits `acquireTimeout` at most
///   for one. A broken connection is dropped and reopened, with a backoff (50 ms doubling
///   to 1 s) between failed connects; `connect_timeout`, `tcp_user_timeout`,
///   `statement_timeout` and `lock_timeout` bound every wait. Every failure is a
///   `StoreError` (a 503 for clients), never a hang.
/// - Health: a timer (every `healthCheckInterval`) runs a query on its own connection and
///   keeps `isAvailable` and `sampledCounts()` current, so `/readyz` and `/metrics` read
///   flags and never touch the network.
/// - No cache: every read goes to the database, so a write on one replica is visible on
///   all at once.
public final class PostgresDocumentStore: DocumentStore {
    /// The schema this build writes; newer databases are refused.
    public static let schemaVersion = 2
    /// The advisory lock key that serialises schema migrations (any constant; the bytes of "lossd").
    static let migrationLockKey: Int64 = 465_726_305_124

    public var backend: String { "postgres" }
    public let location: String
    public let configuration: PostgresStoreConfiguration

    private let pool: PostgresConnectionPool
    private let available = Atomic<Bool>(true)
    private let lastCounts = Mutex<[String: Int]?>(nil)
    private let closed = Atomic<Bool>(false)
    private let healthConnection = Mutex<PostgresConnection?>(nil)
    private let healthQueue = DispatchQueue(label: "lossd.store.health")
    private let logger: Logger

    /// Checks the URL, connects (retrying for `startupWait` seconds while the server is
    /// unreachable), migrates the schema and starts the health check.
    /// - Throws: `.invalidLocation` for an unusable URL, `.unreachable` when no connection
    ///   succeeded in time (with libpq's last message), `.unsupportedSchema` for a newer
    ///   schema, `.failed` when the migration failed.
    public init(configuration: PostgresStoreConfiguration, logger: Logger = Logger(label: "lossd.store")) throws(StoreError) {
        try PostgresURL.validate(configuration.url)
        self.configuration = configuration
        self.logger = logger
        location = PostgresURL.redacted(configuration.url)
        let parameters = PostgresConnection.Parameters(configuration: configuration)
        pool = PostgresConnectionPool(size: max(1, configuration.poolSize), parameters: parameters, location: location)

        // Start-up: connect (retrying while unreachable) and migrate.
        let deadline = Monotonic.now() + configuration.startupWait
        var attempt = 0
        var connection: PostgresConnection
        while true {
            do throws(StoreError) {
                connection = try PostgresConnection(parameters: parameters, location: location)
                break
            } catch {
                attempt += 1
                let pause = min(0.25 * Double(attempt), 2)
                if Self.isPermanent(error) || Monotonic.now() + pause >= deadline { throw error }
                logger.warning("store \(location) not reachable yet (\(error)); retrying")
                usleep(UInt32(pause * 1e6))
            }
        }
        try Self.migrate(connection, location: location)
        healthConnection.withLock { $0 = connection }

        checkHealth()
        scheduleHealthCheck()
    }

    /// The next health check, `healthCheckInterval` after this one ended (so a slow check
    /// never piles up behind itself); stops once the store is closed or released.
    private func scheduleHealthCheck() {
        let interval = max(0.05, configuration.healthCheckInterval)
        healthQueue.asyncAfter(deadline: .now() + interval) { [weak self] in
            guard let self, !self.closed.load(ordering: .acquiring) else { return }
            self.checkHealth()
            self.scheduleHealthCheck()
        }
    }

    public var isAvailable: Bool { available.load(ordering: .acquiring) && !closed.load(ordering: .acquiring) }

    // MARK: Operations

    public func put(_ document: StoredDocument, in collection: String, preconditions: WritePreconditions) throws(StoreError) -> ConditionalPut {
        try run("put") { db throws(StoreError) -> ConditionalPut in
            // A concurrent create of the same name can win between our check and insert;
            // then the insert does nothing and the next round sees (and locks) its row.
            for _ in 0..<8 {
                let outcome = try db.transaction("put") { () throws(StoreError) -> ConditionalPut? in
                    let current = try db.query(
                        "SELECT revision FROM documents WHERE collection = $1 AND name = $2 FOR UPDATE", [collection, document.name],
                        operation: "put"
                    ).first.map { row throws(StoreError) in try Self.int64(row, 0, "put") }
                    guard preconditions.allow(current: current) else { return .preconditionFailed(current: current) }
                    let values = [collection, document.name, document.kind, String(document.size), document.createdAt, document.json]
                    if current == nil {
                        let inserted = try db.query(
                            """
                            INSERT INTO documents (collection, name, kind, size, created_at, body, revision)
                            VALUES ($1, $2, $3, $4, $5, $6, nextval('document_revision'))
                            ON CONFLICT (collection, name) DO NOTHING RETURNING revision
                            """, values, operation: "put")
                        guard let row = inserted.first else { return nil }  // lost the race: roll back, look again
                        return .written(.created, revision: try Self.int64(row, 0, "put"))
                    }
                    let updated = try db.query(
                        """
                        UPDATE documents SET kind = $3, size = $4, created_at = $5, body = $6,
                            revision = nextval('document_revision')
                        WHERE collection = $1 AND name = $2 RETURNING revision
                        """, values, operation: "put")
                    guard let row = updated.first else { throw .failed(operation: "put", detail: "the locked row vanished") }
                    return .written(.replaced, revision: try Self.int64(row, 0, "put"))
                }
                if let outcome { return outcome }
            }
            throw .failed(operation: "put", detail: "kept losing a race with concurrent writers of the same name")
        }
    }

    public func fetch(_ name: String, in collection: String) throws(StoreError) -> RevisedDocument? {
        try run("get") { db throws(StoreError) -> RevisedDocument? in
            let rows = try db.query(
                "SELECT name, kind, size, created_at, body, revision FROM documents WHERE collection = $1 AND name = $2",
                [collection, name], operation: "get")
            guard let row = rows.first else { return nil }
            return RevisedDocument(
                document: StoredDocument(
                    name: row[0] ?? "", kind: row[1] ?? "", size: Int(try Self.int64(row, 2, "get")),
                    createdAt: row[3] ?? "", json: row[4] ?? ""),
                revision: try Self.int64(row, 5, "get"))
        }
    }

    public func list(in collection: String) throws(StoreError) -> [DocumentSummary] {
        try run("list") { db throws(StoreError) -> [DocumentSummary] in
            // COLLATE "C": byte order, as SQLite sorts, whatever the database's locale.
            let rows = try db.query(
                #"SELECT name, kind, size, created_at FROM documents WHERE collection = $1 ORDER BY name COLLATE "C""#, [collection],
                operation: "list")
            var summaries: [DocumentSummary] = []
            summaries.reserveCapacity(rows.count)
            for row in rows {
                summaries.append(
                    DocumentSummary(
                        name: row[0] ?? "", kind: row[1] ?? "", size: Int(try Self.int64(row, 2, "list")), createdAt: row[3] ?? ""))
            }
            return summaries
        }
    }

    public func delete(_ name: String, in collection: String, preconditions: WritePreconditions) throws(StoreError) -> ConditionalDelete {
        try run("delete") { db throws(StoreError) -> ConditionalDelete in
            try db.transaction("delete") { () throws(StoreError) -> ConditionalDelete in
                guard
                    let row = try db.query(
                        "SELECT revision FROM documents WHERE collection = $1 AND name = $2 FOR UPDATE", [collection, name],
                        operation: "delete"
                    ).first
                else { return .notFound }
                let current = try Self.int64(row, 0, "delete")
                guard preconditions.allow(current: current) else { return .preconditionFailed(current: current) }
                _ = try db.query("DELETE FROM documents WHERE collection = $1 AND name = $2", [collection, name], operation: "delete")
                return .deleted
            }
        }
    }

    public func count(in collection: String) throws(StoreError) -> Int {
        try run("count") { db throws(StoreError) -> Int in
            guard let row = try db.query("SELECT count(*) FROM documents WHERE collection = $1", [collection], operation: "count").first
            else { return 0 }
            return Int(try Self.int64(row, 0, "count"))
        }
    }

    /// The counts the last health check saw (at most `healthCheckInterval` old); nil while
    /// the database is unreachable.
    public func sampledCounts() -> [String: Int]? {
        lastCounts.withLock { $0 }
    }

    /// Stops the health check and closes every connection; later calls fail with `.failed`.
    public func close() {
        guard !closed.exchange(true, ordering: .acquiringAndReleasing) else { return }
        pool.close()
        healthConnection.withLock { $0 = nil }
    }

    // MARK: Internals

    /// Runs `body` on a pooled connection; a connection-level failure also marks the store
    /// unavailable until the next health check succeeds.
    private func run<T>(_ operation: String, _ body: (PostgresConnection) throws(StoreError) -> T) throws(StoreError) -> T {
        guard !closed.load(ordering: .acquiring) else { throw .failed(operation: operation, detail: "the store is closed") }
        do throws(StoreError) {
            return try pool.withConnection(operation, body)
        } catch {
            if case .unreachable = error { available.store(false, ordering: .releasing) }
            throw error
        }
    }

    /// What one health check found.
    private enum Health: Equatable {
        /// Reachable and writable, with the number of documents per collection (nil when
        /// the count query failed on a sound connection, a statement timeout under load, say).
        case writable(counts: [String: Int]?)
        /// Reachable but read-only (a standby after a failover): writes would all fail.
        case readOnly
        /// No connection could be made, or it broke.
        case unreachable
    }

    /// One health check: a query on the health connection (reopened when broken).
    private func checkHealth() {
        let parameters = pool.parameters
        let health: Health = healthConnection.withLock { connection in
            // Checked under the lock, so a close() meanwhile cannot be undone by a reconnect.
            guard !closed.load(ordering: .acquiring) else { return .unreachable }
            if connection == nil || connection?.isBroken == true {
                connection = nil
                do throws(StoreError) {
                    connection = try PostgresConnection(parameters: parameters, location: location)
                } catch {
                    return .unreachable
                }
            }
            guard let db = connection else { return .unreachable }
            do throws(StoreError) {
                let writable = try db.query(
                    "SELECT pg_is_in_recovery() OR current_setting('transaction_read_only') = 'on'", [], operation: "health check")
                if writable.first?.first == "t" { return .readOnly }
                var counts: [String: Int] = [:]
                for row in try db.query("SELECT collection, count(*) FROM documents GROUP BY collection", [], operation: "health check") {
                    counts[row[0] ?? ""] = Int(try Self.int64(row, 1, "health check"))
                }
                return .writable(counts: counts)
            } catch {
                if db.isBroken {
                    connection = nil
                    return .unreachable
                }
                return .writable(counts: nil)
            }
        }
        let wasAvailable = available.load(ordering: .acquiring)
        switch health {
        case .writable(let counts):
            lastCounts.withLock { $0 = counts }
            available.store(true, ordering: .releasing)
            pool.reachable()
            if !wasAvailable { logger.notice("store \(location) is reachable again") }
        case .readOnly, .unreachable:
            lastCounts.withLock { $0 = nil }
            available.store(false, ordering: .releasing)
            // The idle connections died with the server, or point at a read-only one (new
            // connections ask for a read-write server): drop them now.
            pool.dropIdle()
            if wasAvailable {
                let why = health == .readOnly ? "read-only (a standby?)" : "unreachable"
                logger.error("store \(location) is \(why); store routes answer 503 until it is back")
            }
        }
    }

    /// Connect failures that waiting will not cure (wrong password, no such database or
    /// role, refused by pg_hba.conf): start-up stops at once instead of retrying.
    static func isPermanent(_ error: StoreError) -> Bool {
        guard case .unreachable(_, let detail) = error else { return true }
        return ["authentication failed", "does not exist", "pg_hba.conf", "invalid"].contains { detail.contains($0) }
    }

    private static func migrate(_ db: PostgresConnection, location: String) throws(StoreError) {
        try db.transaction("migrate") { () throws(StoreError) in
            // Waiting behind another replica's migration may take longer than a request may.
            _ = try db.query("SET LOCAL lock_timeout = '60s'", [], operation: "migrate")
            _ = try db.query("SET LOCAL statement_timeout = '60s'", [], operation: "migrate")
            // A current schema needs no lock and no DDL, so a role without CREATE can start.
            let exists = try db.query("SELECT to_regclass('schema_version') IS NOT NULL", [], operation: "migrate").first?.first
            if exists == "t" {
                let current = try db.query("SELECT coalesce(max(version), 0) FROM schema_version", [], operation: "migrate").first
                    .map { row throws(StoreError) in try int64(row, 0, "migrate") } ?? 0
                if current == Int64(schemaVersion) { return }
            }
            // Held to the end of the transaction: one replica migrates, the others wait and
            // then find the schema current.
            _ = try db.query("SELECT pg_advisory_xact_lock(\(migrationLockKey))", [], operation: "migrate")
            _ = try db.query("CREATE TABLE IF NOT EXISTS schema_version (version integer NOT NULL)", [], operation: "migrate")
            let found = try db.query("SELECT coalesce(max(version), 0) FROM schema_version", [], operation: "migrate").first
                .map { row throws(StoreError) in try int64(row, 0, "migrate") } ?? 0
            if found > Int64(schemaVersion) {
                throw .unsupportedSchema(path: location, found: Int(found), supported: schemaVersion)
            }
            if found < 1 {
                _ = try db.query("CREATE SEQUENCE IF NOT EXISTS calibrator_revision AS bigint", [], operation: "migrate")
                _ = try db.query(
                    """
                    CREATE TABLE IF NOT EXISTS calibrators (
                        name text PRIMARY KEY,
                        method text NOT NULL,
                        classes integer NOT NULL,
                        created_at text NOT NULL,
                        document text NOT NULL,
                        revision bigint NOT NULL
                    )
                    """, [], operation: "migrate")
            }
            if found < 2 {
                // Every collection in one table; the calibrators move in with their revisions.
                _ = try db.query(
                    """
                    CREATE TABLE documents (
                        collection text NOT NULL,
                        name text NOT NULL,
                        kind text NOT NULL,
                        size integer NOT NULL,
                        created_at text NOT NULL,
                        body text NOT NULL,
                        revision bigint NOT NULL,
                        PRIMARY KEY (collection, name)
                    )
                    """, [], operation: "migrate")
                _ = try db.query(
                    """
                    INSERT INTO documents (collection, name, kind, size, created_at, body, revision)
                    SELECT 'calibrators', name, method, classes, created_at, document, revision FROM calibrators
                    """, [], operation: "migrate")
                _ = try db.query("DROP TABLE calibrators", [], operation: "migrate")
                _ = try db.query("ALTER SEQUENCE calibrator_revision RENAME TO document_revision", [], operation: "migrate")
            }
            // Later versions: `if found < 3 { ... }`, each step in this transaction.
            if found != Int64(schemaVersion) {
                _ = try db.query("DELETE FROM schema_version", [], operation: "migrate")
                _ = try db.query("INSERT INTO schema_version (version) VALUES ($1)", [String(schemaVersion)], operation: "migrate")
            }
        }
    }

    private static func int64(_ row: [String?], _ column: Int, _ operation: String) throws(StoreError) -> Int64 {
        guard column < row.count, let text = row[column], let value = Int64(text) else {
            throw .failed(operation: operation, detail: "column \(column) is not an integer")
        }
        return value
    }
}
