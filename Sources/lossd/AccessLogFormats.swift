import LossdHTTP
import LossdService
import Logging
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Access-log lines in the text format, byte for byte what swift-log's `StreamLogHandler`
/// writes for the server's `info` line (local time stamp, sorted `key=value` metadata, the
/// `[LossdHTTP]` source, the method and path), without building a metadata dictionary.
final class TextAccessLog: AccessLogFormat {
    let label: String
    /// The time stamp of the current second, formatted once a second.
    private let stamp = Mutex<(second: time_t, text: [UInt8])>((0, []))

    init(label: String) {
        self.label = label
    }

    func append(_ record: RequestRecord, to buffer: inout [UInt8]) {
        buffer.append(contentsOf: timestamp())
        buffer.append(contentsOf: " info ".utf8)
        buffer.append(contentsOf: label.utf8)
        buffer.append(UInt8(ascii: ":"))
        // Keys in sorted order, as StreamLogHandler prints them.
        field("bytes_in", String(record.bytesIn), &buffer)
        field("bytes_out", String(record.bytesOut), &buffer)
        if let method = record.method { field("method", method, &buffer) }
        buffer.append(contentsOf: " ms=".utf8)
        Self.appendMilliseconds(record.duration, to: &buffer)
        if let path = record.path { field("path", path, &buffer) }
        field("peer", record.peer, &buffer)
        if !record.requestID.isEmpty { field("request_id", record.requestID, &buffer) }
        field("route", record.route, &buffer)
        field("status", String(record.status.code), &buffer)
        if let traceID = record.traceID { field("trace_id", traceID, &buffer) }
        buffer.append(contentsOf: " [LossdHTTP] ".utf8)
        buffer.append(contentsOf: record.line.utf8)
        buffer.append(UInt8(ascii: "\n"))
    }

    /// `RequestRecord.milliseconds` as `Double.description` spells it (`0.379`, `12.0`,
    /// `0.001`), from the integer microseconds: a millisecond count with at most three
    /// decimals below 10^9 ms prints as its shortest decimal, trailing zeros dropped and one
    /// kept after the point.
    static func appendMilliseconds(_ seconds: Double, to buffer: inout [UInt8]) {
        let micros = Int(seconds * 1_000_000)
        guard micros >= 0, micros < 1_000_000_000_000 else {
            buffer.append(contentsOf: "\(Double(micros) / 1000)".utf8)
            return
        }
        buffer.append(contentsOf: String(micros / 1000).utf8)
        buffer.append(UInt8(ascii: "."))
        var fraction = micros % 1000
        guard fraction != 0 else {
            buffer.append(UInt8(ascii: "0"))
            return
        }
        var digits = 3
        while fraction % 10 == 0 {
            fraction /= 10
            digits -= 1
        }
        var divisor = 1
        for _ in 1..<digits { divisor *= 10 }
        while divisor > 0 {
            buffer.append(UInt8(ascii: "0") + UInt8(fraction / divisor % 10))
            divisor /= 10
        }
    }

    private func field(_ key: StaticString, _ value: String, _ buffer: inout [UInt8]) {
        buffer.append(UInt8(ascii: " "))
        key.withUTF8Buffer { buffer.append(contentsOf: $0) }
        buffer.append(UInt8(ascii: "="))
        buffer.append(contentsOf: value.utf8)
    }

    /// `%Y-%m-%dT%H:%M:%S%z` in local time, as StreamLogHandler formats it.
    private func timestamp() -> [UInt8] {
        var now = time(nil)
        return stamp.withLock { cached in
            if cached.second != now || cached.text.isEmpty {
                var parts = tm()
                localtime_r(&now, &parts)
                var text = [CChar](repeating: 0, count: 64)
                let count = strftime(&text, text.count, "%Y-%m-%dT%H:%M:%S%z", &parts)
                cached = (now, text[0..<count].map { UInt8(bitPattern: $0) })
            }
            return cached.text
        }
    }
}

/// Access-log lines in the JSON format, member for member what ``JSONLogHandler`` writes
/// for the server's `info` line.
struct JSONAccessLog: AccessLogFormat {
    let label: String

    func append(_ record: RequestRecord, to buffer: inout [UInt8]) {
        var members: [(String, JSONValue)] = [
            ("time", .string(RFC3339.now())), ("level", "info"), ("label", .string(label)),
            ("message", .string(record.line)), ("bytes_in", .int(record.bytesIn)), ("bytes_out", .int(record.bytesOut)),
        ]
        // Strings that read as numbers become numbers, as JSONLogHandler writes them.
        if let method = record.method { members.append(("method", JSONLogHandler.json(.string(method)))) }
        members.append(("ms", .double(record.milliseconds)))
        if let path = record.path { members.append(("path", JSONLogHandler.json(.string(path)))) }
        members.append(("peer", JSONLogHandler.json(.string(record.peer))))
        if !record.requestID.isEmpty { members.append(("request_id", JSONLogHandler.json(.string(record.requestID)))) }
        members.append(("route", JSONLogHandler.json(.string(record.route))))
        members.append(("status", .int(record.status.code)))
        if let traceID = record.traceID { members.append(("trace_id", JSONLogHandler.json(.string(traceID)))) }
        buffer.append(contentsOf: JSONValue.object(members).bytes)
        buffer.append(UInt8(ascii: "\n"))
    }
}
