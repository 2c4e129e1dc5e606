import Foundation
import Testing

@testable import LossdKernels

/// Every invalid input of docs/scaling.md ("Invalid input") throws its reason and names
/// the field at fault.
@Suite("ScalingLaw: invalid input")
struct ScalingLawInputTests {
    static let x: [Double] = [1e6, 1e7, 1e8, 1e9, 1e10]
    static let loss: [Double] = [3.0, 2.6, 2.3, 2.1, 2.0]

    func expectError(
        _ reason: ScalingInputError.Reason, _ field: String?, sourceLocation: SourceLocation = #_sourceLocation,
        _ body: () throws -> Void
    ) {
        do {
            try body()
            Issue.record("no error; expected \(reason) at \(field ?? "nil")", sourceLocation: sourceLocation)
        } catch let error as ScalingInputError {
            #expect(error.reason == reason, "\(error)", sourceLocation: sourceLocation)
            #expect(error.field == field, "\(error)", sourceLocation: sourceLocation)
        } catch {
            Issue.record("unexpected error \(error)", sourceLocation: sourceLocation)
        }
    }

    @Test func pointLaws() {
        expectError(.tooFewPoints, "/data") { _ = try ScalingFit.fit(.powerLaw(x: Array(Self.x.prefix(3)), loss: Array(Self.loss.prefix(3)))) }
        // Without L_inf three points are enough.
        expectError(.nonPositive, "/data/1/x") { _ = try ScalingFit.fit(.powerLaw(x: [1, 0, 3, 4], loss: [3, 2, 1, 1]), options: ScalingOptions(irreducible: false)) }
        expectError(.nonPositive, "/data/4/loss") { _ = try ScalingFit.fit(.powerLaw(x: Self.x, loss: [3, 2, 1, 1, -1])) }
        expectError(.nonFinite, "/data/2/loss") { _ = try ScalingFit.fit(.powerLaw(x: Self.x, loss: [3, 2, .nan, 1, 1])) }
        expectError(.nonFinite, "/data/3/n") {
            _ = try ScalingFit.fit(.chinchilla(n: [1, 2, 3, .infinity, 5, 6], d: [1, 2, 3, 4, 5, 6], loss: [1, 1, 1, 1, 1, 1]))
        }
        expectError(.nonPositive, "/data/0/d") {
            _ = try ScalingFit.fit(.chinchilla(n: [1, 2, 3, 4, 5, 6], d: [-1, 2, 3, 4, 5, 6], loss: [1, 1, 1, 1, 1, 1]))
        }
        expectError(.tooFewPoints, "/data") {
            _ = try ScalingFit.fit(.chinchilla(n: [1, 2, 3, 4, 5], d: [1, 2, 3, 4, 5], loss: [1, 1, 1, 1, 1]))
        }
        expectError(.nonPositive, "/data/2/n_encoder") { _ = try ScalingFit.fit(.nmt(nEncoder: [1, 2, 0, 4, 5], nDecoder: Self.x, loss: Self.loss)) }
        expectError(.nonPositive, "/data/1/n_decoder") {
            _ = try ScalingFit.fit(.nmt(nEncoder: Self.x, nDecoder: [1, -2, 3, 4, 5], loss: Self.loss), options: ScalingOptions(nEncoderRef: 1, nDecoderRef: 1))
        }
        expectError(.lengthMismatch, "/data") { _ = try ScalingFit.fit(.powerLaw(x: Self.x, loss: [1, 2])) }
    }

    @Test func weights() {
        expectError(.lengthMismatch, "/weights") { _ = try ScalingFit.fit(.powerLaw(x: Self.x, loss: Self.loss), weights: [1, 1]) }
        expectError(.nonPositive, "/weights/1") { _ = try ScalingFit.fit(.powerLaw(x: Self.x, loss: Self.loss), weights: [1, -1, 1, 1, 1]) }
        expectError(.nonFinite, "/weights/0") { _ = try ScalingFit.fit(.powerLaw(x: Self.x, loss: Self.loss), weights: [.nan, 1, 1, 1, 1]) }
        expectError(.nonPositive, "/weights") { _ = try ScalingFit.fit(.powerLaw(x: Self.x, loss: Self.loss), weights: [0, 0, 0, 0, 0]) }
    }

    @Test func options() {
        let pl = ScalingData.powerLaw(x: Self.x, loss: Self.loss)
        let curve = ScalingData.lrAnnealing([LossCurve(lr: [Double](repeating: 1e-3, count: 10), loss: [Double](repeating: 2, count: 10))])
        expectError(.invalidOption, "/params/huber_delta") { _ = try ScalingFit.fit(pl, options: ScalingOptions(huberDelta: 0)) }
        expectError(.invalidOption, "/params/decay") { _ = try ScalingFit.fit(curve, options: ScalingOptions(decay: 1)) }
        expectError(.invalidOption, "/params/decay") { _ = try ScalingFit.fit(curve, options: ScalingOptions(decay: -0.1)) }
        expectError(.invalidOption, "/params/warmup_steps") { _ = try ScalingFit.fit(curve, options: ScalingOptions(warmupSteps: -1)) }
        expectError(.invalidOption, "/params/n_encoder_ref") {
            _ = try ScalingFit.fit(.nmt(nEncoder: Self.x, nDecoder: Self.x, loss: Self.loss), options: ScalingOptions(nEncoderRef: 0))
        }
        expectError(.invalidOption, "/params/n_decoder_ref") {
            _ = try ScalingFit.fit(.nmt(nEncoder: Self.x, nDecoder: Self.x, loss: Self.loss), options: ScalingOptions(nDecoderRef: .nan))
        }
        expectError(.unknownLaw, "/law") { _ = try ScalingLawKind.named("chinchila") }
        expectError(.invalidOption, "/params/A") { _ = try ScalingModel(law: .chinchilla, named: ["E": 1, "A": -1, "B": 1, "alpha": 0.3, "beta": 0.3]) }
        expectError(.invalidOption, "/params/beta") { _ = try ScalingModel(law: .chinchilla, named: ["E": 1, "A": 1, "B": 1, "alpha": 0.3]) }
        expectError(.invalidOption, "/params/L_inf") { _ = try ScalingModel(law: .powerLaw(irreducible: false), values: [1, 1, 1]) }
    }

    @Test func curves() {
        let lr = [Double](repeating: 1e-3, count: 10)
        let two = [Double](repeating: 2, count: 10)
        func fit(_ c: LossCurve, _ o: ScalingOptions = ScalingOptions()) throws(ScalingInputError) { _ = try ScalingFit.fit(.lrAnnealing([c]), options: o) }
        expectError(.lengthMismatch, "/data/0/loss") { try fit(LossCurve(lr: lr, loss: Array(two.prefix(9)))) }
        expectError(.lengthMismatch, "/data/0/loss") { try fit(LossCurve(lr: lr, loss: [2, 2, 2, 2, 2], steps: [1, 2, 3, 4])) }
        expectError(.invalidSteps, "/data/0/steps/2") { try fit(LossCurve(lr: lr, loss: [2, 2, 2, 2, 2], steps: [1, 3, 3, 4, 5])) }
        expectError(.invalidSteps, "/data/0/steps/4") { try fit(LossCurve(lr: lr, loss: [2, 2, 2, 2, 2], steps: [1, 3, 5, 7, 11])) }
        expectError(.invalidSteps, "/data/0/steps/0") {
            try fit(LossCurve(lr: lr, loss: [2, 2, 2, 2, 2], steps: [2, 3, 5, 7, 9]), ScalingOptions(warmupSteps: 2))
        }
        expectError(.invalidSchedule, "/data/0/lr/3") { try fit(LossCurve(lr: [1, 1, 1, -1, 1, 1, 1, 1, 1, 1], loss: two)) }
        expectError(.nonFinite, "/data/0/lr/9") { try fit(LossCurve(lr: lr.dropLast() + [.nan], loss: two)) }
        expectError(.invalidSchedule, "/data/0/lr") { try fit(LossCurve(lr: [0, 0] + lr.dropFirst(2), loss: two)) }
        // The same zero start is fine once it is warm-up.
        expectError(.nonPositive, "/data/0/loss/5") { try fit(LossCurve(lr: lr, loss: [2, 2, 2, 2, 2, 0, 2, 2, 2, 2])) }
        // Warm-up losses are not fitted, so not checked; too few remain here.
        expectError(.tooFewPoints, "/data") { try fit(LossCurve(lr: lr, loss: [-1, -1, -1, -1, -1, -1, 2, 2, 2, 2]), ScalingOptions(warmupSteps: 6)) }
        // A schedule whose annealing area makes every start's L̂ negative.
        let jump = [Double](repeating: 1000, count: 5) + [Double](repeating: 1e-3, count: 20)
        expectError(.noFeasibleStart, "/data") { try fit(LossCurve(lr: jump, loss: [Double](repeating: 2, count: 25))) }
    }

    @Test func sizeLimits() {
        let big = [Double](repeating: 1, count: ScalingLimits.maxPoints + 1)
        expectError(.tooLarge, "/data") { _ = try ScalingFit.fit(.powerLaw(x: big, loss: big)) }
        let long = LossCurve(lr: [Double](repeating: 1e-3, count: ScalingLimits.maxCurveSteps / 2 + 1), loss: [2, 2, 2, 2, 2], steps: [1, 2, 3, 4, 5])
        expectError(.tooLarge, "/data") { _ = try ScalingFit.fit(.lrAnnealing([long, long])) }
        let model = try? ScalingModel(law: .powerLaw(irreducible: true), values: [1, 1, 0.5])
        expectError(.tooLarge, "/x") { _ = try model?.predict(.powerLaw(x: big)) }
        #expect(ScalingInputError(.tooLarge, field: nil, "").code == .contentTooLarge)
        #expect(ScalingInputError(.nonFinite, field: nil, "").code == .invalidInput)
    }

    @Test func queriesAndDerived() throws {
        let model = try ScalingModel(law: .powerLaw(irreducible: true), values: [1.7, 1e7, 0.3])
        expectError(.lawMismatch, nil) { _ = try model.predict(.chinchilla(n: [1], d: [1])) }
        expectError(.nonPositive, "/x/1") { _ = try model.predict(.powerLaw(x: [1, 0])) }
        expectError(.lawMismatch, "/law") { _ = try ScalingDerived.computeOptimal(model, compute: [1e20]) }
        expectError(.nonFinite, "/target_loss") { _ = try ScalingDerived.xForLoss(model, target: .infinity) }
        let chin = try ScalingModel(law: .chinchilla, values: [1.7, 400, 400, 0.3, 0.3])
        expectError(.nonPositive, "/compute/0") { _ = try ScalingDerived.computeOptimal(chin, compute: [0]) }
        expectError(.lengthMismatch, "/d") { _ = try chin.predict(.chinchilla(n: [1, 2], d: [1])) }
        let nmt = try ScalingModel(law: .nmt(nEncoderRef: 1, nDecoderRef: 1), values: [1, 1, 0.3, 0.3])
        expectError(.nonPositive, "/n_total/0") { _ = try ScalingDerived.optimalSplit(nmt, totals: [-5]) }
        let lr = try ScalingModel(law: .lrAnnealing(decay: 0.9, warmupSteps: 2), values: [2, 0.5, 0.5, 0.3])
        expectError(.invalidSteps, "/steps/0") { _ = try ScalingDerived.curve(lr, lr: [1, 1, 1, 1], steps: [2]) }
        expectError(.invalidSchedule, "/lr/1") { _ = try ScalingDerived.curve(lr, lr: [1, -1, 1, 1]) }
        expectError(.invalidSchedule, "/lr") { _ = try ScalingDerived.curve(lr, lr: [1, 1, 0, 1]) }
        let c = try ScalingDerived.curve(lr, lr: [1, 1, 1, 1])
        #expect(c.steps == [3, 4] && c.s1 == [1, 2] && c.s2 == [0, 0])
        #expect(ScalingInputError(.nonPositive, field: "/x/1", "").prefixed("/query").field == "/query/x/1")
    }

    @Test func bootstrapOptions() throws {
        let fit = try ScalingFit.fit(.powerLaw(x: Self.x, loss: Self.loss))
        expectError(.invalidOption, "/params/bootstrap/samples") { _ = try ScalingBootstrap.run(fit, samples: 0, seed: 1) }
        expectError(.invalidOption, "/params/bootstrap/samples") { _ = try ScalingBootstrap.run(fit, samples: 1001, seed: 1) }
        expectError(.invalidOption, "/params/bootstrap/level") { _ = try ScalingBootstrap.run(fit, samples: 10, seed: 1, level: 1) }
        expectError(.lawMismatch, nil) { _ = try ScalingBootstrap.run(fit, samples: 10, seed: 1, query: .nmt(nEncoder: [1], nDecoder: [1])) }
    }
}
