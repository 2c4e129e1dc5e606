/// What the calibrator routes need from a store, so one lossd can keep its calibrators in
/// the embedded SQLite file (`CalibratorStore`, the default) and a fleet of replicas can
/// share them in PostgreSQL (`PostgresCalibratorStore`).
///
/// Every calibrator carries a `revision`: a number that changes with every write and is
/// never reused (not even after a delete and re-create), which the API shows as the
/// strong `ETag: "<revision>"`. Conditional writes (`If-Match`, `If-None-Match`) are
/// checked and applied atomically by the store, so two clients that both read revision 7
/// cannot both replace it.
///
/// Implementations keep no cache of calibrators: a write through one store object (or
/// one replica) is visible to every other at once.
public protocol CalibratorStorage: AnyObject, Sendable {
    /// `sqlite` or `postgres`.
    var backend: String { get }
    /// Where the data is: a file path, or a database URL with its password replaced by
    /// `***` (safe to log).
    var location: String { get }
    /// Whether the store can serve now, read without blocking (the PostgreSQL store keeps
    /// it current with a background health check). `/readyz` answers from it.
    var isAvailable: Bool { get }
    /// Whether writes fail for want of space (a full disk), read without blocking:
    /// `/readyz` is not ready meanwhile, and writes answer 507.
    var isFull: Bool { get }

    /// Inserts or replaces `calibrator` in one transaction when `preconditions` allow
    /// it for the revision stored at that moment; says which it did and the new revision.
    func put(_ calibrator: StoredCalibrator, preconditions: WritePreconditions) throws(CalibratorStoreError) -> ConditionalPut
    /// The calibrator called `name` and its revision, or nil.
    func fetch(_ name: String) throws(CalibratorStoreError) -> RevisedCalibrator?
    /// Every calibrator's summary, by name (byte order).
    func list() throws(CalibratorStoreError) -> [CalibratorSummary]
    /// Deletes `name` when `preconditions` allow it, in one transaction.
    func delete(_ name: String, preconditions: WritePreconditions) throws(CalibratorStoreError) -> ConditionalDelete
    /// Number of stored calibrators.
    func count() throws(CalibratorStoreError) -> Int
    /// The number of stored calibrators for `/metrics`, which runs on the I/O thread:
    /// never waits on a network (the PostgreSQL store answers its last sample), nil when
    /// unknown.
    func sampledCount() -> Int?
    /// Releases the file or connections; later calls fail with `.failed`.
    func close()
}

extension CalibratorStorage {
    public var isFull: Bool { false }

    /// Unconditional insert-or-replace; says which it was.
    @discardableResult
    public func put(_ calibrator: StoredCalibrator) throws(CalibratorStoreError) -> CalibratorPutOutcome {
        switch try put(calibrator, preconditions: .none) {
        case .written(let outcome, _): return outcome
        case .preconditionFailed: throw .failed(operation: "put", detail: "a write without preconditions was refused")
        }
    }

    /// The calibrator called `name`, or nil.
    public func get(_ name: String) throws(CalibratorStoreError) -> StoredCalibrator? {
        try fetch(name)?.calibrator
    }

    /// Unconditional delete; false when there was none.
    @discardableResult
    public func delete(_ name: String) throws(CalibratorStoreError) -> Bool {
        switch try delete(name, preconditions: .none) {
        case .deleted: return true
        case .notFound, .preconditionFailed: return false
        }
    }
}

/// Whether a put made a new calibrator or replaced one.
public enum CalibratorPutOutcome: Sendable, Equatable {
    case created
    case replaced
}

/// A stored calibrator with the revision it has now.
public struct RevisedCalibrator: Sendable, Equatable {
    public let calibrator: StoredCalibrator
    public let revision: Int64

    public init(calibrator: StoredCalibrator, revision: Int64) {
        self.calibrator = calibrator
        self.revision = revision
    }
}

/// The result of a put with preconditions.
public enum ConditionalPut: Sendable, Equatable {
    /// Written; `revision` is the calibrator's new revision.
    case written(CalibratorPutOutcome, revision: Int64)
    /// Nothing written: the preconditions did not hold for `current` (nil: no calibrator).
    case preconditionFailed(current: Int64?)
}

/// The result of a delete with preconditions.
public enum ConditionalDelete: Sendable, Equatable {
    case deleted
    /// There was no calibrator of that name (preconditions are not evaluated then, as
    /// RFC 9110 §13.2.1 asks: the answer without them would not be a 2xx).
    case notFound
    /// Nothing deleted: the preconditions did not hold for `current`.
    case preconditionFailed(current: Int64)
}

/// One entity tag of an `If-Match` / `If-None-Match` list. Only tags lossd issued
/// (`"<decimal revision>"`) can ever match; anything else is kept with `revision == nil`.
public struct EntityTag: Sendable, Equatable {
    public let revision: Int64?
    public let weak: Bool

    public init(revision: Int64?, weak: Bool = false) {
        self.revision = revision
        self.weak = weak
    }

    /// The strong ETag lossd sends for `revision`: `"<revision>"`.
    public static func header(for revision: Int64) -> String { "\"\(revision)\"" }
}

/// An `If-Match` or `If-None-Match` field: `*` or a list of entity tags.
public enum EntityTagCondition: Sendable, Equatable {
    case any
    case tags([EntityTag])

    /// Parses every field value of one header (RFC 9110 §13.1.1): `*` when it is the
    /// whole field, else a list of entity tags. Elements that are not entity tags (a `*`
    /// inside a list among them) are kept as tags that never match, so a garbled
    /// condition fails safe (412) instead of being ignored.
    public static func parse(_ values: [String]) -> EntityTagCondition? {
        guard !values.isEmpty else { return nil }
        if values.count == 1, values[0].trimmed(of: " \t") == "*" { return .any }
        var tags: [EntityTag] = []
        for value in values {
            for rawElement in value.split(separator: ",") {
                let element = rawElement.trimmed(of: " \t")
                if element.isEmpty { continue }
                var opaque = Substring(element)
                var weak = false
                if opaque.hasPrefix("W/") {
                    weak = true
                    opaque = opaque.dropFirst(2)
                }
                var revision: Int64?
                if opaque.count >= 3, opaque.first == "\"", opaque.last == "\"" {
                    let inner = opaque.dropFirst().dropLast()
                    // Strong comparison is by characters: only the form lossd sends
                    // (no leading zeros) can match.
                    if !inner.isEmpty, inner.utf8.allSatisfy({ (0x30...0x39).contains($0) }),
                        inner == "0" || inner.first != "0"
                    {
                        revision = Int64(inner)
                    }
                }
                tags.append(EntityTag(revision: revision, weak: weak))
            }
        }
        return .tags(tags)
    }
}

/// The preconditions of a conditional write: `If-Match` (strong comparison) and
/// `If-None-Match` (weak comparison), evaluated in that order (RFC 9110 §13.2.2).
public struct WritePreconditions: Sendable, Equatable {
    public var ifMatch: EntityTagCondition?
    public var ifNoneMatch: EntityTagCondition?

    /// No preconditions: the write always goes ahead.
    public static let none = WritePreconditions()

    public init(ifMatch: EntityTagCondition? = nil, ifNoneMatch: EntityTagCondition? = nil) {
        self.ifMatch = ifMatch
        self.ifNoneMatch = ifNoneMatch
    }

    public var isEmpty: Bool { ifMatch == nil && ifNoneMatch == nil }

    /// Whether a write may go ahead when the stored revision is `current` (nil: none stored).
    public func allow(current: Int64?) -> Bool {
        switch ifMatch {
        case nil: break
        case .any?: if current == nil { return false }
        case .tags(let tags)?:
            guard let current, tags.contains(where: { !$0.weak && $0.revision == current }) else { return false }
        }
        switch ifNoneMatch {
        case nil: break
        case .any?: if current != nil { return false }
        case .tags(let tags)?:
            if let current, tags.contains(where: { $0.revision == current }) { return false }
        }
        return true
    }
}

extension StringProtocol {
    fileprivate func trimmed(of set: String) -> String {
        var s = Substring(self)
        while let f = s.first, set.contains(f) { s.removeFirst() }
        while let l = s.last, set.contains(l) { s.removeLast() }
        return String(s)
    }
}
