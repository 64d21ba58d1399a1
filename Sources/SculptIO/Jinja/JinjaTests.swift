// jinja2's built-in tests (`x is defined`, `x is string`, `n is divisibleby 3`, ...).

enum JinjaTests {
    static let supported: Set<String> = ["boolean", "callable", "defined", "divisibleby", "eq", "equalto", "escaped",
        "even", "false", "filter", "float", "ge", "greaterthan", "gt", "in", "integer", "iterable", "le", "lessthan", "lower",
        "lt", "mapping", "ne", "none", "number", "odd", "sameas", "sequence", "string", "test", "true", "undefined", "upper",
        "==", "!=", "<", "<=", ">", ">="]
    static let knownUnsupported: Set<String> = []
}

extension JinjaInterpreter {
    static let unaryTests: Set<String> = ["defined", "undefined", "none", "boolean", "true", "false", "integer", "float",
        "number", "string", "mapping", "iterable", "sequence", "callable", "escaped", "lower", "upper", "even", "odd",
        "filter", "test"]

    func applyTest(_ name: String, _ v: JinjaRuntimeValue, _ args: JinjaCallArgs) throws -> Bool {
        if JinjaInterpreter.unaryTests.contains(name), !args.positional.isEmpty || !args.keywords.isEmpty {
            throw fail("test_\(name)() takes 1 positional argument but \(args.positional.count + args.keywords.count + 1) were given")
        }
        func arg() throws -> JinjaRuntimeValue {
            let a = try bind(name, ["other"], args)
            guard let o = a[0] else { throw fail("test \"\(name)\" needs an argument") }
            return o
        }
        switch name {
        case "defined": return !v.isUndefined
        case "undefined": return v.isUndefined
        case "none": return v.isNone
        case "boolean": if case .bool = v { return true }; return false
        case "true": if case .bool(true) = v { return true }; return false
        case "false": if case .bool(false) = v { return true }; return false
        case "integer": if case .int = v { return true }; return false
        case "float": if case .double = v { return true }; return false
        case "number": return v.number != nil
        case "string": return v.isString
        case "mapping": if case .dict = v { return true }; return false
        case "iterable", "sequence":
            switch v {
            case .undefined, .string, .list, .tuple, .dict: return true
            case .iterator: return name == "iterable"
            default: return false
            }
        case "callable":
            switch v {
            case .function: return true
            default: return false
            }
        case "escaped": return false
        case "lower": return PyText.hasCase(try str(v), upper: false)
        case "upper": return PyText.hasCase(try str(v), upper: true)
        case "even", "odd", "divisibleby":
            let divisor: JinjaRuntimeValue = name == "divisibleby" ? try arg() : .int(2)
            let r = try binary(.mod, v, divisor)
            let zero = JinjaRuntimeValue.pyEquals(r, .int(0))
            return name == "odd" ? !zero && JinjaRuntimeValue.pyEquals(r, .int(1)) : zero
        case "eq", "equalto", "==": return JinjaRuntimeValue.pyEquals(v, try arg())
        case "ne", "!=": return !JinjaRuntimeValue.pyEquals(v, try arg())
        case "lt", "lessthan", "<": return try compare("<", v, try arg())
        case "le", "<=": return try compare("<=", v, try arg())
        case "gt", "greaterthan", ">": return try compare(">", v, try arg())
        case "ge", ">=": return try compare(">=", v, try arg())
        case "in": return try contains(try arg(), v)
        case "sameas":
            let o = try arg()
            switch (v, o) {
            case (.none, .none): return true
            case (.bool(let a), .bool(let b)): return a == b
            case (.namespace(let a), .namespace(let b)): return a == b
            case (.int(let a), .int(let b)): return a == b && a >= -5 && a <= 256
            default: return false
            }
        case "filter":
            guard case .string(let n) = v else { return false }
            return JinjaFilters.supported.contains(n)
        case "test":
            guard case .string(let n) = v else { return false }
            return JinjaTests.supported.contains(n)
        default:
            throw fail("No test named '\(name)' found.")
        }
    }
}
