#if canImport(Glibc)
    import Glibc
#endif

/// The logits of an ensemble: M members' [N][C] predictions for the same samples, one
/// contiguous row-major buffer laid out [M][N][C] (member m's row i starts at
/// `(m * samples + i) * classes`).
public struct EnsembleLogits: Sendable {
    public let members: Int
    public let samples: Int
    public let classes: Int
    public var values: [Double]

    public init(members: Int, samples: Int, classes: Int, values: [Double]) {
        precondition(values.count == members * samples * classes, "EnsembleLogits values must hold M * N * C entries")
        self.members = members
        self.samples = samples
        self.classes = classes
        self.values = values
    }
}

/// What every ensembling method answers (docs/ensembles.md §1): per-sample scores, the argmax
/// of each row (lowest class index on ties) and a probability row summing to 1.
public struct EnsembleResult: Sendable, Equatable {
    public var scores: Matrix
    public var predictions: [Int]
    public var probs: Matrix

    public init(scores: Matrix, predictions: [Int], probs: Matrix) {
        self.scores = scores
        self.predictions = predictions
        self.probs = probs
    }
}

/// The combination rules of `POST /v1/ensemble`.
public enum EnsembleMethod: String, Sendable, CaseIterable {
    case crossmax
    case meanLogits = "mean_logits"
    case meanProbs = "mean_probs"
    case geometricMean = "geometric_mean"
    case medianLogits = "median_logits"
    case majorityVote = "majority_vote"

    /// Whether member `weights` apply (the mean-type methods and the vote; docs/ensembles.md §1).
    public var acceptsWeights: Bool {
        switch self {
        case .crossmax, .medianLogits: false
        case .meanLogits, .meanProbs, .geometricMean, .majorityVote: true
        }
    }
}

/// Ensembling of member logits (docs/ensembles.md): CrossMax and the baselines. Pure
/// numerics; rows (samples) are independent and split across cores.
public enum Ensemble {
    /// Combines `logits` with `method`. `weights` (one per member, ≥ 0, positive sum) are
    /// normalised to sum 1; only `EnsembleMethod.acceptsWeights` methods take them.
    /// `k` and `reduce` are CrossMax's (nil k: the default, 3 or M when M < 3).
    public static func combine(
        _ method: EnsembleMethod, logits: EnsembleLogits, weights: [Double]? = nil,
        k: Int? = nil, reduce: CrossMax.Reduce = .kthHighest
    ) throws(LossInputError) -> EnsembleResult {
        try validate(logits)
        if weights != nil && !method.acceptsWeights {
            throw LossInputError(.invalidInput, field: "/weights", "weights are not supported by \(method.rawValue)")
        }
        let omega = try normalisedWeights(weights, members: logits.members)
        let result: EnsembleResult
        switch method {
        case .crossmax:
            result = try CrossMax.combine(logits, k: k, reduce: reduce)
        case .meanLogits:
            result = meanLogits(logits, weights: omega)
        case .meanProbs:
            result = meanProbs(logits, weights: omega)
        case .geometricMean:
            result = geometricMean(logits, weights: omega)
        case .medianLogits:
            result = medianLogits(logits)
        case .majorityVote:
            result = majorityVote(logits, weights: omega)
        }
        guard result.scores.values.allSatisfy(\.isFinite), result.probs.values.allSatisfy(\.isFinite) else {
            throw .overflow
        }
        return result
    }

    /// M ≥ 1, N ≥ 1, C ≥ 2 and finite values (docs/ensembles.md §1), with the offending index.
    public static func validate(_ logits: EnsembleLogits) throws(LossInputError) {
        guard logits.members >= 1 else {
            throw LossInputError(.invalidShape, field: "/logits", "`logits` must have at least 1 member")
        }
        guard logits.samples >= 1 else {
            throw LossInputError(.invalidShape, field: "/logits/0", "`logits[0]` must have at least 1 row")
        }
        guard logits.classes >= 2 else {
            throw LossInputError(
                .invalidShape, field: "/logits/0/0", "`logits` must have at least 2 classes (got \(logits.classes))")
        }
        if let bad = logits.values.firstIndex(where: { !$0.isFinite }) {
            let c = bad % logits.classes, i = (bad / logits.classes) % logits.samples, m = bad / (logits.classes * logits.samples)
            throw LossInputError(.nonFinite, field: "/logits/\(m)/\(i)/\(c)", "`logits[\(m)][\(i)][\(c)]` is not a finite number")
        }
    }

    /// ω = weights / Σ weights, or 1/M each when absent. Weights must be one per member,
    /// finite, ≥ 0 and not all 0.
    public static func normalisedWeights(_ weights: [Double]?, members: Int) throws(LossInputError) -> [Double] {
        guard let weights else { return [Double](repeating: 1 / Double(members), count: members) }
        try Validate.count(weights.count, name: "weights", expected: members)
        for (m, w) in weights.enumerated() {
            guard w.isFinite else {
                throw LossInputError(.nonFinite, field: "/weights/\(m)", "`weights[\(m)]` is not a finite number")
            }
            guard w >= 0 else { throw LossInputError(.invalidInput, field: "/weights/\(m)", "`weights[\(m)]` must be >= 0") }
        }
        let total = weights.reduce(0, +)
        guard total > 0, total.isFinite else {
            throw LossInputError(.invalidInput, field: "/weights", "`weights` must have a positive finite sum")
        }
        return weights.map { $0 / total }
    }

    // MARK: Baselines (docs/ensembles.md §3)

    /// Σ_m ω_m Z_m; softmax of that.
    static func meanLogits(_ logits: EnsembleLogits, weights: [Double]) -> EnsembleResult {
        weightedSum(logits, weights: weights, rule: .softmaxOfScores) { row, _ in row }
    }

    /// P = Σ_m ω_m softmax(Z_m); scores = probs = P.
    static func meanProbs(_ logits: EnsembleLogits, weights: [Double]) -> EnsembleResult {
        weightedSum(logits, weights: weights, rule: .scoresAreProbs) { row, scratch in
            let lse = TwoPassSoftmax.logSumExp(row)
            TwoPassSoftmax.expShifted(row, shift: lse, into: scratch)
            return UnsafeBufferPointer(scratch)
        }
    }

    /// Σ_m ω_m log_softmax(Z_m) (weighted mean log-probabilities); softmax of that.
    static func geometricMean(_ logits: EnsembleLogits, weights: [Double]) -> EnsembleResult {
        weightedSum(logits, weights: weights, rule: .softmaxOfScores) { row, scratch in
            TwoPassSoftmax.logSoftmax(row, into: scratch)
            return UnsafeBufferPointer(scratch)
        }
    }

    /// scores = Σ_m ω_m f(Z_m) per sample, the three weighted-sum baselines: `member(row,
    /// scratch)` gives f of one member's row (the row itself, or `scratch` filled with its
    /// softmax or log-softmax), called once per member row; inlined, so the accumulation
    /// loop is the one each baseline had.
    @inline(__always)
    static func weightedSum(
        _ logits: EnsembleLogits, weights: [Double], rule: ProbsRule,
        _ member: (UnsafeBufferPointer<Double>, UnsafeMutableBufferPointer<Double>) -> UnsafeBufferPointer<Double>
    ) -> EnsembleResult {
        perSample(logits) { _, rowOf, scores, scratch in
            let c = scores.count
            for k in 0..<c { scores[k] = 0 }
            for m in 0..<logits.members {
                let x = member(rowOf(m), scratch), w = weights[m]
                for k in 0..<c { scores[k] += w * x[k] }
            }
            return rule
        }
    }

    /// Element-wise median over members (the mean of the two middle values for even M).
    static func medianLogits(_ logits: EnsembleLogits) -> EnsembleResult {
        let members = logits.members
        return perSample(logits) { _, rowOf, scores, _ in
            var column = [Double](repeating: 0, count: members)
            for k in 0..<scores.count {
                for m in 0..<members { column[m] = rowOf(m)[k] }
                scores[k] = median(&column)
            }
            return .softmaxOfScores
        }
    }

    /// V[c] = Σ_m ω_m [argmax Z_m = c]; scores = probs = V.
    static func majorityVote(_ logits: EnsembleLogits, weights: [Double]) -> EnsembleResult {
        perSample(logits) { _, rowOf, scores, _ in
            for k in 0..<scores.count { scores[k] = 0 }
            for m in 0..<logits.members { scores[argmax(rowOf(m))] += weights[m] }
            return .scoresAreProbs
        }
    }

    // MARK: Shared pieces

    /// How a method's probability row follows from its scores.
    enum ProbsRule {
        case softmaxOfScores
        case scoresAreProbs
    }

    /// Runs `body` for every sample (in parallel over samples): it gets the buffer, member
    /// m's row of the sample, the sample's score row to fill, and a scratch row of C values.
    /// Predictions and probabilities follow from the scores.
    static func perSample(
        _ logits: EnsembleLogits,
        _ body: (
            UnsafeBufferPointer<Double>, (Int) -> UnsafeBufferPointer<Double>,
            UnsafeMutableBufferPointer<Double>, UnsafeMutableBufferPointer<Double>
        ) -> ProbsRule
    ) -> EnsembleResult {
        let n = logits.samples, c = logits.classes, members = logits.members
        var scores = [Double](repeating: 0, count: n * c)
        var probs = [Double](repeating: 0, count: n * c)
        var predictions = [Int](repeating: 0, count: n)
        scores.withUnsafeMutableBufferPointer { scoresOut in
            probs.withUnsafeMutableBufferPointer { probsOut in
                predictions.withUnsafeMutableBufferPointer { predictionsOut in
                    logits.values.withUnsafeBufferPointer { z in
                        Parallel.forEachRange(n, costPerRow: members * c) { range in
                            var scratch = [Double](repeating: 0, count: c)
                            scratch.withUnsafeMutableBufferPointer { scratch in
                                for i in range {
                                    let sampleScores = UnsafeMutableBufferPointer(rebasing: scoresOut[(i * c)..<((i + 1) * c)])
                                    let rule = body(z, { m in z.row(m * n + i, width: c) }, sampleScores, scratch)
                                    let scoreRow = UnsafeBufferPointer(sampleScores)
                                    let probRow = UnsafeMutableBufferPointer(rebasing: probsOut[(i * c)..<((i + 1) * c)])
                                    finish(scoreRow, rule: rule, predictionOut: &predictionsOut[i], probsOut: probRow)
                                }
                            }
                        }
                    }
                }
            }
        }
        return EnsembleResult(
            scores: Matrix(rows: n, cols: c, values: scores), predictions: predictions,
            probs: Matrix(rows: n, cols: c, values: probs))
    }

    /// The prediction (argmax, lowest index on ties) and probability row of a score row.
    @inline(__always)
    static func finish(
        _ scores: UnsafeBufferPointer<Double>, rule: ProbsRule, predictionOut: inout Int,
        probsOut: UnsafeMutableBufferPointer<Double>
    ) {
        predictionOut = argmax(scores)
        switch rule {
        case .softmaxOfScores:
            let (m, excess) = TwoPassSoftmax.logSumExpAboveMax(scores)
            if m.ulp <= 1e-9 {
                TwoPassSoftmax.expShifted(scores, shift: m + excess, into: probsOut)
            } else {
                // |max| so large that m + excess rounds the excess away (two maxima at 1e300:
                // ln 2 vanishes): subtract in two steps, so tied maxima split exactly.
                for k in 0..<scores.count { probsOut[k] = exp((scores[k] - m) - excess) }
            }
        case .scoresAreProbs:
            for k in 0..<scores.count { probsOut[k] = scores[k] }
        }
    }

    /// Index of the largest value, the lowest such index on ties.
    @inline(__always)
    static func argmax(_ row: UnsafeBufferPointer<Double>) -> Int {
        var best = 0
        for k in 1..<row.count where row[k] > row[best] { best = k }
        return best
    }

    /// NumPy's median of `values` (reordered in place): the middle value, or the mean of the
    /// two middle values for an even count.
    static func median(_ values: inout [Double]) -> Double {
        values.sort()
        let n = values.count
        if n % 2 == 1 { return values[n / 2] }
        return (values[n / 2 - 1] + values[n / 2]) / 2
    }
}
