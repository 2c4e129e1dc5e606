import LossdHTTP
import LossdKernels


/// An answer as `multipart/form-data` (RFC 7578), for clients whose `Accept` prefers it:
/// the first part, `response`, is the JSON answer with every float tensor replaced by
/// `{"shape", "dtype", "part"}`; each tensor follows as a `.npy` part (format 1.0,
/// little-endian float32 or float64, C order) named by the JSON pointer of its place in
/// the answer (`/grad/logits`, `/results/0/values`). A client takes each tensor with one
/// `np.frombuffer` at an offset — no base64 or decimal text to decode — and `np.load`
/// reads any part saved alone.
enum MultipartAnswer {
    /// One tensor lifted out of the document.
    struct Tensor {
        let pointer: String
        let shape: [Int]
        let values: [Double]
    }

    /// The boundary of every answer. A fixed one, because Python's `http.client` compiles a
    /// regular expression for each new multipart boundary it sees in a header (0.2 ms a
    /// response, cached by text); an answer whose tensor bytes happen to contain it is
    /// rebuilt with a random one.
    static let fixedBoundary = "lossd-answer-9f4c2e7a1b"

    static func response(_ value: JSONValue, status: HTTPStatus, dtype: OutputEncoding.DType) -> HTTPResponse {
        var tensors: [Tensor] = []
        let document = lift(value, pointer: "", dtype: dtype, into: &tensors).bytes
        var boundary = fixedBoundary
        var body = write(document, tensors, dtype: dtype, boundary: boundary)
        // Each tensor part and the closing delimiter start with CRLF, "--" and the boundary.
        if occurrences(of: Array("\r\n--\(boundary)".utf8), in: body) != tensors.count + 1 {
            boundary = "lossd-" + (0..<2).map { _ in String(UInt64.random(in: .min ... .max), radix: 16) }.joined()
            body = write(document, tensors, dtype: dtype, boundary: boundary)
        }
        return HTTPResponse(
            status: status, headers: ["Content-Type": "multipart/form-data; boundary=\(boundary)"], body: body)
    }

    private static func write(_ document: [UInt8], _ tensors: [Tensor], dtype: OutputEncoding.DType, boundary: String) -> [UInt8] {
        let width = dtype == .float32 ? 4 : 8
        let heads = tensors.map { tensor in
            Array(
                ("\r\n--\(boundary)\r\nContent-Disposition: form-data; name=\"\(tensor.pointer)\"; filename=\"\(fileName(tensor.pointer))\"\r\n"
                    + "Content-Type: application/octet-stream\r\n\r\n").utf8) + npyHeader(shape: tensor.shape, dtype: dtype)
        }
        let opening = Array(
            "--\(boundary)\r\nContent-Disposition: form-data; name=\"response\"\r\nContent-Type: application/json\r\n\r\n".utf8)
        let closing = Array("\r\n--\(boundary)--\r\n".utf8)
        var total = opening.count + document.count + closing.count
        for (head, tensor) in zip(heads, tensors) { total += head.count + tensor.values.count * width }

        var body: [UInt8] = []
        body.reserveCapacity(total)
        body.append(contentsOf: opening)
        body.append(contentsOf: document)
        for (head, tensor) in zip(heads, tensors) {
            body.append(contentsOf: head)
            append(tensor.values, dtype: dtype, to: &body)
        }
        body.append(contentsOf: closing)
        return body
    }

    /// How many times `needle` occurs in `haystack`, found with the multipart reader's
    /// `memchr`/`memcmp` search.
    static func occurrences(of needle: [UInt8], in haystack: [UInt8]) -> Int {
        var count = 0, position = 0
        while let hit = Multipart.find(needle, in: haystack, from: position) {
            count += 1
            position = hit + needle.count
        }
        return count
    }

    /// The document with each float tensor replaced by its reference, the tensors collected
    /// in document order.
    static func lift(_ value: JSONValue, pointer: String, dtype: OutputEncoding.DType, into tensors: inout [Tensor]) -> JSONValue {
        func reference(_ shape: [Int], _ values: [Double]) -> JSONValue {
            tensors.append(Tensor(pointer: pointer, shape: shape, values: values))
            return .object([
                ("shape", .array(shape.map { .int($0) })), ("dtype", .string(dtype.rawValue)), ("part", .string(pointer)),
            ])
        }
        switch value {
        case .doubles(let values): return reference([values.count], values)
        case let .matrix(rows, cols, values): return reference([rows, cols], values)
        case let .tensor(shape, values), let .encodedTensor(shape, values, _): return reference(shape, values)
        case .array(let items):
            return .array(items.enumerated().map { lift($1, pointer: "\(pointer)/\($0)", dtype: dtype, into: &tensors) })
        case .object(let members):
            return .object(members.map { ($0, lift($1, pointer: "\(pointer)/\(JSONPointer.escape($0))", dtype: dtype, into: &tensors)) })
        default:
            return value
        }
    }

    /// The `.npy` 1.0 header for a C-order little-endian array: magic, version, length and
    /// the dictionary, space-padded so that the data starts at a multiple of 64 bytes.
    static func npyHeader(shape: [Int], dtype: OutputEncoding.DType) -> [UInt8] {
        let extents = shape.count == 1 ? "(\(shape[0]),)" : "(" + shape.map(String.init).joined(separator: ", ") + ")"
        var dictionary = "{'descr': '\(dtype == .float32 ? "<f4" : "<f8")', 'fortran_order': False, 'shape': \(extents), }"
        let unpadded = 10 + dictionary.utf8.count + 1
        dictionary += String(repeating: " ", count: (64 - unpadded % 64) % 64) + "\n"
        let length = dictionary.utf8.count
        return [0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(length & 0xFF), UInt8(length >> 8)] + Array(dictionary.utf8)
    }

    /// Appends the values little-endian, as float64 (one copy) or rounded to float32.
    private static func append(_ values: [Double], dtype: OutputEncoding.DType, to body: inout [UInt8]) {
        switch dtype {
        case .float64:
            #if _endian(little)
                values.withUnsafeBytes { body.append(contentsOf: $0) }
            #else
                for v in values { withUnsafeBytes(of: v.bitPattern.littleEndian) { body.append(contentsOf: $0) } }
            #endif
        case .float32:
            let start = body.count
            body.append(contentsOf: repeatElement(0, count: values.count * 4))
            body.withUnsafeMutableBytes { raw in
                let target = UnsafeMutableRawBufferPointer(rebasing: raw[start...]).bindMemory(to: Float.self)
                values.withUnsafeBufferPointer { VectorMath.narrow($0, into: target) }
            }
            #if !_endian(little)
                body.withUnsafeMutableBytes { raw in
                    for i in 0..<values.count {
                        let offset = start + 4 * i
                        raw.storeBytes(of: raw.load(fromByteOffset: offset, as: UInt32.self).byteSwapped, toByteOffset: offset, as: UInt32.self)
                    }
                }
            #endif
        }
    }

    /// `grad.logits.npy` for `/grad/logits`.
    private static func fileName(_ pointer: String) -> String {
        String(pointer.dropFirst().map { $0 == "/" || $0 == "\"" ? "." : $0 }) + ".npy"
    }
}
