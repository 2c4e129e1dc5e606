import LossdHTTP
import LossdJSON
import Testing

@testable import LossdService

/// The strict-field rules, generated from the catalogues: a one-edit typo of every
/// parameter of every loss, calibrator, aggregation method, ensemble method and of the
/// metrics gets 422 `unknown_field` with its pointer and a "did you mean" naming the
/// parameter; null is refused unless the parameter is nullable; unknown top-level and
/// `losses[]` members are refused on every endpoint.
@Suite("Strict request fields")
struct StrictFieldTests {
    let service = LossdService(configuration: ServiceConfiguration())
    let context = RequestContext(requestID: "t-1", remoteAddress: "127.0.0.1")

    struct Answer {
        let status: Int
        let json: JSONObject?

        var code: String? {
            guard case .string(let type)? = json?["type"] else { return nil }
            return String(type.split(separator: ":").last ?? "")
        }

        var field: String? {
            guard case .string(let field)? = json?["field"] else { return nil }
            return field
        }

        var detail: String {
            guard case .string(let detail)? = json?["detail"] else { return "" }
            return detail
        }
    }

    func post(_ path: String, _ body: JSONValue) -> Answer {
        (try? post(path, text: String(decoding: body.bytes, as: UTF8.self))) ?? Answer(status: 0, json: nil)
    }

    /// Posts a JSON text in process; the answer's problem document parsed.
    func post(_ path: String, text: String) throws -> Answer {
        let head = HTTPRequestHead(
            method: "POST", target: path, version: .http1_1, headers: ["Host": "x", "Content-Type": "application/json"])
        let response = service.respond(to: HTTPRequest(head: head, body: Array(text.utf8)), context: context)
        guard case .object(let object) = try JSONReader.parse(response.body) else {
            return Answer(status: response.status.code, json: nil)
        }
        return Answer(status: response.status.code, json: object)
    }

    /// One edit away from `name` and from no other parameter of the list: an `x` appended.
    func typo(of name: String) -> String { name + "x" }

    func expectTypoRefused(_ answer: Answer, pointer: String, suggesting name: String, _ comment: String) {
        #expect(answer.status == 422, "\(comment): \(answer.status) \(answer.detail)")
        #expect(answer.code == "unknown_field", "\(comment)")
        #expect(answer.field == pointer, "\(comment)")
        #expect(answer.detail.contains("did you mean `\(name)`?"), "\(comment): \(answer.detail)")
    }

    /// A valid value for a parameter, so that only its name is wrong.
    func sample(_ spec: ParameterSpec) -> JSONValue {
        spec.defaultValue.flatMap { $0 == .null ? nil : $0 } ?? .double(1)
    }

    @Test func everyLossParameterTypoIsRefusedWithASuggestion() {
        var checked = 0
        for definition in LossCatalogue.all {
            for spec in definition.parameters {
                let answer = post(
                    "/v1/loss",
                    ["loss": .string(definition.name), "params": .object([(typo(of: spec.name), sample(spec))])])
                expectTypoRefused(
                    answer, pointer: "/params/\(typo(of: spec.name))", suggesting: spec.name, "\(definition.name).\(spec.name)")
                // The same inside a `losses[]` entry.
                let listed = post(
                    "/v1/loss",
                    ["losses": .array([["loss": .string(definition.name), "params": .object([(typo(of: spec.name), sample(spec))])]])])
                expectTypoRefused(
                    listed, pointer: "/losses/0/params/\(typo(of: spec.name))", suggesting: spec.name,
                    "losses[0] \(definition.name).\(spec.name)")
                checked += 1
            }
        }
        #expect(checked > 40)
    }

    @Test func nullParametersAreRefusedUnlessNullable() {
        for definition in LossCatalogue.all {
            for spec in definition.parameters where !spec.nullable {
                let answer = post("/v1/loss", ["loss": .string(definition.name), "params": .object([(spec.name, .null)])])
                #expect(answer.status == 422, "\(definition.name).\(spec.name)")
                #expect(answer.code == "invalid_input", "\(definition.name).\(spec.name)")
                #expect(answer.field == "/params/\(spec.name)")
            }
        }
    }

    @Test func everyCalibratorParameterTypoIsRefusedWithASuggestion() {
        for definition in CalibratorCatalogue.all {
            for spec in definition.parameters {
                let answer = post(
                    "/v1/calibrators/fit",
                    ["method": .string(definition.name), "params": .object([(typo(of: spec.name), sample(spec))])])
                expectTypoRefused(
                    answer, pointer: "/params/\(typo(of: spec.name))", suggesting: spec.name, "\(definition.name).\(spec.name)")
            }
        }
    }

    @Test func everyAggregationParameterTypoIsRefusedWithASuggestion() {
        for method in AggregationCatalogue.all {
            for spec in method.parameters {
                let answer = post(
                    "/v1/aggregate",
                    [
                        "method": .string(method.name), "num_classes": 3,
                        "params": .object([(typo(of: spec.name), sample(spec))]), "annotations": .array([]),
                    ])
                expectTypoRefused(
                    answer, pointer: "/params/\(typo(of: spec.name))", suggesting: spec.name, "\(method.name).\(spec.name)")
            }
        }
    }

    @Test func everyEnsembleAndMetricsParameterTypoIsRefusedWithASuggestion() {
        for spec in EnsembleCatalogue.crossMaxParameters {
            let answer = post("/v1/ensemble", ["method": "crossmax", "params": .object([(typo(of: spec.name), sample(spec))])])
            expectTypoRefused(answer, pointer: "/params/\(typo(of: spec.name))", suggesting: spec.name, "crossmax.\(spec.name)")
        }
        for spec in MetricsEndpoint.parameters {
            let answer = post("/v1/metrics", ["params": .object([(typo(of: spec.name), sample(spec))])])
            expectTypoRefused(answer, pointer: "/params/\(typo(of: spec.name))", suggesting: spec.name, "metrics.\(spec.name)")
        }
        // scikit-learn's and torchmetrics' name for the bin count.
        let nBins = post("/v1/metrics", ["params": ["n_bins": 10]])
        #expect(nBins.code == "unknown_field" && nBins.field == "/params/n_bins")
    }

    /// The misspellings users made, one per endpoint, at the top level and in `losses[]`.
    @Test(arguments: [
        ("/v1/loss", #"{"loss": "cross_entropy", "logits": [[1, 2]], "labels": [0], "return_gradient": true}"#, "/return_gradient", nil),
        ("/v1/loss", #"{"loss": "cross_entropy", "logit": [[1, 2]], "labels": [0]}"#, "/logit", "logits"),
        ("/v1/loss", #"{"loss": "cross_entropy", "logits": [[1, 2]], "labels": [0], "teacher_logits": [[1, 2]]}"#, "/teacher_logits", nil),
        ("/v1/loss", #"{"losses": [{"loss": "cross_entropy", "reducton": "sum"}], "logits": [[1, 2]], "labels": [0]}"#, "/losses/0/reducton", "reduction"),
        ("/v1/loss", #"{"losses": [{"loss": "cross_entropy"}], "loss": "focal", "logits": [[1, 2]], "labels": [0]}"#, "/loss", "losses"),
        ("/v1/metrics", #"{"logits": [[1, 2]], "labels": [0], "metric": ["ece"]}"#, "/metric", "metrics"),
        ("/v1/reliability", #"{"logits": [[1, 2]], "labels": [0], "bins": 10}"#, "/bins", nil),
        ("/v1/calibrators/fit", #"{"method": "temperature", "logits": [[1, 2]], "labels": [0], "lamda": 1}"#, "/lamda", nil),
        ("/v1/calibrate", #"{"calibrator": {"method": "temperature", "params": {"temperature": 1}}, "logits": [[1, 2]], "label": [0]}"#, "/label", nil),
        ("/v1/calibrate", #"{"calibrator": {"method": "temperature", "param": {"temperature": 1}}, "logits": [[1, 2]]}"#, "/calibrator/param", "params"),
        ("/v1/aggregate", #"{"method": "dawid_skene", "num_classes": 2, "annotations": [[1, 1, 0]], "n_iters": 5}"#, "/n_iters", nil),
        ("/v1/ensemble", #"{"method": "mean_probs", "logits": [[[1, 2]]], "wieghts": [1]}"#, "/wieghts", "weights"),
    ] as [(String, String, String, String?)])
    func unknownTopLevelMembersAreRefused(_ path: String, _ json: String, _ pointer: String, _ suggestion: String?) throws {
        let answer = try post(path, text: json)
        #expect(answer.status == 422, "\(answer.detail)")
        #expect(answer.code == "unknown_field", "\(answer.detail)")
        #expect(answer.field == pointer)
        if let suggestion {
            #expect(answer.detail.contains("did you mean `\(suggestion)`?"), "\(answer.detail)")
        }
    }

    @Test(arguments: [
        ("/v1/loss", #"{"loss": "cross_entropy", "logits": [[1, 2]], "labels": [0], "sample_weights": null}"#, "/sample_weights"),
        ("/v1/loss", #"{"loss": "cross_entropy", "logits": [[1, 2]], "labels": [0], "return_grad": null}"#, "/return_grad"),
        ("/v1/ensemble", #"{"method": "mean_probs", "logits": [[[1, 2]]], "weights": null}"#, "/weights"),
        ("/v1/calibrate", #"{"calibrator": {"method": "correctness_aware"}, "views_logits": null, "logits": [[1, 2]]}"#, "/views_logits"),
        ("/v1/metrics", #"{"logits": [[1, 2]], "labels": [0], "metrics": ["opis"], "params": {"utility": null}}"#, "/params/utility"),
    ] as [(String, String, String)])
    func nullIsNotAValue(_ path: String, _ json: String, _ pointer: String) throws {
        let answer = try post(path, text: json)
        #expect(answer.status == 422, "\(answer.detail)")
        #expect(answer.code == "invalid_input", "\(answer.detail)")
        #expect(answer.field == pointer)
    }

    @Test func unknownNamesSuggestTheNearestKnownOne() {
        #expect(post("/v1/loss", ["loss": "cross_entropi"]).detail.contains("did you mean `cross_entropy`?"))
        #expect(post("/v1/calibrators/fit", ["method": "temprature"]).detail.contains("did you mean `temperature`?"))
        #expect(post("/v1/aggregate", ["method": "dawid_skeen", "num_classes": 2]).detail.contains("did you mean `dawid_skene`?"))
        #expect(post("/v1/ensemble", ["method": "crosmax"]).detail.contains("did you mean `crossmax`?"))
        #expect(post("/v1/metrics", ["metrics": ["eece"]]).detail.contains("did you mean `ece`?"))
        #expect(!post("/v1/loss", ["loss": "wholly_different"]).detail.contains("did you mean"))
    }

    @Test func editDistanceCountsTranspositionsAsOneEdit() {
        func d(_ a: String, _ b: String) -> Int { StrictFields.editDistance(Array(a.unicodeScalars), Array(b.unicodeScalars)) }
        #expect(d("label_smoothing", "label_smoothng") == 1)
        #expect(d("weights", "wieghts") == 1)
        #expect(d("n_iter", "n_iters") == 1)
        #expect(d("", "abc") == 3)
        #expect(d("kitten", "sitting") == 3)
        #expect(StrictFields.nearest(to: "N_BINS", among: ["bins", "n_thresholds"]) == "bins")
    }
}
