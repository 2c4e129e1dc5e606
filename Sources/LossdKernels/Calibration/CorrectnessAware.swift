#if canImport(Glibc)
    import Glibc
#endif

/// Correctness-aware calibration (Liu et al. 2024; docs/calibration.md §3.6), the service's
/// deterministic variant: a per-sample temperature
/// `T_i = clamp(w₂ᵀ ReLU(W₁ φ_i + b₁) + b₂, t_min, t_max)` read from the softmax of
/// transformed views at view 0's top-k classes, trained with the
/// class-balanced CA loss by full-batch Adam from a SplitMix64 initialisation.
public enum CorrectnessAware {
    public static let method = "correctness_aware"

    /// The stream of docs/calibration.md §3.6 (kept under this name for its callers).
    public typealias SplitMix64 = LossdKernels.SplitMix64

    /// The network's parameters.
    public struct Network: Sendable, Equatable {
        public var w1: Matrix  // hidden × D
        public var b1: [Double]
        public var w2: [Double]
        public var b2: Double
        public var k: Int
        public var tMin: Double
        public var tMax: Double

        public init(w1: Matrix, b1: [Double], w2: [Double], b2: Double, k: Int, tMin: Double, tMax: Double) {
            self.w1 = w1
            self.b1 = b1
            self.w2 = w2
            self.b2 = b2
            self.k = k
            self.tMin = tMin
            self.tMax = tMax
        }

        public var model: CalibratorModel {
            CalibratorModel(
                method: CorrectnessAware.method, classes: 0,
                parameters: [
                    "W1": .matrix(w1), "b1": .vector(b1), "w2": .vector(w2), "b2": .number(b2),
                    "k": .number(Double(k)), "t_min": .number(tMin), "t_max": .number(tMax),
                ])
        }

        public init?(_ model: CalibratorModel) {
            guard case .matrix(let w1)? = model.parameters["W1"], case .vector(let b1)? = model.parameters["b1"],
                case .vector(let w2)? = model.parameters["w2"], case .number(let b2)? = model.parameters["b2"],
                case .number(let k)? = model.parameters["k"], case .number(let tMin)? = model.parameters["t_min"],
                case .number(let tMax)? = model.parameters["t_max"], k >= 1, k < 1e9
            else { return nil }
            self.init(w1: w1, b1: b1, w2: w2, b2: b2, k: Int(k), tMin: tMin, tMax: tMax)
        }
    }

    /// Views [V][N][C] as shape and values.
    static func dims(_ views: Tensor) -> (v: Int, n: Int, c: Int) {
        (views.shape[0], views.shape[1], views.shape[2])
    }

    /// Features φ [N][(V−1)·min(k, C)].
    public static func features(views: Tensor, k: Int) -> Matrix {
        let (v, n, c) = dims(views)
        let kk = min(k, c)
        let d = (v - 1) * kk
        var out = Matrix(zeros: n, d)
        guard d > 0 else { return out }
        views.values.withUnsafeBufferPointer { z in
            out.values.withUnsafeMutableBufferPointer { fb in
                let base = fb.baseAddress!
                Parallel.forEachRange(n, costPerRow: 4 * c * v) { range in
                    var p = [Double](repeating: 0, count: c)
                    p.withUnsafeMutableBufferPointer { pb in
                        for i in range {
                            let row0 = UnsafeBufferPointer(rebasing: z[(i * c)..<((i + 1) * c)])
                            let idx = topK(row0, kk)
                            for view in 1..<v {
                                let off = (view * n + i) * c
                                SoftmaxRows.softmax(UnsafeBufferPointer(rebasing: z[off..<(off + c)]), into: pb)
                                for (t, j) in idx.enumerated() { base[i * d + (view - 1) * kk + t] = pb[j] }
                            }
                        }
                    }
                }
            }
        }
        return out
    }

    /// Indices of the k largest entries, larger first, lower index first on ties.
    static func topK(_ row: UnsafeBufferPointer<Double>, _ k: Int) -> [Int] {
        var chosen: [Int] = []
        chosen.reserveCapacity(k)
        var taken = [Bool](repeating: false, count: row.count)
        for _ in 0..<k {
            var best = -1
            for j in 0..<row.count where !taken[j] {
                if best < 0 || row[j] > row[best] { best = j }
            }
            taken[best] = true
            chosen.append(best)
        }
        return chosen
    }

    /// Forward pass: pre-activations, activations, raw and clamped temperatures.
    static func forward(_ net: Network, _ f: Matrix) -> (hPre: [Double], h: [Double], tRaw: [Double], t: [Double]) {
        let n = f.rows, d = f.cols, hidden = net.b1.count
        var hPre = [Double](repeating: 0, count: n * hidden), h = hPre
        var tRaw = [Double](repeating: 0, count: n), t = tRaw
        for i in 0..<n {
            var acc = net.b2
            for u in 0..<hidden {
                var s = net.b1[u]
                for j in 0..<d { s += f.values[i * d + j] * net.w1.values[u * d + j] }
                hPre[i * hidden + u] = s
                let a = max(s, 0)
                h[i * hidden + u] = a
                acc += a * net.w2[u]
            }
            tRaw[i] = acc
            t[i] = min(max(acc, net.tMin), net.tMax)
        }
        return (hPre, h, tRaw, t)
    }

    /// softmax(z₀ / T_i) row-wise for view 0.
    static func scaledSoftmax(views: Tensor, temperatures t: [Double]) -> Matrix {
        let (_, n, c) = dims(views)
        var out = Matrix(zeros: n, c)
        views.values.withUnsafeBufferPointer { z in
            out.values.withUnsafeMutableBufferPointer { pb in
                let base = pb.baseAddress!
                Parallel.forEachRange(n, costPerRow: 5 * c) { range in
                    var s = [Double](repeating: 0, count: c)
                    s.withUnsafeMutableBufferPointer { sb in
                        for i in range {
                            for j in 0..<c { sb[j] = z[i * c + j] / t[i] }
                            SoftmaxRows.softmax(UnsafeBufferPointer(sb), into: UnsafeMutableBufferPointer(start: base + i * c, count: c))
                        }
                    }
                }
            }
        }
        return out
    }

    /// Result of a fit: the network and the CA loss before the first and after the last step.
    public struct Fit: Sendable {
        public var network: Network
        public var lossFirst: Double
        public var lossFinal: Double
        public var features: Matrix
    }

    /// Trains the calibrator on views [V][N][C] and labels.
    public static func train(
        views: Tensor, labels: [Int], k: Int = 4, hidden: Int = 5, steps: Int = 500, lr: Double = 1e-3,
        seed: UInt64 = 1, tMin: Double = 0.1, tMax: Double = 10
    ) throws(SoftmaxCalibrationError) -> Fit {
        let (_, n, c) = dims(views)
        let f = features(views: views, k: k)
        let d = f.cols
        var rng = SplitMix64(seed: seed)
        let bw1 = 1 / Double(max(d, 1)).squareRoot()
        var w1 = Matrix(zeros: hidden, d)
        for q in 0..<(hidden * d) { w1.values[q] = rng.uniform(-bw1, bw1) }
        let b1 = (0..<hidden).map { _ in rng.uniform(-bw1, bw1) }
        let bw2 = 1 / Double(hidden).squareRoot()
        let w2 = (0..<hidden).map { _ in rng.uniform(-bw2, bw2) }
        var net = Network(w1: w1, b1: b1, w2: w2, b2: 1, k: k, tMin: tMin, tMax: tMax)

        // Correctness of view 0's argmax and the class-balancing weights.
        var pred = [Int](repeating: 0, count: n)
        var correct = [Double](repeating: 0, count: n)
        views.values.withUnsafeBufferPointer { z in
            for i in 0..<n {
                pred[i] = SoftmaxRows.argmax(UnsafeBufferPointer(rebasing: z[(i * c)..<((i + 1) * c)]))
                correct[i] = pred[i] == labels[i] ? 1 : 0
            }
        }
        let acc = correct.reduce(0, +) / Double(n)
        let weights = (acc == 0 || acc == 1) ? [Double](repeating: 1, count: n) : correct.map { $0 == 1 ? 1 - acc : acc }
        let wsum = weights.reduce(0, +)

        // Parameter vector layout: W1 | b1 | w2 | b2.
        let np = hidden * d + 2 * hidden + 1
        func pack(_ net: Network) -> [Double] { net.w1.values + net.b1 + net.w2 + [net.b2] }
        func unpack(_ x: [Double]) -> Network {
            var out = net
            out.w1.values = Array(x[0..<(hidden * d)])
            out.b1 = Array(x[(hidden * d)..<(hidden * d + hidden)])
            out.w2 = Array(x[(hidden * d + hidden)..<(hidden * d + 2 * hidden)])
            out.b2 = x[np - 1]
            return out
        }
        func lossAndGradient(_ net: Network) -> (Double, [Double]) {
            let (hPre, h, tRaw, t) = forward(net, f)
            let p = scaledSoftmax(views: views, temperatures: t)
            var loss = 0.0
            var g = [Double](repeating: 0, count: np)
            let offB1 = hidden * d, offW2 = offB1 + hidden
            for i in 0..<n {
                let a = pred[i]
                let conf = p.values[i * c + a]
                let r = conf - correct[i]
                loss += weights[i] * r * r
                guard tRaw[i] > tMin && tRaw[i] < tMax else { continue }
                let dconf = 2 * weights[i] * r / wsum
                var ez = 0.0
                for j in 0..<c { ez += p.values[i * c + j] * views.values[i * c + j] }
                let dT = dconf * conf * (ez - views.values[i * c + a]) / (t[i] * t[i])
                g[np - 1] += dT
                for u in 0..<hidden {
                    g[offW2 + u] += h[i * hidden + u] * dT
                    guard hPre[i * hidden + u] > 0 else { continue }
                    let dh = dT * net.w2[u]
                    g[offB1 + u] += dh
                    for j in 0..<d { g[u * d + j] += dh * f.values[i * d + j] }
                }
            }
            return (loss / wsum, g)
        }

        var x = pack(net)
        var m = [Double](repeating: 0, count: np), v = m
        let beta1 = 0.9, beta2 = 0.999, eps = 1e-8
        var lossFirst = Double.nan
        for step in 1...max(1, steps) where steps > 0 {
            let (loss, g) = lossAndGradient(unpack(x))
            if step == 1 {
                lossFirst = loss
                guard loss.isFinite else { throw .nonFiniteLoss }
            }
            guard g.allSatisfy({ $0.isFinite }) else { break }
            let c1 = 1 - pow(beta1, Double(step)), c2 = 1 - pow(beta2, Double(step))
            for q in 0..<np {
                m[q] = beta1 * m[q] + (1 - beta1) * g[q]
                v[q] = beta2 * v[q] + (1 - beta2) * g[q] * g[q]
                x[q] -= lr * (m[q] / c1) / ((v[q] / c2).squareRoot() + eps)
            }
        }
        net = unpack(x)
        let lossFinal = lossAndGradient(net).0
        if steps == 0 {
            lossFirst = lossFinal
            guard lossFinal.isFinite else { throw .nonFiniteLoss }
        }
        return Fit(network: net, lossFirst: lossFirst, lossFinal: lossFinal, features: f)
    }

    /// Fits and wraps the result as a stored model with a report.
    public static func fit(
        views: Tensor, labels: [Int], k: Int = 4, hidden: Int = 5, steps: Int = 500, lr: Double = 1e-3,
        seed: UInt64 = 1, tMin: Double = 0.1, tMax: Double = 10
    ) throws(SoftmaxCalibrationError) -> (CalibratorModel, FitReport) {
        let result = try train(views: views, labels: labels, k: k, hidden: hidden, steps: steps, lr: lr, seed: seed, tMin: tMin, tMax: tMax)
        var model = result.network.model
        model = CalibratorModel(method: method, classes: views.shape[2], parameters: model.parameters)
        let notes: [String: CalibratorValue] = [
            "loss_first": .number(result.lossFirst), "loss_final": .number(result.lossFinal),
        ]
        return (model, FitReport(iterations: steps, converged: true, notes: notes))
    }

    /// Per-sample temperatures and calibrated probabilities of view 0.
    public static func apply(_ net: Network, views: Tensor) -> (probs: Matrix, temperatures: [Double]) {
        let f = features(views: views, k: net.k)
        let t = forward(net, f).t
        return (scaledSoftmax(views: views, temperatures: t), t)
    }

    /// Number of views the network expects for `classes` columns.
    public static func expectedViews(_ net: Network, classes: Int) -> Int {
        net.w1.cols / max(1, min(net.k, classes)) + 1
    }
}
