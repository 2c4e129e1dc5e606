#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The elements both of lossd's SVG documents are drawn from (the reliability diagram,
/// `ReliabilitySVG`, and the scaling-law plots, `ScalingSVG`): lines, rectangles, text,
/// XML escaping, coordinates with fixed decimals, numbers to significant figures and
/// superscripts, without Foundation, so that the same request always gives the same bytes.
protocol SVGDrawing {}

extension SVGDrawing {
    /// The XML declaration, the `<svg>` element with its size and viewBox, the document's
    /// `<title>` and a white background.
    static func documentStart(width: Double, height: Double, title: String, fontSize: Int) -> String {
        var s = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        s += "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(height))\" "
        s += "viewBox=\"0 0 \(Int(width)) \(Int(height))\" font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\" "
        s += "font-size=\"\(fontSize)\">\n"
        s += "<title>\(escape(title))</title>\n"
        s += "<rect width=\"100%\" height=\"100%\" fill=\"#ffffff\"/>\n"
        return s
    }

    static func line(_ x1: Double, _ y1: Double, _ x2: Double, _ y2: Double, stroke: String, extra: String = "") -> String {
        "<line x1=\"\(f(x1))\" y1=\"\(f(y1))\" x2=\"\(f(x2))\" y2=\"\(f(y2))\" stroke=\"\(stroke)\"\(extra)/>\n"
    }

    static func rect(_ x: Double, _ y: Double, _ w: Double, _ h: Double, fill: String, extra: String = "") -> String {
        "<rect x=\"\(f(x))\" y=\"\(f(y))\" width=\"\(f(max(w, 0)))\" height=\"\(f(max(h, 0)))\" fill=\"\(fill)\"\(extra)/>\n"
    }

    static func text(
        _ x: Double, _ y: Double, _ content: String, size: Int = 12, anchor: String = "start",
        weight: String? = nil, fill: String = "#222222", rotate: Bool = false
    ) -> String {
        var s = "<text x=\"\(f(x))\" y=\"\(f(y))\" font-size=\"\(size)\" text-anchor=\"\(anchor)\" fill=\"\(fill)\""
        if let weight { s += " font-weight=\"\(weight)\"" }
        if rotate { s += " transform=\"rotate(-90 \(f(x)) \(f(y)))\"" }
        return s + ">\(escape(content))</text>\n"
    }

    /// XML text and attribute escaping.
    static func escape(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for c in text {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&apos;"
            default: out.append(c)
            }
        }
        return out
    }

    /// Coordinates with two decimals.
    static func f(_ v: Double) -> String { fixed(v, 2) }

    /// `v` rounded to `digits` decimals, without Foundation.
    static func fixed(_ v: Double, _ digits: Int) -> String {
        guard v.isFinite else { return "nan" }
        var scale = 1.0
        for _ in 0..<digits { scale *= 10 }
        let scaled = (abs(v) * scale).rounded()
        guard scaled < 9e15 else { return v.description }
        let units = Int64(scaled)
        let p = Int64(scale)
        var result = (v < 0 && units != 0 ? "-" : "") + String(units / p)
        if digits > 0 {
            let frac = String(units % p)
            result += "." + String(repeating: "0", count: digits - frac.count) + frac
        }
        return result
    }

    // MARK: Text

    /// `^{…}` markup as tspans raised by a third of the size.
    static func rich(_ x: Double, _ y: Double, _ markup: String, size: Int) -> String {
        var s = "<text x=\"\(f(x))\" y=\"\(f(y))\" font-size=\"\(size)\" text-anchor=\"middle\" fill=\"#222222\" font-weight=\"bold\">"
        var rest = Substring(markup)
        let rise = size / 3
        while let open = rest.firstRange(of: "^{"), let close = rest[open.upperBound...].firstIndex(of: "}") {
            s += escape(String(rest[..<open.lowerBound]))
            s += "<tspan dy=\"-\(rise)\" font-size=\"\(size * 3 / 4)\">\(escape(String(rest[open.upperBound..<close])))</tspan>"
            rest = rest[rest.index(after: close)...]
            s += "<tspan dy=\"\(rise)\">\(escape(String(rest.prefix { $0 != "^" })))</tspan>"
            rest = rest.drop { $0 != "^" }
        }
        return s + escape(String(rest)) + "</text>\n"
    }

    /// The markup as plain text (`^{2}` → `^2`), for the document's `<title>`.
    static func plain(_ markup: String) -> String {
        markup.replacingOccurrences("^{", "^").replacingOccurrences("}", "")
    }

    /// `v` to `digits` significant figures: plain between 10⁻³ and 10⁵, else `m×10ᵉ`.
    static func sig(_ v: Double, _ digits: Int) -> String {
        guard v.isFinite else { return "\u{2013}" }
        guard v != 0 else { return "0" }
        var e = Int(log10(abs(v)).rounded(.down))
        if e >= -3, e < 5 { return trimmed(fixed(v, max(0, digits - 1 - e))) }
        var m = v / pow(10, Double(e))
        if abs((m * pow(10, Double(digits - 1))).rounded()) >= pow(10, Double(digits)) {
            e += 1
            m /= 10
        }
        return trimmed(fixed(m, digits - 1)) + "\u{d7}10" + superscript(e)
    }

    /// Trailing zeros after a decimal point removed.
    static func trimmed(_ s: String) -> String {
        guard s.contains(".") else { return s }
        var t = Substring(s)
        while t.last == "0" { t = t.dropLast() }
        if t.last == "." { t = t.dropLast() }
        return t == "-0" ? "0" : String(t)
    }

    static func superscript(_ n: Int) -> String {
        let digits: [Character] = ["\u{2070}", "\u{b9}", "\u{b2}", "\u{b3}", "\u{2074}", "\u{2075}", "\u{2076}", "\u{2077}", "\u{2078}", "\u{2079}"]
        return (n < 0 ? "\u{207b}" : "") + String(String(abs(n)).map { digits[Int(String($0))!] })
    }
}

extension String {
    /// Every occurrence of `target` replaced (without Foundation).
    func replacingOccurrences(_ target: String, _ replacement: String) -> String {
        var out = "", rest = Substring(self)
        while let r = rest.firstRange(of: target) {
            out += rest[..<r.lowerBound] + replacement
            rest = rest[r.upperBound...]
        }
        return out + rest
    }
}
