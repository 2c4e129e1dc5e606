import CLossdTLS

#if canImport(Glibc)
    import Glibc
#endif

/// Why TLS could not be set up: a missing or unreadable file, a malformed PEM, or a key
/// that does not belong to the certificate. Raised at start-up, never per connection.
public struct TLSConfigurationError: Error, Sendable, CustomStringConvertible {
    public let description: String
}

/// A server's TLS identity: certificate chain and private key, TLS 1.2 at least, ALPN
/// `http/1.1`. One context serves every connection; give it to
/// ``HTTPServerConfiguration/tls`` to make the server speak HTTPS only.
///
/// `@unchecked Sendable` is safe: the wrapped OpenSSL `SSL_CTX` is fully configured in
/// `init` and never changed afterwards, and OpenSSL allows one context to be shared by
/// sessions on any thread (its reference counts and session cache are locked internally).
public final class TLSContext: @unchecked Sendable {
    let handle: OpaquePointer

    /// Loads PEM files: the certificate chain (leaf first) and its unencrypted private key.
    public init(certificateChainPath: String, privateKeyPath: String) throws(TLSConfigurationError) {
        var message = [CChar](repeating: 0, count: 512)
        guard let handle = lossd_tls_context_create(certificateChainPath, privateKeyPath, &message, message.count) else {
            let text = String(decoding: message.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            throw TLSConfigurationError(description: text.isEmpty ? "cannot load the TLS certificate and key" : text)
        }
        self.handle = handle
    }

    deinit { lossd_tls_context_free(handle) }
}

/// One connection's TLS session, owned by the event loop's connection object and used
/// only on the I/O thread. Reads and writes never block: they report what the session
/// waits for, which may be the opposite direction (a handshake message to send while
/// reading, say), so the loop watches the socket for that too.
final class TLSSession {
    private let handle: OpaquePointer
    /// A read stopped because TLS must first write: retry the read when writable.
    var readWantsWritable = false
    /// A write stopped because TLS must first read: retry the write when readable.
    var writeWantsReadable = false
    /// The first byte from the client has been looked at (it was not plain HTTP).
    var handshakeStarted = false

    init?(context: TLSContext, fd: Int32) {
        guard let handle = lossd_tls_session_create(context.handle, fd) else { return nil }
        self.handle = handle
    }

    deinit { lossd_tls_session_free(handle) }

    /// Decrypted bytes, like ``Socket/receive(_:into:)``; a failed handshake reads as closed.
    func receive(into buffer: UnsafeMutableRawBufferPointer) -> Socket.ReadResult {
        readWantsWritable = false
        guard let base = buffer.baseAddress else { return .wouldBlock }
        var status: Int32 = 0
        let count = lossd_tls_read(handle, base, buffer.count, &status)
        if count > 0 { return .data(count) }
        switch UInt32(status) {
        case LOSSD_TLS_WANT_READ.rawValue: return .wouldBlock
        case LOSSD_TLS_WANT_WRITE.rawValue:
            readWantsWritable = true
            return .wouldBlock
        default: return .closed
        }
    }

    /// Encrypts and sends, like ``Socket/send(_:_:)``: bytes taken, 0 to wait, nil when broken.
    func send(_ bytes: UnsafeRawBufferPointer) -> Int? {
        writeWantsReadable = false
        guard let base = bytes.baseAddress, bytes.count > 0 else { return 0 }
        var status: Int32 = 0
        let count = lossd_tls_write(handle, base, bytes.count, &status)
        if count > 0 { return count }
        switch UInt32(status) {
        case LOSSD_TLS_WANT_WRITE.rawValue: return 0
        case LOSSD_TLS_WANT_READ.rawValue:
            writeWantsReadable = true
            return 0
        default: return nil
        }
    }

    /// Tells the peer no more data follows (before a deliberate close).
    func closeNotify() { lossd_tls_close_notify(handle) }

    /// The negotiated protocol ("TLSv1.3"), empty before the handshake has finished.
    var protocolVersion: String { String(cString: lossd_tls_protocol(handle)) }

    /// Why the session failed, for debug logs.
    var lastError: String { String(cString: lossd_tls_last_error(handle)) }
}
