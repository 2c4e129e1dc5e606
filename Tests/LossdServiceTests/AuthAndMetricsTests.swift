@testable import LossdHTTP
import Testing

@testable import LossdService

@Suite("API key and /metrics, in process")
struct AuthAndMetricsTests {
    let context = RequestContext(requestID: "t-1", remoteAddress: "127.0.0.1")

    func request(_ path: String, method: String = "GET", authorization: String? = nil) -> HTTPRequest {
        var headers: HTTPHeaders = ["Host": "x"]
        if let authorization { headers.add(name: "Authorization", value: authorization) }
        return HTTPRequest(head: HTTPRequestHead(method: method, target: path, version: .http1_1, headers: headers))
    }

    func bodyText(_ response: HTTPResponse) -> String { String(decoding: response.body, as: UTF8.self) }

    @Test func v1RoutesNeedTheKeyWhenOneIsConfigured() {
        let service = LossdService(configuration: ServiceConfiguration(apiKey: "s3cret"))
        let missing = service.respond(to: request("/v1/version"), context: context)
        #expect(missing.status.code == 401)
        #expect(missing.headers["WWW-Authenticate"] == #"Bearer realm="lossd""#)
        #expect(missing.headers["Content-Type"] == "application/problem+json")
        #expect(bodyText(missing).contains("urn:lossd:error:unauthorized"))

        let wrong = service.respond(to: request("/v1/version", authorization: "Bearer s3creT"), context: context)
        #expect(wrong.status.code == 401)
        #expect(wrong.headers["WWW-Authenticate"]?.hasPrefix(#"Bearer realm="lossd""#) == true)
        #expect(!bodyText(wrong).contains("s3cret"))

        let basic = service.respond(to: request("/v1/version", authorization: "Basic czNjcmV0"), context: context)
        #expect(basic.status.code == 401)

        // Unknown /v1 paths are 401 too: nothing about the API leaks without the key.
        #expect(service.respond(to: request("/v1/nope"), context: context).status.code == 401)

        let right = service.respond(to: request("/v1/version", authorization: "Bearer s3cret"), context: context)
        #expect(right.status.code == 200)
        let lowercaseScheme = service.respond(to: request("/v1/losses", authorization: "bearer  s3cret"), context: context)
        #expect(lowercaseScheme.status.code == 200)
    }

    @Test(arguments: ["/healthz", "/metrics", "/openapi.yaml"])
    func operationalRoutesStayOpen(_ path: String) {
        let service = LossdService(configuration: ServiceConfiguration(apiKey: "s3cret"))
        #expect(service.respond(to: request(path), context: context).status.code == 200)
    }

    @Test func readyzIsNotBehindTheKey() {
        let service = LossdService(configuration: ServiceConfiguration(apiKey: "s3cret"))
        // 503 because no store is attached, but not 401.
        #expect(service.respond(to: request("/readyz"), context: context).status.code == 503)
    }

    @Test func withoutAKeyEverythingIsOpen() {
        let service = LossdService(configuration: ServiceConfiguration())
        #expect(service.respond(to: request("/v1/version"), context: context).status.code == 200)
    }

    @Test func bearerTokenParsing() {
        #expect(Auth.bearerToken("Bearer abc") == "abc")
        #expect(Auth.bearerToken("BEARER\tabc ") == "abc")
        #expect(Auth.bearerToken("Bearerabc") == nil)
        #expect(Auth.bearerToken("Bearer ") == nil)
        #expect(Auth.bearerToken("Basic abc") == nil)
    }

    @Test func constantTimeCompare() {
        #expect(Auth.constantTimeEquals("secret", "secret"))
        #expect(!Auth.constantTimeEquals("secreT", "secret"))
        #expect(!Auth.constantTimeEquals("secret", "secret2"))
        #expect(!Auth.constantTimeEquals("secret2", "secret"))
        #expect(!Auth.constantTimeEquals("", "secret"))
        #expect(!Auth.constantTimeEquals("secretsecret", "secret"))  // a repeat of the key is not the key
        #expect(Auth.constantTimeEquals("", ""))
    }

    @Test func metricsTextFormatParsesAndCountersIncrease() throws {
        let service = LossdService(configuration: ServiceConfiguration())
        for _ in 0..<3 {
            service.requestCompleted(
                RequestRecord(method: "GET", path: "/v1/version", route: service.routeLabel(method: "GET", path: "/v1/version"), status: .ok, bytesIn: 40, bytesOut: 200, duration: 0.003))
        }
        service.requestCompleted(
            RequestRecord(method: "GET", path: "/no/such/path", route: service.routeLabel(method: "GET", path: "/no/such/path"), status: .notFound, bytesIn: 30, bytesOut: 100, duration: 0.0001))
        service.requestCompleted(
            RequestRecord(method: nil, path: nil, status: .requestHeaderFieldsTooLarge, bytesIn: 20000, bytesOut: 150, duration: 0.01))
        service.requestCompleted(
            RequestRecord(method: "BREW", path: "/v1/calibrators/abc", route: service.routeLabel(method: "BREW", path: "/v1/calibrators/abc"), status: .methodNotAllowed, bytesIn: 1, bytesOut: 1, duration: 0))

        // The server's gauges reach /metrics through the request's context.
        let served = RequestContext(
            requestID: "t-1", remoteAddress: "127.0.0.1", gauges: { ServerGauges(openConnections: 3, queueDepth: 2) })
        let response = service.respond(to: request("/metrics"), context: served)
        #expect(response.status.code == 200)
        #expect(response.headers["Content-Type"]?.hasPrefix("text/plain; version=0.0.4") == true)
        let samples = try Self.parse(bodyText(response))

        #expect(samples[#"lossd_requests_total{route="/v1/version",method="GET",status="200"}"#] == 3)
        #expect(samples[#"lossd_requests_total{route="unmatched",method="GET",status="404"}"#] == 1)
        #expect(samples[#"lossd_requests_total{route="none",method="none",status="431"}"#] == 1)
        #expect(samples[#"lossd_requests_total{route="unmatched",method="other",status="405"}"#] == 1)
        #expect(samples[#"lossd_request_bytes_total{route="/v1/version",method="GET"}"#] == 120)
        #expect(samples[#"lossd_response_bytes_total{route="/v1/version",method="GET"}"#] == 600)
        #expect(samples[#"lossd_request_duration_seconds_bucket{route="/v1/version",method="GET",le="0.0025"}"#] == 0)
        #expect(samples[#"lossd_request_duration_seconds_bucket{route="/v1/version",method="GET",le="0.005"}"#] == 3)
        #expect(samples[#"lossd_request_duration_seconds_bucket{route="/v1/version",method="GET",le="+Inf"}"#] == 3)
        #expect(samples[#"lossd_request_duration_seconds_count{route="/v1/version",method="GET"}"#] == 3)
        #expect(abs((samples[#"lossd_request_duration_seconds_sum{route="/v1/version",method="GET"}"#] ?? 0) - 0.009) < 1e-12)
        #expect(samples["lossd_open_connections"] == 3)
        #expect(samples["lossd_queue_depth"] == 2)
        #expect(samples.keys.contains { $0.hasPrefix("lossd_build_info{version=\"\(LossdService.version)\"") })

        service.requestCompleted(
            RequestRecord(method: "GET", path: "/v1/version", route: service.routeLabel(method: "GET", path: "/v1/version"), status: .ok, bytesIn: 40, bytesOut: 200, duration: 0.003))
        let again = try Self.parse(bodyText(service.respond(to: request("/metrics"), context: context)))
        #expect(again[#"lossd_requests_total{route="/v1/version",method="GET",status="200"}"#] == 4)
    }

    @Test func registryEscapesLabelValuesAndDeclaresEachFamilyOnce() throws {
        let registry = PrometheusRegistry()
        registry.declare("x_total", .counter, help: "A counter.", labels: ["a"])
        registry.declare("x_total", .counter, help: "Again.", labels: ["a"])
        registry.add("x_total", ["quote\" back\\ nl\n"], 2)
        let text = registry.render()
        #expect(text.components(separatedBy: "# TYPE x_total counter").count == 2)
        #expect(text.contains(#"x_total{a="quote\" back\\ nl\n"} 2"#))
    }

    /// A strict reader of the exposition format: every family has HELP then TYPE before
    /// its samples, every sample belongs to the declared family, values parse.
    static func parse(_ text: String) throws -> [String: Double] {
        struct FormatError: Error, CustomStringConvertible { let description: String }
        var samples: [String: Double] = [:]
        var helped: Set<String> = [], typed: [String: String] = [:]
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.isEmpty { continue }
            if line.hasPrefix("# HELP ") {
                let name = line.dropFirst(7).split(separator: " ").first.map(String.init) ?? ""
                guard helped.insert(name).inserted else { throw FormatError(description: "second HELP for \(name)") }
            } else if line.hasPrefix("# TYPE ") {
                let parts = line.dropFirst(7).split(separator: " ").map(String.init)
                guard parts.count == 2, ["counter", "gauge", "histogram", "summary", "untyped"].contains(parts[1]),
                    helped.contains(parts[0]), typed[parts[0]] == nil
                else { throw FormatError(description: "bad TYPE line: \(line)") }
                typed[parts[0]] = parts[1]
            } else {
                guard let space = line.lastIndex(of: " ") else { throw FormatError(description: "no value: \(line)") }
                let key = String(line[..<space])
                let valueText = line[line.index(after: space)...]
                guard let value = valueText == "+Inf" ? Double.infinity : Double(valueText) else {
                    throw FormatError(description: "bad value: \(line)")
                }
                let name = String(key.prefix { $0 != "{" })
                let family = typed[name] != nil ? name : ["_bucket", "_sum", "_count"].compactMap { suffix in
                    name.hasSuffix(suffix) ? String(name.dropLast(suffix.count)) : nil
                }.first { typed[$0] == "histogram" }
                guard family != nil else { throw FormatError(description: "sample before its TYPE: \(line)") }
                if key.contains("{") && !key.hasSuffix("}") { throw FormatError(description: "bad labels: \(line)") }
                samples[key] = value
            }
        }
        return samples
    }
}
