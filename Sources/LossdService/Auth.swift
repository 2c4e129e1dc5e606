import LossdHTTP

/// Bearer-token check for the `/v1` routes when an API key is configured.
enum Auth {
    /// Whether `path` needs the key: `/v1` and everything under it. `/healthz`, `/readyz`,
    /// `/metrics` and `/openapi.yaml` stay open.
    static func isProtected(_ path: String) -> Bool {
        path == "/v1" || path.hasPrefix("/v1/")
    }

    /// Nil when the request may proceed; else the 401 to answer with.
    static func check(path: String, headers: HTTPHeaders, key: String?) -> HTTPResponse? {
        guard let key, !key.isEmpty, isProtected(path) else { return nil }
        // Two credentials are ambiguous (which one would a proxy, a log or a cache use?).
        guard headers.values(named: "authorization").count <= 1 else {
            return ServiceError(
                status: .badRequest, code: "malformed_request", detail: "more than one Authorization header"
            ).response
        }
        guard let header = headers["authorization"], let token = bearerToken(header) else {
            return unauthorized("this endpoint needs an `Authorization: Bearer <key>` header", challenge: #"Bearer realm="lossd""#)
        }
        guard constantTimeEquals(token, key) else {
            return unauthorized(
                "the bearer token is not valid", challenge: #"Bearer realm="lossd", error="invalid_token""#)
        }
        return nil
    }

    /// The token of a `Bearer` credential (scheme case-insensitive, RFC 6750 section 2.1).
    static func bearerToken(_ header: String) -> String? {
        let trimmed = header.drop { $0 == " " || $0 == "\t" }
        guard trimmed.count > 7, trimmed.prefix(6).lowercased() == "bearer",
            let separator = trimmed.dropFirst(6).first, separator == " " || separator == "\t"
        else { return nil }
        var token = trimmed.dropFirst(7).drop { $0 == " " || $0 == "\t" }
        while let last = token.last, last == " " || last == "\t" { token = token.dropLast() }
        return token.isEmpty ? nil : String(token)
    }

    /// Compares two secrets in time that depends only on the length of `given`, never on
    /// where the first differing byte is.
    static func constantTimeEquals(_ given: String, _ expected: String) -> Bool {
        let a = Array(given.utf8), b = Array(expected.utf8)
        guard !b.isEmpty else { return a.isEmpty }
        var difference: UInt8 = a.count == b.count ? 0 : 1
        for i in 0..<a.count {
            difference |= a[i] ^ b[i % b.count]
        }
        return difference == 0
    }

    private static func unauthorized(_ detail: String, challenge: String) -> HTTPResponse {
        var error = ServiceError(status: .unauthorized, code: "unauthorized", detail: detail)
        error.headers = [("WWW-Authenticate", challenge)]
        return error.response
    }
}
