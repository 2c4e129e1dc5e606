import LossdHTTP
import LossdJSON

/// Reads a request body as a JSON object, enforcing the API's content rules: JSON is
/// accepted as `application/json`, `application/x-www-form-urlencoded` (curl -d) or no
/// Content-Type, and as the `request` part of `multipart/form-data` whose other parts are
/// `.npy` tensors that override the same-named fields; other types get 415. The body may be
/// `Content-Encoding: gzip` (inflated to at most `maxInflatedBytes`, else 413); other
/// codings get 415. Malformed JSON, gzip or multipart gets 400.
enum RequestBody {
    static let jsonTypes = ["application/json", "application/x-www-form-urlencoded"]
    static let multipartType = "multipart/form-data"
    /// The most a gzip body may inflate to when no limit is configured: the server's default body limit.
    static let maxInflatedBytes = HTTPParserLimits.defaultMaxBodyBytes

    /// The JSON object of a routed request, whose content coding the service has undone.
    static func object(_ route: RouteRequest) throws(ServiceError) -> JSONObject {
        try object(route.request)
    }

    static func object(_ request: HTTPRequest, maxInflatedBytes: Int = maxInflatedBytes) throws(ServiceError) -> JSONObject {
        let isMultipart = try checkContentType(request.headers)
        let body = try decoded(request, maxInflatedBytes: maxInflatedBytes, charge: nil)
        guard isMultipart, let contentType = request.headers["content-type"] else { return try parseObject(body) }

        let parts = try Multipart.parse(body, boundary: Multipart.boundary(fromContentType: contentType))
        guard let jsonPart = parts.first(where: { $0.name == "request" }) else {
            throw Multipart.malformed("there is no part named request holding the JSON body")
        }
        var object = try parseObject(Array(jsonPart.body))
        for part in parts where part.name != "request" {
            let tensor = try NPY.read(part.body, field: part.name)
            if let index = object.members.firstIndex(where: { $0.key == part.name }) {
                object.members[index].value = tensor
            } else {
                object.members.append((key: part.name, value: tensor))
            }
        }
        return object
    }

    /// Whether `headers` announce multipart; 415 for a media type the API does not take.
    /// Also run on the head alone, before the body is read.
    @discardableResult
    static func checkContentType(_ headers: HTTPHeaders) throws(ServiceError) -> Bool {
        guard let contentType = headers["content-type"] else { return false }
        let mediaType = contentType.split(separator: ";").first.map { String($0).trimmingOWS().lowercased() } ?? ""
        let isMultipart = mediaType == multipartType
        guard isMultipart || jsonTypes.contains(mediaType) || mediaType.hasSuffix("+json") else {
            throw ServiceError(
                status: .unsupportedMediaType, code: "unsupported_media_type",
                detail: "Content-Type \(mediaType) is not supported; send application/json or multipart/form-data")
        }
        return isMultipart
    }

    /// 415 for a Content-Encoding other than gzip or identity (from the head alone).
    static func checkContentEncoding(_ headers: HTTPHeaders) throws(ServiceError) {
        guard let encoding = headers["content-encoding"] else { return }
        for coding in encoding.split(separator: ",").map({ String($0).trimmingOWS().lowercased() })
        where !coding.isEmpty && !["identity", "gzip", "x-gzip"].contains(coding) {
            throw unsupportedEncoding(coding)
        }
    }

    private static func unsupportedEncoding(_ coding: String) -> ServiceError {
        ServiceError(
            status: .unsupportedMediaType, code: "unsupported_media_type",
            detail: "Content-Encoding \(coding) is not supported; send gzip or identity")
    }

    /// The request with its Content-Encoding undone (and the header removed), so that the
    /// body handlers read is the plain one. The inflated bytes are charged to `charge` as
    /// they grow (413 or 503 when the memory budget cannot hold them).
    static func contentDecoded(
        _ request: HTTPRequest, maxInflatedBytes: Int, charge: MemoryCharge? = nil
    ) throws(ServiceError) -> HTTPRequest {
        guard request.headers["content-encoding"] != nil else { return request }
        var plain = request
        plain.body = try decoded(request, maxInflatedBytes: maxInflatedBytes, charge: charge)
        plain.head.headers.remove(name: "Content-Encoding")
        return plain
    }

    /// The body with its Content-Encoding undone: identity, or gzip inflated within the limit.
    private static func decoded(
        _ request: HTTPRequest, maxInflatedBytes: Int, charge: MemoryCharge?
    ) throws(ServiceError) -> [UInt8] {
        guard let encoding = request.headers["content-encoding"] else { return request.body }
        var body = request.body
        let codings = encoding.split(separator: ",").map { String($0).trimmingOWS().lowercased() }.filter { !$0.isEmpty }
        for coding in codings.reversed() {
            switch coding {
            case "identity":
                continue
            case "gzip", "x-gzip":
                var refusal: MemoryChargeRefusal?
                do throws(Gzip.InflateError) {
                    body = try Gzip.inflate(body, limit: maxInflatedBytes) { grown in
                        guard let charge else { return true }
                        do throws(MemoryChargeRefusal) {
                            try charge.reserve(grown)
                            return true
                        } catch {
                            refusal = error
                            return false
                        }
                    }
                } catch {
                    switch error {
                    case .tooLarge:
                        throw ServiceError(
                            status: .contentTooLarge, code: "content_too_large",
                            detail: "the gzip body inflates to more than \(maxInflatedBytes) bytes")
                    case .overBudget:
                        throw WorkingSet.refusal(refusal ?? .notNow(needed: 0, limit: 0), what: "the inflated gzip body")
                    case .malformed(let detail):
                        throw ServiceError(status: .badRequest, code: "malformed_request", detail: detail)
                    }
                }
            default:
                throw unsupportedEncoding(coding)
            }
        }
        return body
    }

    private static func parseObject(_ body: [UInt8]) throws(ServiceError) -> JSONObject {
        guard !body.isEmpty else {
            throw ServiceError(status: .badRequest, code: "invalid_json", detail: "the request body is empty; send a JSON object")
        }
        let node: JSONNode
        do {
            node = try JSONReader.parse(body)
        } catch {
            throw ServiceError(status: .badRequest, code: "invalid_json", detail: "malformed JSON: \(error)")
        }
        guard case .object(let object) = node else {
            throw ServiceError(status: .badRequest, code: "invalid_json", detail: "the request body must be a JSON object, not \(node.typeName)")
        }
        return object
    }
}

extension String {
    func trimmingOWS() -> String {
        var s = Substring(self)
        while let f = s.first, f == " " || f == "\t" { s.removeFirst() }
        while let l = s.last, l == " " || l == "\t" { s.removeLast() }
        return String(s)
    }
}
