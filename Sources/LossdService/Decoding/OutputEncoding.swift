import LossdJSON
import LossdKernels

/// How tensors go out in an answer: nested JSON arrays (the default); with
/// `"output_encoding": "base64"`, `{"shape", "dtype", "base64"}` objects of little-endian
/// float32 or float64 (`"output_dtype"`, default float64) — what a NumPy client decodes
/// with one `np.frombuffer` instead of parsing hundreds of thousands of decimals; or, when
/// the request's `Accept` prefers `multipart/form-data`, raw `.npy` parts beside the JSON
/// (`MultipartAnswer`), which need no decoding at all. Scalars stay numbers, and integer
/// arrays (labels, predictions) stay lists.
struct OutputEncoding: Sendable, Equatable {
    enum DType: String, Sendable { case float32, float64 }
    enum TensorForm: Sendable { case arrays, base64, parts }

    var tensors = TensorForm.arrays
    var dtype = DType.float64
    /// Whether the form could have followed `Accept` (the answer then says `Vary: Accept`).
    var negotiated = false

    /// The request members that choose the encoding.
    static let fields = ["output_encoding", "output_dtype"]

    static let json = OutputEncoding()

    init() {}

    /// Reads `output_encoding` (`json` | `base64`) and `output_dtype` (`float32` |
    /// `float64`), and the `Accept` header: multipart/form-data preferred to JSON sends the
    /// tensors as parts whatever `output_encoding` says.
    init(_ body: JSONObject, accept: String? = nil) throws(ServiceError) {
        switch body["output_encoding"] {
        case nil, .string("json")?: tensors = .arrays
        case .string("base64")?: tensors = .base64
        case let other?:
            throw ServiceError.invalid(
                .invalidParam, field: "/output_encoding",
                "`output_encoding` must be one of json, base64 (got \(ResolvedParameters.text(other)))")
        }
        switch body["output_dtype"] {
        case nil: dtype = .float64
        case .string(let text)? where DType(rawValue: text) != nil: dtype = DType(rawValue: text)!
        case let other?:
            throw ServiceError.invalid(
                .invalidParam, field: "/output_dtype",
                "`output_dtype` must be one of float32, float64 (got \(ResolvedParameters.text(other)))")
        }
        negotiated = true
        if AcceptHeader.prefers("multipart/form-data", accept) { tensors = .parts }
    }

    init(_ body: JSONObject, for route: RouteRequest) throws(ServiceError) {
        try self.init(body, accept: route.request.headers["accept"])
    }
}

extension JSONValue {
    /// The same document with every float tensor (`doubles`, `matrix`, `tensor`) written
    /// as `{"shape", "dtype", "base64"}` when `encoding` asks for base64.
    func encoded(_ encoding: OutputEncoding) -> JSONValue {
        guard encoding.tensors == .base64 else { return self }
        switch self {
        case .doubles(let values):
            return .encodedTensor(shape: [values.count], values: values, float32: encoding.dtype == .float32)
        case let .matrix(rows, cols, values):
            return .encodedTensor(shape: [rows, cols], values: values, float32: encoding.dtype == .float32)
        case let .tensor(shape, values):
            return .encodedTensor(shape: shape, values: values, float32: encoding.dtype == .float32)
        case .array(let items):
            return .array(items.map { $0.encoded(encoding) })
        case .object(let members):
            return .object(members.map { ($0.0, $0.1.encoded(encoding)) })
        default:
            return self
        }
    }

    /// Writes `{"shape":[...],"dtype":"float32","base64":"..."}`, the values little-endian,
    /// base64-encoded straight from their memory (float64) or from one float32 copy.
    static func writeEncodedTensor(shape: [Int], values: [Double], float32: Bool, into out: inout [UInt8]) {
        out.append(contentsOf: #"{"shape":["#.utf8)
        for (i, extent) in shape.enumerated() {
            if i > 0 { out.append(UInt8(ascii: ",")) }
            out.append(contentsOf: String(extent).utf8)
        }
        out.append(contentsOf: #"],"dtype":""#.utf8)
        out.append(contentsOf: (float32 ? "float32" : "float64").utf8)
        out.append(contentsOf: #"","base64":""#.utf8)
        if float32 {
            let narrow = [Float](unsafeUninitializedCapacity: values.count) { buffer, initialized in
                values.withUnsafeBufferPointer { VectorMath.narrow($0, into: buffer) }
                initialized = values.count
            }
            narrow.withUnsafeBytes { Base64.append($0.bindMemory(to: UInt8.self), to: &out) }
        } else {
            #if _endian(little)
                values.withUnsafeBytes { Base64.append($0.bindMemory(to: UInt8.self), to: &out) }
            #else
                let wide = values.map { $0.bitPattern.littleEndian }
                wide.withUnsafeBytes { Base64.append($0.bindMemory(to: UInt8.self), to: &out) }
            #endif
        }
        out.append(contentsOf: #""}"#.utf8)
    }
}
