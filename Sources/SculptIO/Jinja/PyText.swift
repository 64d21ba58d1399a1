// Python `str` behaviour the templates rely on: whitespace classes, strip/split/splitlines,
// title/capitalize, `repr()` of strings and floats. Strings are handled as Unicode scalars
// (Python code points), never as Swift grapheme clusters.

enum PyText {
    /// `str.isspace()` for one code point (what `\s` and `str.strip()` use).
    static func isSpace(_ c: Unicode.Scalar) -> Bool {
        switch c.value {
        case 0x09...0x0D, 0x1C...0x20, 0x85, 0xA0, 0x1680, 0x2000...0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000:
            return true
        default:
            return false
        }
    }

    static func isLineBreak(_ c: Unicode.Scalar) -> Bool {
        switch c.value {
        case 0x0A, 0x0B, 0x0C, 0x0D, 0x1C, 0x1D, 0x1E, 0x85, 0x2028, 0x2029: return true
        default: return false
        }
    }

    static func scalars(_ s: String) -> [Unicode.Scalar] { Array(s.unicodeScalars) }

    static func string<S: Sequence>(_ scalars: S) -> String where S.Element == Unicode.Scalar {
        var out = String.UnicodeScalarView()
        out.append(contentsOf: scalars)
        return String(out)
    }

    static func strip(_ s: String, _ chars: String?, leading: Bool, trailing: Bool) -> String {
        let a = scalars(s)
        let set: Set<UInt32>? = chars.map { Set($0.unicodeScalars.map(\.value)) }
        func drop(_ c: Unicode.Scalar) -> Bool { set.map { $0.contains(c.value) } ?? isSpace(c) }
        var lo = 0, hi = a.count
        if leading { while lo < hi, drop(a[lo]) { lo += 1 } }
        if trailing { while hi > lo, drop(a[hi - 1]) { hi -= 1 } }
        return string(a[lo..<hi])
    }

    /// `str.split(sep, maxsplit)`; nil separator splits on runs of whitespace.
    static func split(_ s: String, _ sep: String?, maxsplit: Int) -> [String]? {
        let a = scalars(s)
        var out: [String] = []
        guard let sep else {
            var i = 0
            var splits = 0
            while i < a.count {
                while i < a.count, isSpace(a[i]) { i += 1 }
                if i >= a.count { break }
                if maxsplit >= 0, splits >= maxsplit {
                    var end = a.count
                    while end > i, isSpace(a[end - 1]) { end -= 1 }
                    out.append(string(a[i..<end]))
                    return out
                }
                let start = i
                while i < a.count, !isSpace(a[i]) { i += 1 }
                out.append(string(a[start..<i]))
                splits += 1
            }
            return out
        }
        let p = scalars(sep)
        if p.isEmpty { return nil }
        var start = 0, i = 0, splits = 0
        while i + p.count <= a.count {
            if (maxsplit < 0 || splits < maxsplit), Array(a[i..<i + p.count]) == p {
                out.append(string(a[start..<i]))
                i += p.count
                start = i
                splits += 1
            } else {
                i += 1
            }
        }
        out.append(string(a[start...]))
        return out
    }

    static func splitlines(_ s: String, keepends: Bool = false) -> [String] {
        let a = scalars(s)
        var out: [String] = []
        var start = 0, i = 0
        while i < a.count {
            if isLineBreak(a[i]) {
                var end = i + 1
                if a[i].value == 0x0D, end < a.count, a[end].value == 0x0A { end += 1 }
                out.append(string(a[start..<(keepends ? end : i)]))
                start = end
                i = end
            } else {
                i += 1
            }
        }
        if start < a.count { out.append(string(a[start...])) }
        return out
    }

    static func upper(_ s: String) -> String { s.uppercased() }
    static func lower(_ s: String) -> String { s.lowercased() }

    private static func isCased(_ c: Unicode.Scalar) -> Bool {
        c.properties.isUppercase || c.properties.isLowercase || c.properties.generalCategory == .titlecaseLetter
    }

    /// `str.title()`.
    static func title(_ s: String) -> String {
        var out = ""
        var prevCased = false
        for c in s.unicodeScalars {
            let p = c.properties
            if p.isUppercase || p.generalCategory == .titlecaseLetter {
                out += prevCased ? p.lowercaseMapping : String(c)
            } else if p.isLowercase {
                out += prevCased ? String(c) : p.titlecaseMapping
            } else {
                out.unicodeScalars.append(c)
            }
            prevCased = isCased(c)
        }
        return out
    }

    /// `str.capitalize()`: first code point title-cased, the rest lower-cased.
    static func capitalize(_ s: String) -> String {
        let a = scalars(s)
        guard let first = a.first else { return "" }
        return first.properties.titlecaseMapping + string(a.dropFirst()).lowercased()
    }

    /// Jinja's `title` filter: each word (split at `-`, whitespace and opening brackets)
    /// gets its first character upper-cased and the rest lower-cased.
    static func jinjaTitle(_ s: String) -> String {
        var out = ""
        var item: [Unicode.Scalar] = []
        var itemIsSep = false
        func isSep(_ c: Unicode.Scalar) -> Bool { isSpace(c) || "-({[<".unicodeScalars.contains(c) }
        func flush() {
            guard let f = item.first else { return }
            out += String(f).uppercased() + string(item.dropFirst()).lowercased()
            item = []
        }
        for c in s.unicodeScalars {
            let sep = isSep(c)
            if !item.isEmpty, sep != itemIsSep { flush() }
            itemIsSep = sep
            item.append(c)
        }
        flush()
        return out
    }

    static func isPrintable(_ c: Unicode.Scalar) -> Bool {
        if c == " " { return true }
        switch c.properties.generalCategory {
        case .control, .format, .surrogate, .privateUse, .unassigned, .lineSeparator, .paragraphSeparator, .spaceSeparator:
            return false
        default:
            return true
        }
    }

    static func hex(_ v: UInt32, width: Int) -> String {
        let h = String(v, radix: 16)
        return String(repeating: "0", count: max(0, width - h.count)) + h
    }

    /// `repr(str)`.
    static func repr(_ s: String) -> String {
        let quote: Unicode.Scalar = (s.unicodeScalars.contains("'") && !s.unicodeScalars.contains("\"")) ? "\"" : "'"
        var out = String(quote)
        for c in s.unicodeScalars {
            switch c {
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if c == quote {
                    out += "\\" + String(c)
                } else if isPrintable(c) {
                    out.unicodeScalars.append(c)
                } else if c.value < 0x100 {
                    out += "\\x" + hex(c.value, width: 2)
                } else if c.value < 0x10000 {
                    out += "\\u" + hex(c.value, width: 4)
                } else {
                    out += "\\U" + hex(c.value, width: 8)
                }
            }
        }
        out.unicodeScalars.append(quote)
        return out
    }

    /// `repr(float)` (the shortest round-tripping digits, Python's exponent thresholds).
    static func floatRepr(_ d: Double) -> String {
        if d.isNaN { return "nan" }
        if d.isInfinite { return d < 0 ? "-inf" : "inf" }
        if d == 0 { return d.sign == .minus ? "-0.0" : "0.0" }
        var text = "\(Swift.abs(d))"
        var exp = 0
        if let e = text.firstIndex(where: { $0 == "e" || $0 == "E" }) {
            exp = Int(text[text.index(after: e)...]) ?? 0
            text = String(text[..<e])
        }
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        let intPart = String(parts[0])
        let frac = parts.count > 1 ? String(parts[1]) : ""
        var digits = Array(intPart + frac)
        var point = intPart.count + exp
        while digits.count > 1, digits.first == "0" { digits.removeFirst(); point -= 1 }
        while digits.count > 1, digits.last == "0" { digits.removeLast() }
        let exp10 = point - 1
        var out = d < 0 ? "-" : ""
        if exp10 >= -4, exp10 < 16 {
            if point <= 0 {
                out += "0." + String(repeating: "0", count: -point) + String(digits)
            } else if point >= digits.count {
                out += String(digits) + String(repeating: "0", count: point - digits.count) + ".0"
            } else {
                out += String(digits[..<point]) + "." + String(digits[point...])
            }
        } else {
            out += String(digits[0])
            if digits.count > 1 { out += "." + String(digits[1...]) }
            let e = Swift.abs(exp10)
            out += "e" + (exp10 < 0 ? "-" : "+") + (e < 10 ? "0" : "") + String(e)
        }
        return out
    }

    /// One line for an error message: control characters escaped, length capped.
    static func oneLine(_ s: String, limit: Int = 300) -> String {
        var out = ""
        var n = 0
        for c in s.unicodeScalars {
            if n >= limit { out += "…"; break }
            switch c {
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if c.properties.generalCategory == .control || c.value == 0x2028 || c.value == 0x2029 {
                    out += "\\u{" + String(c.value, radix: 16) + "}"
                } else {
                    out.unicodeScalars.append(c)
                }
            }
            n += 1
        }
        return out
    }
}
