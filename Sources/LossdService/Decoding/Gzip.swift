import CZlib
import LossdHTTP

/// gzip through the system zlib: streaming inflate of request bodies with a hard limit on
/// the inflated size (checked chunk by chunk, so a small bomb never grows past the limit),
/// and deflate of response bodies.
enum Gzip {
    enum InflateError: Error, Equatable {
        /// The inflated body would pass the limit.
        case tooLarge
        /// `charge` refused the inflated bytes (the memory budget is spent).
        case overBudget
        /// Not a gzip stream, a corrupt one, or a truncated one.
        case malformed(String)
    }

    /// zlib's `windowBits` for a gzip wrapper (15 + 16); `inflateInit2`/`deflateInit2` are
    /// function-like macros, so the `_` forms are called with the version and struct size.
    private static let gzipWindowBits: Int32 = MAX_WBITS + 16
    private static let streamSize = Int32(MemoryLayout<z_stream>.size)

    /// Inflates a gzip body (one or more members) to at most `limit` bytes; `charge` is
    /// told each growth of the output and stops the inflation by returning false.
    static func inflate(
        _ input: [UInt8], limit: Int, charge: (Int) -> Bool = { _ in true }
    ) throws(InflateError) -> [UInt8] {
        guard input.count <= Int(UInt32.max) else { throw .tooLarge }
        let result: Result<[UInt8], InflateError> = input.withUnsafeBufferPointer { source in
            var stream = z_stream()
            guard inflateInit2_(&stream, gzipWindowBits, zlibVersion(), streamSize) == Z_OK else {
                return .failure(.malformed("the gzip decoder could not start"))
            }
            defer { inflateEnd(&stream) }
            stream.next_in = UnsafeMutablePointer(mutating: source.baseAddress)
            stream.avail_in = UInt32(source.count)
            var output: [UInt8] = []
            var chunk = [UInt8](repeating: 0, count: 64 << 10)
            while true {
                let rc = chunk.withUnsafeMutableBufferPointer { out in
                    stream.next_out = out.baseAddress
                    stream.avail_out = UInt32(out.count)
                    return CZlib.inflate(&stream, Z_NO_FLUSH)
                }
                let produced = chunk.count - Int(stream.avail_out)
                guard output.count + produced <= limit else { return .failure(.tooLarge) }
                guard charge(produced) else { return .failure(.overBudget) }
                output.append(contentsOf: chunk[0..<produced])
                switch rc {
                case Z_STREAM_END:
                    if stream.avail_in == 0 { return .success(output) }
                    inflateReset(&stream)  // another gzip member follows
                case Z_OK:
                    continue
                case Z_BUF_ERROR where stream.avail_in > 0 || produced > 0:
                    continue
                case Z_BUF_ERROR:
                    return .failure(.malformed("the gzip stream is truncated"))
                default:
                    let message = stream.msg.map { String(cString: $0) } ?? "zlib error \(rc)"
                    return .failure(.malformed("the gzip stream is corrupt (\(message))"))
                }
            }
        }
        return try result.get()
    }

    /// The gzip encoding of `input`, or nil if zlib fails (the caller then sends it as is).
    static func deflate(_ input: [UInt8], level: Int32 = 6) -> [UInt8]? {
        guard input.count <= Int(UInt32.max) / 2 else { return nil }
        var stream = z_stream()
        guard deflateInit2_(&stream, level, Z_DEFLATED, gzipWindowBits, 8, Z_DEFAULT_STRATEGY, zlibVersion(), streamSize) == Z_OK else {
            return nil
        }
        defer { deflateEnd(&stream) }
        var output = [UInt8](repeating: 0, count: Int(deflateBound(&stream, uLong(input.count))))
        let rc = input.withUnsafeBufferPointer { source in
            output.withUnsafeMutableBufferPointer { out in
                stream.next_in = UnsafeMutablePointer(mutating: source.baseAddress)
                stream.avail_in = UInt32(source.count)
                stream.next_out = out.baseAddress
                stream.avail_out = UInt32(out.count)
                return CZlib.deflate(&stream, Z_FINISH)
            }
        }
        guard rc == Z_STREAM_END else { return nil }
        output.removeLast(Int(stream.avail_out))
        return output
    }
}

/// When responses are gzip-encoded (`--gzip-level`, `--gzip-min-bytes`, `--gzip-max-bytes`).
public struct CompressionPolicy: Sendable, Equatable {
    /// zlib level, 1 (fastest) to 9; 0 turns response compression off.
    public var level: Int = 1
    /// Smaller bodies go out as they are: the gzip framing would outweigh the saving.
    public var minBytes: Int = 1024
    /// Larger bodies go out as they are: on a sidecar's loopback, compressing megabytes
    /// costs more time than sending them, and would hold a second copy of the reply.
    public var maxBytes: Int = 1 << 20

    public init(level: Int = 1, minBytes: Int = 1024, maxBytes: Int = 1 << 20) {
        self.level = level
        self.minBytes = minBytes
        self.maxBytes = maxBytes
    }
}

extension Gzip {
    /// `response` gzip-encoded when it is a 2xx or 4xx text answer (not the raw floats of a
    /// multipart answer, which gzip shrinks by a few percent at a cost of tens of
    /// milliseconds a megabyte) whose size is within the policy's bounds, not already
    /// encoded, and the request's Accept-Encoding takes gzip; with `Vary: Accept-Encoding`
    /// on every answer whose encoding depended on the request.
    static func compressed(
        _ response: HTTPResponse, for request: HTTPRequest, policy: CompressionPolicy = CompressionPolicy()
    ) -> HTTPResponse {
        let status = response.status.code
        guard policy.level > 0, (200..<300).contains(status) || (400..<500).contains(status),
            response.headers["content-encoding"] == nil,
            !(response.headers["content-type"] ?? "").hasPrefix("multipart/")
        else { return response }
        var answer = response
        // Whether this answer is compressed depends on Accept-Encoding: caches must know.
        if response.body.count >= policy.minBytes {
            // One Vary header listing every request header the answer depended on.
            let vary = response.headers["vary"].map { "\($0), Accept-Encoding" } ?? "Accept-Encoding"
            answer.headers.replaceOrAdd(name: "Vary", value: vary)
        }
        guard (policy.minBytes...max(policy.minBytes, policy.maxBytes)).contains(response.body.count),
            acceptsGzip(request.headers.values(named: "accept-encoding")),
            let body = deflate(response.body, level: Int32(min(9, policy.level)))
        else { return answer }
        answer.body = body
        answer.headers.add(name: "Content-Encoding", value: "gzip")
        return answer
    }

    /// Whether Accept-Encoding values allow gzip: `gzip` (or `x-gzip`, or `*` when gzip is
    /// not named) with a q-value above 0.
    static func acceptsGzip(_ values: [String]) -> Bool {
        var gzip: Double?
        var wildcard: Double?
        for (coding, q) in AcceptHeader.ranked(values, unparsedQ: 0) {
            switch coding {
            case "gzip", "x-gzip": gzip = max(gzip ?? 0, q)
            case "*": wildcard = q
            default: break
            }
        }
        return (gzip ?? wildcard ?? 0) > 0
    }
}
