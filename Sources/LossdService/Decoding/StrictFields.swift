import LossdJSON

/// The strict-field rules of the API: a request member the endpoint does not know is a
/// 422 `unknown_field` pointing at it (a misspelt parameter must never silently become its
/// default), and `null` is not a value (422 `invalid_input`) unless the field is nullable.
/// When a known name is within two edits of an unknown one, `detail` suggests it.
enum StrictFields {
    /// Checks the members of `object` (at JSON pointer `pointer`) against `allowed`.
    /// `place` names the object in messages, e.g. "the request" or "`params` of loss `focal`".
    static func check(
        _ object: JSONObject, allowed: [String], nullable: Set<String> = [], pointer: String,
        place: @autoclosure () -> String
    ) throws(ServiceError) {
        // The pointer and the place are spelled out only for an error: this runs on every request.
        for (key, value) in object.members {
            guard allowed.contains(key) else {
                throw unknown(key, allowed: allowed, field: "\(pointer)/\(JSONPointer.escape(key))", place: place())
            }
            if case .null = value, !nullable.contains(key) {
                throw ServiceError.invalid(
                    .invalidInput, field: "\(pointer)/\(JSONPointer.escape(key))",
                    "`\(key)` is null; omit a field to leave it unset")
            }
        }
    }

    /// The 422 for an unknown member.
    static func unknown(_ key: String, allowed: [String], field: String, place: String) -> ServiceError {
        var detail = "unknown field `\(key)` in \(place)"
        if let near = nearest(to: key, among: allowed) { detail += "; did you mean `\(near)`?" }
        return ServiceError(status: .unprocessableContent, code: "unknown_field", detail: detail, field: field)
    }

    /// "; did you mean `x`?" for an unknown name (loss, method, metric), or "".
    static func suggestion(for name: String, among candidates: [String]) -> String {
        nearest(to: name, among: candidates).map { "; did you mean `\($0)`?" } ?? ""
    }

    /// The candidate closest to `name` within two edits (insertions, deletions,
    /// substitutions and transpositions of adjacent characters, case-insensitive); the
    /// first in `candidates` wins a tie. Nil when none is that close.
    static func nearest(to name: String, among candidates: [String]) -> String? {
        let target = Array(name.lowercased().unicodeScalars)
        guard target.count <= 64 else { return nil }
        var best: (name: String, distance: Int)?
        for candidate in candidates {
            let d = editDistance(target, Array(candidate.lowercased().unicodeScalars))
            if d <= 2, d < (best?.distance ?? Int.max) { best = (candidate, d) }
        }
        return best?.name
    }

    /// Optimal-string-alignment distance (Damerau–Levenshtein without repeated edits of
    /// one substring), O(|a|·|b|).
    static func editDistance(_ a: [Unicode.Scalar], _ b: [Unicode.Scalar]) -> Int {
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var previous2 = [Int](repeating: 0, count: b.count + 1)
        var previous = Array(0...b.count)
        var current = [Int](repeating: 0, count: b.count + 1)
        for i in 1...a.count {
            current[0] = i
            for j in 1...b.count {
                let cost = a[i - 1] == b[j - 1] ? 0 : 1
                var value = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
                if i > 1, j > 1, a[i - 1] == b[j - 2], a[i - 2] == b[j - 1] {
                    value = min(value, previous2[j - 2] + 1)
                }
                current[j] = value
            }
            (previous2, previous, current) = (previous, current, previous2)
        }
        return previous[b.count]
    }
}

/// RFC 6901 escaping of one reference token.
enum JSONPointer {
    static func escape(_ token: String) -> String {
        token.escaping(["~": "~0", "/": "~1"])
    }
}

extension String {
    /// The string with every character that `escapes` names replaced by its escape (the
    /// one escaper behind JSON pointers and the Prometheus text format).
    func escaping(_ escapes: [Character: String]) -> String {
        guard contains(where: { escapes[$0] != nil }) else { return self }
        var escaped = ""
        escaped.reserveCapacity(utf8.count + 8)
        for character in self {
            if let escape = escapes[character] { escaped += escape } else { escaped.append(character) }
        }
        return escaped
    }
}
