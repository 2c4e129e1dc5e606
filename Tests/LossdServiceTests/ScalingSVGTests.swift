import Foundation
import LossdHTTP
import Testing

@testable import LossdService

#if canImport(FoundationXML)
    import FoundationXML
#endif

/// `POST /v1/scaling/fit` and `/v1/scaling/predict` with `Accept: image/svg+xml`
/// (docs/scaling.md, "Plots"): each law answers a well-formed standalone SVG with the law,
/// its extrapolation, the bootstrap band when asked and the schedule panel of lr_annealing;
/// errors stay problem+json and without the header the answer stays JSON.
@Suite("Scaling-law SVG plots")
struct ScalingSVGTests {
    let context = RequestContext(requestID: "t-svg", remoteAddress: "127.0.0.1")

    struct Answer {
        var status: Int
        var contentType: String
        var text: String
        var vary = ""
    }

    func call(_ path: String, _ body: [String: Any], accept: String = "image/svg+xml") throws -> Answer {
        let service = LossdService(configuration: ServiceConfiguration())
        let head = HTTPRequestHead(
            method: "POST", target: path, version: .http1_1,
            headers: ["Host": "x", "Content-Type": "application/json", "Accept": accept])
        let response = service.respond(
            to: HTTPRequest(head: head, body: Array(try JSONSerialization.data(withJSONObject: body))), context: context)
        return Answer(
            status: response.status.code, contentType: response.headers["content-type"] ?? "",
            text: String(decoding: response.body, as: UTF8.self), vary: response.headers["vary"] ?? "")
    }

    /// The SVG parsed: element names with their `class` attributes, or nil when malformed.
    final class Elements: NSObject, XMLParserDelegate {
        var names: [String] = []
        var classes: [String] = []
        func parser(
            _ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?,
            attributes: [String: String] = [:]
        ) {
            names.append(name)
            if let c = attributes["class"] { classes.append("\(name).\(c)") }
        }
    }

    func parsed(_ answer: Answer) -> Elements? {
        let parser = XMLParser(data: Data(answer.text.utf8))
        let elements = Elements()
        parser.delegate = elements
        return parser.parse() ? elements : nil
    }

    func expectPlot(_ answer: Answer, has wanted: [String], lacks unwanted: [String] = []) throws {
        #expect(answer.status == 200, "\(answer.text.prefix(400))")
        #expect(answer.contentType == "image/svg+xml; charset=utf-8")
        let elements = try #require(parsed(answer), "not well-formed XML")
        #expect(elements.names.first == "svg")
        #expect(answer.text.contains(#"xmlns="http://www.w3.org/2000/svg""#) && answer.text.contains("viewBox="))
        #expect(!answer.text.contains("nan") && !answer.text.contains("inf"))
        for w in wanted { #expect(elements.classes.contains(w), "missing \(w)") }
        for u in unwanted { #expect(!elements.classes.contains(u), "unexpected \(u)") }
    }

    // MARK: Data

    static var powerPoints: [[String: Any]] {
        (0..<9).map { i in
            let x = pow(10, 6 + 0.5 * Double(i))
            return ["x": x, "loss": (1.69 + pow(8.8e6 / x, 0.34)) * (1 + 0.004 * Double(i % 3 - 1))]
        }
    }

    static var chinchillaPoints: [[String: Any]] {
        [4e7, 1.6e8, 6.4e8].flatMap { (n: Double) -> [[String: Any]] in
            [2e9, 8e9, 3.2e10].enumerated().map { j, d in
                ["n": n, "d": d, "loss": (1.69 + 406.4 / pow(n, 0.34) + 410.7 / pow(d, 0.28)) * (1 + 0.002 * Double(j - 1))]
            }
        }
    }

    static var nmtPoints: [[String: Any]] {
        [5e7, 2e8, 8e8].flatMap { (e: Double) -> [[String: Any]] in
            [5e7, 2e8, 8e8].enumerated().map { j, d in
                let loss: Double = (0.9 * pow(2e8 / e, 0.25) * pow(2e8 / d, 0.35) + 1.3) * (1 + 0.003 * Double(j - 1))
                return ["n_encoder": e, "n_decoder": d, "loss": loss]
            }
        }
    }

    /// Warm-up of 10 steps to 3e-4, then cosine (or constant) to step 300.
    static func schedule(cosine: Bool) -> [Double] {
        (0..<300).map { (i: Int) -> Double in
            if i < 10 { return 3e-4 * Double(i + 1) / 10 }
            let phase: Double = Double.pi * Double(i - 10) / 290
            return cosine ? 3e-5 + 2.7e-4 * 0.5 * (1 + cos(phase)) : 3e-4
        }
    }

    static func curve(cosine: Bool) -> [String: Any] {
        let lr = schedule(cosine: cosine)
        var s1 = 0.0, s2 = 0.0, m = 0.0, previous = lr[10]
        var loss = [Double](repeating: 0, count: 10)
        for i in 10..<lr.count {
            m = 0.999 * m + (previous - lr[i])
            previous = lr[i]
            s1 += lr[i]
            s2 += m
            loss.append((2.0 + 0.3 * pow(s1, -0.45) - 0.8 * s2) * (1 + 0.003 * Double(i % 3 - 1)))
        }
        return ["lr": lr, "loss": loss]
    }

    // MARK: Fit

    @Test func powerLawFitWithBootstrapHasTheLawItsExtrapolationAndTheBand() throws {
        let answer = try call("/v1/scaling/fit", ["law": "power_law", "data": Self.powerPoints, "bootstrap": ["samples": 40, "seed": 3]])
        try expectPlot(answer, has: ["path.law", "path.extrapolation", "polygon.band", "g.data"])
        #expect(answer.text.contains(#"stroke-dasharray="7 5""#))
        #expect(answer.text.contains("power_law: L(x) = "))
        #expect(answer.text.contains("10\u{2076}"), "log ticks at powers of ten")
        // Deterministic: the same request gives the same bytes.
        let again = try call("/v1/scaling/fit", ["law": "power_law", "data": Self.powerPoints, "bootstrap": ["samples": 40, "seed": 3]])
        #expect(again.text == answer.text)
    }

    @Test func fitsWithoutBootstrapHaveNoBand() throws {
        for (law, data) in [("power_law", Self.powerPoints), ("chinchilla", Self.chinchillaPoints), ("nmt", Self.nmtPoints)] {
            let answer = try call("/v1/scaling/fit", ["law": law, "data": data])
            try expectPlot(answer, has: ["path.law", "path.extrapolation", "g.data", "g.panel loss"], lacks: ["polygon.band"])
            #expect(answer.text.contains("\(law): L"), "\(law)")
        }
    }

    @Test func chinchillaPlotsComputeAndGroupsRunsByModelSize() throws {
        let answer = try call("/v1/scaling/fit", ["law": "chinchilla", "data": Self.chinchillaPoints, "bootstrap": ["samples": 20]])
        try expectPlot(answer, has: ["path.law", "path.extrapolation", "polygon.band"])
        #expect(answer.text.contains("6\u{b7}N\u{b7}D"))
        #expect(answer.text.contains("N = 4\u{d7}10\u{2077}") && answer.text.contains("N = 6.4\u{d7}10\u{2078}"))
    }

    @Test func lrAnnealingFitHasTheLossAndSchedulePanels() throws {
        let data = [Self.curve(cosine: true), Self.curve(cosine: false)]
        let answer = try call(
            "/v1/scaling/fit", ["law": "lr_annealing", "params": ["warmup_steps": 10], "data": data, "bootstrap": ["samples": 10]])
        try expectPlot(answer, has: ["g.panel loss", "g.panel schedule", "path.law", "path.schedule", "g.data", "polygon.band"])
        #expect(answer.text.contains("lr_annealing: L(s) = "))
        #expect(answer.text.contains("100 warm-up") == false && answer.text.contains("10 warm-up steps"))
    }

    // MARK: Predict

    @Test func sizeLawPredictionsMarkThePredictedPoints() throws {
        let cases: [[String: Any]] = [
            ["law": "power_law", "params": ["L_inf": 1.69, "x0": 8.8e6, "alpha": 0.34], "x": [1e9, 1e11], "target_loss": 1.8],
            ["law": "chinchilla", "params": ["E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28], "n": [1e9], "d": [2e10], "compute": [1e21, 1e23]],
            [
                "law": "nmt", "params": ["L_inf": 1.3, "beta": 0.9, "pe": 0.25, "pd": 0.35, "n_encoder_ref": 2e8, "n_decoder_ref": 2e8],
                "n_encoder": [1e8, 4e8], "n_decoder": [1e8, 4e8], "n_total": [1e10],
            ],
        ]
        for body in cases {
            let answer = try call("/v1/scaling/predict", body)
            try expectPlot(answer, has: ["path.law", "g.predicted", "g.derived"], lacks: ["polygon.band"])
        }
        // Derived marks alone are enough to plot.
        let compute = try call(
            "/v1/scaling/predict", ["law": "chinchilla", "params": ["E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28], "compute": [1e22]])
        try expectPlot(compute, has: ["path.law", "g.derived"])
    }

    @Test func lrAnnealingPredictionOfAWSDScheduleHasBothPanels() throws {
        var lr = (0..<400).map { i in i < 20 ? 3e-4 * Double(i + 1) / 20 : 3e-4 }
        for i in 320..<400 { lr[i] = 3e-4 * Double(400 - i) / 80 }
        let params: [String: Any] = ["L0": 2.0, "A": 0.3, "alpha": 0.45, "C": 0.8, "warmup_steps": 20]
        let answer = try call("/v1/scaling/predict", ["law": "lr_annealing", "params": params, "curve": ["lr": lr]])
        try expectPlot(answer, has: ["g.panel loss", "g.panel schedule", "path.law", "path.schedule"], lacks: ["g.predicted"])
        let sparse = try call("/v1/scaling/predict", ["law": "lr_annealing", "params": params, "curve": ["lr": lr, "steps": [100, 320, 400]]])
        try expectPlot(sparse, has: ["g.panel schedule", "path.law", "g.predicted"])
    }

    // MARK: Negotiation and errors

    @Test func jsonStaysTheDefaultAndErrorsStayProblemJSON() throws {
        let json = try call("/v1/scaling/fit", ["law": "power_law", "data": Self.powerPoints], accept: "application/json, image/svg+xml;q=0.5")
        #expect(json.status == 200 && json.contentType == "application/json")
        #expect(json.vary == "Accept", "the JSON answer depends on Accept too")
        let bad = try call("/v1/scaling/fit", ["law": "power_law", "data": [["x": -1, "loss": 2]]])
        #expect(bad.status == 422 && bad.contentType == "application/problem+json", "\(bad.text)")
        let nothing = try call("/v1/scaling/predict", ["law": "power_law", "params": ["L_inf": 1.69, "x0": 8.8e6, "alpha": 0.34]])
        #expect(nothing.status == 422 && nothing.contentType == "application/problem+json", "\(nothing.text)")
        let badBootstrap = try call("/v1/scaling/fit", ["law": "power_law", "data": Self.powerPoints, "bootstrap": ["samples": 0]])
        #expect(badBootstrap.status == 422 && badBootstrap.text.contains("/bootstrap/samples"), "\(badBootstrap.text)")
    }

    @Test func numbersAreRoundedForReading() {
        #expect(ScalingSVG.sig(8.8e6, 3) == "8.8\u{d7}10\u{2076}")
        #expect(ScalingSVG.sig(0.34, 3) == "0.34")
        #expect(ScalingSVG.sig(1.6943, 3) == "1.69")
        #expect(ScalingSVG.sig(9.996e9, 3) == "1\u{d7}10\u{b9}\u{2070}")
        #expect(ScalingSVG.sig(-0.000012, 2) == "-1.2\u{d7}10\u{207b}\u{2075}")
        #expect(ScalingSVG.niceTicks(2.2, 3.3, count: 5).count >= 4)
    }
}
