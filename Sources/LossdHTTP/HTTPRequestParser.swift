/// Limits the parser enforces while reading a request. Every quantity a client
/// controls is bounded here.
public struct HTTPParserLimits: Sendable {
    /// Request line plus header fields, including line endings (431 beyond it).
    public var maxHeaderBytes: Int = 16 * 1024
    /// Number of header fields (431 beyond it).
    public var maxHeaderCount: Int = 128
    /// The default largest body: 64 MiB.
    public static let defaultMaxBodyBytes = 64 << 20
    /// Decoded body size (413 beyond it).
    public var maxBodyBytes: Int = defaultMaxBodyBytes
    /// One chunk-size line, extensions included (400 beyond it).
    public var maxChunkLineBytes: Int = 1024
    /// Trailer section of a chunked body (431 beyond it).
    public var maxTrailerBytes: Int = 16 * 1024
    /// Empty lines tolerated before a request line (RFC 9112 section 2.2).
    public var maxLeadingEmptyLines: Int = 8

    public init(maxHeaderBytes: Int = 16 * 1024, maxBodyBytes: Int = defaultMaxBodyBytes) {
        self.maxHeaderBytes = maxHeaderBytes
        self.maxBodyBytes = maxBodyBytes
    }
}

/// Why a request could not be parsed; `status` is what the server answers before closing.
public struct HTTPParseError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        case malformed
        case headersTooLarge
        case bodyTooLarge
        case unsupportedTransferCoding
        case unsupportedVersion
    }

    public let kind: Kind
    /// A short explanation safe to show to the client.
    public let reason: String

    public init(_ kind: Kind, _ reason: String) {
        self.kind = kind
        self.reason = reason
    }

    /// The status to answer with. Unsupported codings and versions are the client's
    /// doing, so they get 400 rather than RFC 9110's 501/505: no client input yields a 5xx.
    public var status: HTTPStatus {
        switch kind {
        case .malformed, .unsupportedTransferCoding, .unsupportedVersion: .badRequest
        case .headersTooLarge: .requestHeaderFieldsTooLarge
        case .bodyTooLarge: .contentTooLarge
        }
    }

    public var description: String { "\(status.code): \(reason)" }

    static func malformed(_ reason: String) -> HTTPParseError { HTTPParseError(.malformed, reason) }
}

/// What the parser has found in the bytes given so far.
public enum HTTPParserEvent: Sendable {
    /// The request line and headers are complete and the framing is valid; the body follows.
    case head(HTTPRequestHead)
    /// The whole request, body and trailers included, has arrived.
    case request(HTTPRequest)
}

/// An incremental HTTP/1.1 request parser (RFC 9112) over raw bytes.
///
/// Feed bytes with ``append(_:)`` in pieces of any size and call ``next()`` until it
/// returns nil. Each request yields `.head` once its header section is complete, then
/// `.request` once its body is. Framing is strict: anything a proxy could read
/// differently (conflicting lengths, odd transfer codings, whitespace before a colon,
/// bare CR or LF, obsolete line folding) is an error, after which the connection
/// must be closed.
public struct HTTPRequestParser: Sendable {
    private enum State: Sendable {
        case requestLine
        case headers
        case fixedBody(remaining: Int)
        case chunkSize
        case chunkData(remaining: Int)
        case chunkDataEnd
        case trailers
        case failed(HTTPParseError)
    }

    public let limits: HTTPParserLimits
    private var state: State = .requestLine
    private var buffer: [UInt8] = []
    /// Index of the first byte not yet consumed.
    private var readIndex = 0
    /// Where to resume looking for a line feed, so byte-at-a-time input stays linear.
    private var scanIndex = 0

    // The request being assembled.
    private var headBytes = 0
    private var leadingEmptyLines = 0
    private var method = ""
    private var target = ""
    private var version = HTTPVersion.http1_1
    private var headers = HTTPHeaders()
    private var head: HTTPRequestHead?
    /// A chunked body grows by appending. A Content-Length body is allocated at its full
    /// length when its first byte is stored (after the server has admitted the head against
    /// its memory budget) and filled in place: by copying what `append` buffered, or by the
    /// socket itself through `receiveBody`.
    private var body: [UInt8] = []
    private var trailers = HTTPHeaders()
    private var trailerBytes = 0

    public init(limits: HTTPParserLimits = HTTPParserLimits()) {
        self.limits = limits
    }

    /// The method and target of the request being read, once its request line is complete
    /// and until the request is: a request rejected after its request line (413 from its
    /// `Content-Length`, say) can still be attributed in logs and metrics.
    public var currentRequestLine: (method: String, target: String)? {
        method.isEmpty ? nil : (method, target)
    }

    /// Bytes received but not yet consumed by a complete request.
    public var bufferedByteCount: Int { buffer.count - readIndex }

    /// Whether the parser sits between requests with nothing of the next one seen yet.
    public var isIdle: Bool {
        if case .requestLine = state, headBytes == 0, bufferedByteCount == 0 { return true }
        return false
    }

    /// Whether the head of the current request is complete and its body is being read.
    public var isReadingBody: Bool {
        switch state {
        case .fixedBody, .chunkSize, .chunkData, .chunkDataEnd, .trailers: true
        default: false
        }
    }

    /// Adds received bytes.
    public mutating func append<C: Collection>(_ bytes: C) where C.Element == UInt8 {
        compactIfWorthwhile()
        buffer.append(contentsOf: bytes)
    }

    public mutating func append(_ bytes: UnsafeRawBufferPointer) {
        compactIfWorthwhile()
        // A typed view takes Array's memcpy path; raw buffers are appended byte by byte.
        buffer.append(contentsOf: bytes.assumingMemoryBound(to: UInt8.self))
    }

    /// Receives straight into the body being read, so its bytes are written once: when a
    /// Content-Length body is incomplete and nothing is buffered ahead of it, `receive` gets
    /// the body's missing bytes (never more, so it cannot read into a pipelined request)
    /// and returns its result with how many bytes it wrote. Returns nil, calling nothing,
    /// otherwise, or when the body lacks fewer than `minimum` bytes; then receive into a
    /// buffer of your own and `append` it. (A TLS reader asks for a whole record's worth, 16 KiB:
    /// a smaller read could leave decrypted bytes of the next request inside the TLS library,
    /// where the socket's readiness would never announce them.)
    public mutating func receiveBody<Result>(
        minimum: Int = 1, _ receive: (UnsafeMutableRawBufferPointer) -> (Result, written: Int)
    ) -> Result? {
        guard case .fixedBody(let remaining) = state, remaining > 0, remaining >= minimum, readIndex == buffer.count
        else { return nil }
        allocateFixedBody(length: remaining)
        let start = body.count - remaining
        let (result, written) = body.withUnsafeMutableBytes { storage in
            receive(UnsafeMutableRawBufferPointer(rebasing: storage[start...]))
        }
        state = .fixedBody(remaining: remaining - min(max(written, 0), remaining))
        return result
    }

    /// The first time a Content-Length body's bytes arrive (`length` is then all of it);
    /// from then on the stored part is `body.count - remaining`.
    private mutating func allocateFixedBody(length: Int) {
        guard body.isEmpty else { return }
        body = [UInt8](repeating: 0, count: length)
    }

    /// Parses as far as the buffered bytes allow. Returns nil when more bytes are needed.
    /// After an error the parser stays failed, repeating that error: the connection must be closed.
    public mutating func next() throws(HTTPParseError) -> HTTPParserEvent? {
        do {
            return try step()
        } catch {
            state = .failed(error)
            throw error
        }
    }

    // MARK: - State machine

    private mutating func step() throws(HTTPParseError) -> HTTPParserEvent? {
        while true {
            switch state {
            case .failed(let error):
                throw error

            case .requestLine:
                guard let line = try nextLine(limit: limits.maxHeaderBytes - headBytes, tooLong: .headersTooLarge) else {
                    return nil
                }
                if line.isEmpty {
                    leadingEmptyLines += 1
                    guard leadingEmptyLines <= limits.maxLeadingEmptyLines else {
                        throw .malformed("too many empty lines before the request line")
                    }
                    continue
                }
                headBytes += line.count + 2
                try parseRequestLine(line)
                state = .headers

            case .headers:
                guard let line = try nextLine(limit: limits.maxHeaderBytes - headBytes, tooLong: .headersTooLarge) else {
                    return nil
                }
                headBytes += line.count + 2
                if line.isEmpty {
                    let completed = try finishHead()
                    return .head(completed)
                }
                guard headers.count < limits.maxHeaderCount else {
                    throw HTTPParseError(.headersTooLarge, "more than \(limits.maxHeaderCount) header fields")
                }
                let (name, value) = try parseField(line)
                headers.add(name: name, value: value)

            case .fixedBody(let remaining):
                if remaining == 0 { return .request(finishRequest()) }
                let available = buffer.count - readIndex
                guard available > 0 else { return nil }
                let take = min(available, remaining)
                allocateFixedBody(length: remaining)
                let (from, to) = (readIndex, body.count - remaining)
                body.withUnsafeMutableBytes { storage in
                    buffer.withUnsafeBytes { received in
                        UnsafeMutableRawBufferPointer(rebasing: storage[to..<(to + take)])
                            .copyMemory(from: UnsafeRawBufferPointer(rebasing: received[from..<(from + take)]))
                    }
                }
                consume(take)
                state = .fixedBody(remaining: remaining - take)

            case .chunkSize:
                guard let line = try nextLine(limit: limits.maxChunkLineBytes, tooLong: .malformed) else {
                    return nil
                }
                let size = try parseChunkSize(line)
                if size == 0 {
                    state = .trailers
                } else {
                    guard body.count + size <= limits.maxBodyBytes else {
                        throw HTTPParseError(.bodyTooLarge, "body exceeds \(limits.maxBodyBytes) bytes")
                    }
                    state = .chunkData(remaining: size)
                }

            case .chunkData(let remaining):
                let available = buffer.count - readIndex
                guard available > 0 else { return nil }
                let take = min(available, remaining)
                body.append(contentsOf: buffer[readIndex..<(readIndex + take)])
                consume(take)
                state = take == remaining ? .chunkDataEnd : .chunkData(remaining: remaining - take)

            case .chunkDataEnd:
                guard buffer.count - readIndex >= 2 else {
                    if buffer.count - readIndex == 1, buffer[readIndex] != UInt8(ascii: "\r") {
                        throw .malformed("chunk data not followed by CRLF")
                    }
                    return nil
                }
                guard buffer[readIndex] == UInt8(ascii: "\r"), buffer[readIndex + 1] == UInt8(ascii: "\n") else {
                    throw .malformed("chunk data not followed by CRLF")
                }
                consume(2)
                state = .chunkSize

            case .trailers:
                guard let line = try nextLine(limit: limits.maxTrailerBytes - trailerBytes, tooLong: .headersTooLarge) else {
                    return nil
                }
                trailerBytes += line.count + 2
                if line.isEmpty { return .request(finishRequest()) }
                guard trailers.count < limits.maxHeaderCount else {
                    throw HTTPParseError(.headersTooLarge, "more than \(limits.maxHeaderCount) trailer fields")
                }
                let (name, value) = try parseField(line)
                trailers.add(name: name, value: value)
            }
        }
    }

    /// Completes the head: validates framing (RFC 9112 section 6) and decides the body's length.
    private mutating func finishHead() throws(HTTPParseError) -> HTTPRequestHead {
        // One pass over the fields for the three that decide framing.
        var hostCount = 0
        var transferEncodings: [String] = []
        var contentLengths: [String] = []
        for (name, value) in headers {
            switch name.utf8.count {
            case 4 where name.equalsIgnoringASCIICase("host"): hostCount += 1
            case 14 where name.equalsIgnoringASCIICase("content-length"): contentLengths.append(value)
            case 17 where name.equalsIgnoringASCIICase("transfer-encoding"): transferEncodings.append(value)
            default: break
            }
        }
        if version.minor >= 1 && hostCount == 0 { throw .malformed("missing Host header") }
        if hostCount > 1 { throw .malformed("more than one Host header") }

        var framing = HTTPBodyFraming.none

        if !transferEncodings.isEmpty {
            guard contentLengths.isEmpty else {
                throw .malformed("both Content-Length and Transfer-Encoding")
            }
            let codings = headers.tokens(named: "transfer-encoding")
            guard let last = codings.last, last == "chunked" else {
                throw .malformed("Transfer-Encoding must end with chunked")
            }
            guard codings.count == 1 else {
                if codings.dropLast().contains("chunked") {
                    throw .malformed("chunked applied more than once")
                }
                throw HTTPParseError(.unsupportedTransferCoding, "only the chunked transfer coding is supported")
            }
            framing = .chunked
        } else if !contentLengths.isEmpty {
            var length: Int?
            for field in contentLengths {
                for element in field.split(separator: ",", omittingEmptySubsequences: false) {
                    let value = try parseContentLength(element.trimmingOWS())
                    if let known = length, known != value {
                        throw .malformed("differing Content-Length values")
                    }
                    length = value
                }
            }
            let n = length ?? 0
            guard n <= limits.maxBodyBytes else {
                throw HTTPParseError(.bodyTooLarge, "body of \(n) bytes exceeds \(limits.maxBodyBytes) bytes")
            }
            framing = .contentLength(n)
        }

        let completed = HTTPRequestHead(method: method, target: target, version: version, headers: headers, framing: framing)
        head = completed
        switch framing {
        case .none:
            state = .fixedBody(remaining: 0)
        case .contentLength(let n):
            state = .fixedBody(remaining: n)
        case .chunked:
            state = .chunkSize
        }
        return completed
    }

    private mutating func finishRequest() -> HTTPRequest {
        let request = HTTPRequest(head: head!, body: body, trailers: trailers)
        state = .requestLine
        headBytes = 0
        leadingEmptyLines = 0
        method = ""
        target = ""
        headers = HTTPHeaders()
        head = nil
        body = []
        trailers = HTTPHeaders()
        trailerBytes = 0
        return request
    }

    // MARK: - Lines

    /// Returns the next CRLF-terminated line without its terminator, or nil if it has not
    /// fully arrived. A line (with CRLF) longer than `limit` throws `tooLong`; a bare CR
    /// or bare LF is malformed.
    private mutating func nextLine(limit: Int, tooLong: HTTPParseError.Kind) throws(HTTPParseError) -> ArraySlice<UInt8>? {
        var i = max(scanIndex, readIndex)
        let end = buffer.count
        while i < end {
            let byte = buffer[i]
            if byte == UInt8(ascii: "\n") {
                // The length check comes first, so that the answer does not depend on how
                // the bytes were split: a streaming read would have hit the limit already.
                if i + 1 - readIndex > limit { throw tooLongError(tooLong) }
                guard i > readIndex, buffer[i - 1] == UInt8(ascii: "\r") else {
                    throw .malformed("line ends with a bare LF")
                }
                let line = buffer[readIndex..<(i - 1)]
                if line.contains(UInt8(ascii: "\r")) { throw .malformed("bare CR in line") }
                readIndex = i + 1
                scanIndex = readIndex
                return line
            }
            i += 1
        }
        scanIndex = end
        if end - readIndex > limit { throw tooLongError(tooLong) }
        return nil
    }

    private func tooLongError(_ kind: HTTPParseError.Kind) -> HTTPParseError {
        kind == .headersTooLarge
            ? HTTPParseError(.headersTooLarge, "header section exceeds \(limits.maxHeaderBytes) bytes")
            : .malformed("line too long")
    }

    private mutating func consume(_ count: Int) {
        readIndex += count
        scanIndex = readIndex
    }

    private mutating func compactIfWorthwhile() {
        if readIndex == buffer.count {
            buffer.removeAll(keepingCapacity: buffer.capacity <= 1 << 20)
            readIndex = 0
            scanIndex = 0
        } else if readIndex > 64 * 1024 && readIndex * 2 > buffer.count {
            buffer.removeSubrange(0..<readIndex)
            scanIndex -= readIndex
            readIndex = 0
        }
    }

    // MARK: - Grammar

    /// request-line = method SP request-target SP HTTP-version
    private mutating func parseRequestLine(_ line: ArraySlice<UInt8>) throws(HTTPParseError) {
        guard let firstSpace = line.firstIndex(of: UInt8(ascii: " ")) else {
            throw .malformed("request line has no target")
        }
        let methodBytes = line[line.startIndex..<firstSpace]
        guard !methodBytes.isEmpty, methodBytes.allSatisfy(HTTPGrammar.isTokenByte) else {
            throw .malformed("invalid method")
        }
        let afterMethod = line[(firstSpace + 1)...]
        guard let secondSpace = afterMethod.firstIndex(of: UInt8(ascii: " ")) else {
            throw .malformed("request line has no version")
        }
        let targetBytes = afterMethod[afterMethod.startIndex..<secondSpace]
        guard !targetBytes.isEmpty, targetBytes.allSatisfy(HTTPGrammar.isTargetByte) else {
            throw .malformed("invalid request target")
        }
        let versionBytes = line[(secondSpace + 1)...]
        version = try parseVersion(versionBytes)
        guard targetBytes.first == UInt8(ascii: "/") || targetBytes.elementsEqual("*".utf8)
            || HTTPGrammar.isAbsoluteForm(targetBytes)
        else {
            throw .malformed("request target must be a path, an absolute URL or *")
        }
        method = String(decoding: methodBytes, as: UTF8.self)
        target = String(decoding: targetBytes, as: UTF8.self)
    }

    /// HTTP-version = "HTTP/" DIGIT "." DIGIT
    private func parseVersion(_ bytes: ArraySlice<UInt8>) throws(HTTPParseError) -> HTTPVersion {
        let prefix = Array("HTTP/".utf8)
        guard bytes.count == 8, bytes.prefix(5).elementsEqual(prefix) else {
            throw .malformed("invalid HTTP version")
        }
        let major = bytes[bytes.startIndex + 5], dot = bytes[bytes.startIndex + 6], minor = bytes[bytes.startIndex + 7]
        guard HTTPGrammar.isDigit(major), dot == UInt8(ascii: "."), HTTPGrammar.isDigit(minor) else {
            throw .malformed("invalid HTTP version")
        }
        let v = HTTPVersion(major: Int(major - 48), minor: Int(minor - 48))
        guard v.major == 1 else { throw HTTPParseError(.unsupportedVersion, "only HTTP/1.x is supported") }
        return v
    }

    /// field-line = field-name ":" OWS field-value OWS
    private func parseField(_ line: ArraySlice<UInt8>) throws(HTTPParseError) -> (String, String) {
        guard let first = line.first else { throw .malformed("empty header line") }
        if first == UInt8(ascii: " ") || first == UInt8(ascii: "\t") {
            throw .malformed("obsolete line folding is not accepted")
        }
        guard let colon = line.firstIndex(of: UInt8(ascii: ":")) else {
            throw .malformed("header line without a colon")
        }
        let nameBytes = line[line.startIndex..<colon]
        if let last = nameBytes.last, last == UInt8(ascii: " ") || last == UInt8(ascii: "\t") {
            throw .malformed("whitespace before a header colon")
        }
        guard !nameBytes.isEmpty, nameBytes.allSatisfy(HTTPGrammar.isTokenByte) else {
            throw .malformed("invalid header name")
        }
        var valueBytes = line[(colon + 1)...]
        while let b = valueBytes.first, b == UInt8(ascii: " ") || b == UInt8(ascii: "\t") { valueBytes.removeFirst() }
        while let b = valueBytes.last, b == UInt8(ascii: " ") || b == UInt8(ascii: "\t") { valueBytes.removeLast() }
        guard valueBytes.allSatisfy(HTTPGrammar.isFieldValueByte) else {
            throw .malformed("invalid character in header value")
        }
        return (String(decoding: nameBytes, as: UTF8.self), String(decoding: valueBytes, as: UTF8.self))
    }

    /// Content-Length = 1*DIGIT, bounded so that it cannot overflow.
    private func parseContentLength(_ text: String) throws(HTTPParseError) -> Int {
        let bytes = Array(text.utf8)
        guard !bytes.isEmpty, bytes.count <= 18, bytes.allSatisfy(HTTPGrammar.isDigit) else {
            throw .malformed("invalid Content-Length")
        }
        return bytes.reduce(0) { $0 * 10 + Int($1 - 48) }
    }

    /// chunk-size [ chunk-ext ], with chunk-size = 1*HEXDIG; leading zeros are skipped and at
    /// most 15 significant digits are accepted, so the size cannot overflow.
    private func parseChunkSize(_ line: ArraySlice<UInt8>) throws(HTTPParseError) -> Int {
        var size = 0
        var digits = 0
        var significant = 0
        var index = line.startIndex
        while index < line.endIndex, let value = HTTPGrammar.hexValue(line[index]) {
            digits += 1
            if significant > 0 || value != 0 {
                significant += 1
                guard significant <= 15 else { throw .malformed("chunk size too large") }
                size = size * 16 + value
            }
            index += 1
        }
        guard digits > 0 else { throw .malformed("invalid chunk size") }
        // Only BWS and extensions may follow: chunk-ext = *( BWS ";" BWS ext-name [ BWS "=" BWS ext-val ] )
        var rest = line[index...]
        while let b = rest.first, b == UInt8(ascii: " ") || b == UInt8(ascii: "\t") { rest.removeFirst() }
        if let b = rest.first {
            guard b == UInt8(ascii: ";"), rest.allSatisfy(HTTPGrammar.isFieldValueByte) else {
                throw .malformed("invalid chunk extension")
            }
        }
        return size
    }
}

/// Character classes of RFC 9110 / RFC 9112.
enum HTTPGrammar {
    /// tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." / "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA
    static func isTokenByte(_ b: UInt8) -> Bool {
        switch b {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        case UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"), UInt8(ascii: "&"),
            UInt8(ascii: "'"), UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."),
            UInt8(ascii: "^"), UInt8(ascii: "_"), UInt8(ascii: "`"), UInt8(ascii: "|"), UInt8(ascii: "~"):
            return true
        default:
            return false
        }
    }

    /// Visible ASCII, the characters a request target may hold once percent-encoded.
    static func isTargetByte(_ b: UInt8) -> Bool { b > 0x20 && b < 0x7F }

    /// field-vchar, SP, HTAB and obs-text; no other control characters.
    static func isFieldValueByte(_ b: UInt8) -> Bool {
        b == 0x09 || (b >= 0x20 && b != 0x7F)
    }

    static func isDigit(_ b: UInt8) -> Bool { b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9") }

    static func hexValue(_ b: UInt8) -> Int? {
        switch b {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): Int(b - UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f"): Int(b - UInt8(ascii: "a") + 10)
        case UInt8(ascii: "A")...UInt8(ascii: "F"): Int(b - UInt8(ascii: "A") + 10)
        default: nil
        }
    }

    /// absolute-form: scheme "://" ..., with scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )
    static func isAbsoluteForm(_ bytes: ArraySlice<UInt8>) -> Bool {
        guard let first = bytes.first, (first | 0x20) >= UInt8(ascii: "a"), (first | 0x20) <= UInt8(ascii: "z") else {
            return false
        }
        var i = bytes.startIndex
        while i < bytes.endIndex, bytes[i] != UInt8(ascii: ":") {
            let b = bytes[i]
            let ok = isTokenByte(b) && b != UInt8(ascii: "%")
            if !ok { return false }
            i += 1
        }
        return bytes[i...].starts(with: "://".utf8)
    }
}
