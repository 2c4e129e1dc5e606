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
    /// The text without leading and trailing characters of `set` (HTTP list elements,
    /// server messages).
    func trimmed(of set: String) -> String {
        var s = Substring(self)
        while let f = s.first, set.contains(f) { s.removeFirst() }
        while let l = s.last, set.contains(l) { s.removeLast() }
        return String(s)
    }
}
