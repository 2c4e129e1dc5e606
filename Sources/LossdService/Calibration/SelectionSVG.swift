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
    static let left = 224.0, plotWidth = 496.0
    static let top = 96.0, rowHeight = 34.0

    static let meanStroke = "#1f3b5c", foldFill = "#4c78a8", bestFill = "#e8f1e4", failColour = "#c0392b"
    static let baselineStroke = "#7f7f7f"

    static func render(_ outcome: CalibratorSelection.Outcome) -> String {
        let rows = outcome.ranking + [outcome.uncalibrated]
        let plotHeight = rowHeight * Double(rows.count)
        let height = top + plotHeight + 130
        let metricName = label(outcome.metric)
        var s = ""
        s.reserveCapacity(4096 + rows.count * 1200)
        let title = "Calibrator selection \u{2014} held-out \(metricName), \(outcome.folds)-fold cross-validation"
        s += documentStart(width: width, height: height, title: title, fontSize: 13)
        s += text(width / 2, 32, title, size: 19, anchor: "middle", weight: "bold")
        let n = outcome.foldSizes.reduce(0, +)
        let subtitle = "N = \(n), C = \(outcome.best.model.classes), seed \(outcome.seed); best: \(outcome.best.model.method) (lower is better)"
        s += text(width / 2, 54, subtitle, size: 13, anchor: "middle", fill: "#555555")

        // The scale: every fold value and the baseline, padded to round ticks; logarithmic
        // when they span more than a factor of 10 (a poor method's NLL would otherwise
        // squeeze the close contenders into a few pixels).
        // Values beyond 1000 times the median (an overflowing baseline, say) are left off
        // the scale and drawn as arrows at its right edge.
        var values = rows.flatMap(\.scored).sorted()
        if let median = values.isEmpty ? nil : values[values.count / 2], median > 0 {
            values = values.filter { $0 <= 1000 * median }
        }
        if values.isEmpty { values = [0, 1] }
        let scale = Scale(values)
        let x = { (v: Double) in left + scale.position(v) * plotWidth }
        let (lo, hi) = (scale.lo, scale.hi)
        let bottom = top + plotHeight, right = left + plotWidth

        for (i, row) in rows.enumerated() where i == 0 && row.mean != nil {
            s += rect(8, top + Double(i) * rowHeight, width - 16, rowHeight, fill: bestFill)
        }
        for t in scale.ticks {
            s += line(x(t), top, x(t), bottom, stroke: "#e6e6e6")
            s += text(x(t), bottom + 18, sig(t, 3), anchor: "middle")
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
                if let value, value > hi {
                    s += text(right - 2, cy + dy + 4, "\u{25b8}", size: 14, anchor: "end", fill: isBaseline ? baselineStroke : foldFill)
                } else if let value {
                    s += "<circle cx=\"\(f(x(value)))\" cy=\"\(f(cy + dy))\" r=\"3.5\" fill=\"\(isBaseline ? baselineStroke : foldFill)\" fill-opacity=\"0.55\"/>\n"
                } else {
                    // A failed fold: a red cross at the plot's right edge.
                    let cx = right - 8 - Double(fold) * 9
                    s += line(cx - 3.5, cy - 3.5, cx + 3.5, cy + 3.5, stroke: failColour, extra: " stroke-width=\"2\"")
                    s += line(cx - 3.5, cy + 3.5, cx + 3.5, cy - 3.5, stroke: failColour, extra: " stroke-width=\"2\"")
                }
            }
            if let mean = row.mean, mean > hi {
                s += text(right - 16, cy + 4, "mean off scale", size: 11, anchor: "end", fill: colour)
                s += text(right + 24, cy + 4, meanAndSpread(mean, row.std), size: 13, fill: colour)
            } else if let mean = row.mean {
                let std = row.std ?? 0
                let stroke = isBaseline ? baselineStroke : meanStroke
                s += line(x(max(lo, mean - std)), cy, x(min(hi, mean + std)), cy, stroke: stroke, extra: " stroke-width=\"2\"")
                s += line(x(mean), cy - 10, x(mean), cy + 10, stroke: stroke, extra: " stroke-width=\"3\"")
                s += text(right + 24, cy + 4, meanAndSpread(mean, row.std), size: 13, fill: colour)
            } else {
                let note = row.scored.isEmpty ? "every fold failed" : "the mean is not representable"
                s += text(left + plotWidth / 2, cy + 4, note, size: 13, anchor: "middle", fill: failColour)
                s += text(right + 24, cy + 4, "\u{2013}", size: 13)
            }
            if !isBaseline {
                let failed = row.failures.count
                s += text(
                    right + 148, cy + 4, failed == 0 ? "0" : "\u{d7} \(failed) of \(outcome.folds)", size: 13,
                    weight: failed == 0 ? nil : "bold", fill: failed == 0 ? "#999999" : failColour)
            }
        }
        if let mean = outcome.uncalibrated.mean, mean <= hi {
            s += line(x(mean), top - 4, x(mean), bottom, stroke: baselineStroke, extra: " stroke-width=\"1.5\" stroke-dasharray=\"6 4\"")
        }
        s += "<rect x=\"\(f(left))\" y=\"\(f(top))\" width=\"\(f(plotWidth))\" height=\"\(f(plotHeight))\" fill=\"none\" stroke=\"#333333\"/>\n"
        s += text(left + plotWidth / 2, bottom + 42, "Held-out \(metricName) per fold (lower is better\(scale.logarithmic ? "; log scale" : ""))", size: 14, anchor: "middle")

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
        lx = left - 120
        s += line(lx + 2, ly + 18, lx + 9, ly + 25, stroke: failColour, extra: " stroke-width=\"2\"")
        s += line(lx + 2, ly + 25, lx + 9, ly + 18, stroke: failColour, extra: " stroke-width=\"2\"")
        s += text(lx + 16, ly + 26, "a fold whose fit failed (not scored; see fit_failures)")
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

    /// "0.1778 ± 0.0306": four significant figures of the mean, the spread to the same
    /// decimals; significant figures with a power of ten outside [10⁻³, 10⁵).
    static func meanAndSpread(_ mean: Double, _ std: Double?) -> String {
        guard mean == 0 || (abs(mean) >= 1e-3 && abs(mean) < 1e5) else {
            return sig(mean, 4) + (std.map { " \u{b1} " + sig($0, 2) } ?? "")
        }
        let magnitude = mean == 0 ? 0 : Int(log10(abs(mean)).rounded(.down))
        let decimals = min(max(0, 3 - magnitude), 8)
        return fixed(mean, decimals) + (std.map { " \u{b1} " + fixed($0, decimals) } ?? "")
    }

    /// The x axis: linear from 1-2-5 multiples, or logarithmic at 1, 2 and 5 per decade.
    struct Scale {
        let lo: Double, hi: Double
        let logarithmic: Bool
        let ticks: [Double]

        init(_ values: [Double]) {
            var a = values.min() ?? 0, b = values.max() ?? 1
            if a > 0, b / a > 10 {
                logarithmic = true
                let steps = Scale.logSteps(from: a, to: b)
                let low = steps.last { $0 <= a } ?? a, high = steps.first { $0 >= b } ?? b
                (lo, hi) = (low, high)
                ticks = steps.filter { $0 >= low && $0 <= high }
                return
            }
            logarithmic = false
            if !(b > a) {
                let pad = a == 0 ? 1 : abs(a) * 0.1
                (a, b) = (a - pad, b + pad)
            }
            let raw = (b - a) / 5
            let magnitude = pow(10, log10(raw).rounded(.down))
            let step = [1.0, 2, 5, 10].map { $0 * magnitude }.first { $0 >= raw } ?? 10 * magnitude
            let low = (a / step).rounded(.down) * step
            let end = (b / step).rounded(.up) * step
            let high = end > low ? end : low + step
            (lo, hi) = (low, high)
            ticks = (0...Int(((high - low) / step).rounded())).map { low + Double($0) * step }
        }

        /// 1, 2, 5 × 10^e from the decade below `a` to the decade above `b`.
        static func logSteps(from a: Double, to b: Double) -> [Double] {
            let first = Int(log10(a).rounded(.down)), last = max(Int(log10(b).rounded(.up)), Int(log10(a).rounded(.down)))
            // 1, 2, 5 per decade over a few decades; over many, every n-th power of ten only
            // (at most about eight ticks).
            let decades = last - first
            let mantissas: [Double] = decades <= 3 ? [1, 2, 5] : [1]
            let stride = max(1, (decades + 7) / 8)
            var steps: [Double] = []
            var e = first
            while e <= last + stride - 1 {
                for m in mantissas { steps.append(m * pow(10, Double(e))) }
                e += stride
            }
            return steps
        }

        /// Where `v` lies between `lo` (0) and `hi` (1), clamped.
        func position(_ v: Double) -> Double {
            let t = logarithmic ? (log10(max(v, lo)) - log10(lo)) / (log10(hi) - log10(lo)) : (v - lo) / (hi - lo)
            return min(max(t, 0), 1)
        }
    }
}
