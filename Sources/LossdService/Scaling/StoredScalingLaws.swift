import LossdJSON
import LossdKernels
import LossdStore

/// A fitted scaling law as the API shows it: what `GET /v1/scaling/laws/{name}` answers
/// and a PUT sends, `{"name", "law", "params", "options", "fitted_on", "created_at"}`
/// (`params` the law's fitted parameters, `options` the settings it was resolved with).
struct ScalingLawRecord {
    var name: String
    var model: ScalingModel
    /// Points (or curve steps) the law was fitted to; nil for a law PUT without it.
    var fittedOn: Int?
    /// RFC 3339, UTC.
    var createdAt: String

    static let fields = ["name", "law", "params", "options", "fitted_on", "created_at"]

    var json: JSONValue {
        [
            "name": .string(name),
            "law": .string(model.law.kind.rawValue),
            "params": .object(model.named.map { ($0.name, .double($0.value)) }),
            "options": .object(ScalingRequest.echo(model.law, huberDelta: nil)),
            "fitted_on": fittedOn.map { .int($0) } ?? .null,
            "created_at": .string(createdAt),
        ]
    }

    /// The document the store keeps (a listing's `fitted_on` is -1 when unknown).
    var stored: StoredDocument {
        StoredDocument(
            name: name, kind: model.law.kind.rawValue, size: fittedOn ?? -1, createdAt: createdAt,
            json: String(decoding: json.bytes, as: UTF8.self))
    }

    /// The law, its fitted parameters and its options, read from a law object (a PUT's
    /// body or a stored document) and checked as a predict request's would be; fields
    /// are pointers into `object`.
    static func model(from object: JSONObject) throws(ServiceError) -> ScalingModel {
        let kind = try ScalingRequest.law(object)
        let params = try ScalingRequest.params(object, allowed: kind.parameterNames, place: "a \(kind.rawValue) law")
        let optionsObject: JSONObject
        switch object["options"] {
        case nil, .null?: optionsObject = JSONObject()
        case .object(let given)?:
            // A fit's answer echoes `huber_delta`, which only a fit uses: accepted, not kept.
            try StrictFields.check(
                given, allowed: ScalingRequest.optionNames(kind) + ["huber_delta"], pointer: "/options",
                place: "the options of \(kind.rawValue)")
            _ = try ScalingRequest.number(given, "huber_delta", pointer: "/options")
            optionsObject = given
        default: throw ServiceError.invalid(.invalidParam, field: "/options", "`options` must be an object")
        }
        let options: ScalingOptions
        do {
            options = try ScalingRequest.options(optionsObject, kind: kind, fitting: false)
        } catch {
            throw error.rebasingField(from: "/params", onto: "/options")
        }
        var named: [String: Double] = [:]
        for name in kind.parameterNames {
            if let value = try ScalingRequest.number(params, name) { named[name] = value }
        }
        do {
            let law = try ScalingLaw.resolve(kind, options: options, data: nil)
            return try ScalingModel(law: law, named: named)
        } catch {
            let failure = ServiceError(error)
            // The kernels name options `/params/…`; here they sit under `/options`.
            if let field = failure.field, ScalingRequest.optionNames(kind).contains(where: { field == "/params/\($0)" }) {
                throw failure.rebasingField(from: "/params", onto: "/options")
            }
            throw failure
        }
    }
}

/// Fitted scaling laws in the store: `GET /v1/scaling/laws`, `GET|PUT|DELETE
/// /v1/scaling/laws/{name}` (the routes are `StoredRoutes`'); `POST /v1/scaling/fit`
/// stores one with `name`, `POST /v1/scaling/predict` reads one by `name`.
enum ScalingLawResource: StoredResource {
    static let collection = "scaling_laws"
    static let noun = "scaling law"
    static let path = "/v1/scaling/laws"
    static let listMember = "laws"

    static func summary(_ summary: DocumentSummary) -> JSONValue {
        [
            "name": .string(summary.name), "law": .string(summary.kind),
            "fitted_on": summary.size >= 0 ? .int(summary.size) : .null, "created_at": .string(summary.createdAt),
        ]
    }

    /// A PUT's body is a law object as a GET answers it; `name` (the path names the law)
    /// and `created_at` are ignored.
    static func document(named name: String, from body: JSONObject) throws(ServiceError) -> StoredDocument {
        try StrictFields.check(body, allowed: ScalingLawRecord.fields, nullable: ["fitted_on", "options"], pointer: "", place: "a scaling law")
        let model = try ScalingLawRecord.model(from: body)
        let fittedOn = try fittedOn(in: body)
        return ScalingLawRecord(name: name, model: model, fittedOn: fittedOn, createdAt: timestamp()).stored
    }

    /// The stored law called `name`, ready to predict with.
    static func model(named name: String, slot: StoreSlot) throws(ServiceError) -> ScalingModel {
        let stored = try StoredRoutes<ScalingLawResource>.load(name, slot: slot)
        let object = try object(of: stored)
        do {
            return try ScalingLawRecord.model(from: object)
        } catch {
            throw ServiceError.invalid(.invalidInput, field: nil, "scaling law `\(name)` cannot be used by this lossd: \(error.detail)")
        }
    }
}
