#if canImport(Glibc)
    import Glibc
#endif

/// numpy's `RandomState(seed)` bit stream: MT19937 seeded with `init_genrand`, doubles
/// from `genrand_res53` (docs/aggregation.md §5).
public struct MersenneTwister: Sendable {
    private var state = [UInt32](repeating: 0, count: 624)
    private var index = 624

    public init(seed: UInt32) {
        state[0] = seed
        for i in 1..<624 {
            state[i] = 1_812_433_253 &* (state[i - 1] ^ (state[i - 1] >> 30)) &+ UInt32(i)
        }
    }

    private mutating func twist() {
        for i in 0..<624 {
            let y = (state[i] & 0x8000_0000) | (state[(i + 1) % 624] & 0x7FFF_FFFF)
            var v = state[(i + 397) % 624] ^ (y >> 1)
            if y & 1 != 0 { v ^= 0x9908_B0DF }
            state[i] = v
        }
        index = 0
    }

    public mutating func next() -> UInt32 {
        if index >= 624 { twist() }
        var y = state[index]
        index += 1
        y ^= y >> 11
        y ^= (y << 7) & 0x9D2C_5680
        y ^= (y << 15) & 0xEFC6_0000
        y ^= y >> 18
        return y
    }

    /// A double in [0, 1) with 53 random bits.
    public mutating func nextDouble() -> Double {
        let a = Double(next() >> 5), b = Double(next() >> 6)
        return (a * 67_108_864.0 + b) / 9_007_199_254_740_992.0
    }
}

/// ψ(x) for x > 0: recurrence up to 6, then the asymptotic series.
func digamma(_ x: Double) -> Double {
    var x = x
    var result = 0.0
    while x < 6 {
        result -= 1 / x
        x += 1
    }
    let f = 1 / (x * x)
    let series = f * (-1.0 / 12 + f * (1.0 / 120 + f * (-1.0 / 252 + f * (1.0 / 240 + f * (-1.0 / 132 + f * (691.0 / 32760 + f * (-1.0 / 12)))))))
    return result + log(x) - 0.5 / x + series
}

/// MACE (Hovy et al. 2013) as crowd-kit `MACE` runs it (docs/aggregation.md §5), ordering rule included.
extension Aggregation {
    public struct MACEOptions: Sendable {
        public enum Training: String, Sendable { case vb, em }
        public var restarts = 10
        public var iterations = 50
        public var training = Training.vb
        public var defaultNoise = 0.5
        public var alpha = 0.5
        public var beta = 0.5
        public var seed: UInt32 = 0
        public init() {}
    }

    public static func mace(_ data: CrowdAnnotations, options: MACEOptions = .init()) -> AggregationResult {
        let nW = data.annotatorCount
        let firstSeen = data.labelsFirstSeen
        let kp = firstSeen.count
        var code = [Int](repeating: -1, count: data.numClasses)
        for (j, l) in firstSeen.enumerated() { code[l] = j }
        let labelCode = data.labels.map { code[Int($0)] }
        // ls_c: code of the c-th smallest label; ws_r: code of the r-th smallest annotator id.
        let labelSorted = data.observedLabels.map { code[$0] }
        let workerSorted = data.annotatorSortOrder
        let smoothing = 0.01 / Double(kp)

        func initial(_ cols: Int) -> [Double] {
            var g = MersenneTwister(seed: options.seed)
            var m = [Double](repeating: 0, count: nW * cols)
            for i in 0..<m.count { m[i] = 1 + (1 + options.defaultNoise) * g.nextDouble() }
            for w in 0..<nW {
                var s = 0.0
                for c in 0..<cols { s += m[w * cols + c] }
                for c in 0..<cols { m[w * cols + c] /= s }
            }
            return m
        }

        var gold = [Double](repeating: 0, count: data.itemCount * kp)  // G_t(c) / max
        var total = [Double](repeating: 0, count: data.itemCount)  // Z_t (same scale)
        var strategy = [Double](repeating: 0, count: nW * kp)
        var knowing = [Double](repeating: 0, count: nW * 2)

        // E-step in log space with a per-item shift; every output used is scale-free.
        func eStep(_ spam: [Double], _ theta: [Double], counts: Bool) {
            // log f_a(c) = log(s₀θ(l_a)) for every c, plus log(1 + s₁/(s₀θ(l_a))) on c = l_a.
            var logG = [Double](repeating: 0, count: kp)
            for t in 0..<data.itemCount where data.annotated[t] {
                for c in 0..<kp { logG[c] = 0 }
                var common = 0.0
                let annotations = data.byItem[data.itemStart[t]..<data.itemStart[t + 1]]
                for a32 in annotations {
                    let a = Int(a32), w = Int(data.annotators[a]), l = labelCode[a]
                    let base = spam[w * 2] * theta[w * kp + l]
                    let lb = log(base)
                    common += lb
                    logG[l] += log(base + spam[w * 2 + 1]) - lb
                }
                for c in 0..<kp { logG[c] += common }
                var top = -Double.infinity
                for c in 0..<kp { top = max(top, logG[c]) }
                var z = 0.0
                for c in 0..<kp {
                    let g = exp(logG[c] - top)
                    gold[t * kp + c] = g
                    z += g
                }
                total[t] = z
            }
            guard counts else { return }
            for i in 0..<strategy.count { strategy[i] = 0 }
            for i in 0..<knowing.count { knowing[i] = 0 }
            for a in 0..<data.count {
                let t = Int(data.items[a]), w = Int(data.annotators[a]), l = labelCode[a]
                let base = spam[w * 2] * theta[w * kp + l]
                let s1 = spam[w * 2 + 1]
                // Σ_c G(c)/f_a(c): f_a(c) = base except on c = l_a.
                let ratio = (total[t] - gold[t * kp + l]) / base + gold[t * kp + l] / (base + s1)
                let r = ratio * base / total[t]
                strategy[w * kp + l] += r
                knowing[w * 2] += r
                knowing[w * 2 + 1] += gold[t * kp + l] * s1 / (base + s1) / total[t]
            }
            // crowd-kit's ordering rule: rows/columns taken in sorted-id order, positionally.
            let raw = strategy
            for r in 0..<nW {
                for c in 0..<kp { strategy[r * kp + c] = raw[workerSorted[r] * kp + labelSorted[c]] }
            }
        }

        var spam = initial(2)
        var theta = initial(kp)
        eStep(spam, theta, counts: true)
        for _ in 0..<options.iterations where !Cancellation.isCancelled {
            for w in 0..<nW {
                switch options.training {
                case .vb:
                    let k0 = knowing[w * 2], k1 = knowing[w * 2 + 1]
                    let norm = exp(digamma(k0 + k1 + options.alpha + options.beta))
                    spam[w * 2] = exp(digamma(k0 + options.alpha)) / norm
                    spam[w * 2 + 1] = exp(digamma(k1 + options.beta)) / norm
                    var s = 0.0
                    for c in 0..<kp { s += strategy[w * kp + c] + 10 }
                    let thetaNorm = exp(digamma(s))
                    for c in 0..<kp { theta[w * kp + c] = exp(digamma(strategy[w * kp + c] + 10)) / thetaNorm }
                case .em:
                    let k0 = knowing[w * 2] + smoothing, k1 = knowing[w * 2 + 1] + smoothing
                    spam[w * 2] = k0 / (k0 + k1)
                    spam[w * 2 + 1] = k1 / (k0 + k1)
                    var s = 0.0
                    for c in 0..<kp { s += strategy[w * kp + c] + smoothing }
                    for c in 0..<kp { theta[w * kp + c] = (strategy[w * kp + c] + smoothing) / s }
                }
            }
            eStep(spam, theta, counts: true)
        }
        // Every restart starts from the same seed (crowd-kit), so one run is the best one.

        var soft = Matrix(zeros: data.itemCount, data.numClasses)
        for t in 0..<data.itemCount where data.annotated[t] {
            for (j, l) in firstSeen.enumerated() { soft[t, l] = gold[t * kp + j] / total[t] }
        }
        let hard = finish(&soft, data)
        let competence = (0..<nW).map { spam[$0 * 2 + 1] }
        return AggregationResult(soft: soft, labels: hard, skill: competence, iterations: options.iterations, converged: true)
    }
}
