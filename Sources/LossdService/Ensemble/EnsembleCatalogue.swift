import LossdKernels

/// One combination rule of `POST /v1/ensemble` (docs/ensembles.md): its parameters, whether
/// it takes member `weights` (listed among its inputs) and the kernel it runs.
struct EnsembleMethodDefinition: CatalogueRecord {
    let name: String
    var aliases: [String] = []
    let summary: String
    let inputs: [InputSpec]
    let parameters: [ParameterSpec]
    /// Combines the members' logits; `weights` only where the record lists them.
    let combine: @Sendable (EnsembleLogits, _ weights: [Double]?, ResolvedParameters) throws(LossInputError) -> EnsembleResult

    /// Whether member `weights` [M] apply: the record lists them among its inputs.
    var acceptsWeights: Bool { inputs.contains { $0.name == "weights" } }
}

/// Every ensemble method, in the order of errors and of openapi.yaml's enum.
enum EnsembleCatalogue {
    static let all = Catalogue<EnsembleMethodDefinition>([
        kernelMethod(
            .crossmax, parameters: crossMaxParameters,
            "CrossMax (Fort & Lakshminarayanan 2024): each class's k-th highest normalised logit over members."),
        kernelMethod(.meanLogits, "The (weighted) mean of the members' logits."),
        kernelMethod(.meanProbs, "The (weighted) mean of the members' softmax probabilities."),
        kernelMethod(.geometricMean, "The (weighted) geometric mean of the members' probabilities."),
        kernelMethod(.medianLogits, "The per-class median of the members' logits."),
        kernelMethod(.majorityVote, "The (weighted) vote of the members' argmax classes."),
    ])

    private static let logits = InputSpec.required("logits", "[M][N][C]")
    private static let weights = InputSpec.optional("weights", "[M]")

    /// CrossMax's parameters; the other methods take none.
    static let crossMaxParameters: [ParameterSpec] = [
        ParameterSpec(
            name: "k", kind: .integer(lower: 1, upper: nil), defaultValue: .null, nullable: true,
            summary: "Pool each class with the k-th highest value over members; default 3, or M when M < 3; at most M"),
        .choice(
            "reduce", CrossMax.Reduce.allCases.map(\.rawValue), default: CrossMax.Reduce.kthHighest.rawValue,
            "Pooling over members: the k-th highest value, or the median (mean of the two middle values for even M)"),
    ]

    /// The record of one kernel method: the weights it takes and its parameters follow the
    /// kernel's rules (`EnsembleMethod.acceptsWeights`, CrossMax's k and reduce).
    private static func kernelMethod(
        _ method: EnsembleMethod, parameters: [ParameterSpec] = [], _ summary: String
    ) -> EnsembleMethodDefinition {
        EnsembleMethodDefinition(
            name: method.rawValue, summary: summary, inputs: method.acceptsWeights ? [logits, weights] : [logits],
            parameters: parameters,
            combine: { logits, weights, p throws(LossInputError) in
                try Ensemble.combine(
                    method, logits: logits, weights: weights, k: p.optionalNumber("k").map { Int($0) },
                    reduce: CrossMax.Reduce(rawValue: p.string("reduce")) ?? .kthHighest)
            })
    }
}
