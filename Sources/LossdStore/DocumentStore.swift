/// The durable store of named JSON documents that lossd keeps for its clients: fitted
/// calibrators and fitted scaling laws, each kind in its own collection. One lossd keeps
/// them in an embedded SQLite file (`SQLiteDocumentStore`, the default); a fleet of
/// replicas shares them in PostgreSQL (`PostgresDocumentStore`).
///
/// The store knows nothing of what the documents mean: a document is a name, two summary
/// columns for listings (`kind`, `size`), a creation time and the JSON text. A new kind of
/// stored document needs no schema change and no store code, only a collection name.
///
/// Every document carries a `revision`: a number that changes with every write and is
/// never reused (not even after a delete and re-create, nor across collections), which
/// the API shows as the strong `ETag: "<revision>"`. Conditional writes (`If-Match`,
/// `If-None-Match`) are checked and applied atomically by the store, so two clients that
/// both read revision 7 cannot both replace it.
///
/// Implementations keep no cache: a write through one store object (or one replica) is
/// visible to every other at once.
public protocol DocumentStore: AnyObject, Sendable {
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

    /// Inserts or replaces `document` in `collection`, in one transaction, when
    /// `preconditions` allow it for the revision stored at that moment; says which it did
    /// and the new revision.
    func put(_ document: StoredDocument, in collection: String, preconditions: WritePreconditions) throws(StoreError) -> ConditionalPut
    /// The document called `name` in `collection` and its revision, or nil.
    func fetch(_ name: String, in collection: String) throws(StoreError) -> RevisedDocument?
    /// Every document's summary in `collection`, by name (byte order).
    func list(in collection: String) throws(StoreError) -> [DocumentSummary]
    /// Deletes `name` from `collection` when `preconditions` allow it, in one transaction.
    func delete(_ name: String, in collection: String, preconditions: WritePreconditions) throws(StoreError) -> ConditionalDelete
    /// Number of documents in `collection`.
    func count(in collection: String) throws(StoreError) -> Int
    /// The number of documents per collection for `/metrics`, which runs on the I/O thread:
    /// never waits on a network (the PostgreSQL store answers its last sample), nil when
    /// unknown. Collections without documents may be missing.
    func sampledCounts() -> [String: Int]?
    /// Releases the file or connections; later calls fail with `.failed`.
    func close()
}

extension DocumentStore {
    public var isFull: Bool { false }

    /// Unconditional insert-or-replace; says which it was.
    @discardableResult
    public func put(_ document: StoredDocument, in collection: String) throws(StoreError) -> PutOutcome {
        switch try put(document, in: collection, preconditions: .none) {
        case .written(let outcome, _): return outcome
        case .preconditionFailed: throw .failed(operation: "put", detail: "a write without preconditions was refused")
        }
    }

    /// The document called `name` in `collection`, or nil.
    public func get(_ name: String, in collection: String) throws(StoreError) -> StoredDocument? {
        try fetch(name, in: collection)?.document
    }

    /// Unconditional delete; false when there was none.
    @discardableResult
    public func delete(_ name: String, in collection: String) throws(StoreError) -> Bool {
        switch try delete(name, in: collection, preconditions: .none) {
        case .deleted: return true
        case .notFound, .preconditionFailed: return false
        }
    }
}

/// Why the store cannot be used. Thrown at open (corrupt or unwritable file, a schema
/// from a newer lossd, an unreachable database) and by operations (I/O errors, a full
/// disk, a lost database connection); never swallowed.
public enum StoreError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The file is not a database, or `PRAGMA integrity_check` found damage.
    case corrupt(path: String, detail: String)
    /// The file or its directory cannot be created or written.
    case unwritable(path: String, detail: String)
    /// The schema was written by a newer lossd than this one understands.
    case unsupportedSchema(path: String, found: Int, supported: Int)
    /// An operation failed (the database's message; no paths, no passwords).
    case failed(operation: String, detail: String)
    /// The database server could not be reached (PostgreSQL; `location` has no password).
    case unreachable(location: String, detail: String)
    /// The store setting cannot be used (an unparsable database URL).
    case invalidLocation(detail: String)
    /// The disk (or the database's quota) is full: writes fail until space is freed.
    case full(operation: String, detail: String)

    public var description: String {
        switch self {
        case let .corrupt(path, detail):
            "store \(path) is corrupt (\(detail)); restore it from a backup or move it aside"
        case let .unwritable(path, detail):
            "store \(path) cannot be opened for writing (\(detail))"
        case let .unsupportedSchema(path, found, supported):
            "store \(path) has schema version \(found); this lossd supports up to \(supported)"
        case let .failed(operation, detail):
            "store: \(operation) failed (\(detail))"
        case let .unreachable(location, detail):
            "store \(location) is unreachable (\(detail))"
        case let .invalidLocation(detail):
            "store: \(detail)"
        case let .full(operation, detail):
            "store: \(operation) failed: the disk is full (\(detail))"
        }
    }
}

/// A stored document: its name, the summary columns a listing shows and its JSON text.
public struct StoredDocument: Sendable, Equatable {
    public let name: String
    /// What it is within its collection, for listings: a calibrator's method, a scaling
    /// law's law.
    public let kind: String
    /// A size for listings: a calibrator's classes, the points a law was fitted to.
    public let size: Int
    /// RFC 3339, UTC.
    public let createdAt: String
    /// The document itself: a JSON object's text.
    public let json: String

    public init(name: String, kind: String, size: Int, createdAt: String, json: String) {
        self.name = name
        self.kind = kind
        self.size = size
        self.createdAt = createdAt
        self.json = json
    }

    /// The document's listing line.
    public var summary: DocumentSummary { DocumentSummary(name: name, kind: kind, size: size, createdAt: createdAt) }
}

/// One line of a collection's listing.
public struct DocumentSummary: Sendable, Equatable {
    public let name: String
    public let kind: String
    public let size: Int
    public let createdAt: String

    public init(name: String, kind: String, size: Int, createdAt: String) {
        self.name = name
        self.kind = kind
        self.size = size
        self.createdAt = createdAt
    }
}

/// Whether a put made a new document or replaced one.
public enum PutOutcome: Sendable, Equatable {
    case created
    case replaced
}

/// A stored document with the revision it has now.
public struct RevisedDocument: Sendable, Equatable {
    public let document: StoredDocument
    public let revision: Int64

    public init(document: StoredDocument, revision: Int64) {
        self.document = document
        self.revision = revision
    }
}

/// The result of a put with preconditions.
public enum ConditionalPut: Sendable, Equatable {
    /// Written; `revision` is the document's new revision.
    case written(PutOutcome, revision: Int64)
    /// Nothing written: the preconditions did not hold for `current` (nil: no document).
    case preconditionFailed(current: Int64?)
}

/// The result of a delete with preconditions.
public enum ConditionalDelete: Sendable, Equatable {
    case deleted
    /// There was no document of that name (preconditions are not evaluated then, as
    /// RFC 9110 §13.2.1 asks: the answer without them would not be a 2xx).
    case notFound
    /// Nothing deleted: the preconditions did not hold for `current`.
    case preconditionFailed(current: Int64)
}
