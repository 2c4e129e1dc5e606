extension AggregateEndpoint {
    /// `POST /v1/aggregate`: heavy, as its iterative methods' cost is not bounded by the body.
    static func register(on router: inout Router) {
        router.add("POST", "/v1/aggregate", cost: .heavy) { route throws(ServiceError) in try respond(route) }
    }
}
