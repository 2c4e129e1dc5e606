import CLibPQ
import Dispatch
import Logging
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// The PostgreSQL URL: checks and a printable form without the password.
public enum PostgresURL {
    /// Whether `value` selects the PostgreSQL store (`postgres://` or `postgresql://`).
    public static func isPostgres(_ value: String) -> Bool {
        value.hasPrefix("postgres://") || value.hasPrefix("postgresql://")
    }

    /// Throws `.invalidLocation` (with libpq's reason, without the URL) unless libpq
    /// accepts `url` as a connection URI.
    public static func validate(_ url: String) throws(StoreError) {
        guard isPostgres(url) else {
            throw .invalidLocation(detail: "the PostgreSQL store needs a postgres:// or postgresql:// URL")
        }
        var error: UnsafeMutablePointer<CChar>?
        guard let options = PQconninfoParse(url, &error) else {
            let detail = error.map { String(cString: $0) }?.split(whereSeparator: \.isNewline).joined(separator: " ") ?? "unparsable"
            if let error { PQfreemem(error) }
            // libpq quotes the whole URI in some messages: never pass its password on.
            throw .invalidLocation(detail: "invalid PostgreSQL URL \(redacted(url)): \(scrubbed(detail, url: url))")
        }
        PQconninfoFree(options)
    }

    /// `text` (a libpq message) with `url` and its password, raw or percent-decoded,
    /// replaced: libpq quotes the URI in some messages.
    public static func scrubbed(_ text: String, url: String) -> String {
        var result = text.replacing(url, with: redacted(url))
        for secret in passwords(in: url) where !secret.isEmpty {
            result = result.replacing(secret, with: "***")
            if let decoded = percentDecoded(secret), decoded != secret, !decoded.isEmpty { result = result.replacing(decoded, with: "***") }
        }
        return result
    }

    /// The password texts of `url` as written: the user information's and any `password=`.
    static func passwords(in url: String) -> [String] {
        guard let schemeEnd = url.firstRange(of: "://") else { return [] }
        var rest = Substring(url[schemeEnd.upperBound...])
        var found: [String] = []
        if let q = rest.firstIndex(of: "?") {
            for part in rest[rest.index(after: q)...].split(separator: "&") {
                let pair = part.split(separator: "=", maxSplits: 1)
                if pair.count == 2, pair[0].lowercased() == "password" { found.append(String(pair[1])) }
            }
            rest = rest[..<q]
        }
        if let at = rest.lastIndex(of: "@"), let colon = rest[..<at].firstIndex(of: ":") {
            found.append(String(rest[rest.index(after: colon)..<at]))
        }
        return found
    }

    private static func percentDecoded(_ text: String) -> String? {
        var bytes: [UInt8] = []
        var iterator = Array(text.utf8).makeIterator()
        while let byte = iterator.next() {
            if byte == UInt8(ascii: "%") {
                guard let high = iterator.next(), let low = iterator.next(),
                    let value = UInt8(String(decoding: [high, low], as: UTF8.self), radix: 16)
                else { return nil }
                bytes.append(value)
            } else {
                bytes.append(byte)
            }
        }
        return String(validating: bytes, as: UTF8.self)
    }

    /// `url` with the password (in the user information or a `password=` query
    /// parameter) replaced by `***`, for logs and the start-up summary.
    public static func redacted(_ url: String) -> String {
        guard let schemeEnd = url.firstRange(of: "://") else { return url }
        let scheme = url[..<schemeEnd.upperBound]
        var rest = Substring(url[schemeEnd.upperBound...])
        var query: Substring?
        if let q = rest.firstIndex(of: "?") {
            query = rest[rest.index(after: q)...]
            rest = rest[..<q]
        }
        var result = String(scheme)
        if let at = rest.lastIndex(of: "@") {
            let userInfo = rest[..<at]
            if let colon = userInfo.firstIndex(of: ":") {
                result += userInfo[..<colon] + ":***"
            } else {
                result += userInfo
            }
            result += rest[at...]
        } else {
            result += rest
        }
        if let query {
            let parts = query.split(separator: "&", omittingEmptySubsequences: false).map { part -> String in
                let key = part.split(separator: "=", maxSplits: 1).first.map(String.init) ?? ""
                return key.lowercased() == "password" ? "\(key)=***" : String(part)
            }
            result += "?" + parts.joined(separator: "&")
        }
        return result
    }
}
