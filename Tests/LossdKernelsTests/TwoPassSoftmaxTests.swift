import Foundation
import LossdKernels
import Testing

@Suite("Two-Pass softmax kernel (float32)")
struct TwoPassSoftmaxTests {
    func reference(_ row: [Float]) -> Double {
        let m = Double(row.max()!)
        return m + log(row.reduce(0.0) { $0 + exp(Double($1) - m) })
    }

    func kernel(_ row: [Float]) -> Double {
        Double(row.withUnsafeBufferPointer { TwoPassSoftmax.logSumExp($0) })
    }

    @Test(arguments: [
        [1000, 1001, 999, 1002.5, -3],  // naive exp overflows
        [-1e4, -1e4 + 1, -1e4 - 2],  // naive exp underflows to 0/0
        [42],  // single element
        [0, -200, -1000, 5],  // terms flushed to 0
        [1e4, -1e4, 0],
        [1e7, -1e7, 1e7],
    ] as [[Float]])
    func specRowsMatchAFloat64Reference(_ row: [Float]) {
        let got = kernel(row), want = reference(row)
        #expect(abs(got - want) <= 2e-6 * max(1, abs(want)), "\(row): \(got) vs \(want)")
    }

    @Test func randomRowsOfEveryLengthUpTo70() {
        var generator = SystemRandomNumberGenerator()
        for length in 1...70 {
            for scale: Float in [1, 30, 300] {
                let row = (0..<length).map { _ in Float.random(in: -scale...scale, using: &generator) }
                let got = kernel(row), want = reference(row)
                #expect(abs(got - want) <= 2e-6 * max(1, abs(want)), "length \(length) scale \(scale)")
            }
        }
    }

    @Test func meanCrossEntropyMatchesTheFloat64Kernel() throws {
        var generator = SystemRandomNumberGenerator()
        let rows = 300, cols = 37
        let logits = (0..<(rows * cols)).map { _ in Float.random(in: -5...5, using: &generator) }
        let labels = (0..<rows).map { _ in Int32.random(in: 0..<Int32(cols), using: &generator) }
        let fast = logits.withUnsafeBufferPointer { l in
            labels.withUnsafeBufferPointer { CrossEntropy.meanFloat32(logits: l, rows: rows, cols: cols, labels: $0) }
        }
        let exact = try CrossEntropy.evaluate(
            logits: Matrix(rows: rows, cols: cols, values: logits.map(Double.init)), targets: .labels(labels.map(Int.init)),
            classWeights: nil, parameters: .init(), gradient: false)
        let mean = exact.values.reduce(0, +) / Double(rows)
        #expect(abs(fast - mean) <= 1e-5 * mean)
    }
}
