import LossdJSON

/// How an input of a catalogue record must be sent.
enum InputPresence: Sendable, Equatable {
    case required
    case optional
    /// Exactly one form of the group must be sent; `group` names the forms, e.g.
    /// `labels/targets` or `queries+keys/embeddings`.
    case oneOf(group: String)

    /// The text `GET /v1/losses` serves: `required`, `optional` or `one of GROUP`.
    var text: String {
        switch self {
        case .required: "required"
        case .optional: "optional"
        case .oneOf(let group): "one of \(group)"
        }
    }
}

/// One input tensor of a catalogue record (a loss's `logits`, a calibrator's `scores`).
struct InputSpec: Sendable {
    let name: String
    /// The shape in the API's letters, e.g. `[N][C]`.
    let shape: String
    let presence: InputPresence
    /// Whether the response can carry a gradient for it.
    let gradient: Bool

    static func required(_ name: String, _ shape: String, gradient: Bool = false) -> InputSpec {
        InputSpec(name: name, shape: shape, presence: .required, gradient: gradient)
    }

    static func optional(_ name: String, _ shape: String) -> InputSpec {
        InputSpec(name: name, shape: shape, presence: .optional, gradient: false)
    }

    static func oneOf(_ name: String, _ shape: String, group: String, gradient: Bool = false) -> InputSpec {
        InputSpec(name: name, shape: shape, presence: .oneOf(group: group), gradient: gradient)
    }

    /// `sample_weights` [N]: a record that lists it takes per-row weights (docs/losses.md §1.3).
    static let sampleWeights = InputSpec.optional(sampleWeightsName, "[N]")
    static let sampleWeightsName = "sample_weights"

    var catalogueEntry: JSONValue {
        ["name": .string(name), "shape": .string(shape), "presence": .string(presence.text), "gradient": .bool(gradient)]
    }
}

/// One method of a catalogue: a loss, a calibrator, an aggregation or ensemble method, a
/// metric. The record declares its name (and aliases), what it is, the inputs it reads and
/// the parameters it takes with their defaults and ranges; its kernel adapter is a closure
/// of the conforming type. Lookup with "did you mean", the listing, the strict-field
/// members and openapi.yaml's generated schemas (`OpenAPIFragments`) derive from it.
protocol CatalogueRecord: Sendable {
    var name: String { get }
    var aliases: [String] { get }
    var summary: String { get }
    var inputs: [InputSpec] { get }
    var parameters: [ParameterSpec] { get }
}

extension CatalogueRecord {
    /// Whether the record takes per-row `sample_weights`: it lists them among its inputs.
    var acceptsSampleWeights: Bool { inputs.contains { $0.name == InputSpec.sampleWeightsName } }

    /// The names of its inputs, for the strict-field rule of a request that carries them.
    var inputNames: [String] { inputs.map(\.name) }

    /// The `params` members of its listing: each parameter's catalogue entry.
    var parametersEntry: JSONValue { .object(parameters.map { ($0.name, $0.catalogueEntry) }) }
}

/// An ordered catalogue of records with lookup by name or alias. The order is the order of
/// listings, of enums in openapi.yaml and of "did you mean" ties.
struct Catalogue<Record: CatalogueRecord>: RandomAccessCollection, Sendable {
    let records: [Record]
    private let positions: [String: Int]

    init(_ records: [Record]) {
        self.records = records
        var positions: [String: Int] = [:]
        for (i, record) in records.enumerated() {
            precondition(positions[record.name] == nil, "catalogue name `\(record.name)` listed twice")
            positions[record.name] = i
            for alias in record.aliases {
                precondition(positions[alias] == nil, "catalogue alias `\(alias)` listed twice")
                positions[alias] = i
            }
        }
        self.positions = positions
    }

    var startIndex: Int { records.startIndex }
    var endIndex: Int { records.endIndex }
    subscript(position: Int) -> Record { records[position] }

    /// The record of a name or alias; nil when there is none.
    subscript(name: String) -> Record? { positions[name].map { records[$0] } }

    /// Canonical names in order.
    var names: [String] { records.map(\.name) }

    /// Every name and alias, in catalogue order (what a client may send).
    var namesAndAliases: [String] { records.flatMap { [$0.name] + $0.aliases } }

    /// The inputs any record reads, each once, in catalogue order (the members a request
    /// for one of them may carry besides its own fields).
    var inputNames: [String] {
        var names: [String] = []
        for record in records {
            for input in record.inputs where !names.contains(input.name) { names.append(input.name) }
        }
        return names
    }

    /// "; did you mean `x`?" for an unknown name, or "".
    func suggestion(for name: String) -> String {
        StrictFields.suggestion(for: name, among: namesAndAliases)
    }

    /// The record `node` names, or the 422 `make` builds from the name as sent (a string's
    /// text, any other value's JSON) and the "did you mean" suggestion.
    func record(
        _ node: JSONNode, orThrow make: (_ given: String, _ suggestion: String) -> ServiceError
    ) throws(ServiceError) -> Record {
        if case .string(let name) = node, let record = self[name] { return record }
        let given = ResolvedParameters.plain(node)
        throw make(given, suggestion(for: given))
    }

    /// The listing: one JSON object per record, in order.
    func listing(_ entry: (Record) -> JSONValue) -> JSONValue { .array(records.map(entry)) }
}
