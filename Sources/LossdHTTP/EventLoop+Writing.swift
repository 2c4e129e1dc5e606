import CLossdSystem
import Dispatch
import Logging
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Writing answers, closing connections, deadlines and serialisation (the loop thread only).
extension EventLoop {
    // MARK: Writing

    func flush(_ connection: Connection) {
        while let first = connection.outbound.first {
            let sent = first.withUnsafeBytes { raw in
                connection.send(UnsafeRawBufferPointer(rebasing: raw[connection.outboundOffset...]))
            }
            guard let sent else {
                closeConnection(connection)
                return
            }
            if sent == 0 { break }
            // The write deadline bounds a stall, not the whole reply: progress renews it.
            if connection.deadlineKind == .write { setDeadline(connection, .write, seconds: configuration.writeTimeout) }
            connection.outboundOffset += sent
            if connection.outboundOffset == first.count {
                connection.outbound.removeFirst()
                connection.outboundOffset = 0
            }
        }
        if !connection.hasPendingOutput {
            if connection.phase == .writingResponse { finishResponse(connection) }
        }
        if connections[connection.fd] === connection { updateInterest(connection) }
    }

    func finishResponse(_ connection: Connection) {
        connection.currentHead = nil
        connection.plan = nil
        connection.requestID = ""
        connection.bytesIn = 0
        connection.charge = nil
        connection.cancellation = nil
        connection.readDeadline = 0
        connection.idleSince = Clock.now
        connection.requestStarted = false
        if connection.parser.bufferedByteCount > 0 { markRequestStarted(connection) }
        if connection.closeAfterResponse {
            beginLingeringClose(connection)
            return
        }
        connection.phase = .reading
        if connection.requestStarted {
            setDeadline(connection, .header, seconds: configuration.headerTimeout)
            // Pipelined requests may already be buffered. When this response was sent from
            // inside parseRequests (an inline route), its loop picks them up instead.
            parseRequests(connection)
        } else {
            setDeadline(connection, .idle, seconds: configuration.keepAliveTimeout)
        }
    }

    /// Closes after a final response. A rejected request may still be arriving, or pipelined
    /// bytes may be waiting (buffered, or still in the socket: bodies are read to their exact
    /// length), so then the write side is shut and input is discarded for up to two seconds:
    /// the client sees our response rather than a connection reset.
    func beginLingeringClose(_ connection: Connection) {
        if connection.peerClosed
            || (!connection.rejected && connection.parser.bufferedByteCount == 0
                && Socket.peekFirstByte(connection.fd) == nil)
        {
            closeConnection(connection)
            return
        }
        connection.tls?.closeNotify()
        shutdown(connection.fd, Int32(SHUT_WR))
        connection.phase = .lingering
        setDeadline(connection, .linger, seconds: 2)
        updateInterest(connection)
    }

    func updateInterest(_ connection: Connection) {
        guard !connection.detached else { return }
        let wantRead = connection.needsReadable
        let wantWrite = connection.needsWritable
        // Only while a worker runs the request: an inline answer is written at once.
        let wantHangup = connection.phase == .awaitingResponse && connection.handlerDeadline != 0
        if wantRead != connection.readInterest || wantWrite != connection.writeInterest
            || wantHangup != connection.hangupInterest
        {
            connection.readInterest = wantRead
            connection.writeInterest = wantWrite
            connection.hangupInterest = wantHangup
            lossd_epoll_modify_watching_hangup(
                epollFD, connection.fd, wantRead ? 1 : 0, wantWrite ? 1 : 0, wantHangup ? 1 : 0)
        }
    }

    func closeConnection(_ connection: Connection) {
        guard connections[connection.fd] === connection else { return }
        if connection.phase == .awaitingResponse { connection.cancellation?.cancel() }
        connection.charge = nil
        if connection.onOperationsListener {
            operationsConnections -= 1
            group.openConnections.subtract(1, ordering: .relaxed)
        } else {
            releaseCount(probeOnly: connection.probeOnly)
        }
        if !connection.detached { lossd_epoll_remove(epollFD, connection.fd) }
        if !connection.peerClosed { connection.tls?.closeNotify() }
        connection.tls = nil
        close(connection.fd)
        connections[connection.fd] = nil
    }

    // MARK: Deadlines

    func setDeadline(_ connection: Connection, _ kind: Connection.DeadlineKind, seconds: Double) {
        connection.deadlineKind = kind
        connection.deadline = Clock.now + Clock.nanos(seconds)
    }

    func sweepDeadlines(now: UInt64) {
        if listenFD >= 0, acceptPausedUntil != 0, now >= acceptPausedUntil {
            acceptPausedUntil = 0
            lossd_epoll_add(epollFD, listenFD, 1, 0)
        }
        for connection in Array(connections.values) {
            if connection.phase == .awaitingResponse, connection.handlerDeadline != 0, now >= connection.handlerDeadline {
                // The handler ran too long: stop it, answer 503 and close (its late answer
                // finds the connection in another phase and is dropped).
                connection.handlerDeadline = 0
                connection.cancellation?.cancel()
                if connection.detached {
                    closeConnection(connection)
                } else {
                    connection.closeAfterResponse = true
                    sendResponse(
                        capacityResponse("the request ran past the server's request timeout and was stopped"),
                        on: connection)
                }
                continue
            }
            if connection.phase == .reading, connection.readDeadline != 0, now >= connection.readDeadline,
                connection.deadlineKind == .header || connection.deadlineKind == .body
            {
                connection.readDeadline = 0
                connection.deadlineKind = .none
                failRequest(connection, status: .requestTimeout, detail: "the request did not arrive in full in time")
                continue
            }
        }
        for connection in Array(connections.values) where connection.deadlineKind != .none && now >= connection.deadline {
            switch connection.deadlineKind {
            case .none:
                break
            case .idle, .write, .linger:
                closeConnection(connection)
            case .header, .body:
                if connection.requestStarted || connection.parser.bufferedByteCount > 0 {
                    let detail = connection.deadlineKind == .header
                        ? "request headers not received in time" : "request body stalled"
                    connection.deadlineKind = .none
                    failRequest(connection, status: .requestTimeout, detail: detail)
                } else {
                    closeConnection(connection)
                }
            }
        }
    }

    // MARK: Serialization

    /// The whole response as bytes (for the few answers written outside a connection).
    func serialize(_ response: HTTPResponse, keepAlive: Bool, isHead: Bool, http10: Bool = false) -> [UInt8] {
        let (head, body) = serializeHead(response, keepAlive: keepAlive, isHead: isHead, http10: http10)
        return head + body
    }

    /// The status line and header section, and the body to send after them (empty for
    /// HEAD, 1xx, 204 and 304).
    func serializeHead(
        _ response: HTTPResponse, keepAlive: Bool, isHead: Bool, http10: Bool = false
    ) -> (head: [UInt8], body: [UInt8]) {
        let status = response.status
        let bodyAllowed = status.code != 204 && status.code != 304 && status.code >= 200
        // Written as bytes, straight into one array sized for the usual head.
        var head: [UInt8] = []
        head.reserveCapacity(160 + 48 * response.headers.count)
        func append(_ text: String) { head.append(contentsOf: text.utf8) }
        func append(_ text: StaticString) { text.withUTF8Buffer { head.append(contentsOf: $0) } }
        append("HTTP/1.1 ")
        append(String(status.code))
        append(" ")
        append(status.reasonPhrase)
        append("\r\nServer: ")
        append(configuration.serverName)
        append("\r\nDate: ")
        append(dateCache.current())
        append("\r\n")
        for (name, value) in response.headers {
            if name.equalsIgnoringASCIICase("content-length") || name.equalsIgnoringASCIICase("connection")
                || name.equalsIgnoringASCIICase("transfer-encoding") || name.equalsIgnoringASCIICase("date")
            {
                continue
            }
            append(name)
            append(": ")
            append(value)
            append("\r\n")
        }
        if bodyAllowed {
            append("Content-Length: ")
            append(String(response.body.count))
            append("\r\n")
        }
        if !keepAlive {
            append("Connection: close\r\n")
        } else if http10 {
            append("Connection: keep-alive\r\n")
        }
        append("\r\n")
        return (head, bodyAllowed && !isHead ? response.body : [])
    }
}
