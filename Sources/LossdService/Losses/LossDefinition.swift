import LossdJSON
import LossdKernels

/// One input tensor of a loss, as the catalogue lists it.
struct InputSpec: Sendable {
    let name: String
    /// The shape in the API's letters, e.g. `[N][C]`.
    let shape: String
    /// "required", "optional", or "one of labels/targets" style text.
    let presence: String
    /// Whether the response can carry a gradient for it.
    let gradient: Bool

    static func required(_ name: String, _ shape: String, gradient: Bool = false) -> InputSpec {
        InputSpec(name: name, shape: shape, presence: "required", gradient: gradient)
    }

    static func optional(_ name: String, _ shape: String) -> InputSpec {
        InputSpec(name: name, shape: shape, presence: "optional", gradient: false)
    }

    static func oneOf(_ name: String, _ shape: String, group: String) -> InputSpec {
        InputSpec(name: name, shape: shape, presence: "one of \(group)", gradient: false)
    }

    var catalogueEntry: JSONValue {
        ["name": .string(name), "shape": .string(shape), "presence": .string(presence), "gradient": .bool(gradient)]
    }
}

/// What a loss's evaluation sees: the request's tensors (decoded on demand), its validated
/// parameters, and whether gradients are wanted.
struct LossContext {
    let tensors: TensorReader
    let parameters: ResolvedParameters
    let gradient: Bool
    /// The JSON pointer of this loss's params object, for loss-specific parameter errors.
    let parametersPointer: String
}

/// A catalogue entry: everything the service needs to expose one kernel over `/v1/loss`.
/// Adding a loss means one kernel file in LossdKernels and one of these in the catalogue.
struct LossDefinition: Sendable {
    let name: String
    var aliases: [String] = []
    /// What the loss is for: `classification`, `multilabel`, `embedding`, ...
    let kind: String
    let summary: String
    let inputs: [InputSpec]
    let parameters: [ParameterSpec]
    /// Whether `sample_weights` [R] is accepted (docs/losses.md §1.3).
    var acceptsSampleWeights = true
    /// Whether the loss is one number for the whole batch (`tcm`): `reduction` `mean` and
    /// `sum` both answer it, and a per-row reduction (`none`, `group_mean`) is
    /// `invalid_input` at `/reduction`.
    var batchValue = false
    /// Runs the kernel; errors already carry their code, field and message (docs/losses.md §1.4).
    let evaluate: @Sendable (LossContext) throws(ServiceError) -> LossOutput
    /// Extras that depend on the reduced mean (e.g. cross-entropy's bits and perplexity).
    var meanExtras: (@Sendable (_ output: LossOutput, _ mean: Double) -> [String: LossExtra])? = nil

    var catalogueEntry: JSONValue {
        var params: [(String, JSONValue)] = []
        for spec in parameters { params.append((spec.name, spec.catalogueEntry)) }
        var members: [(String, JSONValue)] = [
            ("name", .string(name)),
            ("kind", .string(kind)),
            ("summary", .string(summary)),
            ("inputs", .array(inputs.map(\.catalogueEntry))),
            ("params", .object(params)),
            ("sample_weights", .bool(acceptsSampleWeights)),
            ("gradient", .bool(inputs.contains { $0.gradient })),
        ]
        if !aliases.isEmpty { members.append(("aliases", .array(aliases.map { .string($0) }))) }
        return .object(members)
    }
}

/// Runs a kernel and turns its input errors into service errors.
func kernel(_ body: () throws(LossInputError) -> LossOutput) throws(ServiceError) -> LossOutput {
    do {
        return try body()
    } catch {
        throw ServiceError(error)
    }
}
