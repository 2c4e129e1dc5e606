import LossdJSON
import LossdKernels

/// What a calibration metric's evaluation sees: the validated request and, unless only
/// opis was asked for, the probabilities, the scores as sent and the top labels (computed
/// once for every binned metric).
struct MetricContext {
    let request: MetricsEndpoint.Request
    let probabilities: Matrix?
    let scores: Matrix?
    let top: TopLabels?

    /// NLL from the logits when sent (exact log-softmax), else from the probabilities.
    func nll(_ p: Matrix) -> Double {
        request.logits.map { CalibrationMetrics.nll(logits: $0, targets: request.targets) }
            ?? CalibrationMetrics.nll(probabilities: p, targets: request.targets)
    }
}

/// One metric of `POST /v1/metrics` (docs/calibration.md §2): the members it adds to the
/// answer. `parameters` lists the shared `params` it reads (`MetricsEndpoint.parameters`
/// validates them once for the request).
struct MetricDefinition: CatalogueRecord {
    let name: String
    var aliases: [String] = []
    let summary: String
    var inputs: [InputSpec] = []
    var parameters: [ParameterSpec] = []
    /// The answer's members for this metric (its value first); empty when the inputs
    /// cannot give it (already refused by the parsing).
    let evaluate: @Sendable (MetricContext) throws(ServiceError) -> [(String, JSONValue)]
}

/// A metric that needs the probabilities and top labels; `body` gets them unwrapped.
private func scored(
    _ name: String, _ summary: String, reads: [String] = [],
    _ body: @escaping @Sendable (MetricContext, Matrix, Matrix, TopLabels) throws(ServiceError) -> [(String, JSONValue)]
) -> MetricDefinition {
    MetricDefinition(
        name: name, summary: summary, parameters: MetricsEndpoint.parameters.filter { reads.contains($0.name) },
        evaluate: { c throws(ServiceError) in
            guard let p = c.probabilities, let scores = c.scores, let top = c.top else { return [] }
            return try body(c, p, scores, top)
        })
}

/// Every calibration metric, in the order of errors and of openapi.yaml's enum.
enum MetricCatalogue {
    static let all = Catalogue<MetricDefinition>([
        scored("ece", "Expected calibration error over equal-width bins of the top-label confidence.", reads: ["bins", "bin_rule"]) {
            c, _, _, top in [("ece", .double(CalibrationMetrics.ece(top, bins: c.request.bins, binRule: c.request.binRule)))]
        },
        scored("ace", "Adaptive calibration error over equal-mass bins, with the bin edges.", reads: ["bins"]) { c, _, _, top in
            let (value, edges) = CalibrationMetrics.ace(top, bins: c.request.bins)
            return [("ace", .double(value)), ("ace_edges", .doubles(edges))]
        },
        scored("mce", "Maximum calibration error: the largest bin gap.", reads: ["bins", "bin_rule"]) { c, _, _, top in
            [("mce", .double(CalibrationMetrics.mce(top, bins: c.request.bins, binRule: c.request.binRule)))]
        },
        scored("classwise_ece", "ECE of every class's probability, averaged, with the per-class values.", reads: ["bins", "bin_rule"]) {
            c, p, _, _ in
            let (value, perClass) = CalibrationMetrics.classwiseECE(
                probabilities: p, targets: c.request.targets, bins: c.request.bins, binRule: c.request.binRule)
            return [("classwise_ece", .double(value)), ("classwise_ece_per_class", .doubles(perClass))]
        },
        scored("brier", "Brier score (halved or not per `brier_scale_by_half`).") { c, p, _, _ in
            [("brier", .double(CalibrationMetrics.brier(probabilities: p, targets: c.request.targets, halve: c.request.halveBrier)))]
        },
        scored("nll", "Negative log-likelihood of the targets.") { c, p, _, _ in [("nll", .double(c.nll(p)))] },
        scored("accuracy", "Top-1 accuracy.") { _, _, _, top in [("accuracy", .double(CalibrationMetrics.accuracy(top)))] },
        scored("top_k_accuracy", "A hit when the label is among the k highest scores.", reads: ["k"]) { c, _, scores, _ in
            [("top_k_accuracy", .double(CalibrationMetrics.topKAccuracy(scores: scores, targets: c.request.targets, k: c.request.k)))]
        },
        MetricDefinition(
            name: "opis", summary: "OPIS: the open-set utility gap over thresholds of a similarity or distance matrix.",
            inputs: [.oneOf("similarity", "[N][N]", group: "similarity/distance"), .oneOf("distance", "[N][N]", group: "similarity/distance")],
            parameters: MetricsEndpoint.parameters.filter { ["d_min", "d_max", "n_thresholds", "utility"].contains($0.name) },
            evaluate: { c throws(ServiceError) in
                guard let o = c.request.opis, case .labels(let labels) = c.request.targets else { return [] }
                let result = CalibrationMetrics.opis(
                    scores: o.scores, labels: labels, dMin: o.dMin, dMax: o.dMax, thresholds: o.thresholds,
                    utility: o.utility, higherIsSimilar: o.higherIsSimilar)
                return [
                    ("opis", .double(result.value)),
                    ("opis_classes_used", .array(result.classesUsed.map { .int($0) })),
                    ("opis_classes_skipped", .array(result.classesSkipped.map { .int($0) })),
                ]
            }),
        scored("rmsce", "Root-mean-square calibration error over the bins.", reads: ["bins", "bin_rule"]) { c, _, _, top in
            [("rmsce", .double(CalibrationMetrics.rmsce(top, bins: c.request.bins, binRule: c.request.binRule)))]
        },
        scored("target_entropy", "Mean entropy of the targets (0 for hard labels).") { c, _, _, _ in
            [("target_entropy", .double(CalibrationMetrics.targetEntropy(c.request.targets)))]
        },
        scored("kl", "KL divergence of the predictions from the targets: nll − target_entropy.") { c, p, _, _ in
            [("kl", .double(c.nll(p) - CalibrationMetrics.targetEntropy(c.request.targets)))]
        },
        scored("calibrated_nll", "NLL after temperature scaling fitted on random halves, with its standard deviation.", reads: ["repeats", "seed"]) {
            c, _, _, _ throws(ServiceError) in
            let result = try MetricsEndpoint.calibratedNLL(c.request)
            return [("calibrated_nll", .double(result.mean)), ("calibrated_nll_std", .double(result.standardDeviation))]
        },
    ])

    /// What `metrics` means when absent.
    static let defaults = ["ece", "nll", "brier", "accuracy"]
}

/// A record that is only a name with its summary: the metrics of
/// `POST /v1/embedding-metrics`, computed together by `EmbeddingMetrics`.
struct NamedMethod: CatalogueRecord {
    let name: String
    var aliases: [String] = []
    let summary: String
    var inputs: [InputSpec] = []
    var parameters: [ParameterSpec] = []
}
