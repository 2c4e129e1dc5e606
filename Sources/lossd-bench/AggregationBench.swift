import Dispatch
import LossdKernels

/// The seeded crowd shared with bench/kernels/numpy_dawid_skene.py: uniform u(i) from the
/// i-th SplitMix64 output of seed 2024 (top 53 bits). 100,000 items × 10 annotations each
/// = 1,000,000 annotations; annotator of annotation a = ⌊1000·u(3a)⌋; true class of item t =
/// ⌊10·u(3A + t)⌋; annotator w is right with probability 0.5 + 0.4·u(3A + T + w), otherwise
/// labels ⌊10·u(3a + 2)⌋ (the test for being right uses u(3a + 1)).
enum SimulatedCrowd {
    static let items = 100_000, perItem = 10, annotators = 1000, classes = 10
    static let seed: UInt64 = 2024

    static func uniform(_ i: Int) -> Double {
        var z = seed &+ 0x9E37_79B9_7F4A_7C15 &* UInt64(i + 1)
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        z ^= z >> 31
        return Double(z >> 11) * 0x1p-53
    }

    static func make() -> CrowdAnnotations {
        let count = items * perItem
        let truth = (0..<items).map { Int(Double(classes) * uniform(3 * count + $0)) }
        let accuracy = (0..<annotators).map { 0.5 + 0.4 * uniform(3 * count + items + $0) }
        var item = [Int32](repeating: 0, count: count)
        var annotator = item, label = item
        for a in 0..<count {
            let t = a / perItem
            let w = Int(Double(annotators) * uniform(3 * a))
            item[a] = Int32(t)
            annotator[a] = Int32(w)
            label[a] = Int32(uniform(3 * a + 1) < accuracy[w] ? truth[t] : Int(Double(classes) * uniform(3 * a + 2)))
        }
        return CrowdAnnotations(
            itemCount: items, annotatorCount: annotators, numClasses: classes, items: item, annotators: annotator, labels: label)
    }
}

/// Dawid–Skene (crowd-kit defaults: n_iter 100, tol 1e−5) on the crowd above, 1 and 2 threads.
func benchDawidSkene() {
    let data = SimulatedCrowd.make()
    print("== dawid_skene on \(data.count) annotations (\(SimulatedCrowd.items) items, \(SimulatedCrowd.annotators) annotators, \(SimulatedCrowd.classes) classes), tol 1e-5")
    let saved = Parallel.maxThreads
    for threads in [1, 2] {
        Parallel.maxThreads = threads
        var best = Double.infinity
        var result: AggregationResult?
        for _ in 0..<2 {
            let start = DispatchTime.now().uptimeNanoseconds
            result = Aggregation.dawidSkene(data)
            best = min(best, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
        }
        print("lossd dawid_skene, \(threads) thread(s): \(format3(best)) s, \(result!.iterations) iterations, converged \(result!.converged)")
    }
    Parallel.maxThreads = saved
}
