import CSQLite
import Dispatch
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// The durable store on one SQLite file, `calibrators.sqlite` in the data directory (named
/// for the first kind it kept; every collection lives in it). WAL journal with
/// `synchronous=FULL`, so a `put` has reached the disk when it returns (a document is
/// durable before its 201). One connection behind a mutex serves every worker thread;
/// other processes on the same file wait up to the busy timeout. Revisions come from a
/// counter row in the file, so they are never reused.
public final class SQLiteDocumentStore: DocumentStore {
    public static let fileName = "calibrators.sqlite"
    /// The schema this build writes; older files are migrated at open, newer ones refused.
    /// 1: `calibrators`; 2: adds `calibrators.revision` and the `revision_counter` row;
    /// 3: every collection in `documents`, keyed by (collection, name).
    public static let schemaVersion = 3
    public static let busyTimeoutMilliseconds: Int32 = 5000

    /// Where the file is (":memory:" for an in-memory store).
    public let path: String
    private let connection: Mutex<SQLiteConnection?>
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
    private func writing<T>(_ body: () throws(StoreError) -> T) throws(StoreError) -> T {
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
    public convenience init(directory: String) throws(StoreError) {
        let path = directory.hasSuffix("/") ? directory + Self.fileName : directory + "/" + Self.fileName
        try self.init(path: path)
        Self.syncDirectory(directory)
    }

    /// An in-memory store (tests and in-process use); nothing survives it.
    public static func inMemory() -> SQLiteDocumentStore {
        // Opening ":memory:" cannot meet a corrupt or unwritable file.
        do {
            return try SQLiteDocumentStore(path: ":memory:")
        } catch {
            fatalError("cannot open an in-memory SQLite database: \(error)")
        }
    }

    /// Opens the database at `path` exactly (":memory:" for an in-memory store).
    public init(path: String) throws(StoreError) {
        self.path = path
        let connection = try SQLiteConnection(path: path)
        self.connection = Mutex(connection)
        ensureBallast()
    }

    /// Inserts or replaces `document` in one transaction (`BEGIN IMMEDIATE`, so the
    /// precondition check and the write are atomic against other connections too) with the
    /// next revision of the counter.
    public func put(_ document: StoredDocument, in collection: String, preconditions: WritePreconditions) throws(StoreError) -> ConditionalPut {
        try writing { () throws(StoreError) in
            try withConnection("put") { db throws(StoreError) in
                try db.transaction("put") { () throws(StoreError) -> ConditionalPut in
                    let current = try db.revision(of: document.name, in: collection, operation: "put")
                    guard preconditions.allow(current: current) else { return .preconditionFailed(current: current) }
                    let revision = try db.nextRevision(operation: "put")
                    try db.execute(
                        """
                        INSERT OR REPLACE INTO documents (collection, name, kind, size, created_at, body, revision)
                        VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                        """,
                        [.text(collection), .text(document.name), .text(document.kind), .int(document.size), .text(document.createdAt),
                         .text(document.json), .int(Int(revision))],
                        operation: "put")
                    return .written(current == nil ? .created : .replaced, revision: revision)
                }
            }
        }
    }

    /// The document called `name` in `collection` and its revision, or nil.
    public func fetch(_ name: String, in collection: String) throws(StoreError) -> RevisedDocument? {
        try withConnection("get") { db throws(StoreError) in
            try db.query(
                "SELECT name, kind, size, created_at, body, revision FROM documents WHERE collection = ?1 AND name = ?2",
                [.text(collection), .text(name)], operation: "get"
            ) { row in
                RevisedDocument(
                    document: StoredDocument(name: row.text(0), kind: row.text(1), size: row.int(2), createdAt: row.text(3), json: row.text(4)),
                    revision: Int64(row.int(5)))
            }.first
        }
    }

    /// Every document's summary in `collection`, by name.
    public func list(in collection: String) throws(StoreError) -> [DocumentSummary] {
        try withConnection("list") { db throws(StoreError) in
            try db.query(
                "SELECT name, kind, size, created_at FROM documents WHERE collection = ?1 ORDER BY name", [.text(collection)],
                operation: "list"
            ) { row in
                DocumentSummary(name: row.text(0), kind: row.text(1), size: row.int(2), createdAt: row.text(3))
            }
        }
    }

    /// Deletes `name` when `preconditions` allow it, in one transaction. On a full disk the
    /// ballast file is given up and the delete tried once more: deleting frees space, so
    /// it must not be refused for the lack of it.
    public func delete(_ name: String, in collection: String, preconditions: WritePreconditions) throws(StoreError) -> ConditionalDelete {
        try writing { () throws(StoreError) in
            do throws(StoreError) {
                return try deleteOnce(name, collection, preconditions)
            } catch {
                guard case .full = error, let ballastPath, unlink(ballastPath) == 0 else { throw error }
                return try deleteOnce(name, collection, preconditions)
            }
        }
    }

    private func deleteOnce(_ name: String, _ collection: String, _ preconditions: WritePreconditions) throws(StoreError) -> ConditionalDelete {
        try withConnection("delete") { db throws(StoreError) in
            try db.transaction("delete") { () throws(StoreError) -> ConditionalDelete in
                guard let current = try db.revision(of: name, in: collection, operation: "delete") else { return .notFound }
                guard preconditions.allow(current: current) else { return .preconditionFailed(current: current) }
                try db.execute(
                    "DELETE FROM documents WHERE collection = ?1 AND name = ?2", [.text(collection), .text(name)], operation: "delete")
                return .deleted
            }
        }
    }

    /// Number of documents in `collection`.
    public func count(in collection: String) throws(StoreError) -> Int {
        try withConnection("count") { db throws(StoreError) in
            try db.query("SELECT count(*) FROM documents WHERE collection = ?1", [.text(collection)], operation: "count") { $0.int(0) }
                .first ?? 0
        }
    }

    /// A local file answers at once: the exact counts (nil when closed or failing).
    public func sampledCounts() -> [String: Int]? {
        try? withConnection("count") { db throws(StoreError) in
            try db.query("SELECT collection, count(*) FROM documents GROUP BY collection", [], operation: "count") {
                ($0.text(0), $0.int(1))
            }
        }.reduce(into: [:]) { $0[$1.0] = $1.1 }
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
        _ operation: String, _ body: (SQLiteConnection) throws(StoreError) -> T
    ) throws(StoreError) -> T {
        let result: Result<T, StoreError> = connection.withLock { connection in
            guard let connection else { return .failure(.failed(operation: operation, detail: "the store is closed")) }
            do throws(StoreError) {
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

