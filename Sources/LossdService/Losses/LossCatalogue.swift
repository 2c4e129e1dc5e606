import LossdKernels

/// Every loss `/v1/loss` evaluates, in the order `/v1/losses` lists them. Formulas,
/// defaults and ranges are each entry's own, with the paper it comes from in its kernel file.
enum LossCatalogue {
    /// Each family lives in its own file (`LossCatalogue+Family.swift`); lookup by name or
    /// alias, "did you mean" and the listing come with `Catalogue`.
    static let all = Catalogue<LossDefinition>(
        [crossEntropy, binaryCrossEntropy, focal] + marginFamily + robustAndDistillation + multilabelAndRegression
            + embedding + secondWave + segmentation)

    static let crossEntropy = LossDefinition(
        name: "cross_entropy", kind: "classification",
        summary: "Softmax cross-entropy (PyTorch CrossEntropyLoss): hard labels with ignore_index, class weights, label smoothing, or soft targets.",
        inputs: logitsWithClassTargets + [.optional("class_weights", "[C]"), .optional("sample_weights", "[N]")],
        parameters: [
            .number("label_smoothing", default: 0, min: 0, max: 1, "Label smoothing ε."),
            .integer("ignore_index", default: -100, "Rows with this label are skipped."),
        ],
        evaluate: { context throws(ServiceError) in
            let logits = try context.tensors.requiredMatrix("logits")
            let targets = try classTargets(context.tensors)
            let weights = try context.tensors.vector("class_weights")
            let parameters = CrossEntropy.Parameters(
                labelSmoothing: context.parameters.number("label_smoothing"),
                ignoreIndex: context.parameters.integer("ignore_index"))
            return try kernel { () throws(LossInputError) in
                try CrossEntropy.evaluate(
                    logits: logits, targets: targets, classWeights: weights, parameters: parameters, gradient: context.gradient)
            }
        },
        meanExtras: { output, mean in CrossEntropy.unitExtras(rowValues: output.values, mean: mean) }
    )

    static let binaryCrossEntropy = LossDefinition(
        name: "binary_cross_entropy", kind: "multilabel",
        summary: "Sigmoid cross-entropy per column (PyTorch BCEWithLogitsLoss), with class and positive-class weights.",
        inputs: [
            .required("logits", "[N][C]", gradient: true),
            .required("targets", "[N][C]"),
            .optional("class_weights", "[C]"),
            .optional("pos_weight", "[C]"),
            .optional("sample_weights", "[N]"),
        ],
        parameters: [],
        evaluate: { context throws(ServiceError) in
            let logits = try context.tensors.requiredMatrix("logits")
            let targets = try context.tensors.requiredMatrix("targets")
            let weights = try context.tensors.vector("class_weights")
            let positive = try context.tensors.vector("pos_weight")
            return try kernel { () throws(LossInputError) in
                try BinaryCrossEntropy.evaluate(
                    logits: logits, targets: targets, classWeights: weights, positiveWeights: positive, gradient: context.gradient)
            }
        }
    )

    static let focal = LossDefinition(
        name: "focal", kind: "classification",
        summary: "Focal loss (Lin et al. 2017): softmax with labels and per-class alpha from class_weights, or sigmoid with targets and scalar alpha.",
        inputs: [
            .required("logits", "[N][C]", gradient: true),
            .oneOf("labels", "[N]", group: "labels (softmax)/targets (sigmoid)"),
            .oneOf("targets", "[N][C]", group: "labels (softmax)/targets (sigmoid)"),
            .optional("class_weights", "[C]"),
            .optional("sample_weights", "[N]"),
        ],
        parameters: [
            .choice("mode", Focal.Mode.allCases.map(\.rawValue), default: "softmax", "softmax (multi-class) or sigmoid (per element)."),
            .number("gamma", default: 2, min: 0, "Focusing exponent γ."),
            .number("alpha", default: 0.25, min: 0, max: 1, nullable: true, "Sigmoid mode only: weight of positives; null disables."),
        ],
        openAPI: LossSchemaOptions(
            handWrittenRequests: ["FocalSoftmaxRequest", "FocalSigmoidRequest"],
            handWrittenParams: ["FocalSoftmaxParams", "FocalSigmoidParams"]),
        evaluate: { context throws(ServiceError) in
            let gamma = context.parameters.number("gamma")
            let logits = try context.tensors.requiredMatrix("logits")
            if context.parameters.string("mode") == Focal.Mode.softmax.rawValue {
                guard !context.parameters.given.contains("alpha") else {
                    throw ServiceError.invalid(
                        .invalidParam, field: "\(context.parametersPointer)/alpha",
                        "`alpha` applies to mode=sigmoid only; use `class_weights` for per-class alpha")
                }
                guard let labels = try context.tensors.integers("labels") else { throw ServiceError.missing("labels") }
                let weights = try context.tensors.vector("class_weights")
                return try kernel { () throws(LossInputError) in
                    try Focal.softmax(logits: logits, labels: labels, classWeights: weights, gamma: gamma, gradient: context.gradient)
                }
            }
            let targets = try context.tensors.requiredMatrix("targets")
            let alpha = context.parameters.optionalNumber("alpha")
            return try kernel { () throws(LossInputError) in
                try Focal.sigmoid(logits: logits, targets: targets, alpha: alpha, gamma: gamma, gradient: context.gradient)
            }
        }
    )

    /// The inputs of a softmax loss read through ``classTargets(_:)``: the logits with
    /// their gradient, then exactly one of `labels` [N] or `targets` [N][C]; each such entry
    /// lists these first and adds its own weights.
    static let logitsWithClassTargets: [InputSpec] = [
        .required("logits", "[N][C]", gradient: true),
        .oneOf("labels", "[N]", group: "labels/targets"),
        .oneOf("targets", "[N][C]", group: "labels/targets"),
    ]

    /// Exactly one of `labels` [N] or `targets` [N][C].
    static func classTargets(_ tensors: TensorReader) throws(ServiceError) -> ClassTargets {
        let hasLabels = tensors.contains("labels"), hasTargets = tensors.contains("targets")
        guard hasLabels != hasTargets else {
            throw ServiceError.invalid(.missingField, field: "/labels", "exactly one of `labels` or `targets` is required")
        }
        if hasLabels, let labels = try tensors.integers("labels") { return .labels(labels) }
        return .probabilities(try tensors.requiredMatrix("targets"))
    }
}
