/// CrossMax (Fort & Lakshminarayanan 2024; docs/ensembles.md §2): per sample, subtract each
/// member's max over classes, then each class's max over members, then pool every class over
/// members with the k-th largest value (or the median).
///
/// Step 2 subtracts one constant per class, which keeps the order of that class's values
/// over members, so the k-th largest of step 2's values is the k-th largest of step 1's
/// minus the class's max (rounding is monotone, so this is exact). The kernel therefore
/// keeps, per class, the K largest step-1 values in a sorted column (a branch-free
/// insertion: max/min swaps down the K slots, SIMD across classes) and needs one read of
/// each member row.
public enum CrossMax {
    /// Step 3's pooling: the k-th largest value, or NumPy's median (the mean of the two
    /// middle values for even M).
    public enum Reduce: String, Sendable, CaseIterable {
        case kthHighest = "kth_highest"
        case median
    }

    /// The authors' default: the 3rd highest, or M when there are fewer members.
    public static func defaultK(members: Int) -> Int { members >= 3 ? 3 : members }

    /// CrossMax scores, predictions and softmax probabilities of `logits` (validated by the
    /// caller or here). An explicit `k` must lie in [1, M].
    public static func combine(_ logits: EnsembleLogits, k: Int? = nil, reduce: Reduce = .kthHighest) throws(LossInputError) -> EnsembleResult {
        try Ensemble.validate(logits)
        let members = logits.members
        let k = k ?? defaultK(members: members)
        guard k >= 1 else {
            throw LossInputError(.invalidParam, field: "/params/k", "`k` must be in [1, \(members)] (got \(k))")
        }
        guard k <= members else {
            throw LossInputError(.invalidParam, field: "/params/k", "k = \(k) exceeds the number of members (\(members))")
        }
        let n = logits.samples, c = logits.classes
        var scores = [Double](repeating: 0, count: n * c)
        var probs = [Double](repeating: 0, count: n * c)
        var predictions = [Int](repeating: 0, count: n)
        // How many of the largest values per class step 3 needs.
        let kept = reduce == .median ? members / 2 + 1 : k
        scores.withUnsafeMutableBufferPointer { scoresOut in
            probs.withUnsafeMutableBufferPointer { probsOut in
                predictions.withUnsafeMutableBufferPointer { predictionsOut in
                    logits.values.withUnsafeBufferPointer { z in
                        Parallel.forEachRange(n, costPerRow: members * c * (kept + 1)) { range in
                            // top[j * c + q]: the (j+1)-th largest step-1 value of class q so far.
                            var top = [Double](repeating: 0, count: kept * c)
                            var carry = [Double](repeating: 0, count: c)
                            top.withUnsafeMutableBufferPointer { top in
                                carry.withUnsafeMutableBufferPointer { carry in
                                    for i in range {
                                        for slot in 0..<(kept * c) { top[slot] = -.infinity }
                                        for m in 0..<members {
                                            insert(z.row(m * n + i, width: c), into: top, kept: kept, carry: carry)
                                        }
                                        let out = UnsafeMutableBufferPointer(rebasing: scoresOut[(i * c)..<((i + 1) * c)])
                                        pool(top, kept: kept, members: members, k: k, reduce: reduce, into: out)
                                        Ensemble.finish(
                                            UnsafeBufferPointer(out), rule: .softmaxOfScores, predictionOut: &predictionsOut[i],
                                            probsOut: UnsafeMutableBufferPointer(rebasing: probsOut[(i * c)..<((i + 1) * c)]))
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        return EnsembleResult(
            scores: Matrix(rows: n, cols: c, values: scores), predictions: predictions,
            probs: Matrix(rows: n, cols: c, values: probs))
    }

    /// Step 1 for one member row (x − max x) inserted into the per-class sorted columns of
    /// the `kept` largest values: each slot keeps the larger of itself and the carried
    /// value and passes the smaller one down.
    @inline(__always)
    static func insert(
        _ row: UnsafeBufferPointer<Double>, into top: UnsafeMutableBufferPointer<Double>, kept: Int,
        carry: UnsafeMutableBufferPointer<Double>
    ) {
        let c = row.count
        var rowMax = row[0]
        for q in 1..<c where row[q] > rowMax { rowMax = row[q] }
        for q in 0..<c { carry[q] = row[q] - rowMax }
        for j in 0..<kept {
            let slot = UnsafeMutableBufferPointer(rebasing: top[(j * c)..<((j + 1) * c)])
            for q in 0..<c {
                let t = slot[q], x = carry[q]
                slot[q] = t > x ? t : x
                carry[q] = t > x ? x : t
            }
        }
    }

    /// Steps 2 and 3 from the sorted columns: Y = (k-th largest) − (largest), or the median
    /// of the step-2 values.
    @inline(__always)
    static func pool(
        _ top: UnsafeMutableBufferPointer<Double>, kept: Int, members: Int, k: Int, reduce: Reduce,
        into out: UnsafeMutableBufferPointer<Double>
    ) {
        let c = out.count
        switch reduce {
        case .kthHighest:
            for q in 0..<c { out[q] = top[(k - 1) * c + q] - top[q] }
        case .median where members % 2 == 1:
            let middle = members / 2
            for q in 0..<c { out[q] = top[middle * c + q] - top[q] }
        case .median:
            let upper = members / 2 - 1, lower = members / 2
            for q in 0..<c { out[q] = ((top[upper * c + q] - top[q]) + (top[lower * c + q] - top[q])) / 2 }
        }
    }
}
