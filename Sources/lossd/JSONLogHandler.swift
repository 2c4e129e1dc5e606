import Logging
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// How log lines are written (`--log-format`).
enum LogFormat: String, Sendable {
    /// swift-log's `StreamLogHandler` lines.
    case text
    /// One JSON object per line: `time` (RFC 3339, UTC, milliseconds), `level`, `label`,
    /// `message`, then every metadata field (request id, method, path, status, bytes,
    /// duration, trace id, ...) as its own member.
    case json
}

/// A swift-log handler writing one JSON object per line to standard error, for log
/// pipelines that should not parse text with regular expressions. Each line is written
/// with one `write(2)`, so lines from several threads never interleave.
struct JSONLogHandler: LogHandler {
    let label: String
    var logLevel: Logger.Level = .info
    var metadata: Logger.Metadata = [:]
    var metadataProvider: Logger.MetadataProvider?

    init(label: String, level: Logger.Level) {
        self.label = label
        logLevel = level
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let level = event.level, message = event.message, explicit = event.metadata
        var fields = metadata
        if let provided = metadataProvider?.get() { fields.merge(provided) { _, new in new } }
        if let explicit { fields.merge(explicit) { _, new in new } }
        var out = "{\"time\":\"\(Self.timestamp())\",\"level\":\"\(level.rawValue)\",\"label\":"
        Self.appendString(label, to: &out)
        out += ",\"message\":"
        Self.appendString(message.description, to: &out)
        for key in fields.keys.sorted() where !["time", "level", "label", "message"].contains(key) {
            out += ","
            Self.appendString(key, to: &out)
            out += ":"
            Self.appendValue(fields[key]!, to: &out)
        }
        out += "}\n"
        var bytes = Array(out.utf8)
        bytes.withUnsafeMutableBytes { raw in
            var offset = 0
            while offset < raw.count {
                let n = write(2, raw.baseAddress! + offset, raw.count - offset)
                if n <= 0 { break }
                offset += n
            }
        }
    }

    /// Numbers stay numbers when the whole value is one (status, bytes, ms).
    private static func appendValue(_ value: Logger.Metadata.Value, to out: inout String) {
        switch value {
        case .string(let text):
            if isJSONNumber(text) { out += text } else { appendString(text, to: &out) }
        case .stringConvertible(let convertible):
            appendString(convertible.description, to: &out)
        case .array(let items):
            out += "["
            for (i, item) in items.enumerated() {
                if i > 0 { out += "," }
                appendValue(item, to: &out)
            }
            out += "]"
        case .dictionary(let members):
            out += "{"
            for (i, key) in members.keys.sorted().enumerated() {
                if i > 0 { out += "," }
                appendString(key, to: &out)
                out += ":"
                appendValue(members[key]!, to: &out)
            }
            out += "}"
        }
    }

    /// A plain decimal (no leading zeros but "0", optional fraction): safe to emit bare.
    private static func isJSONNumber(_ text: String) -> Bool {
        var bytes = Substring(text).utf8[...]
        guard !bytes.isEmpty, bytes.count <= 20 else { return false }
        if bytes.first == UInt8(ascii: "-") { bytes = bytes.dropFirst() }
        guard let first = bytes.first, (48...57).contains(first) else { return false }
        if first == 48, bytes.count > 1, bytes[bytes.index(after: bytes.startIndex)] != UInt8(ascii: ".") { return false }
        var seenDot = false
        var last: UInt8 = 0
        for b in bytes {
            if b == UInt8(ascii: ".") {
                if seenDot { return false }
                seenDot = true
            } else if !(48...57).contains(b) {
                return false
            }
            last = b
        }
        return last != UInt8(ascii: ".")
    }

    static func appendString(_ text: String, to out: inout String) {
        out += "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 {
                    let hex = String(scalar.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        out += "\""
    }

    /// RFC 3339 UTC with milliseconds, e.g. 2026-12-06T07:40:01.123Z.
    static func timestamp() -> String {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        var seconds = now.tv_sec
        var parts = tm()
        gmtime_r(&seconds, &parts)
        var buffer = [CChar](repeating: 0, count: 32)
        let n = strftime(&buffer, buffer.count, "%Y-%m-%dT%H:%M:%S", &parts)
        let base = String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        let millis = Int(now.tv_nsec / 1_000_000)
        return base + "." + (millis < 10 ? "00" : millis < 100 ? "0" : "") + String(millis) + "Z"
    }
}
