import LossdKernels

#if canImport(Glibc)
    import Glibc
#endif

/// The decoded rows of a calibrator selection: `logits` [N][C] (or view 0 of
/// `views_logits` when only those are sent) or binary `scores` [N], `views_logits`
/// [V][N][C] for correctness_aware, and `labels` [N], checked once for every method.
struct SelectionData {
    let input: CalibrationInput
    let labels: [Int]
    let rows: Int
    let classes: Int
    /// Binary `scores` all in [0, 1]: read as probabilities by the uncalibrated baseline
    /// (otherwise as logits, through the sigmoid), and beta applies.
    let scoresInUnitInterval: Bool

    init(_ tensors: TensorReader) throws(ServiceError) {
        var input = CalibrationInput()
        input.logits = try tensors.matrix("logits")
        if tensors.contains("scores") {
            if input.logits != nil {
                throw ServiceError.invalid(.invalidInput, field: "/scores", "send either `logits` or `scores`, not both")
            }
            input.scores = try tensors.vector("scores")
        }
        if let views = try tensors.tensor("views_logits", rank: 3) {
            if input.scores != nil {
                throw ServiceError.invalid(.invalidInput, field: "/views_logits", "`views_logits` go with `logits`, not with binary `scores`")
            }
            let (v, n, c) = (views.shape[0], views.shape[1], views.shape[2])
            guard v >= 1, n >= 1, c >= 2 else {
                throw ServiceError.invalid(
                    .invalidShape, field: "/views_logits", "`views_logits` must hold at least one view of at least one row of at least 2 columns")
            }
            if let logits = input.logits, logits.rows != n || logits.cols != c {
                throw ServiceError.invalid(
                    .invalidShape, field: "/views_logits",
                    "`views_logits` rows are \(n) × \(c) but `logits` is \(logits.rows) × \(logits.cols)")
            }
            input.views = Tensor(shape: views.shape, values: views.values)
            // The other methods calibrate view 0 (the original sample) when `logits` are not sent.
            if input.logits == nil { input.logits = Matrix(rows: n, cols: c, values: Array(views.values[0..<(n * c)])) }
        }
        if let scores = input.scores {
            guard !scores.isEmpty else { throw ServiceError.invalid(.invalidShape, field: "/scores", "`scores` must have at least one entry") }
            for (i, s) in scores.enumerated() where !s.isFinite {
                throw ServiceError.invalid(.nonFinite, field: "/scores/\(i)", "`scores[\(i)]` is not a finite number")
            }
            rows = scores.count
            classes = 2
            scoresInUnitInterval = scores.allSatisfy { $0 >= 0 && $0 <= 1 }
        } else {
            let logits = try CalibratorInputs.logits(input)
            rows = logits.rows
            classes = logits.cols
            scoresInUnitInterval = false
        }
        guard let labels = try tensors.integers("labels") else { throw ServiceError.missing("labels") }
        do {
            try Validate.labels(labels, rows: rows, classes: classes)
        } catch {
            throw ServiceError(error)
        }
        self.input = input
        self.labels = labels
    }

    /// Why a method does not apply to this input (nil: it does).
    enum Refusal {
        case invalid(String)
        case missingViews

        func error(_ field: String) -> ServiceError {
            switch self {
            case .invalid(let detail): ServiceError.invalid(.invalidParam, field: field, detail)
            case .missingViews: ServiceError.missing("views_logits")
            }
        }
    }

    func applicability(_ definition: CalibratorDefinition) -> Refusal? {
        let method = definition.name
        if definition.binaryOnly && classes != 2 {
            return .invalid("`\(method)` is binary (C = 2) but the input has C = \(classes)")
        }
        if definition.needsViews && input.views == nil { return .missingViews }
        if input.scores != nil {
            guard definition.acceptsScores else {
                return .invalid("`\(method)` calibrates `logits`; binary `scores` suit \(CalibratorCatalogue.all.filter(\.acceptsScores).map(\.name).joined(separator: " and ")) only")
            }
            if definition.scoresAreProbabilities && !scoresInUnitInterval {
                return .invalid("`\(method)` reads `scores` as probabilities, but some lie outside [0, 1]")
            }
        }
        return nil
    }

    /// The input restricted to `rows` (in that order), without labels.
    func subset(_ rows: [Int]) -> CalibrationInput {
        var part = CalibrationInput()
        if let logits = input.logits {
            var values: [Double] = []
            values.reserveCapacity(rows.count * logits.cols)
            for r in rows { values.append(contentsOf: logits.values[(r * logits.cols)..<((r + 1) * logits.cols)]) }
            part.logits = Matrix(rows: rows.count, cols: logits.cols, values: values)
        }
        if let scores = input.scores { part.scores = rows.map { scores[$0] } }
        if let views = input.views {
            let (v, n, c) = (views.shape[0], views.shape[1], views.shape[2])
            var values: [Double] = []
            values.reserveCapacity(v * rows.count * c)
            for view in 0..<v {
                for r in rows { values.append(contentsOf: views.values[((view * n + r) * c)..<((view * n + r + 1) * c)]) }
            }
            part.views = Tensor(shape: [v, rows.count, c], values: values)
        }
        return part
    }

    /// Uncalibrated probabilities of `part`: softmax of the logits; for `scores`, each score
    /// as the positive class's probability when all lie in [0, 1], else its sigmoid.
    func baseline(_ part: CalibrationInput) -> Matrix {
        if let logits = part.logits { return CalibrationMetrics.softmax(logits) }
        let scores = part.scores ?? []
        var values: [Double] = []
        values.reserveCapacity(scores.count * 2)
        for s in scores {
            let p = scoresInUnitInterval ? s : (s >= 0 ? 1 / (1 + exp(-s)) : exp(s) / (1 + exp(s)))
            values.append(1 - p)
            values.append(p)
        }
        return Matrix(rows: scores.count, cols: 2, values: values)
    }
}
