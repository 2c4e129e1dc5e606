import LossdKernels

/// One method of `POST /v1/aggregate` (docs/aggregation.md): its parameters and how it runs
/// on the coded annotations.
struct AggregationMethodDefinition: CatalogueRecord {
    enum Kernel: Sendable {
        /// Runs on the annotations with the validated params.
        case single(@Sendable (CrowdAnnotations, ResolvedParameters) -> AggregationResult)
        /// `average`: the weighted mean of other methods' soft labels (`AggregateEndpoint.Plan`).
        case averageOfMethods
    }

    let name: String
    var aliases: [String] = []
    let summary: String
    var inputs: [InputSpec] = [.required("annotations", "[A][3]")]
    let parameters: [ParameterSpec]
    /// Fits one K×K confusion matrix per annotator: annotators × K² count against the size limit.
    var confusionMatrices = false
    /// Iterates over the annotations: annotations × observed labels count against the
    /// per-pass work limit.
    var iterative = false
    /// Visits annotators in MACE's id order (ints before strings).
    var sortsAnnotators = false
    let kernel: Kernel

    /// Whether this method combines others (`average`).
    var combinesMethods: Bool {
        if case .averageOfMethods = kernel { return true }
        return false
    }
}

/// Every aggregation method, in the order of errors and of openapi.yaml's enum.
enum AggregationCatalogue {
    static let all = Catalogue<AggregationMethodDefinition>([
        majorityVote, frequency, softmax, dawidSkene, glad, mace, wawa, zeroBasedSkill, average,
    ])

    /// The methods `average` may combine (all but itself).
    static var combinable: [AggregationMethodDefinition] { all.filter { !$0.combinesMethods } }

    /// `average`'s default components, in the paper's order (docs/aggregation.md §6).
    static var averageDefault: [AggregationMethodDefinition] {
        AggregationMethod.averageDefault.compactMap { all[$0.rawValue] }
    }

    static let majorityVote = AggregationMethodDefinition(
        name: "majority_vote", summary: "The most frequent label of each item (ties to the lowest class).", parameters: [],
        kernel: .single { data, _ in Aggregation.majorityVote(data) })

    static let frequency = AggregationMethodDefinition(
        name: "frequency", summary: "Each item's label frequencies as soft labels.", parameters: [],
        kernel: .single { data, _ in Aggregation.frequency(data) })

    static let softmax = AggregationMethodDefinition(
        name: "softmax", summary: "softmax(n_t / τ) of each item's label counts.",
        parameters: [.number("temperature", default: 1, min: 0, max: 1e6, minOpen: true, "temperature τ of softmax(n_t / τ)")],
        kernel: .single { data, p in Aggregation.softmax(data, temperature: p.number("temperature")) })

    static let dawidSkene = AggregationMethodDefinition(
        name: "dawid_skene", summary: "Dawid–Skene: EM over class priors and one confusion matrix per annotator.",
        parameters: [
            .integer("n_iter", default: 100, min: 1, max: 10_000, "most EM iterations"),
            .number("tol", default: 1e-5, min: 0, "stop when the ELBO per annotation rises by less"),
        ],
        confusionMatrices: true, iterative: true,
        kernel: .single { data, p in
            Aggregation.dawidSkene(data, options: .init(maxIterations: p.integer("n_iter"), tolerance: p.number("tol")))
        })

    static let glad = AggregationMethodDefinition(
        name: "glad", summary: "GLAD: EM over annotator skill and item difficulty.",
        parameters: [
            .integer("n_iter", default: 100, min: 1, max: 10_000, "most EM iterations"),
            .number("tol", default: 1e-5, min: 0, "stop when Q rises by less"),
            .integer("m_step_max_iter", default: 25, min: 1, max: 1000, "most conjugate-gradient steps per M-step"),
            .number("m_step_tol", default: 1e-2, min: 0, minOpen: true, "M-step gradient tolerance (max norm)"),
        ],
        iterative: true,
        kernel: .single { data, p in
            var o = Aggregation.GLADOptions()
            o.maxIterations = p.integer("n_iter")
            o.tolerance = p.number("tol")
            o.mStepMaxIterations = p.integer("m_step_max_iter")
            o.mStepTolerance = p.number("m_step_tol")
            return Aggregation.glad(data, options: o)
        })

    static let mace = AggregationMethodDefinition(
        name: "mace", summary: "MACE: annotators who spam or answer, trained by variational Bayes or EM.",
        parameters: [
            .integer("n_restarts", default: 10, min: 1, max: 1000, "restarts (identical under one seed, as in crowd-kit)"),
            .integer("n_iter", default: 50, min: 1, max: 10_000, "iterations per restart"),
            .choice("method", ["vb", "em"], default: "vb", "variational Bayes or EM training"),
            .number("smoothing", default: 0.1, min: 0, "accepted for compatibility; crowd-kit uses 0.01/K'"),
            .number("default_noise", default: 0.5, min: 0, max: 1e6, "initialisation noise"),
            .number("alpha", default: 0.5, min: 1e-6, "Beta prior α on spamming (smaller priors underflow the variational update)"),
            .number("beta", default: 0.5, min: 1e-6, "Beta prior β on spamming (smaller priors underflow the variational update)"),
            .integer("random_state", default: 0, min: 0, max: 4_294_967_295, "seed of the initialisation"),
        ],
        iterative: true, sortsAnnotators: true,
        kernel: .single { data, p in
            var o = Aggregation.MACEOptions()
            o.restarts = p.integer("n_restarts")
            o.iterations = p.integer("n_iter")
            o.training = p.string("method") == "em" ? .em : .vb
            o.defaultNoise = p.number("default_noise")
            o.alpha = p.number("alpha")
            o.beta = p.number("beta")
            o.seed = UInt32(p.integer("random_state"))
            return Aggregation.mace(data, options: o)
        })

    static let wawa = AggregationMethodDefinition(
        name: "wawa", summary: "Worker agreement with aggregate: a vote weighted by each annotator's agreement with the majority.",
        parameters: [], kernel: .single { data, _ in Aggregation.wawa(data) })

    static let zeroBasedSkill = AggregationMethodDefinition(
        name: "zero_based_skill", summary: "Zero-based skill: a weighted vote with skills learnt by gradient steps from zero.",
        parameters: [
            .integer("n_iter", default: 100, min: 1, max: 10_000, "iterations"),
            .number("lr_init", default: 1, min: 0, max: 1e6, minOpen: true, "initial learning rate"),
            .integer("lr_steps_to_reduce", default: 20, min: 1, max: 10_000, "reduce the rate every this many steps"),
            .number("lr_reduce_factor", default: 0.5, min: 0, max: 1, minOpen: true, "rate multiplier"),
            .number("eps", default: 1e-5, min: 0, max: 1, "added to the initial skill 1/K'"),
        ],
        kernel: .single { data, p in
            var o = Aggregation.ZeroBasedSkillOptions()
            o.iterations = p.integer("n_iter")
            o.learningRate = p.number("lr_init")
            o.stepsToReduce = p.integer("lr_steps_to_reduce")
            o.reduceFactor = p.number("lr_reduce_factor")
            o.eps = p.number("eps")
            return Aggregation.zeroBasedSkill(data, options: o)
        })

    /// Its own members (`methods`, `weights`, each method's params) are read by the plan.
    static let average = AggregationMethodDefinition(
        name: "average", summary: "The weighted mean of other methods' soft labels.", parameters: [], kernel: .averageOfMethods)
}
