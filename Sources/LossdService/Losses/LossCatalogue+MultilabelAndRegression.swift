import LossdKernels

extension LossCatalogue {
    /// decoupled_softmax, multilabel_infonce (alias infonce), soft_topk, hl_gauss, two_hot, aggregate_response.
    static let multilabelAndRegression: [LossDefinition] = [
        decoupledSoftmax, multilabelInfoNCE, softTopK, hlGauss, twoHot, aggregateResponse,
    ]

    // MARK: DEXML multi-label losses (docs/losses.md §11)

    private static let dexmlTemperature = ParameterSpec.number(
        "temperature", default: 1, min: 0, minOpen: true, "Scores are logits / temperature (DEXML uses cosine / 0.05).")

    private static let dexmlPositiveReduction = ParameterSpec.choice(
        "positive_reduction", DEXML.PositiveReduction.allCases.map(\.rawValue), default: "mean",
        "Combine a row's positive terms by mean (κ = 1/|P|) or sum (κ = 1).")

    private static let dexmlInputs: [InputSpec] = [
        .required("logits", "[N][L]", gradient: true),
        .required("targets", "[N][L]"),
        .optional("sample_weights", "[N]"),
    ]

    static let decoupledSoftmax = dexmlLoss(
        name: "decoupled_softmax",
        summary: "DEXML decoupled softmax (Gupta et al. 2024): each positive label competes only with the row's negatives.",
        kernel: DecoupledSoftmax.evaluate)

    static let multilabelInfoNCE = dexmlLoss(
        name: "multilabel_infonce", aliases: ["infonce"],
        summary: "Naive multi-label InfoNCE (DEXML's softmax baseline): each positive label competes with every label.",
        kernel: MultilabelInfoNCE.evaluate)

    /// The two DEXML softmax losses share inputs, parameters and decoding; only the kernel differs.
    private static func dexmlLoss(
        name: String, aliases: [String] = [], summary: String,
        kernel evaluate: @escaping @Sendable (Matrix, Matrix, Double, DEXML.PositiveReduction, Bool) throws(LossInputError) -> LossOutput
    ) -> LossDefinition {
        LossDefinition(
            name: name, aliases: aliases, kind: "multilabel", summary: summary,
            inputs: dexmlInputs,
            parameters: [dexmlTemperature, dexmlPositiveReduction],
            evaluate: { context throws(ServiceError) in
                let logits = try context.tensors.requiredMatrix("logits")
                let targets = try context.tensors.requiredMatrix("targets")
                let reduction = DEXML.PositiveReduction(rawValue: context.parameters.string("positive_reduction")) ?? .mean
                let temperature = context.parameters.number("temperature")
                return try kernel { () throws(LossInputError) in
                    try evaluate(logits, targets, temperature, reduction, context.gradient)
                }
            }
        )
    }

    static let softTopK = LossDefinition(
        name: "soft_topk", kind: "multilabel",
        summary: "DEXML soft top-k: log-sigmoid membership of the positives above the smooth top-k threshold.",
        inputs: [
            .required("logits", "[N][L>=2]", gradient: true),
            .required("targets", "[N][L]"),
            .optional("sample_weights", "[N]"),
        ],
        parameters: [
            .number("k", default: 5, "Soft number of selected labels, in (0, L); may be fractional."),
            .number("alpha", default: 2, min: 0, minOpen: true, "Sharpness α of the sigmoid membership."),
            dexmlTemperature,
        ],
        openAPI: LossSchemaOptions(handWrittenParams: ["SoftTopkParams"]),
        evaluate: { context throws(ServiceError) in
            let logits = try context.tensors.requiredMatrix("logits")
            let targets = try context.tensors.requiredMatrix("targets")
            let k = context.parameters.number("k")
            // The range depends on L; with L < 2 the kernel reports the shape instead.
            if logits.cols >= 2, !(k > 0 && k < Double(logits.cols)) {
                throw ServiceError.invalid(
                    .invalidParam, field: "\(context.parametersPointer)/k",
                    "`k` must be in (0, \(logits.cols)) (got \(NumberText.format(k)))")
            }
            return try kernel { () throws(LossInputError) in
                try SoftTopK.evaluate(
                    logits: logits, targets: targets, k: k, alpha: context.parameters.number("alpha"),
                    temperature: context.parameters.number("temperature"), gradient: context.gradient)
            }
        }
    )

    // MARK: Regression as classification (docs/losses.md §12)

    private static let histogramBins = ParameterSpec.bins(
        "bins", "Support {\"min\", \"max\", \"count\"}: max > min; count (optional) must equal the number of logit columns.")

    private static let histogramInputs: [InputSpec] = [
        .required("logits", "[N][C]", gradient: true),
        .required("values", "[N]"),
        .optional("sample_weights", "[N]"),
    ]

    static let hlGauss = LossDefinition(
        name: "hl_gauss", kind: "regression",
        summary: "HL-Gauss (Farebrother et al. 2024): cross-entropy against a Gaussian histogram of the regression target over C bins.",
        inputs: histogramInputs,
        parameters: [
            histogramBins,
            .optionalNumber("sigma", min: 0, minOpen: true, "Absolute σ of the target Gaussian (give at most one of sigma, sigma_ratio)."),
            .number("sigma_ratio", default: 0.75, min: 0, minOpen: true, "σ as a multiple of the bin width (used when sigma is absent)."),
            .boolean("clip_target", default: true, "Clip targets into [min, max] before building the histogram."),
        ],
        openAPI: LossSchemaOptions(handWrittenParams: ["HlGaussParams"]),
        evaluate: { context throws(ServiceError) in
            let logits = try context.tensors.requiredMatrix("logits")
            guard let values = try context.tensors.vector("values") else { throw ServiceError.missing("values") }
            let (lo, hi) = try context.parameters.bins("bins", columns: logits.cols, pointer: context.parametersPointer)
            let sigma = context.parameters.optionalNumber("sigma")
            if sigma != nil && context.parameters.given.contains("sigma_ratio") {
                throw ServiceError.invalid(
                    .invalidParam, field: "\(context.parametersPointer)/sigma", "give at most one of `sigma` and `sigma_ratio`")
            }
            let parameters = HLGauss.Parameters(
                min: lo, max: hi, sigma: sigma, sigmaRatio: context.parameters.number("sigma_ratio"),
                clipTarget: context.parameters.bool("clip_target"))
            return try kernel { () throws(LossInputError) in
                try HLGauss.evaluate(logits: logits, values: values, parameters: parameters, gradient: context.gradient)
            }
        }
    )

    static let twoHot = LossDefinition(
        name: "two_hot", kind: "regression",
        summary: "Two-hot regression (Farebrother et al. 2024): cross-entropy against the target split between its two nearest of C support points.",
        inputs: [
            .required("logits", "[N][C>=2]", gradient: true),
            .required("values", "[N]"),
            .optional("sample_weights", "[N]"),
        ],
        parameters: [histogramBins],
        evaluate: { context throws(ServiceError) in
            let logits = try context.tensors.requiredMatrix("logits")
            guard let values = try context.tensors.vector("values") else { throw ServiceError.missing("values") }
            let (lo, hi) = try context.parameters.bins("bins", columns: logits.cols, pointer: context.parametersPointer)
            return try kernel { () throws(LossInputError) in
                try TwoHot.evaluate(logits: logits, values: values, min: lo, max: hi, gradient: context.gradient)
            }
        }
    )

    // MARK: Aggregate responses (docs/losses.md §13)

    static let aggregateResponse = LossDefinition(
        name: "aggregate_response", kind: "regression",
        summary: "Learning from bag-mean responses (Javanmard et al. 2024): (1 − ρ)·bag-level + ρ·instance-level squared loss.",
        inputs: [
            .required("predictions", "[N]", gradient: true),
            .required("bags", "[N]"),
            .required("bag_responses", "[#bags]"),
        ],
        parameters: [
            .number("rho", default: 0.5, min: 0, max: 1, "Interpolation ρ: 0 bag-level, 1 instance-level."),
            .choice(
                "bag_weighting", AggregateResponse.BagWeighting.allCases.map(\.rawValue), default: "size",
                "Bag-level loss weighted by bag size, or uniform over bags."),
        ],
        evaluate: { context throws(ServiceError) in
            guard let predictions = try context.tensors.vector("predictions") else { throw ServiceError.missing("predictions") }
            guard let bags = try context.tensors.integers("bags") else { throw ServiceError.missing("bags") }
            guard let responses = try context.tensors.vector("bag_responses") else { throw ServiceError.missing("bag_responses") }
            let weighting = AggregateResponse.BagWeighting(rawValue: context.parameters.string("bag_weighting")) ?? .size
            return try kernel { () throws(LossInputError) in
                try AggregateResponse.evaluate(
                    predictions: predictions, bags: bags, bagResponses: responses, rho: context.parameters.number("rho"),
                    weighting: weighting, gradient: context.gradient)
            }
        }
    )
}
