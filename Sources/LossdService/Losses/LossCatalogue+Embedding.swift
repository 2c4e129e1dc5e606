import LossdKernels

extension LossCatalogue {
    /// info_nce, nt_xent, supcon, cacr.
    static let embedding: [LossDefinition] = []
}
