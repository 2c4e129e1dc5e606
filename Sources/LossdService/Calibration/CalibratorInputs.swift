import LossdKernels

/// Request tensors every calibration method reads, checked with the same 422s everywhere.
enum CalibratorInputs {
    /// `logits` [N][C], N ≥ 1, C ≥ 2, and C = `classes` when applying a fitted model.
    static func logits(_ input: CalibrationInput, classes: Int? = nil) throws(ServiceError) -> Matrix {
        guard let logits = input.logits else {
            if input.scores != nil {
                throw ServiceError.invalid(.invalidInput, field: "/scores", "`scores` are accepted by platt and beta only; send `logits`")
            }
            throw ServiceError.missing("logits")
        }
        guard logits.rows >= 1 else { throw ServiceError.invalid(.invalidShape, field: "/logits", "`logits` must have at least one row") }
        guard logits.cols >= 2 else {
            throw ServiceError.invalid(.invalidShape, field: "/logits", "`logits` must have at least 2 columns (got \(logits.cols))")
        }
        if let classes, logits.cols != classes {
            throw ServiceError.invalid(
                .invalidShape, field: "/logits",
                "`logits` has \(logits.cols) columns but the calibrator was fitted for \(classes) classes")
        }
        return logits
    }

    /// The `logits` and `labels` a logits method is fitted on, checked as the two calls
    /// above check them (logits first, so their 422s win).
    static func labelledLogits(_ input: CalibrationInput) throws(ServiceError) -> (logits: Matrix, labels: [Int]) {
        let logits = try logits(input)
        return (logits, try labels(input, rows: logits.rows, classes: logits.cols))
    }

    /// Fit labels: present, one per row (at least one), each in [0, classes).
    static func labels(_ input: CalibrationInput, rows: Int, classes: Int) throws(ServiceError) -> [Int] {
        guard let labels = input.labels else { throw ServiceError.missing("labels") }
        guard rows >= 1 else {
            let name = input.logits == nil && input.scores != nil ? "scores" : "logits"
            throw ServiceError.invalid(.invalidShape, field: "/\(name)", "`\(name)` must have at least one row")
        }
        do {
            try Validate.labels(labels, rows: rows, classes: classes)
        } catch {
            throw ServiceError(error)
        }
        return labels
    }
}

/// Reads a stored model's parameters (from a fit, a PUT or an inline `calibrator`) with
/// 422s naming `/calibrator/params/NAME`: exactly the expected names, finite numbers,
/// shapes against `classes`.
struct CalibratorParams {
    let model: CalibratorModel
    static let pointer = "/calibrator/params"

    init(_ model: CalibratorModel, names: [String], optional: [String] = []) throws(ServiceError) {
        self.model = model
        guard model.classes >= 2 else {
            throw ServiceError.invalid(.invalidParam, field: "/calibrator/classes", "`classes` must be at least 2 (got \(model.classes))")
        }
        for name in names where model.parameters[name] == nil {
            throw ServiceError.invalid(.invalidParam, field: "\(Self.pointer)/\(name)", "`\(name)` is required for \(model.method)")
        }
        let known = Set(names + optional)
        for name in model.parameters.keys.sorted() where !known.contains(name) {
            throw ServiceError.invalid(
                .invalidParam, field: "\(Self.pointer)/\(name)",
                "`\(name)` is not a parameter of \(model.method) (expected \((names + optional).joined(separator: ", ")))")
        }
    }

    func has(_ name: String) -> Bool { model.parameters[name] != nil }

    func error(_ path: String, _ detail: String) -> ServiceError {
        ServiceError.invalid(.invalidParam, field: "\(Self.pointer)/\(path)", detail)
    }

    /// `classes` must equal `exactly` (binary methods: 2).
    func requireClasses(_ exactly: Int) throws(ServiceError) {
        guard model.classes == exactly else {
            throw ServiceError.invalid(
                .invalidParam, field: "/calibrator/classes", "\(model.method) is binary: `classes` must be \(exactly) (got \(model.classes))")
        }
    }

    /// A finite number (a one-element array is accepted), > 0 when `positive`.
    func number(_ name: String, positive: Bool = false) throws(ServiceError) -> Double {
        let value: Double
        switch model.parameters[name] {
        case .number(let v)?: value = v
        case .vector(let v)? where v.count == 1: value = v[0]
        default: throw error(name, "`\(name)` must be a number")
        }
        guard value.isFinite else { throw error(name, "`\(name)` must be a finite number") }
        if positive && !(value > 0) { throw error(name, "`\(name)` must be > 0 (got \(NumberText.format(value)))") }
        return value
    }

    /// A flat array of finite numbers, of length `count` when given.
    func vector(_ name: String, count: Int?) throws(ServiceError) -> [Double] {
        let values: [Double]
        switch model.parameters[name] {
        case .vector(let v)?: values = v
        case .number(let v)? where count == 1: values = [v]
        case .matrix(let m)? where m.rows == 1 || m.cols == 1: values = m.values
        case .rows(let r)? where r.count == 1: values = r[0]
        default: throw error(name, "`\(name)` must be an array of numbers")
        }
        if let count, values.count != count {
            throw error(name, "`\(name)` has \(values.count) entries but \(count) \(count == 1 ? "is" : "are") required for \(model.classes) classes")
        }
        for (i, v) in values.enumerated() where !v.isFinite {
            throw error("\(name)/\(i)", "`\(name)[\(i)]` must be a finite number")
        }
        return values
    }

    /// `count` arrays of finite numbers (one per per-class model); a single flat array is
    /// accepted for one model.
    func rows(_ name: String, count: Int) throws(ServiceError) -> [[Double]] {
        let rows: [[Double]]
        switch model.parameters[name] {
        case .rows(let r)?: rows = r
        case .matrix(let m)?: rows = m.nested
        case .vector(let v)? where count == 1: rows = [v]
        default: throw error(name, "`\(name)` must be an array of \(count) arrays of numbers")
        }
        guard rows.count == count else {
            throw error(name, "`\(name)` has \(rows.count) per-class arrays but \(count) \(count == 1 ? "is" : "are") required for \(model.classes) classes")
        }
        for (k, row) in rows.enumerated() {
            for (j, v) in row.enumerated() where !v.isFinite {
                throw error("\(name)/\(k)/\(j)", "`\(name)[\(k)][\(j)]` must be a finite number")
            }
        }
        return rows
    }

    /// A `rows × cols` matrix of finite numbers (`cols` nil: any width).
    func matrix(_ name: String, rows: Int, cols: Int?) throws(ServiceError) -> Matrix {
        let m: Matrix
        switch model.parameters[name] {
        case .matrix(let value)?:
            m = value
        case .rows(let value)? where value.allSatisfy({ $0.count == value.first?.count }):
            m = Matrix(rows: value.count, cols: value.first?.count ?? 0, values: value.flatMap { $0 })
        case .vector(let v)? where v.isEmpty && rows == 0:
            m = Matrix(zeros: 0, cols ?? 0)
        default:
            throw error(name, "`\(name)` must be a \(rows) × \(cols.map(String.init) ?? "D") array of numbers")
        }
        guard m.rows == rows, cols == nil || m.cols == cols! else {
            throw error(name, "`\(name)` must be \(rows) × \(cols.map(String.init) ?? "D") (got \(m.rows) × \(m.cols))")
        }
        if let i = m.values.firstIndex(where: { !$0.isFinite }) {
            throw error("\(name)/\(i / max(m.cols, 1))", "`\(name)` must hold finite numbers only")
        }
        return m
    }
}
