#if canImport(Glibc)
    import Glibc
#endif

/// A strict `multipart/form-data` parser (RFC 7578): the boundary from the Content-Type,
/// CRLF line ends, part headers of bounded size, a `form-data` Content-Disposition with a
/// name on every part, unique names and a bounded number of parts. Malformed bodies are 400.
enum Multipart {
    struct Part {
        var name: String
        var contentType: String?
        var body: ArraySlice<UInt8>
    }

    static let maxParts = 64
    static let maxPartHeaderBytes = 8 << 10

    static func malformed(_ detail: String) -> ServiceError {
        ServiceError(status: .badRequest, code: "malformed_request", detail: "malformed multipart/form-data body: \(detail)")
    }

    /// The `boundary` parameter of a multipart Content-Type.
    static func boundary(fromContentType contentType: String) throws(ServiceError) -> [UInt8] {
        for parameter in contentType.split(separator: ";").dropFirst() {
            let pair = parameter.split(separator: "=", maxSplits: 1)
            guard pair.count == 2, String(pair[0]).trimmingOWS().lowercased() == "boundary" else { continue }
            var value = String(pair[1]).trimmingOWS()
            if value.count >= 2, value.hasPrefix("\""), value.hasSuffix("\"") { value = String(value.dropFirst().dropLast()) }
            guard (1...70).contains(value.utf8.count), value.utf8.allSatisfy({ $0 >= 0x20 && $0 < 0x7F }), value.last != " " else {
                throw malformed("the boundary must be 1 to 70 printable characters")
            }
            return Array(value.utf8)
        }
        throw malformed("the Content-Type has no boundary parameter")
    }

    static func parse(_ body: [UInt8], boundary: [UInt8]) throws(ServiceError) -> [Part] {
        let dashBoundary = Array("--".utf8) + boundary
        let delimiter = Array("\r\n".utf8) + dashBoundary
        // The first boundary starts the body or follows a preamble line.
        var position: Int
        if body.starts(with: dashBoundary) {
            position = dashBoundary.count
        } else if let found = find(delimiter, in: body, from: 0) {
            position = found + delimiter.count
        } else {
            throw malformed("no boundary line found")
        }
        var parts: [Part] = []
        var names = Set<String>()
        while true {
            // After a boundary: "--" closes the body, else optional whitespace and CRLF.
            if body[position...].starts(with: Array("--".utf8)) { break }
            while position < body.count, body[position] == 0x20 || body[position] == 0x09 { position += 1 }
            guard body[position...].starts(with: [0x0D, 0x0A]) else { throw malformed("a boundary line is not followed by CRLF") }
            position += 2
            guard parts.count < maxParts else { throw malformed("more than \(maxParts) parts") }

            let headerWindow = body[position..<min(body.count, position + maxPartHeaderBytes + 4)]
            let headerEnd: Int
            if headerWindow.starts(with: [0x0D, 0x0A]) {
                headerEnd = position
            } else if let end = find([0x0D, 0x0A, 0x0D, 0x0A], in: body, from: position, before: headerWindow.endIndex) {
                headerEnd = end + 2
            } else {
                throw malformed("part headers are unterminated or longer than \(maxPartHeaderBytes) bytes")
            }
            var part = try headers(body[position..<headerEnd])
            guard names.insert(part.name).inserted else { throw malformed("two parts are named \(part.name)") }
            let contentStart = headerEnd + 2
            guard let end = find(delimiter, in: body, from: contentStart) else { throw malformed("the closing boundary is missing") }
            part.body = body[contentStart..<end]
            parts.append(part)
            position = end + delimiter.count
        }
        return parts
    }

    /// Parses the CRLF-terminated header lines of one part.
    private static func headers(_ bytes: ArraySlice<UInt8>) throws(ServiceError) -> Part {
        var name: String?
        var contentType: String?
        let text = String(decoding: bytes, as: UTF8.self)
        for line in text.split(separator: "\r\n", omittingEmptySubsequences: true) {
            guard let colon = line.firstIndex(of: ":"), colon != line.startIndex, !line[..<colon].contains(where: \.isWhitespace) else {
                throw malformed("bad part header line")
            }
            let field = line[..<colon].lowercased()
            let value = String(line[line.index(after: colon)...]).trimmingOWS()
            switch field {
            case "content-disposition":
                let pieces = value.split(separator: ";").map { String($0).trimmingOWS() }
                guard pieces.first?.lowercased() == "form-data" else { throw malformed("a part's Content-Disposition is not form-data") }
                for piece in pieces.dropFirst() {
                    let pair = piece.split(separator: "=", maxSplits: 1).map(String.init)
                    guard pair.count == 2, pair[0].trimmingOWS().lowercased() == "name" else { continue }
                    var value = pair[1].trimmingOWS()
                    if value.count >= 2, value.hasPrefix("\""), value.hasSuffix("\"") { value = String(value.dropFirst().dropLast()) }
                    name = value
                }
            case "content-type":
                contentType = value
            default:
                break
            }
        }
        guard let name, !name.isEmpty else { throw malformed("a part has no Content-Disposition name") }
        return Part(name: name, contentType: contentType, body: [])
    }

    /// The index of the first occurrence of `needle` in `haystack` at or after `start`
    /// (and ending by `limit`): `memchr` (vectorised) finds each candidate first byte and
    /// `memcmp` checks the rest, so finding the closing boundary after a megabyte `.npy`
    /// part costs a memory scan, not a byte loop.
    static func find(_ needle: [UInt8], in haystack: [UInt8], from start: Int, before limit: Int? = nil) -> Int? {
        let end = min(haystack.count, limit ?? haystack.count)
        guard let first = needle.first, start >= 0, end - start >= needle.count else { return nil }
        return haystack.withUnsafeBufferPointer { h -> Int? in
            needle.withUnsafeBufferPointer { n -> Int? in
                guard let base = h.baseAddress, let pattern = n.baseAddress else { return nil }
                var position = start
                let lastStart = end - n.count
                while position <= lastStart {
                    guard let hit = memchr(base + position, Int32(first), lastStart - position + 1) else { return nil }
                    let index = UnsafePointer(hit.assumingMemoryBound(to: UInt8.self)) - base
                    if memcmp(base + index, pattern, n.count) == 0 { return index }
                    position = index + 1
                }
                return nil
            }
        }
    }
}
