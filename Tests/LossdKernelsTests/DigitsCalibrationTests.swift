import Foundation
import LossdKernels
import Testing

/// Temperature scaling on a real model: logits of an overconfident logistic regression on
/// scikit-learn's digits data (written by scripts/make-digits-fixture.py).
@Suite("Temperature scaling on the digits fixture")
struct DigitsCalibrationTests {
    struct Split {
        let logits: Matrix
        let labels: [Int]
    }

    struct Fixture {
        let fit: Split
        let heldout: Split
        let scipyTemperature: Double
    }

    static func load() -> Fixture? {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("Fixtures/digits_logits.json")
        guard let data = try? Data(contentsOf: url),
            let root = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
            let scipy = root["scipy"] as? [String: Any],
            let t = (scipy["temperature_scipy"] as? NSNumber)?.doubleValue
        else { return nil }
        func split(_ name: String) -> Split? {
            guard let s = root[name] as? [String: Any], let rows = s["logits"] as? [[NSNumber]], let labels = s["labels"] as? [NSNumber]
            else { return nil }
            let values = rows.flatMap { $0.map(\.doubleValue) }
            return Split(logits: Matrix(rows: rows.count, cols: rows.first?.count ?? 0, values: values), labels: labels.map(\.intValue))
        }
        guard let fit = split("fit"), let heldout = split("heldout") else { return nil }
        return Fixture(fit: fit, heldout: heldout, scipyTemperature: t)
    }

    @Test func temperatureMatchesSciPyAndImprovesHeldOutNLLAndECE() throws {
        let fixture = try #require(Self.load())
        #expect(fixture.fit.logits.rows > 300 && fixture.fit.logits.cols == 10)
        let (model, report) = try TemperatureScaling.fit(logits: fixture.fit.logits, labels: fixture.fit.labels)
        guard case .number(let t)? = model.parameters["temperature"] else {
            Issue.record("no temperature")
            return
        }
        #expect(report.converged)
        #expect(report.notes["at_bound"] == nil)
        #expect(abs(t - fixture.scipyTemperature) <= 1e-4, "T = \(t), SciPy \(fixture.scipyTemperature)")
        #expect(t > 1, "an overconfident model needs T > 1")

        let heldout = fixture.heldout
        let before = CalibrationMetrics.softmax(heldout.logits)
        let after = TemperatureScaling.apply(temperature: t, logits: heldout.logits)
        let nllBefore = CalibrationMetrics.nll(probabilities: before, labels: heldout.labels)
        let nllAfter = CalibrationMetrics.nll(probabilities: after, labels: heldout.labels)
        let eceBefore = CalibrationMetrics.ece(probabilities: before, labels: heldout.labels)
        let eceAfter = CalibrationMetrics.ece(probabilities: after, labels: heldout.labels)
        #expect(nllAfter < nllBefore, "held-out NLL \(nllBefore) -> \(nllAfter)")
        #expect(eceAfter < eceBefore, "held-out ECE \(eceBefore) -> \(eceAfter)")
        // Accuracy is unchanged: temperature scaling keeps every argmax.
        let accBefore = CalibrationMetrics.accuracy(scores: before, labels: heldout.labels)
        let accAfter = CalibrationMetrics.accuracy(scores: after, labels: heldout.labels)
        #expect(accBefore == accAfter)
    }
}
