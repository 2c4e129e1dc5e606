import ArgumentParser
import LossdService
import LossdStore
import Logging

/// Which document store (calibrators, scaling laws) to open (`--store`, `--store-pool-size`, `--store-startup-wait`
/// or their `LOSSD_STORE*` variables), and opening it at start-up.
struct StoreSettings: Sendable {
    enum Kind: Sendable, Equatable {
        /// `calibrators.sqlite` in the data directory (the default).
        case sqlite
        /// A PostgreSQL database shared by every replica.
        case postgres(url: String)
    }

    var kind: Kind = .sqlite
    /// Pooled PostgreSQL connections (default: the worker threads, so no request waits).
    var poolSize: Int = 1
    /// Seconds start-up retries an unreachable PostgreSQL before exiting 1.
    var startupWait: Double = StoreSettings.defaultStartupWait
    /// Seconds start-up retries an unreachable PostgreSQL by default.
    static let defaultStartupWait: Double = 30

    /// SQLite in the data directory.
    init() {}

    /// - Parameters: the flags (nil when not given), the environment, and the worker
    ///   thread count (the pool's default size).
    init(store: String?, poolSize: Int?, startupWait: Double?, environment: [String: String], workerThreads: Int) throws {
        let text = store ?? environment["LOSSD_STORE"] ?? ""
        switch text {
        case "", "sqlite": kind = .sqlite
        case _ where PostgresURL.isPostgres(text):
            do throws(StoreError) {
                try PostgresURL.validate(text)
            } catch {
                throw ValidationError("store: \(error)")
            }
            kind = .postgres(url: text)
        default:
            // Never echo the value: it may be a mistyped URL with a password in it.
            throw ValidationError("store must be `sqlite` or a postgres:// / postgresql:// URL")
        }
        func number<T>(_ flag: T?, _ variable: String, _ parse: (String) -> T?) throws -> T? {
            if let flag { return flag }
            guard let value = environment[variable] else { return nil }
            guard let parsed = parse(value) else { throw ValidationError("\(variable)=\(value) is not a valid value") }
            return parsed
        }
        self.poolSize = try number(poolSize, "LOSSD_STORE_POOL_SIZE") { Int($0) } ?? max(1, workerThreads)
        self.startupWait = try number(startupWait, "LOSSD_STORE_STARTUP_WAIT") { Double($0) } ?? Self.defaultStartupWait
        guard (1...1024).contains(self.poolSize) else { throw ValidationError("store pool size must be in 1...1024") }
        guard self.startupWait >= 0 && self.startupWait.isFinite else {
            throw ValidationError("store startup wait must be a non-negative number of seconds")
        }
    }

    /// For the start-up summary: the backend and where it is, never a password.
    var summary: String {
        switch kind {
        case .sqlite: "store=sqlite"
        case .postgres(let url): "store=\(PostgresURL.redacted(url)) store_pool=\(poolSize) store_startup_wait=\(startupWait)s"
        }
    }

    /// Opens the store: the SQLite file under `dataDirectory`, or the PostgreSQL pool
    /// (retrying an unreachable server for `startupWait` seconds).
    func open(dataDirectory: String, logger: Logger) throws(StoreError) -> any DocumentStore {
        switch kind {
        case .sqlite:
            return try SQLiteDocumentStore(directory: dataDirectory)
        case .postgres(let url):
            var configuration = PostgresStoreConfiguration(url: url, poolSize: poolSize)
            configuration.startupWait = startupWait
            return try PostgresDocumentStore(configuration: configuration, logger: Logger(label: "lossd.store"))
        }
    }
}
