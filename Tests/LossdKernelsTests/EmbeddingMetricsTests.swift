import Foundation
import LossdKernels
import Testing

@Suite("Embedding metrics kernels")
struct EmbeddingMetricsTests {
    /// A random N×D matrix (deterministic) with rows clustered by class.
    func sample(n: Int, d: Int, classes: Int, seed: UInt64) -> (Matrix, [Int]) {
        var rng = SplitMix64(seed: seed)
        func uniform() -> Double { Double(rng.next() >> 11) / Double(1 << 53) * 2 - 1 }
        let centres = (0..<(classes * d)).map { _ in uniform() }
        var labels: [Int] = []
        var values: [Double] = []
        for _ in 0..<n {
            let c = rng.below(classes)
            labels.append(c)
            for p in 0..<d { values.append(centres[c * d + p] + 0.5 * uniform()) }
        }
        return (Matrix(rows: n, cols: d, values: values), labels)
    }

    /// The naive O(N²·D) loops the blocked GEMM path must reproduce.
    func naive(_ v: Matrix, labels: [Int], alpha: Double, t: Double) -> (alignment: Double, uniformity: Double) {
        var power = 0.0, positives = 0
        var exponents: [Double] = []
        for i in 0..<v.rows {
            for j in (i + 1)..<v.rows {
                var d2 = 0.0
                for p in 0..<v.cols {
                    let diff = v[i, p] - v[j, p]
                    d2 += diff * diff
                }
                exponents.append(-t * d2)
                if labels[i] == labels[j] {
                    power += pow(d2.squareRoot(), alpha)
                    positives += 1
                }
            }
        }
        let m = exponents.max()!
        let lse = m + log(exponents.reduce(0) { $0 + exp($1 - m) })
        return (power / Double(positives), lse - log(Double(exponents.count)))
    }

    @Test(arguments: [(1.0, 2.0, true), (2.0, 0.5, true), (1.5, 3.0, false)])
    func blockedGramMatchesNaivePairs(alpha: Double, t: Double, normalize: Bool) throws {
        // N = 600 spans three row blocks of 256 (the last one partial).
        let (x, labels) = sample(n: 600, d: 7, classes: 4, seed: 42)
        #expect(x.rows > EmbeddingMetrics.blockRows * 2)
        let v = normalize ? try EmbeddingMetrics.unitRows(x, field: .embeddings) : x
        let sums = EmbeddingMetrics.pairSums(rows: v, classes: labels, alpha: alpha, t: t)
        let want = naive(v, labels: labels, alpha: alpha, t: t)
        #expect(sums.pairs == 600 * 599 / 2)
        #expect(abs(sums.alignment! - want.alignment) <= 1e-12 * max(1, abs(want.alignment)))
        #expect(abs(sums.uniformity! - want.uniformity) <= 1e-12 * max(1, abs(want.uniformity)))
    }

    @Test func nearPairsKeepTheirDigits() {
        // Two nearly identical rows: the Gram identity alone would leave √(ulp) noise in d.
        let x = Matrix(rows: 2, cols: 2, values: [1, 1e-9, 1, 0])
        let sums = EmbeddingMetrics.pairSums(rows: x, classes: [0, 0], alpha: 1, t: 1)
        #expect(abs(sums.alignment! - 1e-9) <= 1e-18)
    }

    @Test func cosineMeansMatchPairLoops() throws {
        let (x, labels) = sample(n: 50, d: 5, classes: 3, seed: 7)
        let u = try EmbeddingMetrics.unitRows(x, field: .embeddings)
        var same = 0.0, sameCount = 0, different = 0.0, differentCount = 0
        for i in 0..<50 {
            for j in (i + 1)..<50 {
                var dot = 0.0
                for p in 0..<5 { dot += u[i, p] * u[j, p] }
                if labels[i] == labels[j] { same += dot; sameCount += 1 } else { different += dot; differentCount += 1 }
            }
        }
        let (positive, negative) = EmbeddingMetrics.cosineMeans(unitRows: u, classes: labels, classCount: 3)
        #expect(abs(positive! - same / Double(sameCount)) <= 1e-13)
        #expect(abs(negative! - different / Double(differentCount)) <= 1e-13)
    }

    @Test func nc1WithMoreClassesThanDimensions() {
        // D = 2 < C = 5: the D×D side of the eigen-decomposition. Same value as C ≤ D after
        // padding the rows with zero columns (D = 8 ≥ C).
        let (x, labels) = sample(n: 40, d: 2, classes: 5, seed: 3)
        var padded: [Double] = []
        for i in 0..<40 { padded += [x[i, 0], x[i, 1], 0, 0, 0, 0, 0, 0] }
        let (classes, count) = EmbeddingMetrics.classIndices(labels)
        let a = EmbeddingMetrics.nc1(rows: x, classes: classes, classCount: count)
        let b = EmbeddingMetrics.nc1(rows: Matrix(rows: 40, cols: 8, values: padded), classes: classes, classCount: count)
        #expect(a > 0)
        #expect(abs(a - b) <= 1e-10 * a)
    }
}
