import Foundation
import Testing

@testable import LossdService

/// Random but valid inputs for a catalogue entry, from its input list.
func randomInputs(for definition: LossDefinition, rows n: Int = 4, classes c: Int = 5, scale: Double = 2) -> [String: Any] {
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
        if spec.presence.hasPrefix("one of") {
            guard groupsTaken.insert(spec.presence).inserted else { continue }
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
        let definition = LossCatalogue.byName[name]!
        for _ in 0..<3 {
            var body = randomInputs(for: definition)
            body["loss"] = name
            body["return_grad"] = true
            let (status, json) = try post(body)
            try #require(status == 200, "\(json)")
            let grads = json["grad"] as! [String: Any]
            for spec in definition.inputs where spec.gradient {
                let analytic = flat(grads[spec.name])
                var rows = body[spec.name] as! [[Double]]
                let cols = rows[0].count
                #expect(analytic.count == rows.count * cols)
                for k in 0..<analytic.count {
                    let (r, c) = (k / cols, k % cols)
                    let x = rows[r][c], h = 1e-5 * max(1, abs(x))
                    rows[r][c] = x + h
                    body[spec.name] = rows
                    let up = try post(body).json["value"] as! Double
                    rows[r][c] = x - h
                    body[spec.name] = rows
                    let down = try post(body).json["value"] as! Double
                    rows[r][c] = x
                    body[spec.name] = rows
                    let numeric = (up - down) / (2 * h)
                    #expect(abs(numeric - analytic[k]) <= 1e-6 * max(1, abs(analytic[k])), "\(name) ∂/∂\(spec.name)[\(r)][\(c)]: \(analytic[k]) vs \(numeric)")
                }
            }
        }
    }

    @Test(arguments: LossCatalogue.all.map(\.name), [1e4, 1e30])
    func extremeLogitsGiveFiniteValuesAndGradients(_ name: String, _ magnitude: Double) throws {
        let definition = LossCatalogue.byName[name]!
        var body = randomInputs(for: definition, scale: 1)
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
