import LossdKernels

/// A reliability diagram as a standalone SVG document (docs/calibration.md §2.8,
/// `/v1/reliability`): accuracy bars per confidence bin, the identity line, the gap between
/// each bin's accuracy and mean confidence, and a histogram of samples per bin below.
enum ReliabilitySVG {
    static let width = 900.0, height = 700.0
    /// The reliability plot and the histogram below it share the x axis.
    static let left = 90.0, plotWidth = 560.0
    static let top = 78.0, plotHeight = 400.0
    static let histTop = 512.0, histHeight = 100.0

    static let accuracyFill = "#4c78a8", gapFill = "#e45756", histFill = "#9d9d9d"

    static func render(bins: [CalibrationMetrics.ReliabilityBin], ece: Double, accuracy: Double, n: Int, binRule: BinRule) -> String {
        var s = ""
        s.reserveCapacity(8192 + bins.count * 400)
        let regular = bins.filter { $0.upper > $0.lower }
        let title = "Reliability diagram \u{2014} ECE = \(fixed(ece, 4)), N = \(n)"
        let subtitle = "\(regular.count) bins (\(binRule.rawValue) rule), accuracy = \(fixed(accuracy * 100, 1))%"
        s += "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        s += "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(height))\" "
        s += "viewBox=\"0 0 \(Int(width)) \(Int(height))\" font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\" font-size=\"13\">\n"
        s += "<title>\(escape(title))</title>\n"
        s += "<rect width=\"100%\" height=\"100%\" fill=\"#ffffff\"/>\n"
        s += text(width / 2, 32, title, size: 19, anchor: "middle", weight: "bold")
        s += text(width / 2, 54, subtitle, size: 13, anchor: "middle", fill: "#555555")

        // Reliability panel: grid, bars, gaps, diagonal, axes.
        let bottom = top + plotHeight, right = left + plotWidth
        for t in stride(from: 0, through: 10, by: 2) {
            let v = Double(t) / 10
            s += line(x(v), top, x(v), bottom, stroke: "#e6e6e6")
            s += line(left, y(v), right, y(v), stroke: "#e6e6e6")
            s += text(left - 8, y(v) + 4, fixed(v, 1), anchor: "end")
            s += text(x(v), bottom + 18, fixed(v, 1), anchor: "middle")
        }
        for bin in bins {
            guard let acc = bin.accuracy, let conf = bin.confidence, bin.count > 0 else { continue }
            let (x0, x1) = barSpan(bin)
            s += rect(x0, y(acc), x1 - x0, bottom - y(acc), fill: accuracyFill, extra: " stroke=\"#2f4b6e\" stroke-width=\"0.8\"")
            let hi = max(acc, conf), lo = min(acc, conf)
            if hi > lo {
                s += rect(
                    x0, y(hi), x1 - x0, y(lo) - y(hi), fill: gapFill,
                    extra: " fill-opacity=\"0.35\" stroke=\"\(gapFill)\" stroke-width=\"1\"")
            }
        }
        s += line(left, bottom, right, top, stroke: "#333333", extra: " stroke-width=\"1.5\" stroke-dasharray=\"6 4\"")
        s += "<rect x=\"\(f(left))\" y=\"\(f(top))\" width=\"\(f(plotWidth))\" height=\"\(f(plotHeight))\" fill=\"none\" stroke=\"#333333\"/>\n"
        s += text(left - 52, top + plotHeight / 2, "Accuracy", size: 14, anchor: "middle", rotate: true)

        // Histogram of samples per bin.
        let histBottom = histTop + histHeight
        let maxCount = max(bins.map(\.count).max() ?? 0, 1)
        s += line(left, histBottom, right, histBottom, stroke: "#333333")
        s += line(left, histTop, left, histBottom, stroke: "#333333")
        s += text(left - 8, histTop + 4, String(maxCount), anchor: "end")
        s += text(left - 8, histBottom + 4, "0", anchor: "end")
        for t in stride(from: 0, through: 10, by: 2) {
            let v = Double(t) / 10
            s += text(x(v), histBottom + 18, fixed(v, 1), anchor: "middle")
        }
        for bin in bins where bin.count > 0 {
            let (x0, x1) = barSpan(bin)
            let h = histHeight * Double(bin.count) / Double(maxCount)
            s += rect(x0, histBottom - h, x1 - x0, h, fill: histFill, extra: " stroke=\"#6d6d6d\" stroke-width=\"0.8\"")
            if bins.count <= 25 {
                s += text((x0 + x1) / 2, histBottom - h - 4, String(bin.count), size: 10, anchor: "middle", fill: "#444444")
            }
        }
        s += text(left - 52, histTop + histHeight / 2, "Count", size: 14, anchor: "middle", rotate: true)
        s += text(left + plotWidth / 2, histBottom + 44, "Confidence (top-label probability)", size: 14, anchor: "middle")

        // Legend.
        let lx = right + 28
        var ly = top + 8
        s += rect(lx, ly, 18, 14, fill: accuracyFill)
        s += text(lx + 26, ly + 12, "Accuracy per bin")
        ly += 26
        s += rect(lx, ly, 18, 14, fill: gapFill, extra: " fill-opacity=\"0.35\" stroke=\"\(gapFill)\"")
        s += text(lx + 26, ly + 12, "Gap to mean confidence")
        ly += 26
        s += line(lx, ly + 7, lx + 18, ly + 7, stroke: "#333333", extra: " stroke-width=\"1.5\" stroke-dasharray=\"6 4\"")
        s += text(lx + 26, ly + 12, "Perfect calibration")
        ly += 26
        s += rect(lx, ly, 18, 14, fill: histFill)
        s += text(lx + 26, ly + 12, "Samples per bin")
        ly += 40
        let empty = bins.filter { $0.count == 0 }.count
        s += text(lx, ly, "ECE = \(fixed(ece, 4))", size: 13)
        s += text(lx, ly + 20, "N = \(n)", size: 13)
        s += text(lx, ly + 40, "\(empty) empty bin\(empty == 1 ? "" : "s")", size: 13)
        if bins.count > regular.count, let extra = bins.last {
            s += text(lx, ly + 60, "confidence = 1: \(extra.count)", size: 13)
        }
        s += "</svg>\n"
        return s
    }

    // MARK: Geometry

    static func x(_ v: Double) -> Double { left + v * plotWidth }
    static func y(_ v: Double) -> Double { top + (1 - v) * plotHeight }

    /// A bin's bar in pixels, inset by half a pixel each side; torchmetrics' extra bin
    /// [1, 1] becomes a narrow bar just right of the axis.
    static func barSpan(_ bin: CalibrationMetrics.ReliabilityBin) -> (Double, Double) {
        if bin.upper <= bin.lower { return (x(1) + 2, x(1) + 8) }
        let x0 = x(bin.lower), x1 = x(bin.upper)
        let inset = min(0.5, (x1 - x0) / 4)
        return (x0 + inset, x1 - inset)
    }

    // MARK: Elements

    static func line(_ x1: Double, _ y1: Double, _ x2: Double, _ y2: Double, stroke: String, extra: String = "") -> String {
        "<line x1=\"\(f(x1))\" y1=\"\(f(y1))\" x2=\"\(f(x2))\" y2=\"\(f(y2))\" stroke=\"\(stroke)\"\(extra)/>\n"
    }

    static func rect(_ x: Double, _ y: Double, _ w: Double, _ h: Double, fill: String, extra: String = "") -> String {
        "<rect x=\"\(f(x))\" y=\"\(f(y))\" width=\"\(f(max(w, 0)))\" height=\"\(f(max(h, 0)))\" fill=\"\(fill)\"\(extra)/>\n"
    }

    static func text(
        _ x: Double, _ y: Double, _ content: String, size: Int = 12, anchor: String = "start",
        weight: String? = nil, fill: String = "#222222", rotate: Bool = false
    ) -> String {
        var s = "<text x=\"\(f(x))\" y=\"\(f(y))\" font-size=\"\(size)\" text-anchor=\"\(anchor)\" fill=\"\(fill)\""
        if let weight { s += " font-weight=\"\(weight)\"" }
        if rotate { s += " transform=\"rotate(-90 \(f(x)) \(f(y)))\"" }
        return s + ">\(escape(content))</text>\n"
    }

    /// XML text and attribute escaping.
    static func escape(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for c in text {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&apos;"
            default: out.append(c)
            }
        }
        return out
    }

    /// Coordinates with two decimals.
    static func f(_ v: Double) -> String { fixed(v, 2) }

    /// `v` rounded to `digits` decimals, without Foundation.
    static func fixed(_ v: Double, _ digits: Int) -> String {
        guard v.isFinite else { return "nan" }
        var scale = 1.0
        for _ in 0..<digits { scale *= 10 }
        let scaled = (abs(v) * scale).rounded()
        guard scaled < 9e15 else { return v.description }
        let units = Int64(scaled)
        let p = Int64(scale)
        var result = (v < 0 && units != 0 ? "-" : "") + String(units / p)
        if digits > 0 {
            let frac = String(units % p)
            result += "." + String(repeating: "0", count: digits - frac.count) + frac
        }
        return result
    }
}
