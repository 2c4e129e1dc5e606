import LossdHTTP
import LossdKernels

/// A request the service refuses, rendered as RFC 9457 `application/problem+json`.
/// `code` is one of the service's error codes (the `type` is `urn:lossd:error:<code>`; the
/// validation codes are listed in docs/losses.md §1.4),
/// and `field`, when known, is a JSON pointer to the offending request field.
public struct ServiceError: Error, Sendable, Equatable {
    public let status: HTTPStatus
    public let code: String
    public let detail: String
    public let field: String?
    /// Extra response headers (`Allow` on 405, `Retry-After` on 503).
    public var headers: [(String, String)] = []

    public init(status: HTTPStatus, code: String, detail: String, field: String? = nil) {
        self.status = status
        self.code = code
        self.detail = detail
        self.field = field
    }

    public static func == (lhs: ServiceError, rhs: ServiceError) -> Bool {
        lhs.status == rhs.status && lhs.code == rhs.code && lhs.detail == rhs.detail && lhs.field == rhs.field
    }

    /// The fixed title for each code (docs/losses.md §1.4).
    public var title: String {
        ServiceError.titles[code] ?? status.reasonPhrase
    }

    static let titles: [String: String] = [
        "malformed_request": "Malformed HTTP request",
        "invalid_json": "Malformed JSON",
        "not_found": "Not found",
        "method_not_allowed": "Method not allowed",
        "request_timeout": "Request not received in time",
        "content_too_large": "Request body too large",
        "unsupported_media_type": "Unsupported media type",
        "expectation_failed": "Expectation not supported",
        "headers_too_large": "Request headers too large",
        "unsupported_transfer_coding": "Unsupported transfer coding",
        "http_version_not_supported": "HTTP version not supported",
        "overloaded": "Service overloaded",
        "not_ready": "Service not ready",
        "precondition_failed": "Precondition failed",
        "internal": "Internal error",
        "unknown_loss": "Unknown loss",
        "missing_field": "Missing field",
        "invalid_shape": "Invalid shape",
        "non_finite": "Non-finite value",
        "invalid_label": "Invalid label",
        "invalid_target": "Invalid target",
        "invalid_param": "Invalid parameter",
        "invalid_input": "Invalid input",
        "value_overflow": "Value overflow",
        "unknown_field": "Unknown field",
        "store_full": "Calibrator store full",
    ]

    /// The code used for an error the HTTP layer found itself.
    static func code(forTransportStatus status: HTTPStatus) -> String {
        switch status.code {
        case 400: "malformed_request"
        case 404: "not_found"
        case 405: "method_not_allowed"
        case 408: "request_timeout"
        case 413: "content_too_large"
        case 415: "unsupported_media_type"
        case 417: "expectation_failed"
        case 431: "headers_too_large"
        case 501: "unsupported_transfer_coding"
        case 503: "overloaded"
        case 505: "http_version_not_supported"
        default: "internal"
        }
    }

    public var problem: JSONValue {
        var members: [(String, JSONValue)] = [
            ("type", .string("urn:lossd:error:\(code)")),
            ("title", .string(title)),
            ("status", .int(status.code)),
            ("detail", .string(detail)),
        ]
        if let field { members.append(("field", .string(field))) }
        return .object(members)
    }

    public var response: HTTPResponse {
        var headers: HTTPHeaders = ["Content-Type": "application/problem+json"]
        for (name, value) in self.headers { headers.add(name: name, value: value) }
        return HTTPResponse(status: status, headers: headers, body: problem.bytes)
    }

    /// A 422 with one of the validation codes of docs/losses.md §1.4.
    static func invalid(_ code: LossErrorCode, field: String?, _ detail: String) -> ServiceError {
        ServiceError(status: .unprocessableContent, code: code.rawValue, detail: detail, field: field)
    }

    /// A required request field is absent.
    static func missing(_ name: String, pointer: String? = nil) -> ServiceError {
        invalid(.missingField, field: pointer ?? "/\(name)", "`\(name)` is required")
    }

    /// A loss's refusal: 413 for `content_too_large` (a request too large to evaluate),
    /// 422 for the validation codes.
    init(_ error: LossInputError) {
        let status: HTTPStatus = error.code == .contentTooLarge ? .contentTooLarge : .unprocessableContent
        self.init(status: status, code: error.code.rawValue, detail: error.detail, field: error.field)
    }

    /// The same error with its field moved from under `prefix` to under `base`: a stored
    /// model's checks name `/calibrator/...`, which in a PUT body (the model itself) is `/...`.
    func rebasingField(from prefix: String, onto base: String) -> ServiceError {
        guard let field, field == prefix || field.hasPrefix(prefix + "/") else { return self }
        var moved = ServiceError(status: status, code: code, detail: detail, field: base + field.dropFirst(prefix.count))
        moved.headers = headers
        return moved
    }

    public static func notFound(_ detail: String) -> ServiceError {
        ServiceError(status: .notFound, code: "not_found", detail: detail)
    }
}
