import LossdJSON
import LossdStore

/// Fitted calibrators in the store: `GET /v1/calibrators`, `GET|PUT|DELETE
/// /v1/calibrators/{name}` (the routes are `StoredRoutes`'); fits store theirs with
/// `name`, `POST /v1/calibrate` and `/v1/calibrators/{name}/apply` read them back.
enum CalibratorResource: StoredResource {
    static let collection = "calibrators"
    static let noun = "calibrator"
    static let path = "/v1/calibrators"
    static let listMember = "calibrators"
    /// `fit` and `select` are the segments of `POST /v1/calibrators/fit` and
    /// `POST /v1/calibrators/select` (the more specific route wins).
    static let reservedNames: Set<String> = ["fit", "select"]

    static func summary(_ summary: DocumentSummary) -> JSONValue {
        ["name": .string(summary.name), "method": .string(summary.kind), "classes": .int(summary.size), "created_at": .string(summary.createdAt)]
    }

    /// A PUT's body is a calibrator object as a GET answers it. A `name` member is
    /// ignored (the path names the calibrator, so a GET's answer can be PUT back under
    /// another name); so is `created_at`.
    static func document(named name: String, from body: JSONObject) throws(ServiceError) -> StoredDocument {
        try StrictFields.check(body, allowed: CalibratorRecord.fields, nullable: ["fitted_on"], pointer: "", place: "a calibrator")
        let (model, definition) = try CalibratorCodec.decodeModel(body, pointer: "")
        do {
            try definition.validate(model)
        } catch {
            // The body is the model itself: `/params/...`, not `/calibrator/params/...`.
            throw error.rebasingField(from: "/calibrator", onto: "")
        }
        let fittedOn = try fittedOn(in: body)
        return CalibratorRecord(name: name, model: model, fittedOn: fittedOn, createdAt: CalibratorResource.timestamp()).stored
    }
}
