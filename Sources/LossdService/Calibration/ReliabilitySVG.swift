import LossdKernels

/// Reliability diagrams as standalone SVG documents (docs/calibration.md §2.8).
///
/// One series (`/v1/reliability`): accuracy bars per confidence bin, the gap between each
/// bin's accuracy and its mean confidence, a Wilson 95% interval on each bin's accuracy, the
/// identity line, and the samples per bin below. Two series (`/v1/calibrators/{name}/reliability`,
/// before and after calibration): each series as points at (mean confidence, accuracy) joined
/// by a line, with the same intervals, and the two histograms side by side.
///
/// Bars sit at i/B on the axis (the bin's nominal edges); the numbers that bin the data are
/// numpy.linspace's `i · (1/B)` (docs/calibration.md §1), which only differ in the last bit.
enum ReliabilitySVG: SVGDrawing {
    /// One set of bins with what the legend and subtitle say about it.
    struct Series {
        var label: String
        var bins: [CalibrationMetrics.ReliabilityBin]
        var ece: Double
        var accuracy: Double
        var colour: String
    }

    static let width = 900.0, height = 700.0
    /// The reliability plot and the histogram below it share the x axis.
    static let left = 90.0, plotWidth = 560.0
    static let top = 78.0, plotHeight = 400.0
    static let histTop = 512.0, histHeight = 100.0

    static let accuracyFill = "#4c78a8", accuracyStroke = "#2f4b6e"
    /// Opaque, so an under-confident bin's gap (drawn over the top of its accuracy bar) has
    /// the colour of the legend's swatch, not a blend with the bar beneath.
    static let gapFill = "#f4a4a3", gapStroke = "#c9302c"
    static let histFill = "#9d9d9d", intervalStroke = "#111111"
    static let beforeColour = "#e8803a", afterColour = "#4c78a8"

    /// z for a two-sided 95% interval.
    static let z95 = 1.959963984540054

    /// Wilson's score interval for a proportion `p` observed over `n` trials (Wilson 1927,
    /// "Probable inference, the law of succession, and statistical inference"): centre
    /// (p + z²/2n) / (1 + z²/n), half-width z / (1 + z²/n) · sqrt(p(1−p)/n + z²/4n²). Unlike
    /// p ± z·sqrt(p(1−p)/n) it stays inside [0, 1] and is not empty at p = 0 or 1. With soft
    /// targets `p` is a bin's mean expected accuracy and the interval is approximate.
    static func wilson(_ p: Double, n: Int) -> (lower: Double, upper: Double) {
        guard n > 0 else { return (0, 1) }
        let nn = Double(n), z2 = z95 * z95
        let q = min(max(p, 0), 1)
        let denominator = 1 + z2 / nn
        let centre = (q + z2 / (2 * nn)) / denominator
        let half = z95 / denominator * (q * (1 - q) / nn + z2 / (4 * nn * nn)).squareRoot()
        return (max(0, centre - half), min(1, centre + half))
    }

    /// The diagram of one set of bins.
    static func render(
        bins: [CalibrationMetrics.ReliabilityBin], ece: Double, accuracy: Double, n: Int, binRule: BinRule, title: String? = nil
    ) -> String {
        let series = Series(label: "", bins: bins, ece: ece, accuracy: accuracy, colour: accuracyFill)
        let regular = bins.filter { $0.upper > $0.lower }.count
        let heading = title ?? "Reliability diagram \u{2014} ECE = \(fixed(ece, 4)), N = \(n)"
        let subtitle = "\(regular) bins (\(binRule.rawValue) rule), accuracy = \(fixed(accuracy * 100, 1))%, whiskers: Wilson 95%"
        var s = frame(heading: heading, subtitle: subtitle, binCount: regular)
        s += bars(series, binCount: regular)
        s += axesOverlay()
        s += histogram([series], binCount: regular)

        var legend = Legend()
        s += legend.swatch(fill: accuracyFill, stroke: accuracyStroke, "Accuracy per bin (dark line)")
        s += legend.swatch(fill: gapFill, stroke: gapStroke, "Gap to mean confidence")
        s += legend.whisker("Wilson 95% interval")
        s += legend.diagonal("Perfect calibration")
        s += legend.swatch(fill: histFill, stroke: "#6d6d6d", "Samples per bin")
        legend.y += 14
        let empty = bins.filter { $0.count == 0 }.count
        s += legend.note("ECE = \(fixed(ece, 4))")
        s += legend.note("N = \(n)")
        s += legend.note("\(empty) empty bin\(empty == 1 ? "" : "s")")
        if bins.count > regular, let extra = bins.last { s += legend.note("confidence = 1: \(extra.count)") }
        return s + "</svg>\n"
    }

    /// Two sets of bins over the same samples (before and after calibration) on one diagram.
    static func renderComparison(before: Series, after: Series, n: Int, binRule: BinRule, title: String) -> String {
        let regular = before.bins.filter { $0.upper > $0.lower }.count
        let subtitle =
            "\(regular) bins (\(binRule.rawValue) rule), N = \(n), ECE \(fixed(before.ece, 4)) \u{2192} \(fixed(after.ece, 4)), "
            + "whiskers: Wilson 95%"
        var s = frame(heading: title, subtitle: subtitle, binCount: regular)
        for (index, series) in [before, after].enumerated() {
            s += curve(series, binCount: regular, offset: index == 0 ? -2.5 : 2.5)
        }
        s += axesOverlay()
        s += histogram([before, after], binCount: regular)

        var legend = Legend()
        for series in [before, after] {
            s += legend.marker(series.colour, series.label)
            s += legend.detail("ECE \(fixed(series.ece, 4)), accuracy \(fixed(series.accuracy * 100, 1))%")
        }
        s += legend.whisker("Wilson 95% interval")
        s += legend.diagonal("Perfect calibration")
        s += legend.detail("A point per non-empty bin:")
        s += legend.detail("x mean confidence, y accuracy")
        return s + "</svg>\n"
    }

    // MARK: Panels

    /// The title, the grid and tick labels of the reliability panel, and the axis titles.
    static func frame(heading: String, subtitle: String, binCount: Int) -> String {
        var s = ""
        s.reserveCapacity(8192 + binCount * 600)
        s += documentStart(width: width, height: height, title: heading, fontSize: 13)
        s += text(width / 2, 32, heading, size: 19, anchor: "middle", weight: "bold")
        s += text(width / 2, 54, subtitle, size: 13, anchor: "middle", fill: "#555555")
        let bottom = top + plotHeight, right = left + plotWidth
        for t in 0...5 {
            let v = Double(t) / 5
            s += line(x(v), top, x(v), bottom, stroke: "#e6e6e6")
            s += line(left, y(v), right, y(v), stroke: "#e6e6e6")
            s += text(left - 8, y(v) + 4, fixed(v, 1), anchor: "end")
            s += text(x(v), bottom + 18, fixed(v, 1), anchor: "middle")
        }
        s += text(left - 52, top + plotHeight / 2, "Accuracy", size: 14, anchor: "middle", rotate: true)
        s += text(left - 52, histTop + histHeight / 2, "Count", size: 14, anchor: "middle", rotate: true)
        s += text(left + plotWidth / 2, histTop + histHeight + 44, "Confidence (top-label probability)", size: 14, anchor: "middle")
        return s
    }

    /// The identity line and the panel's border, drawn over the bars.
    static func axesOverlay() -> String {
        var s = line(left, top + plotHeight, left + plotWidth, top, stroke: "#333333", extra: " stroke-width=\"1.5\" stroke-dasharray=\"6 4\"")
        s += "<rect x=\"\(f(left))\" y=\"\(f(top))\" width=\"\(f(plotWidth))\" height=\"\(f(plotHeight))\" fill=\"none\" stroke=\"#333333\"/>\n"
        return s
    }

    /// Accuracy bars, gaps and intervals of one series; each bar carries a tooltip with its
    /// numbers.
    static func bars(_ series: Series, binCount: Int) -> String {
        var s = ""
        let bottom = top + plotHeight
        for (index, bin) in series.bins.enumerated() {
            guard let acc = bin.accuracy, let conf = bin.confidence, bin.count > 0 else { continue }
            let (x0, x1) = barSpan(index, bin, binCount: binCount)
            s += "<g><title>\(escape(tooltip(index, bin, binCount: binCount)))</title>\n"
            s += rect(x0, y(acc), x1 - x0, bottom - y(acc), fill: series.colour, extra: " stroke=\"\(accuracyStroke)\" stroke-width=\"0.8\"")
            let hi = max(acc, conf), lo = min(acc, conf)
            if hi > lo {
                s += rect(x0, y(hi), x1 - x0, y(lo) - y(hi), fill: gapFill, extra: " stroke=\"\(gapStroke)\" stroke-width=\"1\"")
            }
            // The accuracy itself, visible also where the gap covers the top of the bar.
            s += line(x0, y(acc), x1, y(acc), stroke: accuracyStroke, extra: " stroke-width=\"2.5\"")
            s += interval((x0 + x1) / 2, acc, count: bin.count, cap: min(6, (x1 - x0) / 3))
            s += "</g>\n"
        }
        return s
    }

    /// One series as points at (mean confidence, accuracy) joined in bin order, with intervals;
    /// `offset` shifts it a few pixels sideways so two series' whiskers do not hide each other.
    static func curve(_ series: Series, binCount: Int, offset: Double) -> String {
        var s = ""
        var points: [(Double, Double)] = []
        var marks = ""
        for (index, bin) in series.bins.enumerated() {
            guard let acc = bin.accuracy, let conf = bin.confidence, bin.count > 0 else { continue }
            let px = x(conf) + offset
            points.append((px, y(acc)))
            marks += "<g><title>\(escape(series.label + ": " + tooltip(index, bin, binCount: binCount)))</title>\n"
            marks += interval(px, acc, count: bin.count, cap: 4, stroke: series.colour)
            marks += "<circle cx=\"\(f(px))\" cy=\"\(f(y(acc)))\" r=\"4.5\" fill=\"\(series.colour)\" stroke=\"#ffffff\" stroke-width=\"1\"/>\n"
            marks += "</g>\n"
        }
        if points.count > 1 {
            let path = points.map { "\(f($0.0)),\(f($0.1))" }.joined(separator: " ")
            s += "<polyline points=\"\(path)\" fill=\"none\" stroke=\"\(series.colour)\" stroke-width=\"2\" stroke-opacity=\"0.85\"/>\n"
        }
        return s + marks
    }

    /// A vertical whisker from the Wilson interval's lower to upper end, with caps.
    static func interval(_ cx: Double, _ p: Double, count: Int, cap: Double, stroke: String = intervalStroke) -> String {
        let (lo, hi) = wilson(p, n: count)
        var s = line(cx, y(hi), cx, y(lo), stroke: stroke, extra: " stroke-width=\"1.2\"")
        s += line(cx - cap, y(hi), cx + cap, y(hi), stroke: stroke, extra: " stroke-width=\"1.2\"")
        s += line(cx - cap, y(lo), cx + cap, y(lo), stroke: stroke, extra: " stroke-width=\"1.2\"")
        return s
    }

    /// Samples per bin; with several series their bars share each bin side by side.
    static func histogram(_ series: [Series], binCount: Int) -> String {
        var s = ""
        let histBottom = histTop + histHeight, right = left + plotWidth
        let maxCount = max(series.flatMap { $0.bins.map(\.count) }.max() ?? 0, 1)
        s += line(left, histBottom, right, histBottom, stroke: "#333333")
        s += line(left, histTop, left, histBottom, stroke: "#333333")
        s += text(left - 8, histTop + 4, String(maxCount), anchor: "end")
        s += text(left - 8, histBottom + 4, "0", anchor: "end")
        for t in 0...5 {
            s += text(x(Double(t) / 5), histBottom + 18, fixed(Double(t) / 5, 1), anchor: "middle")
        }
        let single = series.count == 1
        for (k, one) in series.enumerated() {
            for (index, bin) in one.bins.enumerated() where bin.count > 0 {
                var (x0, x1) = barSpan(index, bin, binCount: binCount)
                if !single {
                    let w = (x1 - x0) / Double(series.count)
                    x0 += w * Double(k)
                    x1 = x0 + w
                }
                let h = histHeight * Double(bin.count) / Double(maxCount)
                s += rect(x0, histBottom - h, x1 - x0, h, fill: single ? histFill : one.colour, extra: " stroke=\"#6d6d6d\" stroke-width=\"0.6\"")
                if single && binCount <= 25 {
                    s += text((x0 + x1) / 2, histBottom - h - 4, String(bin.count), size: 10, anchor: "middle", fill: "#444444")
                }
            }
        }
        return s
    }

    // MARK: Legend

    /// The legend column right of the plot, filled top to bottom.
    struct Legend {
        var y = ReliabilitySVG.top + 8
        let x = ReliabilitySVG.left + ReliabilitySVG.plotWidth + 28

        mutating func swatch(fill: String, stroke: String, _ label: String) -> String {
            defer { y += 26 }
            return ReliabilitySVG.rect(x, y, 18, 14, fill: fill, extra: " stroke=\"\(stroke)\"") + ReliabilitySVG.text(x + 26, y + 12, label)
        }

        mutating func marker(_ colour: String, _ label: String) -> String {
            defer { y += 20 }
            return "<circle cx=\"\(ReliabilitySVG.f(x + 9))\" cy=\"\(ReliabilitySVG.f(y + 7))\" r=\"4.5\" fill=\"\(colour)\"/>\n"
                + ReliabilitySVG.line(x, y + 7, x + 18, y + 7, stroke: colour, extra: " stroke-width=\"2\"")
                + ReliabilitySVG.text(x + 26, y + 12, label, weight: "bold")
        }

        mutating func whisker(_ label: String) -> String {
            defer { y += 26 }
            let cx = x + 9
            return ReliabilitySVG.line(cx, y, cx, y + 14, stroke: ReliabilitySVG.intervalStroke, extra: " stroke-width=\"1.2\"")
                + ReliabilitySVG.line(cx - 4, y, cx + 4, y, stroke: ReliabilitySVG.intervalStroke, extra: " stroke-width=\"1.2\"")
                + ReliabilitySVG.line(cx - 4, y + 14, cx + 4, y + 14, stroke: ReliabilitySVG.intervalStroke, extra: " stroke-width=\"1.2\"")
                + ReliabilitySVG.text(x + 26, y + 12, label)
        }

        mutating func diagonal(_ label: String) -> String {
            defer { y += 26 }
            return ReliabilitySVG.line(x, y + 7, x + 18, y + 7, stroke: "#333333", extra: " stroke-width=\"1.5\" stroke-dasharray=\"6 4\"")
                + ReliabilitySVG.text(x + 26, y + 12, label)
        }

        mutating func note(_ content: String) -> String {
            defer { y += 20 }
            return ReliabilitySVG.text(x, y + 12, content, size: 13)
        }

        mutating func detail(_ content: String) -> String {
            defer { y += 24 }
            return ReliabilitySVG.text(x + 26, y + 10, content, size: 11, fill: "#555555")
        }
    }

    // MARK: Geometry

    static func x(_ v: Double) -> Double { left + v * plotWidth }
    static func y(_ v: Double) -> Double { top + (1 - v) * plotHeight }

    /// Bin `index` of `binCount` in pixels, at i/B to (i+1)/B and inset by half a pixel each
    /// side; torchmetrics' extra bin [1, 1] becomes a narrow bar just right of the axis.
    static func barSpan(_ index: Int, _ bin: CalibrationMetrics.ReliabilityBin, binCount: Int) -> (Double, Double) {
        if bin.upper <= bin.lower || index >= binCount { return (x(1) + 2, x(1) + 8) }
        let x0 = x(Double(index) / Double(binCount)), x1 = x(Double(index + 1) / Double(binCount))
        let inset = min(0.5, (x1 - x0) / 4)
        return (x0 + inset, x1 - inset)
    }

    /// "0.3–0.4: 12 samples, accuracy 0.583 (95% 0.320–0.807), confidence 0.352", the
    /// edges written as i/B.
    static func tooltip(_ index: Int, _ bin: CalibrationMetrics.ReliabilityBin, binCount: Int) -> String {
        let (lo, hi) = wilson(bin.accuracy ?? 0, n: bin.count)
        let range =
            bin.upper <= bin.lower || index >= binCount
            ? "confidence 1" : "\(trimmed(fixed(Double(index) / Double(binCount), 6)))\u{2013}\(trimmed(fixed(Double(index + 1) / Double(binCount), 6)))"
        return "\(range): \(bin.count) sample\(bin.count == 1 ? "" : "s"), accuracy \(fixed(bin.accuracy ?? 0, 3)) "
            + "(95% \(fixed(lo, 3))\u{2013}\(fixed(hi, 3))), confidence \(fixed(bin.confidence ?? 0, 3))"
    }
}
