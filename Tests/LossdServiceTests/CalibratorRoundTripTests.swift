import Foundation
import LossdJSON
import LossdKernels
import Testing

@testable import LossdService

@Suite("Fitted calibrators validate as stored models")
struct CalibratorRoundTripTests {
    /// Anti-correlated scores make beta's refit (a = 0) leave b negative; docs/calibration.md §3.8
    /// does not check the refit again, so the stored model must still be accepted by PUT's
    /// validation.
    @Test func betaFittedOnAntiCorrelatedScoresPassesItsOwnValidation() throws {
        let definition = try #require(CalibratorCatalogue.all["beta"])
        let input = CalibrationInput(
            logits: nil, scores: [0.1, 0.8, 0.3, 0.9, 0.6, 0.2, 0.7, 0.4], labels: [1, 0, 1, 0, 0, 1, 1, 0], views: nil)
        let parameters = try ResolvedParameters(nil, specs: definition.parameters, pointer: "/params")
        let (model, _) = try definition.fit(input, parameters)
        #expect(throws: Never.self) { try definition.validate(model) }
    }
}

@Suite("Temperature fit options")
struct TemperatureOptionTests {
    let definition = CalibratorCatalogue.all["temperature"]!
    /// Every row is classified correctly, so the NLL keeps falling as T → 0: T stops at the bound.
    let allCorrect = CalibrationInput(
        logits: Matrix(rows: 3, cols: 2, values: [2, 0, 0, 3, 1, -1]), scores: nil, labels: [0, 1, 0], views: nil)

    func bounds(_ lower: Double, _ upper: Double) -> JSONObject {
        JSONObject(members: [("log_beta_bounds", .numbers(NumericArray(shape: [2], values: [lower, upper])))])
    }

    @Test func logBetaBoundsMoveTheTemperatureLimit() throws {
        let parameters = try ResolvedParameters(bounds(-1, 1), specs: definition.parameters, pointer: "/params")
        let (model, report) = try definition.fit(allCorrect, parameters)
        guard case .number(let t)? = model.parameters["temperature"] else {
            Issue.record("no temperature")
            return
        }
        #expect(abs(t - exp(-1.0)) <= 1e-12)
        #expect(report.converged)
    }

    @Test func invertedBoundsAreRejectedNamingTheField() {
        do {
            _ = try ResolvedParameters(bounds(1, -1), specs: definition.parameters, pointer: "/params")
            Issue.record("accepted")
        } catch {
            #expect(error.status.code == 422)
            #expect(error.field == "/params/log_beta_bounds")
        }
    }
}
