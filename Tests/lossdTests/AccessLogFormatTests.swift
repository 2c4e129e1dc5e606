import Foundation
@testable import LossdHTTP
import Testing

@testable import lossd

/// The access-log formats write, without swift-log's metadata dictionaries, the lines the
/// log handlers write for the server's `info` line.
@Suite("Access-log formats")
struct AccessLogFormatTests {
    static let record = RequestRecord(
        method: "POST", path: "/v1/loss", route: "/v1/loss", status: .ok, bytesIn: 5224, bytesOut: 1337,
        duration: 0.000_379_9, peer: "127.0.0.1:60710", requestID: "6452b3e3-2",
        traceID: "4bf92f3577b34da6a3ce929d0e0e4736")

    /// StreamLogHandler's layout: time stamp, level, label, sorted `key=value` metadata,
    /// `[source]`, message.
    @Test func theTextLineIsStreamLogHandlers() {
        var buffer: [UInt8] = []
        TextAccessLog(label: "lossd").append(Self.record, to: &buffer)
        let line = String(decoding: buffer, as: UTF8.self)
        let stamp = line.prefix { $0 != " " }
        #expect(stamp.count == 24, "\(stamp)")  // 2026-12-06T22:49:55+0000
        #expect(stamp.wholeMatch(of: /\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d{4}/) != nil, "\(stamp)")
        #expect(
            line.dropFirst(stamp.count)
                == " info lossd: bytes_in=5224 bytes_out=1337 method=POST ms=0.379 path=/v1/loss peer=127.0.0.1:60710"
                + " request_id=6452b3e3-2 route=/v1/loss status=200 trace_id=4bf92f3577b34da6a3ce929d0e0e4736"
                + " [LossdHTTP] POST /v1/loss\n")
    }

    /// A request whose line was never read: no method, path or request ID; the message is `-`.
    @Test func aTextLineWithoutARequestLine() {
        var record = RequestRecord(method: nil, path: nil, status: .requestTimeout, bytesIn: 12, bytesOut: 150, duration: 10)
        record.peer = "[::1]:5000"
        record.route = "none"
        var buffer: [UInt8] = []
        TextAccessLog(label: "lossd").append(record, to: &buffer)
        let line = String(decoding: buffer, as: UTF8.self)
        #expect(
            line.drop { $0 != " " }
                == " info lossd: bytes_in=12 bytes_out=150 ms=10000.0 peer=[::1]:5000 route=none status=408 [LossdHTTP] -\n")
    }

    /// The `ms` field is written from integer microseconds, as `Double.description` spells
    /// the truncated milliseconds.
    @Test func millisecondsAreSpelledAsDoubleDescriptionSpellsThem() {
        var micros: [Int] = Array(0...2000) + [9_999, 10_000, 10_500, 123_456, 1_000_000, 59_999_999, 60_000_000, 123_456_789_012]
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<2000 { micros.append(Int.random(in: 0..<100_000_000_000, using: &generator)) }
        for micro in micros {
            // Seconds as the server computes them, from nanoseconds.
            let seconds = Double(micro) / 1_000_000 + 0.000_000_4
            var buffer: [UInt8] = []
            TextAccessLog.appendMilliseconds(seconds, to: &buffer)
            let record = RequestRecord(method: nil, path: nil, status: .ok, bytesIn: 0, bytesOut: 0, duration: seconds)
            #expect(String(decoding: buffer, as: UTF8.self) == "\(record.milliseconds)", "\(micro) µs")
        }
    }

    /// JSONLogHandler's members, numbers as numbers.
    @Test func theJSONLineIsJSONLogHandlers() throws {
        var buffer: [UInt8] = []
        JSONAccessLog(label: "lossd").append(Self.record, to: &buffer)
        #expect(buffer.last == UInt8(ascii: "\n"))
        let object = try #require(try JSONSerialization.jsonObject(with: Data(buffer)) as? [String: Any])
        #expect(object["level"] as? String == "info")
        #expect(object["label"] as? String == "lossd")
        #expect(object["message"] as? String == "POST /v1/loss")
        #expect(object["bytes_in"] as? Int == 5224 && object["bytes_out"] as? Int == 1337)
        #expect(object["status"] as? Int == 200)
        #expect(object["ms"] as? Double == 0.379)
        #expect(object["request_id"] as? String == "6452b3e3-2")
        #expect(object["trace_id"] as? String == "4bf92f3577b34da6a3ce929d0e0e4736")
        #expect(object["peer"] as? String == "127.0.0.1:60710" && object["route"] as? String == "/v1/loss")
        #expect((object["time"] as? String)?.hasSuffix("Z") == true)
        #expect(Set(object.keys).count == 14)
    }
}
