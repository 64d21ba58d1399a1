// The interpreter's value model: Python objects as a Jinja template sees them, including
// Jinja's `Undefined`, tuples, namespaces, the loop object and callables.

/// Why a value is undefined; the message Jinja raises once the value is used.
struct JinjaUndefinedInfo {
    var message: String
    static func name(_ n: String) -> JinjaUndefinedInfo { JinjaUndefinedInfo(message: "'\(n)' is undefined") }
}

/// An ordered Python dict (keys compared with Python equality: 1 == 1.0 == True).
struct PyDict {
    var keys: [JinjaRuntimeValue] = []
    var values: [JinjaRuntimeValue] = []

    var count: Int { keys.count }

    func index(of key: JinjaRuntimeValue) -> Int? {
        for i in keys.indices where JinjaRuntimeValue.pyEquals(keys[i], key) { return i }
        return nil
    }
    subscript(key: JinjaRuntimeValue) -> JinjaRuntimeValue? {
        index(of: key).map { values[$0] }
    }
    subscript(string key: String) -> JinjaRuntimeValue? { self[.string(key)] }
    mutating func set(_ key: JinjaRuntimeValue, _ value: JinjaRuntimeValue) {
        if let i = index(of: key) { values[i] = value } else { keys.append(key); values.append(value) }
    }
}

/// Per-iteration state of a `for` loop (`loop.index`, `loop.first`, ...).
struct JinjaLoopState {
    var index0: Int
    var length: Int
    var previtem: JinjaRuntimeValue?
    var nextitem: JinjaRuntimeValue?
    var depth0: Int
}

/// A callable: a built-in global, a macro, or a bound method of a value.
enum JinjaCallable {
    case builtin(String)
    case macro(JinjaMacroClosure)
    case method(JinjaRuntimeValue, String)
}

/// A macro definition together with the scope it was defined in.
final class JinjaMacroClosure {
    let macro: JinjaMacroDef
    let scope: JinjaScope
    var caller: JinjaMacroClosure?
    init(macro: JinjaMacroDef, scope: JinjaScope, caller: JinjaMacroClosure? = nil) {
        self.macro = macro
        self.scope = scope
        self.caller = caller
    }
}

indirect enum JinjaRuntimeValue {
    case undefined(JinjaUndefinedInfo)
    case none
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
    case list([JinjaRuntimeValue])
    case tuple([JinjaRuntimeValue])
    case dict(PyDict)
    /// A `namespace()` object; the id indexes the interpreter's namespace table (namespaces are
    /// mutable and shared by reference, like Jinja's).
    case namespace(Int)
    case loop(JinjaLoopState)
    case function(JinjaCallable)
    /// A one-shot Python iterator (what `select`, `map`, `reverse`, ... return); the id indexes
    /// the interpreter's iterator table, which tracks how far it has been consumed.
    case iterator(Int, kind: String)

    init(_ v: JinjaValue) {
        switch v {
        case .none: self = .none
        case .bool(let b): self = .bool(b)
        case .int(let i): self = .int(i)
        case .double(let d): self = .double(d)
        case .string(let s): self = .string(s)
        case .list(let l): self = .list(l.map(JinjaRuntimeValue.init))
        case .object(let members):
            var d = PyDict()
            for m in members { d.set(.string(m.key), JinjaRuntimeValue(m.value)) }
            self = .dict(d)
        }
    }

    init(_ c: JinjaConst) {
        switch c {
        case .none: self = .none
        case .bool(let b): self = .bool(b)
        case .int(let i): self = .int(i)
        case .double(let d): self = .double(d)
        case .string(let s): self = .string(s)
        }
    }

    var isUndefined: Bool { if case .undefined = self { return true }; return false }
    var isNone: Bool { if case .none = self { return true }; return false }

    /// Python's type name (`type(x).__name__`), as used in error messages.
    var typeName: String {
        switch self {
        case .undefined: return "Undefined"
        case .none: return "NoneType"
        case .bool: return "bool"
        case .int: return "int"
        case .double: return "float"
        case .string: return "str"
        case .list: return "list"
        case .tuple: return "tuple"
        case .dict: return "dict"
        case .namespace: return "Namespace"
        case .loop: return "LoopContext"
        case .iterator(_, let kind): return kind
        case .function(let f):
            switch f {
            case .macro: return "Macro"
            case .builtin: return "function"
            case .method: return "builtin_function_or_method"
            }
        }
    }

    /// Jinja's `object_type_repr`, used in "has no attribute/element" messages.
    var objectTypeRepr: String {
        switch self {
        case .none: return "None"
        case .namespace: return "jinja2.utils.Namespace object"
        case .loop: return "jinja2.runtime.LoopContext object"
        case .undefined: return "jinja2.runtime.Undefined object"
        case .function(.macro): return "jinja2.runtime.Macro object"
        default: return "\(typeName) object"
        }
    }

    /// Python truthiness (`bool(x)`); undefined is false.
    var truthy: Bool {
        switch self {
        case .undefined, .none: return false
        case .bool(let b): return b
        case .int(let i): return i != 0
        case .double(let d): return d != 0
        case .string(let s): return !s.isEmpty
        case .list(let l), .tuple(let l): return !l.isEmpty
        case .dict(let d): return d.count > 0
        case .namespace, .loop, .function, .iterator: return true
        }
    }

    /// Numeric view for arithmetic and comparisons (bool is an int in Python).
    var number: Num? {
        switch self {
        case .bool(let b): return .int(b ? 1 : 0)
        case .int(let i): return .int(i)
        case .double(let d): return .double(d)
        default: return nil
        }
    }

    enum Num {
        case int(Int)
        case double(Double)
        var asDouble: Double {
            switch self {
            case .int(let i): return Double(i)
            case .double(let d): return d
            }
        }
    }

    /// Python `==` (`1 == 1.0 == True`, strings by code points, dicts ignoring order,
    /// undefined equal only to undefined).
    static func pyEquals(_ a: JinjaRuntimeValue, _ b: JinjaRuntimeValue) -> Bool {
        switch (a, b) {
        case (.undefined, .undefined), (.none, .none): return true
        case (.string(let x), .string(let y)): return x.unicodeScalars.elementsEqual(y.unicodeScalars)
        case (.list(let x), .list(let y)), (.tuple(let x), .tuple(let y)):
            return x.count == y.count && zip(x, y).allSatisfy { pyEquals($0, $1) }
        case (.dict(let x), .dict(let y)):
            guard x.count == y.count else { return false }
            for (k, v) in zip(x.keys, x.values) {
                guard let w = y[k], pyEquals(v, w) else { return false }
            }
            return true
        case (.namespace(let x), .namespace(let y)): return x == y
        case (.iterator(let x, _), .iterator(let y, _)): return x == y
        default:
            if let x = a.number, let y = b.number {
                switch (x, y) {
                case (.int(let i), .int(let j)): return i == j
                default: return x.asDouble == y.asDouble
                }
            }
            return false
        }
    }
}
