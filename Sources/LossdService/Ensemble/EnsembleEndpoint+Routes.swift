extension EnsembleEndpoint {
    /// `POST /v1/ensemble`.
    static func register(on router: inout Router) {
        router.add("POST", "/v1/ensemble", cost: .compute) { route throws(ServiceError) in try respond(route) }
    }
}
