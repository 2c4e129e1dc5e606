import LossdHTTP
import LossdJSON

/// Reads a request body as a JSON object, enforcing the API's content rules: JSON is
/// accepted as `application/json`, `application/x-www-form-urlencoded` (curl -d) or no
/// Content-Type; other types get 415; malformed JSON gets 400 with where it broke.
enum RequestBody {
    static let jsonTypes = ["application/json", "application/x-www-form-urlencoded"]

    static func object(_ request: HTTPRequest) throws(ServiceError) -> JSONObject {
        if let contentType = request.headers["content-type"] {
            let mediaType = contentType.split(separator: ";").first.map { String($0).trimmingOWS().lowercased() } ?? ""
            guard jsonTypes.contains(mediaType) || mediaType.hasSuffix("+json") else {
                throw ServiceError(
                    status: .unsupportedMediaType, code: "unsupported_media_type",
                    detail: "Content-Type \(mediaType) is not supported; send application/json")
            }
        }
        if let encoding = request.headers["content-encoding"], encoding.lowercased() != "identity" {
            throw ServiceError(
                status: .unsupportedMediaType, code: "unsupported_media_type",
                detail: "Content-Encoding \(encoding) is not supported")
        }
        guard !request.body.isEmpty else {
            throw ServiceError(status: .badRequest, code: "invalid_json", detail: "the request body is empty; send a JSON object")
        }
        let node: JSONNode
        do {
            node = try JSONReader.parse(request.body)
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
