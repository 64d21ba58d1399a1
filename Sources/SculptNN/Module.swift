import SculptCore

/// A node of the parameter tree. Parameters are addressed by dotted names built from the
/// child names (`encoder.layer.0.attention.self.query.weight`), identical to the keys of a
/// PyTorch state dict, so loading, saving, LoRA targeting and merging speak the same names.
public protocol Module: AnyObject {
    /// Training mode (dropout active, batch statistics) or evaluation mode.
    var training: Bool { get set }
    /// Direct sub-modules, in order, with the names they take in the tree.
    var children: [(String, any Module)] { get }
    /// Parameters owned directly by this module.
    var localParameters: [(String, Variable)] { get }
    /// Non-trainable state owned directly by this module (running statistics).
    var localBuffers: [(String, Variable)] { get }
}

extension Module {
    public var children: [(String, any Module)] { [] }
    public var localParameters: [(String, Variable)] { [] }
    public var localBuffers: [(String, Variable)] { [] }

    /// Every parameter in the tree with its dotted name, depth first in declaration order.
    public func namedParameters() -> [(name: String, parameter: Variable)] {
        var out: [(String, Variable)] = []
        collect(prefix: "", into: &out, buffers: false)
        return out
    }

    /// Running statistics and other buffers with their dotted names.
    public func namedBuffers() -> [(name: String, buffer: Variable)] {
        var out: [(String, Variable)] = []
        collect(prefix: "", into: &out, buffers: true)
        return out
    }

    private func collect(prefix: String, into out: inout [(String, Variable)], buffers: Bool) {
        for (n, p) in buffers ? localBuffers : localParameters { out.append((prefix + n, p)) }
        for (n, c) in children { c.collect(prefix: prefix + n + ".", into: &out, buffers: buffers) }
    }

    /// Parameters that currently train.
    public func trainableParameters() -> [(name: String, parameter: Variable)] {
        namedParameters().filter { $0.parameter.requiresGrad }
    }

    public var parameterCount: Int { namedParameters().reduce(0) { $0 + $1.parameter.value.count } }

    /// Visits this module and every descendant with its dotted path ("" for the root).
    public func visitModules(_ body: (String, any Module) -> Void) {
        body("", self)
        visitChildren(prefix: "", body)
    }

    private func visitChildren(prefix: String, _ body: (String, any Module) -> Void) {
        for (n, c) in children {
            body(prefix + n, c)
            c.visitChildren(prefix: prefix + n + ".", body)
        }
    }

    /// Sets training or evaluation mode on the whole tree.
    public func setTraining(_ on: Bool) { visitModules { _, m in m.training = on } }
    public func train() { setTraining(true) }
    public func eval() { setTraining(false) }

    /// Freezes (or unfreezes) every parameter whose name satisfies `predicate`.
    public func setTrainable(_ trainable: Bool, where predicate: (String) -> Bool = { _ in true }) {
        for (n, p) in namedParameters() where predicate(n) { p.requiresGrad = trainable; if !trainable { p.grad = nil } }
    }

    public func zeroGrad() { for (_, p) in namedParameters() { p.grad = nil } }

    /// Parameters and buffers by name (a state dict).
    public func stateDict() -> [String: Tensor] {
        var d: [String: Tensor] = [:]
        for (n, p) in namedParameters() { d[n] = p.value }
        for (n, b) in namedBuffers() { d[n] = b.value }
        return d
    }

    /// Loads values by name, verifying every shape. Returns the names the module expected but
    /// did not get (`missing`) and the names it does not have (`unexpected`), like PyTorch's
    /// `load_state_dict(strict=False)`; a shape mismatch throws.
    @discardableResult
    public func update(from values: [String: Tensor]) throws -> (missing: [String], unexpected: [String]) {
        var expected: [String: Variable] = [:]
        for (n, p) in namedParameters() { expected[n] = p }
        for (n, b) in namedBuffers() { expected[n] = b }
        var missing: [String] = []
        for (n, target) in expected.sorted(by: { $0.key < $1.key }) {
            guard let v = values[n] else { missing.append(n); continue }
            guard v.shape == target.value.shape else {
                throw ModuleError.shapeMismatch(name: n, expected: target.value.shape, got: v.shape)
            }
            target.value = v
        }
        let unexpected = values.keys.filter { expected[$0] == nil }.sorted()
        return (missing, unexpected)
    }
}

public enum ModuleError: Error, CustomStringConvertible, Equatable {
    case shapeMismatch(name: String, expected: [Int], got: [Int])
    case missingParameters([String])

    public var description: String {
        switch self {
        case .shapeMismatch(let n, let e, let g): return "parameter \(n): expected shape \(e), got \(g)"
        case .missingParameters(let names):
            return "missing parameters: \(names.prefix(5).joined(separator: ", "))\(names.count > 5 ? " and \(names.count - 5) more" : "")"
        }
    }
}

/// A module with a single-input forward pass.
public protocol Layer: Module {
    func callAsFunction(_ x: Variable) -> Variable
}
