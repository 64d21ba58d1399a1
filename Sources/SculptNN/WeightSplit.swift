import SculptCore

/// A `Linear` whose weight trains only in a leading block of rows (outputs) or columns
/// (inputs): "select sparsely, compute densely" (s2ft). The block is its own variable and
/// the remainder a constant, so the backward pass computes dW for the block alone:
///
///   rows:    y = [x·W_tᵀ | x·W_fᵀ]            (two matmuls, concatenated)
///   columns: y = x[:, :k]·W_tᵀ + x[:, k:]·W_fᵀ
///
/// While split, `Linear.weight` is frozen and its leading block is stale; `fold()` writes
/// the block back. The split costs one extra copy of the weight's remainder.
public final class WeightSplit {
    public enum Axis: String, Sendable, Codable { case rows, columns }
    /// The trainable block's name under its Linear (`….dense.s2ft.weight`).
    public static let parameterName = "s2ft.weight"

    public let axis: Axis
    public let count: Int
    public let trainable: Variable
    let frozen: Variable
    let weightWasTrainable: Bool

    init(weight: Variable, axis: Axis, count: Int) {
        let dim = axis == .rows ? 0 : 1
        let n = weight.value.shape[dim]
        precondition(count > 0 && count <= n, "WeightSplit: block of \(count) \(axis) outside 1...\(n)")
        self.axis = axis
        self.count = count
        trainable = Variable(weight.value.slice(axis: dim, 0..<count), requiresGrad: true)
        frozen = Variable(weight.value.slice(axis: dim, count..<n))
        weightWasTrainable = weight.requiresGrad
    }

    func forward(_ x: Variable) -> Variable {
        let rest = axis == .rows ? frozen.value.shape[0] : frozen.value.shape[1]
        switch axis {
        case .rows:
            let head = matmul(x, trainable, transposeB: true)
            guard rest > 0 else { return head }
            return concat([head, matmul(x, frozen, transposeB: true)], axis: -1)
        case .columns:
            guard rest > 0 else { return matmul(x, trainable, transposeB: true) }
            let k = x.shape[x.shape.count - 1]
            return matmul(x.slice(axis: -1, 0..<count), trainable, transposeB: true)
                + matmul(x.slice(axis: -1, count..<k), frozen, transposeB: true)
        }
    }
}

extension Linear {
    /// Makes the first `count` rows (output features) or columns (input features) of W a
    /// separate trainable variable and freezes the rest (bias unchanged). Replaces any
    /// earlier split after folding it.
    public func splitWeight(_ axis: WeightSplit.Axis, count: Int) {
        foldWeight()
        let s = WeightSplit(weight: weight, axis: axis, count: count)
        weight.requiresGrad = false
        weight.grad = nil
        split = s
    }

    /// Writes the trained block back into W and removes the split.
    public func foldWeight() {
        guard let s = split else { return }
        let out = outFeatures, inF = inFeatures, k = s.count
        let block = s.trainable.value
        weight.value.withUnsafeMutablePointer { w in
            block.withUnsafePointer { t in
                switch s.axis {
                case .rows: w.update(from: t, count: k * inF)
                case .columns: for r in 0..<out { (w + r * inF).update(from: t + r * k, count: k) }
                }
            }
        }
        weight.requiresGrad = s.weightWasTrainable
        split = nil
    }
}
