@testable import LossdService

extension SampleInputs {
    /// Random valid inputs for decoupled_softmax, multilabel_infonce (alias infonce), soft_topk, hl_gauss, two_hot, aggregate_response (loss name → generator).
    static let multilabelAndRegression: [String: Generator] = [:]
}
