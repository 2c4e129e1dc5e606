/// Content negotiation on `Accept` and `Accept-Encoding` (RFC 9110 §12.5): lists of
/// members with optional q-values.
enum AcceptHeader {
    /// The members of comma-separated header values, lowercased, each with its q-value: 1
    /// when absent, `unparsedQ` when present but not a number.
    static func ranked(_ values: [String], unparsedQ: Double) -> [(member: String, q: Double)] {
        var result: [(member: String, q: Double)] = []
        for element in values.flatMap({ $0.split(separator: ",") }) {
            let pieces = element.split(separator: ";").map { String($0).trimmingOWS().lowercased() }
            guard let member = pieces.first, !member.isEmpty else { continue }
            var q = 1.0
            for parameter in pieces.dropFirst() where parameter.hasPrefix("q=") {
                q = Double(parameter.dropFirst(2)) ?? unparsedQ
            }
            result.append((member, q))
        }
        return result
    }

    /// Whether `accept` lists `type` with q > 0 at a weight no lower than any JSON range
    /// (`application/json`, `application/*`). A wildcard `*/*` alone never selects it.
    static func prefers(_ type: String, _ accept: String?) -> Bool {
        guard let accept else { return false }
        var wanted = -1.0, json = -1.0
        for (media, q) in ranked([accept], unparsedQ: 1) {
            if media == type { wanted = max(wanted, q) }
            if media == "application/json" || media == "application/*" { json = max(json, q) }
        }
        return wanted > 0 && wanted >= json
    }
}
