import Foundation
import Testing

@testable import LossdService

/// openapi.yaml's generated regions (`# BEGIN GENERATED <id>` … `# END GENERATED <id>`) must
/// be what the catalogues generate (`OpenAPIFragments`): the loss schemas and the method-name
/// enums. After changing a catalogue, `make openapi` rewrites them: it runs this suite with
/// `LOSSD_WRITE_OPENAPI=1`, which writes the regions instead of comparing them.
@Suite("openapi.yaml's generated regions")
struct OpenAPIFragmentTests {
    /// The top-level openapi.yaml (what the binary serves, once built).
    static let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("openapi.yaml")

    static var writing: Bool { ProcessInfo.processInfo.environment["LOSSD_WRITE_OPENAPI"] == "1" }

    @Test func generatedRegionsAreTheCatalogues() throws {
        // Writing (`make openapi`) rewrites the file; the other tests of the suite then
        // compare nothing.
        let document = try String(contentsOf: Self.path, encoding: .utf8)
        if Self.writing {
            let spliced = try OpenAPIFragments.spliced(document)
            if spliced != document { try spliced.write(to: Self.path, atomically: true, encoding: .utf8) }
            return
        }
        let current = OpenAPIFragments.currentRegions(of: document)
        for (id, text) in OpenAPIFragments.regions() {
            #expect(current[id] != nil, "openapi.yaml lacks the region `\(id)`")
            #expect(current[id] == text, "openapi.yaml's region `\(id)` differs from the catalogues: run `make openapi`")
        }
    }

    /// Every schema the generated text references is in the document (a new input name needs
    /// its `LossInputX` schema, a hand-written request or params schema its entry).
    @Test func generatedReferencesResolve() throws {
        if Self.writing { return }
        let document = try String(contentsOf: Self.path, encoding: .utf8)
        let defined = Set(
            document.split(separator: "\n").filter { $0.hasPrefix("    ") && !$0.hasPrefix("     ") && $0.hasSuffix(":") }
                .map { String($0.dropFirst(4).dropLast()) })
        var missing: [String] = []
        for (id, text) in OpenAPIFragments.regions() {
            for line in text.split(separator: "\n") {
                guard let range = line.range(of: "'#/components/schemas/") else { continue }
                let name = String(line[range.upperBound...].prefix { $0 != "'" })
                if !defined.contains(name) { missing.append("\(name) (region `\(id)`)") }
            }
        }
        #expect(missing.isEmpty, "generated schemas reference what openapi.yaml does not define: \(missing)")
    }

    /// Aliases, hand-written schemas and derived reductions come out as the records say.
    @Test func lossSchemasFollowTheirRecords() throws {
        let text = OpenAPIFragments.lossSchemas()
        #expect(text.contains("          enum: [multilabel_infonce, infonce]"))
        #expect(!text.contains("    FocalRequest:"))
        #expect(text.contains("            - $ref: '#/components/schemas/FocalSigmoidParams'"))
        let tcm = try #require(text.range(of: "    TcmEntry:"))
        #expect(text[tcm.upperBound...].prefix(400).contains("BatchValueReduction"))
        #expect(OpenAPIFragments.number(1e-5) == "1.0e-05" || OpenAPIFragments.number(1e-5) == "1.0e-5")
        #expect(OpenAPIFragments.number(0.0001) == "0.0001")
        #expect(OpenAPIFragments.plain("none") == "none")
        #expect(OpenAPIFragments.plain("on") == "\"on\"")
    }
}
