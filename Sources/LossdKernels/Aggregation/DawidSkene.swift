#if canImport(Glibc)
    import Glibc
#endif

/// Dawid & Skene (1979) EM as crowd-kit `DawidSkene` runs it (docs/aggregation.md §3):
/// majority-vote initialisation, error matrices floored at 1e−10 on observed
/// (annotator, label) pairs, and a signed stop test on the ELBO per annotation.
///
/// Work is split by items (E-step, ELBO) and by annotators (M-step); each item's and each
/// annotator's sums run in annotation order on one thread, so results do not depend on
/// the number of threads.
extension Aggregation {
    public struct DawidSkeneOptions: Sendable {
        public var maxIterations = 100
        public var tolerance = 1e-5
        public init(maxIterations: Int = 100, tolerance: Double = 1e-5) {
            self.maxIterations = maxIterations
            self.tolerance = tolerance
        }
    }

    static let dsEpsilon = 1e-10

    public static func dawidSkene(_ data: CrowdAnnotations, options: DawidSkeneOptions = .init()) -> AggregationResult {
        let p = data.observedCount
        let nItems = data.itemCount, nWorkers = data.annotatorCount
        let columns = data.labels.map { Int32(data.columnOfClass[Int($0)]) }
        let annotatedItems = (0..<nItems).filter { data.annotated[$0] }
        let eps = dsEpsilon

        // Init: vote fractions over L.
        var q = [Double](repeating: 0, count: nItems * p)
        for a in 0..<data.count { q[Int(data.items[a]) * p + Int(columns[a])] += 1 }
        for t in annotatedItems {
            var s = 0.0
            for c in 0..<p { s += q[t * p + c] }
            for c in 0..<p { q[t * p + c] /= s }
        }
        // present[w][l]: the annotator used label l.
        var present = [Bool](repeating: false, count: nWorkers * p)
        for a in 0..<data.count { present[Int(data.annotators[a]) * p + Int(columns[a])] = true }

        // Offsets in CSR order, so the passes stream through contiguous arrays:
        // by item, the row e[w_a][l_a][·]; by annotator, the row l_a of e[w] and the row q[t_a].
        let itemStart = data.itemStart, annotatorStart = data.annotatorStart
        let errorRowByItem = data.byItem.map { a in Int32((Int(data.annotators[Int(a)]) * p + Int(columns[Int(a)])) * p) }
        let labelRowByAnnotator = data.byAnnotator.map { a in Int32(Int(columns[Int(a)]) * p) }
        let itemRowByAnnotator = data.byAnnotator.map { a in Int32(Int(data.items[Int(a)]) * p) }

        var errors = [Double](repeating: 0, count: nWorkers * p * p)  // e[w][l][c]
        var logErrors = errors
        var prior = [Double](repeating: 0, count: p)

        func updatePrior() {
            for c in 0..<p { prior[c] = 0 }
            for t in annotatedItems { for c in 0..<p { prior[c] += q[t * p + c] } }
            for c in 0..<p { prior[c] /= Double(annotatedItems.count) }
        }

        func mStep() {
            let perWorker = max(1, data.count / max(1, nWorkers)) * p
            errors.withUnsafeMutableBufferPointer { e in
                logErrors.withUnsafeMutableBufferPointer { le in
                    q.withUnsafeBufferPointer { qp in
                        Parallel.forEachRange(nWorkers, costPerRow: perWorker) { workers in
                            var colSum = [Double](repeating: 0, count: p)
                            for w in workers {
                                let base = w * p * p
                                for i in base..<(base + p * p) { e[i] = 0 }
                                for j in annotatorStart[w]..<annotatorStart[w + 1] {
                                    let row = base + Int(labelRowByAnnotator[j])
                                    let qt = Int(itemRowByAnnotator[j])
                                    for c in 0..<p { e[row + c] += qp[qt + c] }
                                }
                                for c in 0..<p { colSum[c] = 0 }
                                for l in 0..<p where present[w * p + l] {
                                    for c in 0..<p {
                                        let v = max(e[base + l * p + c], eps)
                                        e[base + l * p + c] = v
                                        colSum[c] += v
                                    }
                                }
                                for l in 0..<p where present[w * p + l] {
                                    for c in 0..<p {
                                        let v = e[base + l * p + c] / colSum[c]
                                        e[base + l * p + c] = v
                                        le[base + l * p + c] = log(v)
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }

        func eStep() {
            let logPrior = prior.map { log(max($0, eps)) }
            let perItem = max(1, data.count / max(1, nItems)) * p
            q.withUnsafeMutableBufferPointer { qp in
                logErrors.withUnsafeBufferPointer { le in
                    Parallel.forEachRange(nItems, costPerRow: perItem) { range in
                        for t in range where itemStart[t + 1] > itemStart[t] {
                            let row = t * p
                            for c in 0..<p { qp[row + c] = logPrior[c] }
                            for j in itemStart[t]..<itemStart[t + 1] {
                                let src = Int(errorRowByItem[j])
                                for c in 0..<p { qp[row + c] += le[src + c] }
                            }
                            var top = -Double.infinity
                            for c in 0..<p { top = max(top, qp[row + c]) }
                            var s = 0.0
                            for c in 0..<p {
                                let v = exp(qp[row + c] - top)
                                qp[row + c] = v
                                s += v
                            }
                            for c in 0..<p { qp[row + c] /= s }
                        }
                    }
                }
            }
        }

        func elbo() -> Double {
            let logPrior = prior.map { log(max($0, eps)) }
            let perItem = max(1, data.count / max(1, nItems)) * p
            var partial = [Double](repeating: 0, count: nItems)
            partial.withUnsafeMutableBufferPointer { out in
                q.withUnsafeBufferPointer { qp in
                    logErrors.withUnsafeBufferPointer { le in
                        Parallel.forEachRange(nItems, costPerRow: perItem) { range in
                            for t in range where itemStart[t + 1] > itemStart[t] {
                                let row = t * p
                                var joint = 0.0
                                for j in itemStart[t]..<itemStart[t + 1] {
                                    let src = Int(errorRowByItem[j])
                                    for c in 0..<p { joint += qp[row + c] * (le[src + c] + logPrior[c]) }
                                }
                                var entropy = 0.0
                                for c in 0..<p {
                                    let v = max(qp[row + c], eps)
                                    entropy -= v * log(v)
                                }
                                out[t] = joint + entropy
                            }
                        }
                    }
                }
            }
            return partial.reduce(0, +) / Double(data.count)
        }

        updatePrior()
        mStep()
        var previous = -Double.infinity
        var converged = false
        var iterations = 0
        for it in stride(from: 1, through: options.maxIterations, by: 1) where !Cancellation.isCancelled {
            iterations = it
            eStep()
            updatePrior()
            mStep()
            let current = elbo()
            if current - previous < options.tolerance {
                converged = true
                break
            }
            previous = current
        }

        // Expand to all K classes.
        let k = data.numClasses
        let labelsL = data.observedLabels
        var soft = Matrix(zeros: nItems, k)
        for t in annotatedItems { for (j, c) in labelsL.enumerated() { soft[t, c] = q[t * p + j] } }
        let hard = finish(&soft, data)
        var priors = [Double](repeating: 0, count: k)
        for (j, c) in labelsL.enumerated() { priors[c] = prior[j] }
        var confusion = [Double](repeating: 0, count: nWorkers * k * k)  // [w][true c][observed l]
        var skill = [Double](repeating: 0, count: nWorkers)
        for w in 0..<nWorkers {
            for (li, l) in labelsL.enumerated() where present[w * p + li] {
                for (ci, c) in labelsL.enumerated() {
                    confusion[(w * k + c) * k + l] = errors[(w * p + li) * p + ci]
                }
            }
            var s = 0.0
            for c in labelsL { s += priors[c] * confusion[(w * k + c) * k + c] }
            skill[w] = s
        }
        var result = AggregationResult(soft: soft, labels: hard, skill: skill, iterations: iterations, converged: converged)
        result.confusion = Tensor(shape: [nWorkers, k, k], values: confusion)
        result.priors = priors
        return result
    }
}
