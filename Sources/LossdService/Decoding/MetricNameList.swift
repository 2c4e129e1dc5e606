import LossdJSON

/// The `metrics` member shared by `/v1/metrics` and `/v1/embedding-metrics`: one reading of
/// the field, so both routes take the same shapes and answer the same 422s for it.
enum MetricNameList {
    /// `metrics` at `/metrics`: nil when absent or null (the caller's default list);
    /// otherwise a non-empty array whose every entry is one of `known`, returned in request
    /// order with repeats kept (each caller decides what a repeat means).
    static func parse(_ node: JSONNode?, known: [String]) throws(ServiceError) -> [String]? {
        let items: [JSONNode]
        switch node {
        case nil, .null?: return nil
        case .array(let array)?: items = array
        case .numbers(let array)? where array.values.isEmpty: items = []
        default:
            throw ServiceError.invalid(.invalidParam, field: "/metrics", "`metrics` must be an array of metric names")
        }
        guard !items.isEmpty else {
            throw ServiceError.invalid(.invalidParam, field: "/metrics", "`metrics` must name at least one metric")
        }
        var names: [String] = []
        names.reserveCapacity(items.count)
        for (i, item) in items.enumerated() {
            guard case .string(let name) = item, known.contains(name) else {
                throw ServiceError.invalid(
                    .invalidParam, field: "/metrics/\(i)",
                    "unknown metric \(ResolvedParameters.text(item))"
                        + StrictFields.suggestion(for: ResolvedParameters.plain(item), among: known)
                        + "; expected one of \(known.joined(separator: ", "))")
            }
            names.append(name)
        }
        return names
    }
}
