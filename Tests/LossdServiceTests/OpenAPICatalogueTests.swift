import Testing

@testable import LossdService

/// The names openapi.yaml lists must be the catalogues the server validates with, so that
/// the document and the server cannot drift apart: every loss (and alias), calibration
/// method, aggregation method and ensemble method, each read from the document that the
/// binary serves.
@Suite("openapi.yaml against the catalogues")
struct OpenAPICatalogueTests {
    static let document = String(decoding: OpenAPIDocument.bytes, as: UTF8.self)

    /// The members of the first `enum: [a, b, c]` line after the line that contains `anchor`.
    static func enumeration(after anchor: String) -> [String]? {
        let lines = document.split(separator: "\n", omittingEmptySubsequences: false)
        guard let start = lines.firstIndex(where: { $0.contains(anchor) }) else { return nil }
        for line in lines[start...].prefix(150) {
            let trimmed = line.drop { $0 == " " }
            guard trimmed.hasPrefix("enum: [") , trimmed.hasSuffix("]") else { continue }
            return trimmed.dropFirst("enum: [".count).dropLast().split(separator: ",").map {
                String($0.trimmingCharacters(" "))
            }
        }
        return nil
    }

    @Test func lossNamesAreTheLossCatalogue() {
        #expect(Self.enumeration(after: "    LossName:") == LossCatalogue.all.namesAndAliases)
    }

    @Test func calibrationMethodsAreTheCalibratorCatalogue() {
        #expect(Self.enumeration(after: "    CalibratorMethod:") == CalibratorCatalogue.all.map(\.name))
    }

    @Test func aggregationAndEnsembleMethodsAreTheirEndpoints() {
        #expect(Self.enumeration(after: "operationId: aggregateAnnotations") == AggregationCatalogue.all.names)
        #expect(Self.enumeration(after: "operationId: combineEnsemble") == EnsembleCatalogue.all.names)
    }
}

extension StringProtocol {
    fileprivate func trimmingCharacters(_ set: Character) -> Substring {
        var s = Substring(self)
        while s.first == set { s.removeFirst() }
        while s.last == set { s.removeLast() }
        return s
    }
}
