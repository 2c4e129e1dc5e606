import CBLAS

/// The CBLAS routines lossd calls, as Swift function types over one scalar type: the `s` and
/// `d` routines of OpenBLAS have these signatures with `T` = `Float` and `Double`.
public enum BLASRoutine {
    /// `cblas_?gemm(order, transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)`.
    public typealias Gemm<T> = (
        CBLAS_ORDER, CBLAS_TRANSPOSE, CBLAS_TRANSPOSE, Int32, Int32, Int32, T,
        UnsafePointer<T>?, Int32, UnsafePointer<T>?, Int32, T, UnsafeMutablePointer<T>?, Int32
    ) -> Void
    /// `cblas_?gemv(order, trans, m, n, alpha, a, lda, x, incx, beta, y, incy)`.
    public typealias Gemv<T> = (
        CBLAS_ORDER, CBLAS_TRANSPOSE, Int32, Int32, T, UnsafePointer<T>?, Int32, UnsafePointer<T>?, Int32,
        T, UnsafeMutablePointer<T>?, Int32
    ) -> Void
    /// `cblas_?dot(n, x, incx, y, incy)`.
    public typealias Dot<T> = (Int32, UnsafePointer<T>?, Int32, UnsafePointer<T>?, Int32) -> T
}

/// A floating-point type that OpenBLAS computes on: `Float` (the `s` routines) or `Double` (`d`).
/// A conforming type names its routines; the shape checks and calls live once, in ``BLAS``.
public protocol BLASScalar: BinaryFloatingPoint, Sendable {
    static var gemmRoutine: BLASRoutine.Gemm<Self> { get }
    static var gemvRoutine: BLASRoutine.Gemv<Self> { get }
    static var dotRoutine: BLASRoutine.Dot<Self> { get }
}

extension Float: BLASScalar {
    public static var gemmRoutine: BLASRoutine.Gemm<Float> { cblas_sgemm }
    public static var gemvRoutine: BLASRoutine.Gemv<Float> { cblas_sgemv }
    public static var dotRoutine: BLASRoutine.Dot<Float> { cblas_sdot }
}

extension Double: BLASScalar {
    public static var gemmRoutine: BLASRoutine.Gemm<Double> { cblas_dgemm }
    public static var gemvRoutine: BLASRoutine.Gemv<Double> { cblas_dgemv }
    public static var dotRoutine: BLASRoutine.Dot<Double> { cblas_ddot }
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
        T.gemmRoutine(
            CblasRowMajor, transA.cblas, transB.cblas, m32, n32, k32, alpha, pa, lda, pb, ldb, beta, c.baseAddress!, n32)
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
        T.gemvRoutine(CblasRowMajor, trans.cblas, r32, c32, alpha, pa, c32, px, 1, beta, y.baseAddress!, 1)
    }

    /// The inner product of two equally long vectors.
    public static func dot<T: BLASScalar>(_ x: UnsafeBufferPointer<T>, _ y: UnsafeBufferPointer<T>) throws(BLASError) -> T {
        guard x.count == y.count else {
            throw .bufferTooSmall(operand: "y", needed: x.count, available: y.count)
        }
        let n = try dimension("n", x.count)
        guard n > 0, let px = x.baseAddress, let py = y.baseAddress else { return 0 }
        return T.dotRoutine(n, px, 1, py, 1)
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
