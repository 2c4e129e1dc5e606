import LossdHTTP
import Synchronization

/// Counters and fixed-bucket histograms in the Prometheus text exposition format
/// (version 0.0.4), guarded by one mutex. Families are declared up front; a sample's
/// label values come in the order of the family's label names.
final class PrometheusRegistry: Sendable {
    enum Kind: String, Sendable {
        case counter, gauge, histogram
    }

    fileprivate struct Histogram {
        var buckets: [UInt64]
        var count: UInt64 = 0
        var sum: Double = 0
    }

    fileprivate struct Family {
        let name: String
        let help: String
        let kind: Kind
        let labelNames: [String]
        let bounds: [Double]
        var values: [[String]: Double] = [:]
        var histograms: [[String]: Histogram] = [:]
    }

    /// Every family's samples; changed under the registry's lock (see ``update(_:)``).
    struct State {
        fileprivate var families: [Family] = []
        fileprivate var index: [String: Int] = [:]

        /// Adds `amount` to a counter sample of the family at `family` (from ``PrometheusRegistry/position(of:)``).
        mutating func add(_ family: Int, _ labels: [String], _ amount: Double = 1) {
            families[family].values[labels, default: 0] += amount
        }

        /// Records one observation in the histogram family at `family`.
        mutating func observe(_ family: Int, _ labels: [String], _ value: Double) {
            let bounds = families[family].bounds
            // Updated in place: a copy out and back would copy the bucket array every time.
            PrometheusRegistry.record(
                value, bounds: bounds,
                in: &families[family].histograms[labels, default: Histogram(buckets: Array(repeating: 0, count: bounds.count))])
        }
    }

    private let state = Mutex(State())

    init() {}

    func declare(_ name: String, _ kind: Kind, help: String, labels: [String] = [], buckets: [Double] = []) {
        state.withLock { state in
            guard state.index[name] == nil else { return }
            state.index[name] = state.families.count
            state.families.append(
                Family(name: name, help: help, kind: kind, labelNames: labels, bounds: buckets.sorted()))
        }
    }

    /// A declared family's position, for ``update(_:)``: resolved once, not per sample.
    func position(of name: String) -> Int? {
        state.withLock { $0.index[name] }
    }

    /// Several changes under one lock (a request's four samples), families by position.
    func update(_ body: (inout State) -> Void) {
        state.withLock { body(&$0) }
    }

    /// Adds `amount` to a counter (or gauge) sample.
    func add(_ name: String, _ labels: [String] = [], _ amount: Double = 1) {
        state.withLock { state in
            guard let i = state.index[name] else { return }
            state.add(i, labels, amount)
        }
    }

    /// Sets a gauge sample.
    func set(_ name: String, _ labels: [String] = [], _ value: Double) {
        state.withLock { state in
            guard let i = state.index[name] else { return }
            state.families[i].values[labels] = value
        }
    }

    /// Records one observation in a histogram.
    func observe(_ name: String, _ labels: [String] = [], _ value: Double) {
        state.withLock { state in
            guard let i = state.index[name] else { return }
            state.observe(i, labels, value)
        }
    }

    fileprivate static func record(_ value: Double, bounds: [Double], in histogram: inout Histogram) {
        for (b, bound) in bounds.enumerated() where value <= bound { histogram.buckets[b] += 1 }
        histogram.count += 1
        histogram.sum += value
    }

    /// The current value of a counter or gauge sample (for tests).
    func value(_ name: String, _ labels: [String] = []) -> Double? {
        state.withLock { state in state.index[name].flatMap { state.families[$0].values[labels] } }
    }

    /// Every family, in declaration order, samples sorted by label values.
    func render() -> String {
        let families = state.withLock { $0.families }
        var out = ""
        for family in families {
            out += "# HELP \(family.name) \(Self.escapeHelp(family.help))\n"
            out += "# TYPE \(family.name) \(family.kind.rawValue)\n"
            if family.kind == .histogram {
                for labels in family.histograms.keys.sorted(by: Self.ordered) {
                    let h = family.histograms[labels]!
                    let base = zip(family.labelNames, labels).map { ($0, $1) }
                    for (bound, count) in zip(family.bounds, h.buckets) {
                        out += Self.sample(family.name + "_bucket", base + [("le", Self.format(bound))], Double(count))
                    }
                    out += Self.sample(family.name + "_bucket", base + [("le", "+Inf")], Double(h.count))
                    out += Self.sample(family.name + "_sum", base, h.sum)
                    out += Self.sample(family.name + "_count", base, Double(h.count))
                }
            } else {
                for labels in family.values.keys.sorted(by: Self.ordered) {
                    out += Self.sample(family.name, zip(family.labelNames, labels).map { ($0, $1) }, family.values[labels]!)
                }
            }
        }
        return out
    }

    private static func ordered(_ a: [String], _ b: [String]) -> Bool { a.lexicographicallyPrecedes(b) }

    private static func sample(_ name: String, _ labels: [(String, String)], _ value: Double) -> String {
        guard !labels.isEmpty else { return "\(name) \(format(value))\n" }
        let text = labels.map { "\($0.0)=\"\(escapeLabel($0.1))\"" }.joined(separator: ",")
        return "\(name){\(text)} \(format(value))\n"
    }

    static func format(_ value: Double) -> String {
        if value.isNaN { return "NaN" }
        if value.isInfinite { return value > 0 ? "+Inf" : "-Inf" }
        if value == value.rounded(), abs(value) < 1e15 { return String(Int64(value)) }
        return "\(value)"
    }

    /// A label value in the text format: backslash, double quote and line feed escaped.
    static func escapeLabel(_ text: String) -> String {
        text.escaping(["\\": "\\\\", "\"": "\\\"", "\n": "\\n"])
    }

    /// HELP text: backslash and line feed escaped (a double quote stays).
    private static func escapeHelp(_ text: String) -> String {
        text.escaping(["\\": "\\\\", "\n": "\\n"])
    }
}

/// lossd's metric families on top of a ``PrometheusRegistry``.
final class ServiceMetrics: Sendable {
    static let durationBuckets: [Double] = [
        0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
    ]
    static let batchRowBuckets: [Double] = [1, 8, 64, 256, 1024, 4096, 16384, 65536, 262_144]
    /// Method labels are bounded: anything else is `other`.
    static let knownMethods: Set<String> = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]

    let registry: PrometheusRegistry
    /// Where the families every exchange touches sit in the registry.
    private let exchangeFamilies: (requests: Int, duration: Int, requestBytes: Int, responseBytes: Int)

    init(version: String, blas: String, simd: String) {
        let registry = PrometheusRegistry()
        let labels = ["route", "method", "status"]
        registry.declare("lossd_requests_total", .counter, help: "HTTP requests answered, by route pattern, method and status.", labels: labels)
        registry.declare(
            "lossd_request_duration_seconds", .histogram, help: "Time from a request's first byte to its response.",
            labels: ["route", "method"], buckets: Self.durationBuckets)
        registry.declare("lossd_request_bytes_total", .counter, help: "Request bytes received (head and body).", labels: ["route", "method"])
        registry.declare("lossd_response_bytes_total", .counter, help: "Response bytes sent (head and body).", labels: ["route", "method"])
        registry.declare("lossd_open_connections", .gauge, help: "Open client connections.")
        registry.declare("lossd_queue_depth", .gauge, help: "Requests waiting for a handler thread.")
        registry.declare(
            "lossd_inflight_body_bytes", .gauge,
            help: "Bytes requests hold against the memory budget now (bodies and estimated working sets).")
        registry.declare("lossd_inflight_limit_bytes", .gauge, help: "The memory budget for requests (--max-inflight-bytes).")
        registry.declare(
            "lossd_store_entries", .gauge, help: "Documents in the store, by collection (calibrators, scaling_laws).", labels: ["collection"])
        registry.declare(
            "lossd_loss_evaluations_total", .counter, help: "Losses evaluated (each entry of a losses list counts), by loss.",
            labels: ["loss"])
        registry.declare(
            "lossd_batch_rows", .histogram, help: "Rows (N) of each loss evaluation's batch.", buckets: Self.batchRowBuckets)
        registry.declare("lossd_build_info", .gauge, help: "Build information; the value is always 1.", labels: ["version", "blas", "simd"])
        registry.set("lossd_build_info", [version, blas, simd], 1)
        self.registry = registry
        func position(_ name: String) -> Int {
            guard let position = registry.position(of: name) else { preconditionFailure("\(name) is declared above") }
            return position
        }
        exchangeFamilies = (
            position("lossd_requests_total"), position("lossd_request_duration_seconds"),
            position("lossd_request_bytes_total"), position("lossd_response_bytes_total"))
    }

    /// Records one exchange. `route` is the matched pattern (never the raw path).
    func record(route: String, method: String?, status: Int, bytesIn: Int, bytesOut: Int, seconds: Double) {
        let method = method.map { Self.knownMethods.contains($0) ? $0 : "other" } ?? "none"
        let labels = [route, method]
        let positions = exchangeFamilies
        // One lock for the four samples (this runs on an I/O thread for every response).
        registry.update { state in
            state.add(positions.requests, labels + [String(status)])
            state.observe(positions.duration, labels, max(0, seconds))
            state.add(positions.requestBytes, labels, Double(bytesIn))
            state.add(positions.responseBytes, labels, Double(bytesOut))
        }
    }

    /// One loss evaluated over `rows` rows.
    func recordLoss(_ name: String, rows: Int) {
        registry.add("lossd_loss_evaluations_total", [name])
        registry.observe("lossd_batch_rows", [], Double(rows))
    }

    /// The exposition, the server's `gauges` (read by the caller from the request's
    /// context) set first; `storeEntries` (nil: unknown, the store is unreachable) gives a
    /// `lossd_store_entries` sample for each of `collections`.
    func render(gauges now: ServerGauges, storeEntries: [String: Int]?, collections: [String]) -> String {
        registry.set("lossd_open_connections", [], Double(now.openConnections))
        registry.set("lossd_queue_depth", [], Double(now.queueDepth))
        registry.set("lossd_inflight_body_bytes", [], Double(now.inflightBytes))
        registry.set("lossd_inflight_limit_bytes", [], Double(now.inflightLimit))
        if let storeEntries {
            for collection in collections {
                registry.set("lossd_store_entries", [collection], Double(storeEntries[collection] ?? 0))
            }
        }
        return registry.render() + (ProcessMetrics.sample()?.exposition ?? "")
    }
}
