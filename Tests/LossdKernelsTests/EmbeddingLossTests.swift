import Foundation
import LossdKernels
import Testing

@Suite("Embedding (contrastive) loss kernels")
struct EmbeddingLossTests {
    func random(_ rows: Int, _ cols: Int) -> Matrix {
        Matrix(rows: rows, cols: cols, values: (0..<(rows * cols)).map { _ in Double.random(in: -2...2) })
    }

    func near(_ a: [Double], _ b: [Double], tolerance: Double = 1e-11) -> Bool {
        a.count == b.count && zip(a, b).allSatisfy { abs($0 - $1) <= tolerance * max(1, abs($1)) }
    }

    /// info_nce by plain loops (no BLAS): values and ∂/∂queries, ∂/∂keys of Σ_i ℓ_i.
    func naiveInfoNCE(_ q: Matrix, _ k: Matrix, tau: Double, symmetric: Bool) -> ([Double], [Double], [Double]) {
        let n = q.rows, m = k.rows, d = q.cols
        func unit(_ x: Matrix) -> ([Double], [Double]) {
            var u = x.values, norms = [Double](repeating: 0, count: x.rows)
            for r in 0..<x.rows {
                norms[r] = (0..<d).map { x[r, $0] * x[r, $0] }.reduce(0, +).squareRoot()
                for c in 0..<d { u[r * d + c] /= norms[r] }
            }
            return (u, norms)
        }
        let (u, qn) = unit(q), (v, kn) = unit(k)
        var s = [Double](repeating: 0, count: n * m)
        for i in 0..<n { for j in 0..<m { for c in 0..<d { s[i * m + j] += u[i * d + c] * v[j * d + c] / tau } } }
        func softmaxMinusIdentity(_ row: [Double], _ i: Int) -> (Double, [Double]) {
            let top = row.max()!
            let lse = top + log(row.map { exp($0 - top) }.reduce(0, +))
            var g = row.map { exp($0 - lse) }
            g[i] -= 1
            return (lse - row[i], g)
        }
        var values = [Double](repeating: 0, count: n), g = [Double](repeating: 0, count: n * m)
        for i in 0..<n {
            let (l, row) = softmaxMinusIdentity(Array(s[(i * m)..<((i + 1) * m)]), i)
            values[i] = symmetric ? l / 2 : l
            for j in 0..<m { g[i * m + j] = symmetric ? row[j] / 2 : row[j] }
        }
        if symmetric {
            for j in 0..<n {
                let (l, column) = softmaxMinusIdentity((0..<n).map { s[$0 * m + j] }, j)
                values[j] += l / 2
                for i in 0..<n { g[i * m + j] += column[i] / 2 }
            }
        }
        var gu = [Double](repeating: 0, count: n * d), gv = [Double](repeating: 0, count: m * d)
        for i in 0..<n {
            for j in 0..<m {
                for c in 0..<d {
                    gu[i * d + c] += g[i * m + j] * v[j * d + c] / tau
                    gv[j * d + c] += g[i * m + j] * u[i * d + c] / tau
                }
            }
        }
        func back(_ gx: [Double], _ x: [Double], _ norms: [Double]) -> [Double] {
            var out = gx
            for r in 0..<norms.count {
                let dot = (0..<d).map { x[r * d + $0] * gx[r * d + $0] }.reduce(0, +)
                for c in 0..<d { out[r * d + c] = (gx[r * d + c] - x[r * d + c] * dot) / norms[r] }
            }
            return out
        }
        return (values, back(gu, u, qn), back(gv, v, kn))
    }

    @Test(arguments: [false, true])
    func infoNCEGEMMsMatchPlainLoops(_ symmetric: Bool) throws {
        // Non-square shapes catch a wrong transpose in any of the three GEMMs.
        let n = 9, m = symmetric ? 9 : 14, d = 6
        let q = random(n, d), k = random(m, d)
        let output = try InfoNCE.evaluate(
            queries: q, keys: k, parameters: .init(temperature: 0.3, symmetric: symmetric), gradient: true)
        let (values, gq, gk) = naiveInfoNCE(q, k, tau: 0.3, symmetric: symmetric)
        #expect(near(output.values, values))
        #expect(near(output.gradients["queries"]!.values, gq))
        #expect(near(output.gradients["keys"]!.values, gk))
        #expect(output.gradients["keys"]!.shape == [m, d])
        #expect(!output.rowSeparable)
        let valueOnly = try InfoNCE.evaluate(
            queries: q, keys: k, parameters: .init(temperature: 0.3, symmetric: symmetric), gradient: false)
        #expect(valueOnly.values == output.values && valueOnly.gradients.isEmpty)
    }

    @Test func supconWithSampleIdsAsLabelsIsNTXent() throws {
        let n = 6, d = 5, tau = 0.4
        let q = random(n, d), k = random(n, d)
        let nt = try NTXent.evaluate(queries: q, keys: k, parameters: .init(temperature: tau), gradient: true)
        let stacked = Matrix(rows: 2 * n, cols: d, values: q.values + k.values)
        let sup = try SupCon.evaluate(
            embeddings: stacked, labels: Array(0..<n) + Array(0..<n),
            parameters: .init(temperature: tau, baseTemperature: tau), gradient: true)
        #expect(near(sup.values, nt.values))
        #expect(near(sup.gradients["embeddings"]!.values, nt.gradients["queries"]!.values + nt.gradients["keys"]!.values))
    }

    @Test func supconAnchorsWithoutPositivesAreZero() throws {
        let e = random(5, 3)
        let output = try SupCon.evaluate(embeddings: e, labels: [7, 1, 7, 2, 3], parameters: .init(), gradient: true)
        #expect(output.values[1] == 0 && output.values[3] == 0 && output.values[4] == 0)
        #expect(output.values[0] > 0 && output.values[2] > 0)
        #expect(output.gradients["embeddings"]!.values.allSatisfy { $0.isFinite })
    }

    @Test func cacrTwoViewsEqualsStackedViews() throws {
        let n = 5, d = 4
        let q = random(n, d), k = random(n, d)
        var stacked = [Double]()
        for i in 0..<n { stacked += Array(q.values[(i * d)..<((i + 1) * d)]) + Array(k.values[(i * d)..<((i + 1) * d)]) }
        let parameters = CACR.Parameters(alpha: 1.5, beta: 0.7, tauPositive: 0.5, tauNegative: 2)
        let pair = try CACR.evaluate(views: .pair(queries: q, keys: k), parameters: parameters, gradient: true)
        let views = try CACR.evaluate(
            views: .stacked(Tensor(shape: [n, 2, d], values: stacked)), parameters: parameters, gradient: true)
        #expect(near(pair.values, views.values))
        let g = views.gradients["embeddings"]!.values
        var gq = [Double](), gk = [Double]()
        for i in 0..<n {
            gq += g[(2 * i * d)..<((2 * i + 1) * d)]
            gk += g[((2 * i + 1) * d)..<((2 * i + 2) * d)]
        }
        #expect(near(pair.gradients["queries"]!.values, gq))
        #expect(near(pair.gradients["keys"]!.values, gk))
    }

    @Test func zeroRowsAreReportedWithTheirIndex() {
        var e = [Double](repeating: 1, count: 3 * 2 * 2)
        e[(1 * 2 + 1) * 2] = 0
        e[(1 * 2 + 1) * 2 + 1] = 0
        #expect(throws: LossInputError(.invalidInput, field: "/embeddings/1/1", "`embeddings[1][1]` has zero norm and cannot be normalized")) {
            try CACR.evaluate(views: .stacked(Tensor(shape: [3, 2, 2], values: e)), parameters: .init(), gradient: false)
        }
        #expect(throws: LossInputError(.invalidInput, field: "/queries/2", "`queries[2]` has zero norm and cannot be normalized")) {
            try InfoNCE.evaluate(
                queries: Matrix(rows: 3, cols: 2, values: [1, 2, 3, 4, 0, 0]), keys: random(3, 2), parameters: .init(), gradient: false)
        }
    }

    @Test func similarityMatricesAboveTheLimitAreRefusedBeforeAllocating() throws {
        // 100000 x 100000 doubles would be 80 GB; the check runs before any of it is allocated.
        let q = Matrix(rows: 100_000, cols: 1, values: [Double](repeating: 1, count: 100_000))
        #expect(
            throws: LossInputError(
                .contentTooLarge, field: "/keys",
                "`queries` and `keys` need a 100000 x 100000 similarity matrix; the limit is 67108864 entries")
        ) {
            try InfoNCE.evaluate(queries: q, keys: q, parameters: .init(), gradient: true)
        }
        // nt_xent at N = 4097 needs 8194 x 8194; supcon and cacr at N = 8193 need 8193 x 8193.
        let nt = Matrix(rows: 4097, cols: 1, values: [Double](repeating: 1, count: 4097))
        #expect(throws: LossInputError.self) {
            try NTXent.evaluate(queries: nt, keys: nt, parameters: .init(), gradient: false)
        }
        let e = Matrix(rows: 8193, cols: 1, values: [Double](repeating: 1, count: 8193))
        #expect(
            throws: LossInputError(
                .contentTooLarge, field: "/embeddings",
                "`embeddings` needs a 8193 x 8193 similarity matrix; the limit is 67108864 entries")
        ) {
            try SupCon.evaluate(embeddings: e, labels: [Int](repeating: 0, count: 8193), parameters: .init(), gradient: false)
        }
        #expect(throws: LossInputError.self) {
            try CACR.evaluate(views: .pair(queries: e, keys: e), parameters: .init(), gradient: false)
        }
        #expect(throws: LossInputError.self) {
            try CACR.evaluate(
                views: .stacked(Tensor(shape: [8193, 2, 1], values: [Double](repeating: 1, count: 2 * 8193))),
                parameters: .init(), gradient: false)
        }
        do {
            _ = try NTXent.evaluate(queries: nt, keys: nt, parameters: .init(), gradient: false)
        } catch {
            #expect(error.code == .contentTooLarge && error.field == "/keys")
            #expect(error.detail == "`queries` and `keys` need a 8194 x 8194 similarity matrix; the limit is 67108864 entries")
        }
        // The limit itself: 4096 x 4096, and nt_xent's 8192 x 8192 at N = 4096, stay allowed.
        #expect(Contrastive.maxSimilarityEntries == 67_108_864)
        try Contrastive.checkSimilaritySize(rows: 4096, cols: 4096, inputs: ["queries", "keys"])
        try Contrastive.checkSimilaritySize(rows: 2 * 4096, cols: 2 * 4096, inputs: ["queries", "keys"])
        #expect(throws: LossInputError.self) {
            try Contrastive.checkSimilaritySize(rows: 8192, cols: 8193, inputs: ["queries", "keys"])
        }
    }
}
