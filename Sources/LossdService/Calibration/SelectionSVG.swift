import LossdKernels

#if canImport(Glibc)
    import Glibc
#endif

/// The ranking of `POST /v1/calibrators/select` as a standalone SVG document (docs/calibration.md
/// §5): one row per method, best first, with each fold's held-out value as a dot, the mean
/// as a bar tick with ± one standard deviation, the uncalibrated baseline as a dashed
/// vertical line (and its own row), and failed folds counted at the right.
enum SelectionSVG: SVGDrawing {
    static let width = 960.0
    static let left = 200.0, plotWidth = 520.0
    static let top = 96.0, rowHeight = 34.0

    static let meanStroke = "#1f3b5c", foldFill = "#4c78a8", bestFill = "#e8f1e4", failColour = "#c0392b"
    static let baselineStroke = "#7f7f7f"

    static func render(_ outcome: CalibratorSelection.Outcome) -> String {
        let rows = outcome.ranking + [outcome.uncalibrated]
        let plotHeight = rowHeight * Double(rows.count)
        let height = top + plotHeight + 112
        let metricName = label(outcome.metric)
        var s = ""
        s.reserveCapacity(4096 + rows.count * 1200)
        let title = "Calibrator selection \u{2014} held-out \(metricName), \(outcome.folds)-fold cross-validation"
        s += documentStart(width: width, height: height, title: title, fontSize: 13)
        s += text(width / 2, 32, title, size: 19, anchor: "middle", weight: "bold")
        let n = outcome.foldSizes.reduce(0, +)
        let subtitle = "N = \(n), C = \(outcome.best.model.classes), seed \(outcome.seed); best: \(outcome.best.model.method) (lower is better)"
        s += text(width / 2, 54, subtitle, size: 13, anchor: "middle", fill: "#555555")

        // The scale: every fold value and the baseline, padded to round ticks.
        var values = rows.flatMap(\.scored)
        if values.isEmpty { values = [0, 1] }
        let (lo, hi, step) = ticks(values.min() ?? 0, values.max() ?? 1)
        let x = { (v: Double) in left + (v - lo) / (hi - lo) * plotWidth }
        let bottom = top + plotHeight, right = left + plotWidth

        for (i, row) in rows.enumerated() where i == 0 && row.mean != nil {
            s += rect(8, top + Double(i) * rowHeight, width - 16, rowHeight, fill: bestFill)
        }
        var t = lo
        while t <= hi + step / 2 {
            s += line(x(t), top, x(t), bottom, stroke: "#e6e6e6")
            s += text(x(t), bottom + 18, sig(t, 3), anchor: "middle")
            t += step
        }
        s += text(right + 24, top - 12, "mean \u{b1} std", size: 12, weight: "bold")
        s += text(right + 148, top - 12, "failed folds", size: 12, weight: "bold")
        for (i, row) in rows.enumerated() {
            let cy = top + (Double(i) + 0.5) * rowHeight
            let isBaseline = i == rows.count - 1
            if isBaseline { s += line(8, cy - rowHeight / 2, width - 8, cy - rowHeight / 2, stroke: "#bbbbbb") }
            let name = isBaseline ? "uncalibrated" : row.method
            let colour = isBaseline ? baselineStroke : "#222222"
            s += text(left - 14, cy + 4, name, size: 14, anchor: "end", weight: i == 0 && row.mean != nil ? "bold" : nil, fill: colour)
            s += line(left, cy, right, cy, stroke: "#f0f0f0")
            // Fold values, spread vertically by fold so that equal values stay visible.
            for (fold, value) in row.perFold.enumerated() {
                let dy = (Double(fold) - Double(outcome.folds - 1) / 2) * min(3, 18 / Double(max(outcome.folds, 1)))
                if let value {
                    s += "<circle cx=\"\(f(x(value)))\" cy=\"\(f(cy + dy))\" r=\"3.5\" fill=\"\(isBaseline ? baselineStroke : foldFill)\" fill-opacity=\"0.55\"/>\n"
                }
            }
            if let mean = row.mean, let std = row.std {
                let stroke = isBaseline ? baselineStroke : meanStroke
                s += line(x(max(lo, mean - std)), cy, x(min(hi, mean + std)), cy, stroke: stroke, extra: " stroke-width=\"2\"")
                s += line(x(mean), cy - 10, x(mean), cy + 10, stroke: stroke, extra: " stroke-width=\"3\"")
                s += text(right + 24, cy + 4, "\(sig(mean, 4)) \u{b1} \(sig(std, 2))", size: 13, fill: colour)
            } else {
                s += text(left + plotWidth / 2, cy + 4, "every fold failed", size: 13, anchor: "middle", fill: failColour)
                s += text(right + 24, cy + 4, "\u{2013}", size: 13)
            }
            if !isBaseline {
                let failed = row.failures.count
                s += text(
                    right + 148, cy + 4, failed == 0 ? "0" : "\u{d7} \(failed) of \(outcome.folds)", size: 13,
                    weight: failed == 0 ? nil : "bold", fill: failed == 0 ? "#999999" : failColour)
            }
        }
        if let mean = outcome.uncalibrated.mean {
            s += line(x(mean), top - 4, x(mean), bottom, stroke: baselineStroke, extra: " stroke-width=\"1.5\" stroke-dasharray=\"6 4\"")
        }
        s += "<rect x=\"\(f(left))\" y=\"\(f(top))\" width=\"\(f(plotWidth))\" height=\"\(f(plotHeight))\" fill=\"none\" stroke=\"#333333\"/>\n"
        s += text(left + plotWidth / 2, bottom + 42, "Held-out \(metricName) per fold (lower is better)", size: 14, anchor: "middle")

        // Legend.
        var lx = left - 120
        let ly = bottom + 76
        s += "<circle cx=\"\(f(lx + 6))\" cy=\"\(f(ly - 4))\" r=\"3.5\" fill=\"\(foldFill)\" fill-opacity=\"0.55\"/>\n"
        s += text(lx + 16, ly, "one fold")
        lx += 110
        s += line(lx, ly - 4, lx + 24, ly - 4, stroke: meanStroke, extra: " stroke-width=\"2\"")
        s += line(lx + 12, ly - 12, lx + 12, ly + 4, stroke: meanStroke, extra: " stroke-width=\"3\"")
        s += text(lx + 32, ly, "mean \u{b1} one std over the folds")
        lx += 250
        s += line(lx, ly - 4, lx + 24, ly - 4, stroke: baselineStroke, extra: " stroke-width=\"1.5\" stroke-dasharray=\"6 4\"")
        s += text(lx + 32, ly, "uncalibrated mean")
        lx += 170
        s += rect(lx, ly - 12, 18, 14, fill: bestFill, extra: " stroke=\"#9cbf8e\"")
        s += text(lx + 26, ly, "chosen (refitted on all rows)")
        s += "</svg>\n"
        return s
    }

    static func label(_ metric: String) -> String {
        switch metric {
        case "nll": "NLL"
        case "ece": "ECE"
        case "rmsce": "RMSCE"
        default: "Brier score"
        }
    }

    /// An axis from `lo` to `hi` extended to multiples of a 1-2-5 step (about five ticks).
    static func ticks(_ lo: Double, _ hi: Double) -> (Double, Double, Double) {
        var (a, b) = (lo, hi)
        if !(b > a) {
            let pad = a == 0 ? 1 : abs(a) * 0.1
            (a, b) = (a - pad, b + pad)
        }
        let raw = (b - a) / 5
        let magnitude = pow(10, (log10(raw)).rounded(.down))
        let step = [1.0, 2, 5, 10].map { $0 * magnitude }.first { $0 >= raw } ?? 10 * magnitude
        let start = (a / step).rounded(.down) * step
        let end = (b / step).rounded(.up) * step
        return (start, end > start ? end : start + step, step)
    }
}
