import SculptCore
import SculptModels
import SculptNN
import SculptTune

extension BertModel {
    /// Permutes every layer's heads and FFN channels into decreasing importance, so the leading
    /// slices that sub-networks keep hold the most important units. The function is unchanged.
    /// Returns the applied orders (new position p holds old unit order[p]).
    @discardableResult
    public func reorderByImportance(_ criterion: ImportanceCriterion) -> [(heads: [Int], channels: [Int])] {
        encoder.layers.map { layer in
            let hs = layer.headImportance(criterion), cs = layer.channelImportance(criterion)
            let headOrder = hs.indices.sorted { hs[$0] != hs[$1] ? hs[$0] > hs[$1] : $0 < $1 }
            let channelOrder = cs.indices.sorted { cs[$0] != cs[$1] ? cs[$0] > cs[$1] : $0 < $1 }
            layer.permuteHeads(headOrder)
            layer.permuteChannels(channelOrder)
            return (headOrder, channelOrder)
        }
    }
}

extension ImageCNN {
    /// Permutes every group of channels into decreasing importance so that the leading slices
    /// sub-networks keep hold the most important ones; the function is unchanged. A group is
    /// a set of channels that must move together: the stem's output, each block's inner
    /// channels, and each stage's residual stream (every block adds into it, so all its
    /// producers share one order). Importance is Σ|γ| of the BatchNorms producing the group
    /// (network slimming's channel saliency). Returns the applied orders.
    @discardableResult
    public func reorderChannelsByImportance() -> [[Int]] {
        permuteChannelGroups { _, producers in
            let n = producers[0].1.channels
            var score = [Double](repeating: 0, count: n)
            for (_, bn) in producers { for i in 0..<n { score[i] += Double(abs(bn.weight.value[flat: i])) } }
            return score.indices.sorted { score[$0] != score[$1] ? score[$0] > score[$1] : $0 < $1 }
        }
    }

    /// Applies `orders[s]` (new position p holds old channel orders[s][p]) to every channel
    /// group of stage s (the stem's output belongs to stage 0); the function is unchanged.
    /// Gates use it to move the channels they keep to the front of each stage.
    public func permuteStageChannels(_ orders: [[Int]]) {
        permuteChannelGroups { stage, _ in orders[stage] }
    }

    /// Permutes each channel group (producers' output channels, consumers' input channels) by
    /// the order `orderFor(stage, producers)` gives it. Returns the orders applied.
    @discardableResult
    func permuteChannelGroups(_ orderFor: (_ stage: Int, _ producers: [(Conv2d, BatchNorm2d)]) -> [Int]) -> [[Int]] {
        func select(_ t: Tensor, _ axis: Int, _ order: [Int]) -> Tensor { t.indexSelect(axis: axis, order.map { Int32($0) }) }
        var orders: [[Int]] = []
        func group(stage: Int, producers: [(Conv2d, BatchNorm2d)], consumers: [Conv2d], linear: Linear? = nil) {
            let order = orderFor(stage, producers)
            precondition(order.sorted() == Array(0..<producers[0].1.channels), "permuteChannelGroups: \(order) is not a permutation")
            for (conv, bn) in producers {
                conv.weight.value = select(conv.weight.value, 0, order)
                if let b = conv.bias { b.value = select(b.value, 0, order) }
                for v in [bn.weight, bn.bias, bn.runningMean, bn.runningVar] { v.value = select(v.value, 0, order) }
            }
            for conv in consumers { conv.weight.value = select(conv.weight.value, 1, order) }
            if let l = linear { l.weight.value = select(l.weight.value, 1, order) }
            orders.append(order)
        }
        func shortcutPair(_ b: ResidualBlock) -> (Conv2d, BatchNorm2d)? {
            b.shortcut.map { ($0.layers[0] as! Conv2d, $0.layers[1] as! BatchNorm2d) }
        }
        let stages = blocksByStage
        func entryConvs(_ b: ResidualBlock) -> [Conv2d] { [b.conv1] + (shortcutPair(b).map { [$0.0] } ?? []) }
        group(stage: 0, producers: [(stemConv, stemNorm)], consumers: entryConvs(stages[0][0]))
        for (s, blocks) in stages.enumerated() { for b in blocks { group(stage: s, producers: [(b.conv1, b.bn1)], consumers: [b.conv2]) } }
        for (s, blocks) in stages.enumerated() {
            let producers = blocks.map { ($0.conv2, $0.bn2) } + blocks.compactMap(shortcutPair)
            var consumers = blocks.dropFirst().map(\.conv1)
            if s + 1 < stages.count { consumers += entryConvs(stages[s + 1][0]) }
            group(stage: s, producers: producers, consumers: consumers, linear: s + 1 == stages.count ? classifier : nil)
        }
        return orders
    }

    /// Attaches one gate per stage to every BatchNorm of that stage (the stem's to stage 0's),
    /// or removes them (nil). Every tensor in a stage's channel space leaves through one of
    /// these BatchNorms, so a closed gate j removes channel j of the stage exactly as the
    /// sub-network without it (ReLU(0) = 0 and a zero channel adds nothing downstream).
    public func setChannelGates(_ gates: [UnitGate]?) {
        if let gates { precondition(gates.count == stageChannels.count && zip(gates, stageChannels).allSatisfy { $0.units == $1 }, "setChannelGates: one gate of the stage's width per stage") }
        stemNorm.outputGate = gates?[0]
        for (s, blocks) in blocksByStage.enumerated() {
            for b in blocks {
                b.bn1.outputGate = gates?[s]
                b.bn2.outputGate = gates?[s]
                (b.shortcut?.layers[1] as? BatchNorm2d)?.outputGate = gates?[s]
            }
        }
    }
}

extension ImageMLP {
    /// Permutes every hidden layer's units into decreasing importance — Σ|w| of the weights
    /// reading the unit (the next layer's or the classifier's column) — so the leading units
    /// sub-networks keep are the most important; the function is unchanged. Returns the
    /// applied orders (new position p holds old unit order[p]).
    @discardableResult
    public func reorderUnitsByImportance() -> [[Int]] {
        let layers = hiddenLayers + [classifier]
        return (0..<(layers.count - 1)).map { i in
            let producer = layers[i], consumer = layers[i + 1]
            let (rows, cols) = (consumer.outFeatures, consumer.inFeatures)
            var score = [Double](repeating: 0, count: cols)
            consumer.weight.value.withUnsafePointer { w in
                for r in 0..<rows { for c in 0..<cols { score[c] += Double(abs(w[r * cols + c])) } }
            }
            let order = score.indices.sorted { score[$0] != score[$1] ? score[$0] > score[$1] : $0 < $1 }
            let index = order.map { Int32($0) }
            producer.weight.value = producer.weight.value.indexSelect(axis: 0, index)
            if let b = producer.bias { b.value = b.value.indexSelect(axis: 0, index) }
            consumer.weight.value = consumer.weight.value.indexSelect(axis: 1, index)
            return order
        }
    }
}
