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

@Suite("Two-Pass softmax kernel (float64)")
struct TwoPassFloat64Tests {
    @Test(arguments: TwoPassVectors.cases.map(\.name))
    func specVectorsMatch(_ name: String) {
        let c = TwoPassVectors.cases.first { $0.name == name }!
        let lse = c.x.withUnsafeBufferPointer { TwoPassSoftmax.logSumExp($0) }
        // The expected values are printed to 12 decimals.
        #expect(abs(lse - c.logSumExp) <= 1e-11 * max(1, abs(c.logSumExp)), "\(name): \(lse)")
        var y = [Double](repeating: 0, count: c.x.count)
        c.x.withUnsafeBufferPointer { x in y.withUnsafeMutableBufferPointer { TwoPassSoftmax.expShifted(x, shift: lse, into: $0) } }
        for (got, want) in zip(y, c.softmax) { #expect(abs(got - want) <= 1e-11, "\(name): \(got) vs \(want)") }
        #expect(abs(y.reduce(0, +) - 1) <= 1e-12)
    }

    @Test func randomRowsAreWithin1e12OfALongDoubleFreeReference() {
        var generator = SystemRandomNumberGenerator()
        for length in [1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 100, 1000] {
            for scale in [1.0, 50.0, 700.0, 1e5] {
                let x = (0..<length).map { _ in Double.random(in: -scale...scale, using: &generator) }
                let m = x.max()!
                let reference = m + log(x.reduce(0.0) { $0 + exp($1 - m) })
                let got = x.withUnsafeBufferPointer { TwoPassSoftmax.logSumExp($0) }
                #expect(abs(got - reference) <= 1e-12 * max(1, abs(reference)), "length \(length) scale \(scale)")
                var y = [Double](repeating: 0, count: length)
                x.withUnsafeBufferPointer { xs in y.withUnsafeMutableBufferPointer { TwoPassSoftmax.expShifted(xs, shift: got, into: $0) } }
                for (k, v) in y.enumerated() {
                    let want = exp(x[k] - reference)
                    #expect(abs(v - want) <= 1e-12 * max(want, 1e-300) + 1e-300, "softmax \(k) length \(length) scale \(scale)")
                }
            }
        }
    }

    @Test func valuesBeyondTheKernelRangeFallBackExactly() {
        let x: [Double] = [1e30, -1e30, 0]
        #expect(x.withUnsafeBufferPointer { TwoPassSoftmax.logSumExp($0) } == 1e30)
        let (m, excess) = [1e4, -1e4, 0].withUnsafeBufferPointer { TwoPassSoftmax.logSumExpAboveMax($0) }
        #expect(m == 1e4 && excess == 0)
    }
}
