/// The group-balanced reduction of multi-task fine-tuning (Liu et al. 2023, "MFTCoder:
/// Boosting Code LLMs with Multitask Fine-Tuning"): every task (group) weighs the same in
/// the loss, however many rows it has.
///
///     value = (1/G) · Σ_g S_g / D_g,   S_g = Σ_{r∈g} s_r·ℓ_r,   D_g = Σ_{r∈g} s_r·d_r
///
/// over the G distinct group ids, with `s_r` the sample weights (default 1) and `d_r` the
/// row's share of the mean divisor (as for `mean`). A group whose divisor is 0 (all its
/// weights 0) contributes 0 and still counts in G. The gradient of row r is the gradient
/// of ℓ_r times s_r / (G·D_g). Only for row-separable losses, whose rows do not interact.
public struct GroupMean: Sendable, Equatable {
    /// The value: the mean of the group means.
    public var value: Double
    /// Each group's mean S_g / D_g (0 when D_g = 0), in ascending group id.
    public var groupValues: [Double]
    /// The distinct group ids, ascending.
    public var groupIDs: [Int]
}

extension LossOutput {
    /// Reduces by group (see `GroupMean`) and scales the gradients in place so they become
    /// gradients of the value. `groups` has one id per row (the caller checks the count).
    /// Throws `overflow` when the value or a gradient is not finite.
    public mutating func reduceByGroup(_ groups: [Int], sampleWeights: [Double]?) throws(LossInputError) -> GroupMean {
        let n = values.count
        precondition(groups.count == n, "one group id per row")
        let ids = Array(Set(groups)).sorted()
        var slot: [Int: Int] = [:]
        for (i, id) in ids.enumerated() { slot[id] = i }
        let rowSlots = groups.map { slot[$0] ?? 0 }
        var sums = [Double](repeating: 0, count: ids.count), divisors = sums
        for r in 0..<n {
            let s = sampleWeights?[r] ?? 1
            if s != 0 { sums[rowSlots[r]] += s * values[r] }
            divisors[rowSlots[r]] += s * denominators[r]
        }
        let groupCount = Double(max(ids.count, 1))
        let groupValues = zip(sums, divisors).map { $1 == 0 ? 0 : $0 / $1 }
        let value = groupValues.reduce(0, +) / groupCount
        // Row r's factor s_r / (G·D_g): 0 in a group without weight.
        var factors = [Double](repeating: 0, count: n)
        for r in 0..<n {
            let divisor = divisors[rowSlots[r]]
            factors[r] = divisor == 0 ? 0 : (sampleWeights?[r] ?? 1) / (groupCount * divisor)
        }
        for name in Array(gradients.keys) {
            guard gradients[name]?.scaleRows(by: factors, rows: n, times: 1) ?? true else { throw .overflow }
        }
        guard value.isFinite, groupValues.allFinite else { throw .overflow }
        return GroupMean(value: value, groupValues: groupValues, groupIDs: ids)
    }
}
