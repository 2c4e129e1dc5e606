#if canImport(Glibc)
    import Glibc
#endif

/// What each row is scored against (docs/calibration.md §2.10): hard labels y_i, or soft
/// targets t_i [C] on the probability simplex (crowd vote fractions, the soft labels of
/// `/v1/aggregate`). Every metric is written once with the indicator [y_i = j] replaced by
/// the weight t_ij; for labels the weight is exactly 1 or 0, and terms of weight 0 are
/// skipped, so one-hot targets give the hard-label numbers bit for bit.
public enum MetricTargets: Sendable, Equatable {
    case labels([Int])
    case soft(Matrix)

    public var rows: Int {
        switch self {
        case .labels(let y): y.count
        case .soft(let t): t.rows
        }
    }

    /// t_ij: [y_i = j] for labels.
    @inline(__always)
    public func weight(_ i: Int, _ j: Int) -> Double {
        switch self {
        case .labels(let y): y[i] == j ? 1 : 0
        case .soft(let t): t.values[i * t.cols + j]
        }
    }
}

/// Top-label prediction, confidence and expected correctness of every row.
public struct TopLabels: Sendable, Equatable {
    /// argmax of the scores as sent (logits or probs), lowest index on ties.
    public var predictions: [Int]
    /// p_{i, pred_i}.
    public var confidences: [Double]
    /// t_{i, pred_i}: 1 or 0 for labels, the expected correctness for soft targets.
    public var outcomes: [Double]
}

extension CalibrationMetrics {
    // MARK: - Top label

    /// pred_i = argmax_j scores_ij (lowest index on ties), conf_i = p_{i,pred_i} and
    /// a_i = t_{i,pred_i}. With logits, argmax of the logits is argmax of softmax.
    public static func topLabels(scores: Matrix, probabilities p: Matrix, targets: MetricTargets) -> TopLabels {
        var pred = [Int](repeating: 0, count: p.rows)
        var conf = [Double](repeating: 0, count: p.rows)
        var outcome = [Double](repeating: 0, count: p.rows)
        let c = scores.cols
        for r in 0..<p.rows {
            var best = 0
            var bestValue = scores.values[r * c]
            for j in 1..<max(c, 1) where scores.values[r * c + j] > bestValue {
                best = j
                bestValue = scores.values[r * c + j]
            }
            pred[r] = best
            conf[r] = p.values[r * p.cols + best]
            outcome[r] = targets.weight(r, best)
        }
        return TopLabels(predictions: pred, confidences: conf, outcomes: outcome)
    }

    // MARK: - Likelihood and Brier

    /// `−(1/N) Σ_i Σ_j t_ij log p_ij` with log p from an exact log-softmax of the logits.
    public static func nll(logits z: Matrix, targets: MetricTargets) -> Double {
        guard z.rows > 0 else { return 0 }
        if case .labels(let y) = targets { return nll(logits: z, labels: y) }
        let sum = z.sumOverLogSumExpRows { r, row, m, excess in
            var rowSum = 0.0
            for j in 0..<row.count {
                let t = targets.weight(r, j)
                if t != 0 { rowSum += t * (excess - (row[j] - m)) }
            }
            return rowSum
        }
        return sum / Double(z.rows)
    }

    /// `−(1/N) Σ_i Σ_j t_ij log clip(p_ij, ε, 1 − ε)` (docs/calibration.md §2.3).
    public static func nll(probabilities p: Matrix, targets: MetricTargets) -> Double {
        guard p.rows > 0 else { return 0 }
        if case .labels(let y) = targets { return nll(probabilities: p, labels: y) }
        var sum = 0.0
        for r in 0..<p.rows {
            var rowSum = 0.0
            for j in 0..<p.cols {
                let t = targets.weight(r, j)
                if t != 0 { rowSum -= t * log(min(max(p.values[r * p.cols + j], epsilon), 1 - epsilon)) }
            }
            sum += rowSum
        }
        return sum / Double(p.rows)
    }

    /// Mean target entropy `(1/N) Σ_i −Σ_j t_ij log t_ij` (0 log 0 = 0); 0 for labels. The
    /// mean KL(t_i ‖ p_i) is `nll − target_entropy`.
    public static func targetEntropy(_ targets: MetricTargets) -> Double {
        guard case .soft(let t) = targets, t.rows > 0 else { return 0 }
        var sum = 0.0
        for r in 0..<t.rows {
            var rowSum = 0.0
            for j in 0..<t.cols {
                let v = t.values[r * t.cols + j]
                if v > 0 { rowSum -= v * log(v) }
            }
            sum += rowSum
        }
        return sum / Double(t.rows)
    }

    /// Brier score `(1/N) Σ_i Σ_j (p_ij − t_ij)²` (docs/calibration.md §2.4), halved when
    /// `halve` is true; nil (`"auto"`) halves exactly when C = 2.
    public static func brier(probabilities p: Matrix, targets: MetricTargets, halve: Bool? = nil) -> Double {
        guard p.rows > 0 else { return 0 }
        var total = 0.0
        for i in 0..<p.rows {
            var row = 0.0
            for j in 0..<p.cols {
                let d = p.values[i * p.cols + j] - targets.weight(i, j)
                row += d * d
            }
            total += row
        }
        let value = total / Double(p.rows)
        return (halve ?? (p.cols < 3)) ? value / 2 : value
    }

    // MARK: - Accuracy

    /// Expected accuracy `(1/N) Σ_i t_{i,pred_i}`: the fraction correct for labels.
    public static func accuracy(_ top: TopLabels) -> Double {
        guard !top.outcomes.isEmpty else { return 0 }
        var sum = 0.0
        for a in top.outcomes { sum += a }
        return sum / Double(top.outcomes.count)
    }

    /// Expected top-k accuracy `(1/N) Σ_i Σ_{j ∈ top-k(i)} t_ij`, the top k ranked by
    /// (score descending, index ascending). For labels: the fraction whose label is in the
    /// top k, 1 when k ≥ C.
    public static func topKAccuracy(scores: Matrix, targets: MetricTargets, k: Int) -> Double {
        if case .labels(let y) = targets { return topKAccuracy(scores: scores, labels: y, k: k) }
        guard scores.rows > 0 else { return 0 }
        let c = scores.cols, kept = min(k, c)
        var sum = 0.0
        var order = Array(0..<c)
        for i in 0..<scores.rows {
            let base = i * c
            order.sort { a, b in
                let va = scores.values[base + a], vb = scores.values[base + b]
                return va > vb || (va == vb && a < b)
            }
            var rowSum = 0.0
            for j in order[0..<kept] { rowSum += targets.weight(i, j) }
            sum += rowSum
        }
        return sum / Double(scores.rows)
    }

    // MARK: - The ECE family on top labels

    /// ECE `Σ_b (n_b/N) |acc_b − conf_b|`, acc_b the mean of t_{i,pred_i} in the bin.
    public static func ece(_ top: TopLabels, bins: Int = 15, binRule: BinRule = .left) -> Double {
        guard !top.confidences.isEmpty else { return 0 }
        let s = binned(values: top.confidences, outcomes: top.outcomes, edges: edges(bins: bins), rule: binRule)
        return weightedGap(s, total: top.confidences.count)
    }

    /// RMSCE `sqrt(Σ_b (n_b/N) (acc_b − conf_b)²)`, the ECE's L2 form.
    public static func rmsce(_ top: TopLabels, bins: Int = 15, binRule: BinRule = .left) -> Double {
        guard !top.confidences.isEmpty else { return 0 }
        let s = binned(values: top.confidences, outcomes: top.outcomes, edges: edges(bins: bins), rule: binRule)
        return weightedSquaredGap(s, total: top.confidences.count).squareRoot()
    }

    /// MCE: the largest |acc_b − conf_b| over non-empty bins.
    public static func mce(_ top: TopLabels, bins: Int = 15, binRule: BinRule = .left) -> Double {
        let s = binned(values: top.confidences, outcomes: top.outcomes, edges: edges(bins: bins), rule: binRule)
        var worst = 0.0
        for b in s.counts.indices where s.counts[b] > 0 {
            worst = max(worst, abs(s.meanOutcome[b] - s.meanValue[b]))
        }
        return worst
    }

    /// ACE: the ECE over equal-mass bins (edges at the linear quantiles j/B of the
    /// confidences, e_0 = 0 and e_B = 1, then the `left` rule), and those edges.
    public static func ace(_ top: TopLabels, bins: Int = 15) -> (value: Double, edges: [Double]) {
        let n = top.confidences.count
        guard n > 0 else { return (0, edges(bins: bins)) }
        let sorted = top.confidences.sorted()
        var e = edges(bins: bins).map { q -> Double in
            let h = Double(n - 1) * q
            let lo = Int(h.rounded(.down))
            let hi = min(lo + 1, n - 1)
            return sorted[lo] + (h - Double(lo)) * (sorted[hi] - sorted[lo])
        }
        e[0] = 0
        e[bins] = 1
        let s = binned(values: top.confidences, outcomes: top.outcomes, edges: e, rule: .left)
        return (weightedGap(s, total: n), e)
    }

    /// The reliability diagram's bins: B bins, or B + 1 under `torchmetrics` (the extra
    /// bin has lower = upper = 1); a bin's accuracy is the mean of t_{i,pred_i}.
    public static func reliability(_ top: TopLabels, bins: Int = 15, binRule: BinRule = .left) -> [ReliabilityBin] {
        let e = edges(bins: bins)
        let s = binned(values: top.confidences, outcomes: top.outcomes, edges: e, rule: binRule)
        return s.counts.indices.map { b in
            let filled = s.counts[b] > 0
            return ReliabilityBin(
                lower: b < bins ? e[b] : 1, upper: b < bins ? e[b + 1] : 1, count: s.counts[b],
                confidence: filled ? s.meanValue[b] : nil, accuracy: filled ? s.meanOutcome[b] : nil)
        }
    }

    /// Classwise ECE (Kull et al. 2019): per class j the bins of p_ij compare the mean
    /// p_ij with the mean t_ij; the mean over all C classes and the per-class terms.
    public static func classwiseECE(
        probabilities p: Matrix, targets: MetricTargets, bins: Int = 15, binRule: BinRule = .left
    ) -> (value: Double, perClass: [Double]) {
        guard p.rows > 0, p.cols > 0 else { return (0, []) }
        let e = edges(bins: bins)
        var perClass: [Double] = []
        var column = [Double](repeating: 0, count: p.rows)
        var weights = [Double](repeating: 0, count: p.rows)
        var total = 0.0
        for j in 0..<p.cols {
            for i in 0..<p.rows {
                column[i] = p.values[i * p.cols + j]
                weights[i] = targets.weight(i, j)
            }
            let term = weightedGap(binned(values: column, outcomes: weights, edges: e, rule: binRule), total: p.rows)
            perClass.append(term)
            total += term
        }
        return (total / Double(p.cols), perClass)
    }
}
