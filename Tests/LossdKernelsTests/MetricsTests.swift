import LossdKernels
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Calibration metrics (docs/calibration.md §2) on small hand-computed cases: ties, edges,
/// empty bins, a class never predicted, and the same data as probs and as logits.
@Suite("Calibration metrics kernels")
struct MetricsTests {
    typealias M = CalibrationMetrics

    static func matrix(_ rows: [[Double]]) -> Matrix {
        Matrix(rows: rows.count, cols: rows[0].count, values: rows.flatMap { $0 })
    }

    static func near(_ a: Double, _ b: Double, _ tol: Double = 1e-12) -> Bool { abs(a - b) <= tol }

    @Test func edgesFollowLinspace() {
        let e = M.edges(bins: 10)
        #expect(e.count == 11)
        #expect(e[3] == 0.30000000000000004)
        #expect(e[5] == 0.5 && e[8] == 0.8)
        #expect(e[6] == 0.6000000000000001)
        #expect(e[10] == 1.0)
        #expect(M.edges(bins: 1) == [0, 1])
    }

    @Test func binRulesDifferOnEdgesAndAtOne() {
        let e = M.edges(bins: 10)
        #expect(M.binIndex(0.8, edges: e, rule: .left) == 8)
        #expect(M.binIndex(0.8, edges: e, rule: .right) == 7)
        #expect(M.binIndex(0.8, edges: e, rule: .torchmetrics) == 8)
        // 0.6 lies just below e_6 = 0.6000000000000001: bin 5 under every rule.
        #expect(M.binIndex(0.6, edges: e, rule: .left) == 5)
        #expect(M.binIndex(0.6, edges: e, rule: .right) == 5)
        #expect(M.binIndex(1.0, edges: e, rule: .left) == 9)
        #expect(M.binIndex(1.0, edges: e, rule: .right) == 9)
        #expect(M.binIndex(1.0, edges: e, rule: .torchmetrics) == 10)
        #expect(M.binIndex(0.0, edges: e, rule: .left) == 0)
        #expect(M.binIndex(0.0, edges: e, rule: .right) == 0)
        #expect(M.binIndex(0.0, edges: e, rule: .torchmetrics) == 0)
    }

    @Test func tieGoesToTheLowestClass() {
        // [0.5, 0.5] predicts class 0: wrong for label 1, right for label 0.
        let p = Self.matrix([[0.5, 0.5]])
        #expect(M.accuracy(scores: p, labels: [1]) == 0)
        #expect(M.accuracy(scores: p, labels: [0]) == 1)
        #expect(M.ece(probabilities: p, labels: [1]) == 0.5)
        #expect(M.ece(probabilities: p, labels: [0]) == 0.5)
        // Top-k ties at the cut: lower index first.
        let s = Self.matrix([[1, 1, 1]])
        #expect(M.topKAccuracy(scores: s, labels: [2], k: 2) == 0)
        #expect(M.topKAccuracy(scores: s, labels: [1], k: 2) == 1)
        #expect(M.topKAccuracy(scores: s, labels: [2], k: 3) == 1)
    }

    @Test func emptyBinsContributeNothing() {
        let p = Self.matrix([[0.9, 0.1], [0.8, 0.2]])
        let y = [0, 1]
        // Bins 9 (0.9, correct) and 8 (0.8 on its left edge, wrong): 0.5·0.1 + 0.5·0.8.
        #expect(Self.near(M.ece(probabilities: p, labels: y, bins: 10), 0.45))
        #expect(Self.near(M.mce(probabilities: p, labels: y, bins: 10), 0.8))
        let bins = M.reliability(probabilities: p, labels: y, bins: 10)
        #expect(bins.count == 10)
        #expect(bins.filter { $0.count == 0 }.count == 8)
        #expect(bins[0].confidence == nil && bins[0].accuracy == nil)
        #expect(bins[8].count == 1 && bins[8].accuracy == 0 && bins[8].confidence == 0.8)
        #expect(bins[9].count == 1 && bins[9].accuracy == 1 && bins[9].lower == 0.9 && bins[9].upper == 1)
        // Right rule: 0.8 moves to bin 7 and 0.9 (= e_9 exactly) to bin 8; same ECE.
        let right = M.reliability(probabilities: p, labels: y, bins: 10, binRule: .right)
        #expect(right[7].count == 1 && right[8].count == 1 && right[9].count == 0)
        #expect(Self.near(M.ece(probabilities: p, labels: y, bins: 10, binRule: .right), 0.45))
    }

    @Test func torchmetricsIsolatesConfidenceOne() {
        let p = Self.matrix([[1, 0], [0.25, 0.75]])
        let y = [1, 1]
        // left: both in [0.5, 1]: acc 0.5, conf 0.875 → 0.375.
        #expect(Self.near(M.ece(probabilities: p, labels: y, bins: 2), 0.375))
        // torchmetrics: 0.75 alone (correct, 0.25 gap), 1.0 alone (wrong, gap 1).
        #expect(Self.near(M.ece(probabilities: p, labels: y, bins: 2, binRule: .torchmetrics), 0.625))
        let bins = M.reliability(probabilities: p, labels: y, bins: 2, binRule: .torchmetrics)
        #expect(bins.count == 3)
        #expect(bins[2].lower == 1 && bins[2].upper == 1 && bins[2].count == 1)
    }

    @Test func classNeverPredicted() {
        // Class 2 is never the argmax; classwise ECE still averages over all 3 classes.
        let p = Self.matrix([[0.7, 0.2, 0.1], [0.6, 0.1, 0.3], [0.2, 0.5, 0.3]])
        let y = [0, 2, 1]
        #expect(Self.near(M.accuracy(scores: p, labels: y), 2.0 / 3))
        #expect(M.topKAccuracy(scores: p, labels: y, k: 2) == 1)
        #expect(Self.near(M.topKAccuracy(scores: p, labels: y, k: 1), 2.0 / 3))
        // One bin: |1/3 − 0.5|, |1/3 − 0.8/3|, |1/3 − 0.7/3| → (1/6 + 1/15 + 1/10) / 3 = 1/9.
        let (cw, perClass) = M.classwiseECE(probabilities: p, labels: y, bins: 1)
        #expect(Self.near(cw, 1.0 / 9))
        #expect(perClass.count == 3)
        #expect(Self.near(perClass[2], 0.1))
        // Brier is not halved for C = 3.
        let brier = ((0.09 + 0.04 + 0.01) + (0.36 + 0.01 + 0.49) + (0.04 + 0.25 + 0.09)) / 3
        #expect(Self.near(M.brier(probabilities: p, labels: y), brier))
    }

    @Test func brierHalvesForTwoClasses() {
        let p = Self.matrix([[0.25, 0.75]])
        #expect(M.brier(probabilities: p, labels: [1]) == 0.0625)
        #expect(M.brier(probabilities: p, labels: [1], halve: false) == 0.125)
        #expect(M.brier(probabilities: p, labels: [1], halve: true) == 0.0625)
    }

    @Test func probsAndLogitsAgree() {
        let p = Self.matrix([[0.25, 0.75], [0.6, 0.4], [0.1, 0.9]])
        let z = Matrix(rows: 3, cols: 2, values: p.values.map { log($0) })
        let y = [1, 1, 0]
        let q = M.softmax(z)
        for (a, b) in zip(p.values, q.values) { #expect(Self.near(a, b, 1e-15)) }
        #expect(Self.near(M.nll(logits: z, labels: y), M.nll(probabilities: p, labels: y)))
        #expect(Self.near(M.nll(probabilities: p, labels: y), -(log(0.75) + log(0.4) + log(0.1)) / 3))
        #expect(Self.near(M.ece(probabilities: q, labels: y), M.ece(probabilities: p, labels: y)))
        #expect(M.accuracy(scores: z, labels: y) == M.accuracy(scores: p, labels: y))
    }

    @Test func nllClipsProbsButNotLogits() {
        // probs: p = 0 is clipped to ε (sklearn log_loss); logits use exact log-softmax.
        #expect(Self.near(M.nll(probabilities: Self.matrix([[1, 0]]), labels: [1]), -log(2.220446049250313e-16)))
        #expect(Self.near(M.nll(logits: Self.matrix([[1000, 0]]), labels: [0]), 0, 1e-15))
        #expect(M.nll(logits: Self.matrix([[1000, 0]]), labels: [1]) == 1000)
        let s = M.softmax(Self.matrix([[1000, 0, -1000]]))
        #expect(s.values == [1, 0, 0])
    }

    @Test func adaptiveBinsUseQuantiles() {
        let p = Self.matrix([[0.6, 0.4], [0.7, 0.3], [0.8, 0.2], [0.9, 0.1]])
        let y = [0, 0, 0, 1]
        let (ace, edges) = M.ace(probabilities: p, labels: y, bins: 2)
        #expect(edges.count == 3 && edges[0] == 0 && edges[2] == 1)
        #expect(Self.near(edges[1], 0.75))
        // [0.6, 0.7] all correct: gap 0.35; [0.8, 0.9] half correct: gap 0.35.
        #expect(Self.near(ace, 0.35))
        // Repeated confidences: coinciding edges leave empty bins, everything in the last.
        let same = Self.matrix([[0.8, 0.2], [0.8, 0.2], [0.2, 0.8], [0.8, 0.2]])
        let (a2, e2) = M.ace(probabilities: same, labels: [0, 1, 1, 0], bins: 4)
        #expect(e2 == [0, 0.8, 0.8, 0.8, 1])
        #expect(Self.near(a2, abs(0.75 - 0.8)))
    }

    @Test func opisSeparatesInconsistentClasses() {
        // Class 0's pair is very similar, class 1's is not: at d = 0.5 only class 0 matches.
        var sim = [Double](repeating: 0.1, count: 16)
        for i in 0..<4 { sim[i * 4 + i] = 1 }
        sim[0 * 4 + 1] = 0.9; sim[1 * 4 + 0] = 0.9
        sim[2 * 4 + 3] = 0.4; sim[3 * 4 + 2] = 0.4
        let r = M.opis(scores: sim, labels: [0, 0, 1, 1], dMin: 0, dMax: 1, thresholds: 3)
        #expect(Self.near(r.value, 1.0 / 12))
        #expect(r.classesUsed == [0, 1] && r.classesSkipped.isEmpty)
        let distance = sim.map { 1 - $0 }
        let d = M.opis(scores: distance, labels: [0, 0, 1, 1], dMin: 0, dMax: 1, thresholds: 3, higherIsSimilar: false)
        #expect(Self.near(d.value, 1.0 / 12))
        // Singletons have no positive pair: skipped, and one used class gives 0.
        let s = M.opis(scores: sim, labels: [0, 0, 1, 2], dMin: 0, dMax: 1, thresholds: 3)
        #expect(s.value == 0 && s.classesUsed == [0] && s.classesSkipped == [1, 2])
        #expect(M.linspace(0, 0.9, count: 10).last == 0.9)
    }
}
