#if canImport(Glibc)
    import Glibc
#endif

/// Hinton knowledge distillation (Hinton, Vinyals, Dean 2015; docs/losses.md §10.1):
/// ℓ = α·T²·KL(p^T ‖ q^T) + (1 − α)·CE(z, y), with teacher p^T = softmax(t/T) and student
/// q^T = softmax(z/T). The T² keeps the soft term's gradient scale independent of T.
public enum KDKL {
    public struct Parameters: Sendable {
        /// Temperature T > 0.
        public var temperature: Double
        /// Weight α ∈ [0, 1] of the soft (KL) term; 1 − α weighs the hard-label CE.
        public var alpha: Double

        public init(temperature: Double = 4, alpha: Double = 0.9) {
            self.temperature = temperature
            self.alpha = alpha
        }
    }

    /// Per row value and gradient w.r.t. the student logits,
    /// `α·T·(q^T − p^T) + (1 − α)·(softmax(z) − e_y)`. `labels` are required when α < 1 and
    /// validated (and their CE term included with weight 1 − α) whenever given.
    /// Extras: `kl` [N] (KL(p^T ‖ q^T), 0·log 0 = 0) and `ce` [N] (0 without labels).
    public static func evaluate(
        logits: Matrix, teacherLogits: Matrix, labels: [Int]?, parameters: Parameters, gradient: Bool
    ) throws(LossInputError) -> LossOutput {
        let (n, c) = try Validate.sameShape(teacherLogits, name: "teacher_logits", as: logits)
        let alpha = parameters.alpha, t = parameters.temperature
        if alpha < 1 && labels == nil {
            throw LossInputError(.missingField, field: "/labels", "`labels` is required")
        }
        if let labels { try Validate.labels(labels, rows: n, classes: c) }

        var values = [Double](repeating: 0, count: n)
        var kls = [Double](repeating: 0, count: n)
        var ces = [Double](repeating: 0, count: n)
        var grad = [Double](repeating: 0, count: gradient ? n * c : 0)
        withMutableBuffers(&values, &kls, &ces, &grad) { valuesOut, klOut, ceOut, gradOut in
            withBuffers(logits.values, teacherLogits.values) { zAll, tAll in
                Parallel.forEachRange(n, costPerRow: 6 * c) { rows in
                    // Workspace: the student's and the teacher's log-softmaxes, scaled logits.
                    withScratch(c) { lq, lp, scaled in
                        for r in rows {
                            let z = zAll.row(r, width: c)
                            TwoPassSoftmax.logSoftmax(z, temperature: t, scratch: scaled, into: lq)
                            TwoPassSoftmax.logSoftmax(tAll.row(r, width: c), temperature: t, scratch: scaled, into: lp)
                            // The exponentials in vector passes (CLossdKernels), not one libm
                            // call an element: p^T into `scaled` (free once both log-softmaxes
                            // are done), then q^T over lq in place once the KL has read it.
                            TwoPassSoftmax.expShifted(UnsafeBufferPointer(lp), shift: 0, into: scaled)
                            var kl = 0.0
                            for k in 0..<c where scaled[k] > 0 { kl += scaled[k] * (lp[k] - lq[k]) }
                            klOut[r] = kl
                            var value = alpha * t * t * kl
                            let base = r * c
                            if gradient {
                                TwoPassSoftmax.expShifted(UnsafeBufferPointer(lq), shift: 0, into: lq)
                                for k in 0..<c { gradOut[base + k] = alpha * t * (lq[k] - scaled[k]) }
                            }
                            if let labels {
                                // Hard-label CE at temperature 1; lq is reused for log softmax(z).
                                let y = labels[r]
                                TwoPassSoftmax.logSoftmax(z, into: lq)
                                let ce = -lq[y]
                                ceOut[r] = ce
                                value += (1 - alpha) * ce
                                if gradient {
                                    TwoPassSoftmax.expShifted(UnsafeBufferPointer(lq), shift: 0, into: lq)
                                    for k in 0..<c {
                                        gradOut[base + k] += (1 - alpha) * (lq[k] - (k == y ? 1 : 0))
                                    }
                                }
                            }
                            valuesOut[r] = value
                        }
                    }
                }
            }
        }
        guard values.allSatisfy(\.isFinite) else { throw .overflow }
        var output = LossOutput(
            values: values, denominators: [Double](repeating: 1, count: n), extras: ["kl": .vector(kls), "ce": .vector(ces)])
        if gradient { output.gradients["logits"] = Tensor(shape: [n, c], values: grad) }
        return output
    }
}
