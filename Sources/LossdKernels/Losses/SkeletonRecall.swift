/// Skeleton Recall loss (Kirchhoff, Rokuss, Roy, Kovacs, Ulrich, Wald, Zenk, Vollmuth,
/// Kleesiek, Isensee, Maier-Hein, "Skeleton Recall Loss for Connectivity Conserving and
/// Resource Efficient Segmentation of Thin Tubular Structures", ECCV 2024; docs/losses.md
/// §15.4): the soft recall of the ground truth's (tubed) skeleton, which the client computes
/// once per label map — the loss itself needs no skeletonisation. Per (sample, class) map,
/// with p = softmax over C and k the class's mask in the `skeleton` class map (0 = background):
///
///     ℓ_nc = 1 − (Σ p·k + ε) / (Σ k + ε)
///
/// averaged over the kept classes (class 0, whose mask is every pixel off the skeleton,
/// dropped unless `includeBackground`). Gradient `∂ℓ/∂p = −k/(Σk + ε)`, then through the
/// softmax. A class with no skeleton pixel has value `1 − ε/ε = 0` and gradient 0 (also with
/// ε = 0, where 0/0 counts as full recall).
public enum SkeletonRecall {
    public static func evaluate(
        logits: Tensor, skeleton: ClassMap, parameters: Segmentation.Parameters = .init(), gradient: Bool
    ) throws(LossInputError) -> LossOutput {
        let eps = parameters.smooth
        return try Segmentation.evaluate(
            logits: logits, truth: .labels(skeleton), truthName: "skeleton", parameters: parameters, gradient: gradient,
            workspace: { _ in 0 }, costPerPixel: 4
        ) { map in
            let (hit, _, size) = Segmentation.sums(map.p, map.g, map.count)
            let denominator = size + eps
            if let out = map.gradient {
                let factor = denominator > 0 ? -1 / denominator : 0
                for s in 0..<map.count { out[s] = factor * map.g[s] }
            }
            return 1 - Segmentation.ratio(hit + eps, denominator)
        }
    }
}
