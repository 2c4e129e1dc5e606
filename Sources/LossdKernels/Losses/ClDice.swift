/// Soft clDice (Shit, Paetzold, Sekuboyina, Ezhov, Unger, Zhylka, Pluim, Bauer, Menze,
/// "clDice - a Novel Topology-Preserving Loss Function for Tubular Structure
/// Segmentation", CVPR 2021; docs/losses.md §15.3), blended with soft Dice as the paper trains
/// it. Per (sample, class) map, with p = softmax over C, g the class's mask (labels one-hot
/// or soft targets), S(·) the soft skeleton of `SoftSkeleton` (`iterations` k) and ε = `smooth`:
///
///     Tprec = (Σ S(p)·g + ε) / (Σ S(p) + ε)      topology precision
///     Tsens = (Σ S(g)·p + ε) / (Σ S(g) + ε)      topology sensitivity
///     ℓ_nc  = (1 − α)·dice + α·(1 − 2·Tprec·Tsens/(Tprec + Tsens))
///
/// with dice the `Dice` value of the map; the sample's value is the mean over the kept
/// classes. Soft targets are skeletonised like p.
///
/// **Gradient** with respect to the logits: through Tsens (S(g) is a constant), through Tprec
/// and the soft skeleton of p (min/max pooling differentiated as a subgradient routed to the
/// winning element, `SoftSkeleton.backward`), plus the Dice term, then through the softmax.
///
/// Edge cases: α = 0 is exactly `Dice` (no skeleton is computed). An empty ground truth has
/// S(g) = 0 and Tsens = ε/ε = 1; with ε = 0 a ratio 0/0 counts as 1 and a harmonic mean
/// of two zeros as 0, each with gradient 0. Logits of ±1e4 give hard 0/1 probabilities, a
/// finite value and a gradient of exactly 0.
///
/// Memory: each map in flight holds its erosion chain and skeleton history,
/// `(2k + 22)·H·W(·Z)` 8-byte values with gradient (`workspaceBytes`).
public enum ClDice {
    public struct Parameters: Sendable {
        public var segmentation: Segmentation.Parameters
        /// k ≥ 0: loop rounds of the soft skeleton after its initial step (the code's `iter_`).
        public var iterations: Int
        /// α ∈ [0, 1]: weight of the clDice term (1 − α weighs Dice).
        public var alpha: Double

        public init(segmentation: Segmentation.Parameters = .init(), iterations: Int = 3, alpha: Double = 0.5) {
            self.segmentation = segmentation
            self.iterations = iterations
            self.alpha = alpha
        }
    }

    public static func evaluate(
        logits: Tensor, truth: SegmentationTruth, parameters: Parameters = .init(), gradient: Bool
    ) throws(LossInputError) -> LossOutput {
        let eps = parameters.segmentation.smooth, alpha = parameters.alpha, k = parameters.iterations
        guard k >= 0 else {
            throw LossInputError(.invalidParam, field: "/params/iterations", "`iterations` must be in [0, inf) (got \(k))")
        }
        guard alpha >= 0 && alpha <= 1 else {
            throw LossInputError(.invalidParam, field: "/params/alpha", "`alpha` must be in [0, 1]")
        }
        let spatial = logits.shape.count >= 3 ? Array(logits.shape[2...]) : [1]
        let skeleton = SoftSkeleton(extents: spatial, iterations: k)
        let layout = Workspace(skeleton, gradient: gradient)
        return try Segmentation.evaluate(
            logits: logits, truth: truth, truthName: "labels", parameters: parameters.segmentation, gradient: gradient,
            workspace: { _ in alpha > 0 ? layout.doubles : 0 }, indices: { _ in alpha > 0 && gradient ? skeleton.backwardIndices : 0 },
            costPerPixel: 6 + (alpha > 0 ? 24 * (k + 1) * (gradient ? 3 : 1) : 0)
        ) { map in
            let (dice, ratio, denominator) = Dice.ratio(map, eps: eps)
            guard alpha > 0 else {
                if let out = map.gradient { Dice.backward(map, dice: ratio, denominator: denominator, scale: 1, into: out) }
                return dice
            }
            let n = map.count, w = map.work
            let skelP = w + layout.skelP, skelG = w + layout.skelG, forward = w + layout.forward
            let stored = gradient ? w + layout.stored : nil
            skeleton.skeleton(map.g, into: skelG, work: forward, stored: nil)
            skeleton.skeleton(map.p, into: skelP, work: forward, stored: stored)
            let (hitSP, sumSP, _) = Segmentation.sums(skelP, map.g, n)
            let (hitSG, sumSG, _) = Segmentation.sums(skelG, map.p, n)
            let tprec = Segmentation.ratio(hitSP + eps, sumSP + eps)
            let tsens = Segmentation.ratio(hitSG + eps, sumSG + eps)
            let total = tprec + tsens
            let harmonic = total > 0 ? 2 * tprec * tsens / total : 0
            if let out = map.gradient {
                Dice.backward(map, dice: ratio, denominator: denominator, scale: 1 - alpha, into: out)
                if total > 0 {
                    // ∂ℓ/∂Tprec = −α·2Tsens²/(Tp+Ts)², ∂ℓ/∂Tsens = −α·2Tprec²/(Tp+Ts)².
                    let dPrec = -alpha * 2 * tsens * tsens / (total * total)
                    let dSens = -alpha * 2 * tprec * tprec / (total * total)
                    // Through Tsens: ∂Tsens/∂p = S(g)/(ΣS(g) + ε).
                    if sumSG + eps > 0 {
                        let factor = dSens / (sumSG + eps)
                        for s in 0..<n { out[s] += factor * skelG[s] }
                    }
                    // Through Tprec and S(p): ∂Tprec/∂S(p) = (g − Tprec)/(ΣS(p) + ε).
                    if sumSP + eps > 0, let stored {
                        let factor = dPrec / (sumSP + eps)
                        let upstream = w + layout.upstream, back = w + layout.back
                        for s in 0..<n { upstream[s] = factor * (map.g[s] - tprec) }
                        skeleton.backward(upstream, stored: stored, into: back, work: w + layout.backward, indices: map.indices)
                        for s in 0..<n { out[s] += back[s] }
                    }
                }
            }
            return (1 - alpha) * dice + alpha * (1 - harmonic)
        }
    }

    /// Bytes of workspace an evaluation holds beyond its inputs, probabilities and gradient:
    /// one map's skeleton state per thread in flight (the service reserves it before it
    /// evaluates). `shape` is the logits' shape.
    public static func workspaceBytes(logitsShape shape: [Int], iterations: Int, gradient: Bool) -> Int {
        guard shape.count >= 3, iterations >= 0, iterations < 1 << 20 else { return 0 }
        var pixels = 1
        for extent in shape[2...] {
            let (product, overflow) = pixels.multipliedReportingOverflow(by: max(1, extent))
            if overflow { return Int.max }
            pixels = product
        }
        let skeleton = SoftSkeleton(extents: [pixels], iterations: iterations)
        let perMap = Workspace(skeleton, gradient: gradient).doubles + pixels + (gradient ? skeleton.backwardIndices : 0)
        let maps = max(1, shape[0]) * max(1, shape[1])
        let threads = min(maps, Parallel.maxThreads == 0 ? Parallel.cores : Parallel.maxThreads)
        let (bytes, overflow) = perMap.multipliedReportingOverflow(by: 8 * threads)
        return overflow ? Int.max : bytes
    }

    /// Where each buffer of one map's workspace starts (in doubles).
    private struct Workspace {
        let skelP: Int, skelG: Int, forward: Int, stored: Int, upstream: Int, back: Int, backward: Int, doubles: Int

        init(_ skeleton: SoftSkeleton, gradient: Bool) {
            let n = skeleton.count
            skelP = 0
            skelG = n
            forward = 2 * n
            stored = forward + skeleton.forwardWorkspace
            let afterStored = stored + (gradient ? skeleton.storedState : 0)
            upstream = afterStored
            back = upstream + (gradient ? n : 0)
            backward = back + (gradient ? n : 0)
            doubles = backward + (gradient ? skeleton.backwardWorkspace : 0)
        }
    }
}
