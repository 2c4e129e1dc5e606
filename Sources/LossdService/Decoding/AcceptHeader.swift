/// Content negotiation on `Accept` (RFC 9110 §12.5.1), as far as lossd needs it: whether
/// one media type is acceptable (q > 0) and ranked at least as high as JSON.
enum AcceptHeader {
    /// Whether `accept` lists `type` with q > 0 at a weight no lower than any JSON range
    /// (`application/json`, `application/*`). A wildcard `*/*` alone never selects it.
    static func prefers(_ type: String, _ accept: String?) -> Bool {
        guard let accept else { return false }
        var wanted = -1.0, json = -1.0
        for range in accept.split(separator: ",") {
            let parts = range.split(separator: ";").map { String($0).trimmingOWS().lowercased() }
            guard let media = parts.first else { continue }
            var q = 1.0
            for part in parts.dropFirst() where part.hasPrefix("q=") {
                q = Double(part.dropFirst(2)) ?? 1
            }
            if media == type { wanted = max(wanted, q) }
            if media == "application/json" || media == "application/*" { json = max(json, q) }
        }
        return wanted > 0 && wanted >= json
    }
}
