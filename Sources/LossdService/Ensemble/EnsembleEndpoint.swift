import LossdHTTP
import LossdJSON
import LossdKernels

/// `POST /v1/ensemble`: combines M members' logits [M][N][C] into one prediction per sample
/// (docs/ensembles.md).
enum EnsembleEndpoint {
    /// The members a request may have: its own and every method's inputs (gathered once).
    static let fields = ["method", "params"] + EnsembleCatalogue.all.inputNames

    static func respond(_ route: RouteRequest) throws(ServiceError) -> HTTPResponse {
        let (body, output) = try RequestMembers.checkedBody(route, allowed: fields, place: "an ensemble request")
        try WorkingSet.reserve(WorkingSet.typical(for: body), for: "this ensemble", in: route.context)
        let tensors = TensorReader(object: body)

        // Validation order: method, params, logits, weights, then the method's own checks.
        let method = try RequestMembers.method(body, in: EnsembleCatalogue.all)
        let paramsObject = try RequestMembers.params(body)
        let parameters = try ResolvedParameters(
            paramsObject, specs: method.parameters, pointer: "/params", owner: "ensemble method `\(method.name)`")

        let logits = try readLogits(body, tensors: tensors)
        if tensors.contains("weights") && !method.acceptsWeights {
            throw ServiceError.invalid(.invalidInput, field: "/weights", "weights are not supported by \(method.name)")
        }
        let weights = try tensors.vector("weights")

        let result: EnsembleResult
        do {
            result = try method.combine(logits, weights, parameters)
        } catch {
            throw ServiceError(error)
        }
        let n = result.scores.rows, c = result.scores.cols
        return LossdService.json(
            [
                "method": .string(method.name),
                "scores": .matrix(rows: n, cols: c, values: result.scores.values),
                "predictions": .array(result.predictions.map { .int($0) }),
                "probs": .matrix(rows: n, cols: c, values: result.probs.values),
            ], output: output)
    }

    /// `logits` [M][N][C]. Nested arrays that are not rectangular are reported at the first
    /// member, row or entry that breaks the shape set by the first one (`/logits/2/0`).
    static func readLogits(_ body: JSONObject, tensors: TensorReader) throws(ServiceError) -> EnsembleLogits {
        switch body["logits"] {
        case .numbers(let array)? where array.shape.first == 0:
            throw ServiceError.invalid(.invalidShape, field: "/logits", "`logits` must have at least 1 member")
        case .array(let items)?:
            if let fault = shapeFault(of: items) { throw fault }
        default:
            break
        }
        let decoded = try tensors.requiredTensor("logits", rank: 3)
        return EnsembleLogits(members: decoded.shape[0], samples: decoded.shape[1], classes: decoded.shape[2], values: decoded.values)
    }

    /// The first place where nested `logits` arrays stop being a rectangular [M][N][C] array
    /// of numbers, compared with the extents along the first member's first row.
    static func shapeFault(of members: [JSONNode]) -> ServiceError? {
        var extents = [members.count]
        var node = members.first
        while let current = node, extents.count < 3 {
            switch current {
            case .array(let items):
                extents.append(items.count)
                node = items.first
            case .numbers(let array):
                extents.append(contentsOf: array.shape.prefix(3 - extents.count))
                node = nil
            default:
                node = nil
            }
        }
        let units = [("member", "members"), ("row", "rows"), ("class", "classes")]

        func label(_ path: [Int]) -> String { "logits" + path.map { "[\($0)]" }.joined() }
        func pointer(_ path: [Int]) -> String { "/logits" + path.map { "/\($0)" }.joined() }
        func countFault(_ path: [Int], _ count: Int) -> ServiceError {
            let depth = path.count
            let reference = [Int](repeating: 0, count: depth)
            let expected = depth < extents.count ? extents[depth] : 0
            return ServiceError.invalid(
                .invalidShape, field: pointer(path),
                "`\(label(path))` has \(count) \(count == 1 ? units[depth].0 : units[depth].1) but `\(label(reference))` has \(expected)")
        }
        func check(_ node: JSONNode, _ path: [Int]) -> ServiceError? {
            let depth = path.count
            if depth == 3 {
                if case .number = node { return nil }
                return ServiceError.invalid(
                    .invalidShape, field: pointer(path), "`\(label(path))` must be a number (got \(node.typeName))")
            }
            switch node {
            case .array(let items):
                if depth >= extents.count || items.count != extents[depth] { return countFault(path, items.count) }
                for (j, item) in items.enumerated() {
                    if let fault = check(item, path + [j]) { return fault }
                }
                return nil
            case .numbers(let array):
                // A rectangular block: compare its extents; the first entry stands for all.
                var inner = path
                for extent in array.shape {
                    if inner.count == 3 {
                        return ServiceError.invalid(
                            .invalidShape, field: pointer(inner), "`\(label(inner))` must be a number (got array)")
                    }
                    if inner.count >= extents.count || extent != extents[inner.count] { return countFault(inner, extent) }
                    inner.append(0)
                }
                if inner.count < 3 {
                    return ServiceError.invalid(
                        .invalidShape, field: pointer(inner), "`\(label(inner))` must be an array (got number)")
                }
                return nil
            default:
                return ServiceError.invalid(
                    .invalidShape, field: pointer(path), "`\(label(path))` must be an array (got \(node.typeName))")
            }
        }
        for (m, member) in members.enumerated() {
            if let fault = check(member, [m]) { return fault }
        }
        return nil
    }
}
