import LossdKernels

extension LossCatalogue {
    /// info_nce, nt_xent, supcon, cacr.
    static let embedding: [LossDefinition] = [infoNCE, ntXent, supCon, cacr]

    static let infoNCE = LossDefinition(
        name: "info_nce", kind: "embedding",
        summary: "InfoNCE (CPC / MoCo): query i against all keys, key i positive, extra keys as negatives; symmetric gives CLIP.",
        inputs: [
            .required("queries", "[N][D]", gradient: true),
            .required("keys", "[M>=N][D]", gradient: true),
        ],
        parameters: [
            .number("temperature", default: 0.07, min: 0, minOpen: true, "Temperature τ of S = u·vᵀ/τ."),
            .boolean("normalize", default: true, "L2-normalise queries and keys first."),
            .boolean("symmetric", default: false, "Average with the key→query direction (CLIP); needs M = N."),
        ],
        evaluate: { context throws(ServiceError) in
            let queries = try context.tensors.requiredMatrix("queries")
            let keys = try context.tensors.requiredMatrix("keys")
            let parameters = InfoNCE.Parameters(
                temperature: context.parameters.number("temperature"),
                normalize: context.parameters.bool("normalize"),
                symmetric: context.parameters.bool("symmetric"))
            return try kernel { () throws(LossInputError) in
                try InfoNCE.evaluate(queries: queries, keys: keys, parameters: parameters, gradient: context.gradient)
            }
        }
    )

    static let ntXent = LossDefinition(
        name: "nt_xent", kind: "embedding",
        summary: "NT-Xent (SimCLR): the 2N rows of [queries; keys] are anchors, the other view of the sample the positive.",
        inputs: [
            .required("queries", "[N][D]", gradient: true),
            .required("keys", "[N][D]", gradient: true),
        ],
        parameters: [
            .number("temperature", default: 0.1, min: 0, minOpen: true, "Temperature τ."),
            .boolean("normalize", default: true, "L2-normalise the rows first."),
        ],
        evaluate: { context throws(ServiceError) in
            let queries = try context.tensors.requiredMatrix("queries")
            let keys = try context.tensors.requiredMatrix("keys")
            let parameters = NTXent.Parameters(
                temperature: context.parameters.number("temperature"), normalize: context.parameters.bool("normalize"))
            return try kernel { () throws(LossInputError) in
                try NTXent.evaluate(queries: queries, keys: keys, parameters: parameters, gradient: context.gradient)
            }
        }
    )

    static let supCon = LossDefinition(
        name: "supcon", kind: "embedding",
        summary: "Supervised contrastive loss (Khosla et al. 2020): rows with the anchor's label are its positives.",
        inputs: [
            .required("embeddings", "[N][D]", gradient: true),
            .required("labels", "[N]"),
        ],
        parameters: [
            .number("temperature", default: 0.07, min: 0, minOpen: true, "Temperature τ."),
            .number("base_temperature", default: 0.07, min: 0, minOpen: true, "Base temperature τ_b (loss scaled by τ/τ_b)."),
            .boolean("normalize", default: true, "L2-normalise the rows first."),
        ],
        openAPI: LossSchemaOptions(inputSchemas: ["embeddings": "Tensor2D"]),
        evaluate: { context throws(ServiceError) in
            let embeddings = try context.tensors.requiredMatrix("embeddings")
            guard let labels = try context.tensors.integers("labels") else { throw ServiceError.missing("labels") }
            let parameters = SupCon.Parameters(
                temperature: context.parameters.number("temperature"),
                baseTemperature: context.parameters.number("base_temperature"),
                normalize: context.parameters.bool("normalize"))
            return try kernel { () throws(LossInputError) in
                try SupCon.evaluate(embeddings: embeddings, labels: labels, parameters: parameters, gradient: context.gradient)
            }
        }
    )

    static let cacr = LossDefinition(
        name: "cacr", kind: "embedding",
        summary: "Contrastive attraction and repulsion (Zheng et al. 2023, Euclidean cost): weighted positives and negatives.",
        inputs: [
            .oneOf("queries", "[N][D]", group: "queries+keys/embeddings", gradient: true),
            .oneOf("keys", "[N][D]", group: "queries+keys/embeddings", gradient: true),
            .oneOf("embeddings", "[N][V>=2][D]", group: "queries+keys/embeddings", gradient: true),
        ],
        parameters: [
            .number("alpha", default: 1, min: 0, minOpen: true, "Weight α of the attraction."),
            .number("beta", default: 1, min: 0, minOpen: true, "Weight β of the repulsion."),
            .number("tau_pos", default: 1, min: 0, "τ⁺: farther positives weigh more."),
            .number("tau_neg", default: 1, min: 0, "τ⁻: closer negatives weigh more."),
            .boolean("normalize", default: true, "L2-normalise every view first."),
        ],
        openAPI: LossSchemaOptions(handWrittenRequests: ["CacrPairRequest", "CacrViewsRequest"]),
        evaluate: { context throws(ServiceError) in
            let views: CACR.Views
            if context.tensors.contains("embeddings") {
                guard !context.tensors.contains("queries") && !context.tensors.contains("keys") else {
                    throw ServiceError.invalid(
                        .invalidInput, field: "/embeddings", "give either `queries`+`keys` or `embeddings`, not both")
                }
                let embeddings = try context.tensors.requiredTensor("embeddings", rank: 3)
                views = .stacked(Tensor(shape: embeddings.shape, values: embeddings.values))
            } else {
                views = .pair(
                    queries: try context.tensors.requiredMatrix("queries"), keys: try context.tensors.requiredMatrix("keys"))
            }
            let parameters = CACR.Parameters(
                alpha: context.parameters.number("alpha"), beta: context.parameters.number("beta"),
                tauPositive: context.parameters.number("tau_pos"), tauNegative: context.parameters.number("tau_neg"),
                normalize: context.parameters.bool("normalize"))
            return try kernel { () throws(LossInputError) in
                try CACR.evaluate(views: views, parameters: parameters, gradient: context.gradient)
            }
        }
    )
}
