import LossdKernels
import Testing

@testable import LossdService

/// The numbers the pictures draw: Wilson intervals (ReliabilitySVG) and the confusion
/// matrices estimated against soft labels (Aggregation.empiricalConfusion).
@Suite("Picture numbers")
struct PictureTests {
    /// Wilson (1927) intervals, checked against values computed by hand from the formula
    /// (centre (p + z²/2n)/(1 + z²/n), half-width z/(1 + z²/n)·sqrt(p(1−p)/n + z²/4n²)).
    @Test(arguments: [
        (0.5, 10, 0.236593, 0.763407),
        (0.0, 10, 0.0, 0.277533),
        (1.0, 10, 0.722467, 1.0),
        (0.9, 100, 0.825634, 0.944771),
    ])
    func wilson(_ p: Double, _ n: Int, _ lower: Double, _ upper: Double) {
        let (lo, hi) = ReliabilitySVG.wilson(p, n: n)
        #expect(abs(lo - lower) < 1e-6 && abs(hi - upper) < 1e-6, "\(lo) \(hi)")
    }

    @Test func wilsonWithoutSamplesIsTheWholeRange() {
        #expect(ReliabilitySVG.wilson(0.3, n: 0) == (0, 1))
    }

    /// Two items with soft labels, two annotators: annotator 0 says 0 and 1, annotator 1
    /// says 1 twice; rows are normalised per true class, a class never seen stays zero.
    @Test func empiricalConfusion() {
        let data = CrowdAnnotations(
            itemCount: 2, annotatorCount: 3, numClasses: 3, items: [0, 1, 0, 1], annotators: [0, 0, 1, 1], labels: [0, 1, 1, 1])
        let soft = Matrix(rows: 2, cols: 3, values: [0.75, 0.25, 0, 0, 1, 0])
        let (confusion, agreement) = Aggregation.empiricalConfusion(data, soft: soft)
        #expect(confusion.shape == [3, 3, 3])
        let a0 = Array(confusion.values[0..<9])
        // true 0: mass 0.75 from item 0 (label 0); true 1: 0.25 (item 0, label 0) + 1 (item 1, label 1).
        let expected0: [Double] = [1, 0, 0, 0.2, 0.8, 0, 0, 0, 0]
        #expect(a0 == expected0)
        let a1 = Array(confusion.values[9..<18])
        let expected1: [Double] = [0, 1, 0, 0, 1, 0, 0, 0, 0]
        #expect(a1 == expected1)
        #expect(Array(confusion.values[18..<27]) == [Double](repeating: 0, count: 9), "an annotator without annotations")
        let expected: [Double] = [1.75 / 2, 1.25 / 2, 0]
        #expect(agreement == expected)
    }
}
