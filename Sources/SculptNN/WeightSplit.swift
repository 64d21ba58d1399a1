import SculptCore

/// A `Linear` whose weight trains only in a leading block of rows (outputs) or columns
/// (inputs): "select sparsely, compute densely" (s2ft). The block is its own variable; W
/// with the block's current values written in is a constant of one GEMM
/// (`matmulTransposedWithTrainableBlocks`), so the forward pass and dx cost what a plain
/// layer's do and the backward pass computes dW for the block alone.
///
/// While split, `Linear.weight` is frozen and its leading block is stale; `fold()` writes
/// the block back.
public final class WeightSplit {
    public typealias Axis = WeightBlock.Axis
    /// The trainable block's name under its Linear (`….dense.s2ft.weight`).
    public static let parameterName = "s2ft.weight"

    public let axis: Axis
    public let count: Int
    public let trainable: Variable
    let weightWasTrainable: Bool

    init(weight: Variable, axis: Axis, count: Int) {
        let dim = axis == .rows ? 0 : 1
        let n = weight.value.shape[dim]
        precondition(count > 0 && count <= n, "WeightSplit: block of \(count) \(axis) outside 1...\(n)")
        self.axis = axis
        self.count = count
        trainable = Variable(weight.value.slice(axis: dim, 0..<count), requiresGrad: true)
        weightWasTrainable = weight.requiresGrad
    }

    /// The block's place in W.
    public var block: WeightBlock { WeightBlock(axis, offset: 0) }

    func forward(_ x: Variable, weight: Tensor, bias: Variable?) -> Variable {
        matmulTransposedWithTrainableBlocks(x, weight: weight, blocks: [(trainable, block)], bias: bias)
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
        writeBlocks([(s.trainable.value, s.block)], into: &weight.value)
        weight.requiresGrad = s.weightWasTrainable
        split = nil
    }
}
