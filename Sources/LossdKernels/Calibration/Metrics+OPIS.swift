/// Operating-Point-Inconsistency Score (Zhang et al. 2024; docs/calibration.md §2.9).
extension CalibrationMetrics {
    /// How a pair's operating characteristics become one utility per threshold.
    public enum OPISUtility: String, Sendable, CaseIterable {
        /// Harmonic mean of TPR and TNR (0 when both are 0).
        case hmeanTPRTNR = "hmean_tpr_tnr"
        /// Pair F1, `2TP / (2TP + FP + FN)` (0 when TP = 0).
        case f1
    }

    /// An OPIS value with the classes it averaged over and those it skipped (no positive
    /// or no negative pair), both ascending.
    public struct OPISResult: Sendable, Equatable {
        public var value: Double
        public var classesUsed: [Int]
        public var classesSkipped: [Int]
    }

    /// `n` evenly spaced values from `start` to `stop` inclusive (numpy.linspace: i·step + start,
    /// the last value exactly `stop`).
    public static func linspace(_ start: Double, _ stop: Double, count n: Int) -> [Double] {
        guard n > 1 else { return n == 1 ? [start] : [] }
        let step = (stop - start) / Double(n - 1)
        var values = (0..<n).map { Double($0) * step + start }
        values[n - 1] = stop
        return values
    }

    /// OPIS of an N×N pair-score matrix (row-major; only the upper triangle i < j is read).
    /// A pair is accepted at threshold d when its score ≥ d (`higherIsSimilar`, similarities)
    /// or ≤ d (distances). Requires N = labels.count and `scores.count` = N².
    public static func opis(
        scores: [Double], labels: [Int], dMin: Double, dMax: Double, thresholds: Int = 101,
        utility: OPISUtility = .hmeanTPRTNR, higherIsSimilar: Bool = true
    ) -> OPISResult {
        let n = labels.count
        let classes = Array(Set(labels)).sorted()
        var slot: [Int: Int] = [:]
        for (k, c) in classes.enumerated() { slot[c] = k }
        var positives = [[Double]](repeating: [], count: classes.count)
        var negatives = [[Double]](repeating: [], count: classes.count)
        for i in 0..<n {
            let a = slot[labels[i]]!
            for j in (i + 1)..<max(n, i + 1) {
                let s = scores[i * n + j]
                let b = slot[labels[j]]!
                if a == b {
                    positives[a].append(s)
                } else {
                    negatives[a].append(s)
                    negatives[b].append(s)
                }
            }
        }
        let ds = linspace(dMin, dMax, count: thresholds)
        var utilities: [[Double]] = []
        var used: [Int] = [], skipped: [Int] = []
        for (k, c) in classes.enumerated() {
            guard !positives[k].isEmpty, !negatives[k].isEmpty else {
                skipped.append(c)
                continue
            }
            let pos = positives[k].sorted(), neg = negatives[k].sorted()
            var row: [Double] = []
            row.reserveCapacity(ds.count)
            for d in ds {
                let tp = accepted(pos, d, higherIsSimilar), fp = accepted(neg, d, higherIsSimilar)
                switch utility {
                case .hmeanTPRTNR:
                    let tpr = Double(tp) / Double(pos.count)
                    let tnr = 1.0 - Double(fp) / Double(neg.count)
                    row.append(tpr + tnr == 0 ? 0 : 2 * tpr * tnr / (tpr + tnr))
                case .f1:
                    let fn = pos.count - tp
                    row.append(tp == 0 ? 0 : Double(2 * tp) / Double(2 * tp + fp + fn))
                }
            }
            utilities.append(row)
            used.append(c)
        }
        guard utilities.count >= 2 else { return OPISResult(value: 0, classesUsed: used, classesSkipped: skipped) }
        var total = 0.0
        for t in ds.indices {
            var mean = 0.0
            for row in utilities { mean += row[t] }
            mean /= Double(utilities.count)
            for row in utilities {
                let d = row[t] - mean
                total += d * d
            }
        }
        return OPISResult(value: total / Double(utilities.count * ds.count), classesUsed: used, classesSkipped: skipped)
    }

    /// How many of the ascending `sorted` scores are accepted at threshold d.
    private static func accepted(_ sorted: [Double], _ d: Double, _ higherIsSimilar: Bool) -> Int {
        // First index whose value is ≥ d (similarity) or > d (distance).
        var lo = 0, hi = sorted.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if higherIsSimilar ? sorted[mid] < d : sorted[mid] <= d { lo = mid + 1 } else { hi = mid }
        }
        return higherIsSimilar ? sorted.count - lo : lo
    }
}
