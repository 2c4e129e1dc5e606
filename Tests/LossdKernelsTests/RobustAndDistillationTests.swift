import Foundation
import LossdKernels
import Testing

/// Identities and edge cases of the ldr_kl, aldr_kl, pass_at_n, kd_kl and dhkd_logit kernels
/// (docs/losses.md §8–§10) beyond the reference vectors.
@Suite("Robust and distillation kernels")
struct RobustAndDistillationTests {
    static let logits = Matrix(
        rows: 3, cols: 4,
        values: [-0.4224, -1.0355, 0.2992, -3.5798, 0.5689, -0.6434, -1.4521, 0.1971, -3.9029, -0.3168, -1.4626, 0.8194])
    static let teacher = Matrix(
        rows: 3, cols: 4, values: [-3.7916, 1.1272, -0.6397, -1.5044, 0.4592, -1.7259, -2.3158, 1.1847, 5.7936, -2.9933, 3.4655, 3.2447])
    static let labels = [0, 3, 1]

    func near(_ a: Double, _ b: Double, _ tol: Double = 1e-12) -> Bool { abs(a - b) <= tol * max(1, abs(b)) }

    func crossEntropy(_ m: Matrix, _ labels: [Int]) throws -> LossOutput {
        try CrossEntropy.evaluate(
            logits: m, targets: .labels(labels), classWeights: nil, parameters: .init(), gradient: true)
    }

    @Test func ldrWithUnitLambdaNoMarginRawScoresIsCrossEntropyMinusLogC() throws {
        let ldr = try LDRKL.evaluate(
            logits: Self.logits, labels: Self.labels, parameters: .init(lambda: 1, margin: 0, scoreTransform: .none),
            gradient: true)
        let ce = try crossEntropy(Self.logits, Self.labels)
        for r in 0..<3 { #expect(near(ldr.values[r], ce.values[r] - log(4.0))) }
        for (a, b) in zip(ldr.gradients["logits"]!.values, ce.gradients["logits"]!.values) { #expect(near(a, b)) }
    }

    @Test func ldrLimitsAreTheHingeAndTheMean() throws {
        let margin = 0.7
        for (lambda, tol) in [(1e-4, 2e-3), (1e7, 1e-5)] {
            let out = try LDRKL.evaluate(
                logits: Self.logits, labels: Self.labels,
                parameters: .init(lambda: lambda, margin: margin, scoreTransform: .none), gradient: false)
            for r in 0..<3 {
                let x = (0..<4).map { Self.logits[r, $0] }, y = Self.labels[r]
                let zeta = (0..<4).map { ($0 == y ? 0 : margin) + x[$0] - x[y] }
                let want = lambda < 1 ? zeta.max()! : zeta.reduce(0, +) / 4
                #expect(abs(out.values[r] - want) <= tol, "λ=\(lambda) row \(r): \(out.values[r]) vs \(want)")
            }
        }
    }

    /// ALDR's gradient holds λ constant: it equals LDR's at the returned λ, row by row.
    @Test(arguments: LDRKL.ScoreTransform.allCases)
    func aldrGradientIsLdrGradientAtTheNewLambda(_ transform: LDRKL.ScoreTransform) throws {
        let aldr = try LDRKL.adaptive(
            logits: Self.logits, labels: Self.labels, lambdaPrev: [5, 8, 10],
            parameters: .init(lambda0: 10, alpha: 2, margin: 0.3, scoreTransform: transform, iterations: 2), gradient: true)
        guard case .vector(let lambdas)? = aldr.extras["lambda_new"], case .vector(let kl)? = aldr.extras["kl"] else {
            Issue.record("missing extras")
            return
        }
        for r in 0..<3 {
            #expect(lambdas[r] >= 10 * (1 - 1.0 / 2) && lambdas[r] <= 10)
            let row = Matrix(rows: 1, cols: 4, values: (0..<4).map { Self.logits[r, $0] })
            let ldr = try LDRKL.evaluate(
                logits: row, labels: [Self.labels[r]], parameters: .init(lambda: lambdas[r], margin: 0.3, scoreTransform: transform),
                gradient: true)
            let penalty = 2 * log(4.0) / (2 * 10) * (lambdas[r] - 10) * (lambdas[r] - 10)
            #expect(near(aldr.values[r], ldr.values[0] - penalty))
            #expect(near(lambdas[r], 10 - 10 * kl[r] / (2 * log(4.0))))
            for k in 0..<4 { #expect(near(aldr.gradients["logits"]!.values[r * 4 + k], ldr.gradients["logits"]!.values[k])) }
        }
    }

    @Test func passAtOneIsCrossEntropyAndLogProbsAgreeWithLogits() throws {
        let one = try PassAtN.evaluate(logits: Self.logits, labels: Self.labels, n: 1, gradient: true)
        let ce = try crossEntropy(Self.logits, Self.labels)
        for r in 0..<3 { #expect(near(one.values[r], ce.values[r])) }
        for (a, b) in zip(one.gradients["logits"]!.values, ce.gradients["logits"]!.values) { #expect(near(a, b)) }

        let seven = try PassAtN.evaluate(logits: Self.logits, labels: Self.labels, n: 7, gradient: true)
        let logP = ce.values.map { -$0 }
        let fromLogProbs = try PassAtN.evaluate(logProbs: logP, n: 7, gradient: true)
        for r in 0..<3 {
            let p = exp(logP[r])
            #expect(near(seven.values[r], -log(1 - pow(1 - p, 7)), 1e-10))
            #expect(near(fromLogProbs.values[r], seven.values[r]))
        }
    }

    @Test func passAtNSeriesRegimeIsExactWhenPUnderflows() throws {
        // n·p < 1e-8: ℓ = −log p − log n − log1p(−(n−1)p/2) with p = 0 in float64.
        let out = try PassAtN.evaluate(logProbs: [-1e4, -1e30], n: 64, gradient: true)
        #expect(out.values[0] == 1e4 - log(64.0))
        #expect(out.values[1] == 1e30)
        #expect(out.gradients["log_probs"]!.values.allSatisfy { near($0, -1) })
    }

    @Test func kdAtUnitTemperatureWithoutHardTermIsTheTeachersKL() throws {
        let out = try KDKL.evaluate(
            logits: Self.logits, teacherLogits: Self.teacher, labels: nil, parameters: .init(temperature: 1, alpha: 1),
            gradient: true)
        for r in 0..<3 {
            let z = (0..<4).map { Self.logits[r, $0] }, t = (0..<4).map { Self.teacher[r, $0] }
            let lz = log(z.map(exp).reduce(0, +)), lt = log(t.map(exp).reduce(0, +))
            let kl = (0..<4).reduce(0.0) { acc, k in acc + exp(t[k] - lt) * ((t[k] - lt) - (z[k] - lz)) }
            #expect(near(out.values[r], kl, 1e-11))
        }
    }

    @Test func kdRequiresLabelsOnlyWithAHardTerm() {
        #expect(throws: LossInputError(.missingField, field: "/labels", "`labels` is required")) {
            try KDKL.evaluate(
                logits: Self.logits, teacherLogits: Self.teacher, labels: nil, parameters: .init(), gradient: false)
        }
    }

    @Test func dhkdBinaryKLNormIsAnEighthOfTheSquaredGapForSmallGaps() throws {
        let student = Matrix(rows: 1, cols: 3, values: [1e-3, -2e-3, 0])
        let out = try DHKDLogit.evaluate(
            logits: student, teacherLogits: Matrix(zeros: 1, 3), temperature: 2, gradient: true)
        let want = (1e-6 + 4e-6) / 8
        #expect(abs(out.values[0] - want) <= 1e-6 * want)
    }

    @Test func dhkdGapBeyondFloat64IsValueOverflow() {
        #expect(throws: LossInputError.overflow) {
            try DHKDLogit.evaluate(
                logits: Matrix(rows: 1, cols: 1, values: [1.5e308]), teacherLogits: Matrix(rows: 1, cols: 1, values: [-1.5e308]),
                gradient: true)
        }
    }

    /// The value-only path (no gradient buffers) gives the same values as the gradient path.
    @Test func valuesDoNotDependOnWhetherGradientsAreWanted() throws {
        func both(_ body: (Bool) throws -> LossOutput) throws {
            let with = try body(true), without = try body(false)
            #expect(with.values == without.values)
            #expect(without.gradients.isEmpty)
        }
        try both { try LDRKL.evaluate(logits: Self.logits, labels: Self.labels, parameters: .init(), gradient: $0) }
        try both {
            try LDRKL.adaptive(logits: Self.logits, labels: Self.labels, lambdaPrev: nil, parameters: .init(), gradient: $0)
        }
        try both { try PassAtN.evaluate(logits: Self.logits, labels: Self.labels, n: 16, gradient: $0) }
        try both {
            try KDKL.evaluate(logits: Self.logits, teacherLogits: Self.teacher, labels: Self.labels, parameters: .init(), gradient: $0)
        }
        for variant in DHKDLogit.Variant.allCases {
            try both {
                try DHKDLogit.evaluate(
                    logits: Self.logits, teacherLogits: Self.teacher, variant: variant, gradient: $0)
            }
        }
    }

    /// Batches large enough to be split across threads give the same rows as one at a time.
    @Test func parallelRowsMatchSingleRows() throws {
        let n = 4000, c = 64
        var generator = SystemRandomNumberGenerator()
        let big = Matrix(rows: n, cols: c, values: (0..<(n * c)).map { _ in Double.random(in: -5...5, using: &generator) })
        let labels = (0..<n).map { _ in Int.random(in: 0..<c, using: &generator) }
        let all = try LDRKL.evaluate(logits: big, labels: labels, parameters: .init(), gradient: true)
        for r in [0, 1234, n - 1] {
            let row = Matrix(rows: 1, cols: c, values: Array(big.values[(r * c)..<((r + 1) * c)]))
            let one = try LDRKL.evaluate(logits: row, labels: [labels[r]], parameters: .init(), gradient: true)
            #expect(one.values[0] == all.values[r])
            #expect(one.gradients["logits"]!.values == Array(all.gradients["logits"]!.values[(r * c)..<((r + 1) * c)]))
        }
    }
}
