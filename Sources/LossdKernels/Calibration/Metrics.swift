#if canImport(Glibc)
    import Glibc
#endif

/// How a value is assigned to one of B equal-width bins (docs/calibration.md §2.1).
public enum BinRule: String, Sendable, CaseIterable {
    /// [e_j, e_{j+1}), the last bin closed (numpy.histogram, netcal).
    case left
    /// (e_j, e_{j+1}], the first bin closed (scikit-learn `calibration_curve`).
    case right
    /// [e_j, e_{j+1}) plus an extra bin B holding the values ≥ 1.0 (torchmetrics).
    case torchmetrics

    /// Number of bin slots for B requested bins (B + 1 under `torchmetrics`).
    public func slots(bins: Int) -> Int { self == .torchmetrics ? bins + 1 : bins }
}

/// Calibration metrics of a probability matrix against hard labels (docs/calibration.md
/// §1-§2). Inputs are assumed valid: N ≥ 1 rows, C ≥ 2 columns, labels in [0, C),
/// finite values; the service validates before calling.
public enum CalibrationMetrics {
    /// Machine epsilon of float64, scikit-learn's clip for log-probabilities.
    public static let epsilon = 2.220446049250313e-16

    // MARK: - Softmax

    /// Row-wise softmax of logits (stable; Two-Pass kernel for the log-sum-exp).
    /// The same row kernel as `SoftmaxRows.softmax` (rows are independent, so the split
    /// across cores does not change a bit).
    public static func softmax(_ logits: Matrix) -> Matrix {
        SoftmaxRows.softmax(logits)
    }

    /// Row-wise log-softmax of logits, `(z_k − max) − excess`.
    public static func logSoftmax(_ logits: Matrix) -> Matrix {
        logits.mapRows(costPerEntry: 4) { TwoPassSoftmax.logSoftmax($0, into: $1) }
    }

    // MARK: - Bins

    /// Bin edges e_0..e_B with e_j = j · (1/B) and e_B = 1 (numpy.linspace).
    public static func edges(bins: Int) -> [Double] {
        let step = 1.0 / Double(bins)
        var e = (0...bins).map { Double($0) * step }
        e[bins] = 1.0
        return e
    }

    /// Bin id of `value` under `rule` with the given edges (count B + 1).
    @inline(__always)
    public static func binIndex(_ value: Double, edges: [Double], rule: BinRule) -> Int {
        let b = edges.count - 1
        switch rule {
        case .left:
            // number of inner edges ≤ value
            return countInner(edges, b) { $0 <= value }
        case .right:
            return countInner(edges, b) { $0 < value }
        case .torchmetrics:
            // number of edges e_0..e_B that are ≤ value, minus 1, clipped to [0, B]
            var lo = 0, hi = edges.count
            while lo < hi {
                let mid = (lo + hi) / 2
                if edges[mid] <= value { lo = mid + 1 } else { hi = mid }
            }
            return min(max(lo - 1, 0), b)
        }
    }

    /// Number of inner edges e_1..e_{B−1} satisfying a monotone (true-then-false) predicate.
    @inline(__always)
    private static func countInner(_ edges: [Double], _ b: Int, _ pred: (Double) -> Bool) -> Int {
        var lo = 1, hi = b  // search inner edges in [1, b)
        while lo < hi {
            let mid = (lo + hi) / 2
            if pred(edges[mid]) { lo = mid + 1 } else { hi = mid }
        }
        return lo - 1
    }

    // MARK: - Top label

    /// Top-label prediction (lowest index on ties), its confidence and correctness per row.
    public static func topLabel(probabilities p: Matrix, labels: [Int]) -> (predictions: [Int], confidences: [Double], correct: [Bool]) {
        var pred = [Int](repeating: 0, count: p.rows)
        var conf = [Double](repeating: 0, count: p.rows)
        var correct = [Bool](repeating: false, count: p.rows)
        p.values.withUnsafeBufferPointer { v in
            for r in 0..<p.rows {
                let best = SoftmaxRows.argmax(v.row(r, width: p.cols))
                pred[r] = best
                conf[r] = v[r * p.cols + best]
                correct[r] = best == labels[r]
            }
        }
        return (pred, conf, correct)
    }

    // MARK: - Binned statistics

    /// Per-bin count, mean value and mean outcome.
    public struct BinStats: Sendable, Equatable {
        public var counts: [Int]
        public var meanValue: [Double]
        public var meanOutcome: [Double]
    }

    /// Bins `values` and averages them and `outcomes` per bin (means are 0 for empty bins).
    /// An outcome is a weight in [0, 1]: 1 or 0 for a hit with hard labels, t_{i,j} for
    /// soft targets (docs/calibration.md §2.10).
    public static func binned(values: [Double], outcomes: [Double], edges: [Double], rule: BinRule) -> BinStats {
        let slots = rule.slots(bins: edges.count - 1)
        var counts = [Int](repeating: 0, count: slots)
        var sumValue = [Double](repeating: 0, count: slots)
        var sumOutcome = [Double](repeating: 0, count: slots)
        for i in values.indices {
            let b = binIndex(values[i], edges: edges, rule: rule)
            counts[b] += 1
            sumValue[b] += values[i]
            sumOutcome[b] += outcomes[i]
        }
        for b in 0..<slots where counts[b] > 0 {
            sumValue[b] /= Double(counts[b])
            sumOutcome[b] /= Double(counts[b])
        }
        return BinStats(counts: counts, meanValue: sumValue, meanOutcome: sumOutcome)
    }

    /// `binned` with hit-or-miss outcomes (1 for true, 0 for false).
    public static func binned(values: [Double], outcomes: [Bool], edges: [Double], rule: BinRule) -> BinStats {
        binned(values: values, outcomes: outcomes.map { $0 ? 1.0 : 0.0 }, edges: edges, rule: rule)
    }

    /// Σ_b (n_b / N) |acc_b − conf_b| over non-empty bins.
    static func weightedGap(_ s: BinStats, total: Int) -> Double {
        var sum = 0.0
        for b in s.counts.indices where s.counts[b] > 0 {
            sum += Double(s.counts[b]) / Double(total) * abs(s.meanOutcome[b] - s.meanValue[b])
        }
        return sum
    }

    // MARK: - Metrics

    /// Mean negative log-likelihood of `probabilities` (clipped to [ε, 1 − ε], docs/calibration.md
    /// §2.3).
    public static func nll(probabilities p: Matrix, labels: [Int]) -> Double {
        guard p.rows > 0 else { return 0 }
        var sum = 0.0
        for r in 0..<p.rows {
            let v = min(max(p.values[r * p.cols + labels[r]], epsilon), 1 - epsilon)
            sum -= log(v)
        }
        return sum / Double(p.rows)
    }

    /// Mean negative log-likelihood of softmax(logits), via log-softmax (no clipping).
    public static func nll(logits z: Matrix, labels: [Int]) -> Double {
        guard z.rows > 0 else { return 0 }
        let sum = z.sumOverLogSumExpRows { r, row, m, excess in excess - (row[labels[r]] - m) }
        return sum / Double(z.rows)
    }

    /// Expected calibration error of the top-label confidence (docs/calibration.md §2.5).
    public static func ece(probabilities p: Matrix, labels: [Int], bins: Int = 15, binRule: BinRule = .left) -> Double {
        ece(topLabels(scores: p, probabilities: p, targets: .labels(labels)), bins: bins, binRule: binRule)
    }

    /// Root-mean-square calibration error, the ECE's L2 form:
    /// `sqrt(Σ_b (n_b / N) (acc_b − conf_b)²)` over the same bins (torchmetrics' `norm="l2"`).
    public static func rmsce(probabilities p: Matrix, labels: [Int], bins: Int = 15, binRule: BinRule = .left) -> Double {
        rmsce(topLabels(scores: p, probabilities: p, targets: .labels(labels)), bins: bins, binRule: binRule)
    }

    /// Σ_b (n_b / N) (acc_b − conf_b)² over non-empty bins.
    static func weightedSquaredGap(_ s: BinStats, total: Int) -> Double {
        var sum = 0.0
        for b in s.counts.indices where s.counts[b] > 0 {
            let gap = s.meanOutcome[b] - s.meanValue[b]
            sum += Double(s.counts[b]) / Double(total) * gap * gap
        }
        return sum
    }

    /// Maximum calibration error: the largest |acc_b − conf_b| over non-empty bins
    /// (docs/calibration.md §2.5).
    public static func mce(probabilities p: Matrix, labels: [Int], bins: Int = 15, binRule: BinRule = .left) -> Double {
        mce(topLabels(scores: p, probabilities: p, targets: .labels(labels)), bins: bins, binRule: binRule)
    }

    /// Adaptive (equal-mass) top-label ECE and its edges (docs/calibration.md §2.6): edges at the
    /// linear quantiles j/B of the confidences, with e_0 = 0 and e_B = 1, then the `left` rule.
    public static func ace(probabilities p: Matrix, labels: [Int], bins: Int = 15) -> (value: Double, edges: [Double]) {
        ace(topLabels(scores: p, probabilities: p, targets: .labels(labels)), bins: bins)
    }

    /// Classwise ECE (Kull et al. 2019; docs/calibration.md §2.7): the mean over all C classes of
    /// the binned |freq − mean p| of column j against `[y = j]`, with the per-class terms.
    public static func classwiseECE(probabilities p: Matrix, labels: [Int], bins: Int = 15, binRule: BinRule = .left) -> (value: Double, perClass: [Double]) {
        classwiseECE(probabilities: p, targets: .labels(labels), bins: bins, binRule: binRule)
    }

    /// Brier score (docs/calibration.md §2.4): mean over rows of Σ_j (p_ij − [y_i = j])², halved
    /// when `halve` is true; nil (`"auto"`) halves exactly when C = 2.
    public static func brier(probabilities p: Matrix, labels: [Int], halve: Bool? = nil) -> Double {
        brier(probabilities: p, targets: .labels(labels), halve: halve)
    }

    /// Top-1 accuracy of `scores` (logits or probabilities): argmax, lowest index on ties
    /// (docs/calibration.md §2.2).
    public static func accuracy(scores: Matrix, labels: [Int]) -> Double {
        accuracy(topLabels(scores: scores, probabilities: scores, targets: .labels(labels)))
    }

    /// Top-k accuracy (docs/calibration.md §2.2): y_i is among the k largest of row i, ties at the
    /// cut broken by the lower class index; 1 when k ≥ C.
    public static func topKAccuracy(scores: Matrix, labels: [Int], k: Int) -> Double {
        guard scores.rows > 0 else { return 0 }
        guard k < scores.cols else { return 1 }
        var hits = 0
        for i in 0..<scores.rows {
            let base = i * scores.cols
            let y = labels[i]
            let target = scores.values[base + y]
            // Rank of y in the order (value descending, index ascending).
            var rank = 0
            for j in 0..<scores.cols {
                let v = scores.values[base + j]
                if v > target || (v == target && j < y) { rank += 1 }
            }
            if rank < k { hits += 1 }
        }
        return Double(hits) / Double(scores.rows)
    }

    // MARK: - Reliability diagram

    /// One bin of a reliability diagram (docs/calibration.md §2.8); `confidence` and `accuracy` are
    /// nil when the bin is empty.
    public struct ReliabilityBin: Sendable, Equatable {
        public var lower: Double
        public var upper: Double
        public var count: Int
        public var confidence: Double?
        public var accuracy: Double?

        public init(lower: Double, upper: Double, count: Int, confidence: Double?, accuracy: Double?) {
            self.lower = lower
            self.upper = upper
            self.count = count
            self.confidence = confidence
            self.accuracy = accuracy
        }
    }

    /// The bins `ece` uses, in order: B bins, or B + 1 under `torchmetrics` (the extra bin
    /// has lower = upper = 1).
    public static func reliability(probabilities p: Matrix, labels: [Int], bins: Int = 15, binRule: BinRule = .left) -> [ReliabilityBin] {
        reliability(topLabels(scores: p, probabilities: p, targets: .labels(labels)), bins: bins, binRule: binRule)
    }
}
