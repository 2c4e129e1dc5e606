// The routes bench/http measures, served by Hummingbird 2 with its defaults (an event loop
// per core, no per-request log): GET /healthz answers lossd's body, GET /openapi.yaml the
// bytes of the file named by the second argument (lossd's own openapi.yaml).
//
//   HummingbirdPeer PORT OPENAPI_YAML
//
// Prints "listening on http://127.0.0.1:PORT" once bound (PORT 0: a free one), as lossd
// does, so that the benchmark finds the port the same way.
import Foundation
import Hummingbird
import Logging
import NIOCore

let arguments = CommandLine.arguments
let port = arguments.count > 1 ? Int(arguments[1]) ?? 0 : 0
let openAPI = arguments.count > 2 ? (try? Data(contentsOf: URL(fileURLWithPath: arguments[2]))) ?? Data() : Data()
let openAPIBuffer = ByteBuffer(bytes: openAPI)
let healthBuffer = ByteBuffer(string: #"{"status":"ok"}"#)

let router = Router()
router.get("/healthz") { _, _ -> Response in
    Response(status: .ok, headers: [.contentType: "application/json"], body: ResponseBody(byteBuffer: healthBuffer))
}
router.get("/openapi.yaml") { _, _ -> Response in
    Response(status: .ok, headers: [.contentType: "application/yaml"], body: ResponseBody(byteBuffer: openAPIBuffer))
}

var logger = Logger(label: "hummingbird-peer")
logger.logLevel = .warning
let app = Application(
    router: router,
    configuration: ApplicationConfiguration(address: .hostname("127.0.0.1", port: port)),
    onServerRunning: { channel in
        // Written straight to the descriptor: the benchmark reads it while we run.
        let line = "hummingbird listening on http://127.0.0.1:\(channel.localAddress?.port ?? port)\n"
        FileHandle.standardOutput.write(Data(line.utf8))
    },
    logger: logger)
try await app.runService()
