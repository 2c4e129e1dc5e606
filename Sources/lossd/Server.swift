import CLossdSystem
import Dispatch
import LossdHTTP
import LossdService
import LossdStore
import Logging

#if canImport(Glibc)
    import Glibc
#endif

/// Start-up and shutdown of the process.
enum Server {
    static func start(_ settings: Settings) -> Never {
        let level = settings.logLevel
        let format = settings.logFormat
        LoggingSystem.bootstrap { label in
            switch format {
            case .json:
                return JSONLogHandler(label: label, level: level)
            case .text:
                var handler = StreamLogHandler.standardError(label: label)
                handler.logLevel = level
                return handler
            }
        }
        let logger = Logger(label: "lossd")
        signal(SIGPIPE, SIG_IGN)
        // Request-sized blocks (up to 16 MiB) stay in malloc's heaps between requests, at
        // most 32 MiB of free memory a heap stays mapped, and there is one heap a core: a
        // steady stream of 1-10 MB requests reuses its pages instead of faulting them in per
        // request, while RSS stays bounded (bench/soak).
        _ = lossd_tune_malloc(16 << 20, 32 << 20)

        // The data directory holds the SQLite store; a PostgreSQL store needs none (so a
        // replica can run on a read-only file system).
        if settings.store.kind == .sqlite {
            do {
                try DataDirectory.prepare(settings.service.dataDirectory)
            } catch {
                logger.critical("cannot use data directory: \(error)")
                exit(1)
            }
        }
        // The store opens (schema migrated, integrity checked; PostgreSQL retried
        // for --store-startup-wait seconds) before the port does: a corrupt, unwritable or
        // unreachable store stops start-up instead of losing data.
        let store: any DocumentStore
        do {
            store = try settings.store.open(dataDirectory: settings.service.dataDirectory, logger: logger)
        } catch {
            logger.critical("cannot open the store: \(error)")
            exit(1)
        }

        var http = settings.http
        if let files = settings.tls {
            do {
                http.tls = try TLSContext(certificateChainPath: files.certificate, privateKeyPath: files.key)
            } catch {
                logger.critical("cannot set up TLS: \(error)")
                exit(1)
            }
        }

        // Access lines skip swift-log's metadata dictionaries: the same lines, formatted
        // straight into each I/O thread's buffer.
        if level <= .info {
            http.accessLog = format == .json ? JSONAccessLog(label: "lossd") : TextAccessLog(label: "lossd")
        }

        let gate = ServerGate()
        let service = LossdService(configuration: settings.service, acceptingWork: { gate.acceptingWork })
        let server: HTTPServer
        do {
            server = try HTTPServer(configuration: http, responder: service, logger: logger)
        } catch {
            logger.critical("cannot listen on \(settings.http.host):\(settings.http.port): \(error)")
            exit(1)
        }
        gate.attach(server)
        service.attachStore(store)

        let signals = installSignalHandlers(server: server, logger: logger)
        let (host, port) = server.boundAddress
        logger.info("configuration: \(settings.summary)")
        let shownHost = host.contains(":") ? "[\(host)]" : host
        let scheme = http.tls == nil ? "http" : "https"
        let url = "\(scheme)://\(shownHost):\(port)"
        let opsURL = server.operationsAddress.map { "http://\($0.host.contains(":") ? "[\($0.host)]" : $0.host):\($0.port)" }
        // The start-up line on standard output (tests and scripts read the port from it);
        // with --log-format json it is a JSON object too.
        switch format {
        case .text:
            print("lossd \(LossdService.version) listening on \(url)")
            if let opsURL { print("lossd operations listening on \(opsURL)") }
        case .json:
            var members: [(String, JSONValue)] = [
                ("time", .string(JSONLogHandler.timestamp())), ("level", "notice"), ("label", "lossd"),
                ("message", .string("lossd \(LossdService.version) listening on \(url)")), ("url", .string(url)),
            ]
            if let opsURL { members.append(("ops_url", .string(opsURL))) }
            print(String(decoding: JSONValue.object(members).bytes, as: UTF8.self))
        }
        fflush(nil)  // all output streams; stdout itself is not concurrency-safe to name

        server.run()
        withExtendedLifetime(signals) {}
        store.close()
        logger.info("stopped")
        exit(0)
    }

    /// SIGTERM/SIGINT begin a graceful shutdown; a second one exits at once.
    private static func installSignalHandlers(server: HTTPServer, logger: Logger) -> [any DispatchSourceSignal] {
        let received = SignalCounter()
        return [SIGTERM, SIGINT].map { number in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler {
                if received.increment() > 1 {
                    logger.warning("second signal: exiting now")
                    exit(1)
                }
                logger.info("signal \(number): shutting down")
                server.beginShutdown()
            }
            source.resume()
            return source
        }
    }
}
