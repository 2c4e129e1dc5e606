import Foundation
import LossdKernels
import Testing

/// The reference vectors of `calib_vectors.json` (section `calibrators`), read from the
/// service tests' folder next to this one.
enum BinaryFamilyVectors {
    nonisolated(unsafe) static let cases: [String: [String: Any]] = {
        let url = URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("LossdServiceTests/Vectors/calib_vectors.json")
        let document = try! JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
        var table: [String: [String: Any]] = [:]
        for entry in document["calibrators"] as! [[String: Any]] { table[entry["name"] as! String] = entry }
        return table
    }()

    static func named(_ name: String) -> [String: Any] { cases[name]! }

    static func matrix(_ any: Any?) -> Matrix {
        let rows = (any as! [[Any]]).map { $0.map(number) }
        return Matrix(rows: rows.count, cols: rows.first?.count ?? 0, values: rows.flatMap { $0 })
    }

    static func vector(_ any: Any?) -> [Double] { (any as! [Any]).map(number) }
    static func ints(_ any: Any?) -> [Int] { (any as! [Any]).map { Int(number($0)) } }
    static func number(_ any: Any) -> Double { (any as! NSNumber).doubleValue }
}

/// Random logits and labels for the invariant tests.
struct BinaryFamilyRandom {
    var state: UInt64
    mutating func next() -> Double {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        z ^= z >> 31
        return Double(z >> 11) / Double(1 << 53)
    }
    mutating func uniform(_ lo: Double, _ hi: Double) -> Double { lo + (hi - lo) * next() }
    mutating func int(_ n: Int) -> Int { min(n - 1, Int(next() * Double(n))) }

    /// Logits whose true class gets a boost, so that they carry signal.
    mutating func problem(n: Int, c: Int, scale: Double = 3) -> (Matrix, [Int]) {
        var logits = Matrix(zeros: n, c)
        var labels: [Int] = []
        for i in 0..<n {
            let y = int(c)
            labels.append(y)
            for j in 0..<c { logits[i, j] = uniform(-scale, scale) + (j == y ? 1.5 : 0) }
        }
        return (logits, labels)
    }
}

@Suite("Binary and binning calibrators")
struct BinaryCalibratorTests {
    static func expectClose(_ a: Double, _ b: Double, _ tol: Double, _ what: String = "", sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(abs(a - b) <= tol, "\(what): \(a) vs \(b)", sourceLocation: sourceLocation)
    }

    static func expectClose(_ a: Matrix, _ b: Matrix, _ tol: Double, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(a.rows == b.rows && a.cols == b.cols, sourceLocation: sourceLocation)
        guard a.rows == b.rows && a.cols == b.cols else { return }
        for i in 0..<a.rows {
            for j in 0..<a.cols {
                expectClose(a[i, j], b[i, j], tol, "[\(i)][\(j)]", sourceLocation: sourceLocation)
            }
        }
    }

    static func expectProbabilityRows(_ p: Matrix, sourceLocation: SourceLocation = #_sourceLocation) {
        for i in 0..<p.rows {
            var sum = 0.0
            for j in 0..<p.cols {
                #expect(p[i, j].isFinite && p[i, j] >= 0 && p[i, j] <= 1, "p[\(i)][\(j)] = \(p[i, j])", sourceLocation: sourceLocation)
                sum += p[i, j]
            }
            #expect(abs(sum - 1) <= 1e-12, "row \(i) sums to \(sum)", sourceLocation: sourceLocation)
        }
    }

    // MARK: - Reference vectors

    @Test func plattBinaryVector() {
        let v = BinaryFamilyVectors.named("platt_binary")
        let input = v["input"] as! [String: Any], expected = v["expected"] as! [String: Any]
        let tol = BinaryFamilyVectors.number(v["tol"]!)
        let f = Platt.binaryScores(BinaryFamilyVectors.matrix(input["fit_logits"]))
        let fit = Platt.fit(scores: f, labels: BinaryFamilyVectors.ints(input["fit_labels"]))
        #expect(fit.converged)
        Self.expectClose(fit.a, BinaryFamilyVectors.number(expected["a"]!), tol, "a")
        Self.expectClose(fit.b, BinaryFamilyVectors.number(expected["b"]!), tol, "b")
        let targets = BinaryFamilyVectors.vector(expected["targets"])
        Self.expectClose(fit.targets[0], targets[0], 1e-11, "t+")
        Self.expectClose(fit.targets[1], targets[1], 1e-11, "t-")
        let probs = Platt.apply(a: fit.a, b: fit.b, scores: Platt.binaryScores(BinaryFamilyVectors.matrix(input["apply_logits"])))
        Self.expectClose(probs, BinaryFamilyVectors.matrix(expected["probs"]), tol)
    }

    @Test func plattSingleClassLabelsVector() {
        let v = BinaryFamilyVectors.named("platt_single_class_labels")
        let input = v["input"] as! [String: Any], expected = v["expected"] as! [String: Any]
        let tol = BinaryFamilyVectors.number(v["tol"]!)
        let fit = Platt.fit(scores: BinaryFamilyVectors.vector(input["fit_scores"]), labels: BinaryFamilyVectors.ints(input["fit_labels"]))
        #expect(fit.converged)
        Self.expectClose(fit.a, 0, tol, "a")
        Self.expectClose(fit.b, BinaryFamilyVectors.number(expected["b"]!), tol, "b")
        Self.expectClose(fit.b, log(5.0), 1e-12, "b = ln 5")
        let targets = BinaryFamilyVectors.vector(expected["targets"])
        Self.expectClose(fit.targets[0], targets[0], 1e-11, "t+")
        Self.expectClose(fit.targets[1], targets[1], 1e-11, "t-")
    }

    @Test func isotonicBinaryVector() {
        let v = BinaryFamilyVectors.named("isotonic_binary")
        let input = v["input"] as! [String: Any], expected = v["expected"] as! [String: Any]
        let tol = BinaryFamilyVectors.number(v["tol"]!)
        let maps = Isotonic.fit(logits: BinaryFamilyVectors.matrix(input["fit_logits"]), labels: BinaryFamilyVectors.ints(input["fit_labels"]))
        #expect(maps.count == 1)
        let ex = BinaryFamilyVectors.vector(expected["thresholds_x"]), ey = BinaryFamilyVectors.vector(expected["thresholds_y"])
        #expect(maps[0].x.count == ex.count)
        #expect(maps[0].y.count == ey.count)
        for (a, b) in zip(maps[0].x, ex) { Self.expectClose(a, b, tol, "x") }
        for (a, b) in zip(maps[0].y, ey) { Self.expectClose(a, b, tol, "y") }
        #expect(maps[0].xMin == maps[0].x.first && maps[0].xMax == maps[0].x.last)
        let probs = Isotonic.apply(maps: maps, logits: BinaryFamilyVectors.matrix(input["apply_logits"]))
        Self.expectClose(probs, BinaryFamilyVectors.matrix(expected["probs"]), tol)
    }

    @Test func isotonicMulticlassVector() {
        let v = BinaryFamilyVectors.named("isotonic_multiclass_ovr")
        let input = v["input"] as! [String: Any], expected = v["expected"] as! [String: Any]
        let tol = BinaryFamilyVectors.number(v["tol"]!)
        let maps = Isotonic.fit(logits: BinaryFamilyVectors.matrix(input["fit_logits"]), labels: BinaryFamilyVectors.ints(input["fit_labels"]))
        #expect(maps.count == 3)
        let probs = Isotonic.apply(maps: maps, logits: BinaryFamilyVectors.matrix(input["apply_logits"]))
        Self.expectClose(probs, BinaryFamilyVectors.matrix(expected["probs"]), tol)
        Self.expectProbabilityRows(probs)
    }

    @Test func isotonicTiesAndUnseenClassVector() {
        let v = BinaryFamilyVectors.named("isotonic_ties_and_unseen_class")
        let input = v["input"] as! [String: Any], expected = v["expected"] as! [String: Any]
        let tol = BinaryFamilyVectors.number(v["tol"]!)
        let maps = Isotonic.fit(logits: BinaryFamilyVectors.matrix(input["fit_logits"]), labels: BinaryFamilyVectors.ints(input["fit_labels"]))
        #expect(maps.count == 3)
        let ex = BinaryFamilyVectors.vector(expected["model_class0_x"]), ey = BinaryFamilyVectors.vector(expected["model_class0_y"])
        #expect(maps[0].x.count == ex.count)
        for (a, b) in zip(maps[0].x, ex) { Self.expectClose(a, b, tol, "x") }
        for (a, b) in zip(maps[0].y, ey) { Self.expectClose(a, b, tol, "y") }
        // Class 2 never occurs: its map is 0 everywhere.
        #expect(maps[2].y.allSatisfy { $0 == 0 })
        for s in stride(from: 0.0, through: 1.0, by: 0.05) { #expect(maps[2](s) == 0) }
        let probs = Isotonic.apply(maps: maps, logits: BinaryFamilyVectors.matrix(input["apply_logits"]))
        Self.expectClose(probs, BinaryFamilyVectors.matrix(expected["probs"]), tol)
    }

    @Test func histogramBinaryVector() {
        let v = BinaryFamilyVectors.named("histogram_binary_10")
        let input = v["input"] as! [String: Any], expected = v["expected"] as! [String: Any]
        let tol = BinaryFamilyVectors.number(v["tol"]!)
        let bins = Int(BinaryFamilyVectors.number(input["n_bins"]!))
        let maps = HistogramBinning.fit(
            logits: BinaryFamilyVectors.matrix(input["fit_logits"]), labels: BinaryFamilyVectors.ints(input["fit_labels"]), bins: bins)
        #expect(maps.count == 1)
        #expect(maps[0].counts == BinaryFamilyVectors.ints(expected["counts"]))
        let theta = BinaryFamilyVectors.vector(expected["theta"])
        #expect(maps[0].theta.count == theta.count)
        for (a, b) in zip(maps[0].theta, theta) { Self.expectClose(a, b, tol, "theta") }
        #expect(maps[0].edges == HistogramBinning.edges(bins: bins))
        let probs = HistogramBinning.apply(maps: maps, logits: BinaryFamilyVectors.matrix(input["apply_logits"]))
        Self.expectClose(probs, BinaryFamilyVectors.matrix(expected["probs"]), tol)
    }

    @Test func histogramMulticlassVector() {
        let v = BinaryFamilyVectors.named("histogram_multiclass_5")
        let input = v["input"] as! [String: Any], expected = v["expected"] as! [String: Any]
        let tol = BinaryFamilyVectors.number(v["tol"]!)
        let bins = Int(BinaryFamilyVectors.number(input["n_bins"]!))
        let maps = HistogramBinning.fit(
            logits: BinaryFamilyVectors.matrix(input["fit_logits"]), labels: BinaryFamilyVectors.ints(input["fit_labels"]), bins: bins)
        #expect(maps.count == 3)
        let probs = HistogramBinning.apply(maps: maps, logits: BinaryFamilyVectors.matrix(input["apply_logits"]))
        Self.expectClose(probs, BinaryFamilyVectors.matrix(expected["probs"]), tol)
        Self.expectProbabilityRows(probs)
    }

    @Test func betaBinaryVector() {
        let v = BinaryFamilyVectors.named("beta_binary")
        let input = v["input"] as! [String: Any], expected = v["expected"] as! [String: Any]
        let tol = BinaryFamilyVectors.number(v["tol"]!)
        let s = BetaCalibration.probabilities(BinaryFamilyVectors.matrix(input["fit_logits"]))
        let fit = BetaCalibration.fit(probabilities: s, labels: BinaryFamilyVectors.ints(input["fit_labels"]))
        #expect(fit.converged)
        Self.expectClose(fit.a, BinaryFamilyVectors.number(expected["a"]!), tol, "a")
        Self.expectClose(fit.b, BinaryFamilyVectors.number(expected["b"]!), tol, "b")
        Self.expectClose(fit.c, BinaryFamilyVectors.number(expected["c"]!), tol, "c")
        let probs = BetaCalibration.apply(
            a: fit.a, b: fit.b, c: fit.c, probabilities: BetaCalibration.probabilities(BinaryFamilyVectors.matrix(input["apply_logits"])))
        Self.expectClose(probs, BinaryFamilyVectors.matrix(expected["probs"]), tol)
    }

    /// Every vector of this family is covered by a test above.
    @Test func allFamilyVectorsCovered() {
        let ours = BinaryFamilyVectors.cases.keys.filter { name in
            ["platt", "isotonic", "histogram", "beta"].contains { name.hasPrefix($0) }
        }
        #expect(Set(ours) == [
            "platt_binary", "platt_single_class_labels", "isotonic_binary", "isotonic_multiclass_ovr",
            "isotonic_ties_and_unseen_class", "histogram_binary_10", "histogram_multiclass_5", "beta_binary",
        ])
    }

    // MARK: - Platt invariants

    @Test func plattSeparableDataStaysFinite() {
        let f = [-3.0, -2, -1, -0.5, 0.5, 1, 2, 3]
        let y = [0, 0, 0, 0, 1, 1, 1, 1]
        let fit = Platt.fit(scores: f, labels: y)
        // Platt's smoothed targets keep the optimum finite even for separable data.
        #expect(fit.a.isFinite && fit.b.isFinite && fit.a > 0)
        #expect(fit.converged)
        // The NumPy reference behind calib_vectors.json (docs/test-vectors.md), same data.
        Self.expectClose(fit.a, 0.8085046837450546, 1e-9, "a")
        Self.expectClose(fit.b, 0, 1e-9, "b")
        let p = Platt.apply(a: fit.a, b: fit.b, scores: f)
        Self.expectProbabilityRows(p)
        for i in 1..<f.count { #expect(p[i, 1] >= p[i - 1, 1]) }
    }

    @Test func plattRescalesLargeScores() {
        var g = BinaryFamilyRandom(state: 11)
        let (logits, labels) = g.problem(n: 80, c: 2)
        let f = Platt.binaryScores(logits)
        let small = Platt.fit(scores: f, labels: labels)
        let large = Platt.fit(scores: f.map { $0 * 1000 }, labels: labels)
        #expect(large.converged)
        Self.expectClose(large.a * 1000, small.a, 1e-7 * max(1, abs(small.a)), "a")
        Self.expectClose(large.b, small.b, 1e-7, "b")
    }

    @Test func plattConstantScoresAndZeroScores() {
        // f = 0 everywhere: a is not identifiable, the ridge keeps it at 0; b is the logit of
        // the mean smoothed target.
        let y = [0, 1, 1, 0, 1]
        let fit = Platt.fit(scores: [0, 0, 0, 0, 0], labels: y)
        #expect(fit.a == 0)
        let meanTarget = (3 * fit.targets[0] + 2 * fit.targets[1]) / 5
        Self.expectClose(fit.b, log(meanTarget / (1 - meanTarget)), 1e-9, "b")
        // A non-zero constant: the calibrated probability is still the mean target.
        let constant = Platt.fit(scores: [2, 2, 2, 2, 2], labels: y)
        #expect(constant.a.isFinite && constant.b.isFinite)
        // The NumPy reference (docs/test-vectors.md): the ridge picks the minimum-norm-like split
        // of a·2 + b.
        Self.expectClose(constant.a, 0.014039627001967465, 1e-6, "a")
        Self.expectClose(constant.b, 0.2946941382591161, 1e-6, "b")
        let p = Platt.apply(a: constant.a, b: constant.b, scores: [2])
        Self.expectClose(p[0, 1], meanTarget, 1e-9, "p")
    }

    @Test func plattSingleNegativeClass() {
        let fit = Platt.fit(scores: [-1, 0, 1, 2], labels: [0, 0, 0, 0])
        #expect(fit.a == 0)
        Self.expectClose(fit.b, -log(5.0), 1e-12, "b = −ln 5")
    }

    // MARK: - Beta invariants

    @Test func betaCoefficientsNonNegativeOnRandomData() {
        for seed in UInt64(1)...UInt64(12) {
            var g = BinaryFamilyRandom(state: seed)
            let (logits, labels) = g.problem(n: 40, c: 2, scale: seed.isMultiple(of: 2) ? 1 : 6)
            // Flip some labels so that some fits need the one-feature refit.
            let noisy = labels.enumerated().map { i, y in (i + Int(seed)) % 3 == 0 ? 1 - y : y }
            let s = BetaCalibration.probabilities(logits)
            let fit = BetaCalibration.fit(probabilities: s, labels: noisy)
            #expect(fit.a >= 0 && fit.b >= 0 && fit.c.isFinite, "seed \(seed): \(fit)")
            Self.expectProbabilityRows(BetaCalibration.apply(a: fit.a, b: fit.b, c: fit.c, probabilities: s))
        }
    }

    @Test func betaRefitWhenACoefficientIsNegative() {
        // Labels positive at both ends of s: the full fit wants a < 0 or b < 0.
        let s = [0.01, 0.02, 0.05, 0.2, 0.4, 0.5, 0.6, 0.8, 0.95, 0.99, 0.03, 0.97]
        let y = [1, 1, 0, 0, 0, 0, 0, 1, 1, 1, 1, 0]
        let fit = BetaCalibration.fit(probabilities: s, labels: y)
        #expect(fit.fixedAtZero == "a")
        #expect(fit.a == 0 && fit.b >= 0)
        // The NumPy reference behind calib_vectors.json (docs/test-vectors.md), same data.
        Self.expectClose(fit.b, 0.25286945605577904, 1e-8, "b")
        Self.expectClose(fit.c, -0.3148808240406286, 1e-8, "c")
    }

    @Test func betaSeparableDataHasNoNaN() {
        let s = [0.05, 0.1, 0.2, 0.3, 0.7, 0.8, 0.9, 0.95]
        let y = [0, 0, 0, 0, 1, 1, 1, 1]
        let fit = BetaCalibration.fit(probabilities: s, labels: y)
        #expect(fit.a.isFinite && fit.b.isFinite && fit.c.isFinite)
        #expect(!fit.converged || fit.iterations > 0)
        let p = BetaCalibration.apply(a: fit.a, b: fit.b, c: fit.c, probabilities: s + [0, 1, 0.5])
        for i in 0..<p.rows { #expect(p[i, 0].isFinite && p[i, 1].isFinite && p[i, 1] >= 0 && p[i, 1] <= 1) }
        // Separated: below 0.5 → class 0, above → class 1.
        for i in 0..<4 { #expect(p[i, 1] < 0.5) }
        for i in 4..<8 { #expect(p[i, 1] > 0.5) }
    }

    @Test func betaSingleClassLabelsHasNoNaN() {
        let s = [0.1, 0.4, 0.6, 0.9]
        let fit = BetaCalibration.fit(probabilities: s, labels: [1, 1, 1, 1])
        #expect(fit.a.isFinite && fit.b.isFinite && fit.c.isFinite)
        let p = BetaCalibration.apply(a: fit.a, b: fit.b, c: fit.c, probabilities: s)
        for i in 0..<p.rows { #expect(p[i, 1].isFinite && p[i, 1] > 0.99) }
    }

    @Test func betaClipsExtremeProbabilities() {
        let p = BetaCalibration.apply(a: 1, b: 1, c: 0, probabilities: [0, 1])
        // a = b = 1, c = 0 is the identity on the clipped s.
        Self.expectClose(p[0, 1], BetaCalibration.epsilon, 1e-20, "s = 0")
        Self.expectClose(p[1, 1], 1 - BetaCalibration.epsilon, 1e-15, "s = 1")
    }

    // MARK: - Isotonic invariants

    @Test func isotonicMapsAreMonotoneAndRowsSumToOne() {
        for (seed, c) in [(UInt64(3), 2), (4, 3), (5, 6)] {
            var g = BinaryFamilyRandom(state: seed)
            let (logits, labels) = g.problem(n: 200, c: c)
            let maps = Isotonic.fit(logits: logits, labels: labels)
            #expect(maps.count == (c == 2 ? 1 : c))
            for map in maps {
                #expect(map.x.count == map.y.count && !map.x.isEmpty)
                for j in 1..<map.x.count {
                    #expect(map.x[j] > map.x[j - 1])
                    #expect(map.y[j] >= map.y[j - 1])
                }
                var previous = -1.0
                for s in stride(from: -0.1, through: 1.1, by: 0.001) {
                    let q = map(s)
                    #expect(q >= previous && q >= 0 && q <= 1)
                    previous = q
                }
            }
            var (applyLogits, _) = g.problem(n: 100, c: c, scale: 8)
            applyLogits[0, 0] = 50  // outside the fit range: clipped
            Self.expectProbabilityRows(Isotonic.apply(maps: maps, logits: applyLogits))
        }
    }

    @Test func isotonicPAVPoolsViolators() {
        #expect(Isotonic.pava([1, 0, 1, 0], [1, 1, 1, 1]) == [0.5, 0.5, 0.5, 0.5])
        #expect(Isotonic.pava([0, 1, 0.5, 1], [1, 1, 1, 1]) == [0, 0.75, 0.75, 1])
        #expect(Isotonic.pava([1, 0], [3, 1]) == [0.75, 0.75])
    }

    @Test func isotonicTiesArePooledBeforePAV() {
        // All x equal: one pooled point, a constant map at the mean label.
        let map = Isotonic.fit1D(x: [0.3, 0.3, 0.3, 0.3], y: [1, 0, 1, 1])
        #expect(map.x == [0.3] && map.y == [0.75])
        #expect(map(0) == 0.75 && map(1) == 0.75)
        // Ties at one x are pooled with weight = count.
        let tied = Isotonic.fit1D(x: [0.1, 0.5, 0.5, 0.5, 0.9], y: [0, 1, 0, 0, 1])
        #expect(tied.x == [0.1, 0.5, 0.9])
        Self.expectClose(tied.y[1], 1.0 / 3, 1e-15, "pooled")
        Self.expectClose(tied(0.3), 1.0 / 6, 1e-15, "interpolated")
    }

    @Test func isotonicSingleClassLabels() {
        var g = BinaryFamilyRandom(state: 9)
        let (logits, _) = g.problem(n: 30, c: 2)
        let maps = Isotonic.fit(logits: logits, labels: [Int](repeating: 0, count: 30))
        #expect(maps[0].y.allSatisfy { $0 == 0 })
        let p = Isotonic.apply(maps: maps, logits: logits)
        for i in 0..<p.rows { #expect(p[i, 0] == 1 && p[i, 1] == 0) }
        // Multi-class with every label the same: the other maps are 0, the row becomes one-hot.
        let (logits3, _) = g.problem(n: 30, c: 4)
        let maps3 = Isotonic.fit(logits: logits3, labels: [Int](repeating: 2, count: 30))
        let p3 = Isotonic.apply(maps: maps3, logits: logits3)
        for i in 0..<p3.rows { #expect(p3[i, 2] == 1) }
        Self.expectProbabilityRows(p3)
    }

    @Test func isotonicAllZeroRowBecomesUniform() {
        // Every map is 0 where the apply probabilities fall: the row becomes uniform.
        let maps = [
            IsotonicMap(x: [0.1, 0.9], y: [0, 0], xMin: 0.1, xMax: 0.9),
            IsotonicMap(x: [0.1, 0.9], y: [0, 0], xMin: 0.1, xMax: 0.9),
            IsotonicMap(x: [0.1, 0.9], y: [0, 0], xMin: 0.1, xMax: 0.9),
        ]
        let p = Isotonic.apply(maps: maps, logits: Matrix(rows: 1, cols: 3, values: [1, 2, 3]))
        for j in 0..<3 { #expect(p[0, j] == 1.0 / 3) }
    }

    // MARK: - Histogram invariants

    @Test func histogramEdgesFollowLinspace() {
        let e = HistogramBinning.edges(bins: 10)
        #expect(e.count == 11 && e[0] == 0 && e[10] == 1)
        #expect(e[3] == 0.30000000000000004)
        #expect(HistogramBinning.bin(of: 0.30000000000000004, edges: e) == 3)
        #expect(HistogramBinning.bin(of: 0.3, edges: e) == 2)
        #expect(HistogramBinning.bin(of: 0, edges: e) == 0)
        #expect(HistogramBinning.bin(of: 1, edges: e) == 9)
        #expect(HistogramBinning.bin(of: 0.95, edges: e) == 9)
        #expect(HistogramBinning.bin(of: 0.5, edges: HistogramBinning.edges(bins: 1)) == 0)
    }

    @Test func histogramEmptyBinsGetTheirCentre() {
        let map = HistogramBinning.fit1D(values: [0.05, 0.06, 0.95], targets: [1, 0, 1], bins: 4)
        #expect(map.counts == [2, 0, 0, 1])
        #expect(map.theta == [0.5, 0.375, 0.625, 1])
    }

    @Test func histogramRowsSumToOneWithUnseenClasses() {
        var g = BinaryFamilyRandom(state: 21)
        let (logits, labels) = g.problem(n: 120, c: 5)
        // Class 4 never occurs in the labels.
        let seen = labels.map { $0 == 4 ? 0 : $0 }
        for bins in [1, 3, 15, 100] {
            let maps = HistogramBinning.fit(logits: logits, labels: seen, bins: bins)
            #expect(maps.count == 5)
            #expect(maps.allSatisfy { $0.counts.reduce(0, +) == 120 })
            // Bins of class 4 that saw samples have θ = 0.
            for (b, n) in maps[4].counts.enumerated() where n > 0 { #expect(maps[4].theta[b] == 0) }
            Self.expectProbabilityRows(HistogramBinning.apply(maps: maps, logits: logits))
        }
        // Binary, single-class labels.
        let (binary, _) = g.problem(n: 50, c: 2)
        let maps = HistogramBinning.fit(logits: binary, labels: [Int](repeating: 1, count: 50), bins: 10)
        let p = HistogramBinning.apply(maps: maps, logits: binary)
        for i in 0..<p.rows { #expect(p[i, 1] == 1 && p[i, 0] == 0) }
    }

    @Test func oneVsRestRenormalisationSnapsNearOne() {
        var q = Matrix(rows: 2, cols: 3, values: [0, 0, 0, 0.2, 0, 0])
        OneVsRestCalibration.renormalise(&q)
        let third = 1.0 / 3
        let expected: [[Double]] = [[third, third, third], [1, 0, 0]]
        #expect(q.nested == expected)
    }
}
