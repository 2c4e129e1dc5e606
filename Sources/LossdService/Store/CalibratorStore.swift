import CSQLite
import Dispatch
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Why the calibrator store cannot be used. Thrown at open (corrupt or unwritable file, a
/// schema from a newer lossd, an unreachable database) and by operations (I/O errors, a
/// full disk, a lost database connection); never swallowed.
public enum CalibratorStoreError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The file is not a database, or `PRAGMA integrity_check` found damage.
    case corrupt(path: String, detail: String)
    /// The file or its directory cannot be created or written.
    case unwritable(path: String, detail: String)
    /// The schema was written by a newer lossd than this one understands.
    case unsupportedSchema(path: String, found: Int, supported: Int)
    /// An operation failed (the database's message; no paths, no passwords).
    case failed(operation: String, detail: String)
    /// The database server could not be reached (PostgreSQL; `location` has no password).
    case unreachable(location: String, detail: String)
    /// The store setting cannot be used (an unparsable database URL).
    case invalidLocation(detail: String)
    /// The disk (or the database's quota) is full: writes fail until space is freed.
    case full(operation: String, detail: String)

    public var description: String {
        switch self {
        case let .corrupt(path, detail):
            "calibrator store \(path) is corrupt (\(detail)); restore it from a backup or move it aside"
        case let .unwritable(path, detail):
            "calibrator store \(path) cannot be opened for writing (\(detail))"
        case let .unsupportedSchema(path, found, supported):
            "calibrator store \(path) has schema version \(found); this lossd supports up to \(supported)"
        case let .failed(operation, detail):
            "calibrator store: \(operation) failed (\(detail))"
        case let .unreachable(location, detail):
            "calibrator store \(location) is unreachable (\(detail))"
        case let .invalidLocation(detail):
            "calibrator store: \(detail)"
        case let .full(operation, detail):
            "calibrator store: \(operation) failed: the disk is full (\(detail))"
        }
    }
}

/// One line of `GET /v1/calibrators`.
public struct CalibratorSummary: Sendable, Equatable {
    public let name: String
    public let method: String
    public let classes: Int
    public let createdAt: String
}

/// A stored calibrator: its summary columns and the calibrator's JSON object text.
public struct StoredCalibrator: Sendable, Equatable {
    public let name: String
    public let method: String
    public let classes: Int
    public let createdAt: String
    /// The calibrator's JSON object (`method`, `params`, `classes`, `fitted_on`, `created_at`).
    public let document: String

    public init(name: String, method: String, classes: Int, createdAt: String, document: String) {
        self.name = name
        self.method = method
        self.classes = classes
        self.createdAt = createdAt
        self.document = document
    }
}

/// The durable calibrator store: one SQLite file, `calibrators.sqlite`, in the data
/// directory. WAL journal with `synchronous=FULL`, so a `put` has reached the disk when it
/// returns (a calibrator is durable before its 201). One connection behind a mutex serves
/// every worker thread; other processes on the same file wait up to the busy timeout.
/// Revisions come from a counter row in the file, so they are never reused.
public final class CalibratorStore: CalibratorStorage {
    public static let fileName = "calibrators.sqlite"
    /// The schema this build writes; older files are migrated at open, newer ones refused.
    /// 1: `calibrators`; 2: adds `calibrators.revision` and the `revision_counter` row.
    public static let schemaVersion = 2
    public static let busyTimeoutMilliseconds: Int32 = 5000

    /// Kept for callers of the first store API; the same as `CalibratorPutOutcome`.
    public typealias PutOutcome = CalibratorPutOutcome

    /// Where the file is (":memory:" for an in-memory store).
    public let path: String
    private let connection: Mutex<Connection?>
    /// Cleared by `close()`; read by `isAvailable` without waiting for the connection.
    private let isOpen = Atomic<Bool>(true)

    public var backend: String { "sqlite" }
    public var location: String { path }
    public var isAvailable: Bool { isOpen.load(ordering: .acquiring) }

    /// Whether writes fail for want of disk space. Set by a write that failed so, cleared
    /// by one that succeeds, and rechecked against the file system's free space at most
    /// once a second (space freed by someone else makes the store ready again).
    public var isFull: Bool {
        guard full.load(ordering: .relaxed) else { return false }
        let now = DispatchTime.now().uptimeNanoseconds
        let last = lastSpaceCheck.load(ordering: .relaxed)
        guard now &- last > 1_000_000_000,
            lastSpaceCheck.compareExchange(expected: last, desired: now, ordering: .relaxed).exchanged
        else { return true }
        if let free = Self.freeBytes(near: path), free >= 2 * Self.ballastBytes {
            full.store(false, ordering: .relaxed)
            return false
        }
        return true
    }

    private let full = Atomic<Bool>(false)
    private let lastSpaceCheck = Atomic<UInt64>(0)

    /// A small file kept beside the database and given up when a delete meets a full
    /// disk, so that deleting (which frees space) still works then. Nil in memory.
    private var ballastPath: String? { path == ":memory:" ? nil : path + ".reserve" }
    static let ballastBytes = 1 << 20

    /// Creates the ballast file if it is missing and the space is there (best effort).
    private func ensureBallast() {
        guard let ballastPath, access(ballastPath, F_OK) != 0 else { return }
        let fd = open(ballastPath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { return }
        let rc = posix_fallocate(fd, 0, off_t(Self.ballastBytes))
        _ = Glibc.close(fd)
        if rc != 0 { unlink(ballastPath) }
    }

    /// Free bytes on the file system holding `path`, for an unprivileged user.
    static func freeBytes(near path: String) -> Int? {
        let directory = path.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/")
        var info = statvfs()
        guard statvfs(directory.isEmpty ? "." : directory, &info) == 0 else { return nil }
        return Int(info.f_bavail) * Int(info.f_frsize)
    }

    /// Runs a write, keeping the full flag current.
    private func writing<T>(_ body: () throws(CalibratorStoreError) -> T) throws(CalibratorStoreError) -> T {
        do {
            let value = try body()
            if full.load(ordering: .relaxed) { full.store(false, ordering: .relaxed) }
            ensureBallast()
            return value
        } catch {
            if case .full = error { full.store(true, ordering: .relaxed) }
            throw error
        }
    }

    /// Opens (creating if needed) `directory/calibrators.sqlite`, migrates its schema and
    /// checks its integrity.
    public convenience init(directory: String) throws(CalibratorStoreError) {
        let path = directory.hasSuffix("/") ? directory + Self.fileName : directory + "/" + Self.fileName
        try self.init(path: path)
        Self.syncDirectory(directory)
    }

    /// An in-memory store (tests and in-process use); nothing survives it.
    public static func inMemory() -> CalibratorStore {
        // Opening ":memory:" cannot meet a corrupt or unwritable file.
        do {
            return try CalibratorStore(path: ":memory:")
        } catch {
            fatalError("cannot open an in-memory SQLite database: \(error)")
        }
    }

    /// Opens the database at `path` exactly (":memory:" for an in-memory store).
    public init(path: String) throws(CalibratorStoreError) {
        self.path = path
        let connection = try Connection(path: path)
        self.connection = Mutex(connection)
        ensureBallast()
    }

    /// Inserts or replaces `calibrator` in one transaction (`BEGIN IMMEDIATE`, so the
    /// precondition check and the write are atomic against other connections too) with the
    /// next revision of the counter.
    public func put(_ calibrator: StoredCalibrator, preconditions: WritePreconditions) throws(CalibratorStoreError) -> ConditionalPut {
        try writing { () throws(CalibratorStoreError) in try put(calibrator, preconditions, connectionFor: "put") }
    }

    private func put(
        _ calibrator: StoredCalibrator, _ preconditions: WritePreconditions, connectionFor operation: String
    ) throws(CalibratorStoreError) -> ConditionalPut {
        try withConnection(operation) { db throws(CalibratorStoreError) in
            try db.transaction("put") { () throws(CalibratorStoreError) -> ConditionalPut in
                let current = try db.revision(of: calibrator.name, operation: "put")
                guard preconditions.allow(current: current) else { return .preconditionFailed(current: current) }
                let revision = try db.nextRevision(operation: "put")
                try db.execute(
                    """
                    INSERT OR REPLACE INTO calibrators (name, method, classes, created_at, document, revision)
                    VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                    """,
                    [.text(calibrator.name), .text(calibrator.method), .int(calibrator.classes), .text(calibrator.createdAt),
                     .text(calibrator.document), .int(Int(revision))],
                    operation: "put")
                return .written(current == nil ? .created : .replaced, revision: revision)
            }
        }
    }

    /// The calibrator called `name` and its revision, or nil.
    public func fetch(_ name: String) throws(CalibratorStoreError) -> RevisedCalibrator? {
        try withConnection("get") { db throws(CalibratorStoreError) in
            try db.query(
                "SELECT name, method, classes, created_at, document, revision FROM calibrators WHERE name = ?1", [.text(name)],
                operation: "get"
            ) { row in
                RevisedCalibrator(
                    calibrator: StoredCalibrator(
                        name: row.text(0), method: row.text(1), classes: row.int(2), createdAt: row.text(3), document: row.text(4)),
                    revision: Int64(row.int(5)))
            }.first
        }
    }

    /// Every calibrator's summary, by name.
    public func list() throws(CalibratorStoreError) -> [CalibratorSummary] {
        try withConnection("list") { db throws(CalibratorStoreError) in
            try db.query("SELECT name, method, classes, created_at FROM calibrators ORDER BY name", [], operation: "list") { row in
                CalibratorSummary(name: row.text(0), method: row.text(1), classes: row.int(2), createdAt: row.text(3))
            }
        }
    }

    /// Deletes `name` when `preconditions` allow it, in one transaction. On a full disk the
    /// ballast file is given up and the delete tried once more: deleting frees space, so
    /// it must not be refused for the lack of it.
    public func delete(_ name: String, preconditions: WritePreconditions) throws(CalibratorStoreError) -> ConditionalDelete {
        try writing { () throws(CalibratorStoreError) in
            do throws(CalibratorStoreError) {
                return try deleteOnce(name, preconditions)
            } catch {
                guard case .full = error, let ballastPath, unlink(ballastPath) == 0 else { throw error }
                return try deleteOnce(name, preconditions)
            }
        }
    }

    private func deleteOnce(_ name: String, _ preconditions: WritePreconditions) throws(CalibratorStoreError) -> ConditionalDelete {
        try withConnection("delete") { db throws(CalibratorStoreError) in
            try db.transaction("delete") { () throws(CalibratorStoreError) -> ConditionalDelete in
                guard let current = try db.revision(of: name, operation: "delete") else { return .notFound }
                guard preconditions.allow(current: current) else { return .preconditionFailed(current: current) }
                try db.execute("DELETE FROM calibrators WHERE name = ?1", [.text(name)], operation: "delete")
                return .deleted
            }
        }
    }

    /// Number of stored calibrators.
    public func count() throws(CalibratorStoreError) -> Int {
        try withConnection("count") { db throws(CalibratorStoreError) in
            try db.query("SELECT count(*) FROM calibrators", [], operation: "count") { $0.int(0) }.first ?? 0
        }
    }

    /// A local file answers at once: the exact count (nil when closed or failing).
    public func sampledCount() -> Int? {
        try? count()
    }

    /// Checkpoints the WAL and closes the file; later calls fail with `.failed`.
    public func close() {
        isOpen.store(false, ordering: .releasing)
        connection.withLock { connection in
            connection?.close()
            connection = nil
        }
    }

    private func withConnection<T>(
        _ operation: String, _ body: (Connection) throws(CalibratorStoreError) -> T
    ) throws(CalibratorStoreError) -> T {
        let result: Result<T, CalibratorStoreError> = connection.withLock { connection in
            guard let connection else { return .failure(.failed(operation: operation, detail: "the store is closed")) }
            do throws(CalibratorStoreError) {
                return .success(try body(connection))
            } catch {
                return .failure(error)
            }
        }
        return try result.get()
    }

    /// Makes a newly created file's directory entry durable.
    private static func syncDirectory(_ directory: String) {
        let fd = open(directory, O_RDONLY | O_DIRECTORY)
        guard fd >= 0 else { return }
        _ = fsync(fd)
        _ = Glibc.close(fd)
    }
}

/// A value bound to a statement parameter.
enum SQLValue {
    case text(String)
    case int(Int)
}

/// One SQLite connection, opened without SQLite's own mutex: `@unchecked Sendable` because
/// the store touches it only while holding its `Mutex`.
final class Connection: @unchecked Sendable {
    let handle: OpaquePointer
    private let path: String
    private static let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)

    init(path: String) throws(CalibratorStoreError) {
        self.path = path
        var db: OpaquePointer?
        let flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX
        let rc = sqlite3_open_v2(path, &db, flags, nil)
        guard rc == SQLITE_OK, let db else {
            let detail = db.map { String(cString: sqlite3_errmsg($0)) } ?? String(cString: sqlite3_errstr(rc))
            if let db { sqlite3_close_v2(db) }
            throw Self.openError(rc, path: path, detail: detail)
        }
        handle = db
        do throws(CalibratorStoreError) {
            try configure()
        } catch {
            sqlite3_close_v2(db)
            throw error
        }
    }

    /// Pragmas, integrity check, schema migration.
    private func configure() throws(CalibratorStoreError) {
        sqlite3_extended_result_codes(handle, 1)
        sqlite3_busy_timeout(handle, CalibratorStore.busyTimeoutMilliseconds)
        // The first read of the file: a non-database shows up here as SQLITE_NOTADB.
        let check = try openQuery("PRAGMA integrity_check") { $0.text(0) }
        guard check == ["ok"] else {
            throw .corrupt(path: path, detail: "integrity_check: " + check.prefix(3).joined(separator: "; "))
        }
        if sqlite3_db_readonly(handle, "main") == 1 {
            throw .unwritable(path: path, detail: "the file is read-only")
        }
        let inMemory = path == ":memory:"
        let mode = try openQuery("PRAGMA journal_mode=WAL") { $0.text(0) }.first ?? ""
        guard mode == "wal" || inMemory else {
            throw .unwritable(path: path, detail: "cannot switch to WAL journal mode (got \(mode))")
        }
        try openExecute("PRAGMA synchronous=FULL")
        try openExecute("PRAGMA foreign_keys=ON")
        try migrate()
    }

    /// Creates or upgrades the schema, one step per version, all in one transaction.
    /// Version 1: `calibrators(name, method, classes, created_at, document)`, one row per
    /// name. Version 2: `calibrators.revision` and `revision_counter(id = 1, last)`; the
    /// rows of a version-1 file get revisions 1...n (by name) and the counter n.
    private func migrate() throws(CalibratorStoreError) {
        try openExecute("BEGIN IMMEDIATE")
        do throws(CalibratorStoreError) {
            try openExecute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            let found = try openQuery("SELECT max(version) FROM schema_version") { $0.isNull(0) ? 0 : $0.int(0) }.first ?? 0
            if found > CalibratorStore.schemaVersion {
                throw CalibratorStoreError.unsupportedSchema(path: path, found: found, supported: CalibratorStore.schemaVersion)
            }
            if found < 1 {
                try openExecute(
                    """
                    CREATE TABLE IF NOT EXISTS calibrators (
                        name TEXT PRIMARY KEY NOT NULL,
                        method TEXT NOT NULL,
                        classes INTEGER NOT NULL,
                        created_at TEXT NOT NULL,
                        document TEXT NOT NULL
                    ) WITHOUT ROWID
                    """)
            }
            if found < 2 {
                try openExecute("ALTER TABLE calibrators ADD COLUMN revision INTEGER NOT NULL DEFAULT 0")
                try openExecute(
                    "CREATE TABLE IF NOT EXISTS revision_counter (id INTEGER PRIMARY KEY CHECK (id = 1), last INTEGER NOT NULL)")
                try openExecute("UPDATE calibrators SET revision = (SELECT count(*) FROM calibrators AS c WHERE c.name <= calibrators.name)")
                try openExecute("INSERT OR REPLACE INTO revision_counter (id, last) VALUES (1, (SELECT count(*) FROM calibrators))")
            }
            // Later versions: `if found < 3 { ... }`, each step in this transaction.
            if found != CalibratorStore.schemaVersion {
                try openExecute("DELETE FROM schema_version")
                try openExecute("INSERT INTO schema_version (version) VALUES (\(CalibratorStore.schemaVersion))")
            }
            try openExecute("COMMIT")
        } catch {
            _ = sqlite3_exec(handle, "ROLLBACK", nil, nil, nil)
            throw error
        }
    }

    // At open, failures are classified (corrupt / unwritable) with the path.
    private func openExecute(_ sql: String) throws(CalibratorStoreError) {
        do throws(CalibratorStoreError) {
            try execute(sql, [], operation: "open")
        } catch {
            throw classify(error)
        }
    }

    private func openQuery<T>(_ sql: String, _ read: (Row) -> T) throws(CalibratorStoreError) -> [T] {
        do throws(CalibratorStoreError) {
            return try query(sql, [], operation: "open", read)
        } catch {
            throw classify(error)
        }
    }

    private var lastCode: Int32 = SQLITE_OK

    private func classify(_ error: CalibratorStoreError) -> CalibratorStoreError {
        guard case .failed(_, let detail) = error else { return error }
        return Self.openError(lastCode, path: path, detail: detail)
    }

    private static func openError(_ rc: Int32, path: String, detail: String) -> CalibratorStoreError {
        switch rc & 0xFF {
        case SQLITE_NOTADB, SQLITE_CORRUPT: .corrupt(path: path, detail: detail)
        default: .unwritable(path: path, detail: detail)
        }
    }

    func transaction<T>(_ operation: String, _ body: () throws(CalibratorStoreError) -> T) throws(CalibratorStoreError) -> T {
        // IMMEDIATE takes the write lock up front, so the read-then-write inside is atomic
        // against other connections too (they wait on the busy timeout).
        try execute("BEGIN IMMEDIATE", [], operation: operation)
        do throws(CalibratorStoreError) {
            let value = try body()
            try execute("COMMIT", [], operation: operation)
            return value
        } catch {
            _ = sqlite3_exec(handle, "ROLLBACK", nil, nil, nil)
            throw error
        }
    }

    /// The stored revision of `name`, or nil when there is none (inside a transaction).
    func revision(of name: String, operation: String) throws(CalibratorStoreError) -> Int64? {
        try query("SELECT revision FROM calibrators WHERE name = ?1", [.text(name)], operation: operation) { Int64($0.int(0)) }.first
    }

    /// Takes the next revision from the counter (inside the write's transaction, so a
    /// rolled-back write may skip a number but none is ever handed out twice).
    func nextRevision(operation: String) throws(CalibratorStoreError) -> Int64 {
        try execute("UPDATE revision_counter SET last = last + 1 WHERE id = 1", [], operation: operation)
        guard let next = try query("SELECT last FROM revision_counter WHERE id = 1", [], operation: operation, { Int64($0.int(0)) }).first
        else { throw .failed(operation: operation, detail: "the revision counter is missing") }
        return next
    }

    func execute(_ sql: String, _ bindings: [SQLValue], operation: String) throws(CalibratorStoreError) {
        _ = try query(sql, bindings, operation: operation) { _ in () }
    }

    func query<T>(_ sql: String, _ bindings: [SQLValue], operation: String, _ read: (Row) -> T) throws(CalibratorStoreError) -> [T] {
        var statement: OpaquePointer?
        var rc = sqlite3_prepare_v2(handle, sql, -1, &statement, nil)
        guard rc == SQLITE_OK, let statement else { throw failure(rc, operation) }
        defer { sqlite3_finalize(statement) }
        for (i, value) in bindings.enumerated() {
            let index = Int32(i + 1)
            switch value {
            case .text(let text): rc = sqlite3_bind_text(statement, index, text, -1, Self.transient)
            case .int(let number): rc = sqlite3_bind_int64(statement, index, sqlite3_int64(number))
            }
            guard rc == SQLITE_OK else { throw failure(rc, operation) }
        }
        var rows: [T] = []
        while true {
            rc = sqlite3_step(statement)
            if rc == SQLITE_ROW {
                rows.append(read(Row(statement: statement)))
            } else if rc == SQLITE_DONE {
                return rows
            } else {
                throw failure(rc, operation)
            }
        }
    }

    private func failure(_ rc: Int32, _ operation: String) -> CalibratorStoreError {
        lastCode = rc
        let detail = "\(String(cString: sqlite3_errstr(rc))): \(String(cString: sqlite3_errmsg(handle)))"
        // SQLite reports ENOSPC from a write as SQLITE_FULL.
        if rc & 0xFF == SQLITE_FULL { return .full(operation: operation, detail: detail) }
        return .failed(operation: operation, detail: detail)
    }

    func close() {
        sqlite3_close_v2(handle)
    }

    struct Row {
        let statement: OpaquePointer

        func text(_ column: Int32) -> String {
            guard let bytes = sqlite3_column_text(statement, column) else { return "" }
            return String(cString: bytes)
        }

        func int(_ column: Int32) -> Int { Int(sqlite3_column_int64(statement, column)) }

        func isNull(_ column: Int32) -> Bool { sqlite3_column_type(statement, column) == SQLITE_NULL }
    }
}
