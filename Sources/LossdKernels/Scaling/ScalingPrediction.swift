#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Where to evaluate a law (predict, derived quantities, bootstrap intervals). Fields of
/// errors are relative to the query: `/x/i`, `/n/i`, `/d/i`, `/n_encoder/i`,
/// `/n_decoder/i`, `/lr/i`, `/steps/i` (see ``InputError/prefixed(_:)``).
public enum ScalingQuery: Sendable, Equatable {
    case powerLaw(x: [Double])
    case chinchilla(n: [Double], d: [Double])
    case nmt(nEncoder: [Double], nDecoder: [Double])
    /// A schedule of S learning rates; the law is evaluated at steps `W+1 … S` (W: the
    /// law's warm-up), or at the 1-based `steps` (strictly increasing in `[W+1, S]`).
    case lrAnnealing(lr: [Double], steps: [Int]?)

    public var kind: ScalingLawKind {
        switch self {
        case .powerLaw: .powerLaw
        case .chinchilla: .chinchilla
        case .nmt: .nmt
        case .lrAnnealing: .lrAnnealing
        }
    }
}

/// A checked query as two feature columns in the law's own units: power_law `a = x`;
/// chinchilla `a = N`, `b = D`; nmt `a = Ne`, `b = Nd`; lr_annealing `a = S1`, `b = S2`
/// (with `steps` the 1-based steps they belong to).
struct PreparedQuery: Sendable {
    let law: ScalingLaw
    var a: [Double] = []
    var b: [Double] = []
    var steps: [Int] = []

    init(law: ScalingLaw, _ query: ScalingQuery) throws(ScalingInputError) {
        guard query.kind == law.kind else {
            throw ScalingInputError(.lawMismatch, field: nil, "a \(query.kind.rawValue) query for a \(law.kind.rawValue) law")
        }
        self.law = law
        func sizes(_ x: [Double], _ xn: String, _ y: [Double]?, _ yn: String) throws(ScalingInputError) {
            guard x.count <= ScalingLimits.maxPoints else {
                throw ScalingInputError(.tooLarge, field: "/\(xn)", "at most \(ScalingLimits.maxPoints) points, got \(x.count)")
            }
            if let y { try ScalingCheck.sameLength(y.count, x.count, field: "/\(yn)", "\(xn) and \(yn) lengths differ") }
            try ScalingCheck.positive(x, xn) { "/\(xn)/\($0)" }
            if let y { try ScalingCheck.positive(y, yn) { "/\(yn)/\($0)" } }
        }
        switch (law, query) {
        case (_, .powerLaw(let x)):
            try sizes(x, "x", nil, "")
            a = x
        case (_, .chinchilla(let n, let d)):
            try sizes(n, "n", d, "d")
            (a, b) = (n, d)
        case (_, .nmt(let ne, let nd)):
            try sizes(ne, "n_encoder", nd, "n_decoder")
            (a, b) = (ne, nd)
        case (.lrAnnealing(let decay, let w), .lrAnnealing(let lr, let given)):
            guard lr.count <= ScalingLimits.maxCurveSteps else {
                throw ScalingInputError(.tooLarge, field: "/lr", "at most \(ScalingLimits.maxCurveSteps) steps, got \(lr.count)")
            }
            try LearningRateAreas.checkRates(lr) { "/lr/\($0)" }
            if let given {
                try LearningRateAreas.checkSteps(given, warmupSteps: w, scheduleLength: lr.count, base: "")
                steps = given
            } else {
                steps = lr.count > w ? Array((w + 1)...lr.count) : []
            }
            let areas = LearningRateAreas(unchecked: lr, decay: decay, warmupSteps: w)
            a = steps.map { areas.s1[$0 - w - 1] }
            b = steps.map { areas.s2[$0 - w - 1] }
            if let first = a.first, !(first > 0) {
                throw ScalingInputError(.invalidSchedule, field: "/lr", "the forward area S1 is 0 at step \(steps[0]); the law is undefined there")
            }
        default:
            throw ScalingInputError(.lawMismatch, field: nil, "a \(query.kind.rawValue) query for a \(law.kind.rawValue) law")
        }
    }

    /// The law with parameter values `p` (``ScalingLaw/parameterNames`` order) at every point.
    func evaluate(_ p: [Double]) -> [Double] {
        var out = [Double](repeating: 0, count: a.count)
        for i in 0..<a.count { out[i] = Self.loss(law, p, a[i], b.isEmpty ? 0 : b[i]) }
        return out
    }

    /// One prediction in the law's own form (docs/scaling.md, "The laws").
    @inline(__always) static func loss(_ law: ScalingLaw, _ p: [Double], _ a: Double, _ b: Double) -> Double {
        switch law {
        case .powerLaw: p[0] + pow(p[1] / a, p[2])
        case .chinchilla: p[0] + p[1] * pow(a, -p[3]) + p[2] * pow(b, -p[4])
        case .nmt(let re, let rd): p[1] * pow(re / a, p[2]) * pow(rd / b, p[3]) + p[0]
        case .lrAnnealing: p[0] + p[1] * pow(a, -p[2]) - p[3] * b
        }
    }
}

extension ScalingModel {
    /// The predicted loss at every point of `query` (for lr_annealing: at every step
    /// `W+1 … S` of the schedule, or at its `steps`).
    public func predict(_ query: ScalingQuery) throws(ScalingInputError) -> [Double] {
        try PreparedQuery(law: law, query).evaluate(values)
    }
}
