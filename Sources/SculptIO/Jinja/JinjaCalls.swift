// Global functions (range, dict, namespace, raise_exception, strftime_now) and the Python
// methods of str, dict, list and the loop object that templates call.

extension JinjaInterpreter {
    /// Binds positional and keyword arguments to parameter names (nil where not given).
    func bind(_ fn: String, _ names: [String], _ args: JinjaCallArgs, skip: Int = 0) throws -> [JinjaRuntimeValue?] {
        var out = [JinjaRuntimeValue?](repeating: nil, count: names.count)
        if args.positional.count > names.count {
            throw fail("\(fn)() takes at most \(names.count + skip) arguments (\(args.positional.count + skip) given)")
        }
        for (i, v) in args.positional.enumerated() { out[i] = v }
        for (k, v) in args.keywords {
            guard let i = names.firstIndex(of: k) else { throw fail("\(fn)() got an unexpected keyword argument '\(k)'") }
            if out[i] != nil { throw fail("\(fn)() got multiple values for argument '\(k)'") }
            out[i] = v
        }
        return out
    }

    func string(_ v: JinjaRuntimeValue?, _ what: String) throws -> String? {
        guard let v else { return nil }
        switch v {
        case .none: return nil
        case .string(let s): return s
        default: throw fail("\(what) must be str or None, not \(v.typeName)")
        }
    }

    func int(_ v: JinjaRuntimeValue?, _ what: String) throws -> Int? {
        guard let v else { return nil }
        if case .none = v { return nil }
        guard let i = intIndex(v) else { throw fail("\(what): '\(v.typeName)' object cannot be interpreted as an integer") }
        return i
    }

    func callGlobal(_ name: String, _ args: JinjaCallArgs) throws -> JinjaRuntimeValue {
        switch name {
        case "raise_exception":
            let a = try bind("raise_exception", ["message"], args)
            throw JinjaError(kind: .raised, line: line > 0 ? line : nil, message: try str(a[0] ?? .none))
        case "strftime_now":
            let a = try bind("strftime_now", ["format"], args)
            guard case .string(let f)? = a[0] else { throw fail("strftime_now() needs a format string") }
            return .string(try strftimeNow(f))
        case "range":
            if !args.keywords.isEmpty { throw fail("range() takes no keyword arguments") }
            let ints = try args.positional.map { v -> Int in
                guard let i = intIndex(v) else { throw fail("'\(v.typeName)' object cannot be interpreted as an integer") }
                return i
            }
            var start = 0, stop = 0, step = 1
            switch ints.count {
            case 1: stop = ints[0]
            case 2: start = ints[0]; stop = ints[1]
            case 3: start = ints[0]; stop = ints[1]; step = ints[2]
            default: throw fail("range expected 1 to 3 arguments, got \(ints.count)")
            }
            if step == 0 { throw fail("range() arg 3 must not be zero") }
            let span = step > 0 ? (stop > start ? (stop - start - 1) / step + 1 : 0) : (start > stop ? (start - stop - 1) / (-step) + 1 : 0)
            if span > limits.maxRange {
                throw fail("Range too big. The sandbox blocks ranges larger than MAX_RANGE (\(limits.maxRange)).", kind: .limit)
            }
            return .list((0..<span).map { .int(start + $0 * step) })
        case "dict":
            var d = PyDict()
            if args.positional.count > 1 { throw fail("dict expected at most 1 argument, got \(args.positional.count)") }
            if let first = args.positional.first {
                switch first {
                case .dict(let src): d = src
                case .list(let pairs), .tuple(let pairs):
                    for p in pairs {
                        let kv = try iterate(p)
                        guard kv.count == 2 else { throw fail("dictionary update sequence element has length \(kv.count); 2 is required") }
                        try checkHashable(kv[0])
                        d.set(kv[0], kv[1])
                    }
                default: throw fail("'\(first.typeName)' object is not iterable")
                }
            }
            for (k, v) in args.keywords { d.set(.string(k), v) }
            return .dict(d)
        case "namespace":
            guard case .dict(let d) = try callGlobal("dict", args) else { return .none }
            if d.keys.contains(where: { !$0.isString }) { throw fail("namespace keys must be strings") }
            namespaces.append(d)
            return .namespace(namespaces.count - 1)
        default:
            throw fail("the Jinja global \"\(name)\" is not supported", kind: .unsupported)
        }
    }

    func callMethod(_ obj: JinjaRuntimeValue, _ name: String, _ args: JinjaCallArgs) throws -> JinjaRuntimeValue {
        switch obj {
        case .string(let s): return try stringMethod(s, name, args)
        case .dict(let d): return try dictMethod(d, name, args)
        case .list(let l), .tuple(let l): return try listMethod(obj, l, name, args)
        case .loop(let l):
            if name == "cycle" {
                if args.positional.isEmpty { throw fail("no items for cycling given") }
                return args.positional[l.index0 % args.positional.count]
            }
            throw fail("loop.\(name)() is not supported", kind: .unsupported)
        default:
            throw fail("'\(obj.typeName)' object has no method '\(name)'")
        }
    }

    func dictMethod(_ d: PyDict, _ name: String, _ args: JinjaCallArgs) throws -> JinjaRuntimeValue {
        switch name {
        case "items":
            _ = try bind("items", [], args)
            return .list(zip(d.keys, d.values).map { .tuple([$0, $1]) })
        case "keys":
            _ = try bind("keys", [], args)
            return .list(d.keys)
        case "values":
            _ = try bind("values", [], args)
            return .list(d.values)
        case "get":
            if !args.keywords.isEmpty { throw fail("get() takes no keyword arguments") }
            let a = try bind("get", ["key", "default"], args)
            guard let key = a[0] else { throw fail("get expected at least 1 argument, got 0") }
            try checkHashable(key)
            return d[key] ?? a[1] ?? .none
        case "copy":
            return .dict(d)
        default:
            throw fail("dict method '\(name)' is not supported", kind: .unsupported)
        }
    }

    func listMethod(_ obj: JinjaRuntimeValue, _ l: [JinjaRuntimeValue], _ name: String, _ args: JinjaCallArgs) throws -> JinjaRuntimeValue {
        switch name {
        case "count":
            let a = try bind("count", ["value"], args)
            guard let v = a[0] else { throw fail("count() takes exactly one argument (0 given)") }
            return .int(l.filter { JinjaRuntimeValue.pyEquals($0, v) }.count)
        case "index":
            let a = try bind("index", ["value"], args)
            guard let v = a[0] else { throw fail("index expected at least 1 argument, got 0") }
            guard let i = l.firstIndex(where: { JinjaRuntimeValue.pyEquals($0, v) }) else {
                throw fail("\(try repr(v, 0)) is not in \(obj.typeName)")
            }
            return .int(i)
        case "copy":
            return obj
        default:
            throw fail("list method '\(name)' is not supported", kind: .unsupported)
        }
    }

    func stringMethod(_ s: String, _ name: String, _ args: JinjaCallArgs) throws -> JinjaRuntimeValue {
        func noArgs() throws { _ = try bind(name, [], args) }
        switch name {
        case "strip", "lstrip", "rstrip":
            let a = try bind(name, ["chars"], args)
            let chars = try string(a[0], "\(name) arg")
            return .string(PyText.strip(s, chars, leading: name != "rstrip", trailing: name != "lstrip"))
        case "split":
            let a = try bind(name, ["sep", "maxsplit"], args)
            let sep = try string(a[0], "sep")
            guard let parts = PyText.split(s, sep, maxsplit: try int(a[1], "maxsplit") ?? -1) else {
                throw fail("empty separator")
            }
            return .list(parts.map { .string($0) })
        case "splitlines":
            let a = try bind(name, ["keepends"], args)
            return .list(PyText.splitlines(s, keepends: a[0]?.truthy ?? false).map { .string($0) })
        case "startswith", "endswith":
            let a = try bind(name, ["prefix"], args)
            var candidates: [String] = []
            switch a[0] {
            case .string(let p)?: candidates = [p]
            case .tuple(let items)?:
                for item in items {
                    guard case .string(let p) = item else { throw fail("tuple for \(name) must only contain str, not \(item.typeName)") }
                    candidates.append(p)
                }
            default:
                throw fail("\(name) first arg must be str or a tuple of str, not \(a[0]?.typeName ?? "nothing")")
            }
            let sc = Array(s.unicodeScalars)
            return .bool(candidates.contains { p in
                let ps = Array(p.unicodeScalars)
                return name == "startswith" ? sc.starts(with: ps) : sc.reversed().starts(with: ps.reversed())
            })
        case "upper": try noArgs(); return .string(PyText.upper(s))
        case "lower", "casefold": try noArgs(); return .string(PyText.lower(s))
        case "title": try noArgs(); return .string(PyText.title(s))
        case "capitalize": try noArgs(); return .string(PyText.capitalize(s))
        case "replace":
            let a = try bind(name, ["old", "new", "count"], args)
            guard case .string(let old)? = a[0], case .string(let new)? = a[1] else {
                throw fail("replace() arguments must be str")
            }
            return .string(try replace(s, old, new, count: try int(a[2], "count") ?? -1))
        case "find", "rfind", "count", "index", "rindex":
            let a = try bind(name, ["sub"], args)
            guard case .string(let sub)? = a[0] else { throw fail("\(name)() argument must be str") }
            if name == "count" { return .int(PyText.countOccurrences(s, sub)) }
            let found = name.hasPrefix("r") ? PyText.rfind(s, sub) : PyText.find(s, sub)
            if found == nil, name.hasSuffix("index") { throw fail("substring not found") }
            return .int(found ?? -1)
        case "join":
            let a = try bind(name, ["iterable"], args)
            var parts: [String] = []
            for item in try iterate(a[0] ?? .none) {
                guard case .string(let p) = item else {
                    throw fail("sequence item \(parts.count): expected str instance, \(item.typeName) found")
                }
                parts.append(p)
            }
            let joined = parts.joined(separator: s)
            try checkSize(joined.utf8.count)
            return .string(joined)
        case "removeprefix", "removesuffix":
            let a = try bind(name, ["affix"], args)
            guard case .string(let p)? = a[0] else { throw fail("\(name)() argument must be str") }
            let sc = Array(s.unicodeScalars), ps = Array(p.unicodeScalars)
            if name == "removeprefix", sc.starts(with: ps) { return .string(PyText.string(sc.dropFirst(ps.count))) }
            if name == "removesuffix", !ps.isEmpty, sc.reversed().starts(with: ps.reversed()) {
                return .string(PyText.string(sc.dropLast(ps.count)))
            }
            return .string(s)
        case "isdigit", "isdecimal", "isnumeric":
            try noArgs()
            return .bool(!s.isEmpty && s.unicodeScalars.allSatisfy { $0.properties.numericType != nil })
        case "isalpha":
            try noArgs()
            return .bool(!s.isEmpty && s.unicodeScalars.allSatisfy { $0.properties.isAlphabetic })
        case "isalnum":
            try noArgs()
            return .bool(!s.isEmpty && s.unicodeScalars.allSatisfy { $0.properties.isAlphabetic || $0.properties.numericType != nil })
        case "isspace":
            try noArgs()
            return .bool(!s.isEmpty && s.unicodeScalars.allSatisfy(PyText.isSpace))
        case "isupper", "islower":
            try noArgs()
            return .bool(PyText.hasCase(s, upper: name == "isupper"))
        case "format":
            return .string(try format(s, args))
        default:
            throw fail("string method '\(name)' is not supported", kind: .unsupported)
        }
    }

    func replace(_ s: String, _ old: String, _ new: String, count: Int) throws -> String {
        let a = Array(s.unicodeScalars), o = Array(old.unicodeScalars), n = Array(new.unicodeScalars)
        var out: [Unicode.Scalar] = []
        var i = 0, done = 0
        if o.isEmpty {
            for c in a {
                if count < 0 || done < count { out += n; done += 1 }
                out.append(c)
            }
            if count < 0 || done < count { out += n }
        } else {
            while i < a.count {
                if count < 0 || done < count, i + o.count <= a.count, Array(a[i..<i + o.count]) == o {
                    out += n
                    i += o.count
                    done += 1
                } else {
                    out.append(a[i])
                    i += 1
                }
                if out.count > limits.maxOutputBytes { try checkSize(out.count) }
            }
        }
        try checkSize(out.count)
        return PyText.string(out)
    }

    /// `str.format` with `{}`, `{0}`, `{name}`, `!r`/`!s` and `{{`/`}}`; format specs are not supported.
    func format(_ s: String, _ args: JinjaCallArgs) throws -> String {
        let a = Array(s.unicodeScalars)
        var out = ""
        var i = 0, auto = 0
        while i < a.count {
            let c = a[i]
            if c == "{" {
                if i + 1 < a.count, a[i + 1] == "{" { out += "{"; i += 2; continue }
                guard let close = a[i...].firstIndex(of: "}") else { throw fail("Single '{' encountered in format string") }
                var field = PyText.string(a[(i + 1)..<close])
                var conversion: String?
                if let bang = field.firstIndex(of: "!") {
                    conversion = String(field[field.index(after: bang)...])
                    field = String(field[..<bang])
                }
                if field.contains(":") || field.contains(".") || field.contains("[") {
                    throw fail("str.format field \"{\(field)}\" with a format spec or attribute is not supported", kind: .unsupported)
                }
                var value: JinjaRuntimeValue
                if field.isEmpty {
                    guard auto < args.positional.count else { throw fail("Replacement index \(auto) out of range for positional args tuple") }
                    value = args.positional[auto]
                    auto += 1
                } else if let n = Int(field) {
                    guard n >= 0, n < args.positional.count else { throw fail("Replacement index \(n) out of range for positional args tuple") }
                    value = args.positional[n]
                } else {
                    guard let kw = args.keywords.first(where: { $0.0 == field }) else { throw fail("KeyError: '\(field)'") }
                    value = kw.1
                }
                switch conversion {
                case nil, "s": out += try str(value)
                case "r": out += try repr(value, 0)
                default: throw fail("Unknown conversion specifier \(conversion ?? "")")
                }
                i = close + 1
            } else if c == "}" {
                if i + 1 < a.count, a[i + 1] == "}" { out += "}"; i += 2; continue }
                throw fail("Single '}' encountered in format string")
            } else {
                out.unicodeScalars.append(c)
                i += 1
            }
        }
        try checkSize(out.utf8.count)
        return out
    }
}

extension JinjaRuntimeValue {
    var isString: Bool { if case .string = self { return true }; return false }
}

extension PyText {
    static func rfind(_ s: String, _ sub: String) -> Int? {
        let a = Array(s.unicodeScalars), p = Array(sub.unicodeScalars)
        if p.count > a.count { return nil }
        var i = a.count - p.count
        while i >= 0 {
            if Array(a[i..<i + p.count]) == p { return i }
            i -= 1
        }
        return nil
    }

    static func countOccurrences(_ s: String, _ sub: String) -> Int {
        let a = Array(s.unicodeScalars), p = Array(sub.unicodeScalars)
        if p.isEmpty { return a.count + 1 }
        var i = 0, n = 0
        while i + p.count <= a.count {
            if Array(a[i..<i + p.count]) == p { n += 1; i += p.count } else { i += 1 }
        }
        return n
    }

    /// `str.isupper()` / `str.islower()`: at least one cased character and none of the other case.
    static func hasCase(_ s: String, upper: Bool) -> Bool {
        var cased = false
        for c in s.unicodeScalars {
            let p = c.properties
            if upper {
                if p.isLowercase || p.generalCategory == .titlecaseLetter { return false }
                if p.isUppercase { cased = true }
            } else {
                if p.isUppercase || p.generalCategory == .titlecaseLetter { return false }
                if p.isLowercase { cased = true }
            }
        }
        return cased
    }
}
