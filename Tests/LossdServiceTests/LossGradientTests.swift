import Foundation
import Testing

@testable import LossdService

/// Random valid inputs per loss, for losses whose inputs the generic generator below cannot
/// make (embeddings, regression values, bags, ...). Each family adds its own in
/// `SampleInputs+Family.swift`.
enum SampleInputs {
    typealias Generator = @Sendable (_ rows: Int, _ classes: Int, _ scale: Double) -> [String: Any]

    static var all: [String: Generator] {
        marginFamily.merging(robustAndDistillation) { a, _ in a }.merging(multilabelAndRegression) { a, _ in a }
            .merging(embedding) { a, _ in a }.merging(secondWave) { a, _ in a }.merging(segmentation) { a, _ in a }
    }
}

/// Random but valid inputs for a catalogue entry: its family's generator, else one built
/// from its input list.
func randomInputs(for definition: LossDefinition, rows n: Int = 4, classes c: Int = 5, scale: Double = 2) -> [String: Any] {
    if let generator = SampleInputs.all[definition.name] { return generator(n, c, scale) }
    var generator = SystemRandomNumberGenerator()
    func row(_ count: Int) -> [Double] { (0..<count).map { _ in Double.random(in: -scale...scale, using: &generator) } }
    func distribution() -> [Double] {
        let e = row(c).map { exp($0) }
        let s = e.reduce(0, +)
        return e.map { $0 / s }
    }
    var inputs: [String: Any] = [:]
    var groupsTaken = Set<String>()
    for spec in definition.inputs {
        if case .oneOf(let group) = spec.presence {
            guard groupsTaken.insert(group).inserted else { continue }
        }
        switch spec.name {
        case "logits", "teacher_logits": inputs[spec.name] = (0..<n).map { _ in row(c) }
        case "labels": inputs[spec.name] = (0..<n).map { _ in Int.random(in: 0..<c, using: &generator) }
        case "targets": inputs[spec.name] = (0..<n).map { _ in distribution() }
        case "class_weights", "pos_weight": inputs[spec.name] = (0..<c).map { _ in Double.random(in: 0.5...2, using: &generator) }
        case "sample_weights": inputs[spec.name] = (0..<n).map { _ in Double.random(in: 0.5...2, using: &generator) }
        default: break
        }
    }
    return inputs
}

@Suite("Gradients of every catalogue entry")
struct LossGradientTests {
    /// Central finite differences of the mean against the analytic gradient, for every
    /// differentiable input of every loss: a new loss is checked the moment it is registered.
    @Test(arguments: LossCatalogue.all.map(\.name))
    func gradientsMatchCentralDifferences(_ name: String) throws {
        let definition = LossCatalogue.all[name]!
        for _ in 0..<3 {
            var body = randomInputs(for: definition)
            body["loss"] = name
            body["return_grad"] = true
            let (status, json) = try post(body)
            try #require(status == 200, "\(json)")
            let grads = json["grad"] as! [String: Any]
            for spec in definition.inputs where spec.gradient {
                guard let input = body[spec.name] else { continue }
                let analytic = flat(grads[spec.name])
                let count = flat(input).count
                #expect(count > 0, "\(name): no \(spec.name) values to differentiate")
                #expect(analytic.count == count, "\(name) ∂/∂\(spec.name) has \(analytic.count) entries for \(count) inputs")
                for k in 0..<min(count, analytic.count) {
                    let x = flat(input)[k]
                    func centralDifference(_ h: Double) throws -> Double {
                        body[spec.name] = replacing(k, in: input, with: x + h)
                        let up = try post(body).json["value"] as! Double
                        body[spec.name] = replacing(k, in: input, with: x - h)
                        let down = try post(body).json["value"] as! Double
                        body[spec.name] = input
                        return (up - down) / (2 * h)
                    }
                    let h = 1e-5 * max(1, abs(x))
                    var numeric = try centralDifference(h)
                    if abs(numeric - analytic[k]) > 1e-6 * max(1, abs(analytic[k])) {
                        // Random inputs can put a kink (a max, an |x|, a clip) within h of x,
                        // which spoils the difference however right the gradient is. A wrong
                        // gradient stays wrong with a 100 times smaller step; a kink is then
                        // 100 times less likely to be crossed.
                        numeric = try centralDifference(h / 100)
                    }
                    #expect(
                        abs(numeric - analytic[k]) <= 1e-6 * max(1, abs(analytic[k])),
                        "\(name) ∂/∂\(spec.name)[flat \(k)]: \(analytic[k]) vs \(numeric)")
                }
            }
        }
    }

    @Test(arguments: LossCatalogue.all.filter { $0.inputs.contains { $0.name == "logits" } }.map(\.name), [1e4, 1e30])
    func extremeLogitsGiveFiniteValuesAndGradients(_ name: String, _ magnitude: Double) throws {
        let definition = LossCatalogue.all[name]!
        var body = randomInputs(for: definition, scale: 1)
        guard body["logits"] is [[Double]] else { return }
        var sign = 1.0
        body["logits"] = (body["logits"] as! [[Double]]).map { row in row.map { _ in sign = -sign; return sign * magnitude } }
        body["loss"] = name
        body["return_grad"] = true
        let (status, json) = try post(body)
        try #require(status == 200, "\(json)")
        #expect((json["value"] as! Double).isFinite)
        let gradient = flat((json["grad"] as! [String: Any])["logits"])
        #expect(gradient.allSatisfy { $0.isFinite })
    }

    @Test func float32AndFloat64Base64LogitsOfPlusMinus1e4AreExact() throws {
        for (dtype, bytes) in [("float32", float32Bytes([1e4, -1e4, 0])), ("float64", float64Bytes([1e4, -1e4, 0]))] {
            let body: [String: Any] = [
                "loss": "cross_entropy", "labels": [1],
                "logits": ["shape": [1, 3], "dtype": dtype, "base64": Data(bytes).base64EncodedString()],
            ]
            let (status, json) = try post(body)
            try #require(status == 200, "\(json)")
            #expect(json["value"] as? Double == 2e4, "\(dtype)")
        }
    }

    func float32Bytes(_ values: [Float]) -> [UInt8] { values.flatMap { withUnsafeBytes(of: $0.bitPattern.littleEndian, Array.init) } }
    func float64Bytes(_ values: [Double]) -> [UInt8] { values.flatMap { withUnsafeBytes(of: $0.bitPattern.littleEndian, Array.init) } }
}

/// A copy of a nested array of numbers with its k-th number (row-major) replaced.
func replacing(_ k: Int, in nested: Any, with value: Double) -> Any {
    var index = k
    func walk(_ node: Any) -> Any {
        if let array = node as? [Any] {
            return array.map { walk($0) }
        }
        defer { index -= 1 }
        return index == 0 ? value : node
    }
    return walk(nested)
}
