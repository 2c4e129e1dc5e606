import LossdHTTP
import LossdJSON
import LossdKernels

/// Charges a request's estimated working set against the server's memory budget before
/// its handler computes, so that a small body asking for gigabytes of work (a huge
/// similarity matrix, C×C calibrator parameters, large aggregation tables) is refused
/// instead of running the process out of memory.
///
/// Estimates are deliberately generous upper bounds from shapes alone: 8 bytes per float64
/// value for every array the handler materialises (decoded inputs, intermediates,
/// gradients) and about 24 bytes per number of the JSON reply.
enum WorkingSet {
    /// Bytes of one float64.
    static let valueBytes = 8
    /// Bytes of one number in a JSON reply (digits, sign, exponent, separator).
    static let replyBytesPerValue = 24

    /// Numbers in the parsed request: numeric arrays, `{shape, data}` and base64 tensors
    /// (counted at four bytes a value, the smaller dtype, so never underestimated).
    static func elements(in object: JSONObject) -> Int {
        object.members.reduce(0) { $0 + elements(in: $1.value) }
    }

    static func elements(in node: JSONNode) -> Int {
        switch node {
        case .numbers(let array): return array.values.count
        case .number, .bool: return 1
        case .null, .string: return 0
        case .array(let items): return items.reduce(0) { $0 + elements(in: $1) }
        case .object(let object):
            if case .string(let text)? = object["base64"] { return text.utf8.count * 3 / 4 / 4 }
            return elements(in: object)
        }
    }

    /// Charges `bytes` for the request, as a service error when they cannot be had:
    /// 413 `content_too_large` when they exceed the whole budget, 503 `overloaded` with
    /// `Retry-After` when other requests hold it now.
    static func reserve(_ bytes: Int, for what: @autoclosure () -> String, in context: RequestContext) throws(ServiceError) {
        do {
            try context.memory.reserve(max(0, bytes))
        } catch {
            throw refusal(error, what: what())
        }
    }

    static func refusal(_ refusal: MemoryChargeRefusal, what: String) -> ServiceError {
        switch refusal {
        case let .neverFits(needed, limit):
            return ServiceError(
                status: .contentTooLarge, code: "content_too_large",
                detail: "\(what) needs about \(needed) bytes of memory; the server's budget is \(limit) bytes")
        case let .notNow(needed, _):
            var error = ServiceError(
                status: .serviceUnavailable, code: "overloaded",
                detail: "\(what) needs about \(needed) bytes of memory that other requests hold now; retry shortly")
            error.headers = [("Retry-After", "1")]
            return error
        }
    }

    /// Multiplies without overflow (saturating at Int.max), for products of client sizes.
    static func product(_ factors: Int...) -> Int {
        var result = 1
        for factor in factors {
            let (value, overflow) = result.multipliedReportingOverflow(by: max(0, factor))
            if overflow { return Int.max }
            result = value
        }
        return result
    }

    static func sum(_ terms: Int...) -> Int {
        var result = 0
        for term in terms {
            let (value, overflow) = result.addingReportingOverflow(max(0, term))
            if overflow { return Int.max }
            result = value
        }
        return result
    }
}

extension WorkingSet {
    /// The usual estimate for an endpoint that decodes its inputs, computes a few arrays of
    /// the same size and answers about as many numbers: `factor` float64 copies of every
    /// request number and a JSON reply of the same count.
    static func typical(for body: JSONObject, factor: Int = 4) -> Int {
        let elements = elements(in: body)
        return sum(product(elements, factor, valueBytes), product(elements, replyBytesPerValue))
    }

    /// The shape a tensor member declares: a nested array's, or `{shape, ...}`'s.
    static func shape(of node: JSONNode?) -> [Int]? {
        switch node {
        case .numbers(let array)?: return array.shape
        case .object(let encoded)?:
            guard case .numbers(let shape)? = encoded["shape"] else { return nil }
            return shape.values.map { $0.isFinite && $0 >= 0 && $0 < 1e12 ? Int($0) : 0 }
        default: return nil
        }
    }

    /// The soft-skeleton workspace of the `cldice` entries of a `/v1/loss` request
    /// (`ClDice.workspaceBytes`: each map in flight holds its erosion chain), from the
    /// shape of `logits` and each entry's `iterations`.
    static func skeletonBytes(_ body: JSONObject, gradient: Bool) -> Int {
        guard let shape = shape(of: body["logits"]), shape.count >= 3 else { return 0 }
        var entries: [JSONObject] = [body]
        if case .array(let items)? = body["losses"] {
            entries = items.compactMap { if case .object(let entry) = $0 { entry } else { nil } }
        }
        var bytes = 0
        for entry in entries {
            guard case .string("cldice")? = entry["loss"] else { continue }
            var iterations = 3
            if case .object(let params)? = entry["params"], case .number(let k)? = params["iterations"], k >= 0, k <= 1e6 {
                iterations = Int(k)
            }
            bytes = max(bytes, ClDice.workspaceBytes(logitsShape: shape, iterations: iterations, gradient: gradient))
        }
        return bytes
    }

    /// Entries of the similarity matrices a contrastive loss builds: `queries` [N][D]
    /// against `keys` [M][D], or `embeddings` [N][D] (or [N][V][D]) against themselves.
    static func similarityEntries(_ body: JSONObject) -> Int {
        func rows(_ name: String) -> [Int]? { shape(of: body[name]) }
        var entries = 0
        if let queries = rows("queries"), let n = queries.first {
            let m = rows("keys")?.first ?? n
            entries = sum(entries, product(n, m))
        }
        if let embeddings = rows("embeddings"), let n = embeddings.first {
            let views = embeddings.count >= 3 ? embeddings[1] : 1
            entries = sum(entries, product(n, views, n, views))
            // normalized_softmax: embeddings against the class prototypes.
            if let prototypes = rows("prototypes"), let c = prototypes.first { entries = sum(entries, product(n, c)) }
        }
        return entries
    }
}
