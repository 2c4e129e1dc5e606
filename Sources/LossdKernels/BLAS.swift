import CBLAS

/// A floating-point type that OpenBLAS computes on: `Float` (the `s` routines) or `Double` (`d`).
public protocol BLASScalar: BinaryFloatingPoint, Sendable {
    static func _gemm(
        _ order: CBLAS_ORDER, _ transA: CBLAS_TRANSPOSE, _ transB: CBLAS_TRANSPOSE,
        _ m: Int32, _ n: Int32, _ k: Int32, _ alpha: Self,
        _ a: UnsafePointer<Self>, _ lda: Int32, _ b: UnsafePointer<Self>, _ ldb: Int32,
        _ beta: Self, _ c: UnsafeMutablePointer<Self>, _ ldc: Int32)
    static func _gemv(
        _ order: CBLAS_ORDER, _ trans: CBLAS_TRANSPOSE, _ m: Int32, _ n: Int32, _ alpha: Self,
        _ a: UnsafePointer<Self>, _ lda: Int32, _ x: UnsafePointer<Self>, _ incx: Int32,
        _ beta: Self, _ y: UnsafeMutablePointer<Self>, _ incy: Int32)
    static func _dot(_ n: Int32, _ x: UnsafePointer<Self>, _ incx: Int32, _ y: UnsafePointer<Self>, _ incy: Int32) -> Self
}

extension Float: BLASScalar {
    public static func _gemm(
        _ order: CBLAS_ORDER, _ transA: CBLAS_TRANSPOSE, _ transB: CBLAS_TRANSPOSE,
        _ m: Int32, _ n: Int32, _ k: Int32, _ alpha: Float,
        _ a: UnsafePointer<Float>, _ lda: Int32, _ b: UnsafePointer<Float>, _ ldb: Int32,
        _ beta: Float, _ c: UnsafeMutablePointer<Float>, _ ldc: Int32
    ) {
        cblas_sgemm(order, transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
    }
    public static func _gemv(
        _ order: CBLAS_ORDER, _ trans: CBLAS_TRANSPOSE, _ m: Int32, _ n: Int32, _ alpha: Float,
        _ a: UnsafePointer<Float>, _ lda: Int32, _ x: UnsafePointer<Float>, _ incx: Int32,
        _ beta: Float, _ y: UnsafeMutablePointer<Float>, _ incy: Int32
    ) {
        cblas_sgemv(order, trans, m, n, alpha, a, lda, x, incx, beta, y, incy)
    }
    public static func _dot(_ n: Int32, _ x: UnsafePointer<Float>, _ incx: Int32, _ y: UnsafePointer<Float>, _ incy: Int32) -> Float {
        cblas_sdot(n, x, incx, y, incy)
    }
}

extension Double: BLASScalar {
    public static func _gemm(
        _ order: CBLAS_ORDER, _ transA: CBLAS_TRANSPOSE, _ transB: CBLAS_TRANSPOSE,
        _ m: Int32, _ n: Int32, _ k: Int32, _ alpha: Double,
        _ a: UnsafePointer<Double>, _ lda: Int32, _ b: UnsafePointer<Double>, _ ldb: Int32,
        _ beta: Double, _ c: UnsafeMutablePointer<Double>, _ ldc: Int32
    ) {
        cblas_dgemm(order, transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
    }
    public static func _gemv(
        _ order: CBLAS_ORDER, _ trans: CBLAS_TRANSPOSE, _ m: Int32, _ n: Int32, _ alpha: Double,
        _ a: UnsafePointer<Double>, _ lda: Int32, _ x: UnsafePointer<Double>, _ incx: Int32,
        _ beta: Double, _ y: UnsafeMutablePointer<Double>, _ incy: Int32
    ) {
        cblas_dgemv(order, trans, m, n, alpha, a, lda, x, incx, beta, y, incy)
    }
    public static func _dot(_ n: Int32, _ x: UnsafePointer<Double>, _ incx: Int32, _ y: UnsafePointer<Double>, _ incy: Int32) -> Double {
        cblas_ddot(n, x, incx, y, incy)
    }
}

/// Why a BLAS call was refused before reaching OpenBLAS.
public enum BLASError: Error, Equatable, CustomStringConvertible {
    /// A buffer holds fewer elements than its stated shape needs.
    case bufferTooSmall(operand: String, needed: Int, available: Int)
    /// A dimension is negative or does not fit OpenBLAS's 32-bit integers.
    case invalidDimension(name: String, value: Int)

    public var description: String {
        switch self {
        case let .bufferTooSmall(operand, needed, available):
            return "\(operand) needs \(needed) elements but holds \(available)"
        case let .invalidDimension(name, value):
            return "dimension \(name) = \(value) is out of range"
        }
    }
}

/// Thin, shape-checked wrappers over the CBLAS routines lossd uses, on row-major
/// contiguous buffers. Shapes are validated before OpenBLAS sees a pointer, so a
/// wrong shape is a thrown error instead of an out-of-bounds read.
public enum BLAS {
    /// Whether an operand is used as stored or transposed.
    public enum Transpose: Sendable {
        case none
        case transpose

        var cblas: CBLAS_TRANSPOSE { self == .none ? CblasNoTrans : CblasTrans }
    }

    /// `C = alpha * op(A) * op(B) + beta * C`, with op(A) `m x k`, op(B) `k x n` and C `m x n`,
    /// all row-major and densely packed.
    public static func gemm<T: BLASScalar>(
        _ transA: Transpose = .none, _ transB: Transpose = .none,
        m: Int, n: Int, k: Int,
        alpha: T = 1, a: UnsafeBufferPointer<T>, b: UnsafeBufferPointer<T>,
        beta: T = 0, c: UnsafeMutableBufferPointer<T>
    ) throws(BLASError) {
        let m32 = try dimension("m", m), n32 = try dimension("n", n), k32 = try dimension("k", k)
        try require("A", a.count, m * k)
        try require("B", b.count, k * n)
        try require("C", c.count, m * n)
        guard m > 0, n > 0 else { return }
        guard k > 0, let pa = a.baseAddress, let pb = b.baseAddress else {
            // An empty inner dimension leaves C scaled by beta.
            for i in 0..<(m * n) { c[i] = beta == 0 ? 0 : beta * c[i] }
            return
        }
        let lda = transA == .none ? k32 : m32
        let ldb = transB == .none ? n32 : k32
        T._gemm(CblasRowMajor, transA.cblas, transB.cblas, m32, n32, k32,
                alpha, pa, lda, pb, ldb, beta, c.baseAddress!, n32)
    }

    /// `y = alpha * op(A) * x + beta * y` with A stored `rows x cols`, row-major.
    public static func gemv<T: BLASScalar>(
        _ trans: Transpose = .none, rows: Int, cols: Int,
        alpha: T = 1, a: UnsafeBufferPointer<T>, x: UnsafeBufferPointer<T>,
        beta: T = 0, y: UnsafeMutableBufferPointer<T>
    ) throws(BLASError) {
        let r32 = try dimension("rows", rows), c32 = try dimension("cols", cols)
        let (xLength, yLength) = trans == .none ? (cols, rows) : (rows, cols)
        try require("A", a.count, rows * cols)
        try require("x", x.count, xLength)
        try require("y", y.count, yLength)
        guard yLength > 0 else { return }
        guard xLength > 0, let pa = a.baseAddress, let px = x.baseAddress else {
            for i in 0..<yLength { y[i] = beta == 0 ? 0 : beta * y[i] }
            return
        }
        T._gemv(CblasRowMajor, trans.cblas, r32, c32, alpha, pa, c32, px, 1, beta, y.baseAddress!, 1)
    }

    /// The inner product of two equally long vectors.
    public static func dot<T: BLASScalar>(_ x: UnsafeBufferPointer<T>, _ y: UnsafeBufferPointer<T>) throws(BLASError) -> T {
        guard x.count == y.count else {
            throw .bufferTooSmall(operand: "y", needed: x.count, available: y.count)
        }
        let n = try dimension("n", x.count)
        guard n > 0, let px = x.baseAddress, let py = y.baseAddress else { return 0 }
        return T._dot(n, px, 1, py, 1)
    }

    /// Sets how many threads OpenBLAS uses for the calls that follow (process-wide).
    public static func setThreadCount(_ count: Int) {
        openblas_set_num_threads(Int32(clamping: max(1, count)))
    }

    /// How many threads OpenBLAS currently uses.
    public static var threadCount: Int { Int(openblas_get_num_threads()) }

    /// OpenBLAS's build description and the CPU kernel it selected, e.g. "OpenBLAS 0.3.21 ... (Haswell)".
    public static var libraryDescription: String {
        let config = openblas_get_config().map { String(cString: $0) } ?? "OpenBLAS"
        let core = openblas_get_corename().map { String(cString: $0) } ?? "unknown"
        return "\(config.trimmingSpaces) (\(core.trimmingSpaces))"
    }

    private static func dimension(_ name: String, _ value: Int) throws(BLASError) -> Int32 {
        guard value >= 0, value <= Int(Int32.max) else { throw .invalidDimension(name: name, value: value) }
        return Int32(value)
    }

    private static func require(_ operand: String, _ available: Int, _ needed: Int) throws(BLASError) {
        guard available >= needed else { throw .bufferTooSmall(operand: operand, needed: needed, available: available) }
    }
}

extension String {
    fileprivate var trimmingSpaces: String {
        var s = Substring(self)
        while s.first == " " { s.removeFirst() }
        while s.last == " " { s.removeLast() }
        return String(s)
    }
}
