/// One fitted histogram-binning map (docs/calibration.md §3.10): B bins with edges `edges`
/// (B + 1 increasing values), the calibrated value `theta[b]` of each bin and the number of
/// fit samples that fell in it.
public struct HistogramMap: Sendable, Equatable {
    public var edges: [Double]
    public var theta: [Double]
    public var counts: [Int]

    public init(edges: [Double], theta: [Double], counts: [Int]) {
        self.edges = edges
        self.theta = theta
        self.counts = counts
    }

    /// θ of the bin holding v under the `left` rule.
    public func callAsFunction(_ v: Double) -> Double {
        theta[HistogramBinning.bin(of: v, edges: edges)]
    }
}

/// Histogram binning (docs/calibration.md §3.10; Zadrozny & Elkan 2001): equal-width bins on
/// [0, 1], θ_b = mean label of the bin's fit samples (an empty bin gets its centre); the
/// `left` rule for both fit and apply. Binary: one map on p₁; multi-class: one-vs-rest maps
/// on p_k, then the row renormalisation of `OneVsRestCalibration.renormalise`.
public enum HistogramBinning {
    /// B + 1 edges by the numpy.linspace rule of docs/calibration.md §1: e_j = j × (1/B), e_B = 1.
    public static func edges(bins: Int) -> [Double] {
        precondition(bins >= 1)
        let step = 1.0 / Double(bins)
        var e = (0...bins).map { Double($0) * step }
        e[bins] = 1.0
        return e
    }

    /// The `left`-rule bin of v: the number of inner edges e_1..e_{B−1} that are ≤ v
    /// (numpy `searchsorted(edges[1:-1], v, side="right")`), so [e_j, e_{j+1}) with the last
    /// bin closed; values below e_0 land in bin 0 and above e_B in bin B − 1.
    public static func bin(of v: Double, edges: [Double]) -> Int {
        var lo = 1, hi = edges.count - 1  // search the inner edges [1, B − 1]
        // Find the first inner index whose edge is > v.
        while lo < hi {
            let mid = (lo + hi) / 2
            if edges[mid] <= v { lo = mid + 1 } else { hi = mid }
        }
        return lo - 1
    }

    public static func fit1D(values: [Double], targets: [Double], bins: Int) -> HistogramMap {
        let e = edges(bins: bins)
        var counts = [Int](repeating: 0, count: bins)
        var totals = [Double](repeating: 0, count: bins)
        for (v, y) in zip(values, targets) {
            let b = bin(of: v, edges: e)
            counts[b] += 1
            totals[b] += y
        }
        let theta = (0..<bins).map { b in
            counts[b] > 0 ? totals[b] / Double(counts[b]) : 0.5 * (e[b] + e[b + 1])
        }
        return HistogramMap(edges: e, theta: theta, counts: counts)
    }

    /// One map for C = 2 (on p₁), else one per class (on p_k against [y = k]).
    public static func fit(logits: Matrix, labels: [Int], bins: Int) -> [HistogramMap] {
        let probs = OneVsRestCalibration.softmax(logits)
        return OneVsRestCalibration.modelledClasses(logits.cols).map { k in
            fit1D(values: Isotonic.column(probs, k), targets: labels.map { $0 == k ? 1 : 0 }, bins: bins)
        }
    }

    /// Calibrated probabilities [N][C] for the maps of `fit`.
    public static func apply(maps: [HistogramMap], logits: Matrix) -> Matrix {
        let probs = OneVsRestCalibration.softmax(logits)
        return OneVsRestCalibration.combine(probs: probs, models: maps.count) { model, v in maps[model](v) }
    }
}
