import LossdKernels

extension LossCatalogue {
    /// comp_sum, generalized_cross_entropy, mae, z_loss, log_z_penalty, poly1.
    static let marginFamily: [LossDefinition] = []
}
