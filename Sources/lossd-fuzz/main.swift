// lossd-fuzz: libFuzzer targets for lossd's byte-level parsers and the /v1/loss decoding path.
//
// Built by scripts/fuzz.sh with `-sanitize=fuzzer,address -D LOSSD_FUZZING`. SwiftPM renames
// an executable's `main`, so libFuzzer's own `main` never runs; this file calls
// `LLVMFuzzerRunDriver` itself instead. Without `LOSSD_FUZZING` (a plain `swift build`) it
// only prints usage, so the package still links without libFuzzer.
//
// Target: the first argument (`lossd-fuzz http -max_total_time=60 corpus/`) or
// `LOSSD_FUZZ_TARGET`. Every other argument goes to libFuzzer.
//
//   http     HTTPRequestParser: the input (after a 2-byte split point) is fed in two pieces
//            and in one; next() runs until nil or a throw. Must never trap, and both
//            feedings must give the same requests and the same error kind.
//   json     JSONReader.parse on the input. Must never trap.
//   decimal  DecimalParsing.scan on the input and on the input mapped onto number
//            characters; whenever the whole text scans as a number, the value must be
//            bit-equal to glibc strtod's.
//   service  LossdService.respond to POST /v1/loss with the input as the JSON body. Must
//            never trap and never answer 5xx. The next three go the same way and hold to
//            the same rules:
//   npy      the input as the .npy part `logits` of a multipart/form-data body (NPY.read).
//   multipart  the input as a whole multipart/form-data body, boundary `b`.
//   gzip     the input as a `Content-Encoding: gzip` JSON body.
#if canImport(Glibc)
    import Glibc
#endif
import LossdHTTP
import LossdJSON
import LossdService

/// Process-wide state the targets read; set before the driver starts.
enum Fuzz {
    static let targetNames = ["http", "json", "decimal", "service", "npy", "multipart", "gzip"]
    /// Number characters, weighted towards digits, so that most mapped inputs are numbers.
    static let numberAlphabet: [UInt8] = Array("0123456789012345678901234567890123456789.e-+E9".utf8)
    static let service = LossdService(configuration: ServiceConfiguration(dataDirectory: "/nonexistent-lossd-fuzz"))
    static let context = RequestContext(requestID: "fuzz", remoteAddress: "fuzz")
    /// The multipart body around an `npy` input.
    static let npyPrefix = Array(
        """
        --lossd-fuzz-boundary\r
        Content-Disposition: form-data; name="request"\r
        Content-Type: application/json\r
        \r
        {"loss": "cross_entropy", "labels": [0, 1]}\r
        --lossd-fuzz-boundary\r
        Content-Disposition: form-data; name="logits"; filename="logits.npy"\r
        Content-Type: application/octet-stream\r
        \r

        """.utf8)
    static let npySuffix = Array("\r\n--lossd-fuzz-boundary--\r\n".utf8)
    nonisolated(unsafe) static var selected: (UnsafeBufferPointer<UInt8>) -> Void = { _ in }
}

/// Writes to standard error (fd 2; Glibc's `stderr` is not concurrency-safe in Swift 6).
func printError(_ text: String) {
    var text = text
    text.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
}

func fail(_ message: String) -> Never {
    printError("lossd-fuzz: FINDING: \(message)\n")
    abort()
}

// MARK: http

/// What one feeding of the parser produced, for comparing feedings.
enum ParserTrace: Equatable {
    case head(method: String, target: String, framing: String)
    case request(method: String, target: String, body: [UInt8], trailers: Int)
    case error(HTTPParseError.Kind)
}

func runParser(_ pieces: [ArraySlice<UInt8>]) -> [ParserTrace] {
    var parser = HTTPRequestParser()
    var trace: [ParserTrace] = []
    for piece in pieces {
        parser.append(piece)
        do {
            while let event = try parser.next() {
                switch event {
                case .head(let head):
                    trace.append(.head(method: head.method, target: head.target, framing: "\(head.framing)"))
                case .request(let request):
                    trace.append(
                        .request(method: request.method, target: request.head.target, body: request.body, trailers: request.trailers.count))
                }
                if trace.count > 10_000 { fail("parser produced more than 10000 events") }
            }
        } catch {
            trace.append(.error(error.kind))
            return trace
        }
    }
    return trace
}

func fuzzHTTP(_ data: UnsafeBufferPointer<UInt8>) {
    guard data.count >= 2 else { return }
    let bytes = Array(data[2...])
    let split = (Int(data[0]) | Int(data[1]) << 8) % (bytes.count + 1)
    let twoPieces = runParser([bytes[..<split], bytes[split...]])
    let onePiece = runParser([bytes[...]])
    if twoPieces != onePiece {
        fail("split at \(split) changes the parse:\n  one piece:  \(onePiece)\n  two pieces: \(twoPieces)")
    }
}

// MARK: json

func fuzzJSON(_ data: UnsafeBufferPointer<UInt8>) {
    _ = try? JSONReader.parse(Array(data))
}

// MARK: decimal

func checkDecimal(_ bytes: [UInt8]) {
    guard !bytes.isEmpty else { return }
    let scanned = bytes.withUnsafeBufferPointer { try? DecimalParsing.scan($0, from: 0) }
    guard let scanned, scanned.end == bytes.count else { return }
    let reference = (bytes + [0]).withUnsafeBufferPointer { buffer in
        buffer.withMemoryRebound(to: CChar.self) { strtod($0.baseAddress!, nil) }
    }
    if scanned.value.bitPattern != reference.bitPattern {
        let text = String(decoding: bytes, as: UTF8.self)
        fail("DecimalParsing.scan(\"\(text)\") = \(scanned.value) (0x\(String(scanned.value.bitPattern, radix: 16))), strtod = \(reference) (0x\(String(reference.bitPattern, radix: 16)))")
    }
}

func fuzzDecimal(_ data: UnsafeBufferPointer<UInt8>) {
    checkDecimal(Array(data))
    checkDecimal(data.map { Fuzz.numberAlphabet[Int($0) % Fuzz.numberAlphabet.count] })
}

// MARK: service

func postLoss(_ body: [UInt8], headers: HTTPHeaders) {
    var headers = headers
    headers.add(name: "Content-Length", value: "\(body.count)")
    let head = HTTPRequestHead(
        method: "POST", target: "/v1/loss", version: .http1_1, headers: headers, framing: .contentLength(body.count))
    let response = Fuzz.service.respond(to: HTTPRequest(head: head, body: body), context: Fuzz.context)
    if response.status.code >= 500 {
        fail("POST /v1/loss answered \(response.status): \(String(decoding: response.body, as: UTF8.self))")
    }
}

func fuzzService(_ data: UnsafeBufferPointer<UInt8>) {
    postLoss(Array(data), headers: ["Content-Type": "application/json"])
}

func fuzzNPY(_ data: UnsafeBufferPointer<UInt8>) {
    postLoss(Fuzz.npyPrefix + Array(data) + Fuzz.npySuffix, headers: ["Content-Type": "multipart/form-data; boundary=lossd-fuzz-boundary"])
}

func fuzzMultipart(_ data: UnsafeBufferPointer<UInt8>) {
    postLoss(Array(data), headers: ["Content-Type": "multipart/form-data; boundary=b"])
}

func fuzzGzip(_ data: UnsafeBufferPointer<UInt8>) {
    postLoss(Array(data), headers: ["Content-Type": "application/json", "Content-Encoding": "gzip"])
}

// MARK: driver

func select(_ name: String) -> ((UnsafeBufferPointer<UInt8>) -> Void)? {
    switch name {
    case "http": return fuzzHTTP
    case "json": return fuzzJSON
    case "decimal": return fuzzDecimal
    case "service": return fuzzService
    case "npy": return fuzzNPY
    case "multipart": return fuzzMultipart
    case "gzip": return fuzzGzip
    default: return nil
    }
}

func usage() -> Never {
    printError(
        """
        usage: lossd-fuzz TARGET [libFuzzer options] [corpus dirs]   (or LOSSD_FUZZ_TARGET=TARGET)
        targets: \(Fuzz.targetNames.joined(separator: ", "))
        Run it through scripts/fuzz.sh, which builds it with -sanitize=fuzzer,address -D LOSSD_FUZZING.

        """)
    exit(2)
}

var arguments = CommandLine.arguments
var targetName = ProcessInfoShim.environment("LOSSD_FUZZ_TARGET")
if arguments.count > 1, Fuzz.targetNames.contains(arguments[1]) {
    targetName = arguments.remove(at: 1)
}

enum ProcessInfoShim {
    static func environment(_ name: String) -> String? {
        getenv(name).map { String(cString: $0) }
    }
}

#if LOSSD_FUZZING
    @_silgen_name("LLVMFuzzerRunDriver")
    func LLVMFuzzerRunDriver(
        _ argc: UnsafeMutablePointer<Int32>,
        _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
        _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32
    ) -> Int32

    guard let targetName, let chosen = select(targetName) else { usage() }
    Fuzz.selected = chosen
    var cArguments: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
    var argc = Int32(arguments.count)
    let status = cArguments.withUnsafeMutableBufferPointer { buffer -> Int32 in
        var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = buffer.baseAddress
        return LLVMFuzzerRunDriver(&argc, &argv) { pointer, count in
            Fuzz.selected(UnsafeBufferPointer(start: pointer, count: count))
            return 0
        }
    }
    exit(status)
#else
    _ = targetName.flatMap(select)
    printError("lossd-fuzz was built without LOSSD_FUZZING; build and run it with scripts/fuzz.sh.\n")
    usage()
#endif
