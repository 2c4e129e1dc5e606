/// Everything about the server that a deployment may tune. Defaults follow the API contract.
public struct HTTPServerConfiguration: Sendable {
    public var host = "127.0.0.1"
    /// TCP port; 0 picks a free one (the bound port is in ``HTTPServer/boundPort``).
    public var port = 8080
    public var parserLimits = HTTPParserLimits()
    /// Seconds a request's header section may take from its first byte (408 after).
    public var headerTimeout: Double = 10
    /// Seconds a body may go without a byte arriving (408 after).
    public var bodyTimeout: Double = 30
    /// Seconds an idle keep-alive connection is kept open.
    public var keepAliveTimeout: Double = 60
    /// Seconds a response may go without a byte being taken by the client before the
    /// connection is dropped (renewed by every write that makes progress).
    public var writeTimeout: Double = 30
    /// Seconds a whole request (head and body) may take to arrive, however steadily it
    /// trickles in (408 after); `bodyTimeout` still bounds each stall.
    public var readTimeout: Double = 120
    /// Seconds a handler may run before it is cancelled and the request answered 503.
    public var requestTimeout: Double = 60
    /// Bytes that requests may hold at once: bodies (announced `Content-Length` when the
    /// head arrives, chunked bodies as they grow) and the working sets handlers charge.
    public var maxInflightBytes = 256 << 20
    /// Open connections at most; further ones get 503 and are closed.
    public var maxConnections = 1024
    /// I/O threads (event loops), each serving its share of the connections; the first also
    /// accepts. Inline and quick requests run on them (see ``RequestPlan``).
    public var ioThreads = 1
    /// Request-handler threads.
    public var workerThreads = 2
    /// Threads beside `workerThreads` that run only light requests, so that cheap work keeps
    /// its latency while expensive work saturates the others.
    public var reservedLightThreads = 1
    /// Connections admitted beyond `maxConnections` that serve only inline routes (health
    /// probes, metrics), after idle keep-alive connections have been evicted to make room.
    public var probeConnections = 8
    /// Requests that may wait for a handler thread before new ones get 503.
    public var maxQueuedRequests = 256
    /// Seconds in-flight requests get to finish after shutdown begins.
    public var shutdownGracePeriod: Double = 10
    /// Seconds suggested in `Retry-After` when overloaded.
    public var retryAfterSeconds = 1
    /// How access-log lines are written; nil: at `info` through the server's `Logger`.
    public var accessLog: (any AccessLogFormat)?
    /// Where ``accessLog`` lines go (standard error unless a test reads them).
    public var accessLogDescriptor: Int32 = 2
    /// Value of the `Server` header.
    public var serverName = "lossd"
    /// When set, every connection speaks TLS (HTTPS) with this identity; plain HTTP is not
    /// served on the same port.
    public var tls: TLSContext?
    /// A second, plain-HTTP listener on the same event loop that serves only the given
    /// paths (404 for any other, before a body is read): health probes and metrics on an
    /// address Prometheus and the kubelet reach while the API stays on loopback.
    public var operations: OperationsListener?

    public init() {}
}

/// The operations listener: where it binds and which paths it serves.
public struct OperationsListener: Sendable {
    public var host: String
    /// TCP port; 0 picks a free one (see ``HTTPServer/operationsAddress``).
    public var port: Int
    /// Exact paths served there; anything else is 404.
    public var paths: Set<String>
    /// Open connections at most on this listener (further ones are closed).
    public var maxConnections = 64

    public init(host: String, port: Int, paths: Set<String>) {
        self.host = host
        self.port = port
        self.paths = paths
    }
}
