/// A parsed JSON value. Arrays of numbers (nested to any depth, rectangular) are packed
/// into one contiguous buffer as they are read, so megabyte tensors never become
/// millions of enum cases.
public enum JSONNode: Sendable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONNode])
    case object(JSONObject)
    /// A rectangular nested array whose leaves are all numbers.
    case numbers(NumericArray)

    /// Whether this is JSON `null` (which lossd reads as absent only where a field is nullable).
    public var isNull: Bool {
        if case .null = self { return true }
        return false
    }

    /// The JSON type's name, for error messages.
    public var typeName: String {
        switch self {
        case .null: "null"
        case .bool: "boolean"
        case .number: "number"
        case .string: "string"
        case .array, .numbers: "array"
        case .object: "object"
        }
    }
}

/// Object members in document order.
public struct JSONObject: Sendable {
    public var members: [(key: String, value: JSONNode)]

    public init(members: [(key: String, value: JSONNode)] = []) {
        self.members = members
    }

    public subscript(key: String) -> JSONNode? {
        members.first { $0.key == key }?.value
    }

    public var keys: [String] { members.map(\.key) }
}

/// Numbers from nested JSON arrays: row-major values and the array's shape.
public struct NumericArray: Sendable {
    /// Extent of each dimension, outermost first; `[]` never occurs (a bare number is `.number`).
    public var shape: [Int]
    public var values: [Double]

    public init(shape: [Int], values: [Double]) {
        self.shape = shape
        self.values = values
    }
}

/// Malformed JSON, with the byte offset, line and column of the problem.
public struct JSONSyntaxError: Error, Sendable, Equatable, CustomStringConvertible {
    public let message: String
    public let offset: Int
    public let line: Int
    public let column: Int

    public var description: String { "\(message) at line \(line), column \(column) (byte \(offset))" }
}

/// Limits on what a document may contain.
public struct JSONLimits: Sendable {
    /// Nesting of arrays and objects.
    public var maxDepth = 64
    /// Bytes of one string, after unescaping (base64 tensors are long strings).
    public var maxStringBytes = 64 << 20

    /// A two-dimensional numeric array with at least this many bytes of input left after its
    /// first row (and a first row of at least 1 KiB, or of this many bytes if fewer) has its
    /// second half read on another thread (`ParallelRows`); `Int.max` reads everything on the
    /// calling thread.
    public var parallelRowsMinimumBytes = 4 << 20

    public init(maxDepth: Int = 64, maxStringBytes: Int = 64 << 20, parallelRowsMinimumBytes: Int = 4 << 20) {
        self.maxDepth = maxDepth
        self.maxStringBytes = maxStringBytes
        self.parallelRowsMinimumBytes = parallelRowsMinimumBytes
    }
}

/// A strict RFC 8259 parser over UTF-8 bytes.
public struct JSONReader {
    /// Parses a whole document, in place.
    public static func parse(_ bytes: [UInt8], limits: JSONLimits = JSONLimits()) throws(JSONSyntaxError) -> JSONNode {
        let result: Result<JSONNode, JSONSyntaxError> = bytes.withUnsafeBufferPointer { buffer in
            do throws(JSONSyntaxError) {
                return .success(try parse(buffer, limits: limits))
            } catch {
                return .failure(error)
            }
        }
        return try result.get()
    }

    /// Parses a whole document from bytes that stay valid for the call (a part of a larger
    /// body, say), in place.
    public static func parse(_ buffer: UnsafeBufferPointer<UInt8>, limits: JSONLimits = JSONLimits()) throws(JSONSyntaxError) -> JSONNode {
        let scratch = UnsafeMutableBufferPointer<Double>.allocate(capacity: 512)
        defer { scratch.deallocate() }
        var reader = JSONReader(buffer: buffer, limits: limits, scratch: scratch)
        reader.skipWhitespace()
        let value = try reader.parseValue(depth: 0)
        reader.skipWhitespace()
        guard reader.index == buffer.count else { throw reader.error("unexpected text after the JSON value") }
        return value
    }

    private let buffer: UnsafeBufferPointer<UInt8>
    private let limits: JSONLimits
    /// Where `scanNumberRun` collects values before appending them to the tensor.
    private let scratch: UnsafeMutableBufferPointer<Double>
    private var index = 0

    private init(buffer: UnsafeBufferPointer<UInt8>, limits: JSONLimits, scratch: UnsafeMutableBufferPointer<Double>) {
        self.buffer = buffer
        self.limits = limits
        self.scratch = scratch
    }

    // MARK: Values

    private mutating func parseValue(depth: Int) throws(JSONSyntaxError) -> JSONNode {
        guard index < buffer.count else { throw error("unexpected end of input, expected a value") }
        switch buffer[index] {
        case UInt8(ascii: "{"): return .object(try parseObject(depth: depth + 1))
        case UInt8(ascii: "["): return try parseArray(depth: depth + 1)
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "t"): try expectLiteral("true"); return .bool(true)
        case UInt8(ascii: "f"): try expectLiteral("false"); return .bool(false)
        case UInt8(ascii: "n"): try expectLiteral("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number(try parseNumber())
        default: throw error("unexpected character \(describe(buffer[index])), expected a value")
        }
    }

    private mutating func parseNumber() throws(JSONSyntaxError) -> Double {
        do {
            let scanned = try DecimalParsing.scan(buffer, from: index)
            index = scanned.end
            return scanned.value
        } catch {
            if case .invalidSyntax(let at) = error { index = at }
            throw self.error("invalid number")
        }
    }

    private mutating func expectLiteral(_ literal: StaticString) throws(JSONSyntaxError) {
        let count = literal.utf8CodeUnitCount
        guard index + count <= buffer.count else { throw error("invalid literal") }
        let text = UnsafeBufferPointer(start: literal.utf8Start, count: count)
        for k in 0..<count where buffer[index + k] != text[k] {
            index += k
            throw error("invalid literal")
        }
        index += count
    }

    private mutating func parseObject(depth: Int) throws(JSONSyntaxError) -> JSONObject {
        guard depth <= limits.maxDepth else { throw error("nesting deeper than \(limits.maxDepth)") }
        index += 1  // {
        var object = JSONObject()
        skipWhitespace()
        if index < buffer.count && buffer[index] == UInt8(ascii: "}") {
            index += 1
            return object
        }
        while true {
            skipWhitespace()
            guard index < buffer.count, buffer[index] == UInt8(ascii: "\"") else { throw error("expected a string key") }
            let keyOffset = index
            let key = try parseString()
            if object.members.contains(where: { $0.key == key }) {
                index = keyOffset
                throw error("duplicate key \"\(key)\"")
            }
            skipWhitespace()
            guard index < buffer.count, buffer[index] == UInt8(ascii: ":") else { throw error("expected ':' after a key") }
            index += 1
            skipWhitespace()
            let value = try parseValue(depth: depth)
            object.members.append((key, value))
            skipWhitespace()
            guard index < buffer.count else { throw error("unexpected end of input in an object") }
            if buffer[index] == UInt8(ascii: ",") {
                index += 1
                continue
            }
            if buffer[index] == UInt8(ascii: "}") {
                index += 1
                return object
            }
            throw error("expected ',' or '}' in an object")
        }
    }

    /// Arrays: first tried as a packed numeric tensor; anything else (strings, objects,
    /// ragged rows) is parsed again as a general array.
    private mutating func parseArray(depth: Int) throws(JSONSyntaxError) -> JSONNode {
        guard depth <= limits.maxDepth else { throw error("nesting deeper than \(limits.maxDepth)") }
        let start = index
        if let numbers = try parseNumericArray(depth: depth) { return .numbers(numbers) }
        index = start + 1  // [
        var items: [JSONNode] = []
        skipWhitespace()
        if index < buffer.count && buffer[index] == UInt8(ascii: "]") {
            index += 1
            return .array(items)
        }
        while true {
            skipWhitespace()
            items.append(try parseValue(depth: depth))
            skipWhitespace()
            guard index < buffer.count else { throw error("unexpected end of input in an array") }
            if buffer[index] == UInt8(ascii: ",") {
                index += 1
                continue
            }
            if buffer[index] == UInt8(ascii: "]") {
                index += 1
                return .array(items)
            }
            throw error("expected ',' or ']' in an array")
        }
    }

    /// Reads nested arrays of numbers into one buffer. Returns nil (having consumed
    /// nothing that matters: the caller rewinds) when the array is not a rectangular
    /// array of numbers. Syntax errors inside numbers are thrown at once.
    private mutating func parseNumericArray(depth: Int) throws(JSONSyntaxError) -> NumericArray? {
        var shape: [Int] = []  // extent of each level once one array of it has closed
        var counts: [Int] = []  // elements so far in the open array at each level
        var leafLevel = -1  // the level whose elements are numbers
        var values: [Double] = []
        var level = -1
        // The second half of a large matrix, read on another thread; always stopped and
        // waited for before returning, since it reads `buffer`.
        var tail: ParallelRows?
        defer { tail?.cancel() }
        var reserved = false

        // Opens an array (the current byte is '[').
        func open() -> Bool {
            level += 1
            if depth + level > limits.maxDepth { return false }
            index += 1
            if counts.count <= level {
                counts.append(0)
            } else {
                counts[level] = 0
            }
            return true
        }

        let arrayStart = index
        guard open() else { return nil }
        while true {
            skipWhitespace()
            guard index < buffer.count else { return nil }
            let byte = buffer[index]
            if byte == UInt8(ascii: "]") {
                // Close the array at `level`.
                let n = counts[level]
                // Inner arrays close before outer ones, so extents are filled in by level.
                while shape.count <= level { shape.append(-1) }
                if shape[level] == -1 {
                    shape[level] = n
                } else if shape[level] != n {
                    return nil
                }
                if n == 0 {
                    // An empty array is a leaf level of its own.
                    if leafLevel == -1 { leafLevel = level } else if leafLevel != level { return nil }
                }
                index += 1
                if level == 0 {
                    return NumericArray(shape: shape, values: Self.trimmed(values))
                }
                level -= 1
                counts[level] += 1
                guard skipSeparator() else { return nil }
                continue
            }
            if byte == UInt8(ascii: "[") {
                if level == 0 && leafLevel == 1 && shape.count == 2 {
                    // A row of a matrix whose first row has been read.
                    if !reserved {
                        // Room for the rest at the first row's density, so that the values never
                        // grow by copying (pages never written are never committed; `trimmed` cuts an
                        // overshoot to size at the end); only after a first row long enough for its
                        // density to say something.
                        reserved = true
                        let valuesPerByte = Double(values.count) / Double(max(index - arrayStart, 1))
                        if index - arrayStart >= 1024 {
                            values.reserveCapacity(values.count + Int(Double(buffer.count - index) * valuesPerByte * 1.05))
                        }
                        // Only after a first row of 1 KiB (less when the limit itself is lower, as
                        // in tests): small matrices never start a worker.
                        if index - arrayStart >= min(1024, limits.parallelRowsMinimumBytes),
                            buffer.count - index >= limits.parallelRowsMinimumBytes
                        {
                            tail = ParallelRows.start(buffer, from: index, columns: shape[1], valuesPerByte: valuesPerByte)
                        }
                    } else if let rows = tail, index >= rows.rowStart {
                        tail = nil
                        // Used only when this row is where the worker began; cancelled otherwise.
                        if index == rows.rowStart, let read = rows.finish() {
                            values.append(contentsOf: read.values)
                            counts[0] += read.count
                            index = read.closingBracket
                            continue
                        }
                        rows.cancel()
                    }
                }
                if leafLevel != -1 && leafLevel <= level { return nil }
                guard open() else { return nil }
                continue
            }
            guard byte == UInt8(ascii: "-") || DecimalParsing.isDigit(byte) else { return nil }
            if leafLevel == -1 { leafLevel = level } else if leafLevel != level { return nil }
            guard let run = try scanNumberRun(into: &values) else { return nil }
            counts[level] += run
        }
    }

    /// Reads a leaf array's numbers up to, not past, its `]` (see `NumberRuns.read`);
    /// returns how many, or nil when anything but numbers and commas comes first.
    private mutating func scanNumberRun(into values: inout [Double]) throws(JSONSyntaxError) -> Int? {
        do throws(DecimalParsing.Failure) {
            guard case .closed(let count) = try NumberRuns.read(buffer, from: &index, scratch: scratch, into: &values)
            else { return nil }
            return count
        } catch {
            if case .invalidSyntax(let at) = error { index = at }
            throw self.error("invalid number")
        }
    }

    /// The values with their storage cut to size when the reservation made after the first
    /// row overshot (the matrix was not most of what followed it): reserved but unused
    /// address space does not outlive the parse.
    private static func trimmed(_ values: [Double]) -> [Double] {
        guard values.capacity > 2 * values.count + 4096 else { return values }
        return [Double](unsafeUninitializedCapacity: values.count) { storage, initialized in
            _ = storage.initialize(fromContentsOf: values)
            initialized = values.count
        }
    }

    /// After an element of a numeric array: consumes a `,` (which must be followed by another
    /// element) or stops before `]`. False when anything else follows.
    private mutating func skipSeparator() -> Bool {
        skipWhitespace()
        guard index < buffer.count else { return false }
        if buffer[index] == UInt8(ascii: ",") {
            index += 1
            skipWhitespace()
            return index < buffer.count && buffer[index] != UInt8(ascii: "]")
        }
        return buffer[index] == UInt8(ascii: "]")
    }

    // MARK: Strings

    private mutating func parseString() throws(JSONSyntaxError) -> String {
        index += 1  // opening quote
        let start = index
        // Fast path: no escapes.
        while index < buffer.count {
            let b = buffer[index]
            if b == UInt8(ascii: "\"") {
                let raw = UnsafeBufferPointer(rebasing: buffer[start..<index])
                guard raw.count <= limits.maxStringBytes else { throw error("string longer than \(limits.maxStringBytes) bytes") }
                guard let text = String(validating: raw, as: UTF8.self) else { throw error("invalid UTF-8 in a string") }
                index += 1
                return text
            }
            if b == UInt8(ascii: "\\") { break }
            if b < 0x20 { throw error("control character in a string") }
            index += 1
        }
        var bytes = Array(buffer[start..<index])
        while index < buffer.count {
            let b = buffer[index]
            if b == UInt8(ascii: "\"") {
                index += 1
                guard let text = String(validating: bytes, as: UTF8.self) else { throw error("invalid UTF-8 in a string") }
                return text
            }
            if b < 0x20 { throw error("control character in a string") }
            if bytes.count > limits.maxStringBytes { throw error("string longer than \(limits.maxStringBytes) bytes") }
            if b != UInt8(ascii: "\\") {
                bytes.append(b)
                index += 1
                continue
            }
            index += 1
            guard index < buffer.count else { break }
            let escape = buffer[index]
            index += 1
            switch escape {
            case UInt8(ascii: "\""): bytes.append(UInt8(ascii: "\""))
            case UInt8(ascii: "\\"): bytes.append(UInt8(ascii: "\\"))
            case UInt8(ascii: "/"): bytes.append(UInt8(ascii: "/"))
            case UInt8(ascii: "b"): bytes.append(0x08)
            case UInt8(ascii: "f"): bytes.append(0x0C)
            case UInt8(ascii: "n"): bytes.append(0x0A)
            case UInt8(ascii: "r"): bytes.append(0x0D)
            case UInt8(ascii: "t"): bytes.append(0x09)
            case UInt8(ascii: "u"):
                var scalar = try parseHex4()
                if (0xD800..<0xDC00).contains(scalar) {
                    guard index + 1 < buffer.count, buffer[index] == UInt8(ascii: "\\"), buffer[index + 1] == UInt8(ascii: "u")
                    else { throw error("unpaired surrogate in a string") }
                    index += 2
                    let low = try parseHex4()
                    guard (0xDC00..<0xE000).contains(low) else { throw error("unpaired surrogate in a string") }
                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                } else if (0xDC00..<0xE000).contains(scalar) {
                    throw error("unpaired surrogate in a string")
                }
                guard let unicode = Unicode.Scalar(scalar) else { throw error("invalid \\u escape") }
                bytes.append(contentsOf: String(Character(unicode)).utf8)
            default:
                index -= 1
                throw error("invalid escape in a string")
            }
        }
        throw error("unterminated string")
    }

    private mutating func parseHex4() throws(JSONSyntaxError) -> UInt32 {
        guard index + 4 <= buffer.count else { throw error("invalid \\u escape") }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let b = buffer[index]
            let digit: UInt32
            switch b {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = UInt32(b - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = UInt32(b - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = UInt32(b - UInt8(ascii: "A") + 10)
            default: throw error("invalid \\u escape")
            }
            value = value << 4 | digit
            index += 1
        }
        return value
    }

    // MARK: Helpers

    @inline(__always)
    private mutating func skipWhitespace() {
        index = buffer.jsonWhitespaceEnd(from: index)
    }

    private func describe(_ b: UInt8) -> String {
        b >= 0x21 && b < 0x7F ? "'\(Character(Unicode.Scalar(b)))'" : "byte 0x\(String(b, radix: 16))"
    }

    private func error(_ message: String) -> JSONSyntaxError {
        let offset = min(index, buffer.count)
        var line = 1, column = 1
        for k in 0..<offset {
            if buffer[k] == 0x0A {
                line += 1
                column = 1
            } else {
                column += 1
            }
        }
        return JSONSyntaxError(message: message, offset: offset, line: line, column: column)
    }
}
