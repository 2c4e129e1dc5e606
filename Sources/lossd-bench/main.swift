// Micro-benchmarks of lossd's kernels and JSON reader; prints figures, asserts nothing.
// Run through `make bench` (bench/kernels/run.sh), which prints NumPy's figures beside these.
import Dispatch
import LossdHTTP
import LossdJSON
import LossdKernels
import LossdService

#if canImport(Glibc)
    import Glibc
#endif

/// Best-of-`repeats` wall time of `body`, in milliseconds.
func time(_ repeats: Int, _ body: () -> Void) -> Double {
    var best = Double.infinity
    for _ in 0..<repeats {
        let start = DispatchTime.now().uptimeNanoseconds
        body()
        best = min(best, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6)
    }
    return best
}

/// The benchmarks' data come from the kernels' seeded generator.
typealias Generator = SplitMix64

extension SplitMix64 {
    init(state: UInt64) { self.init(seed: state) }
}

let arguments = CommandLine.arguments
let rows = 4096, cols = 1000
var generator = Generator(state: 42)
let logits = (0..<(rows * cols)).map { _ in Float.random(in: -4...4, using: &generator) }
let labels = (0..<rows).map { _ in Int32.random(in: 0..<Int32(cols), using: &generator) }
let megabytes = Double(rows * cols * 4) / 1e6

var sink = 0.0
// `lossd-bench softmax-passes` prints only the two-pass/three-pass table, `lossd-bench
// loss-costs` only the table of every loss's cost relative to cross_entropy.
if arguments.contains("softmax-passes") {
    benchSoftmaxPasses()
    exit(sink == 0.123 ? 1 : 0)
}
// `json` prints the JSON reading and writing figures; `json-only` the reading one, best of 30
// (for a profiler).
if arguments.contains("json") || arguments.contains("json-only") {
    benchJSONParsing()
    if !arguments.contains("json-only") { benchNumberWriting() }
    exit(sink == 0.123 ? 1 : 0)
}
if arguments.contains("loss-costs") {
    benchLossCosts()
    exit(sink == 0.123 ? 1 : 0)
}
print("== cross-entropy (mean, hard labels) on \(rows)x\(cols) float32 logits (\(megabytes) MB)")
for threads in [1, 2] {
    Parallel.maxThreads = threads
    let ms = time(20) {
        sink += logits.withUnsafeBufferPointer { l in
            labels.withUnsafeBufferPointer { CrossEntropy.meanFloat32(logits: l, rows: rows, cols: cols, labels: $0) }
        }
    }
    print("lossd two-pass float32, \(threads) thread(s): \(format3(ms)) ms, \(format3(megabytes / ms)) GB/s")
}
let doubles = Matrix(rows: rows, cols: cols, values: logits.map(Double.init))
for threads in [1, 2] {
    Parallel.maxThreads = threads
    let ms = time(3) {
        sink += (try? CrossEntropy.evaluate(
            logits: doubles, targets: .labels(labels.map(Int.init)), classWeights: nil, parameters: .init(), gradient: false))?
            .values[0] ?? 0
    }
    print("lossd float64 service kernel, \(threads) thread(s): \(format3(ms)) ms")
}
Parallel.maxThreads = 0

benchJSONParsing()
benchNumberWriting()

print("== POST /v1/loss in-process (no sockets): 256x1000 nested-array logits")
var text = Generator(state: 7)
var request = Array(#"{"loss": "cross_entropy", "labels": ["#.utf8)
request.append(contentsOf: (0..<256).map { String($0 % 1000) }.joined(separator: ",").utf8)
request.append(contentsOf: #"], "logits": ["#.utf8)
for r in 0..<256 {
    if r > 0 { request.append(UInt8(ascii: ",")) }
    request.append(contentsOf: ("[" + (0..<1000).map { _ in String(Double(Int.random(in: -80000...80000, using: &text)) / 10000) }.joined(separator: ",") + "]").utf8)
}
let service = LossdService(configuration: ServiceConfiguration())
for grad in [false, true] {
    var body = request
    body.append(contentsOf: (grad ? #"], "return_grad": true}"# : "]}").utf8)
    let head = HTTPRequestHead(method: "POST", target: "/v1/loss", version: .http1_1, headers: ["Content-Type": "application/json"])
    let httpRequest = HTTPRequest(head: head, body: body)
    var bytesOut = 0
    let ms = time(10) {
        bytesOut = service.respond(to: httpRequest, context: RequestContext(requestID: "b", remoteAddress: "b")).body.count
    }
    print("return_grad=\(grad): \(format3(Double(body.count) / 1e6)) MB in, \(format3(Double(bytesOut) / 1e6)) MB out, \(format3(ms)) ms")
}
benchSoftmaxPasses()
benchInfoNCE()
benchLossCosts()
benchCrossMax()
benchDawidSkene()
benchCalibration()
if sink == 0.123 { print(sink) }

func format3(_ x: Double) -> String {
    let scaled = (x * 1000).rounded() / 1000
    return "\(scaled)"
}

/// Parses a 1,000,000-number nested-array body (5000 rows of 200 shortest-round-trip doubles).
@MainActor func benchJSONParsing() {
    print("== JSON tensor parsing")
    var body = Array(#"{"loss": "cross_entropy", "logits": ["#.utf8)
    var text = generator
    for r in 0..<5000 {
        if r > 0 { body.append(UInt8(ascii: ",")) }
        body.append(UInt8(ascii: "["))
        for c in 0..<200 {
            if c > 0 { body.append(contentsOf: ", ".utf8) }
            body.append(contentsOf: "\(Double.random(in: -10...10, using: &text))".utf8)
        }
        body.append(UInt8(ascii: "]"))
    }
    body.append(contentsOf: "]}".utf8)
    let bodyMB = Double(body.count) / 1e6
    // One thread (the rows' second half read on the calling thread too), then the default:
    // a matrix this large has its second half read on another thread.
    let repeats = arguments.contains("json-only") ? 30 : 5
    for (label, limits) in [("1 thread", JSONLimits(parallelRowsMinimumBytes: .max)), ("2 threads", JSONLimits())] {
        let parseMs = time(repeats) {
            if case .object(let o)? = try? JSONReader.parse(body, limits: limits), case .numbers(let n)? = o["logits"] {
                sink += n.values[0]
            }
        }
        print("parse \(format3(bodyMB)) MB body of 1,000,000 shortest-round-trip doubles, \(label): \(format3(parseMs)) ms, \(format3(bodyMB / parseMs * 1000)) MB/s")
    }
}
