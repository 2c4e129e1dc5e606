import LossdHTTP
import LossdJSON

/// Reads a request body as a JSON object, enforcing the API's content rules: JSON is
/// accepted as `application/json`, `application/x-www-form-urlencoded` (curl -d) or no
/// Content-Type, and as the `request` part of `multipart/form-data` whose other parts are
/// `.npy` tensors that override the same-named fields; other types get 415. The body is
/// plain: its Content-Encoding was undone by the pipeline's `ContentDecoding`. Malformed
/// JSON or multipart gets 400.
enum RequestBody {
    static let jsonTypes = ["application/json", "application/x-www-form-urlencoded"]
    static let multipartType = "multipart/form-data"

    /// The JSON object of a routed request (its content coding already undone).
    static func object(_ route: RouteRequest) throws(ServiceError) -> JSONObject {
        try object(route.request)
    }

    static func object(_ request: HTTPRequest) throws(ServiceError) -> JSONObject {
        let isMultipart = try checkContentType(request.headers)
        let body = request.body
        guard isMultipart, let contentType = request.headers["content-type"] else { return try parseObject(body[...]) }

        let parts = try Multipart.parse(body, boundary: Multipart.boundary(fromContentType: contentType))
        guard let jsonPart = parts.first(where: { $0.name == "request" }) else {
            throw Multipart.malformed("there is no part named request holding the JSON body")
        }
        var object = try parseObject(jsonPart.body)
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
        if contentType == "application/json" { return false }  // the usual one, without splitting
        let mediaType = contentType.split(separator: ";").first.map { String($0).trimmingOWS().lowercased() } ?? ""
        let isMultipart = mediaType == multipartType
        guard isMultipart || jsonTypes.contains(mediaType) || mediaType.hasSuffix("+json") else {
            throw ServiceError(
                status: .unsupportedMediaType, code: "unsupported_media_type",
                detail: "Content-Type \(mediaType) is not supported; send application/json or multipart/form-data")
        }
        return isMultipart
    }

    /// The body's JSON object, parsed in place (a whole body, or a multipart part's slice of one).
    private static func parseObject(_ body: ArraySlice<UInt8>) throws(ServiceError) -> JSONObject {
        let parsed: Result<JSONNode, JSONSyntaxError>? = body.withUnsafeBufferPointer { bytes in
            guard !bytes.isEmpty else { return nil }
            do throws(JSONSyntaxError) {
                return .success(try JSONReader.parse(bytes))
            } catch {
                return .failure(error)
            }
        }
        let node: JSONNode
        switch parsed {
        case nil:
            throw ServiceError(status: .badRequest, code: "invalid_json", detail: "the request body is empty; send a JSON object")
        case .failure(let error):
            throw ServiceError(status: .badRequest, code: "invalid_json", detail: "malformed JSON: \(error)")
        case .success(let value):
            node = value
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
