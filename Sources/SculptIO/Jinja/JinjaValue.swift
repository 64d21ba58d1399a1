// The data a chat template is rendered with: JSON-like values (what `apply_chat_template`
// passes to Jinja from Python: str, int, float, bool, None, list, dict with string keys).

/// A value handed to a chat template as a context variable (a message, a tool schema,
/// `date_string`, ...). Objects keep their members in order, as Python dicts do.
public enum JinjaValue: Sendable, Equatable {
    /// Python `None` (prints as `None`, `null` in `tojson`).
    case none
    /// Python `True`/`False`.
    case bool(Bool)
    /// A Python int (64-bit here; arithmetic that overflows is an error, not a wrap).
    case int(Int)
    /// A Python float (prints as Python's `repr`, e.g. `1.0`).
    case double(Double)
    /// A Python str.
    case string(String)
    /// A Python list.
    case list([JinjaValue])
    /// A Python dict with string keys, in insertion order.
    case object([Member])

    /// One member of an object, in insertion order.
    public struct Member: Sendable, Equatable {
        public var key: String
        public var value: JinjaValue
        public init(key: String, value: JinjaValue) {
            self.key = key
            self.value = value
        }
    }

    /// An object from ordered key/value pairs (a later duplicate key replaces the earlier value
    /// in place, as assignment to a Python dict does).
    public static func object(_ pairs: KeyValuePairs<String, JinjaValue>) -> JinjaValue {
        var members: [Member] = []
        for (k, v) in pairs { JinjaValue.insert(&members, k, v) }
        return .object(members)
    }

    static func insert(_ members: inout [Member], _ key: String, _ value: JinjaValue) {
        if let i = members.firstIndex(where: { $0.key.unicodeScalars.elementsEqual(key.unicodeScalars) }) {
            members[i].value = value
        } else {
            members.append(Member(key: key, value: value))
        }
    }

    /// The value of a parsed JSON document (numbers with a fraction or exponent become
    /// `.double`, integral literals that fit in `Int` become `.int`).
    public init(json: StrictJSON.Value) {
        switch json {
        case .null: self = .none
        case .bool(let b): self = .bool(b)
        case .number(let text):
            if let i = json.intValue, !text.contains("."), !text.lowercased().contains("e") {
                self = .int(i)
            } else {
                self = .double(Double(text) ?? .nan)
            }
        case .string(let s): self = .string(s)
        case .array(let a): self = .list(a.map { JinjaValue(json: $0) })
        case .object(let members):
            var out: [Member] = []
            for m in members { JinjaValue.insert(&out, m.key, JinjaValue(json: m.value)) }
            self = .object(out)
        }
    }

    /// Parses a JSON text (for tool schemas and test fixtures).
    public init(jsonText: String) throws {
        self.init(json: try StrictJSON.parse(Array(jsonText.utf8)))
    }

    /// The member of an object with that key, else nil.
    public subscript(key: String) -> JinjaValue? {
        guard case .object(let members) = self else { return nil }
        return members.first(where: { $0.key.unicodeScalars.elementsEqual(key.unicodeScalars) })?.value
    }
}

extension JinjaValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByFloatLiteral,
    ExpressibleByBooleanLiteral, ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral, ExpressibleByNilLiteral {
    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int) { self = .int(value) }
    public init(floatLiteral value: Double) { self = .double(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(arrayLiteral elements: JinjaValue...) { self = .list(elements) }
    public init(dictionaryLiteral elements: (String, JinjaValue)...) {
        var members: [Member] = []
        for (k, v) in elements { JinjaValue.insert(&members, k, v) }
        self = .object(members)
    }
    public init(nilLiteral: ()) { self = .none }
}
