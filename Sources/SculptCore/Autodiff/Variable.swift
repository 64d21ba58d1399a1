/// A tensor that takes part in reverse-mode differentiation.
///
/// Ops on variables compute their value eagerly and, while gradients are recorded
/// (`ExecutionContext.current.recordsGradients`), remember how they were made. `backward()`
/// walks that graph in reverse, applying the rules in `Gradients.swift`, and accumulates
/// into the `grad` of every leaf that `requiresGrad` (parameters).
public final class Variable {
    public var value: Tensor
    /// Accumulated gradient (leaves only); `nil` until a backward pass reaches it.
    public var grad: Tensor?
    public var requiresGrad: Bool
    let recipe: Recipe?

    public init(_ value: Tensor, requiresGrad: Bool = false) {
        self.value = value
        self.requiresGrad = requiresGrad
        recipe = nil
    }

    init(_ value: Tensor, op: Op, inputs: [Variable]) {
        self.value = value
        if ExecutionContext.current.recordsGradients, inputs.contains(where: { $0.requiresGrad }) {
            requiresGrad = true
            recipe = Recipe(op: op, inputs: inputs)
        } else {
            requiresGrad = false
            recipe = nil
        }
    }

    public var shape: [Int] { value.shape }
    public var isLeaf: Bool { recipe == nil }

    /// The same value, cut from the graph.
    public func detached() -> Variable { Variable(value) }

    public func zeroGrad() { grad = nil }

    /// Back-propagates from this variable. A non-scalar output needs an explicit seed
    /// (the gradient of some scalar with respect to it).
    public func backward(seed: Tensor? = nil) {
        let start: Tensor
        if let s = seed {
            precondition(s.shape == value.shape, "backward: seed shape \(s.shape) differs from output shape \(value.shape)")
            start = s
        } else {
            precondition(value.count == 1, "backward: output of shape \(value.shape) is not a scalar; pass a seed")
            start = Tensor(shape: value.shape, repeating: 1)
        }
        guard requiresGrad else { return }
        let order = topologicalOrder()
        var pending: [ObjectIdentifier: Tensor] = [ObjectIdentifier(self): start]
        withoutGradients {
            for v in order.reversed() {
                guard let g = pending.removeValue(forKey: ObjectIdentifier(v)) else { continue }
                guard let recipe = v.recipe else {
                    if v.requiresGrad {
                        if v.grad == nil { v.grad = g } else { v.grad!.addScaled(g) }
                    }
                    continue
                }
                let grads = Gradients.inputGradients(recipe.op, inputs: recipe.inputs, output: v.value, upstream: g)
                for (input, gi) in zip(recipe.inputs, grads) where input.requiresGrad {
                    guard let gi else { continue }
                    precondition(gi.shape == input.value.shape, "backward: rule for \(recipe.op.name) returned gradient \(gi.shape) for input \(input.value.shape)")
                    let key = ObjectIdentifier(input)
                    if var existing = pending.removeValue(forKey: key) {
                        existing.addScaled(gi)
                        pending[key] = existing
                    } else {
                        pending[key] = gi
                    }
                }
            }
        }
    }

    /// Variables reachable from here that need gradients, inputs before outputs.
    private func topologicalOrder() -> [Variable] {
        var order: [Variable] = []
        var visited = Set<ObjectIdentifier>()
        var stack: [(Variable, Bool)] = [(self, false)]
        while let (v, expanded) = stack.popLast() {
            if expanded { order.append(v); continue }
            if !visited.insert(ObjectIdentifier(v)).inserted { continue }
            stack.append((v, true))
            for input in v.recipe?.inputs ?? [] where input.requiresGrad && !visited.contains(ObjectIdentifier(input)) {
                stack.append((input, false))
            }
        }
        return order
    }
}

struct Recipe {
    let op: Op
    let inputs: [Variable]
}
