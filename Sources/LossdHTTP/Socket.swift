#if canImport(Glibc)
    import Glibc
#endif

/// A socket-level failure, with the call and errno that caused it.
public struct SocketError: Error, Sendable, CustomStringConvertible {
    public let operation: String
    public let code: Int32

    init(_ operation: String, code: Int32 = errno) {
        self.operation = operation
        self.code = code
    }

    public var description: String { "\(operation) failed: \(String(cString: strerror(code)))" }
}

/// Low-level socket calls on file descriptors, returning Swift errors instead of -1.
enum Socket {
    /// Opens a non-blocking listening socket bound to `host:port` (IPv4 or IPv6).
    static func listen(host: String, port: Int, backlog: Int32) throws(SocketError) -> Int32 {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV
        var result: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(host, String(port), &hints, &result)
        guard rc == 0, let first = result else {
            throw SocketError("resolve \(host):\(port) (\(String(cString: gai_strerror(rc))))", code: EINVAL)
        }
        defer { freeaddrinfo(result) }

        var lastError = SocketError("bind \(host):\(port)", code: EADDRNOTAVAIL)
        var candidate: UnsafeMutablePointer<addrinfo>? = first
        while let info = candidate {
            candidate = info.pointee.ai_next
            let fd = socket(info.pointee.ai_family, info.pointee.ai_socktype | Int32(SOCK_NONBLOCK.rawValue | SOCK_CLOEXEC.rawValue), 0)
            guard fd >= 0 else { lastError = SocketError("socket"); continue }
            var one: Int32 = 1
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
            guard bind(fd, info.pointee.ai_addr, info.pointee.ai_addrlen) == 0 else {
                lastError = SocketError("bind \(host):\(port)")
                close(fd)
                continue
            }
            guard Glibc.listen(fd, backlog) == 0 else {
                lastError = SocketError("listen")
                close(fd)
                continue
            }
            return fd
        }
        throw lastError
    }

    /// The host and port a socket is bound to (the real port after binding port 0).
    static func localAddress(_ fd: Int32) -> (host: String, port: Int)? {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let rc = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard rc == 0 else { return nil }
        return describe(&storage)
    }

    /// The peer's address as text, for logs.
    static func peerAddress(_ storage: inout sockaddr_storage) -> String {
        guard let (host, port) = describe(&storage) else { return "unknown" }
        return host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
    }

    private static func describe(_ storage: inout sockaddr_storage) -> (host: String, port: Int)? {
        switch Int32(storage.ss_family) {
        case AF_INET:
            return withUnsafePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { sin in
                    format(AF_INET, sin.pointee.sin_addr, port: sin.pointee.sin_port)
                }
            }
        case AF_INET6:
            return withUnsafePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { sin6 in
                    format(AF_INET6, sin6.pointee.sin6_addr, port: sin6.pointee.sin6_port)
                }
            }
        default:
            return nil
        }
    }

    /// An `in_addr` or `in6_addr` of `family` as text (`inet_ntop`) and a network-order port as a number.
    private static func format<Address>(_ family: Int32, _ address: Address, port: in_port_t) -> (host: String, port: Int) {
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN) + 1)
        withUnsafeBytes(of: address) { _ = inet_ntop(family, $0.baseAddress, &buffer, socklen_t(buffer.count)) }
        return (text(buffer), Int(UInt16(bigEndian: port)))
    }

    private static func text(_ buffer: [CChar]) -> String {
        String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    static func setNoDelay(_ fd: Int32) {
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
    }

    /// Sends without raising SIGPIPE. Returns bytes sent, 0 when the socket would block,
    /// or nil when the connection is broken.
    static func send(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) -> Int? {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return 0 }
        while true {
            let n = Glibc.send(fd, base, bytes.count, Int32(MSG_NOSIGNAL))
            if n >= 0 { return n }
            switch errno {
            case EINTR: continue
            case EAGAIN, EWOULDBLOCK: return 0
            default: return nil
            }
        }
    }

    enum ReadResult {
        case data(Int)
        case wouldBlock
        case closed
    }

    /// The next byte waiting on the socket, left in place; nil when none is there yet.
    static func peekFirstByte(_ fd: Int32) -> UInt8? {
        var byte: UInt8 = 0
        while true {
            let n = recv(fd, &byte, 1, Int32(MSG_PEEK))
            if n == 1 { return byte }
            if n < 0 && errno == EINTR { continue }
            return nil
        }
    }

        static func receive(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer) -> ReadResult {
        while true {
            let n = recv(fd, buffer.baseAddress, buffer.count, 0)
            if n > 0 { return .data(n) }
            if n == 0 { return .closed }
            switch errno {
            case EINTR: continue
            case EAGAIN, EWOULDBLOCK: return .wouldBlock
            default: return .closed
            }
        }
    }
}
