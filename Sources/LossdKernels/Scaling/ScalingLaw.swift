#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The four laws lossd fits (docs/scaling.md, "The laws"), by their request name.
public enum ScalingLawKind: String, Sendable, CaseIterable, Equatable {
    /// `L(x) = L_inf + (x0/x)^alpha` (Henighan et al. 2020; Kaplan et al. 2020 without L_inf).
    case powerLaw = "power_law"
    /// `L(N, D) = E + A/N^alpha + B/D^beta` (Hoffmann et al. 2022, approach 3).
    case chinchilla
    /// `L(Ne, Nd) = beta·(Ne_ref/Ne)^pe·(Nd_ref/Nd)^pd + L_inf` (Ghorbani et al. 2021).
    case nmt
    /// `L(s) = L0 + A·S1(s)^(−alpha) − C·S2(s)` (Tissue et al. 2024).
    case lrAnnealing = "lr_annealing"

    /// The kind named `name`, or ``ScalingRejection/unknownLaw`` at `/law`.
    public static func named(_ name: String) throws(ScalingInputError) -> ScalingLawKind {
        guard let kind = ScalingLawKind(rawValue: name) else {
            let known = allCases.map(\.rawValue).joined(separator: ", ")
            throw ScalingInputError(.unknownLaw, field: "/law", "unknown law '\(name)'; known: \(known)")
        }
        return kind
    }

    /// The reported parameter names, in the order of ``ScalingModel/values``.
    public var parameterNames: [String] {
        switch self {
        case .powerLaw: ["L_inf", "x0", "alpha"]
        case .chinchilla: ["E", "A", "B", "alpha", "beta"]
        case .nmt: ["L_inf", "beta", "pe", "pd"]
        case .lrAnnealing: ["L0", "A", "alpha", "C"]
        }
    }
}

/// The options of a request (`params`), before defaults that depend on the data are
/// filled in by ``ScalingLaw/resolve(_:options:data:)``.
public struct ScalingOptions: Sendable, Equatable {
    /// power_law: fit `L_inf` (true) or fix it at 0 (false, Kaplan et al.'s pure power law).
    public var irreducible = true
    /// nmt: reference sizes (> 0); nil = the geometric mean of the posted sizes.
    public var nEncoderRef: Double? = nil
    public var nDecoderRef: Double? = nil
    /// lr_annealing: momentum decay λ ∈ [0, 1) of the annealing area.
    public var decay = 0.999
    /// lr_annealing: warm-up steps W ≥ 0, outside both areas and never fitted.
    public var warmupSteps = 0
    /// Huber threshold δ > 0 on log residuals.
    public var huberDelta = 1e-3
}

extension ScalingOptions {
    /// Every option at its default: start here and set the ones a request names.
    public static let defaults = ScalingOptions()
}

/// A law with its (non-fitted) options resolved: what a fit answers and a stored law keeps.
public enum ScalingLaw: Sendable, Equatable {
    case powerLaw(irreducible: Bool)
    case chinchilla
    case nmt(nEncoderRef: Double, nDecoderRef: Double)
    case lrAnnealing(decay: Double, warmupSteps: Int)

    public var kind: ScalingLawKind {
        switch self {
        case .powerLaw: .powerLaw
        case .chinchilla: .chinchilla
        case .nmt: .nmt
        case .lrAnnealing: .lrAnnealing
        }
    }

    /// Reported parameter names (power_law always reports `L_inf`, 0 when not fitted).
    public var parameterNames: [String] { kind.parameterNames }

    /// How many parameters are fitted (the length of θ).
    public var fittedCount: Int {
        switch self {
        case .powerLaw(let irreducible): irreducible ? 3 : 2
        case .chinchilla: 5
        case .nmt, .lrAnnealing: 4
        }
    }

    /// The law of `kind` with `options` checked and defaults filled in from `data`
    /// (nmt's reference sizes: the geometric means of the posted sizes). `data` may be nil
    /// for a law that needs none (every law but an nmt without both references).
    public static func resolve(
        _ kind: ScalingLawKind, options: ScalingOptions, data: ScalingData?
    ) throws(ScalingInputError) -> ScalingLaw {
        guard options.huberDelta.isFinite, options.huberDelta > 0 else {
            throw ScalingInputError(.invalidOption, field: "/params/huber_delta", "huber_delta must be finite and > 0, got \(options.huberDelta)")
        }
        switch kind {
        case .powerLaw:
            return .powerLaw(irreducible: options.irreducible)
        case .chinchilla:
            return .chinchilla
        case .nmt:
            func reference(_ given: Double?, _ name: String, _ sizes: [Double]?) throws(ScalingInputError) -> Double {
                if let given {
                    guard given.isFinite, given > 0 else {
                        throw ScalingInputError(.invalidOption, field: "/params/\(name)", "\(name) must be finite and > 0, got \(given)")
                    }
                    return given
                }
                guard let sizes, !sizes.isEmpty else {
                    throw ScalingInputError(.invalidOption, field: "/params/\(name)", "\(name) is needed when there are no posted sizes")
                }
                var sum = 0.0
                for s in sizes { sum += log(s) }
                return exp(sum / Double(sizes.count))
            }
            var ne: [Double]?, nd: [Double]?
            if case .nmt(let e, let d, _)? = data {
                ne = e
                nd = d
                // Sizes are validated before they are averaged.
                try ScalingCheck.positive(e, "n_encoder") { "/data/\($0)/n_encoder" }
                try ScalingCheck.positive(d, "n_decoder") { "/data/\($0)/n_decoder" }
            }
            return .nmt(
                nEncoderRef: try reference(options.nEncoderRef, "n_encoder_ref", ne),
                nDecoderRef: try reference(options.nDecoderRef, "n_decoder_ref", nd))
        case .lrAnnealing:
            guard options.decay.isFinite, options.decay >= 0, options.decay < 1 else {
                throw ScalingInputError(.invalidOption, field: "/params/decay", "decay must be in [0, 1), got \(options.decay)")
            }
            guard options.warmupSteps >= 0 else {
                throw ScalingInputError(.invalidOption, field: "/params/warmup_steps", "warmup_steps must be ≥ 0, got \(options.warmupSteps)")
            }
            return .lrAnnealing(decay: options.decay, warmupSteps: options.warmupSteps)
        }
    }

    // MARK: θ ↔ parameters (docs/scaling.md, "Parameterisation")

    /// Bounds of α, β (chinchilla) and pe, pd (nmt) while fitting.
    public static let exponentBounds: ClosedRange<Double> = 1e-3...5

    /// Indices of θ that are bounded to ``exponentBounds``.
    var boundedIndices: [Int] {
        switch self {
        case .chinchilla: [3, 4]
        case .nmt: [2, 3]
        default: []
        }
    }

    /// The reported parameters of the unconstrained vector θ.
    public func values(theta t: [Double]) -> [Double] {
        switch self {
        case .powerLaw(let irreducible):
            irreducible ? [exp(t[0]), exp(t[1]), exp(t[2])] : [0, exp(t[0]), exp(t[1])]
        case .chinchilla: [exp(t[0]), exp(t[1]), exp(t[2]), t[3], t[4]]
        case .nmt: [exp(t[0]), exp(t[1]), t[2], t[3]]
        case .lrAnnealing: [t[0], exp(t[1]), exp(t[2]), exp(t[3])]
        }
    }

    /// θ of reported parameters; nil where a logged parameter is 0 (no finite θ).
    public func theta(values v: [Double]) -> [Double]? {
        let t: [Double]
        switch self {
        case .powerLaw(let irreducible): t = irreducible ? [log(v[0]), log(v[1]), log(v[2])] : [log(v[1]), log(v[2])]
        case .chinchilla: t = [log(v[0]), log(v[1]), log(v[2]), v[3], v[4]]
        case .nmt: t = [log(v[0]), log(v[1]), v[2], v[3]]
        case .lrAnnealing: t = [v[0], log(v[1]), log(v[2]), log(v[3])]
        }
        return t.allSatisfy(\.isFinite) ? t : nil
    }
}

/// A law with parameter values: the answer of a fit, or a stored law to predict with.
public struct ScalingModel: Sendable, Equatable {
    public let law: ScalingLaw
    /// Values in ``ScalingLaw/parameterNames`` order.
    public let values: [Double]

    /// A model from values in ``ScalingLaw/parameterNames`` order, checked against the
    /// law's domains (`L_inf, E, C ≥ 0`; `x0, A, B, beta, alpha, pe, pd > 0`; `L0` finite;
    /// power_law without irreducible needs `L_inf = 0`).
    public init(law: ScalingLaw, values: [Double]) throws(ScalingInputError) {
        let names = law.parameterNames
        guard values.count == names.count else {
            throw ScalingInputError(.lengthMismatch, field: "/params", "\(law.kind.rawValue) has \(names.count) parameters, got \(values.count)")
        }
        let nonNegative: Set<String> = ["L_inf", "E", "C"]
        for (name, v) in zip(names, values) {
            let field = "/params/\(name)"
            guard v.isFinite else { throw ScalingInputError(.nonFinite, field: field, "\(name) must be finite, got \(v)") }
            if name == "L0" { continue }
            if nonNegative.contains(name) {
                guard v >= 0 else { throw ScalingInputError(.invalidOption, field: field, "\(name) must be ≥ 0, got \(v)") }
            } else if !(v > 0) {
                throw ScalingInputError(.invalidOption, field: field, "\(name) must be > 0, got \(v)")
            }
        }
        if case .powerLaw(irreducible: false) = law, values[0] != 0 {
            throw ScalingInputError(.invalidOption, field: "/params/L_inf", "L_inf must be 0 when irreducible is false")
        }
        self.law = law
        self.values = values
    }

    /// A model from named values (missing names are an error; `L_inf` may be left out of a
    /// power_law without irreducible).
    public init(law: ScalingLaw, named: [String: Double]) throws(ScalingInputError) {
        var values: [Double] = []
        for name in law.parameterNames {
            if let v = named[name] {
                values.append(v)
            } else if case .powerLaw(irreducible: false) = law, name == "L_inf" {
                values.append(0)
            } else {
                throw ScalingInputError(.invalidOption, field: "/params/\(name)", "missing parameter \(name)")
            }
        }
        try self.init(law: law, values: values)
    }

    /// Unchecked, for values that come out of a fit.
    init(fitted law: ScalingLaw, values: [Double]) {
        self.law = law
        self.values = values
    }

    /// The value of the parameter `name`, or nil for a name the law does not have.
    public subscript(name: String) -> Double? {
        guard let i = law.parameterNames.firstIndex(of: name) else { return nil }
        return values[i]
    }

    /// (name, value) pairs in order.
    public var named: [(name: String, value: Double)] { Array(zip(law.parameterNames, values)) }
}
