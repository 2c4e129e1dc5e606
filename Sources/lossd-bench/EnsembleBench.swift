import Dispatch
import LossdKernels

/// CrossMax (k = 3, the default) over M = 16 members, N = 4096 samples, C = 1000 classes of
/// float64 logits (524 MB), with 1 and 2 threads: scores, predictions and softmax probs.
/// bench/kernels/numpy_crossmax.py does the same work in NumPy.
func benchCrossMax() {
    let members = 16, samples = 4096, classes = 1000
    var random = Generator(state: 11)
    let logits = EnsembleLogits(
        members: members, samples: samples, classes: classes,
        values: (0..<(members * samples * classes)).map { _ in Double.random(in: -4...4, using: &random) })
    let megabytes = Double(logits.values.count * 8) / 1e6
    print("== crossmax (k = 3) on [\(members)][\(samples)][\(classes)] float64 logits (\(format3(megabytes)) MB)")
    let saved = Parallel.maxThreads
    var sink = 0.0
    for threads in [1, 2] {
        Parallel.maxThreads = threads
        let ms = time(3) {
            if let result = try? CrossMax.combine(logits) { sink += result.probs.values[0] + Double(result.predictions[0]) }
        }
        print("lossd crossmax float64, \(threads) thread(s): \(format3(ms)) ms, \(format3(megabytes / ms)) GB/s")
    }
    Parallel.maxThreads = saved
    if sink == 0.123 { print(sink) }
}
