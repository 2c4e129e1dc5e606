import LossdHTTP
import Testing

// Shared machinery for the HTTPRequestParser tests.
//
// Every test is parameterised on a `FeedMode` and goes through `parse(...)`, which feeds
// the input in that mode and also in the other reference modes (whole input at once and
// one byte at a time), and expects every mode to produce the same events, the same error
// and the same parser state. Feeding a byte at a time calls `next()` after every byte
// until it returns nil, just as a server does after every read.

/// How the input is handed to the parser.
enum FeedMode: Sendable, Hashable, Codable, CustomTestStringConvertible {
    /// Each piece in one `append`, then `next()` until nil.
    case whole
    /// One byte per `append`, `next()` drained after every byte.
    case byteAtATime
    /// Slices of at most `n` bytes per `append`, `next()` drained after every slice.
    case slices(Int)

    /// The two modes every test runs in.
    static let both: [FeedMode] = [.whole, .byteAtATime]

    var testDescription: String {
        switch self {
        case .whole: "whole input"
        case .byteAtATime: "byte at a time"
        case .slices(let n): "\(n)-byte slices"
        }
    }
}

func bytes(_ string: String) -> [UInt8] { Array(string.utf8) }

// MARK: - Comparable snapshots of what the parser produced

struct Field: Equatable, Sendable, CustomStringConvertible {
    var name: String
    var value: String
    init(_ name: String, _ value: String) {
        self.name = name
        self.value = value
    }
    var description: String { "\(name): \(value)" }
}

extension HTTPHeaders {
    var snapshot: [Field] { map { Field($0.name, $0.value) } }
}

struct HeadSnapshot: Equatable, CustomStringConvertible {
    var method: String
    var target: String
    var version: HTTPVersion
    var headers: [Field]
    var framing: HTTPBodyFraming

    init(_ head: HTTPRequestHead) {
        method = head.method
        target = head.target
        version = head.version
        headers = head.headers.snapshot
        framing = head.framing
    }

    var description: String { "\(method) \(target) \(version) \(headers) \(framing)" }
}

enum EventSnapshot: Equatable, CustomStringConvertible {
    case head(HeadSnapshot)
    case request(HeadSnapshot, body: [UInt8], trailers: [Field])

    init(_ event: HTTPParserEvent) {
        switch event {
        case .head(let head): self = .head(HeadSnapshot(head))
        case .request(let request):
            self = .request(HeadSnapshot(request.head), body: request.body, trailers: request.trailers.snapshot)
        }
    }

    var description: String {
        switch self {
        case .head(let head): return ".head(\(head))"
        case .request(let head, let body, let trailers):
            let shown = body.count <= 64 ? String(decoding: body, as: UTF8.self) : "\(body.prefix(16))..."
            return ".request(\(head), body: \(body.count) bytes \"\(shown)\", trailers: \(trailers))"
        }
    }
}

struct StateSnapshot: Equatable, CustomStringConvertible {
    var bufferedByteCount: Int
    var isIdle: Bool
    var isReadingBody: Bool

    init(_ parser: HTTPRequestParser) {
        bufferedByteCount = parser.bufferedByteCount
        isIdle = parser.isIdle
        isReadingBody = parser.isReadingBody
    }

    init(bufferedByteCount: Int, isIdle: Bool, isReadingBody: Bool) {
        self.bufferedByteCount = bufferedByteCount
        self.isIdle = isIdle
        self.isReadingBody = isReadingBody
    }

    var description: String { "(buffered: \(bufferedByteCount), idle: \(isIdle), readingBody: \(isReadingBody))" }
}

/// Everything that must not depend on how the input was split.
struct Outcome: Equatable, CustomStringConvertible {
    var eventsPerPiece: [[EventSnapshot]]
    var error: HTTPParseError?
    /// Parser state after each piece; only compared while no error has occurred
    /// (after an error the unread remainder naturally depends on the feeding).
    var statesPerPiece: [StateSnapshot]

    var description: String {
        "events: \(eventsPerPiece), error: \(error.map { "\($0)" } ?? "none"), states: \(statesPerPiece)"
    }
}

// MARK: - Feeding

/// A parser plus the events and error collected while feeding it in one mode.
struct Feeder {
    private(set) var parser: HTTPRequestParser
    let mode: FeedMode
    private(set) var events: [HTTPParserEvent] = []
    private(set) var error: HTTPParseError?
    /// Bytes appended so far; when an error occurs feeding stops, so this says how much
    /// input the parser had seen when it raised the error.
    private(set) var bytesAppended = 0

    init(mode: FeedMode, limits: HTTPParserLimits = HTTPParserLimits()) {
        self.parser = HTTPRequestParser(limits: limits)
        self.mode = mode
    }

    /// Feeds `input` in this feeder's mode, draining `next()` after every append.
    /// Returns the events produced. Does nothing once an error has been seen.
    @discardableResult
    mutating func feed(_ input: [UInt8]) -> [HTTPParserEvent] {
        var produced: [HTTPParserEvent] = []
        guard error == nil else { return produced }
        let step: Int
        switch mode {
        case .whole: step = max(input.count, 1)
        case .byteAtATime: step = 1
        case .slices(let n): step = max(n, 1)
        }
        var start = 0
        repeat {
            let end = min(start + step, input.count)
            parser.append(input[start..<end])
            bytesAppended += end - start
            start = end
            drain: while true {
                do throws(HTTPParseError) {
                    guard let event = try parser.next() else { break drain }
                    produced.append(event)
                } catch {
                    self.error = error
                    events += produced
                    return produced
                }
            }
        } while start < input.count
        events += produced
        return produced
    }
}

/// The result of feeding some pieces of input to a fresh parser in one mode.
struct Parsed {
    var feeder: Feeder
    var eventsPerPiece: [[HTTPParserEvent]]
    var statesPerPiece: [StateSnapshot]

    var mode: FeedMode { feeder.mode }
    var parser: HTTPRequestParser { feeder.parser }
    var events: [HTTPParserEvent] { feeder.events }
    var error: HTTPParseError? { feeder.error }

    var heads: [HTTPRequestHead] {
        events.compactMap { if case .head(let head) = $0 { head } else { nil } }
    }

    var requests: [HTTPRequest] {
        events.compactMap { if case .request(let request) = $0 { request } else { nil } }
    }

    var snapshots: [EventSnapshot] { events.map(EventSnapshot.init) }

    var outcome: Outcome {
        Outcome(
            eventsPerPiece: eventsPerPiece.map { $0.map(EventSnapshot.init) },
            error: error,
            statesPerPiece: error == nil ? statesPerPiece : [])
    }
}

private func feedPieces(_ pieces: [[UInt8]], mode: FeedMode, limits: HTTPParserLimits) -> Parsed {
    var feeder = Feeder(mode: mode, limits: limits)
    var eventsPerPiece: [[HTTPParserEvent]] = []
    var statesPerPiece: [StateSnapshot] = []
    for piece in pieces {
        eventsPerPiece.append(feeder.feed(piece))
        statesPerPiece.append(StateSnapshot(feeder.parser))
    }
    return Parsed(feeder: feeder, eventsPerPiece: eventsPerPiece, statesPerPiece: statesPerPiece)
}

/// Feeds `pieces` (one after another) to a fresh parser in `mode`, and to fresh parsers in
/// each of `references`; expects all of them to agree, and that the events are well formed
/// (`.head` then `.request` carrying that same head). Returns the run in `mode`.
@discardableResult
func parse(
    pieces: [[UInt8]],
    mode: FeedMode,
    limits: HTTPParserLimits = HTTPParserLimits(),
    references: [FeedMode] = FeedMode.both,
    sourceLocation: SourceLocation = #_sourceLocation
) -> Parsed {
    let result = feedPieces(pieces, mode: mode, limits: limits)
    for reference in references where reference != mode {
        let other = feedPieces(pieces, mode: reference, limits: limits)
        #expect(
            result.outcome == other.outcome,
            "feeding \(mode.testDescription) and \(reference.testDescription) give different results",
            sourceLocation: sourceLocation)
    }
    // Events must alternate .head / .request, the request repeating its head.
    var pendingHead: HeadSnapshot?
    for event in result.snapshots {
        switch event {
        case .head(let head):
            #expect(pendingHead == nil, "a .head arrived before the previous request completed", sourceLocation: sourceLocation)
            pendingHead = head
        case .request(let head, _, _):
            #expect(pendingHead == head, "a .request does not match the .head before it", sourceLocation: sourceLocation)
            pendingHead = nil
        }
    }
    return result
}

@discardableResult
func parse(
    _ input: [UInt8],
    mode: FeedMode,
    limits: HTTPParserLimits = HTTPParserLimits(),
    references: [FeedMode] = FeedMode.both,
    sourceLocation: SourceLocation = #_sourceLocation
) -> Parsed {
    parse(pieces: [input], mode: mode, limits: limits, references: references, sourceLocation: sourceLocation)
}

@discardableResult
func parse(
    _ input: String,
    mode: FeedMode,
    limits: HTTPParserLimits = HTTPParserLimits(),
    sourceLocation: SourceLocation = #_sourceLocation
) -> Parsed {
    parse(bytes(input), mode: mode, limits: limits, sourceLocation: sourceLocation)
}

/// Parses input that must hold exactly one complete, valid request, and returns it.
func parseOneRequest(
    _ input: [UInt8],
    mode: FeedMode,
    limits: HTTPParserLimits = HTTPParserLimits(),
    sourceLocation: SourceLocation = #_sourceLocation
) throws -> HTTPRequest {
    let result = parse(input, mode: mode, limits: limits, sourceLocation: sourceLocation)
    #expect(result.error == nil, "unexpected error \(result.error.map { "\($0)" } ?? "")", sourceLocation: sourceLocation)
    #expect(result.heads.count == 1, "heads: \(result.heads.count)", sourceLocation: sourceLocation)
    #expect(result.requests.count == 1, "requests: \(result.requests.count)", sourceLocation: sourceLocation)
    let idle = result.parser.isIdle
    #expect(idle, "parser not idle after a complete request", sourceLocation: sourceLocation)
    return try #require(result.requests.first, sourceLocation: sourceLocation)
}

func parseOneRequest(
    _ input: String,
    mode: FeedMode,
    limits: HTTPParserLimits = HTTPParserLimits(),
    sourceLocation: SourceLocation = #_sourceLocation
) throws -> HTTPRequest {
    try parseOneRequest(bytes(input), mode: mode, limits: limits, sourceLocation: sourceLocation)
}

/// Parses input that must fail with `kind` / `status` after exactly `eventsBefore` events.
@discardableResult
func expectParseError(
    _ input: [UInt8],
    mode: FeedMode,
    kind: HTTPParseError.Kind,
    status: Int,
    limits: HTTPParserLimits = HTTPParserLimits(),
    eventsBefore: Int = 0,
    sourceLocation: SourceLocation = #_sourceLocation
) -> Parsed {
    let result = parse(input, mode: mode, limits: limits, sourceLocation: sourceLocation)
    #expect(result.error != nil, "accepted; events: \(result.snapshots)", sourceLocation: sourceLocation)
    if let error = result.error {
        #expect(error.kind == kind, "got \(error)", sourceLocation: sourceLocation)
        #expect(error.status.code == status, "got \(error)", sourceLocation: sourceLocation)
    }
    #expect(result.events.count == eventsBefore, "events before the error: \(result.snapshots)", sourceLocation: sourceLocation)
    return result
}

@discardableResult
func expectParseError(
    _ input: String,
    mode: FeedMode,
    kind: HTTPParseError.Kind,
    status: Int,
    limits: HTTPParserLimits = HTTPParserLimits(),
    eventsBefore: Int = 0,
    sourceLocation: SourceLocation = #_sourceLocation
) -> Parsed {
    expectParseError(
        bytes(input), mode: mode, kind: kind, status: status, limits: limits, eventsBefore: eventsBefore,
        sourceLocation: sourceLocation)
}

/// A named input for parameterised tests.
struct InputCase: Sendable, CustomTestStringConvertible {
    let label: String
    let input: [UInt8]

    init(_ label: String, _ input: String) {
        self.label = label
        self.input = bytes(input)
    }

    init(_ label: String, bytes input: [UInt8]) {
        self.label = label
        self.input = input
    }

    var testDescription: String { label }
}

/// A single byte as a test argument, shown in hex.
struct Byte: Sendable, CustomTestStringConvertible {
    let value: UInt8
    init(_ value: UInt8) { self.value = value }
    var testDescription: String {
        let hex = String(value, radix: 16, uppercase: true)
        return "0x" + (hex.count == 1 ? "0" + hex : hex)
    }
}

/// tchar of RFC 9110 section 5.6.2.
func isTchar(_ b: UInt8) -> Bool {
    switch b {
    case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
        return true
    default:
        return Array("!#$%&'*+-.^_`|~".utf8).contains(b)
    }
}

let allBytes: [Byte] = (0...255).map { Byte(UInt8($0)) }
