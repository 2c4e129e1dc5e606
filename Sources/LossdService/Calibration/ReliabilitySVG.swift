import LossdKernels

/// A reliability diagram as a standalone SVG document (docs/calibration.md §2.8,
/// `/v1/reliability`): accuracy bars per confidence bin, the identity line, the gap between
/// each bin's accuracy and mean confidence, and a histogram of samples per bin below.
enum ReliabilitySVG: SVGDrawing {
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
        s += documentStart(width: width, height: height, title: title, fontSize: 13)
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
}
