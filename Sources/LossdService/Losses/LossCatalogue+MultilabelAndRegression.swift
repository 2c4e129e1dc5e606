import LossdKernels

extension LossCatalogue {
    /// decoupled_softmax, multilabel_infonce (alias infonce), soft_topk, hl_gauss, two_hot, aggregate_response.
    static let multilabelAndRegression: [LossDefinition] = []
}
