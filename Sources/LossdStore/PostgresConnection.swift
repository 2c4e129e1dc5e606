import CLibPQ
import Dispatch
import Logging
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

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

    init(parameters: Parameters, location: String) throws(StoreError) {
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
    func query(_ sql: String, _ parameters: [String?], operation: String) throws(StoreError) -> [[String?]] {
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
    func transaction<T>(_ operation: String, _ body: () throws(StoreError) -> T) throws(StoreError) -> T {
        _ = try query("BEGIN", [], operation: operation)
        do throws(StoreError) {
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
        let message = String(cString: text).split(whereSeparator: \.isNewline).map { $0.trimmed(of: " \t") }.joined(separator: " ")
        return message.isEmpty ? "unknown error" : message
    }
}
