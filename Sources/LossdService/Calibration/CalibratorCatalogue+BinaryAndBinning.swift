import LossdKernels

extension CalibratorCatalogue {
    /// platt, beta, isotonic, histogram.
    static let binaryAndBinning: [CalibratorDefinition] = []
}
