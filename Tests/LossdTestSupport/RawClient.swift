import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A response read off the wire.
public struct WireResponse {
    public var status: Int
    public var reason: String
    public var headers: [(String, String)]
    public var body: [UInt8]

    public func header(_ name: String) -> String? {
        headers.first { $0.0.lowercased() == name.lowercased() }?.1
    }

    public var bodyText: String { String(decoding: body, as: UTF8.self) }

    public var json: [String: Any]? {
        (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any]
    }
}

/// A blocking TCP client that sends exact bytes and parses responses itself, so tests
/// control framing completely (pipelining, partial writes, odd headers).
public final class RawClient {
    public let fd: Int32
    private var buffer: [UInt8] = []

    public init(port: Int, receiveTimeout: Double = 10) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        inet_pton(AF_INET, "127.0.0.1", &address.sin_addr)
        let rc = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard rc == 0 else {
            close(fd)
            throw ClientError.connectFailed(errno)
        }
        setReceiveTimeout(receiveTimeout)
    }

    public enum ClientError: Error {
        case connectFailed(Int32)
        case sendFailed(Int32)
        case closedBeforeResponse(partial: String)
        case timedOut(partial: String)
        case malformedResponse(String)
    }

    public func setReceiveTimeout(_ seconds: Double) {
        var tv = timeval(tv_sec: Int(seconds), tv_usec: Int((seconds - Double(Int(seconds))) * 1e6))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }

    public func send(_ text: String) throws { try send(Array(text.utf8)) }

    public func send(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { throw ClientError.sendFailed(errno) }
            offset += n
        }
    }

    /// Reads more bytes; false when the peer closed (or reset) the connection.
    private func fill() throws -> Bool {
        var chunk = [UInt8](repeating: 0, count: 65536)
        let n = recv(fd, &chunk, chunk.count, 0)
        if n > 0 {
            buffer.append(contentsOf: chunk[0..<n])
            return true
        }
        if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) {
            throw ClientError.timedOut(partial: String(decoding: buffer, as: UTF8.self))
        }
        return false
    }

    /// Reads one response (skipping none: a `100 Continue` is returned like any other).
    public func readResponse(forHead: Bool = false) throws -> WireResponse {
        var headerEnd: Int?
        while true {
            if let end = findHeaderEnd() {
                headerEnd = end
                break
            }
            guard try fill() else { throw ClientError.closedBeforeResponse(partial: String(decoding: buffer, as: UTF8.self)) }
        }
        let headText = String(decoding: buffer[0..<headerEnd!], as: UTF8.self)
        buffer.removeFirst(headerEnd! + 4)
        var lines = headText.components(separatedBy: "\r\n")
        let statusLine = lines.removeFirst()
        let parts = statusLine.split(separator: " ", maxSplits: 2)
        guard parts.count >= 2, parts[0].hasPrefix("HTTP/1."), let status = Int(parts[1]) else {
            throw ClientError.malformedResponse(statusLine)
        }
        var headers: [(String, String)] = []
        for line in lines {
            guard let colon = line.firstIndex(of: ":") else { throw ClientError.malformedResponse(line) }
            headers.append((String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)))
        }
        var response = WireResponse(status: status, reason: parts.count > 2 ? String(parts[2]) : "", headers: headers, body: [])
        // 1xx, 204 and 304 never have a body (RFC 9112 §6.3).
        if status < 200 || status == 204 || status == 304 || forHead { return response }
        guard let lengthText = response.header("content-length"), let length = Int(lengthText) else {
            throw ClientError.malformedResponse("response without Content-Length")
        }
        while buffer.count < length {
            guard try fill() else { throw ClientError.closedBeforeResponse(partial: String(decoding: buffer, as: UTF8.self)) }
        }
        response.body = Array(buffer[0..<length])
        buffer.removeFirst(length)
        return response
    }

    private func findHeaderEnd() -> Int? {
        guard buffer.count >= 4 else { return nil }
        for i in 0...(buffer.count - 4)
        where buffer[i] == 13 && buffer[i + 1] == 10 && buffer[i + 2] == 13 && buffer[i + 3] == 10 {
            return i
        }
        return nil
    }

    /// Sends a request and reads its response.
    public func exchange(_ request: String) throws -> WireResponse {
        try send(request)
        return try readResponse()
    }

    /// True when the server closed the connection (EOF or reset) within `timeout` seconds,
    /// with no further bytes sent.
    public func isClosedByPeer(within timeout: Double = 3) -> Bool {
        setReceiveTimeout(timeout)
        var byte: UInt8 = 0
        let n = recv(fd, &byte, 1, 0)
        if n == 0 { return true }
        if n < 0 { return errno == ECONNRESET }
        return false
    }

    deinit { close(fd) }
}

/// A GET request with the given extra header lines.
public func get(_ path: String, _ extra: String = "") -> String {
    "GET \(path) HTTP/1.1\r\nHost: localhost\r\n\(extra)\r\n"
}
