import Dispatch
import LossdKernels

/// info_nce (value + gradients w.r.t. queries and keys) on N = M = 4096, D = 256 float64,
/// with 1 and 2 threads. GFLOP/s counts the three GEMMs: 2·N·M·D for S = u·vᵀ/τ and
/// 2·2·N·M·D for ∂u = G·v/τ and ∂v = Gᵀ·u/τ (normalisation and softmax are extra work).
func benchInfoNCE() {
    let n = 4096, m = 4096, d = 256
    var random = Generator(state: 7)
    let queries = Matrix(rows: n, cols: d, values: (0..<(n * d)).map { _ in Double.random(in: -1...1, using: &random) })
    let keys = Matrix(rows: m, cols: d, values: (0..<(m * d)).map { _ in Double.random(in: -1...1, using: &random) })
    let flops = Double(3 * 2 * n * m * d)
    print("== info_nce (value + gradients) on N=M=\(n), D=\(d) float64, tau 0.07, normalize")
    let savedBLAS = BLAS.threadCount, savedParallel = Parallel.maxThreads
    var sink = 0.0
    for threads in [1, 2] {
        BLAS.setThreadCount(threads)
        Parallel.maxThreads = threads
        var best = Double.infinity
        for _ in 0..<3 {
            let start = DispatchTime.now().uptimeNanoseconds
            if let output = try? InfoNCE.evaluate(queries: queries, keys: keys, parameters: .init(), gradient: true) {
                sink += output.values[0] + (output.gradients["keys"]?.values[0] ?? 0)
            }
            best = min(best, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6)
        }
        let gflops = flops / (best * 1e6)
        print("lossd info_nce float64, \(threads) thread(s): \((best * 1000).rounded() / 1000) ms, \((gflops * 1000).rounded() / 1000) GFLOP/s")
    }
    BLAS.setThreadCount(savedBLAS)
    Parallel.maxThreads = savedParallel
    if sink == 0.123 { print(sink) }
}
