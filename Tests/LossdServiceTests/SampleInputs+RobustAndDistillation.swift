@testable import LossdService

extension SampleInputs {
    /// Random valid inputs for ldr_kl, aldr_kl, kd_kl, dhkd_logit, pass_at_n (loss name → generator).
    /// Each also draws its parameters (sent as `params`), so the gradient checks cover every
    /// score transform, variant and input form rather than the defaults only.
    static let robustAndDistillation: [String: Generator] = [
        "ldr_kl": { n, c, scale in
            [
                "logits": randomMatrix(n, c, scale), "labels": randomLabels(n, c),
                "params": [
                    "score_transform": ["softplus_mean", "l1_mean", "none"].randomElement()!,
                    "lambda": Double.random(in: 0.5...10), "margin": Double.random(in: 0...1),
                ] as [String: Any],
            ]
        },
        // aldr_kl's gradient holds λ constant (docs/losses.md §8.3) although the updated λ depends
        // on the logits, so central differences of the value match it only where ∂λ/∂logits
        // vanishes: α = 1e9 keeps λ within ~1e-8 of λ₀ (and the penalty negligible) while the LDR
        // part, score transforms, lambda_prev and iterations are still exercised.
        "aldr_kl": { n, c, scale in
            [
                "logits": randomMatrix(n, max(c, 2), scale), "labels": randomLabels(n, max(c, 2)),
                "lambda_prev": (0..<n).map { _ in Double.random(in: 1...20) },
                "params": [
                    "score_transform": ["l1_mean", "softplus_mean", "none"].randomElement()!,
                    "lambda0": Double.random(in: 0.5...10), "alpha": 1e9, "iterations": Int.random(in: 1...3),
                ] as [String: Any],
            ]
        },
        // Either form of input; log-probabilities stay clear of 0 so that finite-difference
        // steps keep them valid (≤ 0).
        "pass_at_n": { n, c, scale in
            let params: [String: Any] = ["n": [1, 4, 16, Double.random(in: 1...32)].randomElement()!]
            if Bool.random() {
                return ["log_probs": (0..<n).map { _ in -Double.random(in: 0.05...(2 * scale)) }, "params": params]
            }
            return ["logits": randomMatrix(n, c, scale), "labels": randomLabels(n, c), "params": params]
        },
        "kd_kl": { n, c, scale in
            [
                "logits": randomMatrix(n, c, scale), "teacher_logits": randomMatrix(n, c, scale), "labels": randomLabels(n, c),
                "params": ["temperature": [1, 2, 4].randomElement()!, "alpha": Double.random(in: 0...1)] as [String: Any],
            ]
        },
        "dhkd_logit": { n, c, scale in
            [
                "logits": randomMatrix(n, c, scale), "teacher_logits": randomMatrix(n, c, scale),
                "params": [
                    "variant": ["binary_kl_norm", "binary_kl", "mse"].randomElement()!,
                    "temperature": Double.random(in: 0.5...4),
                ] as [String: Any],
            ]
        },
    ]

    private static func randomMatrix(_ rows: Int, _ cols: Int, _ scale: Double) -> [[Double]] {
        (0..<rows).map { _ in (0..<cols).map { _ in Double.random(in: -scale...scale) } }
    }

    private static func randomLabels(_ rows: Int, _ classes: Int) -> [Int] {
        (0..<rows).map { _ in Int.random(in: 0..<classes) }
    }
}
