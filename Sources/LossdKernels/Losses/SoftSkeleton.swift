/// The soft skeleton of Shit et al., "clDice - a Novel Topology-Preserving Loss Function for
/// Tubular Structure Segmentation" (CVPR 2021), as their PyTorch code computes it
/// (`soft_skeletonize`), on one map of 2 or 3 spatial axes, row-major:
///
///     erode(x)   = min over the plus-shaped window (the point and its 2·d axis neighbours)
///     dilate(x)  = max over the full 3×3 (3×3×3) window
///     open(x)    = dilate(erode(x))
///     skel       = relu(x − open(x))
///     k times:   x ← erode(x);  δ = relu(x − open(x));  skel ← skel + relu(δ − skel·δ)
///
/// Windows are clipped at the border (the code's padding never wins a min or a max). The
/// erosion is the minimum of the axis pools, the dilation is separable (one 3-wide max pass
/// per axis); every pass is a contiguous SIMD loop (8 lanes) over slabs of the map, also
/// the backward pass's, which carry the winners' indices in a second set of lanes.
///
/// **Gradient** (subgradient): a min or max routes its incoming gradient to the element that
/// won it, the first in window order on ties (plus window: centre, −axis0, +axis0, −axis1,
/// …; full window: offsets in lexicographic order, axis 0 most significant), as NumPy's
/// `argmin`/`argmax` over the stacked window do; relu′(0) = 0. The backward pass recomputes
/// each step's winners from the stored erosion chain x_0 … x_{k+1} and the skeleton before
/// each step, so the forward pass stays pure min/max.
struct SoftSkeleton {
    /// Values in one map.
    let count: Int
    /// Each spatial axis as (outer, extent, inner): the map is `outer` blocks of `extent`
    /// slabs of `inner` contiguous values along that axis.
    private let axes: [(outer: Int, extent: Int, inner: Int)]
    let iterations: Int

    init(extents: [Int], iterations: Int) {
        precondition(!extents.isEmpty && extents.allSatisfy { $0 >= 1 }, "a map needs extents >= 1")
        count = extents.reduce(1, *)
        var axes: [(outer: Int, extent: Int, inner: Int)] = []
        for a in extents.indices {
            let outer = extents[..<a].reduce(1, *), inner = extents[(a + 1)...].reduce(1, *)
            axes.append((outer, extents[a], inner))
        }
        self.axes = axes
        self.iterations = iterations
    }

    /// Doubles of workspace `skeleton` needs (value only).
    var forwardWorkspace: Int { 4 * count }

    /// Doubles of the stored state `skeleton(_:into:storing:)` keeps for `backward`.
    var storedState: Int { (2 * iterations + 2) * count }

    /// Doubles of workspace `backward` needs (beside `backwardIndices` indices).
    var backwardWorkspace: Int { 7 * count }

    /// Indices of workspace `backward` needs.
    var backwardIndices: Int { 4 * count }

    // MARK: Forward

    /// skel(x) into `skel`. With `stored` (`storedState` values), keeps x_0 … x_{k+1} and the
    /// skeleton before each loop round for `backward`; otherwise uses `work`
    /// (`forwardWorkspace` values). `x`, `skel` and the buffers must not overlap.
    func skeleton(
        _ x: UnsafePointer<Double>, into skel: UnsafeMutablePointer<Double>,
        work: UnsafeMutablePointer<Double>, stored: UnsafeMutablePointer<Double>?
    ) {
        let n = count
        // Rotating buffers: current x, its erosion, the opening, and a dilation scratch.
        var current: UnsafeMutablePointer<Double>, eroded: UnsafeMutablePointer<Double>
        let opened = work, scratch = work + n
        if let stored {
            current = stored
            eroded = stored + n
        } else {
            current = work + 2 * n
            eroded = work + 3 * n
        }
        current.update(from: x, count: n)
        erode(current, into: eroded)
        dilate(eroded, into: opened, scratch: scratch)
        for i in 0..<n { skel[i] = max(current[i] - opened[i], 0) }
        for round in stride(from: 1, through: iterations, by: 1) {
            // x_round = eroded; its own erosion feeds the opening.
            if let stored {
                // Layout: x_0 … x_{k+1} in slots 0…k+1, then skel before round j in slot k+1+j.
                stored.advanced(by: (iterations + 1 + round) * n).update(from: skel, count: n)
                current = eroded
                eroded = stored + (round + 1) * n
            } else {
                swap(&current, &eroded)
            }
            erode(current, into: eroded)
            dilate(eroded, into: opened, scratch: scratch)
            for i in 0..<n {
                let delta = max(current[i] - opened[i], 0)
                let s = skel[i]
                skel[i] = s + max(delta - s * delta, 0)
            }
        }
    }

    // MARK: Backward

    /// The gradient of Σ gS·skel(x_0) with respect to x_0 into `grad`, from the state
    /// `skeleton(_:into:work:stored:)` kept. `work` holds `backwardWorkspace` doubles and
    /// `indices` `backwardIndices` values.
    func backward(
        _ gS: UnsafePointer<Double>, stored: UnsafePointer<Double>, into grad: UnsafeMutablePointer<Double>,
        work: UnsafeMutablePointer<Double>, indices: UnsafeMutablePointer<Int64>
    ) {
        let n = count, k = iterations
        func x(_ j: Int) -> UnsafePointer<Double> { stored + j * n }
        func skelBefore(_ j: Int) -> UnsafePointer<Double> { stored + (k + 1 + j) * n }
        let gSkel = work, gNext = work + n, gx = work + 2 * n, opened = work + 3 * n
        let h = work + 4 * n, dilateScratch = work + 5 * n, erodedScratch = work + 6 * n
        var erodeSrc = indices, erodePrevSrc = indices + n
        let dilateSrc = indices + 2 * n, scratchSrc = indices + 3 * n

        gSkel.update(from: gS, count: n)
        gNext.update(repeating: 0, count: n)
        // Winners of erode(x_k) → x_{k+1}.
        erode(x(k), into: erodedScratch, source: erodeSrc)
        if k >= 1 {
            for j in stride(from: k, through: 1, by: -1) {
                // Step j: xn = x_j, open(x_j) = dilate(x_{j+1}), skel before = skelBefore(j).
                let xn = x(j), prev = skelBefore(j)
                dilate(x(j + 1), into: opened, scratch: dilateScratch, source: dilateSrc, scratchSource: scratchSrc)
                // g_dd into gx (reused), g_skel updated.
                for i in 0..<n {
                    let dd = xn[i] - opened[i]
                    let delta = max(dd, 0)
                    let s = prev[i]
                    let t = delta - s * delta
                    let gt = t > 0 ? gSkel[i] : 0
                    gSkel[i] -= gt * delta
                    gx[i] = dd > 0 ? gt * (1 - s) : 0
                }
                // g_x = g_next + g_dd − open_backward(g_dd).
                openBackward(gx, dilateSrc: dilateSrc, erodeSrc: erodeSrc, scratch: h, into: opened)
                for i in 0..<n { gx[i] = gNext[i] + gx[i] - opened[i] }
                // x_j = erode(x_{j−1}): route to x_{j−1}.
                erode(x(j - 1), into: erodedScratch, source: erodePrevSrc)
                gNext.update(repeating: 0, count: n)
                for i in 0..<n { gNext[Int(erodePrevSrc[i])] += gx[i] }
                swap(&erodeSrc, &erodePrevSrc)
            }
        }
        // The initial step: skel_0 = relu(x_0 − open(x_0)); erodeSrc now holds erode(x_0)'s winners.
        dilate(x(1), into: opened, scratch: dilateScratch, source: dilateSrc, scratchSource: scratchSrc)
        let x0 = x(0)
        for i in 0..<n { gx[i] = x0[i] - opened[i] > 0 ? gSkel[i] : 0 }
        openBackward(gx, dilateSrc: dilateSrc, erodeSrc: erodeSrc, scratch: h, into: opened)
        for i in 0..<n { grad[i] = gNext[i] + gx[i] - opened[i] }
    }

    /// The gradient of Σ g·open(x) with respect to x, given the winners of the dilation
    /// (indices into the eroded map) and of the erosion (indices into x).
    private func openBackward(
        _ g: UnsafePointer<Double>, dilateSrc: UnsafePointer<Int64>, erodeSrc: UnsafePointer<Int64>,
        scratch: UnsafeMutablePointer<Double>, into out: UnsafeMutablePointer<Double>
    ) {
        let n = count
        scratch.update(repeating: 0, count: n)
        for i in 0..<n { scratch[Int(dilateSrc[i])] += g[i] }
        out.update(repeating: 0, count: n)
        for i in 0..<n { out[Int(erodeSrc[i])] += scratch[i] }
    }

    // MARK: Pools

    /// Minimum over the plus-shaped window.
    func erode(_ x: UnsafePointer<Double>, into out: UnsafeMutablePointer<Double>) {
        out.update(from: x, count: count)
        for (outer, extent, inner) in axes where extent > 1 {
            let length = (extent - 1) * inner
            for o in 0..<outer {
                let base = o * extent * inner
                Self.minimum(out + base + inner, x + base, length)  // neighbour at −1
                Self.minimum(out + base, x + base + inner, length)  // neighbour at +1
            }
        }
    }

    /// Minimum over the plus-shaped window, with the flat index of each winner (first in
    /// window order on ties: centre, −axis0, +axis0, −axis1, …).
    func erode(_ x: UnsafePointer<Double>, into out: UnsafeMutablePointer<Double>, source: UnsafeMutablePointer<Int64>) {
        out.update(from: x, count: count)
        for i in 0..<count { source[i] = Int64(i) }
        for (outer, extent, inner) in axes where extent > 1 {
            let length = (extent - 1) * inner
            for o in 0..<outer {
                let base = o * extent * inner
                // Strictly smaller only: earlier candidates keep ties.
                Self.select(.less, out + base + inner, source + base + inner, x + base, nil, first: base, length)
                Self.select(.less, out + base, source + base, x + base + inner, nil, first: base + inner, length)
            }
        }
    }

    /// Maximum over the full window: one 3-wide pass per axis, the last axis first.
    func dilate(_ x: UnsafePointer<Double>, into out: UnsafeMutablePointer<Double>, scratch: UnsafeMutablePointer<Double>) {
        // Alternate buffers so that the last pass (axis 0) writes `out`.
        var input = x
        var target = axes.count % 2 == 0 ? scratch : out
        for a in axes.indices.reversed() {
            let (outer, extent, inner) = axes[a]
            target.update(from: input, count: count)
            if extent > 1 {
                let length = (extent - 1) * inner
                for o in 0..<outer {
                    let base = o * extent * inner
                    Self.maximum(target + base + inner, input + base, length)
                    Self.maximum(target + base, input + base + inner, length)
                }
            }
            input = UnsafePointer(target)
            target = target == out ? scratch : out
        }
    }

    /// Maximum over the full window with the flat index of each winner: the first in
    /// lexicographic offset order on ties, which the separable passes give when each pass
    /// prefers −1 over 0 over +1 and the most significant axis goes last.
    func dilate(
        _ x: UnsafePointer<Double>, into out: UnsafeMutablePointer<Double>, scratch: UnsafeMutablePointer<Double>,
        source: UnsafeMutablePointer<Int64>, scratchSource: UnsafeMutablePointer<Int64>
    ) {
        var input = x
        var inputSource: UnsafePointer<Int64>? = nil
        var target = axes.count % 2 == 0 ? scratch : out
        var targetSource = axes.count % 2 == 0 ? scratchSource : source
        for a in axes.indices.reversed() {
            let (outer, extent, inner) = axes[a]
            target.update(from: input, count: count)
            if let inputSource {
                targetSource.update(from: inputSource, count: count)
            } else {
                for i in 0..<count { targetSource[i] = Int64(i) }
            }
            if extent > 1 {
                let length = (extent - 1) * inner
                for o in 0..<outer {
                    let base = o * extent * inner
                    // −1 first: it wins ties against the centre.
                    Self.select(
                        .greaterOrEqual, target + base + inner, targetSource + base + inner, input + base,
                        inputSource.map { $0 + base }, first: base, length)
                    // +1 wins only when strictly larger than both.
                    Self.select(
                        .greater, target + base, targetSource + base, input + base + inner,
                        inputSource.map { $0 + base + inner }, first: base + inner, length)
                }
            }
            input = UnsafePointer(target)
            inputSource = UnsafePointer(targetSource)
            target = target == out ? scratch : out
            targetSource = targetSource == source ? scratchSource : source
        }
    }

    // MARK: SIMD loops

    enum Rule { case less, greater, greaterOrEqual }

    /// Where `candidate[i]` beats `out[i]` by `rule`, for i < n: out[i] = candidate[i] and
    /// outSource[i] = candidateSource[i] (or `first + i` when the candidates are the map itself).
    @inline(__always)
    private static func select(
        _ rule: Rule, _ out: UnsafeMutablePointer<Double>, _ outSource: UnsafeMutablePointer<Int64>,
        _ candidate: UnsafePointer<Double>, _ candidateSource: UnsafePointer<Int64>?, first: Int, _ n: Int
    ) {
        typealias Indices = SIMD8<Int64>
        let o = UnsafeMutableRawPointer(out), c = UnsafeRawPointer(candidate)
        let os = UnsafeMutableRawPointer(outSource), cs = candidateSource.map { UnsafeRawPointer($0) }
        let step = Lanes.scalarCount, width = 8
        let iota = Indices(0, 1, 2, 3, 4, 5, 6, 7)
        var i = 0
        while i + step <= n {
            let u = o.loadUnaligned(fromByteOffset: i * width, as: Lanes.self)
            let v = c.loadUnaligned(fromByteOffset: i * width, as: Lanes.self)
            let wins: SIMDMask<Indices>
            switch rule {
            case .less: wins = v .< u
            case .greater: wins = v .> u
            case .greaterOrEqual: wins = v .>= u
            }
            if any(wins) {
                o.storeBytes(of: u.replacing(with: v, where: wins), toByteOffset: i * width, as: Lanes.self)
                let from = cs?.loadUnaligned(fromByteOffset: i * width, as: Indices.self) ?? (iota &+ Int64(first + i))
                let was = os.loadUnaligned(fromByteOffset: i * width, as: Indices.self)
                os.storeBytes(of: was.replacing(with: from, where: wins), toByteOffset: i * width, as: Indices.self)
            }
            i += step
        }
        while i < n {
            let v = candidate[i], u = out[i]
            let win: Bool
            switch rule {
            case .less: win = v < u
            case .greater: win = v > u
            case .greaterOrEqual: win = v >= u
            }
            if win {
                out[i] = v
                outSource[i] = candidateSource?[i] ?? Int64(first + i)
            }
            i += 1
        }
    }

    private typealias Lanes = SIMD8<Double>

    /// out[i] = min(out[i], a[i]) for i < n.
    @inline(__always)
    private static func minimum(_ out: UnsafeMutablePointer<Double>, _ a: UnsafePointer<Double>, _ n: Int) {
        select(out, a, n, smaller: true)
    }

    /// out[i] = max(out[i], a[i]) for i < n.
    @inline(__always)
    private static func maximum(_ out: UnsafeMutablePointer<Double>, _ a: UnsafePointer<Double>, _ n: Int) {
        select(out, a, n, smaller: false)
    }

    /// out[i] = a[i] where a[i] is smaller (`smaller`) or larger than out[i], for i < n: eight
    /// lanes at a time, then a scalar tail. Always inlined with a literal `smaller`, so each
    /// call site keeps only its own comparison in the loop.
    @inline(__always)
    private static func select(_ out: UnsafeMutablePointer<Double>, _ a: UnsafePointer<Double>, _ n: Int, smaller: Bool) {
        let o = UnsafeMutableRawPointer(out), r = UnsafeRawPointer(a)
        let step = Lanes.scalarCount, width = MemoryLayout<Double>.stride
        var i = 0
        while i + step <= n {
            let u = o.loadUnaligned(fromByteOffset: i * width, as: Lanes.self)
            let v = r.loadUnaligned(fromByteOffset: i * width, as: Lanes.self)
            o.storeBytes(of: u.replacing(with: v, where: smaller ? v .< u : v .> u), toByteOffset: i * width, as: Lanes.self)
            i += step
        }
        while i < n {
            if smaller ? a[i] < out[i] : a[i] > out[i] { out[i] = a[i] }
            i += 1
        }
    }
}
