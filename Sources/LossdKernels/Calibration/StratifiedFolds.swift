/// Stratified k-fold assignment for calibrator selection (docs/calibration.md §5).
///
/// The rule, deterministic for a seed: one `SplitMix64(seed)` stream; for each class in
/// ascending order, that class's rows (in index order) are shuffled by Fisher–Yates
/// (`i` from the last down to 1, swapped with `below(i + 1)`), and the shuffled rows of
/// every class, concatenated class after class, are dealt to the folds in turn
/// (position p goes to fold p mod k). So each class is spread over the folds as evenly
/// as possible (its counts differ by at most one between folds), and the folds' sizes
/// differ by at most one: with k ≤ N no fold is empty.
public enum StratifiedFolds {
    /// The fold (0..<k) of every row. `labels` must lie in 0..<classes (negative labels
    /// are treated as class 0's neighbours: they are dealt first, in index order).
    public static func assign(labels: [Int], classes: Int, folds k: Int, seed: UInt64) -> [Int] {
        precondition(k >= 1, "at least one fold")
        var byClass = [[Int]](repeating: [], count: max(classes, 1))
        for (row, y) in labels.enumerated() {
            byClass[min(max(y, 0), byClass.count - 1)].append(row)
        }
        var rng = SplitMix64(seed: seed)
        var fold = [Int](repeating: 0, count: labels.count)
        var position = 0
        for var rows in byClass {
            if rows.count > 1 {
                for i in stride(from: rows.count - 1, through: 1, by: -1) {
                    rows.swapAt(i, rng.below(i + 1))
                }
            }
            for row in rows {
                fold[row] = position % k
                position += 1
            }
        }
        return fold
    }

    /// The rows of each fold, in ascending row order.
    public static func members(_ assignment: [Int], folds k: Int) -> [[Int]] {
        var members = [[Int]](repeating: [], count: k)
        for (row, f) in assignment.enumerated() where f >= 0 && f < k { members[f].append(row) }
        return members
    }
}
