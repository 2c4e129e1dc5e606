import LossdKernels

extension LossCatalogue {
    /// ldr_kl, aldr_kl, kd_kl, dhkd_logit, pass_at_n.
    static let robustAndDistillation: [LossDefinition] = [ldrKL, aldrKL, passAtN, kdKL, dhkdLogit]

    static let ldrKL = LossDefinition(
        name: "ldr_kl", kind: "classification",
        summary: "Label-distributionally robust loss with KL regulariser (Zhu, Ying, Yang 2023): lambda*(LSE(zeta/lambda) - log C) on transformed scores with a margin.",
        inputs: [
            .required("logits", "[N][C]", gradient: true),
            .required("labels", "[N]"),
            .optional("sample_weights", "[N]"),
        ],
        parameters: [
            .number("lambda", default: 10, min: 0, minOpen: true, "KL strength λ: large → robust mean, small → hinge."),
            .number("margin", default: 0.1, min: 0, "Margin c added to every wrong class."),
            .choice(
                "score_transform", ["softplus_mean", "l1_mean", "none"], default: "softplus_mean",
                "How logits become scores: softplus/mean (the code's LDR), x/mean|x|, or raw."),
        ],
        evaluate: { context throws(ServiceError) in
            let logits = try context.tensors.requiredMatrix("logits")
            guard let labels = try context.tensors.integers("labels") else { throw ServiceError.missing("labels") }
            let parameters = LDRKL.Parameters(
                lambda: context.parameters.number("lambda"), margin: context.parameters.number("margin"),
                scoreTransform: LDRKL.ScoreTransform(rawValue: context.parameters.string("score_transform")) ?? .softplusMean)
            return try kernel { () throws(LossInputError) in
                try LDRKL.evaluate(logits: logits, labels: labels, parameters: parameters, gradient: context.gradient)
            }
        }
    )

    static let aldrKL = LossDefinition(
        name: "aldr_kl", kind: "classification",
        summary: "Adaptive LDR-KL (Zhu, Ying, Yang 2023): per-row lambda updated from lambda_prev (stateless form of the code's per-example lambda), returned as lambda_new.",
        inputs: [
            .required("logits", "[N][C]", gradient: true),
            .required("labels", "[N]"),
            .optional("lambda_prev", "[N]"),
            .optional("sample_weights", "[N]"),
        ],
        parameters: [
            .number("lambda0", default: 10, min: 0, minOpen: true, "Base λ₀ every row is pulled back to."),
            .number("alpha", default: 2, min: 1, minOpen: true, "Penalty scale α of (α log C/(2λ₀))(λ − λ₀)²."),
            .number("margin", default: 0.1, min: 0, "Margin c added to every wrong class."),
            .choice(
                "score_transform", ["l1_mean", "softplus_mean", "none"], default: "l1_mean",
                "How logits become scores: x/mean|x| (the code's ALDR), softplus/mean, or raw."),
            .integer("iterations", default: 1, min: 1, max: 100, "λ updates per call (the code does 1)."),
        ],
        evaluate: { context throws(ServiceError) in
            let logits = try context.tensors.requiredMatrix("logits")
            guard let labels = try context.tensors.integers("labels") else { throw ServiceError.missing("labels") }
            let lambdaPrev = try context.tensors.vector("lambda_prev")
            let parameters = LDRKL.AdaptiveParameters(
                lambda0: context.parameters.number("lambda0"), alpha: context.parameters.number("alpha"),
                margin: context.parameters.number("margin"),
                scoreTransform: LDRKL.ScoreTransform(rawValue: context.parameters.string("score_transform")) ?? .l1Mean,
                iterations: context.parameters.integer("iterations"))
            return try kernel { () throws(LossInputError) in
                try LDRKL.adaptive(
                    logits: logits, labels: labels, lambdaPrev: lambdaPrev, parameters: parameters, gradient: context.gradient)
            }
        }
    )

    static let passAtN = LossDefinition(
        name: "pass_at_n", kind: "classification",
        summary: "Pass@n coverage loss (Chen et al. 2025): -log(1 - (1 - p)^n) from logits+labels or from log_probs; n = 1 is cross-entropy.",
        inputs: [
            .oneOf("logits", "[N][C]", group: "logits+labels/log_probs", gradient: true),
            .optional("labels", "[N]"),
            .oneOf("log_probs", "[N]", group: "logits+labels/log_probs", gradient: true),
            .optional("sample_weights", "[N]"),
        ],
        parameters: [
            .number("n", default: 16, min: 1, "Number of samples n ≥ 1 (real)."),
        ],
        openAPI: LossSchemaOptions(handWrittenRequests: ["PassAtNLogitsRequest", "PassAtNLogProbsRequest"]),
        evaluate: { context throws(ServiceError) in
            let n = context.parameters.number("n")
            if context.tensors.contains("log_probs") {
                guard !context.tensors.contains("logits") else {
                    throw ServiceError.invalid(
                        .invalidInput, field: "/log_probs", "give either `logits`+`labels` or `log_probs`, not both")
                }
                guard let logProbs = try context.tensors.vector("log_probs") else { throw ServiceError.missing("log_probs") }
                return try kernel { () throws(LossInputError) in
                    try PassAtN.evaluate(logProbs: logProbs, n: n, gradient: context.gradient)
                }
            }
            let logits = try context.tensors.requiredMatrix("logits")
            guard let labels = try context.tensors.integers("labels") else { throw ServiceError.missing("labels") }
            return try kernel { () throws(LossInputError) in
                try PassAtN.evaluate(logits: logits, labels: labels, n: n, gradient: context.gradient)
            }
        }
    )

    static let kdKL = LossDefinition(
        name: "kd_kl", kind: "distillation",
        summary: "Hinton knowledge distillation: alpha*T^2*KL(softmax(teacher/T) || softmax(student/T)) + (1 - alpha)*CE(student, labels).",
        inputs: [
            .required("logits", "[N][C]", gradient: true),
            .required("teacher_logits", "[N][C]"),
            .optional("labels", "[N]"),
            .optional("sample_weights", "[N]"),
        ],
        parameters: [
            .number("temperature", default: 4, min: 0, minOpen: true, "Softening temperature T."),
            .number("alpha", default: 0.9, min: 0, max: 1, "Weight of the soft term; labels are required when alpha < 1."),
        ],
        openAPI: LossSchemaOptions(handWrittenRequests: ["KdKlRequest"]),
        evaluate: { context throws(ServiceError) in
            let logits = try context.tensors.requiredMatrix("logits")
            let teacher = try context.tensors.requiredMatrix("teacher_logits")
            let labels = try context.tensors.integers("labels")
            let parameters = KDKL.Parameters(
                temperature: context.parameters.number("temperature"), alpha: context.parameters.number("alpha"))
            return try kernel { () throws(LossInputError) in
                try KDKL.evaluate(
                    logits: logits, teacherLogits: teacher, labels: labels, parameters: parameters, gradient: context.gradient)
            }
        }
    )

    static let dhkdLogit = LossDefinition(
        name: "dhkd_logit", kind: "distillation",
        summary: "Dual-Head KD logit-level term (Yang et al. 2024): per-class binary KL to the teacher (BinaryKLNorm = T^2 logcosh), or logit MSE.",
        inputs: [
            .required("logits", "[N][C]", gradient: true),
            .required("teacher_logits", "[N][C]"),
            .optional("sample_weights", "[N]"),
        ],
        parameters: [
            .choice(
                "variant", DHKDLogit.Variant.allCases.map(\.rawValue), default: "binary_kl_norm",
                "binary_kl_norm (DHKD's loss), binary_kl, or mse."),
            .number("temperature", default: 2, min: 0, minOpen: true, "Temperature T of the binary variants."),
            .number("clamp_eps", default: 0, min: 0, max: 0.5, maxOpen: true, "Clamp sigmoids to [eps, 1 - eps] as the DHKD code does (1e-8); 0 = exact."),
        ],
        evaluate: { context throws(ServiceError) in
            let logits = try context.tensors.requiredMatrix("logits")
            let teacher = try context.tensors.requiredMatrix("teacher_logits")
            let variant = DHKDLogit.Variant(rawValue: context.parameters.string("variant")) ?? .binaryKLNorm
            return try kernel { () throws(LossInputError) in
                try DHKDLogit.evaluate(
                    logits: logits, teacherLogits: teacher, variant: variant, temperature: context.parameters.number("temperature"),
                    clampEps: context.parameters.number("clamp_eps"), gradient: context.gradient)
            }
        }
    )
}
