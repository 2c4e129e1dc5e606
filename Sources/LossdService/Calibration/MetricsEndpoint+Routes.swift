extension MetricsEndpoint {
    /// `POST /v1/metrics` and `POST /v1/reliability`.
    static func register(on router: inout Router) {
        router.add("POST", "/v1/metrics", cost: .compute) { route throws(ServiceError) in try metrics(route) }
        router.add("POST", "/v1/reliability", cost: .compute) { route throws(ServiceError) in try reliability(route) }
    }
}
