import LossdHTTP
import LossdService
import Testing

@testable import lossd

/// How the executable resolves its settings: a flag, else the environment variable, else
/// the configuration types' own default (written once, in `HTTPServerConfiguration`,
/// `HTTPParserLimits`, `ServiceConfiguration` and `CompressionPolicy`).
@Suite("Settings: flags, environment, defaults")
struct SettingsTests {
    @Test func withoutFlagsOrEnvironmentTheDefaultsAreTheConfigurationTypesOwn() throws {
        let settings = try Settings(from: try Lossd.parse([]), environment: [:])
        let http = HTTPServerConfiguration(), service = ServiceConfiguration(), compression = CompressionPolicy()
        #expect(settings.http.host == http.host && settings.http.port == http.port)
        #expect(settings.http.parserLimits.maxBodyBytes == HTTPParserLimits.defaultMaxBodyBytes)
        #expect(settings.http.parserLimits.maxHeaderBytes == http.parserLimits.maxHeaderBytes)
        #expect(settings.http.maxConnections == http.maxConnections)
        #expect(settings.http.probeConnections == http.probeConnections)
        #expect(settings.http.reservedLightThreads == http.reservedLightThreads)
        #expect(settings.http.headerTimeout == http.headerTimeout && settings.http.bodyTimeout == http.bodyTimeout)
        #expect(settings.http.keepAliveTimeout == http.keepAliveTimeout && settings.http.readTimeout == http.readTimeout)
        #expect(settings.http.writeTimeout == http.writeTimeout && settings.http.requestTimeout == http.requestTimeout)
        #expect(settings.http.shutdownGracePeriod == http.shutdownGracePeriod)
        #expect(settings.service.dataDirectory == service.dataDirectory)
        #expect(settings.service.maxBodyBytes == settings.http.parserLimits.maxBodyBytes)
        #expect(settings.service.compression.level == compression.level)
        #expect(settings.service.compression.minBytes == compression.minBytes)
        #expect(settings.service.compression.maxBytes == compression.maxBytes)
        // Derived by the executable: the queue follows the connection limit.
        #expect(settings.http.maxQueuedRequests == settings.http.maxConnections)
    }

    @Test func theEnvironmentOverridesTheDefaultAndAFlagTheEnvironment() throws {
        let environment = ["LOSSD_PORT": "9000", "LOSSD_MAX_BODY_BYTES": "1048576", "LOSSD_GZIP_LEVEL": "6", "LOSSD_DATA_DIR": "/tmp/x"]
        let fromEnvironment = try Settings(from: try Lossd.parse([]), environment: environment)
        #expect(fromEnvironment.http.port == 9000)
        #expect(fromEnvironment.http.parserLimits.maxBodyBytes == 1 << 20 && fromEnvironment.service.maxBodyBytes == 1 << 20)
        #expect(fromEnvironment.service.compression.level == 6)
        #expect(fromEnvironment.service.dataDirectory == "/tmp/x")
        let fromFlag = try Settings(from: try Lossd.parse(["--port", "9100"]), environment: environment)
        #expect(fromFlag.http.port == 9100)
    }

    @Test func unparsableOrOutOfRangeValuesAreRefused() {
        for environment in [["LOSSD_PORT": "eighty"], ["LOSSD_GZIP_LEVEL": "12"], ["LOSSD_HEADER_TIMEOUT": "soon"]] {
            #expect(throws: (any Error).self, "\(environment)") { try Settings(from: try Lossd.parse([]), environment: environment) }
        }
    }

    /// The help shows the configuration types' defaults, not copies of them.
    @Test func theHelpShowsTheConfigurationTypesDefaults() {
        let help = Lossd.helpMessage(columns: 10_000)
        let http = HTTPServerConfiguration()
        for shown in [
            "[env: LOSSD_PORT] (default: \(http.port))",
            "[env: LOSSD_MAX_BODY_BYTES] (default: \(HTTPParserLimits.defaultMaxBodyBytes))",
            "[env: LOSSD_MAX_CONNECTIONS] (default: \(http.maxConnections))",
            "[env: LOSSD_READ_TIMEOUT] (default: \(Int(http.readTimeout)))",
            "[env: LOSSD_GZIP_MIN_BYTES] (default: \(CompressionPolicy().minBytes))",
        ] {
            #expect(help.contains(shown), "\(shown)")
        }
    }
}
