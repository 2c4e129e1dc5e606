import LossdKernels

extension LossCatalogue {
    /// ldr_kl, aldr_kl, kd_kl, dhkd_logit, pass_at_n.
    static let robustAndDistillation: [LossDefinition] = []
}
