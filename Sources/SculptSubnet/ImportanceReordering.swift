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
        func select(_ t: Tensor, _ axis: Int, _ order: [Int]) -> Tensor { t.indexSelect(axis: axis, order.map { Int32($0) }) }
        var orders: [[Int]] = []
        func group(producers: [(Conv2d, BatchNorm2d)], consumers: [Conv2d], linear: Linear? = nil) {
            let n = producers[0].1.channels
            var score = [Double](repeating: 0, count: n)
            for (_, bn) in producers { for i in 0..<n { score[i] += Double(abs(bn.weight.value[flat: i])) } }
            let order = score.indices.sorted { score[$0] != score[$1] ? score[$0] > score[$1] : $0 < $1 }
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
        group(producers: [(stemConv, stemNorm)], consumers: entryConvs(stages[0][0]))
        for blocks in stages { for b in blocks { group(producers: [(b.conv1, b.bn1)], consumers: [b.conv2]) } }
        for (s, blocks) in stages.enumerated() {
            let producers = blocks.map { ($0.conv2, $0.bn2) } + blocks.compactMap(shortcutPair)
            var consumers = blocks.dropFirst().map(\.conv1)
            if s + 1 < stages.count { consumers += entryConvs(stages[s + 1][0]) }
            group(producers: producers, consumers: consumers, linear: s + 1 == stages.count ? classifier : nil)
        }
        return orders
    }
}
