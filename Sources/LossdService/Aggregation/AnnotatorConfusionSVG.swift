import LossdKernels

/// `/v1/aggregate` with `Accept: image/svg+xml`: each annotator's estimated confusion matrix
/// as a small heat map, most skilled first (docs/aggregation.md §8).
///
/// Rows are the true class, columns the label given, each row the annotator's answer
/// distribution for that class (white 0 to dark blue 1; grey where the class never reached
/// the annotator). Dawid–Skene's own matrices are drawn as fitted; for the other methods the
/// matrices are estimated against the aggregated soft labels (`Aggregation.empiricalConfusion`).
/// With more annotators than fit, the most and the least skilled are drawn and the count of
/// those left out is written between them.
enum AnnotatorConfusionSVG: SVGDrawing {
    /// Heat maps drawn at most (half the most skilled, half the least).
    static let maxPanels = 48
    /// Classes drawn at most: beyond, a cell would be under two pixels.
    static let maxClasses = 40

    static let width = 960.0
    static let columns = 8
    static let panelSize = 92.0, panelPitchX = 116.0, panelPitchY = 140.0
    static let gridLeft = 36.0, gridTop = 118.0
    static let missingFill = "#e2e2e2"

    /// One annotator's matrix and what is written under it.
    struct Panel {
        var id: String
        var skill: Double
        var annotations: Int
        /// [K][K] row-normalised, rows all zero where the class never reached the annotator.
        var rows: ArraySlice<Double>
    }

    static func render(method: String, fitted: Bool, classes k: Int, panels: [Panel], skillName: String) -> String {
        let order = panels.indices.sorted { panels[$0].skill > panels[$1].skill || (panels[$0].skill == panels[$1].skill && $0 < $1) }
        var shown = order.map { Optional($0) }
        var omitted = 0
        if order.count > maxPanels {
            omitted = order.count - maxPanels
            shown = order.prefix(maxPanels / 2).map { Optional($0) } + [nil] + order.suffix(maxPanels / 2).map { Optional($0) }
        }
        var grid = ""
        grid.reserveCapacity(shown.count * (k * k * 90 + 300))
        var slot = 0
        for entry in shown {
            let x = gridLeft + Double(slot % columns) * panelPitchX
            let y = gridTop + Double(slot / columns) * panelPitchY
            guard let index = entry else {
                // Between the most and the least skilled: the count left out, then a new row.
                grid += text(x, y + panelSize / 2 + 10, "\u{2026} \(omitted) more", size: 13, fill: "#555555")
                grid += text(x, y + panelSize / 2 + 28, "annotators", size: 13, fill: "#555555")
                slot = (slot / columns + 1) * columns
                continue
            }
            grid += panel(panels[index], x: x, y: y, k: k, skillName: skillName)
            slot += 1
        }
        let height = gridTop + Double((slot + columns - 1) / columns) * panelPitchY
        let title = "Annotators' confusion matrices \u{2014} \(method)"
        var s = documentStart(width: width, height: height, title: title, fontSize: 12)
        s += text(gridLeft, 32, title, size: 19, weight: "bold")
        let source = fitted ? "as fitted by \(method)" : "estimated against the aggregated soft labels"
        s += text(gridLeft, 54, "\(panels.count) annotators, \(k) classes; matrices \(source); ordered by \(skillName), highest first", size: 13, fill: "#555555")
        s += text(gridLeft, 74, "Rows: true class 0\u{2013}\(k - 1) (top to bottom); columns: label given (left to right)", size: 13, fill: "#555555")
        s += colourBar(x: width - 250, y: 96)
        s += grid
        return s + "</svg>\n"
    }

    static func panel(_ p: Panel, x: Double, y: Double, k: Int, skillName: String) -> String {
        let label = p.id.count > 14 ? String(p.id.prefix(13)) + "\u{2026}" : p.id
        var s = "<g><title>\(escape("annotator \(p.id): \(skillName) \(sig(p.skill, 3)), \(p.annotations) annotations"))</title>\n"
        s += text(x, y + 12, label, size: 12, weight: "bold")
        let top = y + 18, cell = panelSize / Double(k)
        var offset = p.rows.startIndex
        for t in 0..<k {
            var mass = 0.0
            for l in 0..<k { mass += p.rows[offset + l] }
            for l in 0..<k {
                let fill = mass > 0 ? blues(p.rows[offset + l]) : missingFill
                s += rect(x + Double(l) * cell, top + Double(t) * cell, cell, cell, fill: fill)
            }
            offset += k
        }
        // The diagonal's outline: where a perfect annotator's mass sits.
        for t in 0..<k {
            s += "<rect x=\"\(f(x + Double(t) * cell))\" y=\"\(f(top + Double(t) * cell))\" width=\"\(f(cell))\" height=\"\(f(cell))\" "
            s += "fill=\"none\" stroke=\"#d62728\" stroke-width=\"\(k > 12 ? "0.5" : "1")\" stroke-opacity=\"0.6\"/>\n"
        }
        s += "<rect x=\"\(f(x))\" y=\"\(f(top))\" width=\"\(f(panelSize))\" height=\"\(f(panelSize))\" fill=\"none\" stroke=\"#555555\"/>\n"
        s += text(x, top + panelSize + 15, "\(sig(p.skill, 3)) \u{b7} n=\(p.annotations)", size: 11, fill: "#333333")
        return s + "</g>\n"
    }

    /// The colour scale, 0 to 1, and the swatch for classes an annotator never saw.
    static func colourBar(x: Double, y: Double) -> String {
        var s = "<defs><linearGradient id=\"blues\" x1=\"0\" x2=\"1\" y1=\"0\" y2=\"0\">"
        for stop in 0...4 {
            let v = Double(stop) / 4
            s += "<stop offset=\"\(fixed(v, 2))\" stop-color=\"\(blues(v))\"/>"
        }
        s += "</linearGradient></defs>\n"
        s += "<rect x=\"\(f(x))\" y=\"\(f(y))\" width=\"140\" height=\"12\" fill=\"url(#blues)\" stroke=\"#555555\" stroke-width=\"0.5\"/>\n"
        s += text(x, y - 4, "0", size: 11, anchor: "middle")
        s += text(x + 140, y - 4, "1", size: 11, anchor: "middle")
        s += text(x + 70, y - 4, "share of answers", size: 11, anchor: "middle")
        s += rect(x + 156, y, 12, 12, fill: missingFill, extra: " stroke=\"#555555\" stroke-width=\"0.5\"")
        s += text(x + 174, y + 10, "not seen", size: 11)
        return s
    }

    /// A white-to-dark-blue scale (ColorBrewer's Blues end points), linear in RGB.
    static func blues(_ v: Double) -> String {
        let stops: [(Double, Double, Double)] = [(247, 251, 255), (198, 219, 239), (107, 174, 214), (33, 113, 181), (8, 48, 107)]
        let t = min(max(v.isFinite ? v : 0, 0), 1) * Double(stops.count - 1)
        let i = min(Int(t), stops.count - 2), u = t - Double(i)
        let (a, b) = (stops[i], stops[i + 1])
        func channel(_ x: Double, _ y: Double) -> String {
            let c = Int((x + (y - x) * u).rounded())
            let hex = String(c, radix: 16)
            return hex.count == 1 ? "0" + hex : hex
        }
        return "#" + channel(a.0, b.0) + channel(a.1, b.1) + channel(a.2, b.2)
    }
}
