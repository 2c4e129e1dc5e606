import CLibPQ
import Dispatch
import Logging
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Settings of the PostgreSQL calibrator store.
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

/// The calibrator store on a PostgreSQL server, shared by any number of lossd replicas.
///
/// - Schema: created or migrated at start-up in one transaction that holds
///   `pg_advisory_xact_lock`, so replicas starting together migrate once; versions are
///   in `schema_version`. Tables: `calibrators` (one row per name) and the sequence
///   `calibrator_revision`, which hands out revisions (never reused).
/// - Writes: each in its own transaction; the row is locked (`SELECT ... FOR UPDATE`)
///   while `If-Match` / `If-None-Match` are checked, so a conditional write is atomic, and
///   concurrent creates of one name end with one insert and updates after it.
/// - Connections: a bounded pool (`poolSize`); a request waits `acquireTimeout` at most
///   for one. A broken connection is dropped and reopened, with a backoff (50 ms doubling
///   to 1 s) between failed connects; `connect_timeout`, `tcp_user_timeout`,
///   `statement_timeout` and `lock_timeout` bound every wait. Every failure is a
///   `CalibratorStoreError` (a 503 for clients), never a hang.
/// - Health: a timer (every `healthCheckInterval`) runs a query on its own connection and
///   keeps `isAvailable` and `sampledCount()` current, so `/readyz` and `/metrics` read
///   flags and never touch the network.
/// - No cache: every read goes to the database, so a write on one replica is visible on
///   all at once.
public final class PostgresCalibratorStore: CalibratorStorage {
    /// The schema this build writes; newer databases are refused.
    public static let schemaVersion = 1
    /// The advisory lock key that serialises schema migrations (any constant; the bytes of "lossd").
    static let migrationLockKey: Int64 = 465_726_305_124

    public var backend: String { "postgres" }
    public let location: String
    public let configuration: PostgresStoreConfiguration

    private let pool: PostgresConnectionPool
    private let available = Atomic<Bool>(true)
    private let lastCount = Atomic<Int>(-1)
    private let closed = Atomic<Bool>(false)
    private let healthConnection = Mutex<PostgresConnection?>(nil)
    private let healthQueue = DispatchQueue(label: "lossd.store.health")
    private let logger: Logger

    /// Checks the URL, connects (retrying for `startupWait` seconds while the server is
    /// unreachable), migrates the schema and starts the health check.
    /// - Throws: `.invalidLocation` for an unusable URL, `.unreachable` when no connection
    ///   succeeded in time (with libpq's last message), `.unsupportedSchema` for a newer
    ///   schema, `.failed` when the migration failed.
    public init(configuration: PostgresStoreConfiguration, logger: Logger = Logger(label: "lossd.store")) throws(CalibratorStoreError) {
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
            do throws(CalibratorStoreError) {
                connection = try PostgresConnection(parameters: parameters, location: location)
                break
            } catch {
                attempt += 1
                let pause = min(0.25 * Double(attempt), 2)
                if Self.isPermanent(error) || Monotonic.now() + pause >= deadline { throw error }
                logger.warning("calibrator store \(location) not reachable yet (\(error)); retrying")
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

    public func put(_ calibrator: StoredCalibrator, preconditions: WritePreconditions) throws(CalibratorStoreError) -> ConditionalPut {
        try run("put") { db throws(CalibratorStoreError) -> ConditionalPut in
            // A concurrent create of the same name can win between our check and insert;
            // then the insert does nothing and the next round sees (and locks) its row.
            for _ in 0..<8 {
                let outcome = try db.transaction("put") { () throws(CalibratorStoreError) -> ConditionalPut? in
                    let current = try db.query(
                        "SELECT revision FROM calibrators WHERE name = $1 FOR UPDATE", [calibrator.name], operation: "put"
                    ).first.map { row throws(CalibratorStoreError) in try Self.int64(row, 0, "put") }
                    guard preconditions.allow(current: current) else { return .preconditionFailed(current: current) }
                    let values = [calibrator.name, calibrator.method, String(calibrator.classes), calibrator.createdAt, calibrator.document]
                    if current == nil {
                        let inserted = try db.query(
                            """
                            INSERT INTO calibrators (name, method, classes, created_at, document, revision)
                            VALUES ($1, $2, $3, $4, $5, nextval('calibrator_revision'))
                            ON CONFLICT (name) DO NOTHING RETURNING revision
                            """, values, operation: "put")
                        guard let row = inserted.first else { return nil }  // lost the race: roll back, look again
                        return .written(.created, revision: try Self.int64(row, 0, "put"))
                    }
                    let updated = try db.query(
                        """
                        UPDATE calibrators SET method = $2, classes = $3, created_at = $4, document = $5,
                            revision = nextval('calibrator_revision')
                        WHERE name = $1 RETURNING revision
                        """, values, operation: "put")
                    guard let row = updated.first else { throw .failed(operation: "put", detail: "the locked row vanished") }
                    return .written(.replaced, revision: try Self.int64(row, 0, "put"))
                }
                if let outcome { return outcome }
            }
            throw .failed(operation: "put", detail: "kept losing a race with concurrent writers of the same name")
        }
    }

    public func fetch(_ name: String) throws(CalibratorStoreError) -> RevisedCalibrator? {
        try run("get") { db throws(CalibratorStoreError) -> RevisedCalibrator? in
            let rows = try db.query(
                "SELECT name, method, classes, created_at, document, revision FROM calibrators WHERE name = $1", [name],
                operation: "get")
            guard let row = rows.first else { return nil }
            return RevisedCalibrator(
                calibrator: StoredCalibrator(
                    name: row[0] ?? "", method: row[1] ?? "", classes: Int(try Self.int64(row, 2, "get")),
                    createdAt: row[3] ?? "", document: row[4] ?? ""),
                revision: try Self.int64(row, 5, "get"))
        }
    }

    public func list() throws(CalibratorStoreError) -> [CalibratorSummary] {
        try run("list") { db throws(CalibratorStoreError) -> [CalibratorSummary] in
            // COLLATE "C": byte order, as SQLite sorts, whatever the database's locale.
            let rows = try db.query(
                #"SELECT name, method, classes, created_at FROM calibrators ORDER BY name COLLATE "C""#, [], operation: "list")
            var summaries: [CalibratorSummary] = []
            summaries.reserveCapacity(rows.count)
            for row in rows {
                summaries.append(
                    CalibratorSummary(
                        name: row[0] ?? "", method: row[1] ?? "", classes: Int(try Self.int64(row, 2, "list")), createdAt: row[3] ?? ""))
            }
            return summaries
        }
    }

    public func delete(_ name: String, preconditions: WritePreconditions) throws(CalibratorStoreError) -> ConditionalDelete {
        try run("delete") { db throws(CalibratorStoreError) -> ConditionalDelete in
            try db.transaction("delete") { () throws(CalibratorStoreError) -> ConditionalDelete in
                guard let row = try db.query("SELECT revision FROM calibrators WHERE name = $1 FOR UPDATE", [name], operation: "delete").first
                else { return .notFound }
                let current = try Self.int64(row, 0, "delete")
                guard preconditions.allow(current: current) else { return .preconditionFailed(current: current) }
                _ = try db.query("DELETE FROM calibrators WHERE name = $1", [name], operation: "delete")
                return .deleted
            }
        }
    }

    public func count() throws(CalibratorStoreError) -> Int {
        try run("count") { db throws(CalibratorStoreError) -> Int in
            guard let row = try db.query("SELECT count(*) FROM calibrators", [], operation: "count").first else { return 0 }
            return Int(try Self.int64(row, 0, "count"))
        }
    }

    /// The count the last health check saw (at most `healthCheckInterval` old); nil while
    /// the database is unreachable.
    public func sampledCount() -> Int? {
        let count = lastCount.load(ordering: .acquiring)
        return count >= 0 ? count : nil
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
    private func run<T>(_ operation: String, _ body: (PostgresConnection) throws(CalibratorStoreError) -> T) throws(CalibratorStoreError) -> T {
        guard !closed.load(ordering: .acquiring) else { throw .failed(operation: operation, detail: "the store is closed") }
        do throws(CalibratorStoreError) {
            return try pool.withConnection(operation, body)
        } catch {
            if case .unreachable = error { available.store(false, ordering: .releasing) }
            throw error
        }
    }

    /// What one health check found.
    private enum Health: Equatable {
        /// Reachable and writable, with the number of calibrators (nil when the count query
        /// failed on a sound connection, a statement timeout under load, say).
        case writable(count: Int?)
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
                do throws(CalibratorStoreError) {
                    connection = try PostgresConnection(parameters: parameters, location: location)
                } catch {
                    return .unreachable
                }
            }
            guard let db = connection else { return .unreachable }
            do throws(CalibratorStoreError) {
                let sql = """
                    SELECT count(*), pg_is_in_recovery() OR current_setting('transaction_read_only') = 'on'
                    FROM calibrators
                    """
                guard let row = try db.query(sql, [], operation: "health check").first else { return .writable(count: nil) }
                if row.count > 1, row[1] == "t" { return .readOnly }
                return .writable(count: Int(try Self.int64(row, 0, "health check")))
            } catch {
                if db.isBroken {
                    connection = nil
                    return .unreachable
                }
                return .writable(count: nil)
            }
        }
        let wasAvailable = available.load(ordering: .acquiring)
        switch health {
        case .writable(let count):
            lastCount.store(count ?? -1, ordering: .releasing)
            available.store(true, ordering: .releasing)
            pool.reachable()
            if !wasAvailable { logger.notice("calibrator store \(location) is reachable again") }
        case .readOnly, .unreachable:
            lastCount.store(-1, ordering: .releasing)
            available.store(false, ordering: .releasing)
            // The idle connections died with the server, or point at a read-only one (new
            // connections ask for a read-write server): drop them now.
            pool.dropIdle()
            if wasAvailable {
                let why = health == .readOnly ? "read-only (a standby?)" : "unreachable"
                logger.error("calibrator store \(location) is \(why); store routes answer 503 until it is back")
            }
        }
    }

    /// Connect failures that waiting will not cure (wrong password, no such database or
    /// role, refused by pg_hba.conf): start-up stops at once instead of retrying.
    static func isPermanent(_ error: CalibratorStoreError) -> Bool {
        guard case .unreachable(_, let detail) = error else { return true }
        return ["authentication failed", "does not exist", "pg_hba.conf", "invalid"].contains { detail.contains($0) }
    }

    private static func migrate(_ db: PostgresConnection, location: String) throws(CalibratorStoreError) {
        try db.transaction("migrate") { () throws(CalibratorStoreError) in
            // Waiting behind another replica's migration may take longer than a request may.
            _ = try db.query("SET LOCAL lock_timeout = '60s'", [], operation: "migrate")
            _ = try db.query("SET LOCAL statement_timeout = '60s'", [], operation: "migrate")
            // A current schema needs no lock and no DDL, so a role without CREATE can start.
            let exists = try db.query("SELECT to_regclass('schema_version') IS NOT NULL", [], operation: "migrate").first?.first
            if exists == "t" {
                let current = try db.query("SELECT coalesce(max(version), 0) FROM schema_version", [], operation: "migrate").first
                    .map { row throws(CalibratorStoreError) in try int64(row, 0, "migrate") } ?? 0
                if current == Int64(schemaVersion) { return }
            }
            // Held to the end of the transaction: one replica migrates, the others wait and
            // then find the schema current.
            _ = try db.query("SELECT pg_advisory_xact_lock(\(migrationLockKey))", [], operation: "migrate")
            _ = try db.query("CREATE TABLE IF NOT EXISTS schema_version (version integer NOT NULL)", [], operation: "migrate")
            let found = try db.query("SELECT coalesce(max(version), 0) FROM schema_version", [], operation: "migrate").first
                .map { row throws(CalibratorStoreError) in try int64(row, 0, "migrate") } ?? 0
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
            // Later versions: `if found < 2 { ... }`, each step in this transaction.
            if found != Int64(schemaVersion) {
                _ = try db.query("DELETE FROM schema_version", [], operation: "migrate")
                _ = try db.query("INSERT INTO schema_version (version) VALUES ($1)", [String(schemaVersion)], operation: "migrate")
            }
        }
    }

    private static func int64(_ row: [String?], _ column: Int, _ operation: String) throws(CalibratorStoreError) -> Int64 {
        guard column < row.count, let text = row[column], let value = Int64(text) else {
            throw .failed(operation: operation, detail: "column \(column) is not an integer")
        }
        return value
    }
}

/// A bounded pool of connections: a semaphore of `size` permits, idle connections kept
/// for reuse, broken ones dropped, new ones opened on demand with a backoff after failures.
final class PostgresConnectionPool: Sendable {
    let parameters: PostgresConnection.Parameters
    private let location: String
    private let permits: DispatchSemaphore
    private let idle = Mutex<[PostgresConnection]>([])
    private let backoff = Mutex<Backoff>(Backoff())
    private let closed = Atomic<Bool>(false)

    struct Backoff {
        var failures = 0
        var nextAttempt: Double = 0
    }

    init(size: Int, parameters: PostgresConnection.Parameters, location: String) {
        self.parameters = parameters
        self.location = location
        permits = DispatchSemaphore(value: size)
    }

    /// Runs `body` with a connection of its own. A request whose first statement fails
    /// because a reused connection had died (the server restarted since) runs once more
    /// on a fresh connection: nothing of it reached the database.
    func withConnection<T>(
        _ operation: String, _ body: (PostgresConnection) throws(CalibratorStoreError) -> T
    ) throws(CalibratorStoreError) -> T {
        guard permits.wait(timeout: .now() + parameters.acquireTimeout) == .success else {
            throw .failed(operation: operation, detail: "no database connection was free within \(parameters.acquireTimeout) s")
        }
        defer { permits.signal() }
        var retried = false
        while true {
            let reused = idle.withLock { $0.popLast() }
            let connection: PostgresConnection
            if let reused, !reused.isBroken {
                connection = reused
            } else {
                connection = try open(operation)
            }
            connection.statementsSucceeded = 0
            do throws(CalibratorStoreError) {
                let value = try body(connection)
                release(connection)
                return value
            } catch {
                let broken = connection.isBroken
                release(connection)
                if broken && reused != nil && connection === reused && connection.statementsSucceeded == 0 && !retried {
                    // The other idle connections most likely died with it.
                    dropIdle()
                    retried = true
                    continue
                }
                throw broken ? .unreachable(location: location, detail: Self.detail(of: error)) : error
            }
        }
    }

    /// Back to the idle list, unless broken, inside a transaction, or the pool is closed.
    private func release(_ connection: PostgresConnection) {
        guard !connection.isBroken, !connection.inTransaction, !closed.load(ordering: .acquiring) else { return }
        idle.withLock { $0.append(connection) }
    }

    /// A new connection, unless a recent connect failed and the backoff has not passed.
    private func open(_ operation: String) throws(CalibratorStoreError) -> PostgresConnection {
        let now = Monotonic.now()
        let wait = backoff.withLock { $0.nextAttempt - now }
        if wait > 0 {
            throw .unreachable(location: location, detail: "the last connection attempt failed; next attempt in \(Int(wait * 1000)) ms")
        }
        do throws(CalibratorStoreError) {
            let connection = try PostgresConnection(parameters: parameters, location: location)
            reachable()
            return connection
        } catch {
            backoff.withLock { state in
                state.failures += 1
                state.nextAttempt = Monotonic.now() + min(0.05 * Double(1 << min(state.failures - 1, 5)), 1)
            }
            throw error
        }
    }

    /// The database answered (a connect or the health check): connect at once next time.
    func reachable() {
        backoff.withLock { $0 = Backoff() }
    }

    /// Closes the idle connections (after the health check found the database gone).
    func dropIdle() {
        let dropped = idle.withLock { connections in
            defer { connections.removeAll() }
            return connections
        }
        withExtendedLifetime(dropped) {}
    }

    func close() {
        closed.store(true, ordering: .releasing)
        dropIdle()
    }

    private static func detail(of error: CalibratorStoreError) -> String {
        switch error {
        case let .failed(_, detail), let .unreachable(_, detail): detail
        default: "\(error)"
        }
    }
}

/// One libpq connection. `@unchecked Sendable` because libpq connections must not be used
/// by two threads at once, and none is: the pool hands a connection to one borrower at a
/// time (idle ones sit in a Mutex-guarded list), and the health connection lives in a Mutex.
final class PostgresConnection: @unchecked Sendable {
    let handle: OpaquePointer
    /// Statements that succeeded since the pool handed the connection out.
    var statementsSucceeded = 0

    /// How to connect: lossd's defaults, then the URL (whose parameters win).
    struct Parameters: Sendable {
        let url: String
        let connectTimeoutSeconds: Int
        let statementTimeoutMilliseconds: Int
        let acquireTimeout: Double

        init(configuration: PostgresStoreConfiguration) {
            url = configuration.url
            connectTimeoutSeconds = max(2, configuration.connectTimeoutSeconds)
            statementTimeoutMilliseconds = max(1, configuration.statementTimeoutMilliseconds)
            acquireTimeout = max(0.01, configuration.acquireTimeout)
        }
    }

    init(parameters: Parameters, location: String) throws(CalibratorStoreError) {
        // Later entries override earlier ones; `dbname` (expanded from the URL) comes last
        // so that the URL's own settings win over these defaults.
        let pairs: [(String, String)] = [
            ("connect_timeout", String(parameters.connectTimeoutSeconds)),
            // A peer that stops acknowledging (network partition) breaks the connection
            // instead of leaving a request waiting on TCP retransmissions.
            ("tcp_user_timeout", String(parameters.connectTimeoutSeconds * 1000 + parameters.statementTimeoutMilliseconds)),
            ("keepalives_idle", "10"),
            ("keepalives_interval", "5"),
            ("keepalives_count", "3"),
            ("application_name", "lossd"),
            // After a failover, connect to the new primary rather than a read-only standby.
            ("target_session_attrs", "read-write"),
            ("dbname", parameters.url),
        ]
        let keywords = pairs.map { strdup($0.0) }
        let values = pairs.map { strdup($0.1) }
        defer {
            keywords.forEach { free($0) }
            values.forEach { free($0) }
        }
        let keywordPointers: [UnsafePointer<CChar>?] = keywords.map { $0.map { UnsafePointer($0) } } + [nil]
        let valuePointers: [UnsafePointer<CChar>?] = values.map { $0.map { UnsafePointer($0) } } + [nil]
        guard let connection = PQconnectdbParams(keywordPointers, valuePointers, 1) else {
            throw .unreachable(location: location, detail: "libpq could not allocate a connection")
        }
        guard PQstatus(connection) == CONNECTION_OK else {
            let detail = PostgresURL.scrubbed(Self.message(PQerrorMessage(connection)), url: parameters.url)
            PQfinish(connection)
            throw .unreachable(location: location, detail: detail)
        }
        handle = connection
        let setup = """
            SET statement_timeout = \(parameters.statementTimeoutMilliseconds);
            SET lock_timeout = \(parameters.statementTimeoutMilliseconds);
            SET idle_in_transaction_session_timeout = \(parameters.statementTimeoutMilliseconds * 4);
            SET client_min_messages = warning
            """
        let result = PQexec(connection, setup)
        defer { PQclear(result) }
        guard let result, PQresultStatus(result) == PGRES_COMMAND_OK else {
            throw .unreachable(location: location, detail: "session setup failed: " + Self.message(PQerrorMessage(connection)))
        }
    }

    deinit { PQfinish(handle) }

    var isBroken: Bool { PQstatus(handle) != CONNECTION_OK }
    var inTransaction: Bool { PQtransactionStatus(handle) != PQTRANS_IDLE }

    /// Runs `sql` with text parameters `$1...` (never interpolated into the SQL) and
    /// returns every row as text (nil for NULL).
    func query(_ sql: String, _ parameters: [String?], operation: String) throws(CalibratorStoreError) -> [[String?]] {
        let copies = parameters.map { $0.flatMap { strdup($0) } }
        defer { copies.forEach { free($0) } }
        let pointers: [UnsafePointer<CChar>?] = copies.map { $0.map { UnsafePointer($0) } }
        let result = pointers.withUnsafeBufferPointer { buffer in
            PQexecParams(handle, sql, Int32(buffer.count), nil, buffer.baseAddress, nil, nil, 0)
        }
        guard let result else { throw .failed(operation: operation, detail: Self.message(PQerrorMessage(handle))) }
        defer { PQclear(result) }
        let status = PQresultStatus(result)
        guard status == PGRES_TUPLES_OK || status == PGRES_COMMAND_OK else {
            var detail = Self.message(PQresultErrorMessage(result))
            let state = PQresultErrorField(result, Int32(UInt8(ascii: "C"))).map { String(cString: $0) }
            if let state { detail = "SQLSTATE \(state): " + detail }
            // 53100 disk_full (and 53400 configuration_limit_exceeded, a quota): writes cannot succeed.
            if state == "53100" || state == "53400" { throw .full(operation: operation, detail: detail) }
            throw .failed(operation: operation, detail: detail)
        }
        statementsSucceeded += 1
        let rowCount = PQntuples(result), columnCount = PQnfields(result)
        var rows: [[String?]] = []
        rows.reserveCapacity(Int(rowCount))
        for r in 0..<rowCount {
            var row: [String?] = []
            row.reserveCapacity(Int(columnCount))
            for c in 0..<columnCount {
                row.append(PQgetisnull(result, r, c) == 1 ? nil : String(cString: PQgetvalue(result, r, c)))
            }
            rows.append(row)
        }
        return rows
    }

    /// `BEGIN`, `body`, `COMMIT`; `ROLLBACK` when `body` throws.
    func transaction<T>(_ operation: String, _ body: () throws(CalibratorStoreError) -> T) throws(CalibratorStoreError) -> T {
        _ = try query("BEGIN", [], operation: operation)
        do throws(CalibratorStoreError) {
            let value = try body()
            _ = try query("COMMIT", [], operation: operation)
            return value
        } catch {
            if !isBroken { PQclear(PQexec(handle, "ROLLBACK")) }
            throw error
        }
    }

    private static func message(_ text: UnsafePointer<CChar>?) -> String {
        guard let text else { return "unknown error" }
        let message = String(cString: text).split(whereSeparator: \.isNewline).map { $0.trimmingCharacters() }.joined(separator: " ")
        return message.isEmpty ? "unknown error" : message
    }
}

/// The PostgreSQL URL: checks and a printable form without the password.
public enum PostgresURL {
    /// Whether `value` selects the PostgreSQL store (`postgres://` or `postgresql://`).
    public static func isPostgres(_ value: String) -> Bool {
        value.hasPrefix("postgres://") || value.hasPrefix("postgresql://")
    }

    /// Throws `.invalidLocation` (with libpq's reason, without the URL) unless libpq
    /// accepts `url` as a connection URI.
    public static func validate(_ url: String) throws(CalibratorStoreError) {
        guard isPostgres(url) else {
            throw .invalidLocation(detail: "the PostgreSQL store needs a postgres:// or postgresql:// URL")
        }
        var error: UnsafeMutablePointer<CChar>?
        guard let options = PQconninfoParse(url, &error) else {
            let detail = error.map { String(cString: $0) }?.split(whereSeparator: \.isNewline).joined(separator: " ") ?? "unparsable"
            if let error { PQfreemem(error) }
            // libpq quotes the whole URI in some messages: never pass its password on.
            throw .invalidLocation(detail: "invalid PostgreSQL URL \(redacted(url)): \(scrubbed(detail, url: url))")
        }
        PQconninfoFree(options)
    }

    /// `text` (a libpq message) with `url` and its password, raw or percent-decoded,
    /// replaced: libpq quotes the URI in some messages.
    public static func scrubbed(_ text: String, url: String) -> String {
        var result = text.replacing(url, with: redacted(url))
        for secret in passwords(in: url) where !secret.isEmpty {
            result = result.replacing(secret, with: "***")
            if let decoded = percentDecoded(secret), decoded != secret, !decoded.isEmpty { result = result.replacing(decoded, with: "***") }
        }
        return result
    }

    /// The password texts of `url` as written: the user information's and any `password=`.
    static func passwords(in url: String) -> [String] {
        guard let schemeEnd = url.firstRange(of: "://") else { return [] }
        var rest = Substring(url[schemeEnd.upperBound...])
        var found: [String] = []
        if let q = rest.firstIndex(of: "?") {
            for part in rest[rest.index(after: q)...].split(separator: "&") {
                let pair = part.split(separator: "=", maxSplits: 1)
                if pair.count == 2, pair[0].lowercased() == "password" { found.append(String(pair[1])) }
            }
            rest = rest[..<q]
        }
        if let at = rest.lastIndex(of: "@"), let colon = rest[..<at].firstIndex(of: ":") {
            found.append(String(rest[rest.index(after: colon)..<at]))
        }
        return found
    }

    private static func percentDecoded(_ text: String) -> String? {
        var bytes: [UInt8] = []
        var iterator = Array(text.utf8).makeIterator()
        while let byte = iterator.next() {
            if byte == UInt8(ascii: "%") {
                guard let high = iterator.next(), let low = iterator.next(),
                    let value = UInt8(String(decoding: [high, low], as: UTF8.self), radix: 16)
                else { return nil }
                bytes.append(value)
            } else {
                bytes.append(byte)
            }
        }
        return String(validating: bytes, as: UTF8.self)
    }

    /// `url` with the password (in the user information or a `password=` query
    /// parameter) replaced by `***`, for logs and the start-up summary.
    public static func redacted(_ url: String) -> String {
        guard let schemeEnd = url.firstRange(of: "://") else { return url }
        let scheme = url[..<schemeEnd.upperBound]
        var rest = Substring(url[schemeEnd.upperBound...])
        var query: Substring?
        if let q = rest.firstIndex(of: "?") {
            query = rest[rest.index(after: q)...]
            rest = rest[..<q]
        }
        var result = String(scheme)
        if let at = rest.lastIndex(of: "@") {
            let userInfo = rest[..<at]
            if let colon = userInfo.firstIndex(of: ":") {
                result += userInfo[..<colon] + ":***"
            } else {
                result += userInfo
            }
            result += rest[at...]
        } else {
            result += rest
        }
        if let query {
            let parts = query.split(separator: "&", omittingEmptySubsequences: false).map { part -> String in
                let key = part.split(separator: "=", maxSplits: 1).first.map(String.init) ?? ""
                return key.lowercased() == "password" ? "\(key)=***" : String(part)
            }
            result += "?" + parts.joined(separator: "&")
        }
        return result
    }
}

/// Seconds on the monotonic clock.
enum Monotonic {
    static func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }
}

extension StringProtocol {
    fileprivate func trimmingCharacters() -> String {
        var s = Substring(self)
        while let f = s.first, f == " " || f == "\t" { s.removeFirst() }
        while let l = s.last, l == " " || l == "\t" { s.removeLast() }
        return String(s)
    }
}
