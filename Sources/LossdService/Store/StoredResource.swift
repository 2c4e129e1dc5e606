import LossdJSON
import LossdHTTP
import LossdStore

/// A kind of document clients keep in the store by name: fitted calibrators, fitted
/// scaling laws. One conformance gives a kind its routes (`StoredRoutes`): `GET {path}`
/// lists, `GET|PUT|DELETE {path}/{name}` read, write and delete with the store's ETag
/// rules (`If-Match`, `If-None-Match`, 304, 412), and fits can store their result under a
/// `name`. The store itself needs nothing: a collection is just a key.
protocol StoredResource {
    /// The store's collection (stable across releases): `calibrators`, `scaling_laws`.
    static var collection: String { get }
    /// What one document is called in messages: `calibrator`, `scaling law`.
    static var noun: String { get }
    /// The collection's path: `/v1/calibrators`.
    static var path: String { get }
    /// The member of the listing that holds the summaries: `calibrators`, `laws`.
    static var listMember: String { get }
    /// Names a document cannot have because they are route segments beside
    /// `{path}/{name}` (`fit` for calibrators); `.` and `..` never can.
    static var reservedNames: Set<String> { get }
    /// One line of the listing.
    static func summary(_ summary: DocumentSummary) -> JSONValue
    /// A PUT's body checked and turned into the document to store under `name` (fields
    /// are JSON pointers into the body); its `json` is also the PUT's answer.
    static func document(named name: String, from body: JSONObject) throws(ServiceError) -> StoredDocument
}

extension StoredResource {
    static var reservedNames: Set<String> { [] }

    /// Names of stored documents: `[A-Za-z0-9._-]{1,64}`, not `.`, `..` nor a reserved
    /// name (a client resolves `/v1/calibrators/..` to another path; `fit` is the fit
    /// route's own segment).
    static func isValidName(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        guard (1...64).contains(bytes.count), name != ".", name != "..", !reservedNames.contains(name) else { return false }
        return bytes.allSatisfy { b in
            (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A)
                || b == UInt8(ascii: ".") || b == UInt8(ascii: "_") || b == UInt8(ascii: "-")
        }
    }

    /// 422 unless `name` is valid; `field` is its pointer in the body (nil: in the path).
    static func checkName(_ name: String, field: String?) throws(ServiceError) {
        guard isValidName(name) else {
            let shown = name.utf8.count > 80 ? String(decoding: Array(name.utf8.prefix(80)), as: UTF8.self) + "…" : name
            let forbidden = ([".", ".."] + reservedNames.sorted()).map { "`\($0)`" }
            let list = forbidden.dropLast().joined(separator: ", ") + " or " + forbidden[forbidden.count - 1]
            throw ServiceError.invalid(
                .invalidParam, field: field, "\(noun) name `\(shown)` must match [A-Za-z0-9._-]{1,64} and not be \(list)")
        }
    }

    /// The optional `name` member of a fit request: nil when absent or null.
    static func optionalName(in body: JSONObject) throws(ServiceError) -> String? {
        switch body["name"] {
        case nil, .null?: return nil
        case .string(let text)?:
            try checkName(text, field: "/name")
            return text
        case let other?:
            throw ServiceError.invalid(.invalidParam, field: "/name", "`name` must be a string (got \(ResolvedParameters.text(other)))")
        }
    }

    /// The document's path, its name percent-encoded (RFC 3986 unreserved bytes stay;
    /// valid names never need it, but the header must never carry a raw path character).
    static func location(_ name: String) -> String {
        var encoded = ""
        for byte in name.utf8 {
            let unreserved = (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
                || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "_") || byte == UInt8(ascii: "~")
                || (byte == UInt8(ascii: ".") && name != "." && name != "..")
            if unreserved {
                encoded.unicodeScalars.append(Unicode.Scalar(byte))
            } else {
                encoded += "%" + String(byte >> 4, radix: 16, uppercase: true) + String(byte & 0xF, radix: 16, uppercase: true)
            }
        }
        return path + "/" + encoded
    }

    /// Now, as RFC 3339 UTC with milliseconds: `2026-11-29T21:13:05.123Z`.
    static func timestamp() -> String { RFC3339.now() }

    /// A PUT body's optional `fitted_on`: the rows (or points) the document was fitted to.
    static func fittedOn(in body: JSONObject) throws(ServiceError) -> Int? {
        switch body["fitted_on"] {
        case nil, .null?: return nil
        case .number(let v)? where v.isFinite && v == v.rounded() && v >= 0 && v < 9e15: return Int(v)
        case let other?:
            throw ServiceError.invalid(
                .invalidParam, field: "/fitted_on", "`fitted_on` must be a non-negative integer (got \(ResolvedParameters.text(other)))")
        }
    }

    static func notFound(_ name: String) -> ServiceError {
        ServiceError.notFound("no \(noun) named `\(name)`")
    }

    /// 412: the `If-Match` / `If-None-Match` of a write did not hold for the stored
    /// revision; nothing was written.
    static func preconditionFailed(_ name: String, current: Int64?) -> ServiceError {
        let state = current.map { "is at ETag \(EntityTag.header(for: $0))" } ?? "does not exist"
        return ServiceError(
            status: HTTPStatus(code: 412), code: "precondition_failed",
            detail: "the preconditions of the request do not hold: \(noun) `\(name)` \(state)")
    }

    /// 500 for a stored document this lossd cannot read back.
    static func unreadable(_ name: String, _ detail: String) -> ServiceError {
        ServiceError(status: .internalServerError, code: "internal", detail: "\(noun) `\(name)` cannot be read: \(detail)")
    }

    /// A stored document's JSON object (500 if the text is not one).
    static func object(of stored: StoredDocument) throws(ServiceError) -> JSONObject {
        let node: JSONNode
        do {
            node = try JSONReader.parse(Array(stored.json.utf8))
        } catch {
            throw unreadable(stored.name, "its stored document is not valid JSON")
        }
        guard case .object(let object) = node else { throw unreadable(stored.name, "its stored document is not an object") }
        return object
    }
}
