import CLossdSystem
import Dispatch
import Logging
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

// MARK: - Time

/// Monotonic nanoseconds, for deadlines.
enum Clock {
    static var now: UInt64 { DispatchTime.now().uptimeNanoseconds }
    static func nanos(_ seconds: Double) -> UInt64 { UInt64(max(0, seconds) * 1e9) }
}

/// Wall-clock timestamps for logs and stored documents: RFC 3339, UTC, with milliseconds.
public enum RFC3339 {
    /// Now, e.g. `2026-12-06T07:40:01.123Z`.
    public static func now() -> String {
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

/// The IMF-fixdate for the `Date` header, formatted at most once a second.
struct HTTPDateCache {
    private var second: time_t = 0
    private var text = ""

    mutating func current() -> String {
        var now = time(nil)
        if now != second || text.isEmpty {
            second = now
            var parts = tm()
            gmtime_r(&now, &parts)
            var buffer = [CChar](repeating: 0, count: 64)
            let n = strftime(&buffer, buffer.count, "%a, %d %b %Y %H:%M:%S GMT", &parts)
            text = String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        }
        return text
    }
}
