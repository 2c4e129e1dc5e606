@testable import LossdService

extension SampleInputs {
    /// Random valid inputs for info_nce, nt_xent, supcon, cacr (loss name → generator).
    static let embedding: [String: Generator] = [:]
}
