import Foundation
import LossdTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// `--tls-cert` / `--tls-key`: HTTPS through the real binary, checked with curl and
/// `openssl s_client` against a certificate authority and certificates made here.
@Suite("lossd over TLS")
struct TLSTests {
    /// A throwaway CA and a server certificate for localhost / 127.0.0.1 signed by it,
    /// plus a second key that belongs to neither.
    final class Certificates {
        let directory = NSTemporaryDirectory() + "lossd-tls-\(UUID().uuidString)"
        var ca: String { directory + "/ca.pem" }
        var certificate: String { directory + "/server.pem" }
        var key: String { directory + "/server.key" }
        var otherKey: String { directory + "/other.key" }

        init() throws {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            let d = directory
            try Self.openssl(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                "-keyout", d + "/ca.key", "-out", d + "/ca.pem", "-days", "2", "-subj", "/CN=lossd test CA"])
            try Self.openssl(["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                "-keyout", d + "/server.key", "-out", d + "/server.csr", "-subj", "/CN=localhost"])
            try "subjectAltName=DNS:localhost,IP:127.0.0.1\n".write(toFile: d + "/san.ext", atomically: true, encoding: .utf8)
            try Self.openssl(["x509", "-req", "-in", d + "/server.csr", "-CA", d + "/ca.pem", "-CAkey", d + "/ca.key",
                "-CAcreateserial", "-out", d + "/server.pem", "-days", "2", "-extfile", d + "/san.ext"])
            try Self.openssl(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-out", d + "/other.key"])
        }

        private static func openssl(_ arguments: [String]) throws {
            let result = try run("openssl", arguments)
            guard result.status == 0 else { throw CommandFailure(description: "openssl \(arguments[0]): \(result.stderr)") }
        }

        deinit { try? FileManager.default.removeItem(atPath: directory) }
    }

    struct CommandFailure: Error, CustomStringConvertible {
        let description: String
    }

    struct CommandResult {
        let status: Int32
        let stdout: String
        let stderr: String
    }

    /// Runs a program found on PATH, with optional standard input; stderr goes through a
    /// file so that neither pipe can fill up and block the child.
    static func run(_ program: String, _ arguments: [String], input: String? = nil) throws -> CommandResult {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [program] + arguments
        let errorPath = NSTemporaryDirectory() + "lossd-tls-stderr-\(UUID().uuidString)"
        _ = FileManager.default.createFile(atPath: errorPath, contents: nil)
        defer { try? FileManager.default.removeItem(atPath: errorPath) }
        let errorFile = try FileHandle(forWritingTo: URL(fileURLWithPath: errorPath))
        let out = Pipe(), inp = Pipe()
        process.standardOutput = out
        process.standardError = errorFile
        process.standardInput = inp
        try process.run()
        if let input { inp.fileHandleForWriting.write(Data(input.utf8)) }
        try? inp.fileHandleForWriting.close()
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        try? errorFile.close()
        let errorText = (try? String(contentsOfFile: errorPath, encoding: .utf8)) ?? ""
        return CommandResult(status: process.terminationStatus, stdout: String(decoding: outData, as: UTF8.self), stderr: errorText)
    }

    static func start(_ certificates: Certificates, _ extra: [String] = []) throws -> LossdProcess {
        try LossdProcess(["--tls-cert", certificates.certificate, "--tls-key", certificates.key] + extra)
    }

    static func curl(_ arguments: [String]) throws -> CommandResult {
        try run("curl", ["-sS", "--max-time", "20"] + arguments)
    }

    @Test func curlTrustingTheTestCAGetsAnswersOverHTTPS() throws {
        let certificates = try Certificates()
        let lossd = try Self.start(certificates)
        let base = "https://localhost:\(lossd.port)"
        // Two requests on one connection: keep-alive works over TLS.
        let result = try Self.curl([
            "--cacert", certificates.ca, "-w", " %{http_code} %{num_connects} %{http_version}\n", base + "/healthz",
            base + "/v1/version",
        ])
        #expect(result.status == 0, "\(result.stderr)")
        let lines = result.stdout.split(separator: "\n")
        #expect(lines.count == 2)
        #expect(lines.first?.hasSuffix(" 200 1 1.1") == true, "\(result.stdout)")
        #expect(lines.last?.hasSuffix(" 200 0 1.1") == true, "the second request reuses the connection: \(result.stdout)")
        #expect(lines.last?.contains(#""name":"lossd""#) == true)
    }

    @Test(arguments: ["1.2", "1.3"])
    func bothTLS12And13Handshake(version: String) throws {
        let certificates = try Certificates()
        let lossd = try Self.start(certificates)
        let result = try Self.curl([
            "--cacert", certificates.ca, "--tlsv\(version)", "--tls-max", version, "-o", "/dev/null", "-w", "%{http_code}",
            "https://127.0.0.1:\(lossd.port)/healthz",
        ])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout == "200")
    }

    @Test func tls11AndOlderAreRefused() throws {
        let certificates = try Certificates()
        let lossd = try Self.start(certificates)
        // SECLEVEL=0 lets this client offer TLS 1.1, so the refusal is the server's.
        let result = try Self.run(
            "openssl",
            ["s_client", "-connect", "127.0.0.1:\(lossd.port)", "-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0",
                "-CAfile", certificates.ca], input: "")
        #expect(result.status != 0)
        #expect(result.stdout.contains("Cipher is (NONE)") || result.stderr.contains("protocol version"), "\(result.stderr)")
        #expect(try Self.curl(["--cacert", certificates.ca, "https://localhost:\(lossd.port)/healthz"]).status == 0)
    }

    @Test func anUntrustedCertificateFailsVerification() throws {
        let certificates = try Certificates()
        let lossd = try Self.start(certificates)
        let result = try Self.curl(["https://localhost:\(lossd.port)/healthz"])
        #expect(result.status == 60, "curl exit 60 is a certificate problem: \(result.stderr)")
    }

    @Test func largeBodiesAndGzipTravelOverTLS() throws {
        let certificates = try Certificates()
        let lossd = try Self.start(certificates)
        // 256 x 200 logits: about 1 MB in, more than 1 MB out with the gradient.
        var rows: [String] = []
        for i in 0..<256 { rows.append("[" + (0..<200).map { String(Double(($0 * 7 + i) % 23) / 7 - 1.5) }.joined(separator: ",") + "]") }
        let labels = (0..<256).map { String($0 % 200) }.joined(separator: ",")
        let body = #"{"loss":"cross_entropy","logits":[\#(rows.joined(separator: ","))],"labels":[\#(labels)],"return_grad":true}"#
        let file = certificates.directory + "/body.json"
        try body.write(toFile: file, atomically: true, encoding: .utf8)
        for compressed in [false, true] {
            let result = try Self.curl(
                ["--cacert", certificates.ca, "-H", "Content-Type: application/json", "--data-binary", "@" + file]
                    + (compressed ? ["--compressed"] : []) + ["https://localhost:\(lossd.port)/v1/loss"])
            #expect(result.status == 0, "\(result.stderr)")
            let json = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]
            #expect(json?["n"] as? Int == 256)
            #expect(((json?["grad"] as? [String: Any])?["logits"] as? [[Double]])?.count == 256)
        }
    }

    @Test func plainHTTPOnTheHTTPSPortGetsAPlain400() throws {
        let certificates = try Certificates()
        let lossd = try Self.start(certificates)
        let response = try lossd.connect().exchange(get("/healthz"))
        #expect(response.status == 400)
        #expect(response.bodyText.contains("https://"))
        #expect(try Self.curl(["--cacert", certificates.ca, "https://localhost:\(lossd.port)/healthz"]).status == 0)
    }

    @Test func garbageAndSilentClientsAreClosedWithoutHarm() throws {
        let certificates = try Certificates()
        let lossd = try Self.start(certificates, ["--header-timeout", "1"])
        // A handshake record header followed by nonsense.
        let garbage = try lossd.connect()
        try garbage.send([0x16, 0x03, 0x01, 0x00, 0x05, 0xDE, 0xAD, 0xBE, 0xEF, 0x00] + Array(repeating: 0x41, count: 64))
        // The server may send a TLS alert first (read here a byte at a time); then it closes.
        #expect((0..<64).contains { _ in garbage.isClosedByPeer(within: 3) })
        // A client that connects and never starts a handshake is closed at the header deadline.
        let silent = try lossd.connect()
        let started = Date()
        #expect(silent.isClosedByPeer(within: 5))
        #expect(Date().timeIntervalSince(started) < 4)
        #expect(try Self.curl(["--cacert", certificates.ca, "https://localhost:\(lossd.port)/healthz"]).stdout.contains("ok"))
        #expect(lossd.isRunning)
    }

    @Test func aKeyThatDoesNotMatchTheCertificateStopsStartUp() throws {
        let certificates = try Certificates()
        #expect {
            _ = try LossdProcess(["--tls-cert", certificates.certificate, "--tls-key", certificates.otherKey])
        } throws: { error in
            "\(error)".contains("cannot set up TLS") && "\(error)".contains("mismatch")
        }
        #expect {
            _ = try LossdProcess(["--tls-cert", certificates.directory + "/missing.pem", "--tls-key", certificates.key])
        } throws: { error in
            "\(error)".contains("cannot set up TLS") && "\(error)".contains("missing.pem")
        }
    }

    @Test func anEncryptedKeyStopsStartUpInsteadOfPrompting() throws {
        let certificates = try Certificates()
        let encrypted = certificates.directory + "/encrypted.key"
        let made = try Self.run(
            "openssl", ["pkey", "-in", certificates.key, "-aes256", "-passout", "pass:secret", "-out", encrypted])
        try #require(made.status == 0, "\(made.stderr)")
        #expect {
            _ = try LossdProcess(["--tls-cert", certificates.certificate, "--tls-key", encrypted])
        } throws: { error in
            "\(error)".contains("cannot set up TLS") && "\(error)".contains("encrypted.key")
        }
    }

    @Test func aCertificateWithoutAKeyIsAConfigurationError() throws {
        let certificates = try Certificates()
        #expect {
            _ = try LossdProcess([], environment: ["LOSSD_TLS_CERT": certificates.certificate])
        } throws: { error in
            "\(error)".contains("needs --tls-key")
        }
    }
}
