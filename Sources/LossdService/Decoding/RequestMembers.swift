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

    /// The required `method` member: a string naming one case of `Method`, whose raw values
    /// are `names` (listed, with a near-miss suggestion, when the value is not one of them).
    static func method<Method: RawRepresentable>(
        _ body: JSONObject, names: [String]
    ) throws(ServiceError) -> Method where Method.RawValue == String {
        guard let node = body["method"], !node.isNull else { throw ServiceError.missing("method") }
        guard case .string(let name) = node, let method = Method(rawValue: name) else {
            throw ServiceError.invalid(
                .invalidParam, field: "/method",
                "`method` must be one of \(names.joined(separator: ", ")) (got \(ResolvedParameters.text(node)))"
                    + StrictFields.suggestion(for: ResolvedParameters.plain(node), among: names))
        }
        return method
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
