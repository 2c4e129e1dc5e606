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


@Suite("ScalingLaw: recovery, gradients, derived quantities, bootstrap")
struct ScalingLawPropertyTests {
    static func geomspace(_ a: Double, _ b: Double, _ n: Int) -> [Double] {
        (0..<n).map { a * pow(b / a, Double($0) / Double(n - 1)) }
    }

    @Test func pureKaplanPowerLawWithoutIrreducibleLoss() throws {
        let x = Self.geomspace(1e5, 1e9, 9)
        let truth = try ScalingModel(law: .powerLaw(irreducible: false), named: ["x0": 8.8e13, "alpha": 0.076])
        let loss = try truth.predict(.powerLaw(x: x))
        let fit = try ScalingFit.fit(.powerLaw(x: x, loss: loss), options: ScalingOptions(irreducible: false))
        #expect(fit.report.starts == 9)
        #expect(fit.model["L_inf"] == 0)
        #expect(relativeError(fit.model["x0"] ?? 0, 8.8e13) <= 1e-3)
        #expect(relativeError(fit.model["alpha"] ?? 0, 0.076) <= 1e-3)
        let far = try fit.model.predict(.powerLaw(x: [1e10]))[0]
        #expect(relativeError(far, try truth.predict(.powerLaw(x: [1e10]))[0]) <= 1e-5)
    }

    @Test func anotherChinchillaIsRecovered() throws {
        let law = ScalingLaw.chinchilla
        let truth = try ScalingModel(law: law, named: ["E": 2.0, "A": 800, "B": 2000, "alpha": 0.4, "beta": 0.32])
        var n: [Double] = [], d: [Double] = []
        for a in Self.geomspace(1e7, 3e9, 6) { for b in Self.geomspace(1e9, 3e11, 5) { n.append(a); d.append(b) } }
        let loss = try truth.predict(.chinchilla(n: n, d: d))
        let fit = try ScalingFit.fit(.chinchilla(n: n, d: d, loss: loss))
        for (name, value) in fit.model.named {
            #expect(relativeError(value, truth[name] ?? 0) <= 1e-3, "\(name) = \(value)")
        }
        let q = ScalingQuery.chinchilla(n: [3e10], d: [3e12])
        #expect(relativeError(try fit.model.predict(q)[0], try truth.predict(q)[0]) <= 1e-5)
    }

    /// Central differences of f against the analytic gradient, with δ large (every
    /// residual quadratic) and small (every residual linear), away from the Huber kink.
    @Test(arguments: [1.0, 1e-4])
    func objectiveGradientMatchesFiniteDifferences(delta: Double) throws {
        let x = Self.geomspace(1e6, 1e9, 8)
        let jitter = (0..<8).map { 1 + 0.05 * sin(Double($0) * 1.7) }
        let lossPL = zip(x, jitter).map { (1.7 + pow(8.8e6 / $0.0, 0.34)) * $0.1 }
        let cosine = Schedules.cosine(300, peak: 3e-4, warm: 20, final: 3e-5)
        let lossLR = (0..<300).map { 2.0 + 0.3 * exp(-Double($0) / 100) * jitter[$0 % 8] }
        let cases: [(ScalingData, ScalingOptions, [Double])] = [
            (.powerLaw(x: x, loss: lossPL), ScalingOptions(), [0.4, 15.5, -1.2]),
            (.powerLaw(x: x, loss: lossPL), ScalingOptions(irreducible: false), [15.5, -1.2]),
            (.chinchilla(n: x, d: x.map { $0 * 37 }, loss: lossPL), ScalingOptions(), [0.5, 5.5, 6.1, 0.33, 0.27]),
            (.nmt(nEncoder: x, nDecoder: x.reversed(), loss: lossPL), ScalingOptions(), [0.2, 0.1, 0.3, 0.45]),
            (.lrAnnealing([LossCurve(lr: cosine, loss: lossLR)]), ScalingOptions(decay: 0.99, warmupSteps: 20), [1.9, -0.5, -0.6, -1.0]),
        ]
        for (data, baseOptions, theta) in cases {
            var options = baseOptions
            options.huberDelta = delta
            let law = try ScalingLaw.resolve(data.kind, options: options, data: data)
            let problem = try ScalingProblem(law: law, delta: delta, data: data, weights: nil)
            var g = [Double](repeating: 0, count: theta.count), scratch = g
            let f = problem.objective(theta, gradient: &g)
            #expect(f.isFinite && f > 0)
            for j in theta.indices {
                let h = 1e-6 * max(1, abs(theta[j]))
                var tp = theta, tm = theta
                tp[j] += h
                tm[j] -= h
                let fd = (problem.objective(tp, gradient: &scratch) - problem.objective(tm, gradient: &scratch)) / (2 * h)
                #expect(abs(fd - g[j]) <= 1e-6 * max(1, abs(g[j])), "\(law.kind) δ=\(delta) θ[\(j)]: analytic \(g[j]), numeric \(fd)")
            }
        }
    }

    @Test func powerLawDerivedQuantities() throws {
        let model = try ScalingModel(law: .powerLaw(irreducible: true), named: ["L_inf": 1.69, "x0": 8.8e6, "alpha": 0.34])
        let red = try ScalingDerived.reducible(model, x: [1e8])[0]
        #expect(abs(red - (try model.predict(.powerLaw(x: [1e8]))[0] - 1.69)) <= 1e-14)
        let x = try #require(try ScalingDerived.xForLoss(model, target: 2.0))
        #expect(relativeError(x, 275725980.8222365) <= 1e-12)
        #expect(abs(try model.predict(.powerLaw(x: [x]))[0] - 2.0) <= 1e-12)
        #expect(try ScalingDerived.xForLoss(model, target: 1.69) == nil)
        #expect(try ScalingDerived.xForLoss(model, target: 1.0) == nil)
    }

    @Test func chinchillaComputeOptimalAllocation() throws {
        let model = try ScalingModel(law: .chinchilla, named: ["E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28])
        let c = 5.76e23
        let a = try #require(try ScalingDerived.computeOptimal(model, compute: [c]).first)
        #expect(relativeError(a.nOpt, 32189859151.368168) <= 1e-12)
        #expect(relativeError(a.dOpt, 2982305686662.804) <= 1e-12)
        #expect(relativeError(a.loss, 1.930748101731648) <= 1e-12)
        #expect(relativeError(6 * a.nOpt * a.dOpt, c) <= 1e-12)
        // A minimum along C = 6ND.
        for s in [0.99, 1.01] {
            let n = a.nOpt * s
            #expect(try model.predict(.chinchilla(n: [n], d: [c / (6 * n)]))[0] > a.loss)
        }
    }

    @Test func nmtOptimalSplit() throws {
        let model = try ScalingModel(law: .nmt(nEncoderRef: 1e8, nDecoderRef: 1e8), named: ["L_inf": 0.9, "beta": 1.2, "pe": 0.25, "pd": 0.45])
        let s = try #require(try ScalingDerived.optimalSplit(model, totals: [1e9]).first)
        #expect(relativeError(s.nEncoder, 1e9 * 0.25 / 0.7) <= 1e-14)
        #expect(relativeError(s.nDecoder, 1e9 * 0.45 / 0.7) <= 1e-14)
        #expect(relativeError(s.loss, 1.277849838293228) <= 1e-12)
        for f in [0.99, 1.01] {
            let ne = s.nEncoder * f
            #expect(try model.predict(.nmt(nEncoder: [ne], nDecoder: [1e9 - ne]))[0] > s.loss)
        }
    }

    @Test func learningRateAreasByHand() throws {
        // W = 1, λ = 0.5: η_W := η_2 = 2; m = 0, −1, −0.5, 1.75.
        let a = try LearningRateAreas(lr: [1, 2, 3, 3, 1], decay: 0.5, warmupSteps: 1)
        #expect(a.s1 == [2, 5, 8, 9])
        #expect(a.s2 == [0, -1, -1.5, 0.25])
        #expect(a.steps == 2...5)
        // A constant schedule builds no annealing area; with λ = 0, S2(s) = η_{W+1} − η_s.
        let flat = try LearningRateAreas(lr: [0.5, 0.5, 0.5], decay: 0.999, warmupSteps: 0)
        #expect(flat.s1 == [0.5, 1, 1.5] && flat.s2 == [0, 0, 0])
        let lr = [4.0, 3, 1, 2]
        let noMomentum = try LearningRateAreas(lr: lr, decay: 0, warmupSteps: 0)
        #expect(noMomentum.s2 == lr.map { 4 - $0 })
        #expect(try LearningRateAreas(lr: [1, 2], decay: 0.9, warmupSteps: 5).s1.isEmpty)
    }

    /// Fit on one dense warm-up + cosine curve, then predict a WSD schedule never run.
    @Test func cosineFitPredictsWSDCurve() throws {
        let law = ScalingLaw.lrAnnealing(decay: 0.995, warmupSteps: 50)
        let truth = try ScalingModel(law: law, named: ["L0": 3.0, "A": 0.6, "alpha": 0.4, "C": 0.5])
        let cosine = Schedules.cosine(3000, peak: 1e-3, warm: 50, final: 1e-4)
        let onCurve = try truth.predict(.lrAnnealing(lr: cosine, steps: nil))
        let loss = [Double](repeating: 9, count: 50) + onCurve  // warm-up losses are ignored
        let options = ScalingOptions(decay: 0.995, warmupSteps: 50)
        let fit = try ScalingFit.fit(.lrAnnealing([LossCurve(lr: cosine, loss: loss)]), options: options)
        #expect(fit.report.nPoints == 2950)
        let wsd = Schedules.wsd(4000, peak: 1e-3, warm: 50)
        let got = try ScalingDerived.curve(fit.model, lr: wsd)
        let want = try ScalingDerived.curve(truth, lr: wsd)
        #expect(got.steps.first == 51 && got.steps.last == 4000 && got.s1 == want.s1 && got.s2 == want.s2)
        var worst = 0.0
        for (g, w) in zip(got.loss, want.loss) { worst = max(worst, relativeError(g, w)) }
        #expect(worst <= 1e-5, "worst step error \(worst)")
        let sparse = try ScalingDerived.curve(fit.model, lr: wsd, steps: [51, 3600, 4000])
        #expect(sparse.loss == [got.loss[0], got.loss[3549], got.loss[3949]])
    }

    @Test func bootstrapIsDeterministicAndCoversTheEstimate() throws {
        let c = try #require(ScalingVectors.cases.first { $0.name == "power_law_noise0.01" })
        let fit = try ScalingFit.fit(c.data, options: c.options)
        let query = ScalingQuery.powerLaw(x: [1e10])
        let a = try ScalingBootstrap.run(fit, samples: 200, seed: 7, level: 0.9, query: query)
        let b = try ScalingBootstrap.run(fit, samples: 200, seed: 7, level: 0.9, query: query)
        let other = try ScalingBootstrap.run(fit, samples: 200, seed: 8, level: 0.9, query: query)
        #expect(a == b)
        #expect(a != other)
        #expect(a.refits == 200 && a.parameters.count == 3 && a.predictions.count == 1)
        for (interval, (name, value)) in zip(a.parameters, fit.model.named) {
            #expect(interval.lower <= value && value <= interval.upper, "\(name) = \(value) outside \(interval)")
            #expect(interval.lower < interval.upper)
        }
        let estimate = try fit.model.predict(query)[0]
        #expect(a.predictions[0].lower <= estimate && estimate <= a.predictions[0].upper)
        // A wider level gives a wider interval from the same draws.
        let wide = try ScalingBootstrap.run(fit, samples: 200, seed: 7, level: 0.99, query: query)
        #expect(wide.predictions[0].lower <= a.predictions[0].lower && wide.predictions[0].upper >= a.predictions[0].upper)
    }

    @Test func bootstrapResamplesWholeCurves() throws {
        let law = ScalingLaw.lrAnnealing(decay: 0.999, warmupSteps: 0)
        let truth = try ScalingModel(law: law, named: ["L0": 2.0, "A": 0.5, "alpha": 0.5, "C": 0.3])
        var curves: [LossCurve] = []
        for (k, peak) in [1e-3, 2e-3, 5e-4].enumerated() {
            let lr = Schedules.cosine(400, peak: peak, warm: 0, final: peak / 10)
            let steps = Array(stride(from: 1, through: 400, by: 10))
            let clean = try truth.predict(.lrAnnealing(lr: lr, steps: steps))
            let noisy = clean.enumerated().map { $0.element * (1 + 0.01 * sin(Double($0.offset * 7 + k))) }
            curves.append(LossCurve(lr: lr, loss: noisy, steps: steps))
        }
        let fit = try ScalingFit.fit(.lrAnnealing(curves))
        let boot = try ScalingBootstrap.run(fit, samples: 20, seed: 1)
        #expect(boot.refits == 20 && boot.parameters.count == 4 && boot.predictions.isEmpty)
        #expect(try ScalingBootstrap.run(fit, samples: 20, seed: 1) == boot)
    }

    @Test func percentileInterpolatesLikeNumPy() {
        #expect(ScalingBootstrap.percentile([1, 2, 3, 4], 0.25) == 1.75)
        #expect(ScalingBootstrap.percentile([1, 2, 3, 4], 1) == 4)
        #expect(ScalingBootstrap.percentile([5], 0.5) == 5)
    }
}
