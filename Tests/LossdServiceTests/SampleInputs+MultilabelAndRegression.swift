@testable import LossdService

extension SampleInputs {
    /// Random valid inputs for decoupled_softmax, multilabel_infonce (alias infonce), soft_topk, hl_gauss, two_hot, aggregate_response (loss name → generator).
    static let multilabelAndRegression: [String: Generator] = [
        "decoupled_softmax": { n, c, scale in multilabel(n, c, scale) },
        "multilabel_infonce": { n, c, scale in multilabel(n, c, scale) },
        "soft_topk": { n, c, scale in
            var inputs = multilabel(n, c, scale)
            inputs["params"] = ["k": Double(c) / 2.5, "alpha": 1.5] as [String: Any]
            return inputs
        },
        "hl_gauss": { n, c, scale in
            var inputs = regression(n, c, scale)
            inputs["params"] = ["bins": ["min": -1.0, "max": 1.0, "count": c] as [String: Any], "sigma_ratio": 1.2] as [String: Any]
            return inputs
        },
        "two_hot": { n, c, scale in
            var inputs = regression(n, c, scale)
            inputs["params"] = ["bins": ["min": -1.0, "max": 1.0, "count": c] as [String: Any]] as [String: Any]
            return inputs
        },
        "aggregate_response": { n, _, scale in
            var generator = SystemRandomNumberGenerator()
            // Bag ids 0, 3, 6, ... so that ids are sparse; every bag is used at least once.
            let bagCount = max(1, n / 2)
            let bags = (0..<n).map { i in 3 * (i < bagCount ? i : Int.random(in: 0..<bagCount, using: &generator)) }
            return [
                "predictions": (0..<n).map { _ in Double.random(in: -scale...scale, using: &generator) },
                "bags": bags,
                "bag_responses": (0..<bagCount).map { _ in Double.random(in: -scale...scale, using: &generator) },
                "params": ["rho": 0.3, "bag_weighting": "uniform"] as [String: Any],
            ]
        },
    ]

    /// Logits with 0/1 multi-label targets, at least one positive and one negative per row.
    private static func multilabel(_ n: Int, _ c: Int, _ scale: Double) -> [String: Any] {
        var generator = SystemRandomNumberGenerator()
        let logits = (0..<n).map { _ in (0..<c).map { _ in Double.random(in: -scale...scale, using: &generator) } }
        let targets = (0..<n).map { _ -> [Double] in
            let positive = Int.random(in: 0..<c, using: &generator)
            let negative = (positive + Int.random(in: 1..<c, using: &generator)) % c
            return (0..<c).map { j in j == positive ? 1 : j == negative ? 0 : Bool.random(using: &generator) ? 1 : 0 }
        }
        return ["logits": logits, "targets": targets, "sample_weights": (0..<n).map { _ in Double.random(in: 0.5...2, using: &generator) }]
    }

    /// Logits with regression values over bins [-1, 1], some outside (clipped).
    private static func regression(_ n: Int, _ c: Int, _ scale: Double) -> [String: Any] {
        var generator = SystemRandomNumberGenerator()
        return [
            "logits": (0..<n).map { _ in (0..<c).map { _ in Double.random(in: -scale...scale, using: &generator) } },
            "values": (0..<n).map { _ in Double.random(in: -1.3...1.3, using: &generator) },
            "sample_weights": (0..<n).map { _ in Double.random(in: 0.5...2, using: &generator) },
        ]
    }
}
