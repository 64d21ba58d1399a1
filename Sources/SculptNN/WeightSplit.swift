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
    /// The trainable block's name under its Linear (`….dense.s2ft.weight`); with several
    /// blocks, `s2ft.0.weight`, `s2ft.1.weight`, … in offset order.
    public static let parameterName = "s2ft.weight"

    public let axis: Axis
    /// The trained rows (or columns) of W, one range per block, ascending and disjoint.
    public let ranges: [Range<Int>]
    public let trainables: [Variable]
    let weightWasTrainable: Bool

    init(weight: Variable, axis: Axis, ranges: [Range<Int>]) {
        let dim = axis == .rows ? 0 : 1
        let n = weight.value.shape[dim]
        precondition(!ranges.isEmpty && ranges.allSatisfy { !$0.isEmpty && $0.lowerBound >= 0 && $0.upperBound <= n }
                     && zip(ranges, ranges.dropFirst()).allSatisfy { $0.upperBound <= $1.lowerBound },
                     "WeightSplit: blocks \(ranges) of \(axis) are not ascending disjoint ranges inside 0..<\(n)")
        self.axis = axis
        self.ranges = ranges
        trainables = ranges.map { Variable(weight.value.slice(axis: dim, $0), requiresGrad: true) }
        weightWasTrainable = weight.requiresGrad
    }

    /// The leading block's size (the whole of a one-block split).
    public var count: Int { ranges[0].count }
    /// The first block's variable.
    public var trainable: Variable { trainables[0] }

    /// The blocks' places in W.
    public var blocks: [WeightBlock] { ranges.map { WeightBlock(axis, offset: $0.lowerBound) } }

    /// The blocks' parameter names and variables under the Linear.
    public var namedTrainables: [(String, Variable)] {
        trainables.count == 1 ? [(Self.parameterName, trainables[0])] : trainables.enumerated().map { ("s2ft.\($0.offset).weight", $0.element) }
    }

    func forward(_ x: Variable, weight: Tensor, bias: Variable?) -> Variable {
        matmulTransposedWithTrainableBlocks(x, weight: weight, blocks: Array(zip(trainables, blocks)), bias: bias)
    }
}

extension Linear {
    /// Makes the first `count` rows (output features) or columns (input features) of W a
    /// separate trainable variable and freezes the rest (bias unchanged). Replaces any
    /// earlier split after folding it.
    public func splitWeight(_ axis: WeightSplit.Axis, count: Int) { splitWeight(axis, ranges: [0..<count]) }

    /// Makes the given ranges of rows or columns of W trainable variables (ascending, disjoint)
    /// and freezes the rest.
    public func splitWeight(_ axis: WeightSplit.Axis, ranges: [Range<Int>]) {
        foldWeight()
        let s = WeightSplit(weight: weight, axis: axis, ranges: ranges)
        weight.requiresGrad = false
        weight.grad = nil
        split = s
    }

    /// Writes the trained block back into W and removes the split.
    public func foldWeight() {
        guard let s = split else { return }
        writeBlocks(zip(s.trainables, s.blocks).map { ($0.value, $1) }, into: &weight.value)
        weight.requiresGrad = s.weightWasTrainable
        split = nil
    }
}
