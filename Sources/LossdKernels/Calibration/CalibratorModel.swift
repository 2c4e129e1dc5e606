/// One fitted number or array of a calibrator, as stored and served (docs/calibration.md §3:
/// a calibrator's stored params are exactly its fitted numbers).
public enum CalibratorValue: Sendable, Equatable {
    case number(Double)
    case vector([Double])
    case matrix(Matrix)
    /// Arrays of different lengths (e.g. isotonic breakpoints per class).
    case rows([[Double]])
    case text(String)
}

/// A fitted post-hoc calibrator: its method, the number of classes it was fitted for, and
/// its parameters by name. Pure data: fitting and applying live in each method's file.
public struct CalibratorModel: Sendable, Equatable {
    public let method: String
    public let classes: Int
    public var parameters: [String: CalibratorValue]

    public init(method: String, classes: Int, parameters: [String: CalibratorValue]) {
        self.method = method
        self.classes = classes
        self.parameters = parameters
    }
}

/// How a fit went: optimiser iterations, convergence, and method-specific notes
/// (e.g. `at_bound` for a temperature pinned at its limit).
public struct FitReport: Sendable, Equatable {
    public var iterations: Int
    public var converged: Bool
    public var notes: [String: CalibratorValue]

    public init(iterations: Int, converged: Bool, notes: [String: CalibratorValue] = [:]) {
        self.iterations = iterations
        self.converged = converged
        self.notes = notes
    }
}
