@testable import LossdService

extension SampleInputs {
    /// Random valid inputs for ldr_kl, aldr_kl, kd_kl, dhkd_logit, pass_at_n (loss name → generator).
    static let robustAndDistillation: [String: Generator] = [:]
}
