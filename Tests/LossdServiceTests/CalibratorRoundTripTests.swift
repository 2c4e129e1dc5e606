import LossdKernels
import Testing

@testable import LossdService

@Suite("Fitted calibrators validate as stored models")
struct CalibratorRoundTripTests {
    /// Anti-correlated scores make beta's refit (a = 0) leave b negative; §2.9 does not check the
    /// refit again, so the stored model must still be accepted by PUT's validation.
    @Test func betaFittedOnAntiCorrelatedScoresPassesItsOwnValidation() throws {
        let definition = try #require(CalibratorCatalogue.byMethod["beta"])
        let input = CalibrationInput(
            logits: nil, scores: [0.1, 0.8, 0.3, 0.9, 0.6, 0.2, 0.7, 0.4], labels: [1, 0, 1, 0, 0, 1, 1, 0], views: nil)
        let parameters = try ResolvedParameters(nil, specs: definition.parameters, pointer: "/params")
        let (model, _) = try definition.fit(input, parameters)
        #expect(throws: Never.self) { try definition.validate(model) }
    }
}
