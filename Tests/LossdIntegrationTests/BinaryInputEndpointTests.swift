import Foundation
import LossdTestSupport
import Testing

/// gzip and multipart/form-data (`.npy` parts) through the real binary, with the bodies that
/// `curl -F request=@req.json -F logits=@logits.npy` and `curl --compressed` send.
@Suite("lossd binary and compressed inputs over real sockets")
struct BinaryInputEndpointTests {
    static let request = #"{"loss": "cross_entropy", "labels": [0, 2]}"#
    static let json = #"{"loss": "cross_entropy", "logits": [[2, 0.5, -1], [0.125, 0.25, 0.375]], "labels": [0, 2]}"#

    func post(_ lossd: LossdProcess, _ body: [UInt8], headers: String) throws -> WireResponse {
        let client = try lossd.connect()
        try client.send("POST /v1/loss HTTP/1.1\r\nHost: x\r\n\(headers)Content-Length: \(body.count)\r\n\r\n")
        try client.send(body)
        return try client.readResponse()
    }

    /// logits.npy as `np.save` writes a float32 (2, 3) array.
    static var logitsNPY: [UInt8] {
        var header = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }"
        while (10 + header.utf8.count + 1) % 64 != 0 { header += " " }
        header += "\n"
        let data = [Float(2), 0.5, -1, 0.125, 0.25, 0.375].flatMap { withUnsafeBytes(of: $0.bitPattern.littleEndian, Array.init) }
        return [0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(header.utf8.count), 0] + Array(header.utf8) + data
    }

    /// The body curl builds for `-F request=@req.json -F logits=@logits.npy`.
    static func formBody(boundary: String) -> [UInt8] {
        var body: [UInt8] = []
        body += Array("--\(boundary)\r\nContent-Disposition: form-data; name=\"request\"; filename=\"req.json\"\r\nContent-Type: application/json\r\n\r\n".utf8)
        body += Array(request.utf8) + Array("\r\n".utf8)
        body += Array("--\(boundary)\r\nContent-Disposition: form-data; name=\"logits\"; filename=\"logits.npy\"\r\nContent-Type: application/octet-stream\r\n\r\n".utf8)
        body += logitsNPY + Array("\r\n--\(boundary)--\r\n".utf8)
        return body
    }

    /// Runs `gzip` over stdin (compressing, or with `-d` inflating).
    static func gzip(_ arguments: [String], _ input: [UInt8]) throws -> [UInt8] {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["gzip"] + arguments
        let stdin = Pipe(), stdout = Pipe()
        process.standardInput = stdin
        process.standardOutput = stdout
        try process.run()
        let writer = Thread { stdin.fileHandleForWriting.write(Data(input)); try? stdin.fileHandleForWriting.close() }
        writer.start()
        let output = stdout.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Array(output)
    }

    @Test func curlFormWithAnNpyPartMatchesTheJSONAnswer() throws {
        let lossd = try LossdProcess()
        let reference = try post(lossd, Array(Self.json.utf8), headers: "Content-Type: application/json\r\n")
        let boundary = "------------------------d74496d66958873e"
        let response = try post(lossd, Self.formBody(boundary: boundary), headers: "Content-Type: multipart/form-data; boundary=\(boundary)\r\n")
        #expect(response.status == 200, "\(response.bodyText)")
        #expect(response.json?["value"] as? Double != nil)
        #expect(response.json?["value"] as? Double == reference.json?["value"] as? Double)
    }

    @Test func gzipRequestBodyFromTheGzipTool() throws {
        let lossd = try LossdProcess()
        let body = try Self.gzip(["-c"], Array(Self.json.utf8))
        let response = try post(lossd, body, headers: "Content-Type: application/json\r\nContent-Encoding: gzip\r\n")
        #expect(response.status == 200, "\(response.bodyText)")
        let bad = try post(lossd, Array(Self.json.utf8), headers: "Content-Type: application/json\r\nContent-Encoding: br\r\n")
        #expect(bad.status == 415)
        #expect(bad.header("content-type") == "application/problem+json")
    }

    @Test func gzipBodiesMayNotInflatePastTheConfiguredBodyLimit() throws {
        let lossd = try LossdProcess(["--max-body-bytes", "4096"])
        // 300 bytes on the wire, 100 kB once inflated: over --max-body-bytes, so 413.
        let padded = String(Self.json.dropLast()) + ", \"padding\": \"" + String(repeating: "a", count: 100_000) + "\"}"
        let body = try Self.gzip(["-c"], Array(padded.utf8))
        #expect(body.count < 4096)
        let response = try post(lossd, body, headers: "Content-Type: application/json\r\nContent-Encoding: gzip\r\n")
        #expect(response.status == 413, "\(response.bodyText)")
        #expect(response.json?["type"] as? String == "urn:lossd:error:content_too_large")
    }

    @Test func fortranOrderPartIs422NamingIt() throws {
        let lossd = try LossdProcess()
        let boundary = "xYzZY"
        var patched = Self.formBody(boundary: boundary)
        let needle = Array("False".utf8)
        let at = try #require((0...(patched.count - needle.count)).first { Array(patched[$0..<($0 + needle.count)]) == needle })
        patched.replaceSubrange(at..<(at + needle.count), with: Array("True ".utf8))
        let response = try post(lossd, patched, headers: "Content-Type: multipart/form-data; boundary=\(boundary)\r\n")
        #expect(response.status == 422)
        #expect(response.json?["field"] as? String == "/logits")
    }

    @Test func largeResponsesComeBackGzippedWhenAccepted() throws {
        let lossd = try LossdProcess()
        let rows = (0..<200).map { i in "[\(Double(i) / 7), 0.5, -1]" }.joined(separator: ", ")
        let labels = (0..<200).map { String($0 % 3) }.joined(separator: ", ")
        let json = #"{"loss": "cross_entropy", "reduction": "none", "logits": [\#(rows)], "labels": [\#(labels)]}"#
        let plain = try post(lossd, Array(json.utf8), headers: "Content-Type: application/json\r\n")
        let compressed = try post(lossd, Array(json.utf8), headers: "Content-Type: application/json\r\nAccept-Encoding: gzip, deflate\r\n")
        #expect(plain.status == 200 && plain.body.count >= 1024)
        #expect(plain.header("content-encoding") == nil)
        #expect(compressed.header("content-encoding") == "gzip")
        #expect(compressed.header("vary") == "Accept, Accept-Encoding")
        #expect(compressed.body.count < plain.body.count)
        #expect(try Self.gzip(["-dc"], compressed.body) == plain.body)
    }

    /// The compression policy: bodies above --gzip-max-bytes go out as identity (still with
    /// `Vary`), bodies below --gzip-min-bytes too, and the level is configurable.
    @Test func responsesOutsideTheGzipBoundsGoOutAsIdentity() throws {
        let rows = (0..<2000).map { i in "[\(Double(i) / 7), 0.5, -1]" }.joined(separator: ", ")
        let labels = (0..<2000).map { String($0 % 3) }.joined(separator: ", ")
        let json = Array(#"{"loss": "cross_entropy", "reduction": "none", "return_grad": true, "logits": [\#(rows)], "labels": [\#(labels)]}"#.utf8)
        let accept = "Content-Type: application/json\r\nAccept-Encoding: gzip\r\n"
        // About 150 KB of JSON: above a 64 KiB ceiling, below the default 1 MiB one.
        let capped = try LossdProcess(["--gzip-max-bytes", "65536"])
        let large = try post(capped, json, headers: accept)
        #expect(large.status == 200 && large.body.count > 65536)
        #expect(large.header("content-encoding") == nil)
        #expect(large.header("vary") == "Accept, Accept-Encoding")
        let defaults = try LossdProcess(["--gzip-level", "6"])
        let compressed = try post(defaults, json, headers: accept)
        #expect(compressed.header("content-encoding") == "gzip")
        #expect(try Self.gzip(["-dc"], compressed.body) == large.body)
        let floor = try LossdProcess(["--gzip-min-bytes", "1000000"])
        #expect(try post(floor, json, headers: accept).header("content-encoding") == nil)
        let off = try LossdProcess(["--gzip-level", "0"])
        #expect(try post(off, json, headers: accept).header("content-encoding") == nil)
    }
}
