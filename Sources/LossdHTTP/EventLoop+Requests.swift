import CLossdSystem
import Dispatch
import Logging
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Reading, parsing, admitting and dispatching requests, and answering them (the loop thread only).
extension EventLoop {
    // MARK: Events

    func handleEvent(_ connection: Connection, flags: UInt32) {
        if let tls = connection.tls {
            // TLS may need the direction opposite to the operation it stopped in.
            if flags & 1 != 0 && tls.writeWantsReadable { flush(connection) }
            guard connections[connection.fd] === connection else { return }
            if flags & 2 != 0 && tls.readWantsWritable && connection.wantsInput { readAvailable(connection) }
            guard connections[connection.fd] === connection else { return }
        }
        if flags & 2 != 0 { flush(connection) }
        guard connections[connection.fd] === connection else { return }
        // Readability may be watched for a TLS write alone; read only in a phase that reads.
        if flags & 1 != 0 && connection.readInterest && connection.wantsInput { readAvailable(connection) }
        guard connections[connection.fd] === connection else { return }
        // The client closed its side while its request runs (RDHUP): like nginx, take it as
        // gone. Its handler is cancelled and its answer dropped.
        let leftWhileWaiting = flags & 8 != 0 && connection.phase == .awaitingResponse
        guard flags & 4 != 0 || leftWhileWaiting else { return }
        // Hang-up or error: nothing more can be read, and writes will fail.
        connection.peerClosed = true
        if connection.phase == .awaitingResponse {
            // A handler is running; stop it, stop watching the socket (level-triggered
            // hang-ups would otherwise wake us continuously) and close once it returns.
            connection.cancellation?.cancel()
            lossd_epoll_remove(epollFD, connection.fd)
            connection.readInterest = false
            connection.writeInterest = false
            connection.hangupInterest = false
            connection.detached = true
        } else {
            closeConnection(connection)
        }
    }

    func readAvailable(_ connection: Connection) {
        if let tls = connection.tls, !tls.handshakeStarted {
            switch Socket.peekFirstByte(connection.fd) {
            case nil:
                break
            case let byte? where byte != 0x16 && (0x41...0x5A).contains(byte):
                // An upper-case letter where a TLS handshake record (0x16) belongs: a plain
                // HTTP request. Answer it in plain text so the client learns why.
                connection.tls = nil
                failRequest(connection, status: .badRequest, detail: "this port speaks HTTPS; use an https:// URL")
                return
            default:
                tls.handshakeStarted = true
            }
        }
        // A few reads per wake-up keeps one fast sender from starving the others.
        for _ in 0..<4 {
            // A Content-Length body is received straight into the request's body (its bytes
            // are written once); anything else through the loop's read buffer.
            var storedInBody = false
            let result: Socket.ReadResult
            if connection.phase == .reading,
                let direct = connection.parser.receiveBody(minimum: connection.tls == nil ? 1 : 16 << 10, { space in
                    let received = connection.receive(into: space)
                    if case .data(let count) = received { return (received, count) }
                    return (received, 0)
                })
            {
                result = direct
                storedInBody = true
            } else {
                result = readBuffer.withUnsafeMutableBytes { connection.receive(into: $0) }
            }
            switch result {
            case .wouldBlock:
                if connection.tls?.readWantsWritable == true { updateInterest(connection) }
                return
            case .closed:
                if let tls = connection.tls, !tls.lastError.isEmpty {
                    logger.debug("TLS connection from \(connection.remoteAddress) ended: \(tls.lastError)")
                }
                connection.peerClosed = true
                switch connection.phase {
                case .awaitingResponse, .writingResponse:
                    // Half-closed after sending a request: answer it, then close.
                    connection.closeAfterResponse = true
                    updateInterest(connection)
                case .reading, .lingering:
                    // Between requests, in the middle of one (nothing to answer), or done.
                    closeConnection(connection)
                }
                return
            case .data(let count):
                if connection.phase == .lingering {
                    connection.lingerDiscarded += count
                    if connection.lingerDiscarded > connection.lingerAllowance { closeConnection(connection); return }
                    // Discarding makes progress: the linger deadline bounds a stall.
                    setDeadline(connection, .linger, seconds: 2)
                    continue
                }
                connection.bytesIn += count
                if !connection.requestStarted {
                    markRequestStarted(connection)
                    setDeadline(connection, .header, seconds: configuration.headerTimeout)
                }
                if connection.chargesArrivingBody, let charge = connection.charge {
                    do throws(MemoryChargeRefusal) {
                        try charge.reserve(count)
                    } catch {
                        connection.chargesArrivingBody = false
                        refuse(connection, memoryRefusalResponse(error), bodyPending: true)
                        return
                    }
                }
                if !storedInBody {
                    readBuffer.withUnsafeBytes { connection.parser.append(UnsafeRawBufferPointer(rebasing: $0[0..<count])) }
                }
                if connection.parser.isReadingBody {
                    setDeadline(connection, .body, seconds: configuration.bodyTimeout)
                }
                parseRequests(connection)
                guard connections[connection.fd] === connection, connection.phase == .reading else { return }
            }
        }
    }

    /// Parses buffered input until a request is complete (then hands it to a handler) or
    /// more bytes are needed.
    func parseRequests(_ connection: Connection) {
        guard !connection.parsing else { return }
        connection.parsing = true
        defer { connection.parsing = false }
        while connection.phase == .reading {
            let event: HTTPParserEvent?
            do {
                event = try connection.parser.next()
            } catch {
                failRequest(connection, status: error.status, detail: error.reason)
                return
            }
            switch event {
            case nil:
                if connection.parser.isReadingBody {
                    if connection.deadlineKind != .body { setDeadline(connection, .body, seconds: configuration.bodyTimeout) }
                } else if connection.parser.bufferedByteCount == 0 && !connection.requestStarted {
                    setDeadline(connection, .idle, seconds: configuration.keepAliveTimeout)
                }
                updateInterest(connection)
                return
            case .head(let head)?:
                if !connection.requestStarted { markRequestStarted(connection) }
                connection.currentHead = head
                connection.requestStartNanos = Clock.now
                // HTTP/1.0 clients cannot expect anything (RFC 9110 section 10.1.1).
                if head.version.minor >= 1, head.headers.contains(name: "expect"), !head.expectsContinue {
                    failRequest(connection, status: .expectationFailed, detail: "only 100-continue is supported")
                    return
                }
                if let refusal = admit(head, on: connection) {
                    refuse(connection, refusal, bodyPending: head.hasBody)
                    return
                }
                if head.expectsContinue && head.hasBody && connection.parser.bufferedByteCount == 0 {
                    connection.enqueue(Self.continueLine)
                    flush(connection)
                    guard connections[connection.fd] === connection else { return }
                }
                setDeadline(connection, .body, seconds: configuration.bodyTimeout)
            case .request(let request)?:
                dispatch(request, on: connection)
            }
        }
    }

    static let continueLine = Array("HTTP/1.1 100 Continue\r\n\r\n".utf8)

    func markRequestStarted(_ connection: Connection) {
        connection.requestStarted = true
        connection.readDeadline = Clock.now + Clock.nanos(configuration.readTimeout)
    }

    /// Decides on a request from its head alone, before `100 Continue` and before any of
    /// its body is kept: the responder plans it once (route, refusal, lane, label);
    /// probe-only connections serve inline routes only; a request with a body that the
    /// plan refuses (authentication, route, method, media type) is answered at once; and
    /// the announced body must fit in the memory budget. Returns the refusal, or nil with
    /// the request's plan and charge set. A bodiless request's refusal is answered at
    /// dispatch, keeping the connection.
    func admit(_ head: HTTPRequestHead, on connection: Connection) -> HTTPResponse? {
        if connection.onOperationsListener, let operations = configuration.operations, !operations.paths.contains(head.path) {
            return responder.errorResponse(status: .notFound, detail: "the operations port serves only \(operations.paths.sorted().joined(separator: ", "))")
        }
        let plan = responder.plan(head)
        connection.plan = plan
        if connection.probeOnly && !plan.inline {
            return capacityResponse("too many open connections; only health probes are served on this one")
        }
        if head.hasBody, let refusal = plan.refusal { return refusal }
        let charge = MemoryCharge(budget: budget)
        connection.charge = charge
        connection.chargesArrivingBody = false
        switch head.framing {
        case .contentLength(let length):
            do throws(MemoryChargeRefusal) {
                try charge.reserve(length)
            } catch {
                return memoryRefusalResponse(error)
            }
        case .chunked:
            connection.chargesArrivingBody = true
        case .none:
            break
        }
        return nil
    }

    /// 413 for a request that could never fit in the memory budget, 503 with
    /// `Retry-After` for one that does not fit now.
    func memoryRefusalResponse(_ refusal: MemoryChargeRefusal) -> HTTPResponse {
        switch refusal {
        case let .neverFits(needed, limit):
            return responder.errorResponse(
                status: .contentTooLarge,
                detail: "the request needs \(needed) bytes, more than the server's memory budget of \(limit) bytes")
        case let .notNow(needed, _):
            return capacityResponse("the server's memory budget cannot hold this request's \(needed) bytes now; retry shortly")
        }
    }

    /// Answers a request before its body is read. A body that is still to come is never
    /// buffered: the connection closes after the answer, discarding what arrives meanwhile.
    func refuse(_ connection: Connection, _ response: HTTPResponse, bodyPending: Bool) {
        connection.closeAfterResponse = true
        connection.rejected = bodyPending
        if bodyPending, case .contentLength(let length)? = connection.currentHead?.framing {
            connection.lingerAllowance = max(4 << 20, min(length, configuration.parserLimits.maxBodyBytes) + (64 << 10))
        }
        connection.charge = nil
        connection.chargesArrivingBody = false
        connection.phase = .awaitingResponse
        sendResponse(response, on: connection)
    }

    func dispatch(_ request: HTTPRequest, on connection: Connection) {
        if connection.plan?.quick == true, let owner = newOwner(of: connection) {
            handOver(connection, request: request, to: owner)
            return
        }
        connection.phase = .awaitingResponse
        connection.deadlineKind = .none
        connection.currentHead = request.head
        // An HTTP/1.0 chunked body is faulty framing: answer, then close (RFC 9112 section 6.1).
        if !request.head.keepAlive || (request.head.version == .http1_0 && request.head.framing == .chunked) {
            connection.closeAfterResponse = true
        }

        connection.readDeadline = 0
        connection.chargesArrivingBody = false
        let charge = connection.charge ?? MemoryCharge(budget: budget)
        connection.charge = charge
        let cancellation = CancellationFlag()
        connection.cancellation = cancellation
        let plan = connection.plan ?? responder.plan(request.head)
        connection.plan = plan
        let context = RequestContext(
            requestID: makeRequestID(request.head), remoteAddress: connection.remoteAddress, memory: charge,
            cancellation: cancellation, plan: plan, gauges: gauges)
        connection.requestID = context.requestID
        if let refusal = plan.refusal {
            sendResponse(refusal, on: connection)
            return
        }
        if plan.inline || plan.quick {
            sendResponse(responder.respond(to: request, context: context), on: connection)
            return
        }
        let responder = self.responder
        let id = connection.id, fd = connection.fd
        connection.handlerDeadline = Clock.now + Clock.nanos(configuration.requestTimeout)
        updateInterest(connection)
        // The job holds the request and its charge only until the handler returns.
        let accepted = pool.submit({ [self] in
            let response = responder.respond(to: request, context: context)
            post(.response(connectionID: id, fd: fd, response: response))
        }, class: plan.workClass)
        if !accepted {
            connection.handlerDeadline = 0
            sendResponse(capacityResponse("the server is at capacity; retry shortly"), on: connection)
        }
    }

    func makeRequestID(_ head: HTTPRequestHead) -> String {
        if let given = head.headers["x-request-id"], (1...128).contains(given.utf8.count),
            given.utf8.allSatisfy({ HTTPGrammar.isTokenByte($0) })
        {
            return given
        }
        return group.makeRequestID()
    }

    /// Answers a request that could not be read (framing, limits, timeouts) and closes.
    func failRequest(_ connection: Connection, status: HTTPStatus, detail: String) {
        connection.closeAfterResponse = true
        connection.rejected = true
        if connection.currentHead == nil { connection.requestStartNanos = Clock.now }
        connection.phase = .awaitingResponse
        sendResponse(responder.errorResponse(status: status, detail: detail), on: connection)
    }

    func sendResponse(_ response: HTTPResponse, on connection: Connection) {
        connection.handlerDeadline = 0
        var response = response
        let head = connection.currentHead
        if isDraining || connection.peerClosed { connection.closeAfterResponse = true }
        let keepAlive = !connection.closeAfterResponse
        if !connection.requestID.isEmpty {
            response.headers.replaceOrAdd(name: "X-Request-Id", value: connection.requestID)
        }
        // A valid W3C traceparent is echoed, so the caller can match the answer to its span.
        if let traceparent = head?.headers["traceparent"], TraceContext.traceID(traceparent) != nil {
            response.headers.replaceOrAdd(name: "traceparent", value: traceparent)
        }
        let isHead = head?.method == "HEAD"
        let (headBytes, body) = serializeHead(response, keepAlive: keepAlive, isHead: isHead, http10: head?.version == .http1_0)
        logAccess(connection, response: response, bytesOut: headBytes.count + body.count)
        if body.count < Connection.coalesceLimit {
            connection.enqueue(headBytes + body)
        } else {
            // A large body goes out as it is: no copy of megabytes behind the header.
            connection.enqueue(headBytes)
            connection.outbound.append(body)
        }
        connection.phase = .writingResponse
        setDeadline(connection, .write, seconds: configuration.writeTimeout)
        flush(connection)
    }

    func logAccess(_ connection: Connection, response: HTTPResponse, bytesOut: Int) {
        let seconds = Double(Clock.now &- connection.requestStartNanos) / 1e9
        let head = connection.currentHead
        // A request rejected before its head was complete may still have a request line.
        let partial = head == nil ? connection.parser.currentRequestLine : nil
        let method = head?.method ?? partial?.method
        let path = head?.path ?? partial.map { String($0.target.prefix { $0 != "?" }) }
        let route = connection.plan?.label ?? responder.routeLabel(method: method, path: path)
        let traceID = head?.headers["traceparent"].flatMap { TraceContext.traceID($0) }.map { String($0) }
        let record = RequestRecord(
            method: method, path: path, route: route, status: response.status, bytesIn: connection.bytesIn,
            bytesOut: bytesOut, duration: seconds, peer: connection.remoteAddress, requestID: connection.requestID,
            traceID: traceID)
        if let format = configuration.accessLog {
            format.append(record, to: &accessLogBuffer)
            if accessLogBuffer.count >= 64 << 10 { flushAccessLog() }
        } else {
            var metadata: Logger.Metadata = [
                "status": "\(response.status.code)",
                "ms": "\(record.milliseconds)",
                "bytes_in": "\(connection.bytesIn)",
                "bytes_out": "\(bytesOut)",
                "peer": "\(connection.remoteAddress)",
                "route": "\(route)",
            ]
            if !connection.requestID.isEmpty { metadata["request_id"] = "\(connection.requestID)" }
            if let traceID { metadata["trace_id"] = "\(traceID)" }
            if let method { metadata["method"] = "\(method)" }
            if let path { metadata["path"] = "\(path)" }
            logger.info("\(record.line)", metadata: metadata)
        }
        responder.requestCompleted(record)
    }

    /// Writes the buffered access-log lines (to ``HTTPServerConfiguration/accessLogDescriptor``):
    /// whole lines, in writes of at most `PIPE_BUF` (4096) bytes unless one line is longer,
    /// so that writes from several I/O threads into one pipe never interleave inside a line.
    func flushAccessLog() {
        accessLogBuffer.withUnsafeBytes { raw in
            var start = 0
            while start < raw.count {
                var end = min(raw.count, start + 4096)
                if end < raw.count {
                    // Back up to the end of the last whole line in the chunk.
                    var cut = end
                    while cut > start && raw[cut - 1] != UInt8(ascii: "\n") { cut -= 1 }
                    if cut > start {
                        end = cut
                    } else {
                        // One line longer than the chunk: write it whole.
                        while end < raw.count && raw[end - 1] != UInt8(ascii: "\n") { end += 1 }
                    }
                }
                var offset = start
                while offset < end {
                    let n = write(configuration.accessLogDescriptor, raw.baseAddress! + offset, end - offset)
                    if n < 0 && errno == EINTR { continue }
                    if n <= 0 {
                        // The descriptor refuses (full, closed): the rest of this chunk is lost,
                        // and a line cut short is ended, so that the next one starts whole.
                        if offset > start { _ = write(configuration.accessLogDescriptor, "\n", 1) }
                        break
                    }
                    offset += n
                }
                start = end
            }
        }
        accessLogBuffer.removeAll(keepingCapacity: true)
    }
}
