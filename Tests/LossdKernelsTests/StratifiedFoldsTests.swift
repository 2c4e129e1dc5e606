import LossdKernels
import Testing

@Suite("Stratified folds for calibrator selection")
struct StratifiedFoldsTests {
    /// Unbalanced labels: class 0 has 23 rows, class 1 has 9, class 2 has 2, class 3 has 1.
    static let labels: [Int] = {
        var rng = SplitMix64(seed: 42)
        var labels = [Int](repeating: 0, count: 23) + [Int](repeating: 1, count: 9) + [2, 2, 3]
        labels.shuffle(using: &rng)
        return labels
    }()

    @Test(arguments: [2, 3, 5, 7])
    func foldsPartitionTheRowsAndSpreadEveryClassEvenly(_ k: Int) {
        let assignment = StratifiedFolds.assign(labels: Self.labels, classes: 4, folds: k, seed: 9)
        #expect(assignment.count == Self.labels.count)
        #expect(assignment.allSatisfy { (0..<k).contains($0) })
        let members = StratifiedFolds.members(assignment, folds: k)
        // A partition: every row in exactly one fold.
        #expect(members.flatMap { $0 }.sorted() == Array(0..<Self.labels.count))
        // Fold sizes differ by at most one; so do each class's counts per fold.
        let sizes = members.map(\.count)
        #expect(sizes.max()! - sizes.min()! <= 1, "\(sizes)")
        for c in 0..<4 {
            let perFold = members.map { rows in rows.filter { Self.labels[$0] == c }.count }
            #expect(perFold.max()! - perFold.min()! <= 1, "class \(c): \(perFold)")
        }
    }

    @Test func sameSeedSameFoldsOtherSeedOtherFolds() {
        let a = StratifiedFolds.assign(labels: Self.labels, classes: 4, folds: 5, seed: 0)
        #expect(a == StratifiedFolds.assign(labels: Self.labels, classes: 4, folds: 5, seed: 0))
        #expect(a != StratifiedFolds.assign(labels: Self.labels, classes: 4, folds: 5, seed: 1))
    }

    @Test func pinnedAssignment() {
        // The documented rule (docs/calibration.md §5), pinned by an independent Python
        // transcription of it (SplitMix64, Lemire's `below`, Fisher–Yates per class, dealt
        // round-robin), so that a change to the rule is seen.
        #expect(StratifiedFolds.assign(labels: [0, 1, 0, 1, 0, 1], classes: 2, folds: 2, seed: 0) == [1, 1, 0, 0, 0, 1])
        #expect(
            StratifiedFolds.assign(labels: [0, 1, 2, 0, 1, 2, 0, 1, 2, 0], classes: 3, folds: 3, seed: 7)
                == [2, 2, 0, 0, 0, 1, 0, 1, 2, 1])
    }
}
