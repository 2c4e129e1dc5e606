/// Each annotator's confusion matrix estimated against aggregated soft labels, for methods
/// that do not model one (Dawid–Skene does; docs/aggregation.md §7).
///
/// `π_w[t][l] = Σ_{a : annotator w, label l} q_{item(a), t} / Σ_{a : annotator w} q_{item(a), t}`:
/// the share of annotator w's answers that were l among the items whose (soft) true class
/// is t. A row whose class never reaches the annotator (zero mass) is left all zero, so a
/// reader can tell "never saw class t" from "always wrong on t". The agreement
/// `Σ_a q_{item(a), label(a)} / n_w` is the annotator's expected accuracy against the
/// aggregate (0 for an annotator without annotations).
extension Aggregation {
    public static func empiricalConfusion(_ data: CrowdAnnotations, soft: Matrix) -> (confusion: Tensor, agreement: [Double]) {
        let k = data.numClasses, nW = data.annotatorCount
        var counts = [Double](repeating: 0, count: nW * k * k)
        var agreement = [Double](repeating: 0, count: nW)
        for w in 0..<nW {
            let start = data.annotatorStart[w], end = data.annotatorStart[w + 1]
            guard end > start else { continue }
            var hits = 0.0
            for slot in start..<end {
                let a = Int(data.byAnnotator[slot])
                let item = Int(data.items[a]), label = Int(data.labels[a])
                let row = item * k
                for t in 0..<k { counts[(w * k + t) * k + label] += soft.values[row + t] }
                hits += soft.values[row + label]
            }
            agreement[w] = hits / Double(end - start)
            for t in 0..<k {
                let base = (w * k + t) * k
                var mass = 0.0
                for l in 0..<k { mass += counts[base + l] }
                guard mass > 0 else { continue }
                for l in 0..<k { counts[base + l] /= mass }
            }
        }
        return (Tensor(shape: [nW, k, k], values: counts), agreement)
    }
}
