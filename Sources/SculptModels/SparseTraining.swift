import SculptCore
import SculptNN
import SculptIO

extension SparseDiff {
    /// Adds the diff to the model's parameters in place (names as in `namedParameters()`).
    public func apply(to model: any Module) throws { try patch(model, sign: 1) }

    /// Subtracts the diff from the model's parameters in place.
    public func remove(from model: any Module) throws { try patch(model, sign: -1) }

    private func patch(_ model: any Module, sign: Float) throws {
        var params: [String: Variable] = [:]
        for (n, p) in model.namedParameters() { params[n] = p }
        for (name, part) in parts {
            guard let p = params[name] else { throw SparseDiffError.missingTensor(name) }
            try SparseDiff.patch(&p.value, part, name: name, sign: sign)
        }
    }

    /// Sets the model up for LT-SFT's sparse phase: parameters the diff covers with at least
    /// one entry train under a 0/1 mask (returned, for `AdamW.updateMasks`, which also keeps
    /// decoupled weight decay off the unselected entries); every other parameter is frozen so
    /// no gradient is computed for it, except those `alsoTrain` names (e.g. a new head).
    public func prepareSparseTraining(_ model: any Module, alsoTrain: (String) -> Bool = { _ in false }) -> [String: Tensor] {
        let all = masks()
        var out: [String: Tensor] = [:]
        for (name, p) in model.namedParameters() {
            if let m = all[name], parts[name]!.count > 0 {
                p.requiresGrad = true
                out[name] = m
            } else {
                p.requiresGrad = alsoTrain(name)
                if !p.requiresGrad { p.grad = nil }
            }
        }
        return out
    }
}
