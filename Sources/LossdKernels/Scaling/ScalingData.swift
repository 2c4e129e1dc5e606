#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// One training curve for `lr_annealing`: the learning rate of every step and the loss,
/// either at every step (dense: `loss.count == lr.count`, the first W values ignored) or
/// at the 1-based `steps` (sparse: strictly increasing in `[W+1, S]`).
public struct LossCurve: Sendable, Equatable {
    public var lr: [Double]
    public var loss: [Double]
    public var steps: [Int]?

    public init(lr: [Double], loss: [Double], steps: [Int]? = nil) {
        self.lr = lr
        self.loss = loss
        self.steps = steps
    }
}

/// Posted observations of one law. Fields of errors name the request's data layout:
/// `/data/i/x`, `/data/i/loss`, ..., `/data/c/lr/j`, `/data/c/steps/j`.
public enum ScalingData: Sendable, Equatable {
    case powerLaw(x: [Double], loss: [Double])
    case chinchilla(n: [Double], d: [Double], loss: [Double])
    case nmt(nEncoder: [Double], nDecoder: [Double], loss: [Double])
    case lrAnnealing([LossCurve])

    public var kind: ScalingLawKind {
        switch self {
        case .powerLaw: .powerLaw
        case .chinchilla: .chinchilla
        case .nmt: .nmt
        case .lrAnnealing: .lrAnnealing
        }
    }
}

/// Validated data in the form the objective reads: contiguous feature columns, log losses
/// and weights (docs/scaling.md, "Objective").
///
/// - power_law: `u = log x`
/// - chinchilla: `u = log N`, `v = log D`
/// - nmt: `u = log(Ne_ref/Ne)`, `v = log(Nd_ref/Nd)`
/// - lr_annealing: `u = log S1`, `v = S2`; `group` = the curve of each point
struct ScalingProblem: Sendable {
    let law: ScalingLaw
    let delta: Double
    var u: [Double]
    var v: [Double]
    var loss: [Double]
    var logLoss: [Double]
    var weights: [Double]
    var group: [Int]
    var groups: Int

    var count: Int { loss.count }

    /// Checks `data` (and `weights`, one per fitted point) for `law` and builds the columns.
    init(law: ScalingLaw, delta: Double, data: ScalingData, weights: [Double]?) throws(ScalingInputError) {
        guard data.kind == law.kind else {
            throw ScalingInputError(.lawMismatch, field: "/data", "data of \(data.kind.rawValue) given to \(law.kind.rawValue)")
        }
        self.law = law
        self.delta = delta
        u = []
        v = []
        group = []
        groups = 1
        let lossPath: (Int) -> String = { "/data/\($0)/loss" }
        func columns(_ a: [Double], _ an: String, _ b: [Double]?, _ bn: String, _ loss: [Double]) throws(ScalingInputError) {
            guard loss.count <= ScalingLimits.maxPoints else {
                throw ScalingInputError(.tooLarge, field: "/data", "at most \(ScalingLimits.maxPoints) points, got \(loss.count)")
            }
            try ScalingCheck.sameLength(a.count, loss.count, field: "/data", "\(an) and loss lengths differ")
            if let b { try ScalingCheck.sameLength(b.count, loss.count, field: "/data", "\(bn) and loss lengths differ") }
            try ScalingCheck.positive(a, an) { "/data/\($0)/\(an)" }
            if let b { try ScalingCheck.positive(b, bn) { "/data/\($0)/\(bn)" } }
            try ScalingCheck.positive(loss, "loss", path: lossPath)
        }
        switch (law, data) {
        case (.powerLaw, .powerLaw(let x, let l)):
            try columns(x, "x", nil, "", l)
            u = x.map { log($0) }
            loss = l
        case (.chinchilla, .chinchilla(let n, let d, let l)):
            try columns(n, "n", d, "d", l)
            u = n.map { log($0) }
            v = d.map { log($0) }
            loss = l
        case (.nmt(let re, let rd), .nmt(let ne, let nd, let l)):
            try columns(ne, "n_encoder", nd, "n_decoder", l)
            let le = log(re), ld = log(rd)
            u = ne.map { le - log($0) }
            v = nd.map { ld - log($0) }
            loss = l
        case (.lrAnnealing(let decay, let w), .lrAnnealing(let curves)):
            loss = []
            try Self.curveColumns(curves, decay: decay, warmupSteps: w, u: &u, v: &v, loss: &loss, group: &group)
            groups = curves.count
        default:
            throw ScalingInputError(.lawMismatch, field: "/data", "data of \(data.kind.rawValue) given to \(law.kind.rawValue)")
        }
        guard loss.count >= law.fittedCount + 1 else {
            throw ScalingInputError(
                .tooFewPoints, field: "/data",
                "\(law.kind.rawValue) fits \(law.fittedCount) parameters and needs at least \(law.fittedCount + 1) points, got \(loss.count)")
        }
        logLoss = loss.map { log($0) }
        if let weights {
            try ScalingCheck.sameLength(weights.count, loss.count, field: "/weights", "one weight per fitted point")
            try ScalingCheck.nonNegative(weights, "weights") { "/weights/\($0)" }
            guard weights.contains(where: { $0 > 0 }) else {
                throw ScalingInputError(.nonPositive, field: "/weights", "at least one weight must be > 0")
            }
            self.weights = weights
        } else {
            self.weights = [Double](repeating: 1, count: loss.count)
        }
    }

    /// Columns of lr_annealing curves: the areas once per curve, read at the fitted steps.
    private static func curveColumns(
        _ curves: [LossCurve], decay: Double, warmupSteps w: Int,
        u: inout [Double], v: inout [Double], loss: inout [Double], group: inout [Int]
    ) throws(ScalingInputError) {
        var steps = 0, points = 0
        for c in curves {
            steps += c.lr.count
            points += c.loss.count
        }
        guard steps <= ScalingLimits.maxCurveSteps else {
            throw ScalingInputError(.tooLarge, field: "/data", "at most \(ScalingLimits.maxCurveSteps) curve steps in total, got \(steps)")
        }
        guard points <= ScalingLimits.maxPoints else {
            throw ScalingInputError(.tooLarge, field: "/data", "at most \(ScalingLimits.maxPoints) points, got \(points)")
        }
        u.reserveCapacity(points)
        v.reserveCapacity(points)
        loss.reserveCapacity(points)
        group.reserveCapacity(points)
        for (c, curve) in curves.enumerated() {
            let base = "/data/\(c)"
            try LearningRateAreas.checkRates(curve.lr) { "\(base)/lr/\($0)" }
            let fittedLoss: ArraySlice<Double>
            let indices: [Int]
            if let sparse = curve.steps {
                try ScalingCheck.sameLength(sparse.count, curve.loss.count, field: "\(base)/loss", "steps and loss lengths differ")
                try LearningRateAreas.checkSteps(sparse, warmupSteps: w, scheduleLength: curve.lr.count, base: base)
                indices = sparse.map { $0 - w - 1 }
                fittedLoss = curve.loss[...]
            } else {
                try ScalingCheck.sameLength(curve.loss.count, curve.lr.count, field: "\(base)/loss", "lr and loss lengths differ")
                indices = Array(0..<max(0, curve.lr.count - w))
                fittedLoss = curve.loss.dropFirst(w)
            }
            // Warm-up losses of a dense curve are ignored, so only fitted ones are checked.
            for (j, l) in zip(fittedLoss.indices, fittedLoss) {
                guard l.isFinite else { throw ScalingInputError(.nonFinite, field: "\(base)/loss/\(j)", "loss must be finite, got \(l)") }
                guard l > 0 else { throw ScalingInputError(.nonPositive, field: "\(base)/loss/\(j)", "loss must be > 0, got \(l)") }
            }
            guard let first = indices.first else { continue }
            let areas = LearningRateAreas(unchecked: curve.lr, decay: decay, warmupSteps: w)
            guard areas.s1[first] > 0 else {
                throw ScalingInputError(
                    .invalidSchedule, field: "\(base)/lr",
                    "the forward area S1 must be > 0 at every fitted step; it is 0 at step \(first + w + 1)")
            }
            for i in indices {
                u.append(log(areas.s1[i]))
                v.append(areas.s2[i])
                group.append(c)
            }
            loss.append(contentsOf: fittedLoss)
        }
    }

    /// The problem restricted to points with `multiplicity[i] > 0`, each weighted by it
    /// (a bootstrap resample without copying points drawn 0 times).
    func resampled(multiplicity: [Int]) -> ScalingProblem {
        var copy = self
        copy.u = []
        copy.v = []
        copy.loss = []
        copy.logLoss = []
        copy.weights = []
        copy.group = []
        for i in 0..<count where multiplicity[i] > 0 {
            copy.u.append(u[i])
            if !v.isEmpty { copy.v.append(v[i]) }
            copy.loss.append(loss[i])
            copy.logLoss.append(logLoss[i])
            copy.weights.append(weights[i] * Double(multiplicity[i]))
            if !group.isEmpty { copy.group.append(group[i]) }
        }
        return copy
    }
}
