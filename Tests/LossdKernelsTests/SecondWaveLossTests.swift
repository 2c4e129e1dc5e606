import Foundation
import LossdKernels
import Testing

/// Identities between the second-wave kernels and first-wave ones, and their edge cases
/// (the reference values themselves are in the service's loss_vectors_2 tests).
@Suite("Second-wave loss kernels")
struct SecondWaveLossTests {
    func random(_ rows: Int, _ cols: Int, scale: Double = 2) -> Matrix {
        Matrix(rows: rows, cols: cols, values: (0..<(rows * cols)).map { _ in Double.random(in: -scale...scale) })
    }

    func near(_ a: [Double], _ b: [Double], tolerance: Double = 1e-11) -> Bool {
        a.count == b.count && zip(a, b).allSatisfy { abs($0 - $1) <= tolerance * max(1, abs($1)) }
    }

    @Test func klDivIsCrossEntropyMinusEntropyAndOneHotIsCrossEntropy() throws {
        let logits = random(5, 4)
        var soft = random(5, 4).values.map { exp($0) }
        for r in 0..<5 {
            let s = soft[(r * 4)..<(r * 4 + 4)].reduce(0, +)
            for k in 0..<4 { soft[r * 4 + k] /= s }
        }
        let out = try KLDiv.evaluate(logits: logits, targets: Matrix(rows: 5, cols: 4, values: soft), temperature: 1, gradient: true)
        guard case .vector(let ce)? = out.extras["cross_entropy"], case .vector(let h)? = out.extras["target_entropy"] else {
            Issue.record("extras missing")
            return
        }
        #expect(near(out.values, zip(ce, h).map { $0 - $1 }))
        let labels = [0, 3, 1, 2, 2]
        var oneHot = [Double](repeating: 0, count: 20)
        for (r, y) in labels.enumerated() { oneHot[r * 4 + y] = 1 }
        let kl = try KLDiv.evaluate(logits: logits, targets: Matrix(rows: 5, cols: 4, values: oneHot), temperature: 1, gradient: true)
        let reference = try CrossEntropy.evaluate(
            logits: logits, targets: .labels(labels), classWeights: nil, parameters: .init(), gradient: true)
        #expect(near(kl.values, reference.values))
        #expect(near(kl.gradients["logits"]!.values, reference.gradients["logits"]!.values))
    }

    @Test func klDivOfExtremeLogitsIsFinite() throws {
        let logits = Matrix(rows: 2, cols: 3, values: [1e4, -1e4, 0, -1e30, 1e30, 0])
        let targets = Matrix(rows: 2, cols: 3, values: [0, 1, 0, 0.5, 0.5, 0])
        let out = try KLDiv.evaluate(logits: logits, targets: targets, temperature: 0.5, gradient: true)
        #expect(out.values.allSatisfy { $0.isFinite } && out.gradients["logits"]!.values.allSatisfy { $0.isFinite })
    }

    @Test func compSumAdversarialWithoutPerturbationIsCompSum() throws {
        // Multiples of 1/64, so that the shifted margins are exactly the clean ones.
        let logits = Matrix(rows: 4, cols: 5, values: random(4, 5).values.map { ($0 * 64).rounded() / 64 })
        let labels = [0, 4, 2, 2]
        // Shifting every logit of a row leaves its margins unchanged: zero norm, zero subgradient.
        let shifted = Matrix(rows: 4, cols: 5, values: (0..<20).map { logits.values[$0] + Double($0 / 5) })
        for tau in [0.0, 0.5, 1.0, 1.7] {
            let out = try CompSumAdversarial.evaluate(
                logits: logits, adversarialLogits: shifted, labels: labels, tau: tau, nu: 2, gradient: true)
            let plain = try CompSum.evaluate(logits: logits, labels: labels, tau: tau, gradient: true)
            #expect(near(out.values, plain.values))
            #expect(near(out.gradients["logits"]!.values, plain.gradients["logits"]!.values))
            #expect(out.gradients["adv_logits"]!.values.allSatisfy { $0 == 0 })
        }
    }

    @Test func compSumAdversarialNormGradientsSumToZeroPerRow() throws {
        // ρ is invariant to a common shift, so each row of ∂/∂adv_logits sums to 0.
        let logits = random(3, 4), adversarial = random(3, 4)
        let out = try CompSumAdversarial.evaluate(
            logits: logits, adversarialLogits: adversarial, labels: [1, 0, 3], tau: 1, nu: 1, gradient: true)
        let g = out.gradients["adv_logits"]!.values
        for r in 0..<3 { #expect(abs(g[(r * 4)..<(r * 4 + 4)].reduce(0, +)) < 1e-12) }
    }

    @Test func normalizedSoftmaxWithoutBatchNegativesIsCrossEntropyOfScaledCosines() throws {
        let e = random(6, 3), w = random(4, 3), labels = [0, 1, 2, 3, 0, 1], s = 7.0
        let out = try NormalizedSoftmax.evaluate(
            embeddings: e, prototypes: w, labels: labels, sampleWeights: nil, parameters: .init(scale: s), gradient: false)
        var logits = Matrix(zeros: 6, 4)
        for i in 0..<6 {
            for c in 0..<4 {
                var dot = 0.0, ne = 0.0, nw = 0.0
                for k in 0..<3 {
                    dot += e[i, k] * w[c, k]
                    ne += e[i, k] * e[i, k]
                    nw += w[c, k] * w[c, k]
                }
                logits[i, c] = s * dot / (ne * nw).squareRoot()
            }
        }
        let reference = try CrossEntropy.evaluate(
            logits: logits, targets: .labels(labels), classWeights: nil, parameters: .init(), gradient: false)
        #expect(near(out.values, reference.values, tolerance: 1e-10))
        #expect(out.extras["filtered_pairs"] == .scalar(0))
    }

    @Test func normalizedSoftmaxSampleWeightsScaleEachAnchorsGradient() throws {
        // With batch negatives rows interact; the weighted gradient is the gradient of Σ s_i ℓ_i.
        let e = random(5, 3), w = random(3, 3), labels = [0, 1, 2, 0, 1]
        let parameters = NormalizedSoftmax.Parameters(scale: 5, margin: 0.1, batchNegatives: true)
        let weights = [0.5, 2, 0, 1, 3]
        let weighted = try NormalizedSoftmax.evaluate(
            embeddings: e, prototypes: w, labels: labels, sampleWeights: weights, parameters: parameters, gradient: true)
        var sum = [Double](repeating: 0, count: 15)
        for (i, s) in weights.enumerated() where s > 0 {
            var single = [Double](repeating: 0, count: 5)
            single[i] = s
            let one = try NormalizedSoftmax.evaluate(
                embeddings: e, prototypes: w, labels: labels, sampleWeights: single, parameters: parameters, gradient: true)
            for k in 0..<15 { sum[k] += one.gradients["embeddings"]!.values[k] }
        }
        #expect(near(weighted.gradients["embeddings"]!.values, sum))
    }

    @Test func normalizedSoftmaxOfHugeScaleAndOppositeCosinesIsFinite() throws {
        let e = Matrix(rows: 3, cols: 2, values: [3, 0, -1, 0, 0, 2])
        let w = Matrix(rows: 2, cols: 2, values: [1, 0, -1, 0])
        let out = try NormalizedSoftmax.evaluate(
            embeddings: e, prototypes: w, labels: [0, 0, 1], sampleWeights: nil,
            parameters: .init(scale: 1e4, batchNegatives: true), gradient: true)
        #expect(out.values.allSatisfy { $0.isFinite })
        #expect(abs(out.values[1] - 2e4) <= 1e-9 * 2e4)
        #expect(out.gradients["embeddings"]!.values.allSatisfy { $0.isFinite })
        #expect(out.gradients["prototypes"]!.values.allSatisfy { $0.isFinite })
    }

    @Test func tcmWithoutHardPairsIsZeroAndAtCosinesOfPlusMinusOneIsFinite() throws {
        // Same-label rows parallel (S = 1 ≥ m+), different labels orthogonal (S = 0 ≤ m−).
        let e = Matrix(rows: 4, cols: 2, values: [1, 0, 2, 0, 0, 1, 0, 3])
        let none = try TCM.evaluate(embeddings: e, labels: [0, 0, 1, 1], parameters: .init(), gradient: true)
        #expect(none.values == [0])
        #expect(none.gradients["embeddings"]!.values.allSatisfy { $0 == 0 })
        #expect(none.extras["hard_positive_pairs"] == .scalar(0) && none.extras["hard_negative_pairs"] == .scalar(0))
        // Opposite same-label rows (S = −1) and parallel different-label rows (S = 1).
        let f = Matrix(rows: 4, cols: 2, values: [1, 0, -1, 0, 0, 1, 0, 5])
        let out = try TCM.evaluate(embeddings: f, labels: [0, 0, 1, 2], parameters: .init(), gradient: true)
        #expect(abs(out.values[0] - (1.9 + 0.5)) < 1e-15)
        #expect(out.gradients["embeddings"]!.values.allSatisfy { $0.isFinite && abs($0) < 1e-15 })
        #expect(throws: LossInputError.self) {
            try TCM.evaluate(embeddings: Matrix(rows: 2, cols: 2, values: [1, 0, 1e-13, 0]), labels: [0, 1], parameters: .init(), gradient: false)
        }
    }

    @Test func implicitPRMStepRewardsAddUpToTheRewardAtTheLastStep() throws {
        let lp = Matrix(rows: 2, cols: 4, values: [-0.1, -2, -0.5, -1, -3, -0.2, -0.7, -1e4])
        let ref = Matrix(rows: 2, cols: 4, values: [-0.4, -1, -0.5, -2, -1, -1, -1, -1])
        let mask = Matrix(rows: 2, cols: 4, values: [1, 1, 1, 1, 1, 1, 0, 1])
        let ends = Matrix(rows: 2, cols: 3, values: [0, 2, 3, 1, 3, -1])
        let out = try ImplicitPRM.evaluate(
            logProbs: lp, refLogProbs: ref, outcomes: [1, 0], mask: mask, stepEnds: ends, beta: 0.5, gradient: true)
        guard case .vector(let rewards)? = out.extras["rewards"], case .matrix(let steps)? = out.extras["step_rewards"] else {
            Issue.record("extras missing")
            return
        }
        #expect(abs(steps[0, 0] + steps[0, 1] + steps[0, 2] - rewards[0]) < 1e-12)
        #expect(abs(steps[1, 0] + steps[1, 1] - rewards[1]) < 1e-9 * abs(rewards[1]))
        #expect(steps[1, 2].isNaN)
        #expect(abs(out.values[0] - log1p(exp(-rewards[0]))) < 1e-12)
        // r_1 ≈ −5e3 with outcome 0: the loss is ≈ 0 and its gradient finite; masked tokens get none.
        #expect(out.values[1].isFinite && out.values[1] < 1e-300)
        #expect(out.gradients["log_probs"]!.values[6] == 0)
        #expect(out.gradients["log_probs"]!.values.allSatisfy { $0.isFinite })
    }
}
