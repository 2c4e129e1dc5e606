import LossdKernels

extension LossCatalogue {
    /// comp_sum, generalized_cross_entropy, mae, z_loss, log_z_penalty, poly1.
    static let marginFamily: [LossDefinition] = [compSum, generalizedCrossEntropy, mae, zLoss, logZPenalty, poly1]

    /// Inputs of the hard-label softmax losses of this family.
    private static let logitsAndLabels: [InputSpec] = [
        .required("logits", "[N][C]", gradient: true),
        .required("labels", "[N]"),
        .optional("sample_weights", "[N]"),
    ]

    /// The comp-sum kernel (docs/losses.md §5) at a fixed τ, for comp_sum and its named special
    /// cases.
    private static func evaluateCompSum(_ context: LossContext, tau: Double) throws(ServiceError) -> LossOutput {
        let logits = try context.tensors.requiredMatrix("logits")
        guard let labels = try context.tensors.integers("labels") else { throw ServiceError.missing("labels") }
        return try kernel { () throws(LossInputError) in
            try CompSum.evaluate(logits: logits, labels: labels, tau: tau, gradient: context.gradient)
        }
    }

    static let compSum = LossDefinition(
        name: "comp_sum", kind: "classification",
        summary: "Comp-sum losses (Mao, Mohri, Zhong 2023): (p_y^(tau-1) - 1)/(1 - tau); tau 0 sum-exponential, 1 cross-entropy, 2 MAE.",
        inputs: logitsAndLabels,
        parameters: [
            .number("tau", default: 1, min: 0, max: 2, "Exponent τ: 0 sum-exponential, 1 logistic, (1, 2) GCE, 2 MAE.")
        ],
        evaluate: { context throws(ServiceError) in
            try evaluateCompSum(context, tau: context.parameters.number("tau"))
        }
    )

    static let generalizedCrossEntropy = LossDefinition(
        name: "generalized_cross_entropy", kind: "classification",
        summary: "Generalized cross-entropy (Zhang & Sabuncu 2018): (1 - p_y^q)/q, comp_sum with tau = 1 + q.",
        inputs: logitsAndLabels,
        parameters: [
            .number("q", default: 0.7, min: 0, max: 1, minOpen: true, "Exponent q: q → 0 approaches cross-entropy, q = 1 gives 1 - p_y.")
        ],
        evaluate: { context throws(ServiceError) in
            try evaluateCompSum(context, tau: 1 + context.parameters.number("q"))
        }
    )

    static let mae = LossDefinition(
        name: "mae", kind: "classification",
        summary: "Mean absolute error 1 - p_y (Mao et al. scale; Ghosh et al.'s is twice this), comp_sum with tau = 2.",
        inputs: logitsAndLabels,
        parameters: [],
        evaluate: { context throws(ServiceError) in
            try evaluateCompSum(context, tau: 2)
        }
    )

    static let zLoss = LossDefinition(
        name: "z_loss", kind: "classification",
        summary: "Z-loss (de Brébisson & Vincent 2016): softplus(a(b - z_y))/a of the row-standardised target logit.",
        inputs: [
            .required("logits", "[N][C>=2]", gradient: true),
            .required("labels", "[N]"),
            .optional("sample_weights", "[N]"),
        ],
        parameters: [
            .number("a", default: 1, min: 0, minOpen: true, "Softplus sharpness a."),
            .number("b", default: 0, "Offset b, on the scale of z_y (|z_y| <= sqrt(C-1))."),
            .number("eps", default: 0, min: 0, "Added to the row's standard deviation."),
        ],
        evaluate: { context throws(ServiceError) in
            let logits = try context.tensors.requiredMatrix("logits")
            guard let labels = try context.tensors.integers("labels") else { throw ServiceError.missing("labels") }
            let a = context.parameters.number("a"), b = context.parameters.number("b"), eps = context.parameters.number("eps")
            return try kernel { () throws(LossInputError) in
                try ZLoss.evaluate(logits: logits, labels: labels, a: a, b: b, eps: eps, gradient: context.gradient)
            }
        }
    )

    static let logZPenalty = LossDefinition(
        name: "log_z_penalty", kind: "regularizer",
        summary: "PaLM's auxiliary z-loss: coefficient * logsumexp(logits)^2 per row (cross-entropy not included).",
        inputs: [
            .required("logits", "[N][C]", gradient: true),
            .optional("sample_weights", "[N]"),
        ],
        parameters: [
            .number("coefficient", default: 1e-4, min: 0, "Penalty weight (PaLM: 1e-4).")
        ],
        evaluate: { context throws(ServiceError) in
            let logits = try context.tensors.requiredMatrix("logits")
            let coefficient = context.parameters.number("coefficient")
            return try kernel { () throws(LossInputError) in
                try LogZPenalty.evaluate(logits: logits, coefficient: coefficient, gradient: context.gradient)
            }
        }
    )

    static let poly1 = LossDefinition(
        name: "poly1", kind: "classification",
        summary: "Poly-1 loss (Leng et al. 2022, optax): cross-entropy + epsilon * (1 - p_t), with label smoothing.",
        inputs: logitsWithClassTargets + [.optional("sample_weights", "[N]")],
        parameters: [
            .number("epsilon", default: 2, min: -1, "Weight ε of the (1 - p_t) term (paper: 2 for ImageNet, -1 for detection)."),
            .number("label_smoothing", default: 0, min: 0, max: 1, "Label smoothing of the targets."),
        ],
        evaluate: { context throws(ServiceError) in
            let logits = try context.tensors.requiredMatrix("logits")
            let targets = try classTargets(context.tensors)
            let epsilon = context.parameters.number("epsilon")
            let smoothing = context.parameters.number("label_smoothing")
            return try kernel { () throws(LossInputError) in
                try Poly1.evaluate(logits: logits, targets: targets, epsilon: epsilon, labelSmoothing: smoothing, gradient: context.gradient)
            }
        }
    )
}
