import LossdHTTP
import Logging
import LossdService
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
        var fields = metadata
        if let provided = metadataProvider?.get() { fields.merge(provided) { _, new in new } }
        if let explicit = event.metadata { fields.merge(explicit) { _, new in new } }
        var members: [(String, JSONValue)] = [
            ("time", .string(Self.timestamp())), ("level", .string(event.level.rawValue)), ("label", .string(label)),
            ("message", .string(event.message.description)),
        ]
        for key in fields.keys.sorted() where !["time", "level", "label", "message"].contains(key) {
            members.append((key, Self.json(fields[key]!)))
        }
        var bytes = JSONValue.object(members).bytes
        bytes.append(UInt8(ascii: "\n"))
        bytes.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let n = write(2, raw.baseAddress! + offset, raw.count - offset)
                if n <= 0 { break }
                offset += n
            }
        }
    }

    /// A metadata value as JSON; numbers stay numbers when the whole value is one (status,
    /// bytes, ms).
    static func json(_ value: Logger.Metadata.Value) -> JSONValue {
        switch value {
        case .string(let text):
            guard isJSONNumber(text) else { return .string(text) }
            if let integer = Int(text) { return .int(integer) }
            return Double(text).map { .double($0) } ?? .string(text)
        case .stringConvertible(let convertible):
            return .string(convertible.description)
        case .array(let items):
            return .array(items.map(json))
        case .dictionary(let members):
            return .object(members.keys.sorted().map { ($0, json(members[$0]!)) })
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

    /// RFC 3339 UTC with milliseconds, e.g. 2026-12-06T07:40:01.123Z.
    static func timestamp() -> String { RFC3339.now() }
}
