import LossdJSON
import LossdKernels

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
/// Adding a loss means one kernel file in LossdKernels and one of these in the catalogue;
/// `GET /v1/losses`, the strict-field members and openapi.yaml's schemas derive from it.
struct LossDefinition: CatalogueRecord {
    let name: String
    var aliases: [String] = []
    /// What the loss is for: `classification`, `multilabel`, `embedding`, ...
    let kind: String
    let summary: String
    let inputs: [InputSpec]
    let parameters: [ParameterSpec]
    /// Whether the loss is one number for the whole batch (`tcm`): `reduction` `mean` and
    /// `sum` both answer it, and a per-row reduction (`none`, `group_mean`) is
    /// `invalid_input` at `/reduction`.
    var batchValue = false
    /// What openapi.yaml's generated schemas need beyond the record (`OpenAPIFragments`).
    var openAPI = LossSchemaOptions()
    /// Runs the kernel; errors already carry their code, field and message (docs/losses.md §1.4).
    let evaluate: @Sendable (LossContext) throws(ServiceError) -> LossOutput
    /// Extras that depend on the reduced mean (e.g. cross-entropy's bits and perplexity).
    var meanExtras: (@Sendable (_ output: LossOutput, _ mean: Double) -> [String: LossExtra])? = nil

    var catalogueEntry: JSONValue {
        var members: [(String, JSONValue)] = [
            ("name", .string(name)),
            ("kind", .string(kind)),
            ("summary", .string(summary)),
            ("inputs", .array(inputs.map(\.catalogueEntry))),
            ("params", parametersEntry),
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

/// How a loss's schemas in openapi.yaml differ from what its record gives
/// (`OpenAPIFragments`): by default every input `x` is `LossInputX`, the reduction is
/// `Reduction` (`BatchReduction` without sample weights, `BatchValueReduction` for a batch
/// value), and the loss has one generated `XParams`, `XRequest` and `XEntry`.
struct LossSchemaOptions: Sendable {
    /// Input name → component schema, where it is not `LossInput` + the input's name.
    var inputSchemas: [String: String] = [:]
    /// The reduction schema, where the derived one does not fit (rows that interact
    /// although the loss takes sample weights).
    var reduction: String? = nil
    /// Request schemas written by hand in openapi.yaml in place of the generated `XRequest`
    /// (one per input form or mode, where JSON Schema needs more than the inputs say).
    var handWrittenRequests: [String] = []
    /// Params schemas written by hand in place of the generated `XParams` (one per mode, or
    /// with constraints between parameters).
    var handWrittenParams: [String] = []
}
