#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif
import LossdKernels

/// The plots of `POST /v1/scaling/fit` and `/v1/scaling/predict` with
/// `Accept: image/svg+xml` (docs/scaling.md, "Plots"): for the size laws a log-log plot of
/// loss against size (power_law: x; chinchilla: compute 6·N·D with the law along the
/// compute-optimal frontier; nmt: Ne + Nd with the law at the posted encoder share), the
/// law solid over the posted range and dashed to 10× beyond it, with the bootstrap band;
/// for lr_annealing the loss against step with the learning-rate schedule beneath.
/// Standalone SVG 1.1, no fonts or scripts, the same bytes for the same request.
enum ScalingSVG: SVGDrawing {
    static let width = 680.0, left = 80.0, plotWidth = 572.0, top = 68.0
    static let dataColor = "#4c78a8", lawColor = "#e45756", predictedColor = "#f58518"
    static let palette = ["#4c78a8", "#f58518", "#54a24b", "#b279a2", "#72b7b2", "#9d755d", "#eeca3b", "#ff9da6"]
    /// At most this many markers per series and vertices per line.
    static let maxMarkers = 400, maxVertices = 600, maxCurves = 8, maxBandCurves = 4

    struct Bootstrap {
        var samples: Int
        var seed: UInt64
        var level: Double
    }

    /// What a prediction asked for, as the plot marks it.
    struct PredictInput {
        var query: ScalingQuery?
        var targetLoss: Double?
        var compute: [Double]?
        var totals: [Double]?
        var lr: [Double] = []
        var steps: [Int]?
    }

    // MARK: Figure model

    struct Series {
        enum Kind { case line, dashed, points, diamonds, band(upper: [Double]) }
        var kind: Kind
        var xs: [Double]
        var ys: [Double]
        var color: String
        var label: String?
        var role: String
    }

    struct Panel {
        var top: Double, height: Double
        var xLog: Bool, yLog: Bool
        var xLabel: String?, yLabel: String
        var series: [Series] = []
        var yRange: (Double, Double)?
        /// A grey span of x (the warm-up of lr_annealing).
        var shade: (Double, Double)?
        /// Linear axes from 0 (steps, learning rates).
        var xIncludesZero = false, yIncludesZero = false
        var role: String
    }

    struct Figure {
        var title: String
        var subtitle: String
        var caption: [String]
        var panels: [Panel]
    }

    // MARK: Fit

    /// The fit plot; with `bootstrap`, refits on resamples for the band at every plotted x.
    static func fit(_ result: ScalingFitResult, data: ScalingData, bootstrap: Bootstrap?) throws(ScalingInputError) -> String {
        let model = result.model
        let r = result.report
        var subtitle = "\(r.nPoints) points \u{b7} rmse(log) = \(sig(r.rmseLog, 2)) \u{b7} R\u{b2} = \(r.r2.isFinite ? fixed(r.r2, 4) : "\u{2013}")"
        if case .lrAnnealing = data {
            return try curveFit(result, data: data, bootstrap: bootstrap, subtitle: subtitle)
        }
        let view = SizeView(model: model, data: data)
        let (lo, hi) = (view.xs.min() ?? 1, view.xs.max() ?? 1)
        let first = lo < hi ? lo : hi / 10
        let inside = logGrid(first, hi, 60), beyond = logGrid(hi, hi * 10, 30)
        let grid = inside + beyond.dropFirst()
        let lawLoss = try model.predict(view.query(grid))
        var panel = sizePanel(view)
        if let bootstrap {
            let band = try ScalingBootstrap.run(
                result, samples: bootstrap.samples, seed: bootstrap.seed, level: bootstrap.level, query: view.query(grid))
            let label = "\(sig(band.level * 100, 3))% bootstrap band"
            panel.series.append(Series(
                kind: .band(upper: band.predictions.map(\.upper)), xs: grid, ys: band.predictions.map(\.lower),
                color: lawColor, label: label, role: "band"))
            subtitle += " \u{b7} band: \(sig(band.level * 100, 3))% of \(band.refits) refits"
        }
        panel.series.append(Series(
            kind: .line, xs: inside, ys: Array(lawLoss.prefix(inside.count)), color: lawColor, label: "fitted law", role: "law"))
        panel.series.append(Series(
            kind: .dashed, xs: beyond, ys: Array(lawLoss.suffix(beyond.count)), color: lawColor, label: "extrapolation to 10\u{d7}",
            role: "extrapolation"))
        panel.series += view.groups.enumerated().map { g, group in
            let (xs, ys) = thinned(group.indices.map { view.xs[$0] }, group.indices.map { view.loss[$0] })
            return Series(kind: .points, xs: xs, ys: ys, color: group.color, label: group.label, role: "data")
        }
        let figure = Figure(title: lawTitle(model), subtitle: subtitle, caption: view.caption + shown(view.xs.count), panels: [panel])
        return render(figure)
    }

    // MARK: Predict

    /// The predict plot: the law over the asked range and the predicted points marked.
    static func predict(_ model: ScalingModel, _ input: PredictInput) throws(ScalingInputError) -> String? {
        if model.law.kind == .lrAnnealing { return try curvePredict(model, input) }
        let view = SizeView(model: model, query: input.query)
        var marks: [(x: Double, loss: Double)] = []
        var markLabel = ""
        let p = model.values
        switch model.law.kind {
        case .powerLaw:
            if let target = input.targetLoss, let x = try ScalingDerived.xForLoss(model, target: target) {
                marks = [(x, target)]
                markLabel = "x for loss \(sig(target, 4))"
            }
        case .chinchilla:
            marks = try ScalingDerived.computeOptimal(model, compute: input.compute ?? []).map { ($0.compute, $0.loss) }
            markLabel = "compute-optimal N, D"
        default:
            marks = try ScalingDerived.optimalSplit(model, totals: input.totals ?? []).map { ($0.total, $0.loss) }
            markLabel = "optimal split Ne/N = \(fixed(p[2] / (p[2] + p[3]), 2))"
        }
        let xs = view.xs + marks.map(\.x)
        guard let lo = xs.min(), let hi = xs.max() else { return nil }
        let grid = logGrid(min(lo, hi / 10), hi, 90)
        var panel = sizePanel(view)
        panel.series.append(Series(kind: .line, xs: grid, ys: try model.predict(view.query(grid)), color: lawColor, label: "law", role: "law"))
        let (px, py) = thinned(view.xs, view.loss)
        if !px.isEmpty {
            panel.series.append(Series(kind: .diamonds, xs: px, ys: py, color: predictedColor, label: "predicted", role: "predicted"))
        }
        if !marks.isEmpty {
            panel.series.append(Series(kind: .points, xs: marks.map(\.x), ys: marks.map(\.loss), color: "#54a24b", label: markLabel, role: "derived"))
        }
        let subtitle = "prediction at \(view.xs.count) point\(view.xs.count == 1 ? "" : "s")" + (marks.isEmpty ? "" : ", \(marks.count) derived")
        return render(Figure(title: lawTitle(model), subtitle: subtitle, caption: view.caption + shown(view.xs.count), panels: [panel]))
    }

    // MARK: Size laws

    /// The size laws' data on one x axis: the size, the query that evaluates the law along
    /// that axis, and the points grouped for colour.
    struct SizeView {
        let model: ScalingModel
        var xs: [Double] = []
        var loss: [Double] = []
        var groups: [(indices: [Int], label: String, color: String)] = []
        var xLabel = "size x"
        var caption: [String] = []
        /// nmt: the encoder share Ne/(Ne + Nd) the curve is drawn at.
        var share = 0.5

        init(model: ScalingModel, data: ScalingData) {
            self.model = model
            var n: [Double] = []
            switch data {
            case .powerLaw(let x, let l): (xs, loss) = (x, l)
            case .chinchilla(let nn, let d, let l): (xs, loss, n) = (zip(nn, d).map { 6 * $0 * $1 }, l, nn)
            case .nmt(let e, let d, let l): (xs, loss) = (zip(e, d).map { $0 + $1 }, l); share = meanShare(e, d)
            case .lrAnnealing: break
            }
            describe(fitting: true)
            let sizes = Array(Set(n)).sorted()
            if model.law.kind == .chinchilla, sizes.count > 1, sizes.count <= ScalingSVG.palette.count {
                groups = sizes.enumerated().map { g, size in
                    (n.indices.filter { n[$0] == size }, "N = \(sig(size, 3))", ScalingSVG.palette[g])
                }
            } else {
                groups = [(Array(xs.indices), "posted runs", ScalingSVG.dataColor)]
            }
        }

        init(model: ScalingModel, query: ScalingQuery?) {
            self.model = model
            switch query {
            case .powerLaw(let x)?: xs = x
            case .chinchilla(let n, let d)?: xs = zip(n, d).map { 6 * $0 * $1 }
            case .nmt(let e, let d)?: xs = zip(e, d).map { $0 + $1 }; share = meanShare(e, d)
            default: break
            }
            if model.law.kind == .nmt, xs.isEmpty { share = model.values[2] / (model.values[2] + model.values[3]) }
            if let query { loss = (try? model.predict(query)) ?? [] }
            describe(fitting: false)
        }

        mutating func describe(fitting: Bool) {
            let solid = fitting ? "Solid: the law over the posted range; dashed: extrapolated to 10\u{d7} the largest." : ""
            switch model.law.kind {
            case .powerLaw:
                caption = [fitting ? "Points: posted runs. " + solid : "Diamonds: the predicted losses on the law."]
            case .chinchilla:
                xLabel = "training compute C = 6\u{b7}N\u{b7}D (FLOPs)"
                caption = [
                    "Law: the loss at the compute-optimal N, D of each budget C, the frontier the runs lie on or above.",
                    fitting
                        ? "Points: posted runs by model size N. Dashed: extrapolated to 10\u{d7} the largest budget."
                        : "Diamonds: the predicted (N, D), at C = 6\u{b7}N\u{b7}D.",
                ]
            case .nmt:
                let p = model.values
                xLabel = "total size Ne + Nd"
                caption = [
                    "Law at the \(fitting ? "posted" : "asked") mean encoder share Ne/N = \(fixed(share, 2)) "
                        + "(the loss-minimising share is pe/(pe+pd) = \(fixed(p[2] / (p[2] + p[3]), 2))).",
                    fitting ? "Points: posted runs. " + solid : "Diamonds: the predicted losses at their own split.",
                ]
            case .lrAnnealing: break
            }
        }

        /// The law's query at each size of the axis.
        func query(_ grid: [Double]) throws(ScalingInputError) -> ScalingQuery {
            switch model.law.kind {
            case .powerLaw: return .powerLaw(x: grid)
            case .chinchilla:
                let optimal = try ScalingDerived.computeOptimal(model, compute: grid)
                return .chinchilla(n: optimal.map(\.nOpt), d: optimal.map(\.dOpt))
            default: return .nmt(nEncoder: grid.map { $0 * share }, nDecoder: grid.map { $0 * (1 - share) })
            }
        }
    }

    static func meanShare(_ e: [Double], _ d: [Double]) -> Double {
        e.isEmpty ? 0.5 : zip(e, d).map { $0 / ($0 + $1) }.reduce(0, +) / Double(e.count)
    }

    static func sizePanel(_ view: SizeView) -> Panel {
        Panel(top: top, height: 290, xLog: true, yLog: true, xLabel: view.xLabel, yLabel: "loss", role: "loss")
    }

    static func shown(_ count: Int) -> [String] {
        count > maxMarkers ? ["Showing \(maxMarkers) of \(count) points (every k-th)."] : []
    }

    // MARK: lr_annealing

    static func curveFit(_ result: ScalingFitResult, data: ScalingData, bootstrap: Bootstrap?, subtitle: String) throws(ScalingInputError) -> String {
        guard case .lrAnnealing(let curves) = data, case .lrAnnealing(let decay, let w) = result.model.law else { return "" }
        var loss = Panel(top: top, height: 250, xLog: false, yLog: false, xLabel: nil, yLabel: "loss", role: "loss")
        loss.xIncludesZero = true
        var schedule = schedulePanel(warmup: w)
        var subtitle = subtitle + " \u{b7} \(curves.count) curve\(curves.count == 1 ? "" : "s")"
        var bandNote: [String] = []
        var visible: [Double] = []
        for (c, curve) in curves.prefix(maxCurves).enumerated() {
            let color = palette[c % palette.count]
            let name = curves.count == 1 ? "" : "curve \(c + 1) "
            let steps = curve.steps ?? Array(curve.lr.indices.dropFirst(w).map { $0 + 1 })
            let posted = curve.steps == nil ? Array(curve.loss.dropFirst(w)) : curve.loss
            let grid = sampledSteps(w + 1, curve.lr.count)
            let fitted = try ScalingDerived.curve(result.model, lr: curve.lr, steps: grid)
            if let bootstrap, c < maxBandCurves {
                let band = try ScalingBootstrap.run(
                    result, samples: bootstrap.samples, seed: bootstrap.seed, level: bootstrap.level,
                    query: .lrAnnealing(lr: curve.lr, steps: grid))
                loss.series.append(Series(
                    kind: .band(upper: band.predictions.map(\.upper)), xs: grid.map(Double.init), ys: band.predictions.map(\.lower),
                    color: color, label: c == 0 ? "\(sig(band.level * 100, 3))% bootstrap band" : nil, role: "band"))
                if c == 0 { subtitle += " \u{b7} band: \(sig(band.level * 100, 3))% of \(band.refits) refits" }
            }
            if bootstrap != nil, c == maxBandCurves { bandNote = ["Bands for the first \(maxBandCurves) curves only."] }
            let (px, py) = thinned(steps.map(Double.init), posted)
            loss.series.append(Series(kind: .points, xs: px, ys: py, color: color, label: "\(name)posted", role: "data"))
            loss.series.append(Series(
                kind: .line, xs: grid.map(Double.init), ys: fitted.loss, color: curves.count == 1 ? lawColor : color,
                label: "\(name)fitted law", role: "law"))
            schedule.series.append(scheduleSeries(curve.lr, color: color))
            visible += zip(steps, posted).filter { isLate($0.0, w, curve.lr.count) }.map(\.1)
            visible += zip(grid, fitted.loss).filter { isLate($0.0, w, curve.lr.count) }.map(\.1)
        }
        loss.yRange = paddedRange(visible)
        loss.shade = w > 0 ? (0.5, Double(w) + 0.5) : nil
        var caption = [
            "Top: posted loss (points) and the fitted law (lines) against step; bottom: the learning-rate schedule.",
            "Areas with decay \u{3bb} = \(sig(decay, 4))" + (w > 0 ? "; grey: the \(w) warm-up steps, not fitted." : "."),
        ]
        if curves.count > maxCurves { caption.append("Showing \(maxCurves) of \(curves.count) curves.") }
        return render(Figure(title: lawTitle(result.model), subtitle: subtitle, caption: caption + bandNote, panels: [loss, schedule]))
    }

    static func curvePredict(_ model: ScalingModel, _ input: PredictInput) throws(ScalingInputError) -> String {
        guard case .lrAnnealing(let decay, let w) = model.law else { return "" }
        let grid = sampledSteps(w + 1, input.lr.count)
        let curve = try ScalingDerived.curve(model, lr: input.lr, steps: grid)
        var loss = Panel(top: top, height: 250, xLog: false, yLog: false, xLabel: nil, yLabel: "predicted loss", role: "loss")
        loss.xIncludesZero = true
        loss.series.append(Series(kind: .line, xs: grid.map(Double.init), ys: curve.loss, color: lawColor, label: "predicted curve", role: "law"))
        var visible = zip(grid, curve.loss).filter { isLate($0.0, w, input.lr.count) }.map(\.1)
        if let steps = input.steps, !steps.isEmpty {
            let at = try ScalingDerived.curve(model, lr: input.lr, steps: steps)
            let (px, py) = thinned(steps.map(Double.init), at.loss)
            loss.series.append(Series(kind: .diamonds, xs: px, ys: py, color: predictedColor, label: "asked steps", role: "predicted"))
            visible += at.loss
        }
        loss.yRange = paddedRange(visible)
        loss.shade = w > 0 ? (0.5, Double(w) + 0.5) : nil
        var schedule = schedulePanel(warmup: w)
        schedule.series.append(scheduleSeries(input.lr, color: dataColor))
        let last = curve.loss.last.map { "predicted final loss \(sig($0, 4)) at step \(grid.last ?? 0)" } ?? ""
        let subtitle = "schedule of \(input.lr.count) steps \u{b7} " + last
        let caption = [
            "Top: the loss the law predicts for this schedule against step; bottom: the learning-rate schedule.",
            "Areas with decay \u{3bb} = \(sig(decay, 4))" + (w > 0 ? "; grey: the \(w) warm-up steps." : "."),
        ]
        return render(Figure(title: lawTitle(model), subtitle: subtitle, caption: caption, panels: [loss, schedule]))
    }

    static func schedulePanel(warmup w: Int) -> Panel {
        var panel = Panel(top: top + 266, height: 96, xLog: false, yLog: false, xLabel: "step", yLabel: "lr", role: "schedule")
        (panel.xIncludesZero, panel.yIncludesZero) = (true, true)
        panel.shade = w > 0 ? (0.5, Double(w) + 0.5) : nil
        return panel
    }

    static func scheduleSeries(_ lr: [Double], color: String) -> Series {
        let steps = sampledSteps(1, lr.count)
        return Series(kind: .line, xs: steps.map(Double.init), ys: steps.map { lr[$0 - 1] }, color: color, label: nil, role: "schedule")
    }

    /// Whether a step is past the first 5% after warm-up (the y range leaves out the first
    /// steps, where `S1` is small and the law is far above the rest of the curve).
    static func isLate(_ step: Int, _ w: Int, _ count: Int) -> Bool { Double(step - w) >= 0.05 * Double(count - w) }

    /// At most `maxVertices` steps spread evenly over `first … last`, both included.
    static func sampledSteps(_ first: Int, _ last: Int) -> [Int] {
        guard last >= first else { return [] }
        let n = last - first + 1
        if n <= maxVertices { return Array(first...last) }
        var steps: [Int] = []
        for i in 0..<maxVertices {
            let s = first + Int((Double(i) * Double(n - 1) / Double(maxVertices - 1)).rounded())
            if steps.last != s { steps.append(s) }
        }
        return steps
    }

    // MARK: Rendering

    static func render(_ figure: Figure) -> String {
        let bottom = (figure.panels.last.map { $0.top + $0.height } ?? top) + 58
        let height = bottom + 16 * Double(figure.caption.count)
        var s = documentStart(width: width, height: height, title: plain(figure.title), fontSize: 12)
        s += rich(width / 2, 26, figure.title, size: 16)
        s += text(width / 2, 47, figure.subtitle, size: 12, anchor: "middle", fill: "#555555")
        for (i, panel) in figure.panels.enumerated() { s += draw(panel, id: i) }
        for (i, line) in figure.caption.enumerated() {
            s += text(left - 60, bottom + 4 + 16 * Double(i), line, size: 11, fill: "#555555")
        }
        return s + "</svg>\n"
    }

    static func draw(_ panel: Panel, id: Int) -> String {
        let all = panel.series.flatMap(\.xs)
        let ys = panel.series.flatMap { series -> [Double] in
            if case .band(let upper) = series.kind { return series.ys + upper }
            return series.ys
        }
        var xr = axisRange(all, log: panel.xLog, pad: panel.xLog ? 0.03 : 0)
        var yr = panel.yRange.map { (transform($0.0, panel.yLog), transform($0.1, panel.yLog)) } ?? axisRange(ys, log: panel.yLog, pad: 0.06)
        if panel.yIncludesZero { yr = (0, max(yr.1 * 1.08, 1e-300)) }
        if panel.xIncludesZero { xr = (0, max(xr.1, 1)) }
        let bottom = panel.top + panel.height, right = left + plotWidth
        func px(_ v: Double) -> Double { left + (transform(v, panel.xLog) - xr.0) / (xr.1 - xr.0) * plotWidth }
        func py(_ v: Double) -> Double { bottom - (transform(v, panel.yLog) - yr.0) / (yr.1 - yr.0) * panel.height }
        var s = "<g class=\"panel \(panel.role)\">\n"
        s += "<defs><clipPath id=\"plot\(id)\"><rect x=\"\(f(left))\" y=\"\(f(panel.top))\" width=\"\(f(plotWidth))\" "
        s += "height=\"\(f(panel.height))\"/></clipPath></defs>\n"
        if let (a, b) = panel.shade {
            let x0 = max(px(a), left), x1 = min(px(b), right)
            s += rect(x0, panel.top, x1 - x0, panel.height, fill: "#eeeeee")
        }
        // Grid and tick labels.
        let xt = ticks(xr, log: panel.xLog, count: 6), yt = ticks(yr, log: panel.yLog, count: max(3, Int(panel.height / 50)))
        for minor in xt.minor { let x = left + (minor - xr.0) / (xr.1 - xr.0) * plotWidth; s += line(x, panel.top, x, bottom, stroke: "#f2f2f2") }
        for minor in yt.minor { let y = bottom - (minor - yr.0) / (yr.1 - yr.0) * panel.height; s += line(left, y, right, y, stroke: "#f2f2f2") }
        for tick in xt.major {
            let x = left + (tick.at - xr.0) / (xr.1 - xr.0) * plotWidth
            s += line(x, panel.top, x, bottom, stroke: "#e2e2e2") + line(x, bottom, x, bottom + 4, stroke: "#333333")
            if panel.xLabel != nil { s += text(x, bottom + 18, tick.label, anchor: "middle") }
        }
        for tick in yt.major {
            let y = bottom - (tick.at - yr.0) / (yr.1 - yr.0) * panel.height
            s += line(left, y, right, y, stroke: "#e2e2e2") + line(left - 4, y, left, y, stroke: "#333333")
            s += text(left - 7, y + 4, tick.label, anchor: "end")
        }
        // Series, clipped to the plot.
        s += "<g clip-path=\"url(#plot\(id))\">\n"
        for series in panel.series { s += draw(series, px, py) }
        s += "</g>\n"
        s += "<rect x=\"\(f(left))\" y=\"\(f(panel.top))\" width=\"\(f(plotWidth))\" height=\"\(f(panel.height))\" fill=\"none\" stroke=\"#333333\"/>\n"
        let yLabel = panel.yLabel + (yt.scale.isEmpty ? "" : " (\(yt.scale))")
        s += text(left - 58, panel.top + panel.height / 2, yLabel, size: 13, anchor: "middle", rotate: true)
        if let xLabel = panel.xLabel {
            s += text(left + plotWidth / 2, bottom + 38, xLabel + (xt.scale.isEmpty ? "" : " (\(xt.scale))"), size: 13, anchor: "middle")
        }
        s += legend(panel.series, right: right, top: panel.top)
        return s + "</g>\n"
    }

    static func draw(_ series: Series, _ px: (Double) -> Double, _ py: (Double) -> Double) -> String {
        let points = zip(series.xs, series.ys).map { (px($0), py($1)) }
        let c = series.color
        switch series.kind {
        case .line, .dashed:
            let dash = if case .dashed = series.kind { " stroke-dasharray=\"7 5\"" } else { "" }
            return "<path class=\"\(series.role)\" d=\"\(pathData(points))\" fill=\"none\" stroke=\"\(c)\" stroke-width=\"2.2\"\(dash)/>\n"
        case .band(let upper):
            let low = points, high = zip(series.xs, upper).map { (px($0), py($1)) }
            let ring = (low + high.reversed()).filter { $0.0.isFinite && $0.1.isFinite }
            return "<polygon class=\"\(series.role)\" points=\"\(ring.map { "\(f($0.0)),\(f($0.1))" }.joined(separator: " "))\" "
                + "fill=\"\(c)\" fill-opacity=\"0.2\" stroke=\"none\"/>\n"
        case .points, .diamonds:
            let diamond = if case .diamonds = series.kind { true } else { false }
            let dense = series.xs.count > 60, r = dense ? 2.0 : 3.6
            let style = diamond ? " stroke=\"#333333\" stroke-width=\"0.8\"" : " fill-opacity=\"\(dense ? "0.4" : "0.8")\""
            var s = "<g class=\"\(series.role)\" fill=\"\(c)\"\(style)>\n"
            for (x, y) in points where x.isFinite && y.isFinite {
                s += diamond ? "<path d=\"M\(f(x)) \(f(y - 5.5))L\(f(x + 5.5)) \(f(y))L\(f(x)) \(f(y + 5.5))L\(f(x - 5.5)) \(f(y))Z\"/>\n"
                    : "<circle cx=\"\(f(x))\" cy=\"\(f(y))\" r=\"\(fixed(r, 1))\"/>\n"
            }
            return s + "</g>\n"
        }
    }

    /// `M x y L x y …`, a new `M` after any point that cannot be drawn (a loss ≤ 0 on a log axis).
    static func pathData(_ points: [(Double, Double)]) -> String {
        var d = "", pen = false
        for (x, y) in points {
            guard x.isFinite, y.isFinite else { pen = false; continue }
            d += (pen ? "L" : (d.isEmpty ? "M" : " M")) + "\(f(x)) \(f(y))"
            pen = true
        }
        return d
    }

    static func legend(_ series: [Series], right: Double, top: Double) -> String {
        let entries = series.filter { $0.label != nil }
        guard !entries.isEmpty else { return "" }
        let w = 40 + 6.8 * Double(entries.map { $0.label!.count }.max() ?? 0), x = right - w - 8
        var s = rect(x, top + 8, w, 8 + 18 * Double(entries.count), fill: "#ffffff", extra: " fill-opacity=\"0.9\" stroke=\"#cccccc\"")
        for (i, e) in entries.enumerated() {
            let y = top + 24 + 18 * Double(i), mid = x + 19
            switch e.kind {
            case .line: s += line(x + 8, y - 4, x + 30, y - 4, stroke: e.color, extra: " stroke-width=\"2.2\"")
            case .dashed: s += line(x + 8, y - 4, x + 30, y - 4, stroke: e.color, extra: " stroke-width=\"2.2\" stroke-dasharray=\"7 5\"")
            case .band: s += rect(x + 8, y - 10, 22, 12, fill: e.color, extra: " fill-opacity=\"0.2\"")
            case .points: s += "<circle cx=\"\(f(mid))\" cy=\"\(f(y - 4))\" r=\"3.6\" fill=\"\(e.color)\"/>\n"
            case .diamonds:
                s += "<path d=\"M\(f(mid)) \(f(y - 9.5))L\(f(mid + 5.5)) \(f(y - 4))L\(f(mid)) \(f(y + 1.5))L\(f(mid - 5.5)) \(f(y - 4))Z\" "
                    + "fill=\"\(e.color)\" stroke=\"#333333\" stroke-width=\"0.8\"/>\n"
            }
            s += text(x + 36, y, e.label!, size: 12)
        }
        return s
    }

    // MARK: Axes

    static func transform(_ v: Double, _ log: Bool) -> Double { log ? (v > 0 ? log10(v) : .nan) : v }

    /// The axis span in plot coordinates (log10 on a log axis) of the finite values, padded.
    static func axisRange(_ values: [Double], log: Bool, pad: Double) -> (Double, Double) {
        let t = values.map { transform($0, log) }.filter(\.isFinite)
        guard var lo = t.min(), var hi = t.max() else { return (0, 1) }
        if hi - lo < 1e-12 * max(1, abs(hi)) {
            let half = log ? 0.5 : max(abs(hi) * 0.1, 1e-12)
            return (lo - half, hi + half)
        }
        let margin = (hi - lo) * pad
        lo -= margin
        hi += margin
        return (lo, hi)
    }

    static func paddedRange(_ values: [Double]) -> (Double, Double)? {
        let finite = values.filter(\.isFinite)
        guard let lo = finite.min(), let hi = finite.max() else { return nil }
        let margin = hi > lo ? (hi - lo) * 0.06 : max(abs(hi) * 0.05, 1e-9)
        return (lo - margin, hi + margin)
    }

    /// Major ticks (position, label), minor grid positions, and the power of ten the
    /// labels of a linear axis are in (`×10⁻⁴`, empty when none).
    static func ticks(_ r: (Double, Double), log: Bool, count: Int) -> (major: [(at: Double, label: String)], minor: [Double], scale: String) {
        let (lo, hi) = r
        if log {
            let first = Int(lo.rounded(.up)), last = Int(hi.rounded(.down))
            if last - first >= 1 {
                let every = max(1, (last - first + 7) / 8)
                let major = stride(from: first, through: last, by: every).map { (Double($0), "10" + superscript($0)) }
                var minor: [Double] = []
                if every == 1, hi - lo <= 7 {
                    for e in (first - 1)...last { for k in 2...9 { minor.append(log10(Double(k)) + Double(e)) } }
                }
                return (major, minor.filter { $0 > lo && $0 < hi }, "")
            }
            // Less than two powers of ten in range: nice values in the data's own units.
            let values = niceTicks(pow(10, lo), pow(10, hi), count: count)
            let step = values.count > 1 ? values[1] - values[0] : 1
            return (values.filter { $0 > 0 }.map { (log10($0), plainTick($0, step)) }, [], "")
        }
        let magnitude = max(abs(lo), abs(hi))
        var power = 0
        if magnitude >= 1e5 || (magnitude > 0 && magnitude < 1e-2) {
            power = Int(log10(magnitude).rounded(.down))
            if power > 0 { power -= power % 3 }
        }
        let unit = pow(10, Double(power))
        let values = niceTicks(lo, hi, count: count)
        let step = (values.count > 1 ? values[1] - values[0] : 1) / unit
        return (values.map { ($0, plainTick($0 / unit, step)) }, [], power == 0 ? "" : "\u{d7}10" + superscript(power))
    }

    /// About `count` round values (1, 2 or 5 times a power of ten apart, the nearest to
    /// `count` in log terms) within [lo, hi].
    static func niceTicks(_ lo: Double, _ hi: Double, count: Int) -> [Double] {
        guard hi > lo, (hi - lo).isFinite else { return [lo] }
        let raw = (hi - lo) / Double(count), base = pow(10, log10(raw).rounded(.down))
        let step = [1.0, 2, 5, 10].map { $0 * base }.min { abs(log($0 / raw)) < abs(log($1 / raw)) } ?? base
        var values: [Double] = []
        var k = (lo / step).rounded(.up)
        while k * step <= hi + step * 1e-9, values.count < 50 {
            values.append(abs(k * step) < step * 1e-9 ? 0 : k * step)
            k += 1
        }
        return values
    }

    static func plainTick(_ v: Double, _ step: Double) -> String {
        let digits = step >= 1 ? 0 : min(12, Int((-log10(step)).rounded(.up) + 1e-9))
        return trimmed(fixed(v, max(0, digits)))
    }

    // MARK: Text

    /// The law with its fitted parameters, `^{…}` marking exponents.
    static func lawTitle(_ model: ScalingModel) -> String {
        let p = model.values.map { sig($0, 3) }
        switch model.law {
        case .powerLaw(let irreducible):
            return "power_law: L(x) = " + (irreducible ? "\(p[0]) + " : "") + "(\(p[1])/x)^{\(p[2])}"
        case .chinchilla:
            return "chinchilla: L(N, D) = \(p[0]) + \(p[1])/N^{\(p[3])} + \(p[2])/D^{\(p[4])}"
        case .nmt(let e, let d):
            return "nmt: L = \(p[1])\u{b7}(\(sig(e, 3))/Ne)^{\(p[2])}\u{b7}(\(sig(d, 3))/Nd)^{\(p[3])} + \(p[0])"
        case .lrAnnealing:
            return "lr_annealing: L(s) = \(p[0]) + \(p[1])\u{b7}S1^{\u{2212}\(p[2])} \u{2212} \(p[3])\u{b7}S2"
        }
    }

    // MARK: Sampling

    /// Log-spaced values from `lo` to `hi` (both included).
    static func logGrid(_ lo: Double, _ hi: Double, _ count: Int) -> [Double] {
        guard hi > lo, count > 1 else { return [lo, hi] }
        let a = log(lo), b = log(hi)
        return (0..<count).map { i in i == count - 1 ? hi : (i == 0 ? lo : exp(a + (b - a) * Double(i) / Double(count - 1))) }
    }

    /// At most `maxMarkers` of the points, every k-th, the last always kept.
    static func thinned(_ xs: [Double], _ ys: [Double]) -> ([Double], [Double]) {
        guard xs.count > maxMarkers else { return (xs, ys) }
        let every = (xs.count + maxMarkers - 1) / maxMarkers
        var keep = Array(stride(from: 0, to: xs.count, by: every))
        if keep.last != xs.count - 1 { keep.append(xs.count - 1) }
        return (keep.map { xs[$0] }, keep.map { ys[$0] })
    }
}
