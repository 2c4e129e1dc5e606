import LossdJSON

/// The parts of openapi.yaml that derive from the catalogues, as YAML text: the loss
/// schemas (`LossName`, each loss's `XParams`, `XRequest` and `XEntry`, and the `oneOf`
/// lists that reference them) and the method-name enums of the calibrators, aggregation and
/// ensemble methods (with those that take no `weights`) and metrics. In the document each region sits between
///
///     # BEGIN GENERATED <id> — make openapi
///     # END GENERATED <id>
///
/// comment lines; `OpenAPIFragmentTests` fails when a region differs from this text, and
/// `make openapi` rewrites them. What a loss's schemas cannot derive from its record is in
/// its `LossSchemaOptions` (schemas written by hand, input schemas by name).
enum OpenAPIFragments {
    /// Region id → its lines (each ending in a newline), in document order of the ids.
    static func regions() -> [(id: String, text: String)] {
        [
            ("losses", lossSchemas()),
            ("loss-requests", refList(LossCatalogue.all.flatMap(requestSchemaNames), indent: 8)),
            ("loss-entries", refList(LossCatalogue.all.map { "\(schemaName($0.name))Entry" }, indent: 8)),
            ("calibrator-methods", enumLine(CalibratorCatalogue.all.names, indent: 6)),
            ("ensemble-methods", enumLine(EnsembleCatalogue.all.names, indent: 18)),
            ("ensemble-methods-without-weights", enumLine(EnsembleCatalogue.all.filter { !$0.acceptsWeights }.map(\.name), indent: 24)),
            ("aggregation-methods", enumLine(AggregationCatalogue.all.names, indent: 18)),
            ("metric-names", enumLine(MetricCatalogue.all.names, indent: 12)),
            ("embedding-metric-names", enumLine(EmbeddingMetricsEndpoint.catalogue.names, indent: 6)),
        ]
    }

    // MARK: Regions in a document

    static func beginMarker(_ id: String) -> String { "# BEGIN GENERATED \(id) — make openapi" }
    static func endMarker(_ id: String) -> String { "# END GENERATED \(id)" }

    enum RegionError: Error, CustomStringConvertible {
        case missing(String)
        var description: String {
            switch self {
            case .missing(let id): "openapi.yaml has no region `\(id)` (its BEGIN and END GENERATED comment lines)"
            }
        }
    }

    /// The text between the markers of `id` in `document` (nil when the markers are absent),
    /// with the line ranges of the region's content.
    static func region(_ id: String, in lines: [Substring]) -> Range<Int>? {
        let begin = beginMarker(id), end = endMarker(id)
        guard let start = lines.firstIndex(where: { $0.drop { $0 == " " } == begin }),
            let stop = lines[(start + 1)...].firstIndex(where: { $0.drop { $0 == " " } == end })
        else { return nil }
        return (start + 1)..<stop
    }

    /// The document's current text of each region.
    static func currentRegions(of document: String) -> [String: String] {
        let lines = document.split(separator: "\n", omittingEmptySubsequences: false)
        var found: [String: String] = [:]
        for (id, _) in regions() {
            guard let range = region(id, in: lines) else { continue }
            found[id] = lines[range].map { $0 + "\n" }.joined()
        }
        return found
    }

    /// `document` with every region replaced by its generated text.
    static func spliced(_ document: String) throws(RegionError) -> String {
        var lines = document.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        for (id, text) in regions() {
            let view = lines.map { Substring($0) }
            guard let range = region(id, in: view) else { throw .missing(id) }
            var replacement = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            if replacement.last == "" { replacement.removeLast() }
            lines.replaceSubrange(range, with: replacement)
        }
        return lines.joined(separator: "\n")
    }

    // MARK: Names

    /// `cross_entropy` → `CrossEntropy`, the stem of a loss's schema names.
    static func schemaName(_ name: String) -> String {
        name.split(separator: "_").map { $0.prefix(1).uppercased() + $0.dropFirst() }.joined()
    }

    /// The request schemas of a loss in `SingleLossRequest`'s `oneOf`.
    static func requestSchemaNames(_ loss: LossDefinition) -> [String] {
        loss.openAPI.handWrittenRequests.isEmpty ? ["\(schemaName(loss.name))Request"] : loss.openAPI.handWrittenRequests
    }

    static func ref(_ schema: String) -> String { "$ref: '#/components/schemas/\(schema)'" }

    // MARK: Losses

    static func lossSchemas() -> String {
        var y = YAMLLines()
        y.line(4, "LossName:")
        y.line(6, "type: string")
        y.line(6, "description: |")
        y.line(8, "A loss's name or alias: the loss catalogue's (`GET /v1/losses`, names and aliases),")
        y.line(8, "generated from it (`make openapi`).")
        y.line(6, "enum: \(flowList(LossCatalogue.all.namesAndAliases))")
        for loss in LossCatalogue.all where loss.openAPI.handWrittenParams.isEmpty { params(loss, into: &y) }
        for loss in LossCatalogue.all where loss.openAPI.handWrittenRequests.isEmpty { request(loss, into: &y) }
        for loss in LossCatalogue.all { entry(loss, into: &y) }
        return y.text
    }

    static func params(_ loss: LossDefinition, into y: inout YAMLLines) {
        y.line(4, "\(schemaName(loss.name))Params:")
        y.line(6, "type: object")
        y.line(6, "additionalProperties: false")
        guard !loss.parameters.isEmpty else {
            y.line(6, "maxProperties: 0")
            y.line(6, "description: \(quoted("`\(loss.name)` takes no parameters: any member is 422 `unknown_field`."))")
            return
        }
        let required = loss.parameters.filter { $0.defaultValue == nil }.map(\.name)
        if !required.isEmpty { y.line(6, "required: \(flowList(required))") }
        y.line(6, "properties:")
        for spec in loss.parameters { parameter(spec, indent: 8, into: &y) }
    }

    /// One parameter's schema: its type, range, choices and default, as the server checks them.
    static func parameter(_ spec: ParameterSpec, indent: Int, into y: inout YAMLLines) {
        y.line(indent, "\(spec.name):")
        let i = indent + 2
        func type(_ name: String) { y.line(i, spec.nullable ? "type: [\(name), 'null']" : "type: \(name)") }
        switch spec.kind {
        case let .number(lower, upper):
            type("number")
            if let lower { y.line(i, "\(lower.inclusive ? "minimum" : "exclusiveMinimum"): \(number(lower.value))") }
            if let upper { y.line(i, "\(upper.inclusive ? "maximum" : "exclusiveMaximum"): \(number(upper.value))") }
        case let .integer(lower, upper):
            // |v| < 1e15 for every integer parameter (ResolvedParameters).
            type("integer")
            y.line(i, "minimum: \(lower.map(String.init) ?? "-999999999999999")")
            y.line(i, "maximum: \(upper.map(String.init) ?? "999999999999999")")
        case .choice(let options):
            type("string")
            y.line(i, "enum: \(flowList(options))")
        case .boolean:
            type("boolean")
        case .bins:
            y.line(i, ref("HistogramBins"))
            return
        case .interval(let bounds):
            type("array")
            y.line(i, "items:")
            y.line(i + 2, "type: number")
            if let bounds {
                y.line(i + 2, "minimum: \(number(bounds.lowerBound))")
                y.line(i + 2, "maximum: \(number(bounds.upperBound))")
            }
            y.line(i, "minItems: 2")
            y.line(i, "maxItems: 2")
        }
        if let value = spec.defaultValue { y.line(i, "default: \(scalar(value))") }
        y.line(i, "description: \(quoted(spec.summary))")
    }

    /// The reduction schema of a loss.
    static func reductionSchema(_ loss: LossDefinition) -> String {
        if let schema = loss.openAPI.reduction { return schema }
        if loss.batchValue { return "BatchValueReduction" }
        return loss.acceptsSampleWeights ? "Reduction" : "BatchReduction"
    }

    static func inputSchema(_ loss: LossDefinition, _ input: String) -> String {
        loss.openAPI.inputSchemas[input] ?? "LossInput\(schemaName(input))"
    }

    static func lossConstant(_ loss: LossDefinition, indent: Int, into y: inout YAMLLines) {
        y.line(indent, "loss:")
        if loss.aliases.isEmpty {
            y.line(indent + 2, "const: \(loss.name)")
        } else {
            y.line(indent + 2, "enum: \(flowList([loss.name] + loss.aliases))")
        }
    }

    static func paramsReference(_ loss: LossDefinition, indent: Int, into y: inout YAMLLines) {
        y.line(indent, "params:")
        let handWritten = loss.openAPI.handWrittenParams
        if handWritten.count > 1 {
            y.line(indent + 2, "oneOf:")
            for schema in handWritten { y.line(indent + 4, "- \(ref(schema))") }
        } else {
            y.line(indent + 2, ref(handWritten.first ?? "\(schemaName(loss.name))Params"))
        }
    }

    /// The alternatives of a loss's `oneOf` input groups: each form's inputs required and the
    /// other forms' `oneOf` inputs absent.
    static func inputForms(_ loss: LossDefinition) -> [(required: [String], absent: [String])] {
        var groups: [String] = []
        for input in loss.inputs {
            if case .oneOf(let group) = input.presence, !groups.contains(group) { groups.append(group) }
        }
        var forms: [(required: [String], absent: [String])] = []
        for group in groups {
            let members = loss.inputs.filter { $0.presence == .oneOf(group: group) }.map(\.name)
            for form in group.split(separator: "/") {
                let names = form.split(separator: "+").map(String.init)
                forms.append((names, members.filter { !names.contains($0) }))
            }
        }
        return forms
    }

    static func request(_ loss: LossDefinition, into y: inout YAMLLines) {
        let required = loss.inputs.filter { $0.presence == .required }.map(\.name)
        let paramsRequired = loss.parameters.contains { $0.defaultValue == nil }
        let forms = inputForms(loss)
        var description = "`\(loss.name)`: \(loss.summary)"
        if !forms.isEmpty {
            description += " Exactly one of " + forms.map { $0.required.map { "`\($0)`" }.joined(separator: "+") }
                .joined(separator: " and ") + " (422 otherwise)."
        }
        y.line(4, "\(schemaName(loss.name))Request:")
        y.line(6, "type: object")
        y.line(6, "additionalProperties: false")
        y.line(6, "required: \(flowList(["loss"] + required + (paramsRequired ? ["params"] : [])))")
        y.line(6, "description: \(quoted(description))")
        if !forms.isEmpty {
            y.line(6, "oneOf:")
            for form in forms {
                y.line(8, "- required: \(flowList(form.required))")
                if form.absent.count == 1 {
                    y.line(10, "not: {required: [\(form.absent[0])]}")
                } else if !form.absent.isEmpty {
                    y.line(10, "not:")
                    y.line(12, "anyOf:")
                    for name in form.absent { y.line(14, "- required: [\(name)]") }
                }
            }
        }
        y.line(6, "properties:")
        lossConstant(loss, indent: 8, into: &y)
        paramsReference(loss, indent: 8, into: &y)
        for (member, schema) in [
            ("reduction", reductionSchema(loss)), ("groups", "Groups"), ("return_grad", "ReturnGrad"),
            ("output_encoding", "OutputEncoding"), ("output_dtype", "OutputDType"),
        ] {
            y.line(8, "\(member):")
            y.line(10, ref(schema))
        }
        for input in loss.inputs {
            y.line(8, "\(input.name):")
            y.line(10, ref(inputSchema(loss, input.name)))
        }
    }

    static func entry(_ loss: LossDefinition, into y: inout YAMLLines) {
        y.line(4, "\(schemaName(loss.name))Entry:")
        y.line(6, "type: object")
        y.line(6, "additionalProperties: false")
        y.line(6, loss.parameters.contains { $0.defaultValue == nil } ? "required: [loss, params]" : "required: [loss]")
        y.line(6, "properties:")
        lossConstant(loss, indent: 8, into: &y)
        paramsReference(loss, indent: 8, into: &y)
        for (member, schema) in [("reduction", reductionSchema(loss)), ("weight", "EntryWeight"), ("columns", "EntryColumns")] {
            y.line(8, "\(member):")
            y.line(10, ref(schema))
        }
    }

    // MARK: YAML text

    static func refList(_ schemas: [String], indent: Int) -> String {
        var y = YAMLLines()
        for schema in schemas { y.line(indent, "- \(ref(schema))") }
        return y.text
    }

    static func enumLine(_ names: [String], indent: Int) -> String {
        var y = YAMLLines()
        y.line(indent, "enum: \(flowList(names))")
        return y.text
    }

    /// `[a, b, c]`, each item plain when YAML reads it back as that string, else quoted.
    static func flowList(_ items: [String]) -> String { "[" + items.map(plain).joined(separator: ", ") + "]" }

    /// YAML 1.1 reads these plain words as booleans or null.
    static let reservedWords: Set<String> = ["y", "n", "yes", "no", "on", "off", "true", "false", "null", "~"]

    static func plain(_ text: String) -> String {
        let simple = text.unicodeScalars.allSatisfy { ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "_" }
        let startsWithLetter = text.unicodeScalars.first.map { ("a"..."z").contains($0) } ?? false
        return simple && startsWithLetter && !reservedWords.contains(text) ? text : quoted(text)
    }

    /// A double-quoted scalar (JSON string syntax, which YAML reads the same).
    static func quoted(_ text: String) -> String { String(decoding: JSONValue.string(text).bytes, as: UTF8.self) }

    /// A number as YAML 1.1 (PyYAML) reads it back: integers plainly, other values with a
    /// point in the mantissa and a signed exponent.
    static func number(_ value: Double) -> String {
        if value == value.rounded(), abs(value) < 1e15 { return String(Int(value)) }
        let text = NumberText.format(value)
        guard let e = text.firstIndex(where: { $0 == "e" || $0 == "E" }) else { return text }
        var mantissa = String(text[..<e])
        var exponent = String(text[text.index(after: e)...])
        if !mantissa.contains(".") { mantissa += ".0" }
        if !exponent.hasPrefix("-") && !exponent.hasPrefix("+") { exponent = "+" + exponent }
        return "\(mantissa)e\(exponent)"
    }

    static func scalar(_ value: JSONValue) -> String {
        switch value {
        case .null: "null"
        case .bool(let b): b ? "true" : "false"
        case .int(let i): String(i)
        case .double(let d): number(d)
        case .string(let s): quoted(s)
        case .array(let items): "[" + items.map(scalar).joined(separator: ", ") + "]"
        default: String(decoding: value.bytes, as: UTF8.self)
        }
    }
}

/// Indented YAML lines.
struct YAMLLines {
    private(set) var text = ""

    mutating func line(_ indent: Int, _ content: String) {
        text += String(repeating: " ", count: indent) + content + "\n"
    }
}
