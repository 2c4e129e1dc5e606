import Foundation
import LossdKernels
import Testing

/// The `calibrators` cases of calib_vectors.json (stored in the service tests' folder).
fileprivate enum CalibVectors {
    nonisolated(unsafe) static let cases: [String: [String: Any]] = {
        let url = URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("LossdServiceTests/Vectors/calib_vectors.json")
        guard let data = try? Data(contentsOf: url),
            let root = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
            let list = root["calibrators"] as? [[String: Any]]
        else { return [:] }
        var table: [String: [String: Any]] = [:]
        for item in list { if let name = item["name"] as? String { table[name] = item } }
        return table
    }()

    static func matrix(_ any: Any?) -> Matrix {
        let rows = (any as? [[Any]]) ?? []
        let values = rows.flatMap { $0.map { ($0 as? NSNumber)?.doubleValue ?? .nan } }
        return Matrix(rows: rows.count, cols: rows.first?.count ?? 0, values: values)
    }

    static func vector(_ any: Any?) -> [Double] { ((any as? [Any]) ?? []).map { ($0 as? NSNumber)?.doubleValue ?? .nan } }
    static func ints(_ any: Any?) -> [Int] { ((any as? [Any]) ?? []).map { ($0 as? NSNumber)?.intValue ?? -1 } }
    static func number(_ any: Any?) -> Double { (any as? NSNumber)?.doubleValue ?? .nan }

    static func tensor(_ any: Any?) -> Tensor {
        let views = (any as? [Any]) ?? []
        let ms = views.map { matrix($0) }
        return Tensor(shape: [ms.count, ms.first?.rows ?? 0, ms.first?.cols ?? 0], values: ms.flatMap(\.values))
    }

    /// Case `name`: (input, expected, tol).
    static func load(_ name: String) -> (input: [String: Any], expected: [String: Any], tol: Double)? {
        guard let c = cases[name], let input = c["input"] as? [String: Any], let expected = c["expected"] as? [String: Any]
        else { return nil }
        return (input, expected, number(c["tol"]))
    }
}

fileprivate func maxAbsDiff(_ a: [Double], _ b: [Double]) -> Double {
    guard a.count == b.count else { return .infinity }
    return zip(a, b).map { abs($0 - $1) }.max() ?? 0
}

fileprivate func parameterVector(_ model: CalibratorModel, _ name: String) -> [Double] {
    switch model.parameters[name] {
    case .vector(let v)?: v
    case .matrix(let m)?: m.values
    case .number(let x)?: [x]
    default: []
    }
}

fileprivate func rowSumsAreOne(_ p: Matrix, tol: Double = 1e-12) -> Bool {
    (0..<p.rows).allSatisfy { i in abs((0..<p.cols).reduce(0.0) { $0 + p[i, $1] } - 1) <= tol }
}

fileprivate func argmaxRows(_ m: Matrix) -> [Int] {
    (0..<m.rows).map { i in
        var best = 0
        for j in 1..<m.cols where m[i, j] > m[i, best] { best = j }
        return best
    }
}

@Suite("Softmax-family calibrators: spec vectors")
struct SoftmaxCalibratorVectorTests {
    @Test func vectorFileLoads() {
        #expect(CalibVectors.cases.count >= 9)
    }

    @Test(arguments: ["temperature_K3", "temperature_all_correct_hits_bound", "temperature_anti_correlated_hits_upper_bound"])
    func temperature(_ name: String) throws {
        let (input, expected, tol) = try #require(CalibVectors.load(name))
        let logits = CalibVectors.matrix(input["fit_logits"])
        let labels = CalibVectors.ints(input["fit_labels"])
        let (model, report) = try TemperatureScaling.fit(logits: logits, labels: labels)
        let t = parameterVector(model, "temperature")[0]
        let want = CalibVectors.number(expected["temperature"])
        #expect(report.converged)
        switch expected["at_bound"] as? String {
        case "min_temperature"?:
            #expect(report.notes["at_bound"] == .text("min_temperature"))
            #expect(abs(t - exp(-10)) <= 1e-12 * exp(-10))
            #expect(abs(t - want) <= 1e-6 * want)
        case "max_temperature"?:
            #expect(report.notes["at_bound"] == .text("max_temperature"))
            #expect(abs(t - want) <= tol * want)
        default:
            #expect(report.notes["at_bound"] == nil)
            #expect(abs(t - want) <= tol, "T = \(t), want \(want)")
        }
        if input["apply_logits"] != nil {
            let apply = CalibVectors.matrix(input["apply_logits"])
            let p = try TemperatureScaling.apply(model, logits: apply)
            #expect(maxAbsDiff(p.values, CalibVectors.matrix(expected["probs"]).values) <= tol)
            #expect(argmaxRows(p) == argmaxRows(apply))
            #expect(rowSumsAreOne(p))
        }
    }

    @Test func vectorScaling() throws {
        let (input, expected, tol) = try #require(CalibVectors.load("vector_K3"))
        let logits = CalibVectors.matrix(input["fit_logits"])
        let (model, report) = try LinearCalibration.fitVector(logits: logits, labels: CalibVectors.ints(input["fit_labels"]))
        #expect(report.converged)
        #expect(maxAbsDiff(parameterVector(model, "w"), CalibVectors.vector(expected["w"])) <= tol)
        #expect(maxAbsDiff(parameterVector(model, "b"), CalibVectors.vector(expected["b"])) <= tol)
        let p = try LinearCalibration.apply(model, logits: CalibVectors.matrix(input["apply_logits"]))
        #expect(maxAbsDiff(p.values, CalibVectors.matrix(expected["probs"]).values) <= tol)
        #expect(rowSumsAreOne(p))
    }

    @Test(arguments: ["matrix_K3_unregularised", "dirichlet_odir_K3", "dirichlet_odir_K3_strong"])
    func fullAffine(_ name: String) throws {
        let (input, expected, tol) = try #require(CalibVectors.load(name))
        let logits = CalibVectors.matrix(input["fit_logits"])
        let labels = CalibVectors.ints(input["fit_labels"])
        let lambda = CalibVectors.number(input["lambda"]), mu = CalibVectors.number(input["mu"])
        let (model, report) =
            name.hasPrefix("matrix")
            ? try LinearCalibration.fitMatrix(logits: logits, labels: labels, lambda: lambda, mu: mu)
            : try LinearCalibration.fitDirichlet(logits: logits, labels: labels, lambda: lambda, mu: mu)
        #expect(report.converged)
        #expect(maxAbsDiff(parameterVector(model, "W"), CalibVectors.matrix(expected["W"]).values) <= tol)
        #expect(maxAbsDiff(parameterVector(model, "b"), CalibVectors.vector(expected["b"])) <= tol)
        if expected["objective"] != nil, case .number(let f)? = report.notes["objective"] {
            #expect(abs(f - CalibVectors.number(expected["objective"])) <= tol)
        }
        let p = try LinearCalibration.apply(model, logits: CalibVectors.matrix(input["apply_logits"]))
        #expect(maxAbsDiff(p.values, CalibVectors.matrix(expected["probs"]).values) <= tol)
        #expect(rowSumsAreOne(p))
    }

    @Test func ensembleTemperature() throws {
        let (input, expected, tol) = try #require(CalibVectors.load("ensemble_temperature_K3"))
        let logits = CalibVectors.matrix(input["fit_logits"])
        let (model, _) = try EnsembleTemperature.fit(logits: logits, labels: CalibVectors.ints(input["fit_labels"]))
        #expect(abs(parameterVector(model, "temperature")[0] - CalibVectors.number(expected["temperature"])) <= tol)
        let w = parameterVector(model, "weights")
        #expect(maxAbsDiff(w, CalibVectors.vector(expected["weights"])) <= 1e-5)
        #expect(abs(w.reduce(0, +) - 1) <= 1e-12 && w.allSatisfy { $0 >= 0 })
        let apply = CalibVectors.matrix(input["apply_logits"])
        let p = try EnsembleTemperature.apply(model, logits: apply)
        #expect(maxAbsDiff(p.values, CalibVectors.matrix(expected["probs"]).values) <= tol)
        #expect(argmaxRows(p) == argmaxRows(apply))
        #expect(rowSumsAreOne(p))
    }

    @Test func correctnessAware() throws {
        let (input, expected, tol) = try #require(CalibVectors.load("correctness_aware_V4_K5"))
        let views = CalibVectors.tensor(input["fit_views_logits"])
        let labels = CalibVectors.ints(input["fit_labels"])
        let fit = try CorrectnessAware.train(
            views: views, labels: labels, k: Int(CalibVectors.number(input["k"])), hidden: Int(CalibVectors.number(input["hidden"])),
            steps: Int(CalibVectors.number(input["steps"])), lr: CalibVectors.number(input["lr"]),
            seed: UInt64(CalibVectors.number(input["seed"])))
        let f0 = Array(fit.features.values[0..<fit.features.cols])
        #expect(maxAbsDiff(f0, CalibVectors.vector(expected["features_row0"])) <= tol)
        #expect(abs(fit.lossFirst - CalibVectors.number(expected["loss_first"])) <= tol)
        #expect(abs(fit.lossFinal - CalibVectors.number(expected["loss_final"])) <= tol)
        let (p, t) = CorrectnessAware.apply(fit.network, views: views)
        #expect(maxAbsDiff(t, CalibVectors.vector(expected["temperatures"])) <= tol)
        #expect(maxAbsDiff(Array(p.values[0..<p.cols]), CalibVectors.vector(expected["probs_row0"])) <= tol)
        #expect(t.allSatisfy { $0 >= 0.1 && $0 <= 10 })
        #expect(rowSumsAreOne(p))
        // The stored model round-trips.
        let (model, _) = try CorrectnessAware.fit(
            views: views, labels: labels, k: 4, hidden: 5, steps: 200, lr: 1e-3, seed: 1)
        let net = try #require(CorrectnessAware.Network(model))
        #expect(net == fit.network)
        #expect(CorrectnessAware.expectedViews(net, classes: views.shape[2]) == 4)
    }
}

@Suite("Softmax-family calibrators: degenerate data")
struct SoftmaxCalibratorRobustnessTests {
    /// Deterministic pseudo-random logits.
    static func logits(_ n: Int, _ c: Int, seed: UInt64, scale: Double = 3) -> Matrix {
        var rng = CorrectnessAware.SplitMix64(seed: seed)
        return Matrix(rows: n, cols: c, values: (0..<(n * c)).map { _ in rng.uniform(-scale, scale) })
    }

    static let datasets: [(String, Matrix, [Int])] = {
        let base = logits(40, 4, seed: 7)
        let argmax = argmaxRows(base)
        let anti = argmaxRows(Matrix(rows: 40, cols: 4, values: base.values.map { -$0 }))
        return [
            ("all_correct", base, argmax),
            ("anti_correlated", base, anti),
            ("single_class", base, [Int](repeating: 2, count: 40)),
            ("constant_logits", Matrix(rows: 40, cols: 4, values: [Double](repeating: 1.5, count: 160)), (0..<40).map { $0 % 4 }),
            ("one_row", Matrix(rows: 1, cols: 3, values: [0.5, -1, 2]), [0]),
            ("huge_logits", Matrix(rows: 3, cols: 3, values: [1e200, -1e200, 0, 0, 1e200, -1e200, -1e200, 0, 1e200]), [0, 1, 0]),
        ]
    }()

    func finite(_ m: Matrix) -> Bool { m.values.allSatisfy { $0.isFinite && $0 >= 0 && $0 <= 1 } }

    @Test(arguments: 0..<6)
    func noNaNOnDegenerateData(_ index: Int) throws {
        let (name, logits, labels) = Self.datasets[index]
        let fits: [(CalibratorModel, FitReport)] = [
            try TemperatureScaling.fit(logits: logits, labels: labels),
            try LinearCalibration.fitVector(logits: logits, labels: labels),
            try LinearCalibration.fitMatrix(logits: logits, labels: labels),
            try LinearCalibration.fitDirichlet(logits: logits, labels: labels),
            try LinearCalibration.fitDirichlet(logits: logits, labels: labels, lambda: 0, mu: 0),
            try EnsembleTemperature.fit(logits: logits, labels: labels),
        ]
        for (model, _) in fits {
            for (key, value) in model.parameters {
                switch value {
                case .number(let x): #expect(x.isFinite, "\(name) \(model.method).\(key)")
                case .vector(let v): #expect(v.allSatisfy { $0.isFinite }, "\(name) \(model.method).\(key)")
                case .matrix(let m): #expect(m.values.allSatisfy { $0.isFinite }, "\(name) \(model.method).\(key)")
                default: break
                }
            }
            let p: Matrix
            switch model.method {
            case "temperature": p = try TemperatureScaling.apply(model, logits: logits)
            case "ensemble_temperature": p = try EnsembleTemperature.apply(model, logits: logits)
            default: p = try LinearCalibration.apply(model, logits: logits)
            }
            #expect(finite(p), "\(name) \(model.method)")
            #expect(rowSumsAreOne(p, tol: 1e-9), "\(name) \(model.method)")
            if model.method == "temperature" && name != "constant_logits" {
                #expect(argmaxRows(p) == argmaxRows(logits), "\(name)")
            }
        }
        // Correctness-aware on two views built from the same logits.
        let views = Tensor(shape: [2, logits.rows, logits.cols], values: logits.values + logits.values.map { $0 * 0.5 })
        let ca = try CorrectnessAware.train(views: views, labels: labels, steps: 50)
        let (p, t) = CorrectnessAware.apply(ca.network, views: views)
        #expect(finite(p) && t.allSatisfy { $0 >= 0.1 && $0 <= 10 }, "\(name) correctness_aware")
        #expect(ca.lossFinal.isFinite)
    }

    @Test func temperatureBoundsOnSeparableData() throws {
        let (_, logits, labels) = Self.datasets[0]
        let (model, report) = try TemperatureScaling.fit(logits: logits, labels: labels)
        #expect(report.notes["at_bound"] == .text("min_temperature"))
        #expect(abs(parameterVector(model, "temperature")[0] - exp(-10)) <= 1e-15 * exp(-10))
        let (_, anti) = (Self.datasets[1].1, Self.datasets[1].2)
        let (model2, report2) = try TemperatureScaling.fit(logits: logits, labels: anti)
        #expect(report2.notes["at_bound"] == .text("max_temperature"))
        #expect(abs(parameterVector(model2, "temperature")[0] - exp(10)) <= 1e-9 * exp(10))
    }

    @Test func separableVectorScalingStopsWithoutConverging() throws {
        let (_, logits, labels) = Self.datasets[0]
        let (_, report) = try LinearCalibration.fitVector(logits: logits, labels: labels)
        #expect(report.iterations >= 1)
        // Separable data have no finite optimum: either stopped at max_iter or by the
        // line search; the parameters stay finite (checked above).
        #expect(report.iterations <= 200)
    }

    @Test func temperatureMatchesTheSameFitOnShuffledRowsAndKeepsArgmax() throws {
        let logits = Self.logits(500, 7, seed: 3)
        var rng = CorrectnessAware.SplitMix64(seed: 9)
        let labels = (0..<500).map { i in rng.uniform(0, 1) < 0.6 ? argmaxRows(logits)[i] : Int(rng.next() % 7) }
        let (model, report) = try TemperatureScaling.fit(logits: logits, labels: labels)
        #expect(report.converged && report.notes["at_bound"] == nil)
        let p = try TemperatureScaling.apply(model, logits: logits)
        #expect(argmaxRows(p) == argmaxRows(logits))
        #expect(rowSumsAreOne(p))
        // The NLL at the optimum is no larger than at T = 1 or nearby temperatures.
        let t = parameterVector(model, "temperature")[0]
        func nll(_ t: Double) -> Double { SoftmaxRows.meanNLL(Matrix(rows: 500, cols: 7, values: logits.values.map { $0 / t }), labels) }
        #expect(nll(t) <= nll(1) && nll(t) <= nll(t * 1.01) && nll(t) <= nll(t * 0.99))
    }

    @Test func lbfgsAgreesWithNewtonOnMatrixScaling() throws {
        let logits = Self.logits(200, 3, seed: 11)
        var rng = CorrectnessAware.SplitMix64(seed: 5)
        let labels = (0..<200).map { i in rng.uniform(0, 1) < 0.7 ? argmaxRows(logits)[i] : Int(rng.next() % 3) }
        let reg = [Double](repeating: 1e-3, count: 8)
        let x0: [Double] = [1, 0, -1, 0, 0, 1, -1, 0]
        let newton = CalibrationOptimizers.dampedNewton(x0: x0) {
            LinearCalibration.fullObjective(theta: $0, x: logits, labels: labels, reg: reg, hessian: true)
        }
        let lbfgs = CalibrationOptimizers.lbfgs(x0: x0) {
            LinearCalibration.fullObjective(theta: $0, x: logits, labels: labels, reg: reg, hessian: false).map { ($0.f, $0.g) }
        }
        #expect(newton.converged && lbfgs.converged)
        #expect(maxAbsDiff(newton.x, lbfgs.x) <= 1e-5)
        #expect(abs(newton.f - lbfgs.f) <= 1e-12)
    }

    @Test func lbfgsAgreesWithNewtonOnVectorScalingAndStaysFiniteOnSeparableData() throws {
        let logits = Self.logits(300, 5, seed: 13)
        var rng = CorrectnessAware.SplitMix64(seed: 17)
        let noisy = (0..<300).map { i in rng.uniform(0, 1) < 0.6 ? argmaxRows(logits)[i] : Int(rng.next() % 5) }
        let x0: [Double] = [1, 1, 1, 1, 1, 0, 0, 0, 0]
        let newton = CalibrationOptimizers.dampedNewton(x0: x0) {
            LinearCalibration.vectorObjective(theta: $0, z: logits, labels: noisy, l2: 0, hessian: true)
        }
        let lbfgs = CalibrationOptimizers.lbfgs(x0: x0) {
            LinearCalibration.vectorObjective(theta: $0, z: logits, labels: noisy, l2: 0, hessian: false).map { ($0.f, $0.g) }
        }
        #expect(newton.converged && lbfgs.converged)
        #expect(maxAbsDiff(newton.x, lbfgs.x) <= 1e-5)
        // Separable (labels = argmax): no finite optimum; L-BFGS must stop with finite numbers.
        let separable = argmaxRows(logits)
        let run = CalibrationOptimizers.lbfgs(x0: x0, maxIter: 300) {
            LinearCalibration.vectorObjective(theta: $0, z: logits, labels: separable, l2: 0, hessian: false).map { ($0.f, $0.g) }
        }
        #expect(run.x.allSatisfy { $0.isFinite } && run.f.isFinite && run.f < 0.05)
    }

    @Test func l2RegularisedVectorScalingShrinksTowardsIdentity() throws {
        let (_, logits, labels) = Self.datasets[0]
        let (model, report) = try LinearCalibration.fitVector(logits: logits, labels: labels, l2: 10)
        #expect(report.converged)
        #expect(parameterVector(model, "w").allSatisfy { abs($0 - 1) < 0.5 })
    }

    @Test func correctnessAwareWithOneViewIsAGlobalTemperature() throws {
        let logits = Self.logits(60, 4, seed: 21)
        var rng = CorrectnessAware.SplitMix64(seed: 2)
        let labels = (0..<60).map { i in rng.uniform(0, 1) < 0.5 ? argmaxRows(logits)[i] : Int(rng.next() % 4) }
        let views = Tensor(shape: [1, 60, 4], values: logits.values)
        let (model, report) = try CorrectnessAware.fit(views: views, labels: labels, steps: 100)
        let net = try #require(CorrectnessAware.Network(model))
        #expect(net.w1.rows == 5 && net.w1.cols == 0)
        #expect(CorrectnessAware.expectedViews(net, classes: 4) == 1)
        let (p, t) = CorrectnessAware.apply(net, views: views)
        #expect(Set(t).count == 1 && t[0] >= 0.1 && t[0] <= 10)
        #expect(argmaxRows(p) == argmaxRows(logits))
        guard case .number(let first)? = report.notes["loss_first"], case .number(let last)? = report.notes["loss_final"] else {
            Issue.record("missing loss notes")
            return
        }
        #expect(last <= first)
    }

    @Test func boundedBrentFindsAParabolaMinimum() {
        let r = CalibrationOptimizers.boundedBrent(0, 3) { ($0 - 1.234567) * ($0 - 1.234567) + 2 }
        #expect(r.converged && abs(r.x - 1.234567) <= 1e-8)
    }
}
