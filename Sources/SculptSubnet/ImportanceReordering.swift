import SculptCore
import SculptModels

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
