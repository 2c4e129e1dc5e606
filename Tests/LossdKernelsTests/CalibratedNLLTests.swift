import Foundation
import LossdKernels
import Testing

/// The calibrated-NLL cases of metrics_vectors_2.json (stored in the service tests' folder):
/// the recorded halvings, per-half temperatures and NLLs (scripts/reference-metrics-2.py).
fileprivate enum CalibratedNLLVectors {
    nonisolated(unsafe) static let cases: [[String: Any]] = {
        let url = URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("LossdServiceTests/Vectors/metrics_vectors_2.json")
        guard let data = try? Data(contentsOf: url),
            let root = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
            let list = root["metrics"] as? [[String: Any]]
        else { return [] }
        return list.filter { $0["per_split"] != nil }
    }()

    static var names: [String] { cases.compactMap { $0["name"] as? String } }

    static func named(_ name: String) -> [String: Any] { cases.first { $0["name"] as? String == name } ?? [:] }

    static func matrix(_ any: Any?) -> Matrix {
        let rows = (any as? [[Any]]) ?? []
        let values = rows.flatMap { $0.map { ($0 as? NSNumber)?.doubleValue ?? .nan } }
        return Matrix(rows: rows.count, cols: rows.first?.count ?? 0, values: values)
    }

    static func ints(_ any: Any?) -> [Int] { ((any as? [Any]) ?? []).map { ($0 as? NSNumber)?.intValue ?? -1 } }
    static func number(_ any: Any?) -> Double { (any as? NSNumber)?.doubleValue ?? .nan }
}

@Suite("Calibrated NLL (Ashukha et al. 2020)")
struct CalibratedNLLTests {
    @Test func vectorsLoad() {
        #expect(CalibratedNLLVectors.cases.count == 3)
    }

    /// The recorded halvings give the recorded temperatures and held-out NLLs, whatever the
    /// split stream; the proposed SplitMix64 stream draws exactly those halvings.
    @Test(arguments: CalibratedNLLVectors.names)
    func matchesTheRecordedSplits(_ name: String) throws {
        let vector = CalibratedNLLVectors.named(name)
        let input = vector["input"] as? [String: Any] ?? [:]
        let params = input["params"] as? [String: Any] ?? [:]
        let logits = CalibratedNLLVectors.matrix(input["logits"])
        let labels = CalibratedNLLVectors.ints(input["labels"])
        let repeats = (params["repeats"] as? Int) ?? 5
        let seed = UInt64((params["seed"] as? Int) ?? 0)
        let splits = vector["splits"] as? [[String: Any]] ?? []
        let recorded = splits.map {
            CalibratedNLL.Halving(first: CalibratedNLLVectors.ints($0["first_half"]), second: CalibratedNLLVectors.ints($0["second_half"]))
        }
        #expect(recorded.count == repeats)
        #expect(CalibratedNLL.halvings(rows: logits.rows, repeats: repeats, seed: seed) == recorded)

        let result = try CalibratedNLL.evaluate(logits: logits, labels: labels, halvings: recorded)
        let perSplit = vector["per_split"] as? [[String: Any]] ?? []
        try #require(result.splits.count == perSplit.count)
        for (got, want) in zip(result.splits, perSplit) {
            #expect(got.repeatIndex == want["repeat"] as? Int)
            #expect(got.fittedOnFirst == (want["fit_on"] as? String == "first_half"))
            let t = CalibratedNLLVectors.number(want["temperature"]), nll = CalibratedNLLVectors.number(want["nll"])
            #expect(abs(got.temperature - t) <= 1e-9 * t, "\(name) r\(got.repeatIndex): T \(got.temperature) vs \(t)")
            #expect(abs(got.nll - nll) <= 1e-10, "\(name) r\(got.repeatIndex): NLL \(got.nll) vs \(nll)")
        }
        let expected = vector["expected"] as? [String: Any] ?? [:]
        #expect(abs(result.mean - CalibratedNLLVectors.number(expected["calibrated_nll"])) <= 1e-10)
        #expect(abs(result.standardDeviation - CalibratedNLLVectors.number(expected["calibrated_nll_std"])) <= 1e-10)
    }

    @Test func halvingsArePermutationsSplitAtHalf() {
        for n in [2, 3, 10, 17] {
            for h in CalibratedNLL.halvings(rows: n, repeats: 4, seed: 99) {
                #expect(h.first.count == n / 2 && h.second.count == n - n / 2)
                #expect((h.first + h.second).sorted() == Array(0..<n))
            }
        }
    }

    /// At T = 1 the held-out NLL is the plain mean NLL.
    @Test func nllAtUnitTemperatureIsTheMeanNLL() {
        let z = Matrix(rows: 3, cols: 3, values: [2, 0.5, -1, 0.1, 0.2, 0.3, 0, 3, 1])
        let y = [0, 2, 1]
        #expect(abs(CalibratedNLL.nll(logits: z, labels: y, temperature: 1) - CalibrationMetrics.nll(logits: z, labels: y)) <= 1e-15)
    }
}
