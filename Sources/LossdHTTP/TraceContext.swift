/// W3C Trace Context (`traceparent`, https://www.w3.org/TR/trace-context/): a request that
/// carries a valid header has its trace id logged (`trace_id`) and the header echoed on
/// the answer, so lossd's lines join the caller's trace.
enum TraceContext {
    /// The trace id of a valid `traceparent` value `00-<32 hex>-<16 hex>-<2 hex>` (lower-case
    /// hex, ids not all zero; a later version may append fields after the flags), else nil.
    static func traceID(_ value: String) -> String? {
        let bytes = Array(value.utf8)
        guard bytes.count >= 55, bytes[2] == UInt8(ascii: "-"), bytes[35] == UInt8(ascii: "-"),
            bytes[52] == UInt8(ascii: "-")
        else { return nil }
        func isHex(_ range: Range<Int>) -> Bool {
            bytes[range].allSatisfy { (48...57).contains($0) || (97...102).contains($0) }
        }
        guard isHex(0..<2), isHex(3..<35), isHex(36..<52), isHex(53..<55) else { return nil }
        let version = bytes[0..<2]
        // Version ff is invalid; version 00 has exactly 55 characters.
        guard !(version.elementsEqual("ff".utf8)) else { return nil }
        if version.elementsEqual("00".utf8) && bytes.count != 55 { return nil }
        if bytes.count > 55 && bytes[55] != UInt8(ascii: "-") { return nil }
        guard !bytes[3..<35].allSatisfy({ $0 == UInt8(ascii: "0") }), !bytes[36..<52].allSatisfy({ $0 == UInt8(ascii: "0") })
        else { return nil }
        return String(decoding: bytes[3..<35], as: UTF8.self)
    }
}
