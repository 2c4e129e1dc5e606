import ArgumentParser
import Dispatch
import LossdHTTP
import LossdService
import Logging

#if canImport(Glibc)
    import Glibc
#endif

/// The `lossd` command: reads configuration from flags or `LOSSD_*` environment
/// variables (a flag wins), opens the data directory, and serves until SIGTERM/SIGINT.
@main
struct Lossd: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lossd",
        abstract: "Loss evaluation and calibration over HTTP.",
        discussion: """
            Every option can also be set with the environment variable shown beside it;
            a flag given on the command line wins over the environment.
            SIGTERM or SIGINT stops accepting connections and lets in-flight requests
            finish within the shutdown grace period; a second signal exits at once.
            """,
        version: LossdService.version
    )

    @Option(help: "Address to listen on; 0.0.0.0 or :: for every interface. [env: LOSSD_HOST] (default: \(Defaults.http.host))")
    var host: String?

    @Option(help: "TCP port; 0 picks a free one. [env: LOSSD_PORT] (default: \(Defaults.http.port))")
    var port: Int?

    @Option(help: "Port of the operations listener, which serves only /healthz, /readyz and /metrics (plain HTTP); 0 picks a free one. [env: LOSSD_OPS_PORT] (default: off, everything on --port)")
    var opsPort: Int?

    @Option(help: "Address of the operations listener. [env: LOSSD_OPS_HOST] (default: 0.0.0.0, so probes and Prometheus reach it while the API stays on 127.0.0.1)")
    var opsHost: String?

    @Option(help: "Log format: text (swift-log's lines) or json (one object per line: time, level, message and every field). [env: LOSSD_LOG_FORMAT] (default: text)")
    var logFormat: String?

    @Option(help: "Largest request body accepted, in bytes (413 beyond). [env: LOSSD_MAX_BODY_BYTES] (default: \(Defaults.http.parserLimits.maxBodyBytes))")
    var maxBodyBytes: Int?

    @Option(help: "Request-handler threads. [env: LOSSD_THREADS] (default: the number of cores)")
    var threads: Int?

    @Option(help: "I/O threads, each serving its share of the connections and answering small loss, metrics and ensemble requests itself. [env: LOSSD_IO_THREADS] (default: --threads, at most 16)")
    var ioThreads: Int?

    @Option(help: "Directory of the embedded store. [env: LOSSD_DATA_DIR] (default: \(Defaults.service.dataDirectory))")
    var dataDir: String?

    @Option(
        help: """
            Store for calibrators and scaling laws: `sqlite` (calibrators.sqlite in --data-dir) or a postgres:// (or \
            postgresql://) URL, for several replicas sharing one database. The password is never \
            printed; prefer the environment variable, which other users cannot read from the \
            process list. [env: LOSSD_STORE] (default: sqlite)
            """)
    var store: String?

    @Option(help: "PostgreSQL connections per process. [env: LOSSD_STORE_POOL_SIZE] (default: --threads)")
    var storePoolSize: Int?

    @Option(
        help: """
            Seconds start-up keeps retrying an unreachable PostgreSQL before it exits 1 (a wrong \
            password or database stops it at once). Once serving, lossd never exits for the database: \
            store routes answer 503 and /readyz 503 while it is down, and recover by themselves. \
            [env: LOSSD_STORE_STARTUP_WAIT] (default: \(Defaults.seconds(StoreSettings.defaultStartupWait)))
            """)
    var storeStartupWait: Double?

    @Option(help: "Largest request header section, in bytes (431 beyond). [env: LOSSD_MAX_HEADER_BYTES] (default: \(Defaults.http.parserLimits.maxHeaderBytes))")
    var maxHeaderBytes: Int?

    @Option(help: "Open connections at most; at the cap the longest-idle keep-alive connection is closed to admit a new one, and when none is idle a new one gets 503. [env: LOSSD_MAX_CONNECTIONS] (default: \(Defaults.http.maxConnections))")
    var maxConnections: Int?

    @Option(help: "Connections admitted beyond --max-connections that serve only /healthz, /readyz, /metrics and other cheap GETs, so probes reach a saturated server. [env: LOSSD_PROBE_CONNECTIONS] (default: \(Defaults.http.probeConnections))")
    var probeConnections: Int?

    @Option(help: "Requests that may wait for a handler thread before 503; each connection has at most one in flight, so the default never sheds load below the connection cap. [env: LOSSD_QUEUE_DEPTH] (default: the connection cap)")
    var queueDepth: Int?

    @Option(help: "Seconds for a request's headers to arrive (408 after). [env: LOSSD_HEADER_TIMEOUT] (default: \(Defaults.seconds(Defaults.http.headerTimeout)))")
    var headerTimeout: Double?

    @Option(help: "Seconds a request body may stall without a byte (408 after). [env: LOSSD_BODY_TIMEOUT] (default: \(Defaults.seconds(Defaults.http.bodyTimeout)))")
    var bodyTimeout: Double?

    @Option(help: "Seconds an idle keep-alive connection stays open. [env: LOSSD_KEEP_ALIVE_TIMEOUT] (default: \(Defaults.seconds(Defaults.http.keepAliveTimeout)))")
    var keepAliveTimeout: Double?

    @Option(help: "Seconds a whole request (head and body) may take to arrive, however steadily it trickles (408 after). [env: LOSSD_READ_TIMEOUT] (default: \(Defaults.seconds(Defaults.http.readTimeout)))")
    var readTimeout: Double?

    @Option(help: "Seconds a response may wait for the client to take any byte before the connection is dropped; every write that makes progress renews it. [env: LOSSD_WRITE_TIMEOUT] (default: \(Defaults.seconds(Defaults.http.writeTimeout)))")
    var writeTimeout: Double?

    @Option(help: "Seconds a request may run in its handler before it is stopped and answered 503. [env: LOSSD_REQUEST_TIMEOUT] (default: \(Defaults.seconds(Defaults.http.requestTimeout)))")
    var requestTimeout: Double?

    @Option(
        help: """
            Bytes that requests may hold at once: bodies (announced Content-Length as the head \
            arrives, chunked and gzip bodies as they grow) and each handler's estimated working set. \
            A request that does not fit now gets 503 with Retry-After; one that could never fit, 413. \
            [env: LOSSD_MAX_INFLIGHT_BYTES] (default: a quarter of the cgroup memory limit, or of \
            physical memory without one, and at least 268435456)
            """)
    var maxInflightBytes: Int?

    @Option(help: "Threads beside --threads that run only light requests (a loss, metrics or apply on at most 1 MiB), so cheap work keeps its latency while fits saturate the others. [env: LOSSD_LIGHT_THREADS] (default: \(Defaults.http.reservedLightThreads))")
    var lightThreads: Int?

    @Option(help: "zlib level of gzip responses, 1 (fastest) to 9; 0 never compresses. [env: LOSSD_GZIP_LEVEL] (default: \(Defaults.compression.level))")
    var gzipLevel: Int?

    @Option(help: "Smallest response body gzip-encoded for a client that accepts it. [env: LOSSD_GZIP_MIN_BYTES] (default: \(Defaults.compression.minBytes))")
    var gzipMinBytes: Int?

    @Option(help: "Largest response body gzip-encoded; larger ones go out as identity, which on a sidecar's loopback is faster. [env: LOSSD_GZIP_MAX_BYTES] (default: \(Defaults.compression.maxBytes))")
    var gzipMaxBytes: Int?

    @Option(help: "Seconds in-flight requests get to finish on shutdown. [env: LOSSD_SHUTDOWN_GRACE] (default: \(Defaults.seconds(Defaults.http.shutdownGracePeriod)))")
    var shutdownGrace: Double?

    @Option(
        help: """
            Require `Authorization: Bearer <key>` on every /v1 route (401 otherwise); /healthz, \
            /readyz, /metrics and /openapi.yaml stay open. Prefer the environment variable, which \
            other users cannot read from the process list. [env: LOSSD_API_KEY] (default: none, no authentication)
            """)
    var apiKey: String?

    @Option(
        help: """
            PEM certificate chain (leaf first) to serve HTTPS with, TLS 1.2 or later; needs \
            --tls-key. The port then speaks TLS only. [env: LOSSD_TLS_CERT] (default: none, plain HTTP)
            """)
    var tlsCert: String?

    @Option(help: "PEM private key (unencrypted) of --tls-cert. [env: LOSSD_TLS_KEY] (default: none)")
    var tlsKey: String?

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical. [env: LOSSD_LOG_LEVEL] (default: info)")
    var logLevel: String?

    func run() throws {
        let settings = try Settings(from: self, environment: Environment.current)
        Server.start(settings)
    }
}

/// Resolved settings: flag, else environment variable, else the configuration types' own
/// default (`HTTPServerConfiguration`, `ServiceConfiguration`, `CompressionPolicy`: the one
/// place each default is written), except where the executable derives one (worker threads
/// from the cores, the queue from the connection limit, the memory budget from the cgroup);
/// validated.
struct Settings: Sendable {
    var http = HTTPServerConfiguration()
    var service = ServiceConfiguration()
    var logLevel = Logger.Level.info
    var logFormat = LogFormat.text
    /// The document store (calibrators, scaling laws): SQLite (default) or PostgreSQL.
    var store = StoreSettings()
    /// Certificate chain and key files when serving HTTPS.
    var tls: (certificate: String, key: String)?

    init(from command: Lossd, environment: [String: String]) throws {
        func value<T>(_ flag: T?, _ variable: String, parse: (String) -> T?) throws -> T? {
            if let flag { return flag }
            guard let text = environment[variable] else { return nil }
            guard let parsed = parse(text) else {
                throw ValidationError("\(variable)=\(text) is not a valid value")
            }
            return parsed
        }
        let cores = Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))

        http.host = try value(command.host, "LOSSD_HOST") { $0.isEmpty ? nil : $0 } ?? http.host
        http.port = try value(command.port, "LOSSD_PORT") { Int($0) } ?? http.port
        if let opsPort = try value(command.opsPort, "LOSSD_OPS_PORT", parse: { Int($0) }) {
            guard (0...65535).contains(opsPort) else { throw ValidationError("ops port must be in 0...65535 (got \(opsPort))") }
            let opsHost = try value(command.opsHost, "LOSSD_OPS_HOST") { $0.isEmpty ? nil : $0 } ?? "0.0.0.0"
            http.operations = OperationsListener(host: opsHost, port: opsPort, paths: ["/healthz", "/readyz", "/metrics"])
        } else if command.opsHost != nil {
            throw ValidationError("--ops-host needs --ops-port (or LOSSD_OPS_PORT)")
        }
        let format = try value(command.logFormat, "LOSSD_LOG_FORMAT") { $0 } ?? "text"
        guard let parsedFormat = LogFormat(rawValue: format.lowercased()) else {
            throw ValidationError("log format must be text or json (got \(format))")
        }
        logFormat = parsedFormat
        http.parserLimits.maxBodyBytes = try value(command.maxBodyBytes, "LOSSD_MAX_BODY_BYTES") { Int($0) } ?? http.parserLimits.maxBodyBytes
        http.parserLimits.maxHeaderBytes = try value(command.maxHeaderBytes, "LOSSD_MAX_HEADER_BYTES") { Int($0) } ?? http.parserLimits.maxHeaderBytes
        http.workerThreads = try value(command.threads, "LOSSD_THREADS") { Int($0) } ?? max(1, cores)
        http.ioThreads = try value(command.ioThreads, "LOSSD_IO_THREADS") { Int($0) } ?? min(16, http.workerThreads)
        http.maxConnections = try value(command.maxConnections, "LOSSD_MAX_CONNECTIONS") { Int($0) } ?? http.maxConnections
        http.probeConnections = try value(command.probeConnections, "LOSSD_PROBE_CONNECTIONS") { Int($0) } ?? http.probeConnections
        // A connection has at most one request in flight, so a queue as deep as the connection
        // cap only refuses work when an operator asks for a shallower one.
        http.maxQueuedRequests = try value(command.queueDepth, "LOSSD_QUEUE_DEPTH") { Int($0) } ?? http.maxConnections
        http.headerTimeout = try value(command.headerTimeout, "LOSSD_HEADER_TIMEOUT") { Double($0) } ?? http.headerTimeout
        http.bodyTimeout = try value(command.bodyTimeout, "LOSSD_BODY_TIMEOUT") { Double($0) } ?? http.bodyTimeout
        http.keepAliveTimeout = try value(command.keepAliveTimeout, "LOSSD_KEEP_ALIVE_TIMEOUT") { Double($0) } ?? http.keepAliveTimeout
        http.shutdownGracePeriod = try value(command.shutdownGrace, "LOSSD_SHUTDOWN_GRACE") { Double($0) } ?? http.shutdownGracePeriod
        http.readTimeout = try value(command.readTimeout, "LOSSD_READ_TIMEOUT") { Double($0) } ?? http.readTimeout
        http.writeTimeout = try value(command.writeTimeout, "LOSSD_WRITE_TIMEOUT") { Double($0) } ?? http.writeTimeout
        http.requestTimeout = try value(command.requestTimeout, "LOSSD_REQUEST_TIMEOUT") { Double($0) } ?? http.requestTimeout
        http.maxInflightBytes =
            try value(command.maxInflightBytes, "LOSSD_MAX_INFLIGHT_BYTES") { Int($0) } ?? MemoryLimit.defaultInflightBytes
        http.reservedLightThreads = try value(command.lightThreads, "LOSSD_LIGHT_THREADS") { Int($0) } ?? http.reservedLightThreads
        service.compression = CompressionPolicy(
            level: try value(command.gzipLevel, "LOSSD_GZIP_LEVEL") { Int($0) } ?? service.compression.level,
            minBytes: try value(command.gzipMinBytes, "LOSSD_GZIP_MIN_BYTES") { Int($0) } ?? service.compression.minBytes,
            maxBytes: try value(command.gzipMaxBytes, "LOSSD_GZIP_MAX_BYTES") { Int($0) } ?? service.compression.maxBytes)
        guard (0...9).contains(service.compression.level) else { throw ValidationError("gzip level must be in 0...9") }
        guard service.compression.minBytes >= 0, service.compression.maxBytes >= 0 else {
            throw ValidationError("gzip byte bounds must be >= 0")
        }
        service.dataDirectory = try value(command.dataDir, "LOSSD_DATA_DIR") { $0.isEmpty ? nil : $0 } ?? service.dataDirectory
        store = try StoreSettings(
            store: command.store, poolSize: command.storePoolSize, startupWait: command.storeStartupWait,
            environment: environment, workerThreads: http.workerThreads)
        service.maxBodyBytes = http.parserLimits.maxBodyBytes
        // An empty LOSSD_API_KEY means no key, as if unset.
        service.apiKey = command.apiKey ?? environment["LOSSD_API_KEY"].flatMap { $0.isEmpty ? nil : $0 }
        if let key = service.apiKey {
            guard !key.isEmpty else { throw ValidationError("api key must not be empty") }
            guard key.utf8.allSatisfy({ (0x21...0x7E).contains($0) }) else {
                throw ValidationError("api key must be printable ASCII without spaces")
            }
        }
        let certificate = try value(command.tlsCert, "LOSSD_TLS_CERT") { $0.isEmpty ? nil : $0 }
        let key = try value(command.tlsKey, "LOSSD_TLS_KEY") { $0.isEmpty ? nil : $0 }
        switch (certificate, key) {
        case let (certificate?, key?): tls = (certificate, key)
        case (nil, nil): tls = nil
        case (_?, nil): throw ValidationError("--tls-cert needs --tls-key (or LOSSD_TLS_KEY)")
        case (nil, _?): throw ValidationError("--tls-key needs --tls-cert (or LOSSD_TLS_CERT)")
        }
        let level = try value(command.logLevel, "LOSSD_LOG_LEVEL") { $0 } ?? "info"
        guard let parsedLevel = Logger.Level(rawValue: level.lowercased()) else {
            throw ValidationError("log level must be one of trace, debug, info, notice, warning, error, critical (got \(level))")
        }
        logLevel = parsedLevel

        guard (0...65535).contains(http.port) else { throw ValidationError("port must be in 0...65535 (got \(http.port))") }
        guard http.parserLimits.maxBodyBytes >= 0 else { throw ValidationError("max body bytes must be >= 0") }
        guard http.parserLimits.maxHeaderBytes >= 256 else { throw ValidationError("max header bytes must be >= 256") }
        guard (1...1024).contains(http.workerThreads) else { throw ValidationError("threads must be in 1...1024") }
        guard (1...64).contains(http.ioThreads) else { throw ValidationError("io threads must be in 1...64") }
        guard http.maxConnections >= 1 else { throw ValidationError("max connections must be >= 1") }
        guard (0...1024).contains(http.probeConnections) else { throw ValidationError("probe connections must be in 0...1024") }
        guard http.maxQueuedRequests >= 1 else { throw ValidationError("queue depth must be >= 1") }
        guard http.maxInflightBytes >= 1 << 20 else { throw ValidationError("max inflight bytes must be >= 1048576") }
        guard (0...64).contains(http.reservedLightThreads) else { throw ValidationError("light threads must be in 0...64") }
        for (name, seconds) in [
            ("header timeout", http.headerTimeout), ("body timeout", http.bodyTimeout),
            ("keep-alive timeout", http.keepAliveTimeout), ("shutdown grace", http.shutdownGracePeriod),
            ("read timeout", http.readTimeout), ("write timeout", http.writeTimeout),
            ("request timeout", http.requestTimeout),
        ] where !(seconds > 0 && seconds.isFinite) {
            throw ValidationError("\(name) must be a positive number of seconds")
        }
    }

    /// One line that says what the process runs with, printed at start-up.
    var summary: String {
        let limits = http.parserLimits
        return "host=\(http.host) port=\(http.port) threads=\(http.workerThreads)+\(http.reservedLightThreads) io_threads=\(http.ioThreads) queue=\(http.maxQueuedRequests) "
            + "max_inflight_bytes=\(http.maxInflightBytes) request_timeout=\(http.requestTimeout)s "
            + "read_timeout=\(http.readTimeout)s write_timeout=\(http.writeTimeout)s "
            + "gzip=level:\(service.compression.level),\(service.compression.minBytes)...\(service.compression.maxBytes) "
            + "max_body_bytes=\(limits.maxBodyBytes) max_header_bytes=\(limits.maxHeaderBytes) "
            + "max_connections=\(http.maxConnections) header_timeout=\(http.headerTimeout)s "
            + "body_timeout=\(http.bodyTimeout)s keep_alive=\(http.keepAliveTimeout)s "
            + "shutdown_grace=\(http.shutdownGracePeriod)s data_dir=\(service.dataDirectory) \(store.summary) log_level=\(logLevel) "
            + "api_key=\(service.apiKey == nil ? "unset" : "set") "
            + "tls=\(tls.map { "cert:\($0.certificate)" } ?? "off") "
            + "ops=\(http.operations.map { "\($0.host):\($0.port)" } ?? "off") log_format=\(logFormat.rawValue)"
    }
}

enum Environment {
    static var current: [String: String] {
        var result: [String: String] = [:]
        var pointer = environ
        while let entry = pointer.pointee {
            let text = String(cString: entry)
            if let eq = text.firstIndex(of: "=") {
                result[String(text[..<eq])] = String(text[text.index(after: eq)...])
            }
            pointer += 1
        }
        return result
    }
}

/// The configuration types' own defaults, which the help text shows: each default is
/// written once, in `HTTPServerConfiguration`, `HTTPParserLimits`, `ServiceConfiguration` and
/// `CompressionPolicy`, never again here.
enum Defaults {
    static let http = HTTPServerConfiguration()
    static let service = ServiceConfiguration()
    static let compression = CompressionPolicy()

    /// Seconds as help text: `10`, not `10.0`.
    static func seconds(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? String(Int(value)) : String(value)
    }
}
