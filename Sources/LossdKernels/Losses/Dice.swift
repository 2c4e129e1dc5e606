/// Soft Dice loss (Milletari, Navab, Ahmadi, "V-Net: Fully Convolutional Neural Networks for
/// Volumetric Medical Image Segmentation", 3DV 2016; docs/losses.md §15.2) on softmax
/// probabilities p = softmax over C of logits [N][C][H][W](…), per (sample, class) map:
///
///     ℓ_nc = 1 − (2·Σ p·g + ε) / (Σ p + Σ g + ε)
///
/// with g the class's mask (one-hot of `labels`, or soft `targets` in [0, 1]) and ε = `smooth`;
/// a sample's value is the mean over the kept classes (class 0 dropped unless
/// `includeBackground`). Gradient: `∂ℓ/∂p = −(2g − D)/(Σp + Σg + ε)` with D the Dice ratio,
/// then through the softmax (`Segmentation`).
///
/// Edge cases: a class absent from both the truth and (to the last bit) the prediction has
/// value 0 with ε > 0 (`ε/ε`), and with ε = 0 counts as agreement (value 0, gradient 0)
/// instead of 0/0. Logits of ±1e4 give probabilities of exactly 0 and 1, a finite value and
/// a gradient of exactly 0.
public enum Dice {
    public static func evaluate(
        logits: Tensor, truth: SegmentationTruth, parameters: Segmentation.Parameters = .init(), gradient: Bool
    ) throws(LossInputError) -> LossOutput {
        let eps = parameters.smooth
        return try Segmentation.evaluate(
            logits: logits, truth: truth, truthName: "labels", parameters: parameters, gradient: gradient,
            workspace: { _ in 0 }, costPerPixel: 6
        ) { map in
            let (value, dice, denominator) = ratio(map, eps: eps)
            if let out = map.gradient { backward(map, dice: dice, denominator: denominator, scale: 1, into: out) }
            return value
        }
    }

    /// The Dice value 1 − D of one map, the ratio D and its denominator Σp + Σg + ε.
    static func ratio(_ map: Segmentation.Map, eps: Double) -> (value: Double, dice: Double, denominator: Double) {
        let (intersection, sumP, sumG) = Segmentation.sums(map.p, map.g, map.count)
        let denominator = sumP + sumG + eps
        let dice = Segmentation.ratio(2 * intersection + eps, denominator)
        return (1 - dice, dice, denominator)
    }

    /// out = scale · ∂(1 − D)/∂p = −scale·(2g − D)/denominator (0 when the denominator is 0).
    static func backward(_ map: Segmentation.Map, dice: Double, denominator: Double, scale: Double, into out: UnsafeMutablePointer<Double>) {
        guard denominator > 0 else {
            out.update(repeating: 0, count: map.count)
            return
        }
        let factor = -scale / denominator
        for s in 0..<map.count { out[s] = factor * (2 * map.g[s] - dice) }
    }
}
