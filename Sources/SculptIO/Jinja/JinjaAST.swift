// The parsed form of a template: statements (`JinjaNode`) and expressions (`JinjaExpr`), mirroring
// jinja2.nodes for the subset this interpreter runs.

enum JinjaConst: Sendable, Equatable {
    case none
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
}

enum JinjaBinOp: String, Sendable {
    case add = "+", sub = "-", mul = "*", div = "/", floordiv = "//", mod = "%", pow = "**"
}

struct JinjaKeywordArg: Sendable {
    var name: String
    var value: JinjaExpr
}

struct JinjaArgs: Sendable {
    var positional: [JinjaExpr] = []
    var keywords: [JinjaKeywordArg] = []
}

struct JinjaCompareOp: Sendable {
    /// One of `==`, `!=`, `<`, `<=`, `>`, `>=`, `in`, `notin`.
    var op: String
    var rhs: JinjaExpr
}

struct JinjaDictPair: Sendable {
    var key: JinjaExpr
    var value: JinjaExpr
}

indirect enum JinjaExpr: Sendable {
    case const(JinjaConst)
    case name(String, line: Int)
    case list([JinjaExpr])
    case tuple([JinjaExpr])
    case dict([JinjaDictPair])
    case getattr(JinjaExpr, String, line: Int)
    case getitem(JinjaExpr, JinjaExpr, line: Int)
    case slice(JinjaExpr?, JinjaExpr?, JinjaExpr?)
    case call(JinjaExpr, JinjaArgs, line: Int)
    case filter(JinjaExpr, String, JinjaArgs, line: Int)
    case test(JinjaExpr, String, JinjaArgs, line: Int)
    case neg(JinjaExpr, line: Int)
    case pos(JinjaExpr, line: Int)
    case not(JinjaExpr)
    case binary(JinjaBinOp, JinjaExpr, JinjaExpr, line: Int)
    case concat([JinjaExpr], line: Int)
    case and(JinjaExpr, JinjaExpr)
    case or(JinjaExpr, JinjaExpr)
    case compare(JinjaExpr, [JinjaCompareOp], line: Int)
    case cond(test: JinjaExpr, then: JinjaExpr, otherwise: JinjaExpr?)
    /// The captured body of a `{% filter %}` or `{% set x | f %}` block.
    case captured
}

indirect enum JinjaTarget: Sendable {
    case name(String)
    case tuple([JinjaTarget])
    case namespaceAttr(String, String)
}

struct JinjaIfBranch: Sendable {
    var test: JinjaExpr
    var body: [JinjaNode]
}

struct JinjaForLoop: Sendable {
    var target: JinjaTarget
    var iter: JinjaExpr
    var filter: JinjaExpr?
    var body: [JinjaNode]
    var elseBody: [JinjaNode]
    var line: Int
}

struct JinjaMacroDef: Sendable {
    var name: String
    var params: [String]
    var defaults: [JinjaExpr?]
    var body: [JinjaNode]
    var line: Int
}

struct JinjaCallBlock: Sendable {
    var call: JinjaExpr
    var caller: JinjaMacroDef
    var line: Int
}

struct JinjaAssignment: Sendable {
    var target: JinjaTarget
    var value: JinjaExpr
}

indirect enum JinjaNode: Sendable {
    case text(String)
    case output(JinjaExpr, line: Int)
    case ifChain([JinjaIfBranch], elseBody: [JinjaNode])
    case forLoop(JinjaForLoop)
    case set(JinjaTarget, JinjaExpr, line: Int)
    case setBlock(JinjaTarget, filter: JinjaExpr?, body: [JinjaNode], line: Int)
    case breakLoop
    case continueLoop
    case macro(JinjaMacroDef)
    case callBlock(JinjaCallBlock)
    case filterBlock(JinjaExpr, body: [JinjaNode], line: Int)
    case with([JinjaAssignment], body: [JinjaNode], line: Int)
    /// transformers' `{% generation %}` (assistant-mask tracking): renders its body as is.
    case generation([JinjaNode])
}
