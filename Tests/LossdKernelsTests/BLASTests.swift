import LossdKernels
import Testing

@Suite("CBLAS wrapper")
struct BLASTests {
    /// Reference product of row-major matrices, in Double.
    func naiveProduct(_ a: [Double], _ b: [Double], m: Int, n: Int, k: Int) -> [Double] {
        var c = [Double](repeating: 0, count: m * n)
        for i in 0..<m { for j in 0..<n { for p in 0..<k { c[i * n + j] += a[i * k + p] * b[p * n + j] } } }
        return c
    }

    func transpose(_ x: [Double], rows: Int, cols: Int) -> [Double] {
        var t = [Double](repeating: 0, count: x.count)
        for i in 0..<rows { for j in 0..<cols { t[j * rows + i] = x[i * cols + j] } }
        return t
    }

    @Test func gemmMatchesANaiveProductInDouble() throws {
        let (m, n, k) = (5, 7, 3)
        let a = (0..<(m * k)).map { Double($0) * 0.25 - 1 }
        let b = (0..<(k * n)).map { Double($0 % 5) - 2.5 }
        var c = [Double](repeating: 0, count: m * n)
        try a.withUnsafeBufferPointer { pa in
            try b.withUnsafeBufferPointer { pb in
                try c.withUnsafeMutableBufferPointer { pc in try BLAS.gemm(m: m, n: n, k: k, a: pa, b: pb, c: pc) }
            }
        }
        #expect(c == naiveProduct(a, b, m: m, n: n, k: k))
    }

    @Test func gemmWithTransposedOperandsAlphaAndBeta() throws {
        let (m, n, k) = (4, 3, 6)
        let a = (0..<(m * k)).map { Double($0).squareRoot() }
        let b = (0..<(k * n)).map { 1 / Double($0 + 1) }
        let aT = transpose(a, rows: m, cols: k), bT = transpose(b, rows: k, cols: n)
        var c = [Double](repeating: 1, count: m * n)
        try aT.withUnsafeBufferPointer { pa in
            try bT.withUnsafeBufferPointer { pb in
                try c.withUnsafeMutableBufferPointer { pc in
                    try BLAS.gemm(.transpose, .transpose, m: m, n: n, k: k, alpha: 2, a: pa, b: pb, beta: 0.5, c: pc)
                }
            }
        }
        let expected = naiveProduct(a, b, m: m, n: n, k: k).map { 2 * $0 + 0.5 }
        for (x, y) in zip(c, expected) { #expect(abs(x - y) <= 1e-12 * max(1, abs(y))) }
    }

    @Test func gemmInFloat() throws {
        let a: [Float] = [1, 2, 3, 4], b: [Float] = [5, 6, 7, 8]
        var c = [Float](repeating: 0, count: 4)
        try a.withUnsafeBufferPointer { pa in
            try b.withUnsafeBufferPointer { pb in
                try c.withUnsafeMutableBufferPointer { pc in try BLAS.gemm(m: 2, n: 2, k: 2, a: pa, b: pb, c: pc) }
            }
        }
        #expect(c == [19, 22, 43, 50])
    }

    @Test func gemmRejectsBuffersSmallerThanTheirShape() {
        let a = [Double](repeating: 1, count: 5), b = [Double](repeating: 1, count: 6)
        var c = [Double](repeating: 0, count: 4)
        #expect(throws: BLASError.bufferTooSmall(operand: "A", needed: 6, available: 5)) {
            try a.withUnsafeBufferPointer { pa in
                try b.withUnsafeBufferPointer { pb in
                    try c.withUnsafeMutableBufferPointer { pc in try BLAS.gemm(m: 2, n: 2, k: 3, a: pa, b: pb, c: pc) }
                }
            }
        }
        #expect(throws: BLASError.invalidDimension(name: "m", value: -1)) {
            try a.withUnsafeBufferPointer { pa in
                try b.withUnsafeBufferPointer { pb in
                    try c.withUnsafeMutableBufferPointer { pc in try BLAS.gemm(m: -1, n: 2, k: 3, a: pa, b: pb, c: pc) }
                }
            }
        }
    }

    @Test func gemmWithEmptyInnerDimensionScalesC() throws {
        let empty: [Double] = []
        var c: [Double] = [1, 2, 3, 4]
        try empty.withUnsafeBufferPointer { pa in
            try c.withUnsafeMutableBufferPointer { pc in try BLAS.gemm(m: 2, n: 2, k: 0, a: pa, b: pa, beta: 2, c: pc) }
        }
        #expect(c == [2, 4, 6, 8])
    }

    @Test func gemvInBothOrientations() throws {
        let a: [Double] = [1, 2, 3, 4, 5, 6]  // 2 x 3
        let x3: [Double] = [1, 0, -1], x2: [Double] = [1, 1]
        var y2 = [Double](repeating: 0, count: 2), y3 = [Double](repeating: 0, count: 3)
        try a.withUnsafeBufferPointer { pa in
            try x3.withUnsafeBufferPointer { px in
                try y2.withUnsafeMutableBufferPointer { py in try BLAS.gemv(rows: 2, cols: 3, a: pa, x: px, y: py) }
            }
            try x2.withUnsafeBufferPointer { px in
                try y3.withUnsafeMutableBufferPointer { py in try BLAS.gemv(.transpose, rows: 2, cols: 3, a: pa, x: px, y: py) }
            }
        }
        #expect(y2 == [-2, -2])
        #expect(y3 == [5, 7, 9])
    }

    @Test func gemvRejectsAShortVector() {
        let a: [Float] = [1, 2, 3, 4, 5, 6], x: [Float] = [1, 2]
        var y = [Float](repeating: 0, count: 2)
        #expect(throws: BLASError.self) {
            try a.withUnsafeBufferPointer { pa in
                try x.withUnsafeBufferPointer { px in
                    try y.withUnsafeMutableBufferPointer { py in try BLAS.gemv(rows: 2, cols: 3, a: pa, x: px, y: py) }
                }
            }
        }
    }

    @Test func dotOfEqualAndUnequalLengths() throws {
        let x: [Double] = [1, 2, 3], y: [Double] = [4, 5, 6], short: [Double] = [1]
        #expect(try x.withUnsafeBufferPointer { px in try y.withUnsafeBufferPointer { py in try BLAS.dot(px, py) } } == 32)
        #expect(throws: BLASError.self) {
            try x.withUnsafeBufferPointer { px in try short.withUnsafeBufferPointer { py in try BLAS.dot(px, py) } }
        }
        let empty: [Float] = []
        #expect(try empty.withUnsafeBufferPointer { p in try BLAS.dot(p, p) } == 0)
    }

    @Test func libraryDescriptionNamesOpenBLAS() {
        #expect(BLAS.libraryDescription.contains("OpenBLAS"))
        #expect(BLAS.threadCount >= 1)
    }
}
