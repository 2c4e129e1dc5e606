import LossdKernels

extension LossCatalogue {
    /// tcm, implicit_prm, kl_div, comp_sum_adversarial, normalized_softmax.
    static let secondWave: [LossDefinition] = [tcm, implicitPRM, klDiv, compSumAdversarial, normalizedSoftmax]

    static let tcm = LossDefinition(
        name: "tcm", kind: "embedding",
        summary: "Threshold-Consistent Margin regulariser (Zhang et al. 2024): hinges on the cosines of hard positive and hard negative pairs; one number per batch.",
        inputs: [
            .required("embeddings", "[N][D]", gradient: true),
            .required("labels", "[N]"),
        ],
        parameters: [
            .number("lambda_plus", default: 1, min: 0, "Weight λ+ of the hard-positive term."),
            .number("lambda_minus", default: 1, min: 0, "Weight λ− of the hard-negative term."),
            .number("margin_plus", default: 0.9, min: -1, max: 1, "Same-label pairs with cosine below m+ are hard."),
            .number("margin_minus", default: 0.5, min: -1, max: 1, "Different-label pairs with cosine above m− are hard."),
            .boolean("normalize", default: true, "L2-normalise the rows first (the loss uses cosines either way)."),
        ],
        batchValue: true,
        openAPI: LossSchemaOptions(inputSchemas: ["embeddings": "Tensor2D"]),
        evaluate: { context throws(ServiceError) in
            let embeddings = try context.tensors.requiredMatrix("embeddings")
            guard let labels = try context.tensors.integers("labels") else { throw ServiceError.missing("labels") }
            let parameters = TCM.Parameters(
                lambdaPlus: context.parameters.number("lambda_plus"), lambdaMinus: context.parameters.number("lambda_minus"),
                marginPlus: context.parameters.number("margin_plus"), marginMinus: context.parameters.number("margin_minus"))
            return try kernel { () throws(LossInputError) in
                try TCM.evaluate(embeddings: embeddings, labels: labels, parameters: parameters, gradient: context.gradient)
            }
        }
    )

    static let implicitPRM = LossDefinition(
        name: "implicit_prm", kind: "reward",
        summary: "Implicit process reward model (Yuan et al. 2024): r = β·Σ mask·(log π − log π_ref), cross-entropy of σ(r) against 0/1 outcomes; per-token and per-step rewards in extras.",
        inputs: [
            .required("log_probs", "[N][T]", gradient: true),
            .required("ref_log_probs", "[N][T]"),
            .required("outcomes", "[N]"),
            .optional("mask", "[N][T]"),
            .optional("step_ends", "[N][K]"),
            .optional("sample_weights", "[N]"),
        ],
        parameters: [
            .number("beta", default: 0.05, min: 0, minOpen: true, "Reward scale β of r = β·log(π/π_ref)."),
        ],
        openAPI: LossSchemaOptions(inputSchemas: ["log_probs": "Tensor2D"]),
        evaluate: { context throws(ServiceError) in
            let logProbs = try context.tensors.requiredMatrix("log_probs")
            let reference = try context.tensors.requiredMatrix("ref_log_probs")
            guard let outcomes = try context.tensors.integers("outcomes") else { throw ServiceError.missing("outcomes") }
            let mask = try context.tensors.matrix("mask")
            let stepEnds = try context.tensors.matrix("step_ends")
            let beta = context.parameters.number("beta")
            return try kernel { () throws(LossInputError) in
                try ImplicitPRM.evaluate(
                    logProbs: logProbs, refLogProbs: reference, outcomes: outcomes, mask: mask, stepEnds: stepEnds, beta: beta,
                    gradient: context.gradient)
            }
        }
    )

    static let klDiv = LossDefinition(
        name: "kl_div", kind: "distillation",
        summary: "KL divergence T²·KL(t ‖ softmax(z/T)) to soft targets (e.g. aggregated crowd labels); extras: target entropy and cross-entropy.",
        inputs: [
            .required("logits", "[N][C]", gradient: true),
            .required("targets", "[N][C]"),
            .optional("sample_weights", "[N]"),
        ],
        parameters: [
            .number("temperature", default: 1, min: 0, minOpen: true, "Temperature T: p = softmax(z/T), value times T²."),
        ],
        evaluate: { context throws(ServiceError) in
            let logits = try context.tensors.requiredMatrix("logits")
            let targets = try context.tensors.requiredMatrix("targets")
            let temperature = context.parameters.number("temperature")
            return try kernel { () throws(LossInputError) in
                try KLDiv.evaluate(logits: logits, targets: targets, temperature: temperature, gradient: context.gradient)
            }
        }
    )

    static let compSumAdversarial = LossDefinition(
        name: "comp_sum_adversarial", kind: "classification",
        summary: "Smooth adversarial comp-sum (Mao, Mohri, Zhong 2023): comp_sum of the clean logits plus ν·‖ρ(z') − ρ(z)‖ on the client's adversarial logits.",
        inputs: [
            .required("logits", "[N][C]", gradient: true),
            .required("adv_logits", "[N][C]", gradient: true),
            .required("labels", "[N]"),
            .optional("sample_weights", "[N]"),
        ],
        parameters: [
            .number("tau", default: 1, min: 0, max: 2, "Comp-sum exponent τ (as comp_sum)."),
            .number("nu", default: 1, min: 0, "Weight ν of the margin-shift norm."),
        ],
        evaluate: { context throws(ServiceError) in
            let logits = try context.tensors.requiredMatrix("logits")
            let adversarial = try context.tensors.requiredMatrix("adv_logits")
            guard let labels = try context.tensors.integers("labels") else { throw ServiceError.missing("labels") }
            let tau = context.parameters.number("tau"), nu = context.parameters.number("nu")
            return try kernel { () throws(LossInputError) in
                try CompSumAdversarial.evaluate(
                    logits: logits, adversarialLogits: adversarial, labels: labels, tau: tau, nu: nu, gradient: context.gradient)
            }
        }
    )

    static let normalizedSoftmax = LossDefinition(
        name: "normalized_softmax", kind: "embedding",
        summary: "Cosine classifier with scale and CosFace margin; with batch_negatives the UNPG in-batch negative pairs (Jung et al. 2022), filtered by a cosine threshold.",
        inputs: [
            .required("embeddings", "[N][D]", gradient: true),
            .required("prototypes", "[C][D]", gradient: true),
            .required("labels", "[N]"),
            .optional("sample_weights", "[N]"),
        ],
        parameters: [
            .number("scale", default: 16, min: 0, minOpen: true, "Scale s of the cosines."),
            .number("margin", default: 0, min: 0, max: 1, maxOpen: true, "Additive cosine margin m on the label's class (CosFace)."),
            .boolean("batch_negatives", default: false, "Add in-batch pairs of different labels as negatives (UNPG)."),
            .optionalNumber(
                "filter_threshold", min: -1, max: 1, minOpen: true,
                "In-batch negatives with a cosine above it are dropped as noise; null keeps all."),
        ],
        openAPI: LossSchemaOptions(inputSchemas: ["embeddings": "Tensor2D"], reduction: "BatchReduction"),
        evaluate: { context throws(ServiceError) in
            let embeddings = try context.tensors.requiredMatrix("embeddings")
            let prototypes = try context.tensors.requiredMatrix("prototypes")
            guard let labels = try context.tensors.integers("labels") else { throw ServiceError.missing("labels") }
            let weights = try context.tensors.vector("sample_weights")
            let parameters = NormalizedSoftmax.Parameters(
                scale: context.parameters.number("scale"), margin: context.parameters.number("margin"),
                batchNegatives: context.parameters.bool("batch_negatives"),
                filterThreshold: context.parameters.optionalNumber("filter_threshold"))
            return try kernel { () throws(LossInputError) in
                try NormalizedSoftmax.evaluate(
                    embeddings: embeddings, prototypes: prototypes, labels: labels, sampleWeights: weights,
                    parameters: parameters, gradient: context.gradient)
            }
        }
    )
}
