// transformers' `tojson` filter: `json.dumps(x, ensure_ascii=False, indent=None, separators=None,
// sort_keys=False)` with Python's exact spacing, escaping and float formatting.

extension JinjaInterpreter {
    func toJSON(_ value: JinjaRuntimeValue, ensureASCII: Bool, indent: JinjaRuntimeValue?, separators: JinjaRuntimeValue?, sortKeys: Bool) throws -> String {
        var indentUnit: String?
        switch indent {
        case nil, .none?: indentUnit = nil
        case .string(let s)?: indentUnit = s
        case let v?:
            guard let n = intIndex(v) else { throw fail("tojson indent must be an integer or a string") }
            try checkSize(n)
            indentUnit = String(repeating: " ", count: max(n, 0))
        }
        var itemSep = indentUnit == nil ? ", " : ","
        var keySep = ": "
        switch separators {
        case nil, .none?: break
        case .list(let p)?, .tuple(let p)?:
            guard p.count == 2, case .string(let a) = p[0], case .string(let b) = p[1] else {
                throw fail("tojson separators must be a pair of strings")
            }
            itemSep = a
            keySep = b
        default:
            throw fail("tojson separators must be a pair of strings")
        }
        var out = ""
        try encodeJSON(value, into: &out, level: 0, indentUnit: indentUnit, itemSep: itemSep, keySep: keySep,
                       ensureASCII: ensureASCII, sortKeys: sortKeys)
        return out
    }

    private func encodeJSON(_ value: JinjaRuntimeValue, into out: inout String, level: Int, indentUnit: String?, itemSep: String,
                            keySep: String, ensureASCII: Bool, sortKeys: Bool) throws {
        if level > 64 { throw fail("tojson: value nested too deeply (circular reference?)", kind: .limit) }
        if out.utf8.count > limits.maxOutputBytes { try checkSize(out.utf8.count) }
        func newline(_ lvl: Int) -> String {
            guard let unit = indentUnit else { return "" }
            return "\n" + String(repeating: unit, count: lvl)
        }
        switch value {
        case .none: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .int(let i): out += String(i)
        case .double(let d): out += jsonFloat(d)
        case .string(let s): out += jsonString(s, ensureASCII: ensureASCII)
        case .list(let items), .tuple(let items):
            if items.isEmpty { out += "[]"; return }
            out += "[" + newline(level + 1)
            for (i, item) in items.enumerated() {
                if i > 0 { out += itemSep + newline(level + 1) }
                try encodeJSON(item, into: &out, level: level + 1, indentUnit: indentUnit, itemSep: itemSep, keySep: keySep,
                               ensureASCII: ensureASCII, sortKeys: sortKeys)
            }
            out += newline(level) + "]"
        case .dict(let d):
            if d.count == 0 { out += "{}"; return }
            var pairs: [(String, JinjaRuntimeValue)] = []
            for (k, v) in zip(d.keys, d.values) {
                let key: String
                switch k {
                case .string(let s): key = s
                case .int(let i): key = String(i)
                case .double(let f): key = jsonFloat(f)
                case .bool(let b): key = b ? "true" : "false"
                case .none: key = "null"
                default: throw fail("keys must be str, int, float, bool or None, not \(k.typeName)")
                }
                pairs.append((key, v))
            }
            if sortKeys {
                pairs = pairs.enumerated().sorted {
                    let c = JinjaInterpreter.compareScalars($0.element.0, $1.element.0)
                    return c != 0 ? c < 0 : $0.offset < $1.offset
                }.map(\.element)
            }
            out += "{" + newline(level + 1)
            for (i, (k, v)) in pairs.enumerated() {
                if i > 0 { out += itemSep + newline(level + 1) }
                out += jsonString(k, ensureASCII: ensureASCII) + keySep
                try encodeJSON(v, into: &out, level: level + 1, indentUnit: indentUnit, itemSep: itemSep, keySep: keySep,
                               ensureASCII: ensureASCII, sortKeys: sortKeys)
            }
            out += newline(level) + "}"
        case .undefined:
            throw fail("Object of type Undefined is not JSON serializable")
        default:
            throw fail("Object of type \(value.typeName) is not JSON serializable")
        }
    }

    func jsonFloat(_ d: Double) -> String {
        if d.isNaN { return "NaN" }
        if d.isInfinite { return d < 0 ? "-Infinity" : "Infinity" }
        return PyText.floatRepr(d)
    }

    func jsonString(_ s: String, ensureASCII: Bool) -> String {
        var out = "\""
        for c in s.unicodeScalars {
            switch c {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\u{08}": out += "\\b"
            case "\u{0C}": out += "\\f"
            default:
                if c.value < 0x20 || (ensureASCII && c.value > 0x7E) {
                    if c.value > 0xFFFF {
                        let v = c.value - 0x10000
                        out += "\\u" + PyText.hex(0xD800 + (v >> 10), width: 4) + "\\u" + PyText.hex(0xDC00 + (v & 0x3FF), width: 4)
                    } else {
                        out += "\\u" + PyText.hex(c.value, width: 4)
                    }
                } else {
                    out.unicodeScalars.append(c)
                }
            }
        }
        return out + "\""
    }
}
