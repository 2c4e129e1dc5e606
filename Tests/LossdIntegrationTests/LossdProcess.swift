import Foundation
import LossdTestSupport

#if canImport(Glibc)
    import Glibc
#endif

/// The real `lossd` binary, started on a free port for one test.
final class LossdProcess {
    let process = Process()
    let port: Int
    /// The operations listener's port, when started with `--ops-port`.
    private(set) var operationsPort: Int?
    /// Everything read from standard output while starting.
    private(set) var startupOutput = ""
    let dataDirectory: String
    /// Whether the data directory was made for this process (and is removed with it).
    private let ownsDataDirectory: Bool
    private let stderrPipe = Pipe()
    private let stdoutPipe = Pipe()

    /// The `lossd` built beside this test bundle (SwiftPM builds it because the test
    /// target depends on it).
    static var binaryPath: String {
        if let override = ProcessInfo.processInfo.environment["LOSSD_BINARY"] { return override }
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        return URL(fileURLWithPath: exe).deletingLastPathComponent().appendingPathComponent("lossd").path
    }

    /// The package root, for reading files such as openapi.yaml.
    static var packageRoot: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    /// Starts lossd with `arguments` (plus `--port 0` and a fresh data directory) and waits
    /// until it prints the port it listens on. With `dataDirectory`, lossd uses that one
    /// (to restart on the same store) and leaves it in place afterwards.
    init(_ arguments: [String] = [], environment: [String: String] = [:], dataDirectory existing: String? = nil) throws {
        dataDirectory = existing ?? NSTemporaryDirectory() + "lossd-test-\(UUID().uuidString)"
        ownsDataDirectory = existing == nil
        process.executableURL = URL(fileURLWithPath: Self.binaryPath)
        process.arguments = ["--port", "0", "--data-dir", dataDirectory, "--log-level", "warning"] + arguments
        var env = ProcessInfo.processInfo.environment
        for (k, v) in environment { env[k] = v }
        process.environment = env
        process.standardOutput = stdoutPipe
        process.standardError = stderrPipe
        try process.run()

        let handle = stdoutPipe.fileHandleForReading
        var text = ""
        let deadline = Date().addingTimeInterval(20)
        let wantsOperations = arguments.contains("--ops-port") || environment["LOSSD_OPS_PORT"] != nil
        while Date() < deadline {
            let chunk = handle.availableData
            if chunk.isEmpty { break }
            text += String(decoding: chunk, as: UTF8.self)
            let lines = text.split(separator: "\n")
            guard let line = lines.first(where: { $0.contains(" listening on ") && !$0.contains("operations") }),
                let port = Self.port(after: "listening on ", in: line)
            else { continue }
            // The operations listener is on its own line (text) or in `ops_url` (json).
            var operations: Int?
            if wantsOperations {
                if let opsLine = lines.first(where: { $0.contains("operations listening on ") }) {
                    operations = Self.port(after: "operations listening on ", in: opsLine)
                } else if line.contains("\"ops_url\"") {
                    operations = Self.port(after: "\"ops_url\":\"", in: line)
                }
                guard operations != nil else { continue }
            }
            self.port = port
            operationsPort = operations
            startupOutput = text
            return
        }
        process.terminate()
        throw LaunchFailure(output: text + String(decoding: stderrPipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self))
    }

    /// The port of the URL that follows `marker` in `line` (`http://host:PORT`).
    static func port<S: StringProtocol>(after marker: String, in line: S) -> Int? {
        guard let range = line.range(of: marker) else { return nil }
        let url = line[range.upperBound...].prefix { $0 != " " && $0 != "\"" && $0 != "," }
        guard let colon = url.lastIndex(of: ":") else { return nil }
        return Int(url[url.index(after: colon)...].prefix { $0.isNumber })
    }

    struct LaunchFailure: Error, CustomStringConvertible {
        let output: String
        var description: String { "lossd did not start: \(output)" }
    }

    func connect() throws -> RawClient { try RawClient(port: port) }

    /// POSTs `json` to `path` on a new connection, with an optional `Accept` header.
    func postJSON(_ path: String, _ json: String, accept: String? = nil) throws -> WireResponse {
        let body = Array(json.utf8)
        let client = try connect()
        let acceptLine = accept.map { "Accept: \($0)\r\n" } ?? ""
        try client.send(
            "POST \(path) HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\(acceptLine)Content-Length: \(body.count)\r\n\r\n")
        try client.send(body)
        return try client.readResponse()
    }

    /// Sends a signal (SIGTERM by default).
    func signal(_ number: Int32 = SIGTERM) { kill(process.processIdentifier, number) }

    /// Waits for the process to exit; returns its status, or nil on timeout.
    func waitForExit(timeout: TimeInterval) -> Int32? {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        return process.isRunning ? nil : process.terminationStatus
    }

    var isRunning: Bool { process.isRunning }

    /// Stops the process (SIGTERM, then SIGKILL after 10 s) and returns everything it
    /// wrote to standard error. Only for short runs: a chatty process fills the pipe.
    func stopAndReadStandardError() -> String {
        if process.isRunning {
            signal(SIGTERM)
            if waitForExit(timeout: 10) == nil { signal(SIGKILL) }
        }
        return String(decoding: stderrPipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    }

    deinit {
        if process.isRunning {
            process.terminate()
            _ = waitForExit(timeout: 5)
        }
        if ownsDataDirectory { try? FileManager.default.removeItem(atPath: dataDirectory) }
    }
}

