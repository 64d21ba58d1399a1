// jinja2's built-in filters (the subset chat templates use) plus transformers' `tojson`.

import Foundation

enum JinjaFilters {
    static let supported: Set<String> = ["abs", "attr", "capitalize", "count", "d", "default", "dictsort", "e", "escape",
        "first", "float", "indent", "int", "items", "join", "last", "length", "list", "lower", "map", "max", "min",
        "reject", "rejectattr", "replace", "reverse", "round", "safe", "select", "selectattr", "sort", "string", "sum",
        "title", "tojson", "trim", "unique", "upper", "wordcount"]
    static let knownUnsupported: Set<String> = ["batch", "center", "filesizeformat", "forceescape", "format", "groupby",
        "pprint", "random", "slice", "striptags", "truncate", "urlencode", "urlize", "wordwrap", "xmlattr"]
}

extension JinjaInterpreter {
    func applyFilter(_ name: String, _ value: JinjaRuntimeValue, _ args: JinjaCallArgs) throws -> JinjaRuntimeValue {
        switch name {
        case "abs":
            _ = try bind(name, [], args)
            switch value {
            case .int(let i):
                if i == Int.min { throw overflow() }
                return .int(Swift.abs(i))
            case .bool(let b): return .int(b ? 1 : 0)
            case .double(let d): return .double(Swift.abs(d))
            case .undefined(let info): throw undefinedError(info)
            default: throw fail("bad operand type for abs(): '\(value.typeName)'")
            }
        case "attr":
            let a = try bind(name, ["name"], args)
            guard case .string(let n)? = a[0] else { throw fail("attr filter needs an attribute name") }
            // Python attributes only: a dict's keys are not attributes.
            if case .dict = value, !JinjaInterpreter.dictMethods.contains(n), !JinjaInterpreter.dictUnsafe.contains(n) {
                return noAttribute(value, n)
            }
            return try getattr(value, n)
        case "capitalize":
            _ = try bind(name, [], args)
            return .string(PyText.capitalize(try str(value)))
        case "count", "length":
            _ = try bind(name, [], args)
            return .int(try length(value))
        case "d", "default":
            let a = try bind(name, ["default_value", "boolean"], args)
            let useDefault = (a[1]?.truthy ?? false) ? !value.truthy : value.isUndefined
            return useDefault ? (a[0] ?? .string("")) : value
        case "dictsort":
            let a = try bind(name, ["case_sensitive", "by", "reverse"], args)
            guard case .dict(let d) = value else {
                if case .undefined(let info) = value { throw undefinedError(info) }
                throw fail("dictsort filter needs a mapping, not \(value.typeName)")
            }
            let byValue: Bool
            switch a[1] {
            case nil, .string("key")?: byValue = false
            case .string("value")?: byValue = true
            default: throw fail("You can only sort by either \"key\" or \"value\"")
            }
            let cs = a[0]?.truthy ?? false
            var pairs = zip(d.keys, d.values).map { ($0, $1) }
            try stableSort(&pairs, reverse: a[2]?.truthy ?? false) { try self.sortKey(byValue ? $0.1 : $0.0, caseSensitive: cs) }
            return .list(pairs.map { .tuple([$0.0, $0.1]) })
        case "e", "escape":
            _ = try bind(name, [], args)
            return .string(escapeHTML(try str(value)))
        case "first":
            _ = try bind(name, [], args)
            if case .undefined = value { return .undefined(JinjaUndefinedInfo(message: "No first item, sequence was empty.")) }
            if case .iterator(let id, _) = value {
                return nextItem(id) ?? .undefined(JinjaUndefinedInfo(message: "No first item, sequence was empty."))
            }
            return try iterate(value).first ?? .undefined(JinjaUndefinedInfo(message: "No first item, sequence was empty."))
        case "last":
            _ = try bind(name, [], args)
            if case .undefined = value { return .undefined(JinjaUndefinedInfo(message: "No last item, sequence was empty.")) }
            if case .iterator = value { throw fail("'\(value.typeName)' object is not reversible") }
            return try iterate(value).last ?? .undefined(JinjaUndefinedInfo(message: "No last item, sequence was empty."))
        case "float":
            let a = try bind(name, ["default"], args)
            return try toFloat(value) ?? a[0] ?? .double(0)
        case "int":
            let a = try bind(name, ["default", "base"], args)
            return try toInt(value, base: try int(a[1], "base") ?? 10) ?? a[0] ?? .int(0)
        case "indent":
            let a = try bind(name, ["width", "first", "blank"], args)
            var indention = "    "
            switch a[0] {
            case nil: break
            case .string(let s)?: indention = s
            case let w?:
                guard let n = intIndex(w) else { throw fail("indent width must be an integer or a string") }
                try checkSize(n)
                indention = String(repeating: " ", count: max(n, 0))
            }
            return .string(try indent(try str(value), indention, first: a[1]?.truthy ?? false, blank: a[2]?.truthy ?? false))
        case "items":
            _ = try bind(name, [], args)
            switch value {
            case .undefined: return .list([])
            case .dict(let d): return makeIterator(zip(d.keys, d.values).map { .tuple([$0, $1]) })
            default: throw fail("Can only get item pairs from a mapping.")
            }
        case "join":
            let a = try bind(name, ["d", "attribute"], args)
            var items = try iterate(value)
            if let attribute = a[1] { items = try items.map { try itemAttribute($0, attribute) } }
            let sep = try str(a[0] ?? .string(""))
            let joined = try items.map { try str($0) }.joined(separator: sep)
            try checkSize(joined.utf8.count)
            return .string(joined)
        case "list":
            _ = try bind(name, [], args)
            return .list(try iterate(value))
        case "lower":
            _ = try bind(name, [], args)
            return .string(PyText.lower(try str(value)))
        case "upper":
            _ = try bind(name, [], args)
            return .string(PyText.upper(try str(value)))
        case "map":
            return makeIterator(try mapFilter(value, args))
        case "max", "min":
            let a = try bind(name, ["case_sensitive", "attribute"], args)
            let items = try iterate(value)
            guard var best = items.first else {
                return .undefined(JinjaUndefinedInfo(message: "No aggregated item, sequence was empty."))
            }
            let cs = a[0]?.truthy ?? false
            func key(_ v: JinjaRuntimeValue) throws -> JinjaRuntimeValue {
                try sortKey(a[1] != nil ? try itemAttribute(v, a[1]!) : v, caseSensitive: cs)
            }
            var bestKey = try key(best)
            for item in items.dropFirst() {
                let k = try key(item)
                let c = try order(k, bestKey, "<")
                if name == "max" ? c > 0 : c < 0 { best = item; bestKey = k }
            }
            return best
        case "reject", "select":
            let (testName, rest) = try testArgs(args, skip: 0)
            var out: [JinjaRuntimeValue] = []
            for item in try iterate(value) {
                let ok = try testName.map { try applyTest($0, item, rest) } ?? item.truthy
                if ok == (name == "select") { out.append(item) }
            }
            return makeIterator(out)
        case "rejectattr", "selectattr":
            guard let attribute = args.positional.first else { throw fail("\(name) needs an attribute name") }
            let (testName, rest) = try testArgs(args, skip: 1)
            var out: [JinjaRuntimeValue] = []
            for item in try iterate(value) {
                let v = try itemAttribute(item, attribute)
                let ok = try testName.map { try applyTest($0, v, rest) } ?? v.truthy
                if ok == (name == "selectattr") { out.append(item) }
            }
            return makeIterator(out)
        case "replace":
            let a = try bind(name, ["old", "new", "count"], args)
            guard let old = a[0], let new = a[1] else { throw fail("replace filter needs old and new strings") }
            return .string(try replace(try str(value), try str(old), try str(new), count: try int(a[2], "count") ?? -1))
        case "reverse":
            _ = try bind(name, [], args)
            switch value {
            case .string(let s): return .string(PyText.string(s.unicodeScalars.reversed()))
            case .list(let l): return makeIterator(l.reversed(), kind: "list_reverseiterator")
            case .tuple(let l): return makeIterator(l.reversed(), kind: "reversed")
            case .dict(let d): return makeIterator(d.keys.reversed(), kind: "dict_reversekeyiterator")
            case .undefined: return makeIterator([], kind: "reversed")
            default: return .list(try iterate(value).reversed())
            }
        case "round":
            let a = try bind(name, ["precision", "method"], args)
            let precision = try int(a[0], "precision") ?? 0
            let method = try string(a[1], "method") ?? "common"
            guard let n = value.number?.asDouble else {
                if case .undefined(let info) = value { throw undefinedError(info) }
                throw fail("round filter needs a number, not \(value.typeName)")
            }
            let scale = Foundation.pow(10.0, Double(precision))
            switch method {
            case "common": return .double((n * scale).rounded(.toNearestOrEven) / scale)
            case "ceil": return .double((n * scale).rounded(.up) / scale)
            case "floor": return .double((n * scale).rounded(.down) / scale)
            default: throw fail("method must be common, ceil or floor")
            }
        case "safe", "string":
            _ = try bind(name, [], args)
            return .string(try str(value))
        case "sort":
            let a = try bind(name, ["reverse", "case_sensitive", "attribute"], args)
            var items = try iterate(value)
            let cs = a[1]?.truthy ?? false
            try stableSort(&items, reverse: a[0]?.truthy ?? false) {
                try self.sortKey(a[2] != nil ? try self.itemAttribute($0, a[2]!) : $0, caseSensitive: cs)
            }
            return .list(items)
        case "sum":
            let a = try bind(name, ["attribute", "start"], args)
            var total = a[1] ?? .int(0)
            for item in try iterate(value) {
                total = try binary(.add, total, a[0] != nil ? try itemAttribute(item, a[0]!) : item)
            }
            return total
        case "title":
            _ = try bind(name, [], args)
            return .string(PyText.jinjaTitle(try str(value)))
        case "tojson":
            let a = try bind(name, ["ensure_ascii", "indent", "separators", "sort_keys"], args)
            return .string(try toJSON(value, ensureASCII: a[0]?.truthy ?? false, indent: a[1], separators: a[2],
                                      sortKeys: a[3]?.truthy ?? false))
        case "trim":
            let a = try bind(name, ["chars"], args)
            return .string(PyText.strip(try str(value), try string(a[0], "chars"), leading: true, trailing: true))
        case "unique":
            let a = try bind(name, ["case_sensitive", "attribute"], args)
            let cs = a[0]?.truthy ?? false
            var seen: [JinjaRuntimeValue] = []
            var out: [JinjaRuntimeValue] = []
            for item in try iterate(value) {
                let k = try sortKey(a[1] != nil ? try itemAttribute(item, a[1]!) : item, caseSensitive: cs)
                if !seen.contains(where: { JinjaRuntimeValue.pyEquals($0, k) }) { seen.append(k); out.append(item) }
            }
            return makeIterator(out)
        case "wordcount":
            _ = try bind(name, [], args)
            var count = 0, inWord = false
            for c in try str(value).unicodeScalars {
                let w = c == "_" || c.properties.isAlphabetic || c.properties.numericType != nil
                if w, !inWord { count += 1 }
                inWord = w
            }
            return .int(count)
        default:
            throw fail("No filter named '\(name)' found.")
        }
    }

    func length(_ value: JinjaRuntimeValue) throws -> Int {
        switch value {
        case .undefined: return 0
        case .string(let s): return s.unicodeScalars.count
        case .list(let l), .tuple(let l): return l.count
        case .dict(let d): return d.count
        case .namespace(let id): return namespaces[id].count
        default: throw fail("object of type '\(value.typeName)' has no len()")
        }
    }

    func escapeHTML(_ s: String) -> String {
        var out = ""
        for c in s.unicodeScalars {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&#34;"
            case "'": out += "&#39;"
            default: out.unicodeScalars.append(c)
            }
        }
        return out
    }

    /// `environment.getitem` along a dotted attribute path (`"a.b"`, integer parts as indexes).
    func itemAttribute(_ item: JinjaRuntimeValue, _ attribute: JinjaRuntimeValue) throws -> JinjaRuntimeValue {
        guard case .string(let path) = attribute else { return try getitem(item, attribute) }
        var v = item
        for part in path.split(separator: ".", omittingEmptySubsequences: false) {
            if let i = Int(part) { v = try getitem(v, .int(i)) } else { v = try getitem(v, .string(String(part))) }
        }
        return v
    }

    func sortKey(_ v: JinjaRuntimeValue, caseSensitive: Bool) throws -> JinjaRuntimeValue {
        if !caseSensitive, case .string(let s) = v { return .string(PyText.lower(s)) }
        return v
    }

    func stableSort<T>(_ items: inout [T], reverse: Bool, key: (T) throws -> JinjaRuntimeValue) throws {
        let keyed = try items.enumerated().map { (offset: $0.offset, key: try key($0.element), item: $0.element) }
        var firstError: Error?
        let sorted = keyed.sorted { x, y in
            if firstError != nil { return false }
            do {
                let c = try order(x.key, y.key, "<")
                if c != 0 { return reverse ? c > 0 : c < 0 }
            } catch {
                firstError = error
            }
            return x.offset < y.offset
        }
        if let firstError { throw firstError }
        items = sorted.map(\.item)
    }

    /// The test name and its arguments of select/reject style filters.
    func testArgs(_ args: JinjaCallArgs, skip: Int) throws -> (String?, JinjaCallArgs) {
        guard args.positional.count > skip else {
            if !args.keywords.isEmpty { throw fail("unexpected keyword arguments for this filter") }
            return (nil, JinjaCallArgs())
        }
        guard case .string(let t) = args.positional[skip] else { throw fail("the test name must be a string") }
        guard JinjaTests.supported.contains(t) else { throw fail("No test named '\(t)'.") }
        return (t, JinjaCallArgs(positional: Array(args.positional.dropFirst(skip + 1)), keywords: args.keywords))
    }

    func mapFilter(_ value: JinjaRuntimeValue, _ args: JinjaCallArgs) throws -> [JinjaRuntimeValue] {
        let items = try iterate(value)
        if args.positional.isEmpty {
            let a = try bind("map", ["attribute", "default"], JinjaCallArgs(positional: [], keywords: args.keywords))
            guard let attribute = a[0] else { return items }
            return try items.map { item in
                let v = try itemAttribute(item, attribute)
                if v.isUndefined, let d = a[1] { return d }
                return v
            }
        }
        guard case .string(let filter) = args.positional[0] else { throw fail("map filter name must be a string") }
        guard JinjaFilters.supported.contains(filter), filter != "map" else {
            throw fail("map with filter \"\(filter)\" is not supported", kind: .unsupported)
        }
        let rest = JinjaCallArgs(positional: Array(args.positional.dropFirst()), keywords: args.keywords)
        return try items.map { try applyFilter(filter, $0, rest) }
    }

    func toFloat(_ value: JinjaRuntimeValue) throws -> JinjaRuntimeValue? {
        switch value {
        case .int(let i): return .double(Double(i))
        case .bool(let b): return .double(b ? 1 : 0)
        case .double: return value
        case .string(let s):
            let t = PyText.strip(s, nil, leading: true, trailing: true).replacingOccurrences(of: "_", with: "").lowercased()
            switch t {
            case "inf", "+inf", "infinity", "+infinity": return .double(.infinity)
            case "-inf", "-infinity": return .double(-.infinity)
            case "nan", "+nan", "-nan": return .double(.nan)
            default: break
            }
            guard !t.isEmpty, t.allSatisfy({ "0123456789+-.e".contains($0) }), let d = Double(t) else { return nil }
            return .double(d)
        default:
            return nil
        }
    }

    func toInt(_ value: JinjaRuntimeValue, base: Int) throws -> JinjaRuntimeValue? {
        switch value {
        case .int: return value
        case .bool(let b): return .int(b ? 1 : 0)
        case .double(let d):
            guard d.isFinite, let i = Int(exactly: d.rounded(.towardZero)) else { return nil }
            return .int(i)
        case .string(let s):
            var t = PyText.strip(s, nil, leading: true, trailing: true).replacingOccurrences(of: "_", with: "")
            var negative = false
            if t.hasPrefix("-") || t.hasPrefix("+") { negative = t.hasPrefix("-"); t.removeFirst() }
            var b = base
            let lower = t.lowercased()
            for (prefix, radix) in [("0x", 16), ("0o", 8), ("0b", 2)] where lower.hasPrefix(prefix) && (base == radix || base == 0) {
                t = String(t.dropFirst(2))
                b = radix
            }
            if b == 0 { b = 10 }
            if b >= 2, b <= 36, !t.isEmpty, let i = Int(t, radix: b) { return .int(negative ? -i : i) }
            if let f = try toFloat(value), case .double(let d) = f { return try toInt(.double(d), base: 10) }
            return nil
        default:
            return nil
        }
    }

    func indent(_ text: String, _ indention: String, first: Bool, blank: Bool) throws -> String {
        let s = text + "\n"
        var lines = PyText.splitlines(s)
        var rv: String
        if blank {
            rv = lines.joined(separator: "\n" + indention)
        } else {
            rv = lines.isEmpty ? "" : lines.removeFirst()
            if !lines.isEmpty {
                rv += "\n" + lines.map { $0.isEmpty ? $0 : indention + $0 }.joined(separator: "\n")
            }
        }
        if first { rv = indention + rv }
        try checkSize(rv.utf8.count)
        return rv
    }
}
