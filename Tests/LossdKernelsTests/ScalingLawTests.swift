import Foundation
import Testing

@testable import LossdKernels

/// The reference vectors of Fixtures/scaling_vectors.json (written by
/// scripts/scaling-vectors.py): each case's data and options, the reference fit's
/// parameters and objective, and the true law the data came from.
enum ScalingVectors {
    struct Case: Sendable {
        let name: String
        let data: ScalingData
        let options: ScalingOptions
        let reference: [String: Double]
        let referenceObjective: Double
        let truth: [String: Double]
        let noisy: Bool
    }

    static let cases: [Case] = {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("Fixtures/scaling_vectors.json")
        guard let bytes = try? Data(contentsOf: url),
            let root = try? JSONSerialization.jsonObject(with: bytes) as? [String: Any],
            let entries = root["cases"] as? [[String: Any]]
        else { return [] }
        return entries.compactMap(parse)
    }()

    static func numbers(_ any: Any?) -> [Double] { (any as? [NSNumber])?.map(\.doubleValue) ?? [] }
    static func dict(_ any: Any?) -> [String: Double] {
        (any as? [String: NSNumber])?.mapValues(\.doubleValue) ?? [:]
    }

    static func parse(_ e: [String: Any]) -> Case? {
        guard let name = e["name"] as? String, let law = e["law"] as? String,
            let rows = e["data"] as? [[String: Any]], let expect = e["expect"] as? [String: Any],
            let objective = (expect["objective"] as? NSNumber)?.doubleValue
        else { return nil }
        let params = e["params"] as? [String: Any] ?? [:]
        var options = ScalingOptions()
        options.nEncoderRef = (params["n_encoder_ref"] as? NSNumber)?.doubleValue
        options.nDecoderRef = (params["n_decoder_ref"] as? NSNumber)?.doubleValue
        if let d = (params["decay"] as? NSNumber)?.doubleValue { options.decay = d }
        if let w = (params["warmup_steps"] as? NSNumber)?.intValue { options.warmupSteps = w }
        func column(_ key: String) -> [Double] { rows.map { ($0[key] as? NSNumber)?.doubleValue ?? .nan } }
        let data: ScalingData
        switch law {
        case "power_law": data = .powerLaw(x: column("x"), loss: column("loss"))
        case "chinchilla": data = .chinchilla(n: column("n"), d: column("d"), loss: column("loss"))
        case "nmt": data = .nmt(nEncoder: column("n_encoder"), nDecoder: column("n_decoder"), loss: column("loss"))
        case "lr_annealing":
            data = .lrAnnealing(rows.map { LossCurve(lr: numbers($0["lr"]), loss: numbers($0["loss"]), steps: ($0["steps"] as? [NSNumber])?.map(\.intValue)) })
        default: return nil
        }
        return Case(
            name: name, data: data, options: options, reference: dict(expect["params"]), referenceObjective: objective,
            truth: dict(expect["truth"]), noisy: !name.hasSuffix("noise0.0"))
    }
}

/// Synthetic schedules of the reference generator.
enum Schedules {
    /// Linear warm-up to `peak` over `warm` steps, then cosine from `peak` to `final`.
    static func cosine(_ steps: Int, peak: Double, warm: Int, final: Double) -> [Double] {
        (1...steps).map { s in
            s <= warm ? peak * Double(s) / Double(max(warm, 1))
                : final + 0.5 * (peak - final) * (1 + cos(Double.pi * Double(s - warm) / Double(steps - warm)))
        }
    }

    /// Warm-up, stable at `peak`, then linear decay to 0 over the last `decayFraction`.
    static func wsd(_ steps: Int, peak: Double, warm: Int, decayFraction: Double = 0.1) -> [Double] {
        let start = Int(Double(steps) * (1 - decayFraction))
        return (1...steps).map { s in
            if s > start { return peak * Double(steps - s) / Double(steps - start) }
            return s <= warm ? peak * Double(s) / Double(max(warm, 1)) : peak
        }
    }
}

func relativeError(_ a: Double, _ b: Double) -> Double { abs(a - b) / max(abs(b), 1e-300) }

@Suite("ScalingLaw: reference vectors")
struct ScalingLawVectorTests {
    @Test func vectorsLoad() {
        #expect(ScalingVectors.cases.count == 8)
    }

    @Test(arguments: ScalingVectors.cases.map(\.name))
    func vectorCase(_ name: String) throws {
        let c = try #require(ScalingVectors.cases.first { $0.name == name })
        let fit = try ScalingFit.fit(c.data, options: c.options)
        let r = fit.report
        // Never worse than the reference procedure (docs/scaling.md, "Fitting").
        #expect(r.objective <= c.referenceObjective + 1e-9 + 1e-6 * c.referenceObjective,
                "objective \(r.objective) vs reference \(c.referenceObjective)")
        #expect(r.converged)
        #expect(r.starts > 0 && r.nPoints > 0)
        let truth = try ScalingModel(law: fit.model.law, named: c.truth)
        if !c.noisy {
            for (name, value) in fit.model.named {
                let want = try #require(c.truth[name])
                #expect(relativeError(value, want) <= 1e-3, "\(name) = \(value), truth \(want)")
            }
            #expect(r.rmseLog < 1e-6 && r.r2 > 0.999999)
        }
        // Extrapolation: 10× the largest posted size (every step of a WSD curve).
        let limit = c.noisy ? 0.03 : 1e-5
        let query: ScalingQuery
        switch c.data {
        case .powerLaw(let x, _): query = .powerLaw(x: [10 * (x.max() ?? 1)])
        case .chinchilla(let n, let d, _): query = .chinchilla(n: [10 * (n.max() ?? 1), 7e10], d: [10 * (d.max() ?? 1), 1.4e12])
        case .nmt(let ne, let nd, _): query = .nmt(nEncoder: [10 * (ne.max() ?? 1)], nDecoder: [10 * (nd.max() ?? 1)])
        case .lrAnnealing: query = .lrAnnealing(lr: Schedules.wsd(4000, peak: 3e-4, warm: c.options.warmupSteps), steps: nil)
        }
        let got = try fit.model.predict(query)
        let want = try truth.predict(query)
        var worst = 0.0
        for (g, w) in zip(got, want) { worst = max(worst, relativeError(g, w)) }
        #expect(worst <= limit, "worst extrapolation error \(worst)")
        if case .nmt = c.data {
            #expect(fit.model.law == .nmt(nEncoderRef: 1e8, nDecoderRef: 1e8))
        }
        // Noisy fits land near the reference's parameters too (same optimum).
        for (name, value) in fit.model.named {
            let want = try #require(c.reference[name])
            #expect(relativeError(value, want) <= (c.noisy ? 1e-2 : 1e-3), "\(name) = \(value), reference \(want)")
        }
    }
}

