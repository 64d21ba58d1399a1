// Attribute and item access under jinja2's ImmutableSandboxedEnvironment, and Python's
// arithmetic, comparison and membership operators.

import Foundation

extension JinjaInterpreter {
    static let strMethods: Set<String> = ["capitalize", "casefold", "center", "count", "encode", "endswith", "expandtabs",
        "find", "format", "format_map", "index", "isalnum", "isalpha", "isascii", "isdecimal", "isdigit", "isidentifier",
        "islower", "isnumeric", "isprintable", "isspace", "istitle", "isupper", "join", "ljust", "lower", "lstrip",
        "maketrans", "partition", "removeprefix", "removesuffix", "replace", "rfind", "rindex", "rjust", "rpartition",
        "rsplit", "rstrip", "split", "splitlines", "startswith", "strip", "swapcase", "title", "translate", "upper", "zfill"]
    static let dictMethods: Set<String> = ["copy", "fromkeys", "get", "items", "keys", "values"]
    static let dictUnsafe: Set<String> = ["clear", "pop", "popitem", "setdefault", "update"]
    static let listMethods: Set<String> = ["copy", "count", "index"]
    static let listUnsafe: Set<String> = ["append", "clear", "extend", "insert", "pop", "remove", "reverse", "sort"]

    func noAttribute(_ obj: JinjaRuntimeValue, _ name: String) -> JinjaRuntimeValue {
        .undefined(JinjaUndefinedInfo(message: "'\(obj.objectTypeRepr)' has no attribute '\(name)'"))
    }

    func unsafe(_ obj: JinjaRuntimeValue, _ name: String) -> JinjaRuntimeValue {
        .undefined(JinjaUndefinedInfo(message: "access to attribute '\(name)' of '\(obj.typeName)' object is unsafe."))
    }

    /// `obj.name`: Python attribute first, then item; a leading underscore is never reachable.
    func getattr(_ obj: JinjaRuntimeValue, _ name: String) throws -> JinjaRuntimeValue {
        if case .undefined(let info) = obj { throw undefinedError(info) }
        if name.hasPrefix("_") {
            if case .dict(let d) = obj, let v = d[string: name] { return v }
            return noAttribute(obj, name)
        }
        switch obj {
        case .dict(let d):
            if JinjaInterpreter.dictMethods.contains(name) { return .function(.method(obj, name)) }
            if JinjaInterpreter.dictUnsafe.contains(name) { return unsafe(obj, name) }
            return d[string: name] ?? noAttribute(obj, name)
        case .string:
            return JinjaInterpreter.strMethods.contains(name) ? .function(.method(obj, name)) : noAttribute(obj, name)
        case .list, .tuple:
            if JinjaInterpreter.listMethods.contains(name) { return .function(.method(obj, name)) }
            if case .list = obj, JinjaInterpreter.listUnsafe.contains(name) { return unsafe(obj, name) }
            return noAttribute(obj, name)
        case .namespace(let id):
            return namespaces[id][string: name] ?? noAttribute(obj, name)
        case .loop(let l):
            switch name {
            case "index": return .int(l.index0 + 1)
            case "index0": return .int(l.index0)
            case "revindex": return .int(l.length - l.index0)
            case "revindex0": return .int(l.length - l.index0 - 1)
            case "first": return .bool(l.index0 == 0)
            case "last": return .bool(l.index0 == l.length - 1)
            case "length": return .int(l.length)
            case "depth": return .int(l.depth0 + 1)
            case "depth0": return .int(l.depth0)
            case "previtem": return l.previtem ?? .undefined(JinjaUndefinedInfo(message: "there is no previous item"))
            case "nextitem": return l.nextitem ?? .undefined(JinjaUndefinedInfo(message: "there is no next item"))
            case "cycle", "changed": return .function(.method(obj, name))
            default: return noAttribute(obj, name)
            }
        default:
            return noAttribute(obj, name)
        }
    }

    /// `obj[key]`: item first, then (for string keys) attribute.
    func getitem(_ obj: JinjaRuntimeValue, _ key: JinjaRuntimeValue) throws -> JinjaRuntimeValue {
        if case .undefined(let info) = obj { throw undefinedError(info) }
        switch (obj, key) {
        case (.dict(let d), _):
            if case .list = key {} else if case .dict = key {} else if let v = d[key] { return v }
        case (.list(let items), _), (.tuple(let items), _):
            if let i = intIndex(key) {
                let j = i < 0 ? i + items.count : i
                if j >= 0, j < items.count { return items[j] }
            }
        case (.string(let s), _):
            if let i = intIndex(key) {
                let scalars = Array(s.unicodeScalars)
                let j = i < 0 ? i + scalars.count : i
                if j >= 0, j < scalars.count { return .string(String(scalars[j])) }
            }
        default:
            break
        }
        if case .string(let name) = key { return try getattr(obj, name) }
        return .undefined(JinjaUndefinedInfo(message: "\(obj.objectTypeRepr) has no element \(try repr(key, 0))"))
    }

    func intIndex(_ v: JinjaRuntimeValue) -> Int? {
        switch v {
        case .int(let i): return i
        case .bool(let b): return b ? 1 : 0
        default: return nil
        }
    }

    func slice(_ obj: JinjaRuntimeValue, _ start: JinjaRuntimeValue?, _ stop: JinjaRuntimeValue?, _ step: JinjaRuntimeValue?) throws -> JinjaRuntimeValue {
        if case .undefined(let info) = obj { throw undefinedError(info) }
        func bound(_ v: JinjaRuntimeValue?) throws -> Int? {
            guard let v else { return nil }
            if case .none = v { return nil }
            guard let i = intIndex(v) else {
                throw fail("slice indices must be integers or None or have an __index__ method")
            }
            return i
        }
        let a = try bound(start), b = try bound(stop)
        let c = try bound(step) ?? 1
        if c == 0 { throw fail("slice step cannot be zero") }
        func indices(_ n: Int) -> [Int] {
            let lower = c > 0 ? 0 : -1
            let upper = c > 0 ? n : n - 1
            func clamp(_ x: Int?, _ dflt: Int) -> Int {
                guard let x else { return dflt }
                return x < 0 ? max(x + n, lower) : min(x, upper)
            }
            let s = clamp(a, c > 0 ? lower : upper)
            let e = clamp(b, c > 0 ? upper : lower)
            var out: [Int] = []
            var i = s
            if c > 0 { while i < e { out.append(i); i += c } } else { while i > e { out.append(i); i += c } }
            return out
        }
        switch obj {
        case .list(let items): return .list(indices(items.count).map { items[$0] })
        case .tuple(let items): return .tuple(indices(items.count).map { items[$0] })
        case .string(let s):
            let sc = Array(s.unicodeScalars)
            return .string(PyText.string(indices(sc.count).map { sc[$0] }))
        default:
            return .undefined(JinjaUndefinedInfo(message: "\(obj.objectTypeRepr) has no element slice"))
        }
    }

    // MARK: arithmetic

    func typeError(_ op: String, _ a: JinjaRuntimeValue, _ b: JinjaRuntimeValue) -> JinjaError {
        fail("unsupported operand type(s) for \(op): '\(a.typeName)' and '\(b.typeName)'")
    }

    func overflow() -> JinjaError {
        fail("integer result does not fit in 64 bits", kind: .unsupported)
    }

    func repeatCount(_ v: JinjaRuntimeValue) -> Int? {
        switch v {
        case .int(let i): return i
        case .bool(let b): return b ? 1 : 0
        default: return nil
        }
    }

    func binary(_ op: JinjaBinOp, _ a: JinjaRuntimeValue, _ b: JinjaRuntimeValue) throws -> JinjaRuntimeValue {
        if case .undefined(let info) = a { throw undefinedError(info) }
        if case .undefined(let info) = b { throw undefinedError(info) }
        if let x = a.number, let y = b.number { return try arithmetic(op, x, y) }
        switch (op, a, b) {
        case (.add, .string(let x), .string(let y)):
            try checkSize(x.utf8.count + y.utf8.count)
            return .string(x + y)
        case (.add, .list(let x), .list(let y)):
            try checkSize(x.count + y.count)
            return .list(x + y)
        case (.add, .tuple(let x), .tuple(let y)):
            try checkSize(x.count + y.count)
            return .tuple(x + y)
        case (.add, .string, _):
            throw fail("can only concatenate str (not \"\(b.typeName)\") to str")
        case (.add, .list, _):
            throw fail("can only concatenate list (not \"\(b.typeName)\") to list")
        case (.mul, _, _):
            var seq = a, count = repeatCount(b)
            if count == nil { seq = b; count = repeatCount(a) }
            guard let n = count else { break }
            let times = max(n, 0)
            switch seq {
            case .string(let s):
                try checkSize(s.utf8.count * min(times, limits.maxOutputBytes + 1))
                return .string(String(repeating: s, count: times))
            case .list(let l):
                try checkSize(l.count * min(times, limits.maxOutputBytes + 1))
                return .list(Array([[JinjaRuntimeValue]](repeating: l, count: times).joined()))
            case .tuple(let l):
                try checkSize(l.count * min(times, limits.maxOutputBytes + 1))
                return .tuple(Array([[JinjaRuntimeValue]](repeating: l, count: times).joined()))
            default: break
            }
        case (.mod, .string, _):
            throw fail("printf-style string formatting ('...' % value) is not supported", kind: .unsupported)
        default:
            break
        }
        throw typeError(op.rawValue, a, b)
    }

    func arithmetic(_ op: JinjaBinOp, _ x: JinjaRuntimeValue.Num, _ y: JinjaRuntimeValue.Num) throws -> JinjaRuntimeValue {
        if case .int(let i) = x, case .int(let j) = y {
            switch op {
            case .add:
                let (r, o) = i.addingReportingOverflow(j)
                if o { throw overflow() }
                return .int(r)
            case .sub:
                let (r, o) = i.subtractingReportingOverflow(j)
                if o { throw overflow() }
                return .int(r)
            case .mul:
                let (r, o) = i.multipliedReportingOverflow(by: j)
                if o { throw overflow() }
                return .int(r)
            case .div:
                if j == 0 { throw fail("division by zero") }
                return .double(Double(i) / Double(j))
            case .floordiv, .mod:
                if j == 0 { throw fail("integer division or modulo by zero") }
                if i == Int.min, j == -1 { throw overflow() }
                var q = i / j
                var r = i % j
                if r != 0, (r < 0) != (j < 0) { q -= 1; r += j }
                return .int(op == .floordiv ? q : r)
            case .pow:
                if j < 0 {
                    if i == 0 { throw fail("0.0 cannot be raised to a negative power") }
                    return .double(Foundation.pow(Double(i), Double(j)))
                }
                var result = 1, base = i, e = j
                while e > 0 {
                    if e & 1 == 1 {
                        let (r, o) = result.multipliedReportingOverflow(by: base)
                        if o { throw overflow() }
                        result = r
                    }
                    e >>= 1
                    if e > 0 {
                        let (b2, o) = base.multipliedReportingOverflow(by: base)
                        if o { throw overflow() }
                        base = b2
                    }
                }
                return .int(result)
            }
        }
        let a = x.asDouble, b = y.asDouble
        switch op {
        case .add: return .double(a + b)
        case .sub: return .double(a - b)
        case .mul: return .double(a * b)
        case .div:
            if b == 0 { throw fail("float division by zero") }
            return .double(a / b)
        case .floordiv:
            if b == 0 { throw fail("float floor division by zero") }
            return .double((a / b).rounded(.down))
        case .mod:
            if b == 0 { throw fail("float modulo") }
            var r = fmod(a, b)
            if r != 0, (r < 0) != (b < 0) { r += b }
            return .double(r)
        case .pow:
            if a == 0, b < 0 { throw fail("0.0 cannot be raised to a negative power") }
            let r = Foundation.pow(a, b)
            if r.isNaN, !a.isNaN, !b.isNaN { throw fail("negative number cannot be raised to a fractional power", kind: .unsupported) }
            return .double(r)
        }
    }

    func negate(_ v: JinjaRuntimeValue) throws -> JinjaRuntimeValue {
        switch v {
        case .undefined(let info): throw undefinedError(info)
        case .bool(let b): return .int(b ? -1 : 0)
        case .int(let i):
            if i == Int.min { throw overflow() }
            return .int(-i)
        case .double(let d): return .double(-d)
        default: throw fail("bad operand type for unary -: '\(v.typeName)'")
        }
    }

    // MARK: comparison

    func compare(_ op: String, _ a: JinjaRuntimeValue, _ b: JinjaRuntimeValue) throws -> Bool {
        switch op {
        case "==": return JinjaRuntimeValue.pyEquals(a, b)
        case "!=": return !JinjaRuntimeValue.pyEquals(a, b)
        case "in": return try contains(b, a)
        case "notin": return !(try contains(b, a))
        default:
            let c = try order(a, b, op)
            switch op {
            case "<": return c < 0
            case "<=": return c <= 0
            case ">": return c > 0
            default: return c >= 0
            }
        }
    }

    /// Three-way Python ordering; throws for unorderable types. NaN compares as unordered (all false).
    func order(_ a: JinjaRuntimeValue, _ b: JinjaRuntimeValue, _ op: String) throws -> Int {
        if case .undefined(let info) = a { throw undefinedError(info) }
        if case .undefined(let info) = b { throw undefinedError(info) }
        if let x = a.number, let y = b.number {
            if case .int(let i) = x, case .int(let j) = y { return i < j ? -1 : (i > j ? 1 : 0) }
            let p = x.asDouble, q = y.asDouble
            if p.isNaN || q.isNaN { return op == "<" || op == "<=" ? 1 : -1 }
            return p < q ? -1 : (p > q ? 1 : 0)
        }
        switch (a, b) {
        case (.string(let x), .string(let y)):
            return JinjaInterpreter.compareScalars(x, y)
        case (.list(let x), .list(let y)), (.tuple(let x), .tuple(let y)):
            for (p, q) in zip(x, y) where !JinjaRuntimeValue.pyEquals(p, q) { return try order(p, q, op) }
            return x.count < y.count ? -1 : (x.count > y.count ? 1 : 0)
        default:
            throw fail("'\(op)' not supported between instances of '\(a.typeName)' and '\(b.typeName)'")
        }
    }

    static func compareScalars(_ x: String, _ y: String) -> Int {
        var i = x.unicodeScalars.makeIterator(), j = y.unicodeScalars.makeIterator()
        while true {
            switch (i.next(), j.next()) {
            case (nil, nil): return 0
            case (nil, _): return -1
            case (_, nil): return 1
            case (let p?, let q?): if p != q { return p.value < q.value ? -1 : 1 }
            }
        }
    }

    /// `item in container`.
    func contains(_ container: JinjaRuntimeValue, _ item: JinjaRuntimeValue) throws -> Bool {
        switch container {
        case .undefined: return false
        case .string(let s):
            guard case .string(let sub) = item else {
                throw fail("'in <string>' requires string as left operand, not \(item.typeName)")
            }
            return PyText.find(s, sub) != nil
        case .list(let l), .tuple(let l): return l.contains { JinjaRuntimeValue.pyEquals($0, item) }
        case .iterator(let id, _):
            while let next = nextItem(id) { if JinjaRuntimeValue.pyEquals(next, item) { return true } }
            return false
        case .dict(let d):
            try checkHashable(item)
            return d.index(of: item) != nil
        default:
            throw fail("argument of type '\(container.typeName)' is not iterable")
        }
    }
}

extension PyText {
    /// Index (in code points) of the first occurrence of `sub` in `s` at or after `from`.
    static func find(_ s: String, _ sub: String, from: Int = 0) -> Int? {
        let a = Array(s.unicodeScalars), p = Array(sub.unicodeScalars)
        if p.isEmpty { return from <= a.count ? max(from, 0) : nil }
        var i = max(from, 0)
        while i + p.count <= a.count {
            if a[i] == p[0], Array(a[i..<i + p.count]) == p { return i }
            i += 1
        }
        return nil
    }
}
