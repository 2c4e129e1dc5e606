import CSQLite

#if canImport(Glibc)
    import Glibc
#endif

/// A value bound to a statement parameter.
enum SQLValue {
    case text(String)
    case int(Int)
}

/// One SQLite connection, opened without SQLite's own mutex: `@unchecked Sendable` because
/// the store touches it only while holding its `Mutex`.
final class SQLiteConnection: @unchecked Sendable {
    let handle: OpaquePointer
    private let path: String
    private static let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)

    init(path: String) throws(StoreError) {
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
        do throws(StoreError) {
            try configure()
        } catch {
            sqlite3_close_v2(db)
            throw error
        }
    }

    /// Pragmas, integrity check, schema migration.
    private func configure() throws(StoreError) {
        sqlite3_extended_result_codes(handle, 1)
        sqlite3_busy_timeout(handle, SQLiteDocumentStore.busyTimeoutMilliseconds)
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
    /// Version 3: `documents(collection, name, kind, size, created_at, body, revision)`
    /// holds every collection; the calibrators move into it (collection `calibrators`,
    /// revisions kept) and their table is dropped.
    private func migrate() throws(StoreError) {
        try openExecute("BEGIN IMMEDIATE")
        do throws(StoreError) {
            try openExecute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            let found = try openQuery("SELECT max(version) FROM schema_version") { $0.isNull(0) ? 0 : $0.int(0) }.first ?? 0
            if found > SQLiteDocumentStore.schemaVersion {
                throw StoreError.unsupportedSchema(path: path, found: found, supported: SQLiteDocumentStore.schemaVersion)
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
            if found < 3 {
                try openExecute(
                    """
                    CREATE TABLE documents (
                        collection TEXT NOT NULL,
                        name TEXT NOT NULL,
                        kind TEXT NOT NULL,
                        size INTEGER NOT NULL,
                        created_at TEXT NOT NULL,
                        body TEXT NOT NULL,
                        revision INTEGER NOT NULL,
                        PRIMARY KEY (collection, name)
                    ) WITHOUT ROWID
                    """)
                try openExecute(
                    """
                    INSERT INTO documents (collection, name, kind, size, created_at, body, revision)
                    SELECT 'calibrators', name, method, classes, created_at, document, revision FROM calibrators
                    """)
                try openExecute("DROP TABLE calibrators")
            }
            // Later versions: `if found < 4 { ... }`, each step in this transaction.
            if found != SQLiteDocumentStore.schemaVersion {
                try openExecute("DELETE FROM schema_version")
                try openExecute("INSERT INTO schema_version (version) VALUES (\(SQLiteDocumentStore.schemaVersion))")
            }
            try openExecute("COMMIT")
        } catch {
            _ = sqlite3_exec(handle, "ROLLBACK", nil, nil, nil)
            throw error
        }
    }

    // At open, failures are classified (corrupt / unwritable) with the path.
    private func openExecute(_ sql: String) throws(StoreError) {
        do throws(StoreError) {
            try execute(sql, [], operation: "open")
        } catch {
            throw classify(error)
        }
    }

    private func openQuery<T>(_ sql: String, _ read: (Row) -> T) throws(StoreError) -> [T] {
        do throws(StoreError) {
            return try query(sql, [], operation: "open", read)
        } catch {
            throw classify(error)
        }
    }

    private var lastCode: Int32 = SQLITE_OK

    private func classify(_ error: StoreError) -> StoreError {
        guard case .failed(_, let detail) = error else { return error }
        return Self.openError(lastCode, path: path, detail: detail)
    }

    private static func openError(_ rc: Int32, path: String, detail: String) -> StoreError {
        switch rc & 0xFF {
        case SQLITE_NOTADB, SQLITE_CORRUPT: .corrupt(path: path, detail: detail)
        default: .unwritable(path: path, detail: detail)
        }
    }

    func transaction<T>(_ operation: String, _ body: () throws(StoreError) -> T) throws(StoreError) -> T {
        // IMMEDIATE takes the write lock up front, so the read-then-write inside is atomic
        // against other connections too (they wait on the busy timeout).
        try execute("BEGIN IMMEDIATE", [], operation: operation)
        do throws(StoreError) {
            let value = try body()
            try execute("COMMIT", [], operation: operation)
            return value
        } catch {
            _ = sqlite3_exec(handle, "ROLLBACK", nil, nil, nil)
            throw error
        }
    }

    /// The stored revision of `name` in `collection`, or nil when there is none (inside a
    /// transaction).
    func revision(of name: String, in collection: String, operation: String) throws(StoreError) -> Int64? {
        try query(
            "SELECT revision FROM documents WHERE collection = ?1 AND name = ?2", [.text(collection), .text(name)], operation: operation
        ) { Int64($0.int(0)) }.first
    }

    /// Takes the next revision from the counter (inside the write's transaction, so a
    /// rolled-back write may skip a number but none is ever handed out twice).
    func nextRevision(operation: String) throws(StoreError) -> Int64 {
        try execute("UPDATE revision_counter SET last = last + 1 WHERE id = 1", [], operation: operation)
        guard let next = try query("SELECT last FROM revision_counter WHERE id = 1", [], operation: operation, { Int64($0.int(0)) }).first
        else { throw .failed(operation: operation, detail: "the revision counter is missing") }
        return next
    }

    func execute(_ sql: String, _ bindings: [SQLValue], operation: String) throws(StoreError) {
        _ = try query(sql, bindings, operation: operation) { _ in () }
    }

    func query<T>(_ sql: String, _ bindings: [SQLValue], operation: String, _ read: (Row) -> T) throws(StoreError) -> [T] {
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

    private func failure(_ rc: Int32, _ operation: String) -> StoreError {
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
