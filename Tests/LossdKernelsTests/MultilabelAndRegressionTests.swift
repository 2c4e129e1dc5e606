import Foundation
import LossdKernels
import Testing

/// Kernel-level properties of decoupled_softmax, multilabel_infonce, soft_topk, hl_gauss,
/// two_hot and aggregate_response that the reference vectors do not pin on their own.
@Suite("Multi-label and regression kernels")
struct MultilabelAndRegressionTests {
    func randomMatrix(_ rows: Int, _ cols: Int, scale: Double = 3) -> Matrix {
        Matrix(rows: rows, cols: cols, values: (0..<(rows * cols)).map { _ in Double.random(in: -scale...scale) })
    }

    func randomTargets(_ rows: Int, _ cols: Int) -> Matrix {
        Matrix(rows: rows, cols: cols, values: (0..<(rows * cols)).map { _ in Bool.random() ? 1 : 0 })
    }

    /// The O(L) regrouped gradient equals the pairwise Σ_p e^{s_n − D_p} form (docs/losses.md
    /// §11.3), for a batch large enough to run row-parallel.
    @Test func decoupledSoftmaxMatchesTheDirectFormula() throws {
        let n = 300, c = 700, temperature = 0.7
        let logits = randomMatrix(n, c), targets = randomTargets(n, c)
        let out = try DecoupledSoftmax.evaluate(
            logits: logits, targets: targets, temperature: temperature, positiveReduction: .mean, gradient: true)
        let grad = out.gradients["logits"]!.values
        for r in stride(from: 0, to: n, by: 37) {
            let s = (0..<c).map { logits[r, $0] / temperature }
            let positive = (0..<c).filter { targets[r, $0] == 1 }, negative = (0..<c).filter { targets[r, $0] == 0 }
            let m = negative.map { s[$0] }.max()!
            let lseNegative = m + log(negative.reduce(0.0) { $0 + exp(s[$1] - m) })
            var value = 0.0
            var g = [Double](repeating: 0, count: c)
            let kappa = 1 / Double(positive.count)
            for p in positive {
                let d = max(s[p], lseNegative) + log1p(exp(-abs(s[p] - lseNegative)))
                value += kappa * (d - s[p])
                g[p] += kappa * (exp(s[p] - d) - 1)
                for k in negative { g[k] += kappa * exp(s[k] - d) }
            }
            #expect(abs(out.values[r] - value) <= 1e-12 * max(1, value))
            for k in 0..<c { #expect(abs(grad[r * c + k] - g[k] / temperature) <= 1e-13) }
        }
    }

    /// With a single positive per row, both DEXML softmax losses give the same value.
    @Test func singlePositiveRowsAgree() throws {
        let n = 20, c = 9
        let logits = randomMatrix(n, c)
        var targets = Matrix(zeros: n, c)
        for r in 0..<n { targets[r, r % c] = 1 }
        let decoupled = try DecoupledSoftmax.evaluate(logits: logits, targets: targets, temperature: 1, positiveReduction: .sum, gradient: false)
        let naive = try MultilabelInfoNCE.evaluate(logits: logits, targets: targets, temperature: 1, positiveReduction: .sum, gradient: false)
        for r in 0..<n { #expect(abs(decoupled.values[r] - naive.values[r]) <= 1e-13 * max(1, naive.values[r])) }
    }

    /// The soft top-k threshold solves Σ σ(α(s + t)) = k, also for fractional k.
    @Test(arguments: [0.5, 1.0, 2.5, 7.9])
    func softTopKThresholdSolvesItsEquation(_ k: Double) throws {
        let n = 16, c = 8, alpha = 1.7
        let logits = randomMatrix(n, c, scale: 20)
        let out = try SoftTopK.evaluate(logits: logits, targets: randomTargets(n, c), k: k, alpha: alpha, temperature: 1, gradient: true)
        guard case .vector(let thresholds)? = out.extras["threshold"] else {
            Issue.record("no threshold extra")
            return
        }
        for r in 0..<n {
            let total = (0..<c).reduce(0.0) { $0 + 1 / (1 + exp(-alpha * (logits[r, $1] + thresholds[r]))) }
            #expect(abs(total - k) <= 1e-12 * Double(c))
        }
        let finite = out.gradients["logits"]!.values.allSatisfy { $0.isFinite }
        #expect(finite)
    }

    @Test func softTopKNeedsTwoColumns() {
        #expect(throws: LossInputError(.invalidShape, field: "/logits", "`logits` must have at least 2 columns")) {
            try SoftTopK.evaluate(
                logits: Matrix(zeros: 2, 1), targets: Matrix(zeros: 2, 1), k: 0.5, alpha: 2, temperature: 1, gradient: false)
        }
    }

    /// HL-Gauss histograms are distributions; two-hot targets decode exactly to the clipped value.
    @Test func histogramTargets() throws {
        let n = 50, c = 11
        let logits = randomMatrix(n, c)
        let values = (0..<n).map { _ in Double.random(in: -3...13) }
        let gauss = try HLGauss.evaluate(logits: logits, values: values, parameters: .init(min: 0, max: 10), gradient: true)
        guard case .matrix(let t)? = gauss.extras["target_probs"] else {
            Issue.record("no target_probs")
            return
        }
        for r in 0..<n {
            let row = (0..<c).map { t[r, $0] }
            #expect(abs(row.reduce(0, +) - 1) <= 1e-13 && row.allSatisfy { $0 >= 0 })
        }
        let twoHot = try TwoHot.evaluate(logits: logits, values: values, min: 0, max: 10, gradient: false)
        guard case .matrix(let u)? = twoHot.extras["target_probs"] else {
            Issue.record("no target_probs")
            return
        }
        for r in 0..<n {
            let mean = (0..<c).reduce(0.0) { $0 + u[r, $1] * Double($1) }
            #expect(abs(mean - min(max(values[r], 0), 10)) <= 1e-13 * 10)
        }
    }

    @Test func hlGaussRejectsAnUnderflowingNormaliser() {
        #expect(throws: LossInputError.self) {
            try HLGauss.evaluate(
                logits: Matrix(zeros: 1, 4), values: [1e6], parameters: .init(min: 0, max: 1, clipTarget: false), gradient: false)
        }
    }

    /// L_inst = L_bag(size) + R (docs/losses.md §13), and ρ interpolates linearly between them.
    @Test func aggregateResponseIdentity() throws {
        let n = 40
        let predictions = (0..<n).map { _ in Double.random(in: -2...2) }
        let bags = (0..<n).map { _ in Int.random(in: -3...5) }
        let responses = (0..<Set(bags).count).map { _ in Double.random(in: -1...1) }
        let out = try AggregateResponse.evaluate(
            predictions: predictions, bags: bags, bagResponses: responses, rho: 0.25, weighting: .size, gradient: true)
        guard case .scalar(let bag)? = out.extras["bag_level"], case .scalar(let instance)? = out.extras["instance_level"],
            case .scalar(let regularizer)? = out.extras["regularizer"]
        else {
            Issue.record("missing extras")
            return
        }
        #expect(abs(instance - (bag + regularizer)) <= 1e-13 * max(1, instance))
        let mean = out.values.reduce(0, +) / Double(n)
        #expect(abs(mean - (0.75 * bag + 0.25 * instance)) <= 1e-13 * max(1, mean))
        #expect(!out.rowSeparable)
    }
}
