import CLossdJSON
import Dispatch
import Synchronization

/// Reading runs of numbers (`1.5, -2, 3e4`), the loop a tensor body spends its parse time
/// in, and reading the second half of a large matrix on another thread.
enum NumberRuns {
    /// How a run ended.
    enum End {
        /// At the `]` closing the leaf array (not consumed), after `count` numbers.
        case closed(count: Int)
        /// Something other than numbers and commas came first: not a leaf array of numbers.
        case other
    }

    /// Reads `number (, number)*` from `position` up to, not past, the `]` closing a leaf
    /// array, appending the values. CLossdJSON's run scanner reads the common numbers into
    /// `scratch`, which is appended in blocks; a number it leaves open goes through
    /// `DecimalParsing.scan`, which decides it or throws where its syntax fails.
    static func read(
        _ buffer: UnsafeBufferPointer<UInt8>, from position: inout Int, scratch: UnsafeMutableBufferPointer<Double>,
        into values: inout [Double]
    ) throws(DecimalParsing.Failure) -> End {
        guard let base = buffer.baseAddress, let out = scratch.baseAddress else { return .other }
        var count = 0
        var afterValue: Int32 = 0
        while true {
            var stop: Int32 = 0
            let written = lossd_json_scan_number_run(base, buffer.count, &position, afterValue, out, scratch.count, &stop)
            values.append(contentsOf: UnsafeBufferPointer(start: out, count: written))
            count += written
            switch Int(stop) {
            case LOSSD_JSON_RUN_CLOSED:
                return .closed(count: count)
            case LOSSD_JSON_RUN_FULL:
                afterValue = 0
            case LOSSD_JSON_RUN_GENERAL:
                let scanned = try DecimalParsing.scan(buffer, from: position)
                values.append(scanned.value)
                position = scanned.end
                count += 1
                afterValue = 1
            default:
                return .other
            }
        }
    }
}

/// The second half of a large two-dimensional numeric array, read on another thread while
/// the parser reads the first half.
///
/// The split is speculative: from the middle of the remaining input it takes the next `[` as
/// the start of a row and reads rows of `columns` numbers from there to the array's closing
/// `]`. It is used only if the parser, reading from the front, arrives at exactly that `[`
/// as the start of a row; if it never does (the `[` was past the array's end) or the worker
/// found anything but rows of numbers, the parser reads on by itself, and reports any error
/// at its true position. So the outcome, errors included, is the sequential one. A guess that
/// turns out wrong is cancelled (the worker checks before every row), so a wrong guess costs
/// at most the rows read before the parser noticed.
final class ParallelRows: @unchecked Sendable {
    // @unchecked: the worker writes `result` before `done.leave()`, and the parser reads it
    // only after `done.wait()`, which orders the two. `buffer` is read-only, and the parser
    // waits for the worker before its buffer's scope ends (see `JSONReader.parseNumericArray`).

    /// Where the worker's first row starts.
    let rowStart: Int
    private let buffer: UnsafeBufferPointer<UInt8>
    private let columns: Int
    /// Values per input byte in the rows read so far, to size the worker's array.
    private let valuesPerByte: Double
    private let done = DispatchGroup()
    private let cancelled = Atomic<Bool>(false)
    private var result: Rows?

    /// What the worker read: the rows' values, how many rows, and where the array's closing
    /// `]` is.
    struct Rows {
        var values: [Double]
        var count: Int
        var closingBracket: Int
    }

    private init(buffer: UnsafeBufferPointer<UInt8>, rowStart: Int, columns: Int, valuesPerByte: Double) {
        self.buffer = buffer
        self.valuesPerByte = valuesPerByte
        self.rowStart = rowStart
        self.columns = columns
    }

    /// Starts a worker on the rows after the middle of `buffer[position...]`; nil when no
    /// `[` follows the middle.
    static func start(
        _ buffer: UnsafeBufferPointer<UInt8>, from position: Int, columns: Int, valuesPerByte: Double
    ) -> ParallelRows? {
        var rowStart = position + (buffer.count - position) / 2
        while rowStart < buffer.count && buffer[rowStart] != UInt8(ascii: "[") { rowStart += 1 }
        guard rowStart < buffer.count, columns > 0, valuesPerByte > 0 else { return nil }
        let rows = ParallelRows(buffer: buffer, rowStart: rowStart, columns: columns, valuesPerByte: valuesPerByte)
        rows.done.enter()
        DispatchQueue.global().async {
            rows.result = rows.readRows()
            rows.done.leave()
        }
        return rows
    }

    /// Waits for the worker; its rows, or nil when it found anything but rows of numbers.
    func finish() -> Rows? {
        done.wait()
        return result
    }

    /// Tells the worker to stop at its next row and waits for it: its guess is not wanted.
    func cancel() {
        cancelled.store(true, ordering: .relaxed)
        done.wait()
    }

    /// `[n, ...] (, [n, ...])* ]` from `rowStart`, each row `columns` long.
    private func readRows() -> Rows? {
        let scratch = UnsafeMutableBufferPointer<Double>.allocate(capacity: 512)
        defer { scratch.deallocate() }
        var values: [Double] = []
        // The same density estimate as the parser's (see `parseNumericArray`).
        values.reserveCapacity(Int(Double(buffer.count - rowStart) * valuesPerByte * 1.05))
        var i = rowStart, rows = 0
        func skipWhitespace() { i = buffer.jsonWhitespaceEnd(from: i) }
        while true {
            guard !cancelled.load(ordering: .relaxed), i < buffer.count, buffer[i] == UInt8(ascii: "[") else { return nil }
            i += 1
            skipWhitespace()
            guard i < buffer.count, buffer[i] == UInt8(ascii: "-") || DecimalParsing.isDigit(buffer[i]) else { return nil }
            do throws(DecimalParsing.Failure) {
                guard case .closed(let count) = try NumberRuns.read(buffer, from: &i, scratch: scratch, into: &values),
                    count == columns
                else { return nil }
            } catch {
                return nil
            }
            i += 1  // the row's ]
            rows += 1
            skipWhitespace()
            guard i < buffer.count else { return nil }
            if buffer[i] == UInt8(ascii: "]") { return Rows(values: values, count: rows, closingBracket: i) }
            guard buffer[i] == UInt8(ascii: ",") else { return nil }
            i += 1
            skipWhitespace()
        }
    }
}

extension UnsafeBufferPointer<UInt8> {
    /// The index of the first byte at or after `position` that is not JSON whitespace
    /// (space, tab, LF, CR), or `count`.
    @inline(__always)
    func jsonWhitespaceEnd(from position: Int) -> Int {
        var i = position
        while i < count {
            switch self[i] {
            case 0x20, 0x0A, 0x0D, 0x09: i += 1
            default: return i
            }
        }
        return i
    }
}
