import Foundation
import LossdKernels
import Testing

/// Identities and edge cases of the margin-family kernels (docs/losses.md §5–§7) that the
/// reference vectors do not pin down by themselves.
@Suite("Margin-family kernels")
struct MarginFamilyTests {
    let logits = Matrix(rows: 3, cols: 4, values: [
        -0.4224, -1.0355, 0.2992, -3.5798,
        0.5689, -0.6434, -1.4521, 0.1971,
        -3.9029, -0.3168, -1.4626, 0.8194,
    ])
    let labels = [0, 3, 1]

    func crossEntropy(_ z: Matrix, _ targets: ClassTargets) throws -> LossOutput {
        try CrossEntropy.evaluate(logits: z, targets: targets, classWeights: nil, parameters: .init(), gradient: true)
    }

    func expectClose(_ got: [Double], _ want: [Double], rtol: Double = 1e-12, _ what: String) {
        #expect(got.count == want.count, "\(what) size")
        for (g, w) in zip(got, want) { #expect(abs(g - w) <= 1e-15 + rtol * abs(w), "\(what): \(g) vs \(w)") }
    }

    @Test func compSumAtTauOneIsCrossEntropyAndAtTauTwoIsOneMinusPy() throws {
        let ce = try crossEntropy(logits, .labels(labels))
        let one = try CompSum.evaluate(logits: logits, labels: labels, tau: 1, gradient: true)
        expectClose(one.values, ce.values, "values")
        expectClose(one.gradients["logits"]!.values, ce.gradients["logits"]!.values, "gradient")

        let two = try CompSum.evaluate(logits: logits, labels: labels, tau: 2, gradient: false)
        expectClose(two.values, ce.values.map { 1 - exp(-$0) }, rtol: 1e-14, "1 - p_y")
    }

    @Test func compSumIsContinuousAcrossTauOne() throws {
        // −expm1(x)/(τ−1) has no cancellation: τ = 1 ± 1e-12 agrees with the cross-entropy.
        let ce = try CompSum.evaluate(logits: logits, labels: labels, tau: 1, gradient: false)
        for tau in [1 - 1e-12, 1 + 1e-12] {
            let near = try CompSum.evaluate(logits: logits, labels: labels, tau: tau, gradient: false)
            expectClose(near.values, ce.values, rtol: 1e-11, "tau \(tau)")
        }
    }

    @Test func compSumLogValuesAreTheLogarithmOfTheValues() throws {
        let output = try CompSum.evaluate(logits: logits, labels: labels, tau: 0.25, gradient: false)
        guard case .vector(let logValues)? = output.extras["log_values"] else {
            Issue.record("no log_values")
            return
        }
        expectClose(logValues, output.values.map { log($0) }, rtol: 1e-13, "log_values")
        let none = try CompSum.evaluate(logits: logits, labels: labels, tau: 1.5, gradient: false)
        #expect(none.extras["log_values"] == nil)
    }

    @Test func sumExponentialBeyondFloat64IsRejected() {
        let z = Matrix(rows: 1, cols: 2, values: [400, -400])
        #expect(throws: LossInputError.overflow) { try CompSum.evaluate(logits: z, labels: [1], tau: 0, gradient: true) }
        // e^{800}/2 is still out of range at τ = 0.5 (e^{400}/0.5 is not).
        #expect(throws: LossInputError.overflow) { try CompSum.evaluate(logits: z, labels: [1], tau: 0.1, gradient: true) }
        let fine = try? CompSum.evaluate(logits: z, labels: [1], tau: 0.5, gradient: true)
        #expect(fine.map { abs($0.values[0] / (expm1(400) / 0.5) - 1) <= 1e-12 } == true)
    }

    @Test func labelsOutOfRangeUseTheSpecMessage() {
        let error = LossInputError(.invalidLabel, field: "/labels/1", "`labels[1]` = 4 is out of range [0, 4)")
        #expect(throws: error) { try CompSum.evaluate(logits: logits, labels: [0, 4, 1], tau: 1, gradient: false) }
        #expect(throws: error) { try ZLoss.evaluate(logits: logits, labels: [0, 4, 1], a: 1, b: 0, eps: 0, gradient: false) }
        #expect(throws: error) {
            try Poly1.evaluate(logits: logits, targets: .labels([0, 4, 1]), epsilon: 2, labelSmoothing: 0, gradient: false)
        }
    }

    @Test func zLossIsShiftAndScaleInvariant() throws {
        let base = try ZLoss.evaluate(logits: logits, labels: labels, a: 1.5, b: 0.5, eps: 0, gradient: true)
        let moved = Matrix(rows: 3, cols: 4, values: logits.values.map { 3 * $0 + 7 })
        let transformed = try ZLoss.evaluate(logits: moved, labels: labels, a: 1.5, b: 0.5, eps: 0, gradient: true)
        expectClose(transformed.values, base.values, rtol: 1e-13, "values")
        // ∂ℓ/∂o scales by 1/α under o → α·o + β.
        expectClose(transformed.gradients["logits"]!.values, base.gradients["logits"]!.values.map { $0 / 3 }, rtol: 1e-11, "gradient")

        // With eps = 0 each row's gradient sums to 0 and is orthogonal to the row.
        let g = base.gradients["logits"]!.values
        for r in 0..<3 {
            let row = r * 4..<(r + 1) * 4
            #expect(abs(row.reduce(0) { $0 + g[$1] }) <= 1e-15)
            #expect(abs(row.reduce(0) { $0 + g[$1] * logits.values[$1] }) <= 1e-15)
        }
    }

    @Test func zLossHandlesConstantRowsAndTheFloat64Range() throws {
        let constant = Matrix(rows: 2, cols: 3, values: [5, 5, 5, 0, 0, 0])
        let flat = try ZLoss.evaluate(logits: constant, labels: [1, 2], a: 2, b: 1, eps: 0, gradient: true)
        expectClose(flat.values, [log1p(exp(2.0)) / 2, log1p(exp(2.0)) / 2], "constant rows")
        #expect(flat.gradients["logits"]!.values.allSatisfy { $0 == 0 })

        let huge = Matrix(rows: 1, cols: 3, values: [1.7e308, -1.7e308, 0])
        let output = try ZLoss.evaluate(logits: huge, labels: [0], a: 1, b: 0, eps: 0, gradient: true)
        #expect(abs(output.values[0] - log1p(exp(-1.5.squareRoot()))) <= 1e-15)
        #expect(output.gradients["logits"]!.values.allSatisfy { $0.isFinite })
    }

    @Test func zLossNeedsTwoColumns() {
        let error = LossInputError(.invalidShape, field: "/logits", "`logits` must have at least 2 columns")
        #expect(throws: error) {
            try ZLoss.evaluate(logits: Matrix(rows: 2, cols: 1, values: [1, 2]), labels: [0, 0], a: 1, b: 0, eps: 0, gradient: false)
        }
    }

    @Test func logZPenaltyIsTheSquaredLogPartitionFunction() throws {
        let ce = try crossEntropy(logits, .labels(labels))
        let output = try LogZPenalty.evaluate(logits: logits, coefficient: 0.5, gradient: true)
        // LSE = CE + z_y, and the gradient is 2·c·LSE·softmax = 2·c·LSE·(∂CE + e_y).
        let ceGrad = ce.gradients["logits"]!.values
        for r in 0..<3 {
            let lse = ce.values[r] + logits[r, labels[r]]
            #expect(abs(output.values[r] - 0.5 * lse * lse) <= 1e-14)
            for k in 0..<4 {
                let p = ceGrad[r * 4 + k] + (k == labels[r] ? 1 : 0)
                #expect(abs(output.gradients["logits"]!.values[r * 4 + k] - lse * p) <= 1e-14)
            }
        }
    }

    @Test func logZPenaltyOverflowsOnlyWhenLogZSquaredDoes() throws {
        let fine = try LogZPenalty.evaluate(logits: Matrix(rows: 1, cols: 2, values: [1e150, -1e150]), coefficient: 1, gradient: true)
        #expect(abs(fine.values[0] / 1e300 - 1) <= 1e-15)
        #expect(throws: LossInputError.overflow) {
            try LogZPenalty.evaluate(logits: Matrix(rows: 1, cols: 2, values: [1e155, 0]), coefficient: 1, gradient: true)
        }
    }

    @Test func poly1WithEpsilonZeroIsCrossEntropy() throws {
        let soft = Matrix(rows: 3, cols: 4, values: [0.7, 0.1, 0.1, 0.1, 0, 0, 0, 1, 0.25, 0.25, 0.25, 0.25])
        for targets in [ClassTargets.labels(labels), .probabilities(soft)] {
            let ce = try crossEntropy(logits, targets)
            let poly = try Poly1.evaluate(logits: logits, targets: targets, epsilon: 0, labelSmoothing: 0, gradient: true)
            expectClose(poly.values, ce.values, "values")
            expectClose(poly.gradients["logits"]!.values, ce.gradients["logits"]!.values, rtol: 1e-11, "gradient")
        }
    }

    @Test func poly1HardLabelsMatchOneHotTargets() throws {
        var oneHot = Matrix(zeros: 3, 4)
        for (r, y) in labels.enumerated() { oneHot[r, y] = 1 }
        for smoothing in [0.0, 0.3] {
            let hard = try Poly1.evaluate(logits: logits, targets: .labels(labels), epsilon: -1, labelSmoothing: smoothing, gradient: true)
            let soft = try Poly1.evaluate(
                logits: logits, targets: .probabilities(oneHot), epsilon: -1, labelSmoothing: smoothing, gradient: true)
            expectClose(hard.values, soft.values, "values")
            expectClose(hard.gradients["logits"]!.values, soft.gradients["logits"]!.values, "gradient")
            #expect(hard.extras["one_minus_pt"] == soft.extras["one_minus_pt"])
        }
    }

    @Test func poly1RejectsTargetsThatAreNotDistributions() {
        let bad = Matrix(rows: 3, cols: 4, values: [0.7, 0.1, 0.1, 0.1, 0, 0, 0, 1, 0.5, 0.25, 0.25, 0.25])
        let error = LossInputError(.invalidTarget, field: "/targets/2", "`targets[2]` must sum to 1 (within 1e-6)")
        #expect(throws: error) {
            try Poly1.evaluate(logits: logits, targets: .probabilities(bad), epsilon: 2, labelSmoothing: 0, gradient: false)
        }
    }
}
