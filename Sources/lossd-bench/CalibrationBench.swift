import Dispatch
import LossdKernels

/// Temperature scaling: fitting T on N = 100,000 × C = 1000 float64 logits (800 MB; the
/// safeguarded Newton of docs/calibration.md §3.1, one pass over the logits per step) and
/// applying a fitted T to 4096 × 1000, with 1 and 2 threads.
/// bench/kernels/scipy_temperature.py does the same work with NumPy/SciPy.
func benchCalibration() {
    let rows = 100_000, cols = 1000, applyRows = 4096
    var random = Generator(state: 23)
    // Overconfident logits: uniform(-4, 4) scaled by 3, label = argmax 70% of the time.
    var values = [Double](repeating: 0, count: rows * cols)
    var labels = [Int](repeating: 0, count: rows)
    for i in 0..<rows {
        var best = 0
        for j in 0..<cols {
            let v = 3 * Double.random(in: -4...4, using: &random)
            values[i * cols + j] = v
            if v > values[i * cols + best] { best = j }
        }
        labels[i] = Double.random(in: 0..<1, using: &random) < 0.7 ? best : Int.random(in: 0..<cols, using: &random)
    }
    let logits = Matrix(rows: rows, cols: cols, values: values)
    values = []
    let applyLogits = Matrix(rows: applyRows, cols: cols, values: Array(logits.values[0..<(applyRows * cols)]))
    let megabytes = Double(rows * cols * 8) / 1e6
    print("== temperature scaling: fit on \(rows)x\(cols) float64 logits (\(format3(megabytes)) MB), apply to \(applyRows)x\(cols)")
    let saved = Parallel.maxThreads
    var sink = 0.0
    for threads in [1, 2] {
        Parallel.maxThreads = threads
        var temperature = 1.0, iterations = 0
        let fitMs = time(1) {
            if let (model, report) = try? TemperatureScaling.fit(logits: logits, labels: labels),
                case .number(let t)? = model.parameters["temperature"]
            {
                temperature = t
                iterations = report.iterations
            }
        }
        print("lossd temperature fit float64, \(threads) thread(s): \(format3(fitMs)) ms (T = \(format3(temperature)), \(iterations) Newton steps)")
        let applyMs = time(10) {
            sink += TemperatureScaling.apply(temperature: temperature, logits: applyLogits).values[0]
        }
        print("lossd temperature apply float64, \(threads) thread(s): \(format3(applyMs)) ms")
    }
    Parallel.maxThreads = saved
    if sink == 0.123 { print(sink) }
}
