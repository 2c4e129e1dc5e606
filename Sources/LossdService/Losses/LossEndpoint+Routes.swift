extension LossEndpoint {
    /// `GET /v1/losses` (the catalogue, inline) and `POST /v1/loss`.
    static func register(on router: inout Router, metrics: ServiceMetrics) {
        router.add("GET", "/v1/losses", cost: .inline) { _ throws(ServiceError) in listLosses() }
        router.add("POST", "/v1/loss", cost: .compute) { route throws(ServiceError) in try evaluate(route, metrics: metrics) }
    }
}
