import Foundation
import LossdHTTP
import Testing

@testable import LossdService

/// gzip request bodies, multipart/form-data with `.npy` parts, and gzip responses, in process.
@Suite("Binary and compressed inputs")
struct BinaryInputTests {
    static let logits: [Double] = [2, 0.5, -1, 0.125, 0.25, 0.375]  // exact in float32
    static let json = #"{"loss": "cross_entropy", "logits": [[2, 0.5, -1], [0.125, 0.25, 0.375]], "labels": [0, 2]}"#

    func send(_ body: [UInt8], _ headers: [(String, String)], path: String = "/v1/loss", method: String = "POST") -> HTTPResponse {
        var fields = HTTPHeaders()
        for (name, value) in headers { fields.add(name: name, value: value) }
        let head = HTTPRequestHead(method: method, target: path, version: .http1_1, headers: fields)
        return LossdService(configuration: ServiceConfiguration())
            .respond(to: HTTPRequest(head: head, body: body), context: RequestContext(requestID: "t", remoteAddress: "t"))
    }

    func object(_ response: HTTPResponse) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any]) ?? [:]
    }

    /// An .npy file: header padded to a multiple of 64 bytes, then the raw data.
    func npy(_ descr: String, shape: [Int], data: [UInt8], fortran: Bool = false, major: UInt8 = 1, rawDescr: String? = nil) -> [UInt8] {
        let shapeText = shape.count == 1 ? "(\(shape[0]),)" : "(" + shape.map(String.init).joined(separator: ", ") + ")"
        var header = "{'descr': \(rawDescr ?? "'\(descr)'"), 'fortran_order': \(fortran ? "True" : "False"), 'shape': \(shapeText), }"
        let prefix = major == 1 ? 10 : 12
        while (prefix + header.utf8.count + 1) % 64 != 0 { header += " " }
        header += "\n"
        var bytes: [UInt8] = [0x93] + Array("NUMPY".utf8) + [major, 0]
        let length = header.utf8.count
        bytes += major == 1 ? [UInt8(length & 0xFF), UInt8(length >> 8)] : (0..<4).map { UInt8((length >> (8 * $0)) & 0xFF) }
        return bytes + Array(header.utf8) + data
    }

    static func littleEndian<T: FixedWidthInteger>(_ values: [T]) -> [UInt8] {
        values.flatMap { withUnsafeBytes(of: $0.littleEndian, Array.init) }
    }
    static func float64(_ values: [Double]) -> [UInt8] { littleEndian(values.map(\.bitPattern)) }
    static func float32(_ values: [Double]) -> [UInt8] { littleEndian(values.map { Float($0).bitPattern }) }

    func multipart(_ parts: [(String, [UInt8])], boundary: String = "----lossdTestBoundary7MA4YWxk") -> (body: [UInt8], contentType: String) {
        var body: [UInt8] = []
        for (name, bytes) in parts {
            let file = name == "request" ? "req.json" : "\(name).npy"
            let type = name == "request" ? "application/json" : "application/octet-stream"
            body += Array("--\(boundary)\r\nContent-Disposition: form-data; name=\"\(name)\"; filename=\"\(file)\"\r\nContent-Type: \(type)\r\n\r\n".utf8)
            body += bytes + Array("\r\n".utf8)
        }
        body += Array("--\(boundary)--\r\n".utf8)
        return (body, "multipart/form-data; boundary=\(boundary)")
    }

    var expectedValue: Double {
        object(send(Array(Self.json.utf8), [("Content-Type", "application/json")]))["value"] as! Double
    }

    // MARK: gzip requests

    @Test func gzipBodyIsInflated() throws {
        let gz = try #require(Gzip.deflate(Array(Self.json.utf8)))
        let response = send(gz, [("Content-Type", "application/json"), ("Content-Encoding", "gzip")])
        #expect(response.status.code == 200)
        #expect(object(response)["value"] as? Double == expectedValue)
    }

    @Test func gzipBombIs413WithoutInflatingPastTheLimit() throws {
        let bomb = try #require(Gzip.deflate([UInt8](repeating: 0x20, count: HTTPParserLimits.defaultMaxBodyBytes + 1), level: 9))
        #expect(bomb.count < 200_000)
        let response = send(bomb, [("Content-Type", "application/json"), ("Content-Encoding", "gzip")])
        #expect(response.status.code == 413)
        #expect(object(response)["type"] as? String == "urn:lossd:error:content_too_large")
        #expect(throws: Gzip.InflateError.tooLarge) { try Gzip.inflate(Gzip.deflate([UInt8](repeating: 1, count: 5000))!, limit: 4999) }
        #expect(try Gzip.inflate(Gzip.deflate([UInt8](repeating: 1, count: 5000))!, limit: 5000).count == 5000)
    }

    @Test(arguments: [
        Array("not gzip at all".utf8),
        [],
        Array(Gzip.deflate(Array(json.utf8))!.dropLast(5)),  // truncated
        Gzip.deflate(Array(json.utf8))!.enumerated().map { $0.offset == 20 ? $0.element ^ 0xFF : $0.element },  // corrupt
    ])
    func malformedGzipIs400(_ body: [UInt8]) {
        let response = send(body, [("Content-Type", "application/json"), ("Content-Encoding", "gzip")])
        #expect(response.status.code == 400, "\(object(response))")
    }

    @Test(arguments: ["br", "deflate", "compress", "zstd", "gzip, br"])
    func otherEncodingsAre415(_ encoding: String) {
        let response = send(Array(Self.json.utf8), [("Content-Type", "application/json"), ("Content-Encoding", encoding)])
        #expect(response.status.code == 415)
    }

    @Test func identityEncodingIsAccepted() {
        #expect(send(Array(Self.json.utf8), [("Content-Encoding", "identity")]).status.code == 200)
    }

    // MARK: multipart with .npy

    @Test(arguments: ["<f4", "<f8", "|f8", "=f4"])
    func floatNpyPartsGiveTheJSONAnswer(_ descr: String) {
        let data = descr.hasSuffix("4") ? Self.float32(Self.logits) : Self.float64(Self.logits)
        let request = #"{"loss": "cross_entropy", "labels": [0, 2]}"#
        let (body, type) = multipart([("request", Array(request.utf8)), ("logits", npy(descr, shape: [2, 3], data: data))])
        let response = send(body, [("Content-Type", type)])
        #expect(response.status.code == 200, "\(object(response))")
        #expect(object(response)["value"] as? Double == expectedValue)
    }

    @Test(arguments: [(UInt8(1), "<i4"), (2, "<i8"), (3, "<i4"), (1, "=i8")])
    func integerNpyPartsAndEveryFormatVersion(_ major: UInt8, _ descr: String) {
        let labels = descr.hasSuffix("4") ? Self.littleEndian([Int32(0), 2]) : Self.littleEndian([Int64(0), 2])
        let logits = descr.hasSuffix("4") ? Self.littleEndian([Int32(2), 1, -1, 0, 1, 3]) : Self.littleEndian([Int64(2), 1, -1, 0, 1, 3])
        let (body, type) = multipart([
            ("request", Array(#"{"loss": "cross_entropy"}"#.utf8)),
            ("logits", npy(descr, shape: [2, 3], data: logits, major: major)),
            ("labels", npy(descr, shape: [2], data: labels, major: major)),
        ])
        let response = send(body, [("Content-Type", type)])
        #expect(response.status.code == 200, "\(object(response))")
        let reference = object(send(Array(#"{"loss": "cross_entropy", "logits": [[2, 1, -1], [0, 1, 3]], "labels": [0, 2]}"#.utf8), []))
        #expect(object(response)["value"] as? Double == reference["value"] as? Double)
    }

    @Test func aPartOverridesTheJSONField() {
        let request = #"{"loss": "cross_entropy", "logits": [[9, 9, 9], [9, 9, 0]], "labels": [0, 2]}"#
        let (body, type) = multipart([("request", Array(request.utf8)), ("logits", npy("<f8", shape: [2, 3], data: Self.float64(Self.logits)))])
        let response = send(body, [("Content-Type", type)])
        #expect(object(response)["value"] as? Double == expectedValue)
    }

    @Test func gzipMultipartBody() throws {
        let (body, type) = multipart([
            ("request", Array(#"{"loss": "cross_entropy", "labels": [0, 2]}"#.utf8)),
            ("logits", npy("<f8", shape: [2, 3], data: Self.float64(Self.logits))),
        ])
        let response = send(try #require(Gzip.deflate(body)), [("Content-Type", type), ("Content-Encoding", "gzip")])
        #expect(object(response)["value"] as? Double == expectedValue)
    }

    @Test(arguments: [
        ("fortran", "Fortran"), ("object", "dtype |O"), ("bigendian", "dtype >f8"), ("float16", "dtype <f2"),
        ("truncated", "truncated"), ("trailing", "follow the data"), ("badmagic", "magic"), ("structured", "structured"),
    ])
    func badNpyPartsAre422NamingTheField(_ kind: String, _ message: String) {
        let data = Self.float64(Self.logits)
        let part: [UInt8] =
            switch kind {
            case "fortran": npy("<f8", shape: [2, 3], data: data, fortran: true)
            case "object": npy("|O", shape: [2, 3], data: [UInt8](repeating: 0, count: 48))
            case "bigendian": npy(">f8", shape: [2, 3], data: data)
            case "float16": npy("<f2", shape: [2, 3], data: [UInt8](repeating: 0, count: 12))
            case "truncated": Array(npy("<f8", shape: [2, 3], data: data).dropLast(3))
            case "trailing": npy("<f8", shape: [2, 3], data: data + [0])
            case "structured": npy("", shape: [2, 3], data: data, rawDescr: "[('a', '<f8')]")
            default: Array("no npy here".utf8)
            }
        let request = #"{"loss": "cross_entropy", "labels": [0, 2]}"#
        let (body, type) = multipart([("request", Array(request.utf8)), ("logits", part)])
        let response = send(body, [("Content-Type", type)])
        #expect(response.status.code == 422, "\(kind): \(object(response))")
        #expect((object(response)["detail"] as? String)?.contains(message) == true, "\(kind): \(object(response))")
        #expect(object(response)["field"] as? String == "/logits", "\(kind): \(object(response))")
    }

    @Test func nonFiniteNpyValuesAre422AtTheElement() {
        let (body, type) = multipart([
            ("request", Array(#"{"loss": "cross_entropy", "labels": [0, 2]}"#.utf8)),
            ("logits", npy("<f8", shape: [2, 3], data: Self.float64([1, 2, 3, 4, .nan, 6]))),
        ])
        let response = send(body, [("Content-Type", type)])
        #expect(response.status.code == 422)
        #expect(object(response)["field"] as? String == "/logits/1/1")
    }

    @Test(arguments: [
        ("multipart/form-data", "--x\r\nContent-Disposition: form-data; name=\"request\"\r\n\r\n{}\r\n--x--"),  // no boundary
        ("multipart/form-data; boundary=x", "--x\r\nContent-Disposition: form-data; name=\"request\"\r\n\r\n{}"),  // unclosed
        ("multipart/form-data; boundary=x", "--x\r\nContent-Disposition: form-data\r\n\r\n{}\r\n--x--"),  // no name
        ("multipart/form-data; boundary=x", "--x\r\nContent-Disposition: form-data; name=\"labels\"\r\n\r\n{}\r\n--x--"),  // no request
        ("multipart/form-data; boundary=x", "--x\r\nContent-Disposition: form-data; name=\"request\"\r\n\r\n{}\r\n--x\r\nContent-Disposition: form-data; name=\"request\"\r\n\r\n{}\r\n--x--"),
        ("multipart/form-data; boundary=x", "--x\r\nContent-Disposition: form-data; name=\"request\"\r\nX: " + String(repeating: "a", count: 9000) + "\r\n\r\n{}\r\n--x--"),
    ])
    func malformedMultipartIs400(_ contentType: String, _ body: String) {
        let response = send(Array(body.utf8), [("Content-Type", contentType)])
        #expect(response.status.code == 400, "\(object(response))")
    }

    @Test func tooManyPartsIs400() {
        var body = "--b\r\nContent-Disposition: form-data; name=\"request\"\r\n\r\n{}\r\n"
        for i in 0..<Multipart.maxParts { body += "--b\r\nContent-Disposition: form-data; name=\"p\(i)\"\r\n\r\nx\r\n" }
        body += "--b--\r\n"
        #expect(send(Array(body.utf8), [("Content-Type", "multipart/form-data; boundary=b")]).status.code == 400)
    }

    @Test func otherContentTypesAre415() {
        #expect(send(Array(Self.json.utf8), [("Content-Type", "application/x-npy")]).status.code == 415)
    }

    // MARK: gzip responses

    @Test func largeResponsesAreGzippedWhenAccepted() throws {
        let plain = send([], [], path: "/openapi.yaml", method: "GET")
        let gz = send([], [("Accept-Encoding", "deflate, gzip;q=0.5")], path: "/openapi.yaml", method: "GET")
        #expect(gz.headers["content-encoding"] == "gzip")
        #expect(gz.headers["vary"] == "Accept-Encoding")
        #expect(gz.body.count < plain.body.count)
        #expect(try Gzip.inflate(gz.body, limit: 1 << 24) == plain.body)
        #expect(plain.headers["content-encoding"] == nil)
    }

    @Test(arguments: ["gzip;q=0", "br", "identity", "*;q=0", "gzip;q=0, *"])
    func responsesStayPlainUnlessGzipIsAccepted(_ accept: String) {
        let response = send([], [("Accept-Encoding", accept)], path: "/openapi.yaml", method: "GET")
        #expect(response.headers["content-encoding"] == nil)
    }

    @Test func smallResponsesStayPlain() {
        let response = send(Array(Self.json.utf8), [("Accept-Encoding", "gzip")])
        #expect(response.status.code == 200 && response.body.count < 1024)
        #expect(response.headers["content-encoding"] == nil)
    }
}
