@testable import LossdService

extension SampleInputs {
    /// Random valid inputs for info_nce, nt_xent, supcon, cacr (loss name → generator).
    static let embedding: [String: Generator] = [
        "info_nce": { n, d, scale in
            // Two extra keys act as negatives only.
            ["queries": embeddingRows(n, d, scale), "keys": embeddingRows(n + 2, d, scale), "params": ["temperature": 0.5]]
        },
        "nt_xent": { n, d, scale in
            ["queries": embeddingRows(n, d, scale), "keys": embeddingRows(n, d, scale), "params": ["temperature": 0.5]]
        },
        "supcon": { n, d, scale in
            // 2n rows, every class at least twice, one class thrice when shuffled labels repeat.
            let labels = (0..<(2 * n)).map { $0 % max(1, n - 1) }.shuffled()
            return ["embeddings": embeddingRows(2 * n, d, scale), "labels": labels, "params": ["temperature": 0.5]]
        },
        "cacr": { n, d, scale in
            ["embeddings": (0..<n).map { _ in embeddingRows(3, d, scale) }, "params": ["tau_neg": 0.9, "tau_pos": 0.5]]
        },
    ]

    /// [rows][width] uniform in [−scale, scale].
    static func embeddingRows(_ rows: Int, _ width: Int, _ scale: Double) -> [[Double]] {
        (0..<rows).map { _ in (0..<width).map { _ in Double.random(in: -scale...scale) } }
    }
}
