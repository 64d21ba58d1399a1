// Recursive-descent parser from lexer segments to `JinjaNode`s, following jinja2's parser
// (operator precedence, tuples, filters/tests, statement tags). Anything outside the supported
// subset is rejected here with the tag or construct named, never approximated.

struct JinjaTokenStream {
    var tokens: [JinjaToken]
    var i = 0
    var line: Int

    var current: JinjaTok? { i < tokens.count ? tokens[i].tok : nil }
    var currentLine: Int { i < tokens.count ? tokens[i].line : line }
    func look(_ k: Int = 1) -> JinjaTok? { i + k < tokens.count ? tokens[i + k].tok : nil }
    var atEnd: Bool { i >= tokens.count }

    mutating func next() -> JinjaTok? {
        defer { i += 1 }
        return current
    }
    func isOp(_ o: String) -> Bool { current == .op(o) }
    func isName(_ n: String) -> Bool { current == .name(n) }
    mutating func skipOp(_ o: String) -> Bool {
        if isOp(o) { i += 1; return true }
        return false
    }
    mutating func skipName(_ n: String) -> Bool {
        if isName(n) { i += 1; return true }
        return false
    }
    func fail(_ message: String) -> JinjaError {
        JinjaError(kind: .syntax, line: currentLine, message: message)
    }
    var describeCurrent: String {
        guard let c = current else { return "end of tag" }
        return "'\(c.display)'"
    }
    mutating func expectOp(_ o: String) throws {
        guard skipOp(o) else { throw fail("expected '\(o)', got \(describeCurrent)") }
    }
    mutating func expectName() throws -> String {
        guard case .name(let n)? = current else { throw fail("expected a name, got \(describeCurrent)") }
        i += 1
        return n
    }
    func expectEnd(_ what: String) throws {
        if !atEnd { throw fail("expected end of \(what), got \(describeCurrent)") }
    }
}

/// Expression parsing over one tag's tokens.
struct JinjaExprParser {
    var ts: JinjaTokenStream
    var depth = 0
    static let maxDepth = 96
    /// Inside an `if` (test or body): jinja2 defers "no filter/test named" errors to run time there.
    var inConditional = false
    /// Unknown filter/test names seen outside any conditional (a parse error once the tag is read).
    var unknownNames: [JinjaError] = []

    init(_ ts: JinjaTokenStream, inConditional: Bool = false) {
        self.ts = ts
        self.inConditional = inConditional
    }

    /// Throws the first unknown filter or test used outside a conditional.
    func checkUnknown() throws {
        if let first = unknownNames.first { throw first }
    }

    private mutating func enter() throws {
        depth += 1
        if depth > JinjaExprParser.maxDepth { throw ts.fail("expression nested too deeply (limit \(JinjaExprParser.maxDepth))") }
    }

    mutating func parseExpression(withCondExpr: Bool = true) throws -> JinjaExpr {
        withCondExpr ? try parseCondExpr() : try parseOr()
    }

    mutating func parseCondExpr() throws -> JinjaExpr {
        try enter(); defer { depth -= 1 }
        let unknownBefore = unknownNames.count
        var expr1 = try parseOr()
        if ts.isName("if") { unknownNames.removeSubrange(unknownBefore...) }
        while ts.skipName("if") {
            let expr2 = try parseOr()
            var expr3: JinjaExpr?
            if ts.skipName("else") { expr3 = try parseCondExpr() }
            expr1 = .cond(test: expr2, then: expr1, otherwise: expr3)
        }
        return expr1
    }

    mutating func parseOr() throws -> JinjaExpr {
        var left = try parseAnd()
        while ts.skipName("or") { left = .or(left, try parseAnd()) }
        return left
    }

    mutating func parseAnd() throws -> JinjaExpr {
        var left = try parseNot()
        while ts.skipName("and") { left = .and(left, try parseNot()) }
        return left
    }

    mutating func parseNot() throws -> JinjaExpr {
        if ts.isName("not") {
            _ = ts.next()
            try enter(); defer { depth -= 1 }
            return .not(try parseNot())
        }
        return try parseCompare()
    }

    mutating func parseCompare() throws -> JinjaExpr {
        let line = ts.currentLine
        let expr = try parseMath1()
        var ops: [JinjaCompareOp] = []
        while true {
            if case .op(let o)? = ts.current, ["==", "!=", "<", "<=", ">", ">="].contains(o) {
                _ = ts.next()
                ops.append(JinjaCompareOp(op: o, rhs: try parseMath1()))
            } else if ts.skipName("in") {
                ops.append(JinjaCompareOp(op: "in", rhs: try parseMath1()))
            } else if ts.isName("not"), ts.look() == .name("in") {
                ts.i += 2
                ops.append(JinjaCompareOp(op: "notin", rhs: try parseMath1()))
            } else {
                break
            }
        }
        return ops.isEmpty ? expr : .compare(expr, ops, line: line)
    }

    mutating func parseMath1() throws -> JinjaExpr {
        var left = try parseConcat()
        while case .op(let o)? = ts.current, o == "+" || o == "-" {
            let line = ts.currentLine
            _ = ts.next()
            left = .binary(o == "+" ? .add : .sub, left, try parseConcat(), line: line)
        }
        return left
    }

    mutating func parseConcat() throws -> JinjaExpr {
        let line = ts.currentLine
        var args = [try parseMath2()]
        while ts.skipOp("~") { args.append(try parseMath2()) }
        return args.count == 1 ? args[0] : .concat(args, line: line)
    }

    mutating func parseMath2() throws -> JinjaExpr {
        var left = try parsePow()
        while case .op(let o)? = ts.current, ["*", "/", "//", "%"].contains(o) {
            let line = ts.currentLine
            _ = ts.next()
            left = .binary(JinjaBinOp(rawValue: o)!, left, try parsePow(), line: line)
        }
        return left
    }

    mutating func parsePow() throws -> JinjaExpr {
        var left = try parseUnary()
        while ts.isOp("**") {
            let line = ts.currentLine
            _ = ts.next()
            left = .binary(.pow, left, try parseUnary(), line: line)
        }
        return left
    }

    mutating func parseUnary(withFilter: Bool = true) throws -> JinjaExpr {
        try enter(); defer { depth -= 1 }
        let line = ts.currentLine
        var node: JinjaExpr
        if ts.skipOp("-") {
            node = .neg(try parseUnary(withFilter: false), line: line)
        } else if ts.skipOp("+") {
            node = .pos(try parseUnary(withFilter: false), line: line)
        } else {
            node = try parsePrimary()
        }
        node = try parsePostfix(node)
        if withFilter { node = try parseFilterExpr(node) }
        return node
    }

    mutating func parsePrimary() throws -> JinjaExpr {
        let line = ts.currentLine
        guard let tok = ts.current else { throw ts.fail("expected an expression, got end of tag") }
        switch tok {
        case .name(let n):
            _ = ts.next()
            switch n {
            case "true", "True": return .const(.bool(true))
            case "false", "False": return .const(.bool(false))
            case "none", "None": return .const(.none)
            default: return .name(n, line: line)
            }
        case .string(let s):
            _ = ts.next()
            var buf = s
            while case .string(let more)? = ts.current { buf += more; _ = ts.next() }
            return .const(.string(buf))
        case .int(let i):
            _ = ts.next()
            return .const(.int(i))
        case .float(let d):
            _ = ts.next()
            return .const(.double(d))
        case .op("("):
            _ = ts.next()
            try enter(); defer { depth -= 1 }
            let node = try parseTuple(explicitParentheses: true)
            try ts.expectOp(")")
            return node
        case .op("["):
            return try parseList()
        case .op("{"):
            return try parseDict()
        default:
            throw ts.fail("unexpected \(ts.describeCurrent)")
        }
    }

    func isTupleEnd(_ extraEnd: [String]) -> Bool {
        if ts.atEnd || ts.isOp(")") { return true }
        if case .name(let n)? = ts.current, extraEnd.contains(n) { return true }
        return false
    }

    mutating func parseTuple(simplified: Bool = false, withCondExpr: Bool = true, extraEnd: [String] = [],
                             explicitParentheses: Bool = false, withNamespace: Bool = false) throws -> JinjaExpr {
        var args: [JinjaExpr] = []
        var isTuple = false
        while true {
            if !args.isEmpty { try ts.expectOp(",") }
            if isTupleEnd(extraEnd) { break }
            if simplified {
                args.append(try parseAssignPrimary(withNamespace: withNamespace))
            } else {
                args.append(try parseExpression(withCondExpr: withCondExpr))
            }
            if ts.isOp(",") { isTuple = true } else { break }
        }
        if !isTuple {
            if let first = args.first { return first }
            if !explicitParentheses { throw ts.fail("expected an expression, got \(ts.describeCurrent)") }
        }
        return .tuple(args)
    }

    /// `parse_primary(with_namespace=…)` for assignment targets: a name, `ns.attr`, or a
    /// parenthesised tuple.
    mutating func parseAssignPrimary(withNamespace: Bool) throws -> JinjaExpr {
        let line = ts.currentLine
        if case .name(let n)? = ts.current, withNamespace, ts.look() == .op(".") {
            ts.i += 2
            let attr = try ts.expectName()
            return .getattr(.name(n, line: line), attr, line: line)
        }
        return try parsePrimary()
    }

    mutating func parseList() throws -> JinjaExpr {
        try ts.expectOp("[")
        try enter(); defer { depth -= 1 }
        var items: [JinjaExpr] = []
        while !ts.isOp("]") {
            if !items.isEmpty { try ts.expectOp(",") }
            if ts.isOp("]") { break }
            items.append(try parseExpression())
        }
        try ts.expectOp("]")
        return .list(items)
    }

    mutating func parseDict() throws -> JinjaExpr {
        try ts.expectOp("{")
        try enter(); defer { depth -= 1 }
        var items: [JinjaDictPair] = []
        while !ts.isOp("}") {
            if !items.isEmpty { try ts.expectOp(",") }
            if ts.isOp("}") { break }
            let key = try parseExpression()
            try ts.expectOp(":")
            items.append(JinjaDictPair(key: key, value: try parseExpression()))
        }
        try ts.expectOp("}")
        return .dict(items)
    }

    mutating func parsePostfix(_ start: JinjaExpr) throws -> JinjaExpr {
        var node = start
        while true {
            if ts.isOp(".") || ts.isOp("[") {
                node = try parseSubscript(node)
            } else if ts.isOp("(") {
                let line = ts.currentLine
                node = .call(node, try parseCallArgs(), line: line)
            } else {
                return node
            }
            try enter()
        }
    }

    mutating func parseFilterExpr(_ start: JinjaExpr) throws -> JinjaExpr {
        var node = start
        while true {
            if ts.isOp("|") {
                node = try parseFilter(node)
            } else if ts.isName("is") {
                node = try parseTest(node)
            } else if ts.isOp("(") {
                let line = ts.currentLine
                node = .call(node, try parseCallArgs(), line: line)
            } else {
                return node
            }
            try enter()
        }
    }

    mutating func parseSubscript(_ node: JinjaExpr) throws -> JinjaExpr {
        let line = ts.currentLine
        if ts.skipOp(".") {
            switch ts.current {
            case .name(let n)?:
                _ = ts.next()
                return .getattr(node, n, line: line)
            case .int(let i)?:
                _ = ts.next()
                return .getitem(node, .const(.int(i)), line: line)
            default:
                throw ts.fail("expected name or number after '.'")
            }
        }
        try ts.expectOp("[")
        try enter(); defer { depth -= 1 }
        var args: [JinjaExpr] = []
        while !ts.isOp("]") {
            if !args.isEmpty { try ts.expectOp(",") }
            args.append(try parseSubscribed())
        }
        try ts.expectOp("]")
        if args.isEmpty { throw ts.fail("expected subscript expression") }
        return .getitem(node, args.count == 1 ? args[0] : .tuple(args), line: line)
    }

    mutating func parseSubscribed() throws -> JinjaExpr {
        var parts: [JinjaExpr?] = []
        if ts.skipOp(":") {
            parts = [nil]
        } else {
            let node = try parseExpression()
            if !ts.isOp(":") { return node }
            _ = ts.next()
            parts = [node]
        }
        if ts.isOp(":") {
            parts.append(nil)
        } else if !ts.isOp("]"), !ts.isOp(",") {
            parts.append(try parseExpression())
        } else {
            parts.append(nil)
        }
        if ts.skipOp(":") {
            if !ts.isOp("]"), !ts.isOp(",") { parts.append(try parseExpression()) } else { parts.append(nil) }
        } else {
            parts.append(nil)
        }
        return .slice(parts[0], parts[1], parts[2])
    }

    mutating func parseCallArgs() throws -> JinjaArgs {
        try ts.expectOp("(")
        try enter(); defer { depth -= 1 }
        var args = JinjaArgs()
        var requireComma = false
        while !ts.isOp(")") {
            if requireComma {
                try ts.expectOp(",")
                if ts.isOp(")") { break }
            }
            if ts.isOp("*") || ts.isOp("**") {
                throw JinjaError(kind: .unsupported, line: ts.currentLine, message: "unsupported Jinja construct: *args/**kwargs in a call")
            }
            if case .name(let n)? = ts.current, ts.look() == .op("=") {
                ts.i += 2
                args.keywords.append(JinjaKeywordArg(name: n, value: try parseExpression()))
            } else {
                if !args.keywords.isEmpty { throw ts.fail("invalid syntax for function call expression") }
                args.positional.append(try parseExpression())
            }
            requireComma = true
        }
        try ts.expectOp(")")
        return args
    }

    mutating func parseDottedName() throws -> String {
        var name = try ts.expectName()
        while ts.skipOp(".") { name += "." + (try ts.expectName()) }
        return name
    }

    /// `| name(args)` filters, chained; `start` nil parses a bare chain (filter blocks).
    mutating func parseFilter(_ start: JinjaExpr?) throws -> JinjaExpr {
        var node = start ?? .captured
        var first = start == nil
        while ts.isOp("|") || first {
            if !first { _ = ts.next() }
            first = false
            let line = ts.currentLine
            let name = try parseDottedName()
            if JinjaFilters.knownUnsupported.contains(name) {
                throw JinjaError(kind: .unsupported, line: line, message: "unsupported Jinja filter \"\(name)\"")
            }
            if !JinjaFilters.supported.contains(name), !inConditional {
                unknownNames.append(JinjaError(kind: .syntax, line: line, message: "no filter named \"\(name)\""))
            }
            let args = ts.isOp("(") ? try parseCallArgs() : JinjaArgs()
            node = .filter(node, name, args, line: line)
        }
        return node
    }

    mutating func parseTest(_ node: JinjaExpr) throws -> JinjaExpr {
        let line = ts.currentLine
        _ = ts.next()
        let negated = ts.skipName("not")
        let name = try parseDottedName()
        if JinjaTests.knownUnsupported.contains(name) {
            throw JinjaError(kind: .unsupported, line: line, message: "unsupported Jinja test \"\(name)\"")
        }
        if !JinjaTests.supported.contains(name), !inConditional {
            unknownNames.append(JinjaError(kind: .syntax, line: line, message: "no test named \"\(name)\""))
        }
        var args = JinjaArgs()
        if ts.isOp("(") {
            args = try parseCallArgs()
        } else if let c = ts.current {
            var startsArg = false
            switch c {
            case .name(let n): startsArg = !["else", "or", "and"].contains(n)
            case .string, .int, .float: startsArg = true
            case .op(let o): startsArg = o == "(" || o == "[" || o == "{"
            }
            if startsArg {
                if ts.isName("is") { throw ts.fail("you cannot chain multiple tests with is") }
                let arg = try parsePostfix(try parsePrimary())
                args.positional = [arg]
            }
        }
        let test = JinjaExpr.test(node, name, args, line: line)
        return negated ? .not(test) : test
    }

    /// An assignment target (`x`, `a, b`, `ns.attr` with `withNamespace`).
    mutating func parseAssignTarget(withNamespace: Bool = false, extraEnd: [String] = []) throws -> JinjaTarget {
        let line = ts.currentLine
        let expr = try parseTuple(simplified: true, extraEnd: extraEnd, withNamespace: withNamespace)
        func convert(_ e: JinjaExpr) throws -> JinjaTarget {
            switch e {
            case .name(let n, _):
                if ["true", "false", "none", "True", "False", "None"].contains(n) { break }
                return .name(n)
            case .getattr(.name(let n, _), let attr, _) where withNamespace:
                return .namespaceAttr(n, attr)
            case .tuple(let items):
                return .tuple(try items.map(convert))
            default:
                break
            }
            throw JinjaError(kind: .syntax, line: line, message: "cannot assign to this expression")
        }
        return try convert(expr)
    }
}

/// The statement-level parser over the lexer's segments.
struct JinjaParser {
    private let segments: [JinjaSegment]
    private var index = 0
    private var nesting = 0
    private var loopDepth = 0
    /// How many `if` bodies enclose the current position (reset inside for/macro/call bodies).
    private var ifDepth = 0
    static let maxNesting = 64

    static let unsupportedTags: Set<String> = ["extends", "block", "include", "import", "from", "autoescape", "trans", "pluralize", "endtrans"]

    /// The tag that ended a body: its name and a stream positioned after the name.
    struct EndTag {
        var name: String
        var stream: JinjaTokenStream
        var line: Int
    }

    static func parse(_ source: String) throws -> [JinjaNode] {
        var p = JinjaParser(segments: try JinjaLexer.tokenize(source))
        let (nodes, end) = try p.parseBody(until: [], opener: nil)
        if let end { throw JinjaError(kind: .syntax, line: end.line, message: "unexpected \"\(end.name)\" tag") }
        return nodes
    }

    private init(segments: [JinjaSegment]) { self.segments = segments }

    private mutating func parseBody(until: Set<String>, opener: (name: String, line: Int)?) throws -> ([JinjaNode], EndTag?) {
        nesting += 1
        defer { nesting -= 1 }
        if nesting > JinjaParser.maxNesting {
            throw JinjaError(kind: .limit, line: opener?.line, message: "blocks nested too deeply (limit \(JinjaParser.maxNesting))")
        }
        var nodes: [JinjaNode] = []
        while index < segments.count {
            let seg = segments[index]
            index += 1
            switch seg {
            case .text(let t, _):
                nodes.append(.text(t))
            case .output(let tokens, let line):
                var ep = JinjaExprParser(JinjaTokenStream(tokens: tokens, line: line), inConditional: ifDepth > 0)
                if ep.ts.atEnd { throw JinjaError(kind: .syntax, line: line, message: "expected an expression, got end of print statement") }
                let expr = try ep.parseTuple()
                try ep.ts.expectEnd("print statement")
                try ep.checkUnknown()
                nodes.append(.output(expr, line: line))
            case .tag(let tokens, let line):
                var ts = JinjaTokenStream(tokens: tokens, line: line)
                guard case .name(let name)? = ts.next() else {
                    throw JinjaError(kind: .syntax, line: line, message: "tag name expected")
                }
                if until.contains(name) { return (nodes, EndTag(name: name, stream: ts, line: line)) }
                nodes.append(try parseStatement(name, ts, line: line, until: until, opener: opener))
            }
        }
        if let opener {
            let expected = until.sorted().map { "\"\($0)\"" }.joined(separator: " or ")
            throw JinjaError(kind: .syntax, line: opener.line,
                             message: "unexpected end of template: \"\(opener.name)\" tag is never closed (expected \(expected))")
        }
        return (nodes, nil)
    }

    private mutating func parseStatement(_ name: String, _ stream: JinjaTokenStream, line: Int, until: Set<String>,
                                         opener: (name: String, line: Int)?) throws -> JinjaNode {
        var ts = stream
        switch name {
        case "if":
            var branches: [JinjaIfBranch] = []
            var elseBody: [JinjaNode] = []
            var current = ts
            ifDepth += 1
            defer { ifDepth -= 1 }
            while true {
                var ep = JinjaExprParser(current, inConditional: true)
                let test = try ep.parseTuple(withCondExpr: false)
                try ep.ts.expectEnd("if tag")
                let (body, end) = try parseBody(until: ["elif", "else", "endif"], opener: ("if", line))
                branches.append(JinjaIfBranch(test: test, body: body))
                guard let end else { break }
                if end.name == "elif" { current = end.stream; continue }
                if end.name == "else" {
                    try end.stream.expectEnd("else tag")
                    let (eb, endIf) = try parseBody(until: ["endif"], opener: ("if", line))
                    try endIf?.stream.expectEnd("endif tag")
                    elseBody = eb
                } else {
                    try end.stream.expectEnd("endif tag")
                }
                break
            }
            return .ifChain(branches, elseBody: elseBody)
        case "for":
            var ep = JinjaExprParser(ts, inConditional: ifDepth > 0)
            let target = try ep.parseAssignTarget(extraEnd: ["in"])
            guard ep.ts.skipName("in") else { throw ep.ts.fail("expected 'in', got \(ep.ts.describeCurrent)") }
            let iter = try ep.parseTuple(withCondExpr: false, extraEnd: ["recursive"])
            var filter: JinjaExpr?
            if ep.ts.skipName("if") { filter = try ep.parseExpression() }
            if ep.ts.isName("recursive") {
                throw JinjaError(kind: .unsupported, line: line, message: "unsupported Jinja construct: recursive for loop")
            }
            try ep.ts.expectEnd("for tag")
            try ep.checkUnknown()
            loopDepth += 1
            let savedIf = ifDepth
            ifDepth = 0
            let (body, end) = try parseBody(until: ["endfor", "else"], opener: ("for", line))
            loopDepth -= 1
            var elseBody: [JinjaNode] = []
            if let end, end.name == "else" {
                try end.stream.expectEnd("else tag")
                let (eb, endFor) = try parseBody(until: ["endfor"], opener: ("for", line))
                try endFor?.stream.expectEnd("endfor tag")
                elseBody = eb
            } else {
                try end?.stream.expectEnd("endfor tag")
            }
            ifDepth = savedIf
            return .forLoop(JinjaForLoop(target: target, iter: iter, filter: filter, body: body, elseBody: elseBody, line: line))
        case "set":
            var ep = JinjaExprParser(ts, inConditional: ifDepth > 0)
            let target = try ep.parseAssignTarget(withNamespace: true)
            if ep.ts.skipOp("=") {
                let value = try ep.parseTuple()
                try ep.ts.expectEnd("set tag")
                try ep.checkUnknown()
                return .set(target, value, line: line)
            }
            var filter: JinjaExpr?
            if ep.ts.isOp("|") {
                _ = ep.ts.next()
                filter = try ep.parseFilter(nil)
            }
            try ep.ts.expectEnd("set tag")
            try ep.checkUnknown()
            let (body, end) = try parseBody(until: ["endset"], opener: ("set", line))
            try end?.stream.expectEnd("endset tag")
            return .setBlock(target, filter: filter, body: body, line: line)
        case "break", "continue":
            try ts.expectEnd("\(name) tag")
            if loopDepth == 0 { throw JinjaError(kind: .syntax, line: line, message: "\"\(name)\" outside of a for loop") }
            return name == "break" ? .breakLoop : .continueLoop
        case "macro":
            let macroName = try ts.expectName()
            let (params, defaults, rest) = try parseSignature(ts, line: line)
            try rest.expectEnd("macro tag")
            let savedLoop = loopDepth, savedIf = ifDepth
            loopDepth = 0
            ifDepth = 0
            let (body, end) = try parseBody(until: ["endmacro"], opener: ("macro", line))
            loopDepth = savedLoop
            ifDepth = savedIf
            try end?.stream.expectEnd("endmacro tag")
            return .macro(JinjaMacroDef(name: macroName, params: params, defaults: defaults, body: body, line: line))
        case "call":
            var params: [String] = []
            var defaults: [JinjaExpr?] = []
            if ts.isOp("(") { (params, defaults, ts) = try parseSignature(ts, line: line) }
            var ep = JinjaExprParser(ts, inConditional: ifDepth > 0)
            let call = try ep.parseExpression()
            guard case .call = call else { throw JinjaError(kind: .syntax, line: line, message: "expected a call expression in the call tag") }
            try ep.ts.expectEnd("call tag")
            try ep.checkUnknown()
            let savedLoop = loopDepth, savedIf = ifDepth
            loopDepth = 0
            ifDepth = 0
            let (body, end) = try parseBody(until: ["endcall"], opener: ("call", line))
            loopDepth = savedLoop
            ifDepth = savedIf
            try end?.stream.expectEnd("endcall tag")
            return .callBlock(JinjaCallBlock(call: call, caller: JinjaMacroDef(name: "caller", params: params, defaults: defaults, body: body, line: line), line: line))
        case "filter":
            var ep = JinjaExprParser(ts, inConditional: ifDepth > 0)
            let filter = try ep.parseFilter(nil)
            try ep.ts.expectEnd("filter tag")
            try ep.checkUnknown()
            let (body, end) = try parseBody(until: ["endfilter"], opener: ("filter", line))
            try end?.stream.expectEnd("endfilter tag")
            return .filterBlock(filter, body: body, line: line)
        case "with":
            var ep = JinjaExprParser(ts, inConditional: ifDepth > 0)
            var assignments: [JinjaAssignment] = []
            while !ep.ts.atEnd {
                if !assignments.isEmpty { try ep.ts.expectOp(",") }
                let target = try ep.parseAssignTarget()
                try ep.ts.expectOp("=")
                assignments.append(JinjaAssignment(target: target, value: try ep.parseExpression()))
            }
            try ep.checkUnknown()
            let (body, end) = try parseBody(until: ["endwith"], opener: ("with", line))
            try end?.stream.expectEnd("endwith tag")
            return .with(assignments, body: body, line: line)
        case "generation":
            try ts.expectEnd("generation tag")
            let (body, end) = try parseBody(until: ["endgeneration"], opener: ("generation", line))
            try end?.stream.expectEnd("endgeneration tag")
            return .generation(body)
        default:
            if JinjaParser.unsupportedTags.contains(name) {
                throw JinjaError(kind: .unsupported, line: line, message: "unsupported Jinja tag \"\(name)\"")
            }
            if name.hasPrefix("end") || ["elif", "else"].contains(name) {
                var message = "unexpected \"\(name)\" tag"
                if let opener { message += " inside \"\(opener.name)\" opened on line \(opener.line)" }
                throw JinjaError(kind: .syntax, line: line, message: message)
            }
            throw JinjaError(kind: .syntax, line: line, message: "unknown Jinja tag \"\(name)\"")
        }
    }

    /// `(a, b=default, ...)` of a macro or call block.
    private func parseSignature(_ stream: JinjaTokenStream, line: Int) throws -> ([String], [JinjaExpr?], JinjaTokenStream) {
        var ep = JinjaExprParser(stream)
        try ep.ts.expectOp("(")
        var params: [String] = []
        var defaults: [JinjaExpr?] = []
        while !ep.ts.isOp(")") {
            if !params.isEmpty { try ep.ts.expectOp(",") }
            if ep.ts.isOp(")") { break }
            let name = try ep.ts.expectName()
            if params.contains(name) { throw ep.ts.fail("duplicate argument \"\(name)\"") }
            params.append(name)
            if ep.ts.skipOp("=") {
                defaults.append(try ep.parseExpression())
            } else {
                if defaults.contains(where: { $0 != nil }) { throw ep.ts.fail("non-default argument follows default argument") }
                defaults.append(nil)
            }
        }
        try ep.ts.expectOp(")")
        try ep.checkUnknown()
        return (params, defaults, ep.ts)
    }
}
