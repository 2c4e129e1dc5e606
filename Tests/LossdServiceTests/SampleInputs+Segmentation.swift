import Foundation

@testable import LossdService

extension SampleInputs {
    /// Random valid inputs for dice, cldice, skeleton_recall (loss name → generator): logits
    /// [2][3][5][6] or [2][2][3][4][3] (rank 4 or 5 at random) whose probabilities are
    /// pairwise at least 1e-4 apart within every (sample, class) map, so that no min or max of
    /// the soft skeleton is tied or changes its winner within a finite-difference step.
    static let segmentation: [String: Generator] = [
        "dice": { _, _, scale in
            let (logits, shape) = segmentationLogits(scale)
            return ["logits": logits, "labels": classMap(shape), "params": ["include_background": Bool.random()]]
        },
        "cldice": { _, _, scale in
            let (logits, shape) = segmentationLogits(scale)
            var inputs: [String: Any] = ["logits": logits, "params": ["iterations": Int.random(in: 1...3)]]
            if Bool.random() {
                inputs["labels"] = classMap(shape)
            } else {
                // Soft targets in [0, 1], also skeletonised.
                inputs["targets"] = nest((0..<shape.reduce(1, *)).map { _ in Double.random(in: 0...1) }, shape)
            }
            return inputs
        },
        "skeleton_recall": { _, _, scale in
            let (logits, shape) = segmentationLogits(scale)
            return ["logits": logits, "skeleton": classMap(shape), "params": ["smooth": 0.5]]
        },
    ]

    /// Logits as nested arrays, and their shape.
    static func segmentationLogits(_ scale: Double) -> (Any, [Int]) {
        let shape = Bool.random() ? [2, 3, 5, 6] : [2, 2, 3, 4, 3]
        let pixels = shape[2...].reduce(1, *), classes = shape[1]
        while true {
            let z = (0..<shape.reduce(1, *)).map { _ in Double.random(in: -scale...scale) }
            var separated = true
            for sample in 0..<shape[0] where separated {
                // softmax over C at each pixel, then each class's map sorted.
                var p = [[Double]](repeating: [], count: classes)
                for s in 0..<pixels {
                    let column = (0..<classes).map { z[(sample * classes + $0) * pixels + s] }
                    let top = column.max()!
                    let e = column.map { exp($0 - top) }
                    let total = e.reduce(0, +)
                    for c in 0..<classes { p[c].append(e[c] / total) }
                }
                for map in p {
                    let sorted = map.sorted()
                    if zip(sorted, sorted.dropFirst()).contains(where: { $1 - $0 < 1e-4 }) { separated = false }
                }
            }
            if separated { return (nest(z, shape), shape) }
        }
    }

    /// A random class map [N][spatial…] for logits of `shape`.
    static func classMap(_ shape: [Int]) -> Any {
        let count = shape[0] * shape[2...].reduce(1, *)
        return nest((0..<count).map { _ in Double(Int.random(in: 0..<shape[1])) }, [shape[0]] + Array(shape[2...]))
    }

    /// Row-major values as nested arrays of `shape`.
    static func nest(_ values: [Double], _ shape: [Int]) -> Any {
        guard shape.count > 1 else { return values }
        let inner = shape.dropFirst().reduce(1, *)
        return (0..<shape[0]).map { i in nest(Array(values[(i * inner)..<((i + 1) * inner)]), Array(shape.dropFirst())) }
    }
}
