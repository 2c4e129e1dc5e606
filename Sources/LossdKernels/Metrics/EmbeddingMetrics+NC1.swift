import CBLAS

#if canImport(Glibc)
    import Glibc
#endif

extension EmbeddingMetrics {
    /// Most classes nc1 is computed for (its eigen-decomposition is of a min(C, D)-square
    /// matrix; 1024 covers ImageNet-1k and keeps it well under a second).
    public static let maxNC1Classes = 1024

    /// Eigenvalues of Σ_B at or below this fraction of the largest are treated as zero in
    /// its pseudo-inverse. Σ_B always has the null direction Σ_c n_c (m_c − m_G) = 0, which
    /// a Gram matrix carries at a rounding level of about k·√D·ε·λ_max; 1e-10 stays clear of
    /// that for every size allowed while keeping any between-class direction whose variance
    /// is more than 1e-10 of the largest.
    public static let nc1RelativeCutoff = 1e-10

    /// Neural collapse NC1 (Papyan, Han & Donoho 2020) of rows `h` with dense class indices
    /// `classes` (0..<C, every class present), C ≥ 2:
    ///
    ///     Σ_W = (1/N) Σ_i (h_i − m_{y_i})(h_i − m_{y_i})ᵀ
    ///     Σ_B = (1/C) Σ_c (m_c − m_G)(m_c − m_G)ᵀ         (m_G: the mean of all N rows)
    ///     nc1 = tr(Σ_W Σ_B⁺) / C
    ///
    /// computed without any D×D matrix when C ≤ D: with M = [m_c − m_G] (D×C) and the
    /// eigenpairs (λ_k, u_k) of M Mᵀ = C Σ_B (from those of the C×C matrix MᵀM, u_k = M w_k
    /// / √λ_k; or directly from M Mᵀ when D < C), Σ_B⁺ = C Σ_k u_k u_kᵀ / λ_k over the kept
    /// eigenvalues (``nc1RelativeCutoff``), so nc1 = Σ_k ‖R u_k‖² / (N λ_k) with R the rows
    /// of residuals h_i − m_{y_i}. Σ_B = 0 (every class mean at the global mean) gives
    /// Σ_B⁺ = 0 and nc1 = 0; so does Σ_W = 0 (every row at its class mean). Cost O(N·D·k +
    /// k³) with k = min(C, D).
    public static func nc1(rows h: Matrix, classes: [Int], classCount c: Int) -> Double {
        let n = h.rows, d = h.cols
        guard c >= 2, n >= 1 else { return 0 }
        // Class means and global mean.
        var means = [Double](repeating: 0, count: c * d)
        var counts = [Int](repeating: 0, count: c)
        var global = [Double](repeating: 0, count: d)
        for i in 0..<n {
            counts[classes[i]] += 1
            for p in 0..<d {
                means[classes[i] * d + p] += h.values[i * d + p]
                global[p] += h.values[i * d + p]
            }
        }
        for k in 0..<c where counts[k] > 0 {
            for p in 0..<d { means[k * d + p] /= Double(counts[k]) }
        }
        for p in 0..<d { global[p] /= Double(n) }
        // Mt: C×D, row c = m_c − m_G; R: N×D residuals.
        var mt = [Double](repeating: 0, count: c * d)
        for k in 0..<c { for p in 0..<d { mt[k * d + p] = means[k * d + p] - global[p] } }
        var residuals = h.values
        for i in 0..<n { for p in 0..<d { residuals[i * d + p] -= means[classes[i] * d + p] } }
        if Cancellation.isCancelled { return 0 }

        // The small Gram matrix and its eigen-decomposition.
        let small = min(c, d)
        var gram = [Double](repeating: 0, count: small * small)
        mt.withUnsafeBufferPointer { m in
            gram.withUnsafeMutableBufferPointer { g in
                if c <= d {
                    try? BLAS.gemm(.none, .transpose, m: c, n: c, k: d, a: m, b: m, c: g)
                } else {
                    try? BLAS.gemm(.transpose, .none, m: d, n: d, k: c, a: m, b: m, c: g)
                }
            }
        }
        guard let (eigenvalues, vectors) = symmetricEigen(gram, size: small) else { return .nan }
        let lambdaMax = eigenvalues.map(abs).max() ?? 0
        guard lambdaMax > 0 else { return 0 }
        let kept = (0..<small).filter { eigenvalues[$0] > nc1RelativeCutoff * lambdaMax }
        let r = kept.count
        guard r > 0 else { return 0 }
        // Directions U (r×D, orthonormal rows) of the kept eigenvalues of M Mᵀ.
        var directions = [Double](repeating: 0, count: r * d)
        if c <= d {
            var w = [Double](repeating: 0, count: r * c)
            for (row, k) in kept.enumerated() { for q in 0..<c { w[row * c + q] = vectors[k * small + q] } }
            w.withUnsafeBufferPointer { wb in
                mt.withUnsafeBufferPointer { m in
                    directions.withUnsafeMutableBufferPointer { u in
                        try? BLAS.gemm(.none, .none, m: r, n: d, k: c, a: wb, b: m, c: u)
                    }
                }
            }
            for (row, k) in kept.enumerated() {
                let scale = 1 / eigenvalues[k].squareRoot()
                for p in 0..<d { directions[row * d + p] *= scale }
            }
        } else {
            for (row, k) in kept.enumerated() { for p in 0..<d { directions[row * d + p] = vectors[k * small + p] } }
        }
        if Cancellation.isCancelled { return 0 }
        // Y = R Uᵀ (N×r); nc1 = Σ_k ‖Y_:k‖² / (N λ_k).
        var y = [Double](repeating: 0, count: n * r)
        residuals.withUnsafeBufferPointer { rb in
            directions.withUnsafeBufferPointer { u in
                y.withUnsafeMutableBufferPointer { yb in
                    try? BLAS.gemm(.none, .transpose, m: n, n: r, k: d, a: rb, b: u, c: yb)
                }
            }
        }
        var columnSquares = [Double](repeating: 0, count: r)
        for i in 0..<n { for k in 0..<r { columnSquares[k] += y[i * r + k] * y[i * r + k] } }
        var value = 0.0
        for (row, k) in kept.enumerated() { value += columnSquares[row] / (Double(n) * eigenvalues[k]) }
        return value
    }

    /// Eigenvalues (ascending) and eigenvectors (row k of the second array, `size` long) of
    /// a symmetric `size`×`size` matrix, by LAPACK's dsyevd (OpenBLAS); nil when it fails.
    static func symmetricEigen(_ matrix: [Double], size: Int) -> (values: [Double], vectors: [Double])? {
        guard size >= 1, size <= 46_340 else { return nil }
        var a = matrix  // symmetric: row-major and column-major storage agree
        var w = [Double](repeating: 0, count: size)
        var n = Int32(size), lda = Int32(size), info: Int32 = 0
        // Workspace query first, then the decomposition.
        var workSize = 0.0, iworkSize: Int32 = 0
        var lwork: Int32 = -1, liwork: Int32 = -1
        let jobz: CChar = 86 /* V */, uplo: CChar = 85 /* U */
        withUnsafePointer(to: jobz) { jz in
            withUnsafePointer(to: uplo) { up in
                dsyevd_(jz, up, &n, &a, &lda, &w, &workSize, &lwork, &iworkSize, &liwork, &info, 1, 1)
            }
        }
        guard info == 0 else { return nil }
        lwork = Int32(workSize.rounded(.up))
        liwork = max(1, iworkSize)
        var work = [Double](repeating: 0, count: Int(max(1, lwork)))
        var iwork = [Int32](repeating: 0, count: Int(liwork))
        withUnsafePointer(to: jobz) { jz in
            withUnsafePointer(to: uplo) { up in
                dsyevd_(jz, up, &n, &a, &lda, &w, &work, &lwork, &iwork, &liwork, &info, 1, 1)
            }
        }
        guard info == 0 else { return nil }
        // Column-major eigenvectors: column k (the k-th eigenvector) is a[k*size ..< (k+1)*size].
        return (w, a)
    }
}
