import CLossdKernels

/// A map of integer class indices over a batch of images or volumes, [N][H][W] or
/// [N][H][W][Z] row-major: segmentation labels, or a skeleton class map (0 = background).
public struct ClassMap: Sendable, Equatable {
    public let shape: [Int]
    public let values: [Int]

    public init(shape: [Int], values: [Int]) {
        precondition(values.count == shape.reduce(1, *), "ClassMap values must match its shape")
        self.shape = shape
        self.values = values
    }
}

/// The ground truth of a segmentation loss: one class per pixel, or per-class soft masks
/// [N][C][H][W](…) in [0, 1].
public enum SegmentationTruth: Sendable {
    case labels(ClassMap)
    case targets(Tensor)
}

/// What the segmentation losses (`Dice`, `ClDice`, `SkeletonRecall`; docs/losses.md §15)
/// share: logits [N][C][H][W] or [N][C][H][W][Z] with a softmax over C at every pixel, a
/// value per (sample, class) map, the mean over the kept classes per sample, and the
/// gradient through the softmax.
///
/// Layout: the C maps of a sample are contiguous, so the softmax over C is strided by the
/// map size S. It runs pixel-major instead: for a block of pixels, the maximum over C,
/// then per class `z − max` and one vectorised exponential pass, the sum over C, and the
/// division — every inner loop contiguous over pixels. The backward pass
/// `∂z = p ⊙ (∂p − Σ_c p·∂p)` runs the same way.
public enum Segmentation {
    public struct Parameters: Sendable {
        /// Whether class 0 counts in the mean over classes (default: dropped).
        public var includeBackground: Bool
        /// ε ≥ 0, added to the numerator and the denominator of every ratio.
        public var smooth: Double

        public init(includeBackground: Bool = false, smooth: Double = 1) {
            self.includeBackground = includeBackground
            self.smooth = smooth
        }
    }

    /// One (sample, class) map as a loss sees it.
    struct Map {
        let sample: Int
        let classIndex: Int
        /// Pixels in the map (H·W or H·W·Z).
        let count: Int
        /// softmax(z)_c over the map.
        let p: UnsafePointer<Double>
        /// The ground truth's mask of the class (0/1 for class maps, in [0, 1] for targets).
        let g: UnsafePointer<Double>
        /// ∂(class value)/∂p to write, or nil without gradient.
        let gradient: UnsafeMutablePointer<Double>?
        /// The loss's workspace (`workspace` doubles, `indices` integers).
        let work: UnsafeMutablePointer<Double>
        let indices: UnsafeMutablePointer<Int64>
    }

    /// (Σ a·b, Σ a, Σ b) over n values, in 8 SIMD lanes.
    static func sums(_ a: UnsafePointer<Double>, _ b: UnsafePointer<Double>, _ n: Int) -> (product: Double, a: Double, b: Double) {
        typealias Lanes = SIMD8<Double>
        let ra = UnsafeRawPointer(a), rb = UnsafeRawPointer(b)
        var ab = Lanes(repeating: 0), sa = Lanes(repeating: 0), sb = Lanes(repeating: 0)
        var i = 0
        while i + Lanes.scalarCount <= n {
            let u = ra.loadUnaligned(fromByteOffset: i * 8, as: Lanes.self)
            let v = rb.loadUnaligned(fromByteOffset: i * 8, as: Lanes.self)
            ab = ab.addingProduct(u, v)
            sa += u
            sb += v
            i += Lanes.scalarCount
        }
        var product = ab.sum(), sumA = sa.sum(), sumB = sb.sum()
        while i < n {
            product += a[i] * b[i]
            sumA += a[i]
            sumB += b[i]
            i += 1
        }
        return (product, sumA, sumB)
    }

    /// ratio (a + ε)/(b + ε), taken as 1 when both are 0 (ε = 0 with an empty class: nothing
    /// to find and nothing found counts as agreement, not as NaN).
    @inline(__always)
    static func ratio(_ numerator: Double, _ denominator: Double) -> Double {
        denominator == 0 ? 1 : numerator / denominator
    }

    /// Validates the inputs, computes p = softmax over C, calls `perMap` on every kept
    /// (sample, class) map (in parallel, each call with its own workspace of `workspace`
    /// doubles and `indices` integers) for the class value and ∂value/∂p, and returns the
    /// per-sample means over the kept classes (d_r = 1) with ∂/∂logits.
    static func evaluate(
        logits: Tensor, truth: SegmentationTruth, truthName: String, parameters: Parameters, gradient: Bool,
        workspace: (_ pixels: Int) -> Int, indices: (_ pixels: Int) -> Int = { _ in 0 }, costPerPixel: Int,
        perMap: (Map) -> Double
    ) throws(LossInputError) -> LossOutput {
        let shape = logits.shape
        guard shape.count == 4 || shape.count == 5 else {
            throw LossInputError(
                .invalidShape, field: "/logits",
                "`logits` must be a rectangular 4-D or 5-D array of numbers with every dimension >= 1")
        }
        let n = shape[0], classes = shape[1], spatial = Array(shape[2...])
        guard classes >= 2 else {
            throw LossInputError(.invalidShape, field: "/logits", "`logits` must have at least 2 classes (dimension 1, softmax over C)")
        }
        let pixels = spatial.reduce(1, *)
        guard parameters.smooth >= 0, parameters.smooth.isFinite else {
            throw LossInputError(.invalidParam, field: "/params/smooth", "`smooth` must be in [0, inf)")
        }
        try validate(truth, name: truthName, samples: n, classes: classes, spatial: spatial)

        let probabilities = softmax(logits.values, samples: n, classes: classes, pixels: pixels)
        let first = parameters.includeBackground ? 0 : 1
        let kept = classes - first
        var classValues = [Double](repeating: 0, count: n * classes)
        var grad = [Double](repeating: 0, count: gradient ? logits.values.count : 0)
        let mapWork = workspace(pixels), mapIndices = indices(pixels)

        probabilities.withUnsafeBufferPointer { p in
            withMutableBuffers(&classValues, &grad) { values, gradOut in
                withTruth(truth) { labels, targets in
                    Parallel.forEachRange(n * kept, costPerRow: pixels * costPerPixel) { range in
                        let work = UnsafeMutablePointer<Double>.allocate(capacity: pixels + mapWork)
                        let indexWork = UnsafeMutablePointer<Int64>.allocate(capacity: max(1, mapIndices))
                        defer {
                            work.deallocate()
                            indexWork.deallocate()
                        }
                        let g = work + mapWork
                        for m in range {
                            let sample = m / kept, c = first + m % kept
                            let offset = (sample * classes + c) * pixels
                            if let labels {
                                let map = labels.baseAddress! + sample * pixels
                                for s in 0..<pixels { g[s] = map[s] == c ? 1 : 0 }
                            } else if let targets {
                                g.update(from: targets.baseAddress! + offset, count: pixels)
                            }
                            values[sample * classes + c] = perMap(
                                Map(
                                    sample: sample, classIndex: c, count: pixels, p: p.baseAddress! + offset, g: g,
                                    gradient: gradient ? gradOut.baseAddress! + offset : nil, work: work, indices: indexWork))
                        }
                    }
                }
            }
        }

        // Mean over the kept classes; the gradient takes the 1/|kept| and the softmax.
        var values = [Double](repeating: 0, count: n)
        for sample in 0..<n {
            var sum = 0.0
            for c in first..<classes { sum += classValues[sample * classes + c] }
            values[sample] = sum / Double(kept)
        }
        guard values.allFinite else { throw .overflow }
        var output = LossOutput(values: values, denominators: [Double](repeating: 1, count: n))
        if gradient {
            softmaxBackward(probabilities, gradient: &grad, samples: n, classes: classes, pixels: pixels, scale: 1 / Double(kept))
            output.gradients["logits"] = Tensor(shape: shape, values: grad)
        }
        return output
    }

    // MARK: Inputs

    /// The truth's shape and domain: a class map [N][spatial…] with classes in [0, C), or
    /// targets [N][C][spatial…] in [0, 1].
    static func validate(_ truth: SegmentationTruth, name: String, samples: Int, classes: Int, spatial: [Int]) throws(LossInputError) {
        switch truth {
        case .labels(let map):
            let expected = [samples] + spatial
            guard map.shape == expected else {
                throw LossInputError(
                    .invalidShape, field: "/\(name)", "`\(name)` has shape \(text(map.shape)) but \(text(expected)) is required")
            }
            for (i, y) in map.values.enumerated() where !(0..<classes).contains(y) {
                let index = multiIndex(i, shape: map.shape)
                throw LossInputError(
                    .invalidLabel, field: "/\(name)" + index.map { "/\($0)" }.joined(),
                    "`\(name)\(index.map { "[\($0)]" }.joined())` = \(y) is out of range [0, \(classes))")
            }
        case .targets(let targets):
            let expected = [samples, classes] + spatial
            guard targets.shape == expected else {
                throw LossInputError(
                    .invalidShape, field: "/targets", "`targets` has shape \(text(targets.shape)) but \(text(expected)) is required")
            }
            for (i, t) in targets.values.enumerated() where !(t >= 0 && t <= 1) {
                let index = multiIndex(i, shape: targets.shape)
                throw LossInputError(
                    .invalidTarget, field: "/targets" + index.map { "/\($0)" }.joined(),
                    "`targets\(index.map { "[\($0)]" }.joined())` must be in [0, 1]")
            }
        }
    }

    private static func text(_ shape: [Int]) -> String { shape.map { "[\($0)]" }.joined() }

    /// The multi-dimensional index of a flat row-major offset (for error pointers).
    public static func multiIndex(_ flat: Int, shape: [Int]) -> [Int] {
        var rest = flat
        var index = [Int](repeating: 0, count: shape.count)
        for d in stride(from: shape.count - 1, through: 0, by: -1) {
            index[d] = rest % shape[d]
            rest /= shape[d]
        }
        return index
    }

    private static func withTruth(
        _ truth: SegmentationTruth, _ body: (UnsafeBufferPointer<Int>?, UnsafeBufferPointer<Double>?) -> Void
    ) {
        switch truth {
        case .labels(let map): map.values.withUnsafeBufferPointer { body($0, nil) }
        case .targets(let targets): targets.values.withUnsafeBufferPointer { body(nil, $0) }
        }
    }

    // MARK: Softmax over C, pixel-major

    /// Pixels per block of the pixel-major loops (the block's C rows stay in cache).
    private static let block = 1024

    /// p = softmax over C at every pixel of z [N][C][S]: `exp(z − max)/Σ exp(z − max)`, the
    /// exponentials from the vectorised kernel of `TwoPassSoftmax` (exact 0 below 2^-1022, so
    /// logits of ±1e4 give probabilities of exactly 0 and 1).
    static func softmax(_ z: [Double], samples n: Int, classes: Int, pixels: Int) -> [Double] {
        var p = [Double](repeating: 0, count: z.count)
        let blocks = (pixels + block - 1) / block
        z.withUnsafeBufferPointer { z in
            p.withUnsafeMutableBufferPointer { p in
                Parallel.forEachRange(n * blocks, costPerRow: 8 * classes * block) { range in
                    let scratch = UnsafeMutablePointer<Double>.allocate(capacity: 2 * block)
                    defer { scratch.deallocate() }
                    let top = scratch, sum = scratch + block
                    for t in range {
                        let sample = t / blocks, start = (t % blocks) * block, width = min(block, pixels - start)
                        let zs = z.baseAddress! + sample * classes * pixels + start
                        let ps = p.baseAddress! + sample * classes * pixels + start
                        top.update(from: zs, count: width)
                        for c in 1..<classes {
                            let row = zs + c * pixels
                            for s in 0..<width where row[s] > top[s] { top[s] = row[s] }
                        }
                        sum.update(repeating: 0, count: width)
                        for c in 0..<classes {
                            let row = zs + c * pixels, out = ps + c * pixels
                            for s in 0..<width { out[s] = row[s] - top[s] }
                            lossd_exp_shifted_f64(out, Int64(width), 0, out)
                            for s in 0..<width { sum[s] += out[s] }
                        }
                        for c in 0..<classes {
                            let out = ps + c * pixels
                            for s in 0..<width { out[s] /= sum[s] }
                        }
                    }
                }
            }
        }
        return p
    }

    /// In place: g ← scale · p ⊙ (g − Σ_c p·g) at every pixel (the softmax's vector–Jacobian
    /// product; a class whose g is 0 still gets the coupling term).
    static func softmaxBackward(_ p: [Double], gradient g: inout [Double], samples n: Int, classes: Int, pixels: Int, scale: Double) {
        let blocks = (pixels + block - 1) / block
        p.withUnsafeBufferPointer { p in
            g.withUnsafeMutableBufferPointer { g in
                Parallel.forEachRange(n * blocks, costPerRow: 4 * classes * block) { range in
                    let dot = UnsafeMutablePointer<Double>.allocate(capacity: block)
                    defer { dot.deallocate() }
                    for t in range {
                        let sample = t / blocks, start = (t % blocks) * block, width = min(block, pixels - start)
                        let ps = p.baseAddress! + sample * classes * pixels + start
                        let gs = g.baseAddress! + sample * classes * pixels + start
                        dot.update(repeating: 0, count: width)
                        for c in 0..<classes {
                            let pr = ps + c * pixels, gr = gs + c * pixels
                            for s in 0..<width { dot[s] += pr[s] * gr[s] }
                        }
                        for c in 0..<classes {
                            let pr = ps + c * pixels, gr = gs + c * pixels
                            for s in 0..<width { gr[s] = scale * (pr[s] * (gr[s] - dot[s])) }
                        }
                    }
                }
            }
        }
    }
}
