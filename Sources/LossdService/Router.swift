import LossdHTTP

/// The parts of a request a handler needs, with path parameters resolved.
public struct RouteRequest: Sendable {
    public let request: HTTPRequest
    public let context: RequestContext
    /// Values of `{name}` segments in the route's pattern.
    public let parameters: [String: String]
}

/// What a route returns: a response, or a `ServiceError` rendered as problem+json.
public typealias RouteHandler = @Sendable (RouteRequest) throws(ServiceError) -> HTTPResponse

/// Where a route runs, declared when it is registered.
enum RouteCost: Sendable, Equatable {
    /// Cheap and non-blocking (health, version, catalogue listings): on the I/O thread, so
    /// it is answered even while every worker is busy.
    case inline
    /// Costs about its body (a loss, metrics, an apply, a store read): light work, which
    /// may also use the worker pool's reserved light lane, up to `lightBodyBytes`; heavy beyond.
    case bodySized
    /// Pure computation costing about its body, with no store or other waiting (a loss,
    /// metrics, an ensemble): like `bodySized`, and with a small plain body (at most
    /// `quickBodyBytes`, no `Content-Encoding`) run by the I/O thread itself, which costs
    /// less than handing it to a worker.
    case compute
    /// Costs that cannot be bounded from the head (fits, aggregation, O(N²) metrics from a
    /// small body): the general workers only.
    case heavy

    /// The largest body of light work.
    static let lightBodyBytes = 1 << 20
    /// The largest body of a `compute` request that the I/O thread runs itself: at most a
    /// few hundred microseconds of work for every loss and metric.
    static let quickBodyBytes = 64 << 10

    /// Whether a request of this route with `head` is run by the I/O thread (``RequestPlan/quick``).
    func isQuick(_ head: HTTPRequestHead) -> Bool {
        guard self == .compute, case .contentLength(let length) = head.framing, length <= Self.quickBodyBytes else {
            return false
        }
        guard let encoding = head.headers["content-encoding"] else { return true }
        return encoding.lowercased() == "identity"
    }

    /// The worker-pool lane for a request of this route with `head`.
    func workClass(_ head: HTTPRequestHead) -> WorkClass {
        switch (self, head.framing) {
        case (.heavy, _): .heavy
        case (_, .none): .light
        case (_, .contentLength(let length)): length <= Self.lightBodyBytes ? .light : .heavy
        case (_, .chunked): .heavy
        }
    }
}

/// Matches method and path to a handler: 404 for an unknown path, 405 with `Allow` for a
/// known path with another method. `HEAD` is answered by the `GET` route.
public struct Router: Sendable {
    struct Route: Sendable {
        let method: String
        let segments: [Segment]
        let pattern: String
        let cost: RouteCost
        let handler: RouteHandler

        /// Cheap and non-blocking: may run on the I/O thread.
        var inline: Bool { cost == .inline }

        /// Whether it answers `method` (`HEAD` is answered by the `GET` route).
        func answers(_ method: String) -> Bool { self.method == method || (method == "HEAD" && self.method == "GET") }

        /// Literal segments: the more, the more specific the route.
        let literalCount: Int

        init(method: String, segments: [Segment], pattern: String, cost: RouteCost, handler: @escaping RouteHandler) {
            self.method = method
            self.segments = segments
            self.pattern = pattern
            self.cost = cost
            self.handler = handler
            literalCount = segments.filter { if case .literal = $0 { true } else { false } }.count
        }
    }

    enum Segment: Sendable, Equatable {
        case literal(String)
        case parameter(String)
    }

    private(set) var routes: [Route] = []
    /// Routes without parameters, by their exact path (indices into `routes`): a path found
    /// here binds no route with more literal segments, so these are its whole match.
    private var literalRoutes: [String: [Int]] = [:]

    public init() {}

    /// Adds a route. `pattern` is a path such as `/v1/calibrators/{name}`; `cost` says
    /// where it runs (the I/O thread, or which lane of the worker pool).
    mutating func add(_ method: String, _ pattern: String, cost: RouteCost = .bodySized, _ handler: @escaping RouteHandler) {
        let segments = Router.split(pattern).map { part -> Segment in
            if part.hasPrefix("{"), part.hasSuffix("}") { return .parameter(String(part.dropFirst().dropLast())) }
            return .literal(String(part))
        }
        let route = Route(method: method, segments: segments, pattern: pattern, cost: cost, handler: handler)
        if route.literalCount == segments.count { literalRoutes[pattern, default: []].append(routes.count) }
        routes.append(route)
    }

    enum Match {
        case found(Route, [String: String])
        case methodNotAllowed(allow: [String])
        case notFound
    }

    /// The most specific routes win: when a path binds to routes with different numbers
    /// of literal segments (`/v1/calibrators/fit` binds both `POST .../fit` and
    /// `GET .../{name}`), only those with the most literal segments are considered, so
    /// `GET /v1/calibrators/fit` is a 405 with `Allow: POST`, never the calibrator `fit`.
    func match(method: String, path: String) -> Match {
        if let exact = literalRoutes[path] {
            // The common case (`/v1/loss`): one lookup, no path splitting.
            for index in exact where routes[index].answers(method) {
                return .found(routes[index], [:])
            }
        }
        let parts = Router.split(path)
        var bound: [(Route, [String: String])] = []
        var mostLiterals = -1
        for route in routes {
            guard let parameters = Router.bind(route.segments, to: parts) else { continue }
            let literals = route.literalCount
            if literals > mostLiterals {
                bound.removeAll()
                mostLiterals = literals
            }
            if literals == mostLiterals { bound.append((route, parameters)) }
        }
        var allowed: [String] = []
        for (route, parameters) in bound {
            if route.answers(method) {
                return .found(route, parameters)
            }
            allowed.append(route.method)
            if route.method == "GET" { allowed.append("HEAD") }
        }
        if allowed.isEmpty { return .notFound }
        var seen = Set<String>()
        return .methodNotAllowed(allow: allowed.filter { seen.insert($0).inserted })
    }

    private static func split(_ path: String) -> [Substring] {
        path.split(separator: "/", omittingEmptySubsequences: false).dropFirst().map { $0 }
    }

    private static func bind(_ segments: [Segment], to parts: [Substring]) -> [String: String]? {
        guard segments.count == parts.count else { return nil }
        var parameters: [String: String] = [:]
        for (segment, part) in zip(segments, parts) {
            switch segment {
            case .literal(let literal):
                guard part == literal else { return nil }
            case .parameter(let name):
                guard !part.isEmpty else { return nil }
                parameters[name] = PercentDecoding.decode(part) ?? String(part)
            }
        }
        return parameters
    }
}

enum PercentDecoding {
    /// Decodes `%XX` escapes; nil when an escape is malformed or the result is not UTF-8.
    static func decode<S: StringProtocol>(_ text: S) -> String? {
        var bytes: [UInt8] = []
        var iterator = Array(text.utf8).makeIterator()
        while let byte = iterator.next() {
            if byte == UInt8(ascii: "%") {
                guard let hi = iterator.next().flatMap(hex), let lo = iterator.next().flatMap(hex) else { return nil }
                bytes.append(hi << 4 | lo)
            } else {
                bytes.append(byte)
            }
        }
        return String(validating: bytes, as: UTF8.self)
    }

    private static func hex(_ b: UInt8) -> UInt8? {
        switch b {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): b - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): b - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): b - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
