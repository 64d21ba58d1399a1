// A small, strict JSON reader and string escaper used by the safetensors header parser, the
// config loaders, the tokenizer loader and `TextLines`.
//
// Why not JSONSerialization: the header parser must never trap and must tell apart `3`,
// `3.0`, `true` and `"3"` (Foundation's NSNumber bridging blurs these, and differs between
// platforms). This reader keeps numbers as their literal text, keeps object members in file
// order (so duplicates can be detected), limits nesting depth, and checks UTF-8 strictly.
// Keeping members as an ordered list also keeps keys exact: a `[String: _]` dictionary would
// merge canonically-equivalent keys such as "é" and "e\u{301}" (distinct vocabulary entries).
// Readers of files written by other tools can opt into a few leniencies (`Options`).

/// A strict JSON reader (and string escaper) shared by the safetensors and config parsers.
public enum StrictJSON {
    public static let defaultMaxDepth = 64

    /// Leniencies for JSON written by other tools; the default (none) is fully strict.
    public struct Options: OptionSet, Sendable {
        public let rawValue: Int
        public init(rawValue: Int) { self.rawValue = rawValue }

        /// A UTF-8 byte-order mark at the very start is skipped.
        public static let allowByteOrderMark = Options(rawValue: 1 << 0)
        /// Invalid UTF-8 in a string and unpaired surrogate escapes become U+FFFD instead of
        /// failing the parse.
        public static let replaceInvalidUnicode = Options(rawValue: 1 << 1)
        /// What the tokenizer loader and `TextLines` accept: both of the above.
        public static let lenientText: Options = [.allowByteOrderMark, .replaceInvalidUnicode]
    }

    /// Parses `bytes` as exactly one JSON value surrounded by optional whitespace.
    public static func parse(_ bytes: UnsafeRawBufferPointer, maxDepth: Int = defaultMaxDepth,
                             options: Options = []) throws -> Value {
        try Parser.parse(bytes, maxDepth: maxDepth, options: options)
    }

    public static func parse(_ bytes: [UInt8], maxDepth: Int = defaultMaxDepth, options: Options = []) throws -> Value {
        try bytes.withUnsafeBytes { try Parser.parse($0, maxDepth: maxDepth, options: options) }
    }

    /// A parsed JSON value. Numbers keep their literal text; objects keep members in file order.
    public enum Value: Sendable, Equatable {
        case null
        case bool(Bool)
        case number(String)
        case string(String)
        case array([Value])
        case object([Member])

        /// The member named `key` (the last one, as Python's `json` does, if a key repeats).
        public subscript(key: String) -> Value? {
            guard case .object(let members) = self else { return nil }
            return members.last(where: { $0.key == key })?.value
        }

        /// The first member named `key` (for readers where the first of repeated keys wins).
        public subscript(first key: String) -> Value? {
            guard case .object(let members) = self else { return nil }
            return members.first(where: { $0.key == key })?.value
        }

        /// A short name of the value's kind, for error messages ("a string", "an array", ...).
        public var kindDescription: String {
            switch self {
            case .null: return "null"
            case .bool: return "a boolean"
            case .number(let text): return Value.isIntegerLiteral(text) ? "an integer" : "a number"
            case .string: return "a string"
            case .array: return "an array"
            case .object: return "an object"
            }
        }

        /// The value as an Int when it is an integer literal (`-?[0-9]+`) that fits; nil otherwise.
        public var intValue: Int? {
            guard case .number(let text) = self else { return nil }
            return Value.parseInt(text)
        }

        /// The value as a Double when it is a number (integer or not) that is finite as a Double.
        public var doubleValue: Double? {
            guard case .number(let text) = self, let d = Double(text), d.isFinite else { return nil }
            return d
        }

        public var stringValue: String? {
            if case .string(let s) = self { return s }
            return nil
        }

        public var boolValue: Bool? {
            if case .bool(let b) = self { return b }
            return nil
        }

        public var arrayValue: [Value]? {
            if case .array(let a) = self { return a }
            return nil
        }

        /// The members of an object, in file order (repeated keys included).
        public var objectMembers: [Member]? {
            if case .object(let m) = self { return m }
            return nil
        }

        public var isNull: Bool {
            if case .null = self { return true }
            return false
        }

        static func isIntegerLiteral(_ text: String) -> Bool {
            var utf8 = Substring(text).utf8[...]
            if utf8.first == UInt8(ascii: "-") { utf8 = utf8.dropFirst() }
            return !utf8.isEmpty && utf8.allSatisfy { $0 >= 0x30 && $0 <= 0x39 }
        }

        /// Parses `-?[0-9]+` into an Int, nil on overflow or any other character.
        static func parseInt(_ text: String) -> Int? {
            guard isIntegerLiteral(text) else { return nil }
            var negative = false
            var value = 0
            for (i, c) in text.utf8.enumerated() {
                if i == 0 && c == UInt8(ascii: "-") { negative = true; continue }
                let digit = Int(c) - 0x30
                let (m, o1) = value.multipliedReportingOverflow(by: 10)
                let (a, o2) = negative ? m.subtractingReportingOverflow(digit) : m.addingReportingOverflow(digit)
                if o1 || o2 { return nil }
                value = a
            }
            return value
        }
    }

    /// One `"key": value` member of a JSON object.
    public struct Member: Sendable, Equatable {
        public var key: String
        public var value: Value
        public init(key: String, value: Value) {
            self.key = key
            self.value = value
        }
    }

    /// Why a JSON text could not be parsed, with the byte offset where it went wrong.
    public struct ParseError: Error, CustomStringConvertible, Sendable, Equatable {
        public var message: String
        public var offset: Int
        public var description: String { "\(message) at byte \(offset)" }
    }

    /// A strict RFC 8259 JSON parser over raw bytes. It never traps: every malformed input,
    /// including invalid UTF-8, lone surrogate escapes and nesting deeper than `maxDepth`, is a
    /// thrown `ParseError`.
    struct Parser {
        static func parse(_ bytes: UnsafeRawBufferPointer, maxDepth: Int, options: Options) throws -> Value {
            var parser = Parser(bytes: bytes, maxDepth: maxDepth, options: options)
            if options.contains(.allowByteOrderMark), bytes.count >= 3,
               bytes[0] == 0xEF, bytes[1] == 0xBB, bytes[2] == 0xBF {
                parser.index = 3
            }
            parser.skipWhitespace()
            let value = try parser.parseValue(depth: 0)
            parser.skipWhitespace()
            if parser.index < bytes.count { throw parser.error("unexpected data after the JSON value") }
            return value
        }

        private let bytes: UnsafeRawBufferPointer
        private let maxDepth: Int
        private let replaceInvalidUnicode: Bool
        private var index = 0

        private init(bytes: UnsafeRawBufferPointer, maxDepth: Int, options: Options) {
            self.bytes = bytes
            self.maxDepth = maxDepth
            self.replaceInvalidUnicode = options.contains(.replaceInvalidUnicode)
        }

        private func error(_ message: String) -> ParseError {
            ParseError(message: message, offset: index)
        }

        private var current: UInt8? { index < bytes.count ? bytes[index] : nil }

        private mutating func skipWhitespace() {
            while index < bytes.count {
                switch bytes[index] {
                case 0x20, 0x09, 0x0A, 0x0D: index += 1
                default: return
                }
            }
        }

        private mutating func expect(_ literal: StaticString, _ value: Value) throws -> Value {
            let count = literal.utf8CodeUnitCount
            guard bytes.count - index >= count else { throw error("unexpected end of input") }
            let p = literal.utf8Start
            for k in 0..<count where bytes[index + k] != p[k] {
                throw error("invalid literal")
            }
            index += count
            return value
        }

        private mutating func parseValue(depth: Int) throws -> Value {
            guard depth < maxDepth else { throw error("nesting deeper than \(maxDepth) levels") }
            guard let c = current else { throw error("unexpected end of input") }
            switch c {
            case UInt8(ascii: "{"): return try parseObject(depth: depth)
            case UInt8(ascii: "["): return try parseArray(depth: depth)
            case UInt8(ascii: "\""): return .string(try parseString())
            case UInt8(ascii: "t"): return try expect("true", .bool(true))
            case UInt8(ascii: "f"): return try expect("false", .bool(false))
            case UInt8(ascii: "n"): return try expect("null", .null)
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try parseNumber()
            default: throw error("unexpected character \(Parser.describe(byte: c))")
            }
        }

        private static func describe(byte: UInt8) -> String {
            if byte >= 0x21 && byte < 0x7F { return "'\(Character(Unicode.Scalar(byte)))'" }
            return "0x" + String(byte, radix: 16, uppercase: true)
        }

        private mutating func parseObject(depth: Int) throws -> Value {
            index += 1  // {
            var members: [Member] = []
            skipWhitespace()
            if current == UInt8(ascii: "}") { index += 1; return .object(members) }
            while true {
                skipWhitespace()
                guard current == UInt8(ascii: "\"") else { throw error("expected a string key") }
                let key = try parseString()
                skipWhitespace()
                guard current == UInt8(ascii: ":") else { throw error("expected ':' after an object key") }
                index += 1
                skipWhitespace()
                let value = try parseValue(depth: depth + 1)
                members.append(Member(key: key, value: value))
                skipWhitespace()
                switch current {
                case UInt8(ascii: ","): index += 1
                case UInt8(ascii: "}"): index += 1; return .object(members)
                case nil: throw error("unexpected end of input in an object")
                default: throw error("expected ',' or '}' in an object")
                }
            }
        }

        private mutating func parseArray(depth: Int) throws -> Value {
            index += 1  // [
            var elements: [Value] = []
            skipWhitespace()
            if current == UInt8(ascii: "]") { index += 1; return .array(elements) }
            while true {
                skipWhitespace()
                elements.append(try parseValue(depth: depth + 1))
                skipWhitespace()
                switch current {
                case UInt8(ascii: ","): index += 1
                case UInt8(ascii: "]"): index += 1; return .array(elements)
                case nil: throw error("unexpected end of input in an array")
                default: throw error("expected ',' or ']' in an array")
                }
            }
        }

        private mutating func parseNumber() throws -> Value {
            let start = index
            func digits() -> Int {
                let s = index
                while let c = current, c >= 0x30 && c <= 0x39 { index += 1 }
                return index - s
            }
            if current == UInt8(ascii: "-") { index += 1 }
            guard let first = current, first >= 0x30 && first <= 0x39 else { throw error("invalid number") }
            if first == 0x30 {
                index += 1
                if let c = current, c >= 0x30 && c <= 0x39 { throw error("leading zero in a number") }
            } else {
                _ = digits()
            }
            if current == UInt8(ascii: ".") {
                index += 1
                guard digits() > 0 else { throw error("expected digits after '.'") }
            }
            if current == UInt8(ascii: "e") || current == UInt8(ascii: "E") {
                index += 1
                if current == UInt8(ascii: "+") || current == UInt8(ascii: "-") { index += 1 }
                guard digits() > 0 else { throw error("expected digits in an exponent") }
            }
            let text = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self)
            return .number(text)
        }

        private mutating func parseHex4() throws -> UInt32 {
            guard bytes.count - index >= 4 else { throw error("unexpected end of input in a \\u escape") }
            var v: UInt32 = 0
            for _ in 0..<4 {
                let c = bytes[index]
                let d: UInt32
                switch c {
                case 0x30...0x39: d = UInt32(c - 0x30)
                case 0x41...0x46: d = UInt32(c - 0x41 + 10)
                case 0x61...0x66: d = UInt32(c - 0x61 + 10)
                default: throw error("invalid hex digit in a \\u escape")
                }
                v = v << 4 | d
                index += 1
            }
            return v
        }

        private mutating func parseString() throws -> String {
            let start = index
            index += 1  // opening quote
            // Fast path: no escapes.
            let contentStart = index
            while index < bytes.count {
                let c = bytes[index]
                if c == UInt8(ascii: "\"") {
                    let s = try decodeUTF8(UnsafeRawBufferPointer(rebasing: bytes[contentStart..<index]),
                                           offset: contentStart)
                    index += 1
                    return s
                }
                if c == UInt8(ascii: "\\") { break }
                if c < 0x20 { throw error("unescaped control character in a string") }
                index += 1
            }
            if index >= bytes.count {
                index = start
                throw error("unterminated string")
            }
            // Slow path with escapes.
            var out: [UInt8] = Array(UnsafeRawBufferPointer(rebasing: bytes[contentStart..<index]))
            while index < bytes.count {
                let c = bytes[index]
                if c == UInt8(ascii: "\"") {
                    index += 1
                    return try decodeUTF8(out, offset: contentStart)
                }
                if c < 0x20 { throw error("unescaped control character in a string") }
                if c != UInt8(ascii: "\\") {
                    out.append(c)
                    index += 1
                    continue
                }
                index += 1
                guard let e = current else { break }
                index += 1
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
                    var scalar = try parseHex4()
                    if replaceInvalidUnicode {
                        scalar = try pairSurrogatesOrReplace(scalar)
                    } else if scalar >= 0xD800 && scalar < 0xDC00 {
                        guard bytes.count - index >= 6, bytes[index] == UInt8(ascii: "\\"), bytes[index + 1] == UInt8(ascii: "u")
                        else { throw error("lone high surrogate in a \\u escape") }
                        index += 2
                        let low = try parseHex4()
                        guard low >= 0xDC00 && low < 0xE000 else { throw error("invalid low surrogate in a \\u escape") }
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    } else if scalar >= 0xDC00 && scalar < 0xE000 {
                        throw error("lone low surrogate in a \\u escape")
                    }
                    guard let u = Unicode.Scalar(scalar) else { throw error("invalid \\u escape") }
                    out.append(contentsOf: String(Character(u)).utf8)
                default:
                    index -= 1
                    throw error("invalid escape character")
                }
            }
            index = start
            throw error("unterminated string")
        }

        /// With `.replaceInvalidUnicode`: `code` (just read from a `\u` escape) combined with a
        /// following low-surrogate escape, or U+FFFD for an unpaired surrogate (an escape after a
        /// high surrogate that is not a low surrogate is left to be read on its own).
        private mutating func pairSurrogatesOrReplace(_ code: UInt32) throws -> UInt32 {
            if code >= 0xDC00 && code < 0xE000 { return 0xFFFD }
            guard code >= 0xD800 && code < 0xDC00 else { return code }
            guard bytes.count - index >= 6, bytes[index] == UInt8(ascii: "\\"), bytes[index + 1] == UInt8(ascii: "u")
            else { return 0xFFFD }
            let save = index
            index += 2
            let low = try parseHex4()
            if low >= 0xDC00 && low < 0xE000 { return 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00) }
            index = save
            return 0xFFFD
        }

        private func decodeUTF8<C: Collection>(_ raw: C, offset: Int) throws -> String where C.Element == UInt8 {
            let s = String(decoding: raw, as: UTF8.self)
            // With `.replaceInvalidUnicode`, invalid sequences stay replaced by U+FFFD.
            if replaceInvalidUnicode { return s }
            // Decoding replaces invalid sequences with U+FFFD, so a strict check is "re-encodes to the same bytes".
            guard s.utf8.elementsEqual(raw) else {
                throw ParseError(message: "invalid UTF-8 in a string", offset: offset)
            }
            return s
        }
    }

    // MARK: - Writing

    /// `s` as a JSON string literal (with quotes); non-ASCII is kept as UTF-8.
    static func quoted(_ s: String) -> String {
        var out = "\""
        out.reserveCapacity(s.utf8.count + 2)
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20:
                let h = String(scalar.value, radix: 16, uppercase: false)
                out += "\\u" + String(repeating: "0", count: 4 - h.count) + h
            default: out.unicodeScalars.append(scalar)
            }
        }
        out += "\""
        return out
    }

    /// `s` quoted for a one-line error message: control characters escaped, long text shortened.
    public static func displayQuoted(_ s: String, limit: Int = 200) -> String {
        var text = s
        if text.count > limit { text = String(text.prefix(limit)) + "…" }
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case _ where scalar.value < 0x20 || scalar.value == 0x7F || scalar == "\u{2028}" || scalar == "\u{2029}":
                out += "\\u{" + String(scalar.value, radix: 16) + "}"
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}
