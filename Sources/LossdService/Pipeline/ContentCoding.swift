import LossdHTTP

/// `Content-Encoding` of request bodies: which codings the API takes (identity and gzip)
/// and undoing them within a limit. Used only by the pipeline's `ContentDecoding`.
enum ContentCoding {
    /// 415 for a Content-Encoding other than gzip or identity (from the head alone).
    static func check(_ headers: HTTPHeaders) throws(ServiceError) {
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
    static func decoded(
        _ request: HTTPRequest, maxInflatedBytes: Int, charge: MemoryCharge? = nil
    ) throws(ServiceError) -> HTTPRequest {
        guard request.headers["content-encoding"] != nil else { return request }
        var plain = request
        plain.body = try body(of: request, maxInflatedBytes: maxInflatedBytes, charge: charge)
        plain.head.headers.remove(name: "Content-Encoding")
        return plain
    }

    /// The body with its Content-Encoding undone: identity, or gzip inflated within the limit.
    private static func body(
        of request: HTTPRequest, maxInflatedBytes: Int, charge: MemoryCharge?
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
}
