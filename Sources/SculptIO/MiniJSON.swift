// A small, strict JSON reader used by the tokenizer loader and `TextLines`.
//
// Why not JSONSerialization: object keys are kept byte-exact (Swift `String` equality and
// `Dictionary<String, _>` treat canonically-equivalent keys such as "é" and "e\u{301}" as the
// same key, which would silently merge distinct vocabulary entries), objects keep their order,
// and errors carry a byte offset. It is also several times faster on a 700 KB tokenizer.json.

/// A parsed JSON value. Objects keep their members in file order (duplicates included).
enum MiniJSON: Sendable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([MiniJSON])
    case object([(key: String, value: MiniJSON)])

    struct ParseError: Error, CustomStringConvertible, Sendable {
        let message: String
        let offset: Int
        var description: String { "\(message) at byte \(offset)" }
    }

    /// Parses one complete JSON document (surrounding whitespace allowed).
    static func parse(_ bytes: [UInt8]) throws(ParseError) -> MiniJSON {
        var parser = Parser(bytes: bytes)
        return try parser.parseDocument()
    }

    static func parse(_ text: String) throws(ParseError) -> MiniJSON {
        try parse(Array(text.utf8))
    }

    // MARK: accessors

    /// First member named `key` of an object; nil for non-objects or a missing key.
    subscript(key: String) -> MiniJSON? {
        guard case .object(let members) = self else { return nil }
        for member in members where member.key == key { return member.value }
        return nil
    }

    var isNull: Bool { if case .null = self { return true } else { return false } }
    var stringValue: String? { if case .string(let s) = self { return s } else { return nil } }
    var boolValue: Bool? { if case .bool(let b) = self { return b } else { return nil } }
    var arrayValue: [MiniJSON]? { if case .array(let a) = self { return a } else { return nil } }
    var objectValue: [(key: String, value: MiniJSON)]? {
        if case .object(let o) = self { return o } else { return nil }
    }
    /// The value as an integer if it is a number with no fractional part.
    var intValue: Int? {
        guard case .number(let d) = self, d.rounded() == d, abs(d) < 9.0e15 else { return nil }
        return Int(d)
    }

    var kindName: String {
        switch self {
        case .null: return "null"
        case .bool: return "a boolean"
        case .number: return "a number"
        case .string: return "a string"
        case .array: return "an array"
        case .object: return "an object"
        }
    }
}

private struct Parser {
    let bytes: [UInt8]
    var pos = 0
    var depth = 0
    static let maxDepth = 512

    init(bytes: [UInt8]) { self.bytes = bytes }

    mutating func parseDocument() throws(MiniJSON.ParseError) -> MiniJSON {
        // A UTF-8 byte-order mark is tolerated at the very start.
        if bytes.count >= 3, bytes[0] == 0xEF, bytes[1] == 0xBB, bytes[2] == 0xBF { pos = 3 }
        skipWhitespace()
        let value = try parseValue()
        skipWhitespace()
        if pos != bytes.count { throw fail("unexpected \(describe(pos)) after the JSON value") }
        return value
    }

    func fail(_ message: String, at offset: Int? = nil) -> MiniJSON.ParseError {
        MiniJSON.ParseError(message: message, offset: offset ?? pos)
    }

    func describe(_ i: Int) -> String {
        guard i < bytes.count else { return "end of input" }
        let b = bytes[i]
        if b >= 0x20 && b < 0x7F { return "character '\(Character(Unicode.Scalar(b)))'" }
        return "byte 0x" + String(b, radix: 16, uppercase: true)
    }

    mutating func skipWhitespace() {
        while pos < bytes.count {
            switch bytes[pos] {
            case 0x20, 0x09, 0x0A, 0x0D: pos += 1
            default: return
            }
        }
    }

    mutating func parseValue() throws(MiniJSON.ParseError) -> MiniJSON {
        guard pos < bytes.count else { throw fail("unexpected end of input") }
        switch bytes[pos] {
        case UInt8(ascii: "{"): return try parseObject()
        case UInt8(ascii: "["): return try parseArray()
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "t"): try expectLiteral("true"); return .bool(true)
        case UInt8(ascii: "f"): try expectLiteral("false"); return .bool(false)
        case UInt8(ascii: "n"): try expectLiteral("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try parseNumber()
        default: throw fail("unexpected \(describe(pos))")
        }
    }

    mutating func expectLiteral(_ word: StaticString) throws(MiniJSON.ParseError) {
        let start = pos
        let n = word.utf8CodeUnitCount
        guard pos + n <= bytes.count else { throw fail("invalid literal", at: start) }
        let ok = word.withUTF8Buffer { w -> Bool in
            for i in 0..<n where bytes[pos + i] != w[i] { return false }
            return true
        }
        guard ok else { throw fail("invalid literal", at: start) }
        pos += n
    }

    mutating func enter() throws(MiniJSON.ParseError) {
        depth += 1
        if depth > Parser.maxDepth { throw fail("nesting deeper than \(Parser.maxDepth)") }
    }

    mutating func parseObject() throws(MiniJSON.ParseError) -> MiniJSON {
        try enter()
        defer { depth -= 1 }
        pos += 1  // {
        var members: [(key: String, value: MiniJSON)] = []
        skipWhitespace()
        if pos < bytes.count, bytes[pos] == UInt8(ascii: "}") { pos += 1; return .object(members) }
        while true {
            skipWhitespace()
            guard pos < bytes.count, bytes[pos] == UInt8(ascii: "\"") else {
                throw fail("expected a string key but found \(describe(pos))")
            }
            let key = try parseString()
            skipWhitespace()
            guard pos < bytes.count, bytes[pos] == UInt8(ascii: ":") else {
                throw fail("expected ':' but found \(describe(pos))")
            }
            pos += 1
            skipWhitespace()
            let value = try parseValue()
            members.append((key, value))
            skipWhitespace()
            guard pos < bytes.count else { throw fail("unterminated object") }
            if bytes[pos] == UInt8(ascii: ",") { pos += 1; continue }
            if bytes[pos] == UInt8(ascii: "}") { pos += 1; return .object(members) }
            throw fail("expected ',' or '}' but found \(describe(pos))")
        }
    }

    mutating func parseArray() throws(MiniJSON.ParseError) -> MiniJSON {
        try enter()
        defer { depth -= 1 }
        pos += 1  // [
        var items: [MiniJSON] = []
        skipWhitespace()
        if pos < bytes.count, bytes[pos] == UInt8(ascii: "]") { pos += 1; return .array(items) }
        while true {
            skipWhitespace()
            items.append(try parseValue())
            skipWhitespace()
            guard pos < bytes.count else { throw fail("unterminated array") }
            if bytes[pos] == UInt8(ascii: ",") { pos += 1; continue }
            if bytes[pos] == UInt8(ascii: "]") { pos += 1; return .array(items) }
            throw fail("expected ',' or ']' but found \(describe(pos))")
        }
    }

    mutating func parseNumber() throws(MiniJSON.ParseError) -> MiniJSON {
        let start = pos
        if bytes[pos] == UInt8(ascii: "-") { pos += 1 }
        func digits(_ p: inout Int, _ bytes: [UInt8]) -> Int {
            let s = p
            while p < bytes.count, bytes[p] >= UInt8(ascii: "0"), bytes[p] <= UInt8(ascii: "9") { p += 1 }
            return p - s
        }
        let intDigits = digits(&pos, bytes)
        guard intDigits > 0 else { throw fail("invalid number", at: start) }
        if intDigits > 1, bytes[pos - intDigits] == UInt8(ascii: "0") { throw fail("invalid number (leading zero)", at: start) }
        if pos < bytes.count, bytes[pos] == UInt8(ascii: ".") {
            pos += 1
            guard digits(&pos, bytes) > 0 else { throw fail("invalid number", at: start) }
        }
        if pos < bytes.count, bytes[pos] == UInt8(ascii: "e") || bytes[pos] == UInt8(ascii: "E") {
            pos += 1
            if pos < bytes.count, bytes[pos] == UInt8(ascii: "+") || bytes[pos] == UInt8(ascii: "-") { pos += 1 }
            guard digits(&pos, bytes) > 0 else { throw fail("invalid number", at: start) }
        }
        // Fast path for plain integers (vocabulary ids).
        if pos - start <= 15 {
            var value = 0
            var negative = false
            var i = start
            if bytes[i] == UInt8(ascii: "-") { negative = true; i += 1 }
            var plain = true
            while i < pos {
                let b = bytes[i]
                guard b >= UInt8(ascii: "0"), b <= UInt8(ascii: "9") else { plain = false; break }
                value = value * 10 + Int(b - UInt8(ascii: "0"))
                i += 1
            }
            if plain { return .number(Double(negative ? -value : value)) }
        }
        let text = String(decoding: bytes[start..<pos], as: UTF8.self)
        guard let d = Double(text) else { throw fail("invalid number", at: start) }
        return .number(d)
    }

    mutating func parseHex4() throws(MiniJSON.ParseError) -> UInt32 {
        guard pos + 4 <= bytes.count else { throw fail("truncated \\u escape") }
        var v: UInt32 = 0
        for _ in 0..<4 {
            let b = bytes[pos]
            let d: UInt32
            switch b {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): d = UInt32(b - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): d = UInt32(b - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): d = UInt32(b - UInt8(ascii: "A") + 10)
            default: throw fail("invalid \\u escape")
            }
            v = v << 4 | d
            pos += 1
        }
        return v
    }

    mutating func parseString() throws(MiniJSON.ParseError) -> String {
        let open = pos
        pos += 1  // opening quote
        let start = pos
        // Fast path: no escapes.
        while pos < bytes.count {
            let b = bytes[pos]
            if b == UInt8(ascii: "\"") {
                let s = String(decoding: bytes[start..<pos], as: UTF8.self)
                pos += 1
                return s
            }
            if b == UInt8(ascii: "\\") { break }
            if b < 0x20 { throw fail("control character in string") }
            pos += 1
        }
        guard pos < bytes.count else { throw fail("unterminated string", at: open) }
        var out = Array(bytes[start..<pos])
        while pos < bytes.count {
            let b = bytes[pos]
            if b == UInt8(ascii: "\"") {
                pos += 1
                return String(decoding: out, as: UTF8.self)
            }
            if b < 0x20 { throw fail("control character in string") }
            if b != UInt8(ascii: "\\") { out.append(b); pos += 1; continue }
            pos += 1
            guard pos < bytes.count else { break }
            let e = bytes[pos]
            pos += 1
            switch e {
            case UInt8(ascii: "\""): out.append(0x22)
            case UInt8(ascii: "\\"): out.append(0x5C)
            case UInt8(ascii: "/"): out.append(0x2F)
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "u"):
                var code = try parseHex4()
                if code >= 0xD800 && code < 0xDC00 {
                    // High surrogate: combine with a following low surrogate if present.
                    if pos + 6 <= bytes.count, bytes[pos] == UInt8(ascii: "\\"), bytes[pos + 1] == UInt8(ascii: "u") {
                        let save = pos
                        pos += 2
                        let low = try parseHex4()
                        if low >= 0xDC00 && low < 0xE000 {
                            code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                        } else {
                            pos = save
                            code = 0xFFFD
                        }
                    } else {
                        code = 0xFFFD
                    }
                } else if code >= 0xDC00 && code < 0xE000 {
                    code = 0xFFFD  // lone low surrogate
                }
                let scalar = Unicode.Scalar(code) ?? "\u{FFFD}"
                out.append(contentsOf: UTF8.encode(scalar)!)
            default:
                throw fail("invalid escape '\\\(Character(Unicode.Scalar(e)))'", at: pos - 2)
            }
        }
        throw fail("unterminated string", at: open)
    }
}
