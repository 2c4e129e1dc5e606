import LossdKernels

extension LossCatalogue {
    /// dice, cldice, skeleton_recall: logits [N][C][H][W] or [N][C][H][W][Z], softmax over C.
    static let segmentation: [LossDefinition] = [dice, clDice, skeletonRecall]

    private static let segmentationLogits = InputSpec.required("logits", "[N][C][H][W] or [N][C][H][W][Z]", gradient: true)

    /// Inputs of dice and cldice: logits with a class map or per-class soft masks.
    private static let segmentationInputs: [InputSpec] = [
        segmentationLogits,
        .oneOf("labels", "[N][H][W] or [N][H][W][Z]", group: "labels/targets"),
        .oneOf("targets", "[N][C][H][W] or [N][C][H][W][Z]", group: "labels/targets"),
        .optional("sample_weights", "[N]"),
    ]

    private static let segmentationParameters: [ParameterSpec] = [
        .boolean("include_background", default: false, "Whether class 0 counts in the mean over classes."),
        .number("smooth", default: 1, min: 0, "ε added to the numerator and the denominator of every ratio."),
    ]

    /// The logits (4-D or 5-D) as a tensor.
    private static func segmentationLogits(_ tensors: TensorReader) throws(ServiceError) -> Tensor {
        guard let logits = try tensors.tensor("logits", ranks: 4...5) else { throw ServiceError.missing("logits") }
        return Tensor(shape: logits.shape, values: logits.values)
    }

    /// Exactly one of `labels` [N][spatial…] or `targets` [N][C][spatial…].
    private static func segmentationTruth(_ tensors: TensorReader, logitsRank rank: Int) throws(ServiceError) -> SegmentationTruth {
        let hasLabels = tensors.contains("labels"), hasTargets = tensors.contains("targets")
        guard hasLabels != hasTargets else {
            throw ServiceError.invalid(.missingField, field: "/labels", "exactly one of `labels` or `targets` is required")
        }
        if hasLabels, let labels = try tensors.integerTensor("labels", rank: rank - 1) { return .labels(labels) }
        guard let targets = try tensors.tensor("targets", rank: rank) else { throw ServiceError.missing("targets") }
        return .targets(Tensor(shape: targets.shape, values: targets.values))
    }

    private static func segmentationParameters(_ context: LossContext) -> Segmentation.Parameters {
        Segmentation.Parameters(
            includeBackground: context.parameters.bool("include_background"), smooth: context.parameters.number("smooth"))
    }

    /// dice and cldice take segmentation-shaped logits, labels and targets.
    private static let segmentationSchemas = LossSchemaOptions(inputSchemas: [
        "logits": "LossInputSegmentationLogits", "labels": "LossInputSegmentationLabels",
        "targets": "LossInputSegmentationTargets",
    ])

    static let dice = LossDefinition(
        name: "dice", kind: "segmentation",
        summary: "Soft Dice (Milletari et al. 2016, V-Net): 1 - (2 sum p*g + smooth)/(sum p + sum g + smooth) per class, softmax over C, mean over classes.",
        inputs: segmentationInputs,
        parameters: segmentationParameters,
        openAPI: segmentationSchemas,
        evaluate: { context throws(ServiceError) in
            let logits = try segmentationLogits(context.tensors)
            let truth = try segmentationTruth(context.tensors, logitsRank: logits.shape.count)
            return try kernel { () throws(LossInputError) in
                try Dice.evaluate(logits: logits, truth: truth, parameters: segmentationParameters(context), gradient: context.gradient)
            }
        }
    )

    static let clDice = LossDefinition(
        name: "cldice", kind: "segmentation",
        summary: "Soft clDice (Shit et al. 2021) blended with Dice: (1 - alpha)*dice + alpha*(1 - harmonic mean of topology precision and sensitivity) over soft skeletons.",
        inputs: segmentationInputs,
        parameters: segmentationParameters + [
            .integer("iterations", default: 3, min: 0, max: 100, "Loop rounds k of the soft skeleton (the code's iter_)."),
            .number("alpha", default: 0.5, min: 0, max: 1, "Weight of the clDice term; 1 - alpha weighs Dice."),
        ],
        openAPI: segmentationSchemas,
        evaluate: { context throws(ServiceError) in
            let logits = try segmentationLogits(context.tensors)
            let truth = try segmentationTruth(context.tensors, logitsRank: logits.shape.count)
            let parameters = ClDice.Parameters(
                segmentation: segmentationParameters(context), iterations: context.parameters.integer("iterations"),
                alpha: context.parameters.number("alpha"))
            return try kernel { () throws(LossInputError) in
                try ClDice.evaluate(logits: logits, truth: truth, parameters: parameters, gradient: context.gradient)
            }
        }
    )

    static let skeletonRecall = LossDefinition(
        name: "skeleton_recall", kind: "segmentation",
        summary: "Skeleton Recall (Kirchhoff et al. 2024): 1 - (sum p*k + smooth)/(sum k + smooth) per class over the client's skeleton class map, softmax over C.",
        inputs: [
            segmentationLogits,
            .required("skeleton", "[N][H][W] or [N][H][W][Z]"),
            .optional("sample_weights", "[N]"),
        ],
        parameters: segmentationParameters,
        openAPI: LossSchemaOptions(inputSchemas: ["logits": "LossInputSegmentationLogits"]),
        evaluate: { context throws(ServiceError) in
            let logits = try segmentationLogits(context.tensors)
            guard let skeleton = try context.tensors.integerTensor("skeleton", rank: logits.shape.count - 1) else {
                throw ServiceError.missing("skeleton")
            }
            return try kernel { () throws(LossInputError) in
                try SkeletonRecall.evaluate(
                    logits: logits, skeleton: skeleton, parameters: segmentationParameters(context), gradient: context.gradient)
            }
        }
    )
}
