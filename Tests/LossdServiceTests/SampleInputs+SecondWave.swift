import Foundation

@testable import LossdService

extension SampleInputs {
    /// Random valid inputs for tcm, implicit_prm, comp_sum_adversarial and normalized_softmax
    /// (kl_div's logits and soft targets are the generic ones).
    static let secondWave: [String: Generator] = [
        "tcm": { n, d, scale in
            // 2n rows, every label at least twice; margins that leave some pairs of each kind hard.
            let labels = (0..<(2 * n)).map { $0 % max(1, n - 1) }.shuffled()
            return [
                "embeddings": embeddingRows(2 * n, d, scale), "labels": labels,
                "params": ["margin_plus": 0.3, "margin_minus": -0.2, "lambda_minus": 0.5],
            ]
        },
        "implicit_prm": { n, t, scale in
            let logProbs = (0..<n).map { _ in (0..<t).map { _ in -Double.random(in: 0.01...(2 * scale)) } }
            let reference = (0..<n).map { _ in (0..<t).map { _ in -Double.random(in: 0.01...(2 * scale)) } }
            let mask = (0..<n).map { i in (0..<t).map { j in j < t - (i % 2) ? 1.0 : 0.0 } }
            return [
                "log_probs": logProbs, "ref_log_probs": reference, "outcomes": (0..<n).map { $0 % 2 }, "mask": mask,
                "step_ends": (0..<n).map { _ in [1, t - 1] }, "sample_weights": (0..<n).map { _ in Double.random(in: 0.5...2) },
                "params": ["beta": 0.5],
            ]
        },
        "comp_sum_adversarial": { n, c, scale in
            let logits = embeddingRows(n, c, scale)
            let adversarial = logits.map { row in row.map { $0 + Double.random(in: -0.5...0.5) } }
            return [
                "logits": logits, "adv_logits": adversarial, "labels": (0..<n).map { _ in Int.random(in: 0..<c) },
                "sample_weights": (0..<n).map { _ in Double.random(in: 0.5...2) }, "params": ["tau": 1.5, "nu": 0.8],
            ]
        },
        "normalized_softmax": { n, c, scale in
            // 2n anchors over c classes; batch negatives with a threshold that drops a few.
            [
                "embeddings": embeddingRows(2 * n, 4, scale), "prototypes": embeddingRows(c, 4, scale),
                "labels": (0..<(2 * n)).map { $0 % c }, "sample_weights": (0..<(2 * n)).map { _ in Double.random(in: 0.5...2) },
                "params": ["scale": 4.0, "margin": 0.2, "batch_negatives": true, "filter_threshold": 0.5],
            ]
        },
    ]
}
