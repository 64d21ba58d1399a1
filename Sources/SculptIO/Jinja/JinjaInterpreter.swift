// Runs a parsed template: statements, scoping (a for-loop body is a fresh scope each
// iteration, `set` inside it does not leak; `if` opens no scope), macros, call blocks and the
// resource limits that keep any template from running away.

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Variables of one scope; lookups walk to the parent.
final class JinjaScope {
    var vars: [String: JinjaRuntimeValue] = [:]
    let parent: JinjaScope?
    init(parent: JinjaScope?) { self.parent = parent }

    func lookup(_ name: String) -> JinjaRuntimeValue? {
        var s: JinjaScope? = self
        while let cur = s {
            if let v = cur.vars[name] { return v }
            s = cur.parent
        }
        return nil
    }
}

/// Resource limits for one render.
struct JinjaLimits {
    var maxOutputBytes = 16 << 20
    var maxDepth = 160
    var maxLoopIterations = 2_000_000
    var maxRange = 100_000
}

enum JinjaFlow {
    case normal
    case breakLoop
    case continueLoop
}

struct JinjaCallArgs {
    var positional: [JinjaRuntimeValue] = []
    var keywords: [(String, JinjaRuntimeValue)] = []
}

final class JinjaInterpreter {
    var namespaces: [PyDict] = []
    var iterators: [(items: [JinjaRuntimeValue], position: Int)] = []
    var buffers: [String] = [""]
    var emitted = 0
    var depth = 0
    var iterations = 0
    var line = 0
    var captured: [JinjaRuntimeValue] = []
    let limits: JinjaLimits
    let now: Double

    static let globalNames: Set<String> = ["range", "dict", "namespace", "raise_exception", "strftime_now",
                                           "cycler", "joiner", "lipsum"]

    init(limits: JinjaLimits, now: Double) {
        self.limits = limits
        self.now = now
    }

    func fail(_ message: String, kind: ChatTemplateError.Kind = .runtime) -> JinjaError {
        JinjaError(kind: kind, line: line > 0 ? line : nil, message: message)
    }

    func undefinedError(_ info: JinjaUndefinedInfo) -> JinjaError { fail(info.message) }

    func enter() throws {
        depth += 1
        if depth > limits.maxDepth {
            throw fail("template recursion or nesting too deep (limit \(limits.maxDepth))", kind: .limit)
        }
    }

    func write(_ s: String) throws {
        emitted += s.utf8.count
        if emitted > limits.maxOutputBytes {
            throw fail("output exceeds \(limits.maxOutputBytes) bytes", kind: .limit)
        }
        buffers[buffers.count - 1] += s
    }

    func checkSize(_ count: Int) throws {
        if count > limits.maxOutputBytes {
            throw fail("value of \(count) elements exceeds the \(limits.maxOutputBytes) limit", kind: .limit)
        }
    }

    func capture(_ body: () throws -> Void) throws -> String {
        buffers.append("")
        do {
            try body()
        } catch {
            buffers.removeLast()
            throw error
        }
        return buffers.removeLast()
    }

    func render(_ nodes: [JinjaNode], context: [String: JinjaRuntimeValue]) throws -> String {
        let root = JinjaScope(parent: nil)
        root.vars = context
        _ = try exec(nodes, root)
        return buffers[0]
    }

    // MARK: statements

    func exec(_ nodes: [JinjaNode], _ scope: JinjaScope) throws -> JinjaFlow {
        try enter()
        defer { depth -= 1 }
        for node in nodes {
            let flow = try exec(node, scope)
            if case .normal = flow { continue }
            return flow
        }
        return .normal
    }

    func exec(_ node: JinjaNode, _ scope: JinjaScope) throws -> JinjaFlow {
        switch node {
        case .text(let t):
            try write(t)
        case .output(let expr, let l):
            line = l
            try write(try str(try eval(expr, scope)))
        case .ifChain(let branches, let elseBody):
            for b in branches where try eval(b.test, scope).truthy {
                return try exec(b.body, scope)
            }
            return try exec(elseBody, scope)
        case .forLoop(let loop):
            return try execFor(loop, scope)
        case .set(let target, let expr, let l):
            line = l
            try assign(target, try eval(expr, scope), scope)
        case .setBlock(let target, let filter, let body, let l):
            let text = try capture { _ = try exec(body, scope) }
            line = l
            var value = JinjaRuntimeValue.string(text)
            if let filter { value = try withCaptured(value) { try eval(filter, scope) } }
            try assign(target, value, scope)
        case .breakLoop:
            return .breakLoop
        case .continueLoop:
            return .continueLoop
        case .macro(let def):
            scope.vars[def.name] = .function(.macro(JinjaMacroClosure(macro: def, scope: scope)))
        case .callBlock(let block):
            line = block.line
            guard case .call(let calleeExpr, let args, _) = block.call else { return .normal }
            let callee = try eval(calleeExpr, scope)
            let callArgs = try evalArgs(args, scope)
            let caller = JinjaMacroClosure(macro: block.caller, scope: scope)
            guard case .function(.macro(let m)) = callee else {
                throw fail("the call block needs a macro, not \(callee.typeName)")
            }
            try write(try str(try callMacro(m, callArgs, caller: caller)))
        case .filterBlock(let filter, let body, let l):
            let text = try capture { _ = try exec(body, scope) }
            line = l
            let value = try withCaptured(.string(text)) { try eval(filter, scope) }
            try write(try str(value))
        case .with(let assignments, let body, let l):
            line = l
            let inner = JinjaScope(parent: scope)
            var values: [(JinjaTarget, JinjaRuntimeValue)] = []
            for a in assignments { values.append((a.target, try eval(a.value, scope))) }
            for (t, v) in values { try assign(t, v, inner) }
            return try exec(body, inner)
        case .generation(let body):
            return try exec(body, scope)
        }
        return .normal
    }

    func withCaptured(_ value: JinjaRuntimeValue, _ body: () throws -> JinjaRuntimeValue) throws -> JinjaRuntimeValue {
        captured.append(value)
        defer { captured.removeLast() }
        return try body()
    }

    func execFor(_ loop: JinjaForLoop, _ scope: JinjaScope) throws -> JinjaFlow {
        line = loop.line
        let iterable = try eval(loop.iter, scope)
        var items = try iterate(iterable)
        if let filter = loop.filter {
            var kept: [JinjaRuntimeValue] = []
            for item in items {
                let s = JinjaScope(parent: scope)
                try assign(loop.target, item, s)
                if try eval(filter, s).truthy { kept.append(item) }
            }
            items = kept
        }
        if items.isEmpty { return try exec(loop.elseBody, scope) }
        let depth0 = 0  // loop.depth only grows in recursive loops, which are not supported
        for (i, item) in items.enumerated() {
            iterations += 1
            if iterations > limits.maxLoopIterations {
                throw fail("more than \(limits.maxLoopIterations) loop iterations", kind: .limit)
            }
            let s = JinjaScope(parent: scope)
            s.vars["loop"] = .loop(JinjaLoopState(index0: i, length: items.count,
                                             previtem: i > 0 ? items[i - 1] : nil,
                                             nextitem: i + 1 < items.count ? items[i + 1] : nil,
                                             depth0: depth0))
            line = loop.line
            try assign(loop.target, item, s)
            let flow = try exec(loop.body, s)
            if case .breakLoop = flow { break }
        }
        return .normal
    }

    /// The elements `for x in value` visits.
    func iterate(_ value: JinjaRuntimeValue) throws -> [JinjaRuntimeValue] {
        switch value {
        case .undefined: return []
        case .list(let l), .tuple(let l): return l
        case .string(let s): return s.unicodeScalars.map { .string(String($0)) }
        case .dict(let d): return d.keys
        case .iterator(let id, _):
            let rest = Array(iterators[id].items[iterators[id].position...])
            iterators[id].position = iterators[id].items.count
            return rest
        default: throw fail("'\(value.typeName)' object is not iterable")
        }
    }

    func makeIterator(_ items: [JinjaRuntimeValue], kind: String = "generator") -> JinjaRuntimeValue {
        iterators.append((items, 0))
        return .iterator(iterators.count - 1, kind: kind)
    }

    /// `next(it)` on an iterator value, consuming one item.
    func nextItem(_ id: Int) -> JinjaRuntimeValue? {
        guard iterators[id].position < iterators[id].items.count else { return nil }
        defer { iterators[id].position += 1 }
        return iterators[id].items[iterators[id].position]
    }

    func assign(_ target: JinjaTarget, _ value: JinjaRuntimeValue, _ scope: JinjaScope) throws {
        switch target {
        case .name(let n):
            scope.vars[n] = value
        case .namespaceAttr(let n, let attr):
            guard case .namespace(let id)? = scope.lookup(n) else {
                throw fail("cannot assign attribute on non-namespace object")
            }
            namespaces[id].set(.string(attr), value)
        case .tuple(let targets):
            let items: [JinjaRuntimeValue]
            switch value {
            case .list, .tuple, .string, .dict, .iterator: items = try iterate(value)
            case .undefined(let info): throw undefinedError(info)
            default: throw fail("cannot unpack non-iterable \(value.typeName) object")
            }
            if items.count > targets.count { throw fail("too many values to unpack (expected \(targets.count))") }
            if items.count < targets.count {
                throw fail("not enough values to unpack (expected \(targets.count), got \(items.count))")
            }
            for (t, v) in zip(targets, items) { try assign(t, v, scope) }
        }
    }

    // MARK: expressions

    func eval(_ expr: JinjaExpr, _ scope: JinjaScope) throws -> JinjaRuntimeValue {
        try enter()
        defer { depth -= 1 }
        switch expr {
        case .const(let c):
            return JinjaRuntimeValue(c)
        case .name(let n, _):
            if let v = scope.lookup(n) { return v }
            if JinjaInterpreter.globalNames.contains(n) { return .function(.builtin(n)) }
            return .undefined(.name(n))
        case .list(let items):
            return .list(try items.map { try eval($0, scope) })
        case .tuple(let items):
            return .tuple(try items.map { try eval($0, scope) })
        case .dict(let pairs):
            var d = PyDict()
            for p in pairs {
                let k = try eval(p.key, scope)
                try checkHashable(k)
                d.set(k, try eval(p.value, scope))
            }
            return .dict(d)
        case .getattr(let obj, let name, let l):
            let o = try eval(obj, scope)
            line = l
            return try getattr(o, name)
        case .getitem(let obj, let key, let l):
            let o = try eval(obj, scope)
            if case .slice(let a, let b, let c) = key {
                let start = try a.map { try eval($0, scope) }
                let stop = try b.map { try eval($0, scope) }
                let step = try c.map { try eval($0, scope) }
                line = l
                return try slice(o, start, stop, step)
            }
            let k = try eval(key, scope)
            line = l
            return try getitem(o, k)
        case .slice:
            throw fail("a slice is only valid inside []")
        case .call(let calleeExpr, let args, let l):
            let callee = try eval(calleeExpr, scope)
            let a = try evalArgs(args, scope)
            line = l
            return try call(callee, a)
        case .filter(let base, let name, let args, let l):
            let v = try eval(base, scope)
            let a = try evalArgs(args, scope)
            line = l
            return try applyFilter(name, v, a)
        case .test(let base, let name, let args, let l):
            let v = try eval(base, scope)
            let a = try evalArgs(args, scope)
            line = l
            return .bool(try applyTest(name, v, a))
        case .neg(let e, let l):
            let v = try eval(e, scope)
            line = l
            return try negate(v)
        case .pos(let e, let l):
            let v = try eval(e, scope)
            line = l
            if case .undefined(let info) = v { throw undefinedError(info) }
            guard v.number != nil else { throw fail("bad operand type for unary +: '\(v.typeName)'") }
            if case .bool(let b) = v { return .int(b ? 1 : 0) }
            return v
        case .not(let e):
            return .bool(!(try eval(e, scope).truthy))
        case .binary(let op, let a, let b, let l):
            let x = try eval(a, scope)
            let y = try eval(b, scope)
            line = l
            return try binary(op, x, y)
        case .concat(let parts, _):
            var s = ""
            for p in parts { s += try str(try eval(p, scope)) }
            try checkSize(s.utf8.count)
            return .string(s)
        case .and(let a, let b):
            let x = try eval(a, scope)
            return x.truthy ? try eval(b, scope) : x
        case .or(let a, let b):
            let x = try eval(a, scope)
            return x.truthy ? x : try eval(b, scope)
        case .compare(let first, let ops, let l):
            var left = try eval(first, scope)
            for op in ops {
                let right = try eval(op.rhs, scope)
                line = l
                if !(try compare(op.op, left, right)) { return .bool(false) }
                left = right
            }
            return .bool(true)
        case .cond(let test, let then, let otherwise):
            if try eval(test, scope).truthy { return try eval(then, scope) }
            if let otherwise { return try eval(otherwise, scope) }
            return .undefined(JinjaUndefinedInfo(message: "the inline if-expression on line \(line) evaluated to false and no else section was defined."))
        case .captured:
            return captured.last ?? .undefined(JinjaUndefinedInfo(message: "no captured block"))
        }
    }

    func evalArgs(_ args: JinjaArgs, _ scope: JinjaScope) throws -> JinjaCallArgs {
        var out = JinjaCallArgs()
        for e in args.positional { out.positional.append(try eval(e, scope)) }
        for k in args.keywords { out.keywords.append((k.name, try eval(k.value, scope))) }
        return out
    }

    func checkHashable(_ v: JinjaRuntimeValue) throws {
        switch v {
        case .list, .dict, .namespace:
            throw fail("unhashable type: '\(v.typeName)'")
        case .tuple(let items):
            for i in items { try checkHashable(i) }
        default:
            break
        }
    }

    // MARK: calls

    func call(_ callee: JinjaRuntimeValue, _ args: JinjaCallArgs) throws -> JinjaRuntimeValue {
        switch callee {
        case .undefined(let info):
            throw undefinedError(info)
        case .function(.builtin(let name)):
            return try callGlobal(name, args)
        case .function(.macro(let m)):
            return try callMacro(m, args, caller: nil)
        case .function(.method(let obj, let name)):
            return try callMethod(obj, name, args)
        case .loop:
            throw fail("recursive loop calls are not supported", kind: .unsupported)
        default:
            throw fail("'\(callee.typeName)' object is not callable")
        }
    }

    func callMacro(_ m: JinjaMacroClosure, _ args: JinjaCallArgs, caller: JinjaMacroClosure?) throws -> JinjaRuntimeValue {
        try enter()
        defer { depth -= 1 }
        let def = m.macro
        let scope = JinjaScope(parent: m.scope)
        var extra: [JinjaRuntimeValue] = []
        for (i, v) in args.positional.enumerated() {
            if i < def.params.count { scope.vars[def.params[i]] = v } else { extra.append(v) }
        }
        var kwargs = PyDict()
        for (k, v) in args.keywords {
            if let i = def.params.firstIndex(of: k) {
                if i < args.positional.count {
                    throw fail("macro '\(def.name)' got multiple values for argument '\(k)'")
                }
                scope.vars[k] = v
            } else if k == "caller", caller == nil, case .function(.macro(let c)) = v {
                scope.vars["caller"] = .function(.macro(c))
            } else {
                kwargs.set(.string(k), v)
            }
        }
        for (i, p) in def.params.enumerated() where scope.vars[p] == nil {
            if let d = def.defaults[i] {
                scope.vars[p] = try eval(d, scope)
            } else {
                scope.vars[p] = .undefined(JinjaUndefinedInfo(message: "parameter '\(p)' was not provided"))
            }
        }
        scope.vars["varargs"] = .tuple(extra)
        scope.vars["kwargs"] = .dict(kwargs)
        if let caller { scope.vars["caller"] = .function(.macro(caller)) }
        let savedLine = line
        let text = try capture { _ = try exec(def.body, scope) }
        line = savedLine
        return .string(text)
    }

    // MARK: output

    /// Python `str(value)` as Jinja prints it (undefined prints as nothing).
    func str(_ v: JinjaRuntimeValue) throws -> String {
        switch v {
        case .undefined: return ""
        case .none: return "None"
        case .bool(let b): return b ? "True" : "False"
        case .int(let i): return String(i)
        case .double(let d): return PyText.floatRepr(d)
        case .string(let s): return s
        case .loop(let l): return "<LoopContext \(l.index0 + 1)/\(l.length)>"
        case .function(.macro(let m)): return "<Macro '\(m.macro.name)'>"
        case .function(.builtin(let n)): return "<built-in function \(n)>"
        case .function(.method(let o, let n)): return "<built-in method \(n) of \(o.typeName) object>"
        case .iterator(_, let kind): return "<\(kind) object>"
        default: return try repr(v, 0)
        }
    }

    /// Python `repr(value)`.
    func repr(_ v: JinjaRuntimeValue, _ level: Int) throws -> String {
        if level > 48 { throw fail("value nested too deeply to print", kind: .limit) }
        switch v {
        case .undefined: return "Undefined"
        case .string(let s): return PyText.repr(s)
        case .list(let items):
            return "[" + (try items.map { try repr($0, level + 1) }).joined(separator: ", ") + "]"
        case .tuple(let items):
            let inner = (try items.map { try repr($0, level + 1) }).joined(separator: ", ")
            return "(" + inner + (items.count == 1 ? "," : "") + ")"
        case .dict(let d):
            return try dictRepr(d, level)
        case .namespace(let id):
            return "<Namespace " + (try dictRepr(namespaces[id], level)) + ">"
        default:
            return try str(v)
        }
    }

    func dictRepr(_ d: PyDict, _ level: Int) throws -> String {
        var parts: [String] = []
        for (k, v) in zip(d.keys, d.values) {
            parts.append(try repr(k, level + 1) + ": " + (try repr(v, level + 1)))
        }
        return "{" + parts.joined(separator: ", ") + "}"
    }

    /// `strftime_now(format)`: the render's clock in local time, through the C library's strftime
    /// (as Python's `datetime.now().strftime` does on this platform).
    func strftimeNow(_ format: String) throws -> String {
        var t = time_t(now.rounded(.down))
        var parts = tm()
        guard localtime_r(&t, &parts) != nil else { throw fail("strftime_now: cannot convert the time") }
        var buffer = [CChar](repeating: 0, count: 512)
        let n = strftime(&buffer, buffer.count, format, &parts)
        if n == 0, !format.isEmpty { return "" }
        return String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
