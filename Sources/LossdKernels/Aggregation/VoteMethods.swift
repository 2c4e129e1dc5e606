#if canImport(Glibc)
    import Glibc
#endif

/// The vote-based methods: majority vote, vote fractions, softmax of counts, WaWA and
/// zero-based skill (docs/aggregation.md §2).
extension Aggregation {
    /// `frequency`: q_tk = n_tk / Σ_k n_tk; skill = accuracy against the MV labels.
    public static func frequency(_ data: CrowdAnnotations) -> AggregationResult {
        var soft = data.voteCounts()
        let k = data.numClasses
        for t in 0..<data.itemCount where data.annotated[t] {
            var sum = 0.0
            for c in 0..<k { sum += soft[t, c] }
            for c in 0..<k { soft[t, c] /= sum }
        }
        let hard = finish(&soft, data)
        let skill = accuracy(data, against: hard, firstOfTriple: data.firstOfTriple())
        return AggregationResult(soft: soft, labels: hard, skill: skill)
    }

    /// `majority_vote`: the same fractions (crowd-kit `probas_`) and argmax labels.
    public static func majorityVote(_ data: CrowdAnnotations) -> AggregationResult {
        frequency(data)
    }

    /// `softmax`: softmax(n_t / τ) over all K classes, computed as exp((n − max n)/τ) so
    /// that a τ small enough for n/τ to overflow still gives the one-hot of the majority
    /// (split evenly between tied classes).
    public static func softmax(_ data: CrowdAnnotations, temperature: Double) -> AggregationResult {
        var soft = data.voteCounts()
        let k = data.numClasses
        for t in 0..<data.itemCount where data.annotated[t] {
            var top = -Double.infinity
            for c in 0..<k { top = max(top, soft[t, c]) }
            var sum = 0.0
            for c in 0..<k {
                let e = exp((soft[t, c] - top) / temperature)
                soft[t, c] = e
                sum += e
            }
            for c in 0..<k { soft[t, c] /= sum }
        }
        let hard = finish(&soft, data)
        return AggregationResult(soft: soft, labels: hard)
    }

    /// Fraction of each annotator's distinct triples whose label equals `hard` of the item
    /// (crowd-kit `get_accuracy`).
    static func accuracy(_ data: CrowdAnnotations, against hard: [Int], firstOfTriple: [Bool]) -> [Double] {
        var skill = [Double](repeating: 0, count: data.annotatorCount)
        for w in 0..<data.annotatorCount {
            var hits = 0.0, total = 0.0
            for a32 in data.byAnnotator[data.annotatorStart[w]..<data.annotatorStart[w + 1]] {
                let a = Int(a32)
                guard firstOfTriple[a] else { continue }
                total += 1
                if hard[Int(data.items[a])] == Int(data.labels[a]) { hits += 1 }
            }
            skill[w] = total > 0 ? hits / total : 0
        }
        return skill
    }

    /// Skill-weighted vote S_t(c) = Σ_{a∈t, l_a=c} skill_{w_a}, normalised; an item whose
    /// weights sum to 0 gets uniform over L (docs/aggregation.md §2, wawa).
    static func weightedVote(_ data: CrowdAnnotations, skill: [Double]) -> (Matrix, [Int]) {
        let k = data.numClasses
        var soft = Matrix(zeros: data.itemCount, k)
        for a in 0..<data.count {
            soft[Int(data.items[a]), Int(data.labels[a])] += skill[Int(data.annotators[a])]
        }
        for t in 0..<data.itemCount where data.annotated[t] {
            var sum = 0.0
            for c in 0..<k { sum += soft[t, c] }
            if sum > 0 {
                for c in 0..<k { soft[t, c] /= sum }
            } else {
                for c in data.observedLabels { soft[t, c] = 1 / Double(data.observedCount) }
            }
        }
        let hard = finish(&soft, data)
        return (soft, hard)
    }

    /// `wawa`: skills = accuracy against MV, then the skill-weighted vote.
    public static func wawa(_ data: CrowdAnnotations) -> AggregationResult {
        let first = data.firstOfTriple()
        let mv = frequency(data)
        let skill = accuracy(data, against: mv.labels, firstOfTriple: first)
        let (soft, hard) = weightedVote(data, skill: skill)
        return AggregationResult(soft: soft, labels: hard, skill: skill, iterations: 1, converged: true)
    }

    /// Parameters of `zero_based_skill` (crowd-kit defaults).
    public struct ZeroBasedSkillOptions: Sendable {
        public var iterations = 100
        public var learningRate = 1.0
        public var stepsToReduce = 20
        public var reduceFactor = 0.5
        public var eps = 1e-5
        public init() {}
    }

    /// `zero_based_skill`: n_iter rounds of weighted vote and skill ← skill + lr·(acc − skill).
    public static func zeroBasedSkill(_ data: CrowdAnnotations, options: ZeroBasedSkillOptions = .init()) -> AggregationResult {
        let first = data.firstOfTriple()
        var skill = [Double](repeating: 1 / Double(data.observedCount) + options.eps, count: data.annotatorCount)
        var lr = options.learningRate
        for it in stride(from: 1, through: options.iterations, by: 1) {
            if it % options.stepsToReduce == 0 { lr *= options.reduceFactor }
            let (_, hard) = weightedVote(data, skill: skill)
            let acc = accuracy(data, against: hard, firstOfTriple: first)
            for w in 0..<skill.count { skill[w] += lr * (acc[w] - skill[w]) }
        }
        let (soft, hard) = weightedVote(data, skill: skill)
        return AggregationResult(soft: soft, labels: hard, skill: skill, iterations: options.iterations, converged: true)
    }
}
