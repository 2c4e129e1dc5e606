import Foundation
import CLossdKernels
import LossdKernels
import Testing

/// The C row kernels (KernelLevel): the level chosen for this process against a scalar
/// float64 reference (`scripts/test.sh` runs the kernel suite again with `LOSSD_SIMD`
/// forced to each lower level the machine has), and every level's softmax, two-pass and
/// three-pass, against the reference and each other.
@Suite("Row kernels at every instruction-set level")
struct KernelLevelTests {
    /// Rows of lengths around every vector width and unroll (1…70), and long ones.
    static let lengths = Array(1...70) + [127, 128, 129, 1000, 32000]

    static func row(_ n: Int, seed: UInt64, spread: Double) -> [Double] {
        var state = seed
        return (0..<n).map { _ in
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return (Double(state >> 11) / Double(1 << 53) - 0.5) * spread
        }
    }

    /// log Σ exp, max-shifted, in float64 with libm.
    static func referenceLSE(_ x: [Double]) -> Double {
        let m = x.max()!
        return m + log(x.reduce(0.0) { $0 + exp($1 - m) })
    }

    /// Runs `body` once at the process's level (the entry points have no level argument).
    func atEveryLevel(_ body: (KernelLevel) -> Void) { body(KernelLevel.current) }

    @Test func levelsAreNamedAndTheBestIsDefault() {
        #expect(!KernelLevel.supported.isEmpty)
        #expect(KernelLevel.supported.last == KernelLevel.best)
        for level in KernelLevel.supported { #expect(["sse2", "avx2", "avx512", "neon", "generic"].contains(level.name)) }
        if ProcessInfo.processInfo.environment["LOSSD_SIMD"] == nil {
            #expect(KernelLevel.current == KernelLevel.best)
        }
        if let forced = ProcessInfo.processInfo.environment["LOSSD_SIMD"], KernelLevel.supported.contains(where: { $0.name == forced }) {
            #expect(KernelLevel.current.name == forced && KernelLevel.chosenByEnvironment)
        }
        let beyond = KernelLevel(rawValue: KernelLevel.best.rawValue + 1)
        var y = [Double](repeating: 0, count: 3)
        let refused = [1.0, 2, 3].withUnsafeBufferPointer { x in y.withUnsafeMutableBufferPointer { beyond.softmax(x, into: $0, threePass: false) } }
        #expect(!refused, "a level beyond the CPU is refused")
    }

    @Test func logSumExpMatchesTheReferenceAtEveryLevel() {
        atEveryLevel { level in
            for (i, n) in Self.lengths.enumerated() {
                for spread in [1.0, 60.0, 2000.0] {
                    let x = Self.row(n, seed: UInt64(i) &* 7919 &+ UInt64(spread), spread: spread)
                    let got = x.withUnsafeBufferPointer { TwoPassSoftmax.logSumExp($0) }
                    let want = Self.referenceLSE(x)
                    #expect(abs(got - want) <= 1e-13 * max(1, abs(want)), "\(level) n=\(n) spread=\(spread): \(got) vs \(want)")
                }
            }
        }
    }

    @Test func float32LogSumExpAtEveryLevel() {
        atEveryLevel { level in
            for n in Self.lengths {
                let x = Self.row(n, seed: UInt64(n), spread: 40).map(Float.init)
                let got = Double(x.withUnsafeBufferPointer { TwoPassSoftmax.logSumExp($0) })
                let want = Self.referenceLSE(x.map(Double.init))
                #expect(abs(got - want) <= 2e-6 * max(1, abs(want)), "\(level) n=\(n): \(got) vs \(want)")
            }
        }
    }

    @Test func exponentialsAndMaxAtEveryLevel() {
        atEveryLevel { level in
            for n in Self.lengths {
                let x = Self.row(n, seed: UInt64(n) &+ 99, spread: 80)
                var y = [Double](repeating: .nan, count: n)
                let (m, sum) = x.withUnsafeBufferPointer { xb in
                    y.withUnsafeMutableBufferPointer { TwoPassSoftmax.expAboveMax(xb, into: $0) }
                }
                #expect(m == x.max()!, "\(level) n=\(n)")
                var wantSum = 0.0
                for k in 0..<n {
                    let want = exp(x[k] - m)
                    wantSum += want
                    #expect(abs(y[k] - want) <= 2e-15 * max(want, 1e-300) + 1e-300, "\(level) n=\(n) k=\(k)")
                }
                #expect(abs(sum - wantSum) <= 1e-14 * wantSum, "\(level) n=\(n)")

                let shift = Self.referenceLSE(x)
                x.withUnsafeBufferPointer { xb in y.withUnsafeMutableBufferPointer { TwoPassSoftmax.expShifted(xb, shift: shift, into: $0) } }
                #expect(abs(y.reduce(0, +) - 1) <= 1e-13, "\(level) n=\(n): softmax sums to \(y.reduce(0, +))")
            }
        }
    }

    /// The edge rows of the float64 kernels: out of the exact range (|x| ≥ 1e15) falls back,
    /// huge negative terms flush to zero, one element.
    @Test func edgeRowsAtEveryLevel() {
        let rows: [[Double]] = [[1e300, -1e300, 0], [0, -800, -1e5, 3], [42], [-1e4, -1e4 + 1, -1e4 - 2] + Array(repeating: -1e4, count: 20)]
        atEveryLevel { level in
            for x in rows {
                let got = x.withUnsafeBufferPointer { TwoPassSoftmax.logSumExp($0) }
                let want = Self.referenceLSE(x)
                #expect(abs(got - want) <= 1e-13 * max(1, abs(want)), "\(level) \(x.prefix(4)): \(got) vs \(want)")
            }
        }
    }

    /// Every level's two-pass and three-pass softmax against softmax(x) = exp(x − LSE).
    @Test(arguments: [1, 7, 16, 33, 1000, 32000])
    func softmaxTwoAndThreePassAtEveryLevel(_ n: Int) {
        let x = Self.row(n, seed: UInt64(n) &* 31, spread: 50)
        let lse = Self.referenceLSE(x)
        let xf = x.map(Float.init)
        let lsef = Self.referenceLSE(xf.map(Double.init))
        for level in KernelLevel.supported {
            for threePass in [false, true] {
                var y = [Double](repeating: .nan, count: n)
                let ok = x.withUnsafeBufferPointer { xb in y.withUnsafeMutableBufferPointer { level.softmax(xb, into: $0, threePass: threePass) } }
                #expect(ok)
                var worst = 0.0
                for k in 0..<n { worst = max(worst, abs(y[k] - exp(x[k] - lse)) / max(exp(x[k] - lse), 1e-300)) }
                #expect(worst <= 1e-13, "\(level) threePass=\(threePass) n=\(n): relative error \(worst)")

                var yf = [Float](repeating: .nan, count: n)
                let okf = xf.withUnsafeBufferPointer { xb in yf.withUnsafeMutableBufferPointer { level.softmax(xb, into: $0, threePass: threePass) } }
                #expect(okf)
                var worstf = 0.0
                for k in 0..<n {
                    let want = exp(Double(xf[k]) - lsef)
                    guard want > 1e-30 else { continue }
                    worstf = max(worstf, abs(Double(yf[k]) - want) / want)
                }
                #expect(worstf <= 2e-5, "\(level) float32 threePass=\(threePass) n=\(n): relative error \(worstf)")
            }
        }
    }
}

/// `VectorMath.sigmoidSum` (soft top-k's threshold equation) at the process's level against
/// float64 libm, over every tail length and far into both tails of the sigmoid.
@Suite("Sigmoid sums")
struct SigmoidSumTests {
    @Test func matchesLibmOverEveryLengthAndBothTails() {
        for n in KernelLevelTests.lengths {
            for (spread, alpha, shift) in [(8.0, 1.0, 0.0), (2000.0, 3.0, -1.5), (1e-3, 50.0, 0.25)] {
                let x = KernelLevelTests.row(n, seed: UInt64(n) &* 7919, spread: spread)
                var sum = 0.0, derivatives = 0.0
                for xi in x {
                    let v = alpha * (xi + shift)
                    let sigma = v >= 0 ? 1 / (1 + exp(-v)) : exp(v) / (1 + exp(v))
                    sum += sigma
                    derivatives += sigma * (v >= 0 ? exp(-v) / (1 + exp(-v)) : 1 / (1 + exp(v)))
                }
                let got = x.withUnsafeBufferPointer { VectorMath.sigmoidSum($0, alpha: alpha, shift: shift) }
                #expect(abs(got.sum - sum) <= 1e-13 * max(1, sum), "n \(n) spread \(spread): \(got.sum) vs \(sum)")
                #expect(
                    abs(got.derivatives - derivatives) <= 1e-13 * max(1e-300, derivatives) + 1e-300,
                    "n \(n) spread \(spread): \(got.derivatives) vs \(derivatives)")
            }
        }
    }
}

/// The vector log1p on [0, 1] and the binary cross-entropy row kernel built on it, at the
/// process's level, against libm (scalar exp and log1p) element by element.
@Suite("Vector log1p and binary cross-entropy rows")
struct BinaryCrossEntropyKernelTests {
    @Test func log1pIsWithinThreeUlpsOfLibmOnTheUnitInterval() {
        var e: [Double] = [0, .leastNonzeroMagnitude, 0x1p-1074 * 3, 0x1p-60, 0x1p-53, 0x1p-52, 1e-20, 1e-8, 0.5, 1,
            0.41421356237309503, 0.41421356237309515, 0.4142135623730951, 1 - 0x1p-53]
        var generator = SplitMix64(seed: 3)
        for _ in 0..<200_000 { e.append(Double.random(in: 0...1, using: &generator)) }
        for _ in 0..<20_000 { e.append(exp(-Double.random(in: 0...745, using: &generator))) }
        var got = [Double](repeating: .nan, count: e.count)
        e.withUnsafeBufferPointer { input in got.withUnsafeMutableBufferPointer { VectorMath.log1pUnit(input, into: $0) } }
        var worst = 0.0, at = 0.0
        for (value, result) in zip(e, got) {
            let want = log1p(value)
            let ulps = want == 0 ? (result == 0 ? 0 : .infinity) : abs(result - want) / want.ulp
            if ulps > worst { (worst, at) = (ulps, value) }
        }
        #expect(worst <= 3, "worst \(worst) ulps at e = \(at)")
    }

    @Test func rowsMatchTheScalarDefinitionOverEveryTailLength() {
        for n in KernelLevelTests.lengths {
            var generator = SplitMix64(seed: UInt64(n) &+ 17)
            let x = (0..<n).map { k -> Double in
                k % 7 == 3 ? Double.random(in: -800...800, using: &generator) : Double.random(in: -12...12, using: &generator)
            }
            let t = (0..<n).map { k -> Double in k % 3 == 0 ? 0 : k % 3 == 1 ? 1 : Double.random(in: 0...1, using: &generator) }
            let w = (0..<n).map { _ in Double.random(in: 0.1...3, using: &generator) }
            let q = (0..<n).map { _ in Double.random(in: 0.5...4, using: &generator) }
            var elements = [Double](repeating: .nan, count: n), grad = [Double](repeating: .nan, count: n)
            let sum = elements.withUnsafeMutableBufferPointer { out in
                grad.withUnsafeMutableBufferPointer { g in
                    lossd_bce_row_f64(x, t, w, q, Int64(n), out.baseAddress, g.baseAddress)
                }
            }
            var total = 0.0
            for j in 0..<n {
                let e = exp(-abs(x[j])), l = log1p(e)
                var want = 0.0
                if t[j] != 0 { want += q[j] * t[j] * (max(-x[j], 0) + l) }
                if t[j] != 1 { want += (1 - t[j]) * (max(x[j], 0) + l) }
                want *= w[j]
                total += want
                let big = 1 / (1 + e), small = e / (1 + e)
                let (plus, minus) = x[j] >= 0 ? (big, small) : (small, big)
                let wantGrad = w[j] * ((1 - t[j]) * plus - q[j] * t[j] * minus)
                #expect(abs(elements[j] - want) <= 1e-14 * max(1, abs(want)), "n \(n) j \(j): \(elements[j]) vs \(want)")
                #expect(abs(grad[j] - wantGrad) <= 1e-14 * max(1, abs(wantGrad)), "n \(n) j \(j): \(grad[j]) vs \(wantGrad)")
            }
            #expect(abs(sum - total) <= 1e-13 * max(1, abs(total)), "n \(n): \(sum) vs \(total)")
        }
    }
}

/// ldr_kl's softplus_mean pass (log softplus and σ/softplus) at the process's level against
/// the scalar definitions in StableMath, from −1e300 to 1e300 and across the −20 switch.
@Suite("Vector log softplus")
struct LogSoftplusKernelTests {
    @Test func matchesTheScalarDefinitionsEverywhere() {
        var x: [Double] = [0, -20, -20.000001, -19.999999, 1e300, -1e300, 745, -745, 746, -746, 0.5413248546129181, 1e-300, -1e-300]
        var generator = SplitMix64(seed: 5)
        for n in 0..<60_000 {
            let scale = [3.0, 40.0, 1000.0, 1e6][n % 4]
            x.append(Double.random(in: -scale...scale, using: &generator))
        }
        var logSoftplus = [Double](repeating: .nan, count: x.count), ratio = logSoftplus
        logSoftplus.withUnsafeMutableBufferPointer { ls in
            ratio.withUnsafeMutableBufferPointer { r in lossd_log_softplus_f64(x, Int64(x.count), ls.baseAddress, r.baseAddress) }
        }
        for (k, v) in x.enumerated() {
            let ls = StableMath.logSoftplus(v)
            let r = exp(StableMath.logSigmoid(v) - ls)
            #expect(abs(logSoftplus[k] - ls) <= 1e-15 + 1e-14 * abs(ls), "x \(v): log softplus \(logSoftplus[k]) vs \(ls)")
            #expect(abs(ratio[k] - r) <= 1e-14 * r + 1e-300, "x \(v): ratio \(ratio[k]) vs \(r)")
        }
    }
}
