import LossdJSON
import LossdKernels

/// The composite forms of `POST /v1/loss` (docs/losses.md, "Composite requests"): the
/// `group_mean` reduction, an entry's `columns` slice of one head and its `weight`, and the
/// weighted `total` of a `losses` request with its gradient.

/// How an entry's per-row values become its answer.
enum EntryReduction: Equatable {
    /// `mean` (the default), `sum` or `none`.
    case standard(Reduction)
    /// `group_mean`: the mean over `groups` of each group's mean (`GroupMean`).
    case byGroup

    static let names = Reduction.allCases.map(\.rawValue) + ["group_mean"]

    var name: String {
        switch self {
        case .standard(let reduction): reduction.rawValue
        case .byGroup: "group_mean"
        }
    }

    /// The entry's `reduction` (absent or null: mean); `group_mean` only for a loss whose
    /// rows are separable (the losses that take sample weights: the others' rows interact);
    /// a loss that is one number for the batch (`tcm`) takes only mean and sum.
    init(_ node: JSONNode?, pointer: String, definition: LossDefinition) throws(ServiceError) {
        if definition.batchValue, case .string(let text)? = node, text == "none" || text == "group_mean" {
            throw ServiceError.invalid(
                .invalidInput, field: pointer,
                "loss `\(definition.name)` is one number for the batch: `reduction` must be mean or sum (got \"\(text)\")")
        }
        switch node {
        case nil, .null?: self = .standard(.mean)
        case .string("group_mean")?:
            guard definition.acceptsSampleWeights else { throw Self.notSeparable(definition, pointer: pointer) }
            self = .byGroup
        case .string(let text)? where Reduction(rawValue: text) != nil:
            self = .standard(Reduction(rawValue: text) ?? .mean)
        case let other?:
            throw ServiceError.invalid(
                .invalidParam, field: pointer,
                "`reduction` must be one of \(Self.names.joined(separator: ", ")) (got \(ResolvedParameters.text(other)))")
        }
    }

    static func notSeparable(_ definition: LossDefinition, pointer: String) -> ServiceError {
        ServiceError.invalid(
            .invalidInput, field: pointer,
            "`group_mean` needs per-row values, and the rows of loss `\(definition.name)` interact; use mean or sum")
    }
}

/// An entry's `columns: [lo, hi)`: the slice of the class columns of 2-D `logits` (and of
/// `targets` when it is as wide) that the entry's loss sees, its labels relative to the slice; the
/// gradients go back in place, zeros elsewhere.
struct ColumnSlice {
    let columns: Range<Int>
    /// The full width of the last axis.
    let width: Int
    /// `logits` as decoded to find the width, sliced from it (not decoded again).
    private let logits: DecodedTensor
    static let slicedInputs = ["logits", "targets"]

    /// Nil when absent or null; 422 unless `[lo, hi]` integers with 0 ≤ lo < hi ≤ C.
    init?(_ node: JSONNode?, pointer: String, tensors: TensorReader) throws(ServiceError) {
        guard let node, !node.isNull else { return nil }
        guard let logits = try tensors.tensor("logits", ranks: 1...16), let width = logits.shape.last else {
            throw ServiceError.invalid(.invalidInput, field: pointer, "`columns` slices `logits`, which the request does not have")
        }
        guard logits.shape.count == 2 else {
            throw ServiceError.invalid(
                .invalidInput, field: pointer, "`columns` slices the class columns of 2-D `logits` [N][C]; these are \(logits.shape.count)-D")
        }
        let bounds: [Double]
        switch node {
        case .numbers(let array) where array.shape == [2]: bounds = array.values
        default: bounds = []
        }
        guard bounds.count == 2, bounds.allSatisfy({ $0 == $0.rounded() }), bounds[0] >= 0, bounds[0] < bounds[1],
            bounds[1] <= Double(width)
        else {
            throw ServiceError.invalid(
                .invalidParam, field: pointer,
                "`columns` must be [lo, hi] with integers 0 <= lo < hi <= \(width) (the columns of `logits`), got \(ResolvedParameters.text(node))")
        }
        self.columns = Int(bounds[0])..<Int(bounds[1])
        self.width = width
        self.logits = logits
    }

    func apply(to tensors: TensorReader) throws(ServiceError) -> TensorReader {
        try tensors.slicingLastAxis(of: Self.slicedInputs, width: width, to: columns, decoded: ["logits": logits])
    }

    /// The sliced inputs' gradients at full width: the slice in place, zeros elsewhere.
    func placeBack(_ gradients: inout [String: Tensor]) {
        for name in Self.slicedInputs {
            guard let sliced = gradients[name], sliced.shape.last == columns.count else { continue }
            let rows = sliced.values.count / max(columns.count, 1)
            var full = [Double](repeating: 0, count: rows * width)
            for r in 0..<rows {
                for (j, column) in columns.enumerated() { full[r * width + column] = sliced.values[r * columns.count + j] }
            }
            gradients[name] = Tensor(shape: Array(sliced.shape.dropLast()) + [width], values: full)
        }
    }
}

/// One evaluated entry: its answer, and what the request's `total` needs from it.
struct EvaluatedEntry {
    var answer: JSONValue
    /// The reduced value; nil for `reduction: none`.
    var value: Double?
    var weight: Double
    /// Gradients of the value (full width), by input name; empty without `return_grad`.
    var gradients: [String: Tensor]
}

/// `total` of a `losses` request: Σ_i weight_i · value_i and, with `return_grad`, its
/// gradient for every input. Absent when an entry answers per-row values (`none`).
struct CompositeTotal {
    private var value = 0.0
    private var gradients: [String: Tensor] = [:]
    private var complete = true

    /// An entry's `weight`: a finite number, 1 when absent or null.
    static func weight(_ node: JSONNode?, pointer: String) throws(ServiceError) -> Double {
        switch node {
        case nil, .null?: return 1
        case .number(let w)? where w.isFinite: return w
        case let other?:
            throw ServiceError.invalid(.invalidParam, field: pointer, "`weight` must be a finite number (got \(ResolvedParameters.text(other)))")
        }
    }

    mutating func add(_ entry: EvaluatedEntry) {
        guard complete, let entryValue = entry.value else {
            complete = false
            return
        }
        value += entry.weight * entryValue
        for (name, gradient) in entry.gradients {
            guard var sum = gradients[name] else {
                var scaled = gradient
                for i in scaled.values.indices { scaled.values[i] *= entry.weight }
                gradients[name] = scaled
                continue
            }
            guard sum.shape == gradient.shape else { continue }
            for i in sum.values.indices { sum.values[i] += entry.weight * gradient.values[i] }
            gradients[name] = sum
        }
    }

    /// `{"value", "grad"?}`, nil when an entry had no single value; 422 `value_overflow`
    /// when the weighted sum is not representable.
    func rendered(gradient: Bool) throws(ServiceError) -> JSONValue? {
        guard complete else { return nil }
        guard value.isFinite, gradients.values.allSatisfy({ $0.values.allFinite }) else {
            throw ServiceError.invalid(.valueOverflow, field: nil, "the weighted total of the losses is not representable in float64")
        }
        var members: [(String, JSONValue)] = [("value", .double(value))]
        if gradient {
            members.append(("grad", .object(gradients.keys.sorted().map { ($0, .tensor(shape: gradients[$0]!.shape, values: gradients[$0]!.values)) })))
        }
        return .object(members)
    }
}
