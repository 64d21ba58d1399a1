// Splits a Jinja template into text, `{{ … }}` and `{% … %}` segments and tokenizes the tag
// contents, reproducing jinja2's lexer: newline normalisation, the dropped final newline,
// `trim_blocks`, `lstrip_blocks`, `-`/`+` whitespace control, comments and raw blocks.

/// An error found while lexing, parsing or rendering, before the origin is attached.
struct JinjaError: Error {
    var kind: ChatTemplateError.Kind
    var line: Int?
    var message: String
}

enum JinjaTok: Equatable {
    case name(String)
    case string(String)
    case int(Int)
    case float(Double)
    case op(String)

    var display: String {
        switch self {
        case .name(let n): return n
        case .string(let s): return PyText.repr(s)
        case .int(let i): return String(i)
        case .float(let d): return PyText.floatRepr(d)
        case .op(let o): return o
        }
    }
}

struct JinjaToken {
    var tok: JinjaTok
    var line: Int
}

enum JinjaSegment {
    case text(String, line: Int)
    case output([JinjaToken], line: Int)
    case tag([JinjaToken], line: Int)
}

struct JinjaLexer {
    let s: [Unicode.Scalar]
    let trimBlocks: Bool
    let lstripBlocks: Bool
    var pos = 0
    var line = 1
    var lineStarting = true
    var segments: [JinjaSegment] = []

    static let operators: [String] = ["//", "**", "==", "!=", ">=", "<=", "+", "-", "/", "*", "%", "~", "[", "]",
                                      "(", ")", "{", "}", ">", "<", "=", ".", ":", "|", ",", ";"]

    static func tokenize(_ source: String, trimBlocks: Bool = true, lstripBlocks: Bool = true) throws -> [JinjaSegment] {
        var normalized: [Unicode.Scalar] = []
        normalized.reserveCapacity(source.unicodeScalars.count)
        var prevCR = false
        for c in source.unicodeScalars {
            if c == "\r" {
                normalized.append("\n")
                prevCR = true
                continue
            }
            if c == "\n", prevCR { prevCR = false; continue }
            prevCR = false
            normalized.append(c)
        }
        if normalized.last == "\n" { normalized.removeLast() }
        var lexer = JinjaLexer(s: normalized, trimBlocks: trimBlocks, lstripBlocks: lstripBlocks)
        try lexer.run()
        return lexer.segments
    }

    private init(s: [Unicode.Scalar], trimBlocks: Bool, lstripBlocks: Bool) {
        self.s = s
        self.trimBlocks = trimBlocks
        self.lstripBlocks = lstripBlocks
    }

    private func at(_ i: Int) -> Unicode.Scalar? { i >= 0 && i < s.count ? s[i] : nil }

    private func matches(_ lit: String, at i: Int) -> Bool {
        var k = i
        for c in lit.unicodeScalars {
            guard at(k) == c else { return false }
            k += 1
        }
        return true
    }

    private mutating func advance(to newPos: Int) {
        var i = pos
        while i < newPos { if s[i] == "\n" { line += 1 }; i += 1 }
        pos = newPos
    }

    private func skipSpace(from i: Int) -> Int {
        var k = i
        while k < s.count, PyText.isSpace(s[k]) { k += 1 }
        return k
    }

    /// Applies `-` (strip all whitespace before the tag) or `lstrip_blocks` to the text before a tag.
    private func stripText(_ text: ArraySlice<Unicode.Scalar>, sign: Unicode.Scalar?, isVariable: Bool) -> ArraySlice<Unicode.Scalar> {
        if sign == "-" {
            var end = text.endIndex
            while end > text.startIndex, PyText.isSpace(text[end - 1]) { end -= 1 }
            return text[text.startIndex..<end]
        }
        if sign != "+", lstripBlocks, !isVariable {
            var lpos = text.startIndex
            if let nl = text.lastIndex(of: "\n") { lpos = nl + 1 }
            if lpos > text.startIndex || lineStarting {
                let tail = text[lpos...]
                if !tail.isEmpty, tail.allSatisfy(PyText.isSpace) { return text[text.startIndex..<lpos] }
            }
        }
        return text
    }

    private mutating func emitText(_ text: ArraySlice<Unicode.Scalar>, line: Int) {
        if !text.isEmpty { segments.append(.text(PyText.string(text), line: line)) }
    }

    /// `{%[-+]?\s*raw\s*(-%}\s*|%})` at `i`: the end of the match, if it is one.
    private func rawBegin(at i: Int) -> (end: Int, sign: Unicode.Scalar?)? {
        guard matches("{%", at: i) else { return nil }
        var k = i + 2
        var sign: Unicode.Scalar?
        if let c = at(k), c == "-" || c == "+" { sign = c; k += 1 }
        k = skipSpace(from: k)
        guard matches("raw", at: k) else { return nil }
        k = skipSpace(from: k + 3)
        if matches("-%}", at: k) { return (skipSpace(from: k + 3), sign) }
        if matches("%}", at: k) { return (k + 2, sign) }
        return nil
    }

    /// The end of a block-end marker (`+%}`, `-%}\s*`, `%}\n?`) at `k`, if there is one.
    private func blockEnd(at k: Int) -> Int? {
        if matches("+%}", at: k) { return k + 3 }
        if matches("-%}", at: k) { return skipSpace(from: k + 3) }
        if matches("%}", at: k) { return k + 2 + (trimBlocks && at(k + 2) == "\n" ? 1 : 0) }
        return nil
    }

    private mutating func run() throws {
        while pos < s.count {
            var i = pos
            var found: Int?
            while i + 1 < s.count {
                if s[i] == "{", s[i + 1] == "{" || s[i + 1] == "%" || s[i + 1] == "#" { found = i; break }
                i += 1
            }
            guard let start = found else {
                emitText(s[pos...], line: line)
                advance(to: s.count)
                return
            }
            let textLine = line
            if let raw = rawBegin(at: start) {
                emitText(stripText(s[pos..<start], sign: raw.sign, isVariable: false), line: textLine)
                advance(to: start)
                let tagLine = line
                advance(to: raw.end)
                try lexRawBody(tagLine: tagLine)
                continue
            }
            let kind = s[start + 1]
            var j = start + 2
            var sign: Unicode.Scalar?
            if let c = at(j), c == "-" || c == "+" { sign = c; j += 1 }
            emitText(stripText(s[pos..<start], sign: sign, isVariable: kind == "{"), line: textLine)
            advance(to: start)
            let tagLine = line
            if kind == "#" {
                try lexComment(from: j, tagLine: tagLine)
            } else {
                advance(to: j)
                try lexTag(isBlock: kind == "%", tagLine: tagLine)
            }
        }
    }

    private mutating func lexComment(from j: Int, tagLine: Int) throws {
        var k = j
        while k < s.count {
            var end: Int?
            if matches("+#}", at: k) { end = k + 3 }
            else if matches("-#}", at: k) { end = skipSpace(from: k + 3) }
            else if matches("#}", at: k) { end = k + 2 + (trimBlocks && at(k + 2) == "\n" ? 1 : 0) }
            if let end {
                lineStarting = end > 0 && s[end - 1] == "\n"
                advance(to: end)
                return
            }
            k += 1
        }
        throw JinjaError(kind: .syntax, line: tagLine, message: "missing end of comment tag")
    }

    private mutating func lexRawBody(tagLine: Int) throws {
        var k = pos
        while k < s.count {
            if matches("{%", at: k) {
                var m = k + 2
                var sign: Unicode.Scalar?
                if let c = at(m), c == "-" || c == "+" { sign = c; m += 1 }
                m = skipSpace(from: m)
                if matches("endraw", at: m) {
                    m = skipSpace(from: m + 6)
                    if let end = blockEnd(at: m) {
                        emitText(stripText(s[pos..<k], sign: sign, isVariable: false), line: line)
                        lineStarting = end > 0 && s[end - 1] == "\n"
                        advance(to: end)
                        return
                    }
                }
            }
            k += 1
        }
        throw JinjaError(kind: .syntax, line: tagLine, message: "missing end of raw directive ({% endraw %})")
    }

    private mutating func lexTag(isBlock: Bool, tagLine: Int) throws {
        var tokens: [JinjaToken] = []
        var balance: [Unicode.Scalar] = []
        while true {
            guard pos < s.count else {
                throw JinjaError(kind: .syntax, line: tagLine,
                                 message: isBlock ? "unterminated block tag: missing \"%}\"" : "unterminated variable tag: missing \"}}\"")
            }
            if balance.isEmpty {
                var end: Int?
                if isBlock {
                    end = blockEnd(at: pos)
                } else if matches("-}}", at: pos) {
                    end = skipSpace(from: pos + 3)
                } else if matches("}}", at: pos) {
                    end = pos + 2
                }
                if let end {
                    lineStarting = s[end - 1] == "\n"
                    advance(to: end)
                    segments.append(isBlock ? .tag(tokens, line: tagLine) : .output(tokens, line: tagLine))
                    return
                }
            }
            let c = s[pos]
            if PyText.isSpace(c) { advance(to: skipSpace(from: pos)); continue }
            let tokLine = line
            if let (end, value) = try lexFloat(at: pos) ?? lexInteger(at: pos) {
                tokens.append(JinjaToken(tok: value, line: tokLine))
                advance(to: end)
                continue
            }
            if c == "_" || c.properties.isXIDStart {
                var k = pos + 1
                while k < s.count, s[k] == "_" || s[k].properties.isXIDContinue { k += 1 }
                tokens.append(JinjaToken(tok: .name(PyText.string(s[pos..<k])), line: tokLine))
                advance(to: k)
                continue
            }
            if c == "'" || c == "\"" {
                var k = pos + 1
                while k < s.count, s[k] != c { k += s[k] == "\\" ? 2 : 1 }
                guard k < s.count else {
                    throw JinjaError(kind: .syntax, line: tokLine, message: "unterminated string literal")
                }
                let value = try JinjaLexer.unescape(s[(pos + 1)..<k], line: tokLine)
                tokens.append(JinjaToken(tok: .string(value), line: tokLine))
                advance(to: k + 1)
                continue
            }
            guard let op = JinjaLexer.operators.first(where: { matches($0, at: pos) }) else {
                throw JinjaError(kind: .syntax, line: tokLine, message: "unexpected character \(PyText.repr(String(c)))")
            }
            switch op {
            case "{": balance.append("}")
            case "(": balance.append(")")
            case "[": balance.append("]")
            case "}", ")", "]":
                guard let expected = balance.popLast() else {
                    throw JinjaError(kind: .syntax, line: tokLine, message: "unexpected '\(op)'")
                }
                if String(expected) != op {
                    throw JinjaError(kind: .syntax, line: tokLine, message: "unexpected '\(op)', expected '\(expected)'")
                }
            default: break
            }
            tokens.append(JinjaToken(tok: .op(op), line: tokLine))
            advance(to: pos + op.unicodeScalars.count)
        }
    }

    private func isDigit(_ i: Int, radix: Int = 10) -> Bool {
        guard let c = at(i) else { return false }
        switch radix {
        case 2: return c == "0" || c == "1"
        case 8: return ("0"..."7").contains(c)
        case 16: return ("0"..."9").contains(c) || ("a"..."f").contains(c) || ("A"..."F").contains(c)
        default: return ("0"..."9").contains(c)
        }
    }

    /// `(\d+_)*\d+` at i: the end, or nil.
    private func digitRun(at i: Int) -> Int? {
        guard isDigit(i) else { return nil }
        var k = i
        while true {
            while isDigit(k) { k += 1 }
            if at(k) == "_", isDigit(k + 1) { k += 1; continue }
            return k
        }
    }

    private func lexFloat(at i: Int) throws -> (Int, JinjaTok)? {
        if at(i - 1) == "." { return nil }
        guard let k1 = digitRun(at: i) else { return nil }
        func exponent(at k: Int) -> Int? {
            guard let e = at(k), e == "e" || e == "E" else { return nil }
            var m = k + 1
            if let c = at(m), c == "+" || c == "-" { m += 1 }
            return digitRun(at: m)
        }
        var end: Int?
        if at(k1) == ".", let k2 = digitRun(at: k1 + 1) {
            end = exponent(at: k2) ?? k2
        } else {
            end = exponent(at: k1)
        }
        guard let end else { return nil }
        let text = PyText.string(s[i..<end]).replacingOccurrences(of: "_", with: "")
        guard let d = Double(text) else {
            throw JinjaError(kind: .syntax, line: line, message: "invalid float literal \(text)")
        }
        return (end, .float(d))
    }

    private func lexInteger(at i: Int) throws -> (Int, JinjaTok)? {
        guard isDigit(i) else { return nil }
        var radix = 10
        var k = i
        if at(i) == "0", let p = at(i + 1) {
            switch p {
            case "b", "B": radix = 2
            case "o", "O": radix = 8
            case "x", "X": radix = 16
            default: break
            }
        }
        var digits = ""
        if radix != 10 {
            var m = i + 2
            while true {
                if at(m) == "_", isDigit(m + 1, radix: radix) { m += 1 }
                guard isDigit(m, radix: radix) else { break }
                digits.unicodeScalars.append(s[m])
                m += 1
            }
            if digits.isEmpty { radix = 10 } else { k = m }
        }
        if radix == 10 {
            if at(i) == "0" {
                k = i + 1
                while true {
                    if at(k) == "0" { k += 1; continue }
                    if at(k) == "_", at(k + 1) == "0" { k += 2; continue }
                    break
                }
                digits = "0"
            } else {
                k = i
                while true {
                    if isDigit(k) { digits.unicodeScalars.append(s[k]); k += 1; continue }
                    if at(k) == "_", isDigit(k + 1) { k += 1; continue }
                    break
                }
            }
        }
        guard let value = Int(digits, radix: radix) else {
            throw JinjaError(kind: .unsupported, line: line, message: "integer literal \(digits) does not fit in 64 bits")
        }
        return (k, .int(value))
    }

    /// Python's `unicode-escape` decoding of a string literal's body.
    static func unescape(_ body: ArraySlice<Unicode.Scalar>, line: Int) throws -> String {
        var out = String.UnicodeScalarView()
        var i = body.startIndex
        func hexValue(_ count: Int, _ what: String) throws -> UInt32 {
            guard i + count <= body.endIndex else {
                throw JinjaError(kind: .syntax, line: line, message: "truncated \(what) escape in string literal")
            }
            var v: UInt32 = 0
            for k in 0..<count {
                guard body[i + k].isASCII, let d = UInt32(String(body[i + k]), radix: 16) else {
                    throw JinjaError(kind: .syntax, line: line, message: "truncated \(what) escape in string literal")
                }
                v = v * 16 + d
            }
            i += count
            return v
        }
        while i < body.endIndex {
            let c = body[i]
            i += 1
            guard c == "\\" else { out.append(c); continue }
            guard i < body.endIndex else {
                throw JinjaError(kind: .syntax, line: line, message: "string literal ends with a backslash")
            }
            let e = body[i]
            i += 1
            switch e {
            case "\n": break
            case "\\": out.append("\\")
            case "'": out.append("'")
            case "\"": out.append("\"")
            case "a": out.append("\u{07}")
            case "b": out.append("\u{08}")
            case "f": out.append("\u{0C}")
            case "n": out.append("\n")
            case "r": out.append("\r")
            case "t": out.append("\t")
            case "v": out.append("\u{0B}")
            case "0"..."7":
                var v = e.value - 0x30
                var n = 1
                while n < 3, i < body.endIndex, ("0"..."7").contains(body[i]) {
                    v = v * 8 + (body[i].value - 0x30)
                    i += 1
                    n += 1
                }
                out.append(Unicode.Scalar(v) ?? "\u{FFFD}")
            case "x", "u", "U":
                let count = e == "x" ? 2 : (e == "u" ? 4 : 8)
                let v = try hexValue(count, "\\\(e)")
                guard let scalar = Unicode.Scalar(v) else {
                    throw JinjaError(kind: .unsupported, line: line,
                                     message: "string literal escape \\\(e)\(String(v, radix: 16)) is not a Unicode scalar value")
                }
                out.append(scalar)
            case "N":
                throw JinjaError(kind: .unsupported, line: line, message: "unsupported \\N{...} escape in string literal")
            default:
                out.append("\\")
                out.append(e)
            }
        }
        return String(out)
    }
}
