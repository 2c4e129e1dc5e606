import LossdKernels
import Testing

/// CrossMax (docs/ensembles.md §2): the kernel against a direct transcription of the
/// definition, and the robustness properties that set it apart from averaging logits. Each
/// property test also runs a baseline on the same data and asserts that the baseline *does*
/// change, so the perturbations are strong enough for the tests to fail.
@Suite("CrossMax kernel")
struct CrossMaxTests {
    struct SplitMix {
        var state: UInt64
        mutating func next() -> Double {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            z ^= z >> 31
            return Double(z >> 11) / Double(1 << 53)
        }
        /// Uniform in [lo, hi).
        mutating func uniform(_ lo: Double, _ hi: Double) -> Double { lo + (hi - lo) * next() }
    }

    static func random(members: Int, samples: Int, classes: Int, seed: UInt64, scale: Double = 4) -> EnsembleLogits {
        var g = SplitMix(state: seed)
        let values = (0..<(members * samples * classes)).map { _ in g.uniform(-scale, scale) }
        return EnsembleLogits(members: members, samples: samples, classes: classes, values: values)
    }

    /// The definition of docs/ensembles.md §2, literally: subtract row maxima, then class maxima
    /// over members, then sort each class's column descending and take position k (or the median).
    static func reference(_ z: EnsembleLogits, k: Int, reduce: CrossMax.Reduce) -> [Double] {
        let (mm, n, c) = (z.members, z.samples, z.classes)
        var h = z.values
        for m in 0..<mm {
            for i in 0..<n {
                let base = (m * n + i) * c
                let top = h[base..<(base + c)].max()!
                for q in 0..<c { h[base + q] -= top }
            }
        }
        var y = [Double](repeating: 0, count: n * c)
        for i in 0..<n {
            for q in 0..<c {
                let column = (0..<mm).map { h[($0 * n + i) * c + q] }
                let top = column.max()!
                let sorted = column.map { $0 - top }.sorted(by: >)
                switch reduce {
                case .kthHighest: y[i * c + q] = sorted[k - 1]
                case .median:
                    y[i * c + q] = mm % 2 == 1 ? sorted[mm / 2] : (sorted[mm / 2 - 1] + sorted[mm / 2]) / 2
                }
            }
        }
        return y
    }

    func combine(_ method: EnsembleMethod, _ z: EnsembleLogits, k: Int? = nil) throws -> EnsembleResult {
        try Ensemble.combine(method, logits: z, k: k)
    }

    @Test(arguments: [1, 2, 3, 4, 5, 8])
    func matchesTheReferenceForEveryKAndTheMedian(_ members: Int) throws {
        let z = Self.random(members: members, samples: 37, classes: 11, seed: UInt64(members))
        for k in 1...members {
            let got = try CrossMax.combine(z, k: k)
            #expect(got.scores.values == Self.reference(z, k: k, reduce: .kthHighest), "k = \(k)")
        }
        let median = try CrossMax.combine(z, reduce: .median)
        #expect(median.scores.values == Self.reference(z, k: 1, reduce: .median))
        let byDefault = try CrossMax.combine(z)
        #expect(byDefault.scores.values == Self.reference(z, k: min(3, members), reduce: .kthHighest))
    }

    @Test func largeBatchesSplitAcrossThreadsAgree() throws {
        let z = Self.random(members: 6, samples: 2000, classes: 50, seed: 9)
        let saved = Parallel.maxThreads
        defer { Parallel.maxThreads = saved }
        Parallel.maxThreads = 1
        let one = try CrossMax.combine(z)
        Parallel.maxThreads = 4
        let four = try CrossMax.combine(z)
        #expect(one == four)
        #expect(one.scores.values == Self.reference(z, k: 3, reduce: .kthHighest))
    }

    @Test func oneMemberGivesZeroScoresAndUniformProbs() throws {
        let z = Self.random(members: 1, samples: 3, classes: 4, seed: 3)
        let result = try CrossMax.combine(z)
        #expect(result.scores.values.allSatisfy { $0 == 0 })
        #expect(result.predictions == [0, 0, 0])
        #expect(result.probs.values.allSatisfy { abs($0 - 0.25) < 1e-15 })
    }

    @Test func rejectsKOutsideOneToM() {
        let z = Self.random(members: 3, samples: 2, classes: 4, seed: 4)
        #expect(throws: LossInputError(.invalidParam, field: "/params/k", "k = 4 exceeds the number of members (3)")) {
            try CrossMax.combine(z, k: 4)
        }
        #expect(throws: LossInputError.self) { try CrossMax.combine(z, k: 0) }
        #expect(throws: LossInputError(.invalidInput, field: "/weights", "weights are not supported by crossmax")) {
            try Ensemble.combine(.crossmax, logits: z, weights: [1, 1, 1])
        }
    }

    // MARK: Invariances

    /// Adds `shift(m, i)` to every logit of member m for sample i.
    static func shiftingMembers(_ z: EnsembleLogits, _ shift: (Int, Int) -> Double) -> EnsembleLogits {
        var out = z
        for m in 0..<z.members {
            for i in 0..<z.samples {
                let s = shift(m, i), base = (m * z.samples + i) * z.classes
                for q in 0..<z.classes { out.values[base + q] += s }
            }
        }
        return out
    }

    @Test func addingAConstantToOneMembersLogitsChangesNothing() throws {
        let z = Self.random(members: 5, samples: 200, classes: 10, seed: 11)
        var g = SplitMix(state: 99)
        // A different large constant per sample, on member 2 only.
        let shifts = (0..<z.samples).map { _ in g.uniform(-1000, 1000) }
        let shifted = Self.shiftingMembers(z) { m, i in m == 2 ? shifts[i] : 0 }
        let before = try CrossMax.combine(z), after = try CrossMax.combine(shifted)
        #expect(after.predictions == before.predictions)
        for (a, b) in zip(after.scores.values, before.scores.values) { #expect(abs(a - b) <= 1e-9) }
        // Averaging logits shares this invariance (every class moves by ω·constant), so it
        // cannot fail here; the median of logits does not, and the same shift moves it.
        let medianBefore = try combine(.medianLogits, z), medianAfter = try combine(.medianLogits, shifted)
        #expect(medianAfter.predictions != medianBefore.predictions)
        #expect(try combine(.meanLogits, shifted).predictions == combine(.meanLogits, z).predictions)
    }

    @Test func permutingMembersChangesNothing() throws {
        let z = Self.random(members: 5, samples: 50, classes: 7, seed: 12)
        let order = [3, 0, 4, 1, 2]
        var permuted = z
        let block = z.samples * z.classes
        for (to, from) in order.enumerated() {
            for j in 0..<block { permuted.values[to * block + j] = z.values[from * block + j] }
        }
        #expect(try CrossMax.combine(permuted) == CrossMax.combine(z))
    }

    @Test func scalingScalesTheScores() throws {
        let z = Self.random(members: 4, samples: 30, classes: 6, seed: 13)
        var scaled = z
        for j in scaled.values.indices { scaled.values[j] *= 8 }  // a power of two: exact
        let base = try CrossMax.combine(z), big = try CrossMax.combine(scaled)
        #expect(big.predictions == base.predictions)
        #expect(big.scores.values == base.scores.values.map { $0 * 8 })
    }

    /// Adds a constant to one class across all members, per sample: the largest constant
    /// that leaves that class below every member's top class (so no member's maximum moves).
    /// Step 2 then removes it exactly; an average of logits moves towards that class.
    @Test func raisingOneClassAcrossAllMembersChangesNothing() throws {
        let z = Self.random(members: 5, samples: 200, classes: 10, seed: 21)
        var raised = z
        let (mm, n, c) = (z.members, z.samples, z.classes)
        for i in 0..<n {
            let rows = (0..<mm).map { m in Array(z.values[((m * n + i) * c)..<((m * n + i + 1) * c)]) }
            let tops = Set(rows.map { $0.firstIndex(of: $0.max()!)! })
            let target = (0..<c).first { !tops.contains($0) }!  // no member's top class (C > M)
            let gap = rows.map { $0.max()! - $0[target] }.min()!
            for m in 0..<mm { raised.values[(m * n + i) * c + target] += 0.999 * gap }
        }
        for k in 1...mm {
            let before = try CrossMax.combine(z, k: k), after = try CrossMax.combine(raised, k: k)
            #expect(after.predictions == before.predictions, "k = \(k)")
            for (a, b) in zip(after.scores.values, before.scores.values) { #expect(abs(a - b) <= 1e-12) }
        }
        let meanBefore = try combine(.meanLogits, z), meanAfter = try combine(.meanLogits, raised)
        let moved = zip(meanBefore.predictions, meanAfter.predictions).filter { $0 != $1 }.count
        #expect(moved > 20, "mean_logits changed \(moved) of \(n) predictions")
    }

    /// The invariance above needs the class to stay below each member's top: once a constant
    /// makes it every member's top class, CrossMax (like any ensemble) predicts it.
    @Test func aClassEveryMemberRanksFirstWins() throws {
        let z = Self.random(members: 5, samples: 20, classes: 6, seed: 22)
        let raised = Self.shiftingClass(z, member: nil, class: 4, by: 100)
        #expect(try CrossMax.combine(raised).predictions == [Int](repeating: 4, count: 20))
    }

    static func shiftingClass(_ z: EnsembleLogits, member: Int?, class q: Int, by amount: Double) -> EnsembleLogits {
        var out = z
        for m in 0..<z.members where member == nil || member == m {
            for i in 0..<z.samples { out.values[(m * z.samples + i) * z.classes + q] += amount }
        }
        return out
    }

    /// Four honest members agree (noisily) on the true class; a fifth puts 1e6 on another
    /// class. CrossMax keeps the honest answer on every sample; the mean of logits follows
    /// the loud member on every sample.
    @Test func oneMemberWithHugeLogitsCannotTakeOverTheVote() throws {
        let (mm, n, c) = (5, 100, 8)
        var g = SplitMix(state: 31)
        let truth = (0..<n).map { _ in Int(g.next() * Double(c)) }
        var values = (0..<(mm * n * c)).map { _ in g.uniform(-1, 1) }
        for m in 0..<mm {
            for i in 0..<n {
                let base = (m * n + i) * c
                if m == 0 {
                    values[base + (truth[i] + 1) % c] += 1e6  // the loud member's wrong class
                } else {
                    values[base + truth[i]] += 5
                }
            }
        }
        let z = EnsembleLogits(members: mm, samples: n, classes: c, values: values)
        // k = 1 is degenerate (every score is 0, so class 0 wins); k = 2, 3 and the median hold.
        for k in 2...3 {
            #expect(try CrossMax.combine(z, k: k).predictions == truth, "k = \(k)")
        }
        #expect(try CrossMax.combine(z, reduce: .median).predictions == truth)
        let loud = truth.map { ($0 + 1) % c }
        #expect(try combine(.meanLogits, z).predictions == loud)
    }
}
