import LossdJSON
import LossdKernels

/// Runs catalogue losses on an already-parsed request object, so that benchmarks can time
/// the losses themselves (tensor decoding, validation, kernel) without JSON parsing.
public enum LossTiming {
    /// Every catalogue name, in catalogue order.
    public static var lossNames: [String] { LossCatalogue.all.names }

    /// Evaluates `loss` over the fields of `request` (tensors as `.numbers`, params under
    /// `"params"`) and returns the number of rows; throws the request's problem.
    @discardableResult
    public static func evaluate(_ loss: String, request: JSONObject, gradient: Bool) throws(ServiceError) -> Int {
        guard let definition = LossCatalogue.all[loss] else {
            throw ServiceError.invalid(.unknownLoss, field: "/loss", "unknown loss `\(loss)`")
        }
        var params: JSONObject?
        if case .object(let object)? = request["params"] { params = object }
        let parameters = try ResolvedParameters(params, specs: definition.parameters, pointer: "/params")
        let context = LossContext(
            tensors: TensorReader(object: request), parameters: parameters, gradient: gradient, parametersPointer: "/params")
        return try definition.evaluate(context).values.count
    }
}
