import Dispatch
import LossdKernels

/// Dukhan & Ablavatski (2020, "The Two-Pass Softmax Algorithm") report their two-pass
/// softmax up to 18% faster than the three-pass algorithm with reloading on AVX2 and up to
/// 28% on AVX-512. This measures both (the same exponential polynomial, lossd's C kernels)
/// at every instruction-set level this CPU has, for rows of 1000 and 32000 classes, in
/// cache (one row softmaxed over and over) and out of cache (a 256 MB batch of rows, each
/// visited once per repetition), in float32 (the paper's) and float64 (lossd's service).
@MainActor
func benchSoftmaxPasses() {
    print("== softmax: two-pass vs three-pass (with reloading), ns per element (best of 5)")
    print("paper (Dukhan & Ablavatski 2020): two-pass up to 18% faster on AVX2, up to 28% on AVX-512")
    print("level   dtype    classes  working set   two-pass  three-pass  three/two")
    let elementsPerRun = 16_000_000
    for level in KernelLevel.supported {
        for (dtype, width) in [("float32", 4), ("float64", 8)] {
            for classes in [1000, 32000] {
                for outOfCache in [false, true] {
                    let rows = outOfCache ? (256_000_000 / width) / classes : 1
                    let repeats = max(1, elementsPerRun / (rows * classes))
                    var generator = SplitMix64(seed: UInt64(classes))
                    let count = rows * classes
                    let ns: [Double]
                    if width == 4 {
                        let x = (0..<count).map { _ in Float.random(in: -8...8, using: &generator) }
                        ns = [false, true].map { threePass in
                            nanosecondsPerElement(x, rows: rows, classes: classes, repeats: repeats) { level.softmax($0, into: $1, threePass: threePass) }
                        }
                    } else {
                        let x = (0..<count).map { _ in Double.random(in: -8...8, using: &generator) }
                        ns = [false, true].map { threePass in
                            nanosecondsPerElement(x, rows: rows, classes: classes, repeats: repeats) { level.softmax($0, into: $1, threePass: threePass) }
                        }
                    }
                    let set = outOfCache ? "\(rows * classes * width / 1_000_000) MB" : "\(classes * width / 1000) KB row"
                    let pad = { (s: String, n: Int) in s + String(repeating: " ", count: max(0, n - s.count)) }
                    print(
                        pad(level.name, 8) + pad(dtype, 9) + pad(String(classes), 9) + pad(set, 14) + pad(format3(ns[0]), 10)
                            + pad(format3(ns[1]), 12) + "\(format3(ns[1] / ns[0]))x")
                }
            }
        }
    }
}

/// Best-of-5 time per element of `softmax` over every row of `x`, `repeats` times.
func nanosecondsPerElement<T: BinaryFloatingPoint>(
    _ x: [T], rows: Int, classes: Int, repeats: Int,
    _ softmax: (UnsafeBufferPointer<T>, UnsafeMutableBufferPointer<T>) -> Bool
) -> Double {
    let y = UnsafeMutableBufferPointer<T>.allocate(capacity: x.count)
    y.initialize(repeating: 0)
    defer { y.deallocate() }
    var best = Double.infinity
    for _ in 0..<5 {
        let start = DispatchTime.now().uptimeNanoseconds
        x.withUnsafeBufferPointer { xb in
            for _ in 0..<repeats {
                for r in 0..<rows {
                    let range = (r * classes)..<((r + 1) * classes)
                    _ = softmax(UnsafeBufferPointer(rebasing: xb[range]), UnsafeMutableBufferPointer(rebasing: y[range]))
                }
            }
        }
        best = min(best, Double(DispatchTime.now().uptimeNanoseconds - start))
    }
    precondition(y[0].isFinite, "softmax wrote a non-finite value")
    return best / Double(repeats * x.count)
}
