import LossdKernels

extension CalibratorCatalogue {
    /// temperature, vector, matrix, dirichlet, ensemble_temperature, correctness_aware.
    static let softmaxFamily: [CalibratorDefinition] = []
}
