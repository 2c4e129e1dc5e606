import LossdJSON

/// Members that several endpoints read the same way, kept in one place so that the routes
/// answer identical 422s (same field, same sentence) for the same mistake.
enum RequestMembers {
    /// The request object of a routed request with its members checked against `allowed`
    /// (plus the output-encoding fields every JSON route takes), and the output encoding it
    /// asks for. `place` names the request in messages ("an ensemble request").
    static func checkedBody(
        _ route: RouteRequest, allowed: [String], place: String
    ) throws(ServiceError) -> (body: JSONObject, output: OutputEncoding) {
        let body = try RequestBody.object(route)
        try StrictFields.check(body, allowed: allowed + OutputEncoding.fields, pointer: "", place: place)
        return (body, try OutputEncoding(body, for: route))
    }

    /// The required `method` member: a string naming a record of `catalogue` (listed, with a
    /// near-miss suggestion, when the value is not one of them).
    static func method<Record>(_ body: JSONObject, in catalogue: Catalogue<Record>) throws(ServiceError) -> Record {
        guard let node = body["method"], !node.isNull else { throw ServiceError.missing("method") }
        return try catalogue.record(node) { _, suggestion in
            ServiceError.invalid(
                .invalidParam, field: "/method",
                "`method` must be one of \(catalogue.names.joined(separator: ", ")) (got \(ResolvedParameters.text(node)))" + suggestion)
        }
    }

    /// The optional `params` member: nil when absent or null, else the object it must be.
    static func params(_ body: JSONObject) throws(ServiceError) -> JSONObject? {
        switch body["params"] {
        case nil, .null?: return nil
        case .object(let object)?: return object
        default: throw ServiceError.invalid(.invalidParam, field: "/params", "`params` must be an object")
        }
    }
}
