import Foundation
import LossdTestSupport
import Testing

#if canImport(FoundationXML)
    import FoundationXML
#endif

/// The SVG answers drawn from reliability bins and crowd annotations, through the real
/// binary: `/v1/reliability` (gap colour, Wilson intervals, title, bin labels),
/// `/v1/calibrators/{name}/reliability` (before and after) and `/v1/aggregate`'s
/// confusion-matrix picture.
@Suite("lossd pictures over real sockets")
struct PictureEndpointTests {
    func post(_ lossd: LossdProcess, _ path: String, _ json: String, accept: String? = nil) throws -> WireResponse {
        try lossd.postJSON(path, json, accept: accept)
    }

    /// Every element name of a well-formed SVG document, in order (fails on bad XML).
    func elements(_ response: WireResponse) throws -> [String] {
        final class Collector: NSObject, XMLParserDelegate {
            var names: [String] = []
            func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?, attributes: [String: String] = [:]) {
                names.append(name)
            }
        }
        let parser = XMLParser(data: Data(response.body))
        let collector = Collector()
        parser.delegate = collector
        try #require(parser.parse(), "SVG is not well-formed XML: \(String(describing: parser.parserError))")
        #expect(collector.names.first == "svg")
        return collector.names
    }

    /// 40 samples of a 3-class model; `scale` < 1 makes it under-confident.
    static func logits(scale: Double) -> (logits: String, labels: String) {
        var rows: [String] = [], labels: [String] = []
        for i in 0..<40 {
            let y = i % 3
            var row = [Double(i % 5) * 0.3, Double(i % 7) * 0.2, Double(i % 4) * 0.25]
            row[y] += 2.0
            rows.append("[" + row.map { String($0 * scale) }.joined(separator: ", ") + "]")
            labels.append(String(y))
        }
        return ("[" + rows.joined(separator: ", ") + "]", "[" + labels.joined(separator: ", ") + "]")
    }

    @Test func reliabilityDiagramDrawsGapsOpaqueWithIntervalsAndTitle() throws {
        let lossd = try LossdProcess()
        let (logits, labels) = Self.logits(scale: 0.2)
        let response = try post(
            lossd, "/v1/reliability", #"{"logits": \#(logits), "labels": \#(labels), "params": {"bins": 10}, "title": "Under <confident>"}"#,
            accept: "image/svg+xml")
        #expect(response.status == 200, "\(response.bodyText)")
        let text = response.bodyText
        _ = try elements(response)
        // The title is used (escaped); the gap is opaque and has the legend swatch's colour.
        #expect(text.contains("Under &lt;confident&gt;"))
        #expect(!text.contains("fill-opacity"))
        let gapFill = ##"fill="#f4a4a3""##
        #expect(text.components(separatedBy: gapFill).count > 2, "the legend swatch and at least one gap")
        // Bins are labelled i/B: no 0.30000000000000004 in tooltips.
        #expect(text.contains("Wilson 95%"))
        #expect(!text.contains("0.30000000000000004") && !text.contains("0.6000000000000001"))
        // The JSON keeps the edges the samples were binned with.
        let json = try post(lossd, "/v1/reliability", #"{"logits": \#(logits), "labels": \#(labels), "params": {"bins": 10}}"#)
        #expect(json.status == 200)
        #expect(json.bodyText.contains("0.30000000000000004"))
    }

    @Test(arguments: [
        (#""title": """#, "/title", "invalid_param"),
        (#""title": 5"#, "/title", "invalid_param"),
        (#""title": "\#(String(repeating: "x", count: 201))""#, "/title", "invalid_param"),
    ])
    func badTitle(_ member: String, _ field: String, _ code: String) throws {
        let lossd = try LossdProcess()
        let (logits, labels) = Self.logits(scale: 1)
        let response = try post(lossd, "/v1/reliability", #"{"logits": \#(logits), "labels": \#(labels), \#(member)}"#, accept: "image/svg+xml")
        #expect(response.status == 422)
        #expect(response.json?["field"] as? String == field)
        #expect(response.json?["type"] as? String == "urn:lossd:error:\(code)")
    }

    /// One request schema serves both routes: /v1/metrics checks `title` too (and has no
    /// picture to put it on).
    @Test func metricsChecksTitle() throws {
        let lossd = try LossdProcess()
        let (logits, labels) = Self.logits(scale: 1)
        let bad = try post(lossd, "/v1/metrics", #"{"logits": \#(logits), "labels": \#(labels), "title": 3}"#)
        #expect(bad.status == 422)
        #expect(bad.json?["field"] as? String == "/title")
        let good = try post(lossd, "/v1/metrics", #"{"logits": \#(logits), "labels": \#(labels), "title": "x"}"#)
        #expect(good.status == 200)
        #expect(good.json?["title"] == nil)
    }

    @Test func calibratorBeforeAndAfter() throws {
        let lossd = try LossdProcess()
        let (logits, labels) = Self.logits(scale: 3)
        let fit = try post(lossd, "/v1/calibrators/fit", #"{"method": "temperature", "name": "pic", "logits": \#(logits), "labels": \#(labels)}"#)
        #expect(fit.status == 201, "\(fit.bodyText)")

        let json = try post(lossd, "/v1/calibrators/pic/reliability", #"{"logits": \#(logits), "labels": \#(labels), "params": {"bins": 5}}"#)
        #expect(json.status == 200, "\(json.bodyText)")
        let body = try #require(json.json)
        #expect(body["method"] as? String == "temperature")
        #expect(body["n"] as? Int == 40)
        let before = try #require(body["before"] as? [String: Any]), after = try #require(body["after"] as? [String: Any])
        let nllBefore = try #require(before["nll"] as? Double), nllAfter = try #require(after["nll"] as? Double)
        #expect(nllAfter < nllBefore, "a temperature fitted on these samples lowers their NLL")
        // The fit reports the same numbers.
        let fitReport = try #require(fit.json?["fit"] as? [String: Any])
        #expect(abs((fitReport["nll_after"] as? Double ?? .nan) - nllAfter) < 1e-12)
        let bins = try #require((after["reliability"] as? [String: Any])?["bins"] as? [[String: Any]])
        #expect(bins.count == 5)
        #expect(bins.map { $0["count"] as? Int ?? 0 }.reduce(0, +) == 40)

        let svg = try post(
            lossd, "/v1/calibrators/pic/reliability", #"{"logits": \#(logits), "labels": \#(labels)}"#, accept: "image/svg+xml")
        #expect(svg.status == 200)
        #expect(svg.header("content-type")?.hasPrefix("image/svg+xml") == true)
        let names = try elements(svg)
        #expect(names.contains("polyline") && names.contains("circle"))
        #expect(svg.bodyText.contains("Before") && svg.bodyText.contains("After temperature"))
    }

    @Test(arguments: [
        ("/v1/calibrators/nobody/reliability", #"{"logits": [[1, 0]], "labels": [0]}"#, 404, nil as String?),
        ("/v1/calibrators/pic2/reliability", #"{"logits": [[1, 0, 2]]}"#, 422, "/labels"),
        ("/v1/calibrators/pic2/reliability", #"{"logits": [[1, 0]], "labels": [0]}"#, 422, "/logits"),
        ("/v1/calibrators/pic2/reliability", #"{"logits": [[1, 0, 2]], "labels": [3]}"#, 422, "/labels/0"),
        ("/v1/calibrators/pic2/reliability", #"{"logits": [[1, 0, 2]], "labels": [0, 1]}"#, 422, "/labels"),
        ("/v1/calibrators/pic2/reliability", #"{"logits": [[1, 0, 2]], "labels": [0], "params": {"bins": 0}}"#, 422, "/params/bins"),
        ("/v1/calibrators/pic2/reliability", #"{"logits": [[1, 0, 2]], "labels": [0], "params": {"k": 3}}"#, 422, "/params/k"),
        ("/v1/calibrators/pic2/reliability", #"{"logits": [[1, 0, 2]], "labels": [0], "extra": 1}"#, 422, "/extra"),
    ])
    func calibratorReliabilityErrors(_ path: String, _ json: String, _ status: Int, _ field: String?) throws {
        let lossd = try LossdProcess()
        let fit = try post(
            lossd, "/v1/calibrators/fit", #"{"method": "temperature", "name": "pic2", "logits": [[1, 0, 2], [0, 2, 1]], "labels": [2, 1]}"#)
        #expect(fit.status == 201)
        let response = try post(lossd, path, json)
        #expect(response.status == status, "\(response.bodyText)")
        if let field { #expect(response.json?["field"] as? String == field, "\(response.bodyText)") }
    }

    /// Four annotators, one of whom swaps classes 1 and 2.
    static let annotations: String = {
        var triples: [String] = []
        for item in 0..<30 {
            let truth = item % 3
            for (annotator, answer) in [("good", truth), ("also-good", truth), (#"7"#, item % 5 == 0 ? (truth + 1) % 3 : truth),
                                        ("swap", [0, 2, 1][truth])] {
                let id = annotator == "7" ? "7" : "\"\(annotator)\""
                triples.append("[\(item), \(id), \(answer)]")
            }
        }
        return "[" + triples.joined(separator: ", ") + "]"
    }()

    @Test(arguments: ["dawid_skene", "majority_vote", "softmax"])
    func aggregateConfusionPicture(_ method: String) throws {
        let lossd = try LossdProcess()
        let response = try post(
            lossd, "/v1/aggregate", #"{"method": "\#(method)", "num_classes": 3, "annotations": \#(Self.annotations)}"#,
            accept: "image/svg+xml")
        #expect(response.status == 200, "\(response.bodyText)")
        #expect(response.header("content-type")?.hasPrefix("image/svg+xml") == true)
        let names = try elements(response)
        #expect(names.filter { $0 == "rect" }.count >= 4 * 9)
        let text = response.bodyText
        // Ordered by skill: the swapper is drawn last; the integer id without quotes.
        let order = ["good", "also-good", ">7<", "swap"].map { text.range(of: $0)?.lowerBound }
        #expect(order.allSatisfy { $0 != nil })
        if let swap = order[3], let seven = order[2] { #expect(seven < swap) }
        #expect(text.contains(method == "dawid_skene" ? "as fitted by dawid_skene" : "estimated against the aggregated soft labels"))
        #expect(text.contains(method == "softmax" ? "ordered by agreement" : "ordered by skill"))
    }

    @Test func aggregatePictureClassLimit() throws {
        let lossd = try LossdProcess()
        let response = try post(
            lossd, "/v1/aggregate", #"{"method": "majority_vote", "num_classes": 41, "annotations": [[0, 0, 1]]}"#,
            accept: "image/svg+xml")
        #expect(response.status == 422)
        #expect(response.json?["field"] as? String == "/num_classes")
        let json = try post(lossd, "/v1/aggregate", #"{"method": "majority_vote", "num_classes": 41, "annotations": [[0, 0, 1]]}"#)
        #expect(json.status == 200)
    }
}
