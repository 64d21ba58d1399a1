import Foundation
import SculptSearch

/// `BertSearchSpace` as the generic search's `SearchSpace`: dimensions `layers`, `heads.i`
/// and `ffn.i` (i < maxLayers), where `heads.i`/`ffn.i` are active when layers > i. The order
/// and the blanking are those of `BertSearchSpace.encode`, so both encodings are the same
/// integer vector and an encoding read from the store decodes with either.
extension BertSearchSpace {
    public func searchSpace(context: String? = nil) -> SearchSpace {
        let minLayers = layerChoices.first ?? 1
        // Layers every sub-network has need no condition; the rest depend on the depth.
        func when(_ i: Int) -> SculptSearch.Dimension.Condition? { i + 1 > minLayers ? .init(dimension: "layers", atLeast: i + 1) : nil }
        var dims = [SculptSearch.Dimension(name: "layers", choices: layerChoices)]
        dims += (0..<maxLayers).map { SculptSearch.Dimension(name: "heads.\($0)", choices: headChoices, activeWhen: when($0)) }
        dims += (0..<maxLayers).map { SculptSearch.Dimension(name: "ffn.\($0)", choices: ffnChoices, activeWhen: when($0)) }
        // Force-try is safe: distinct names, non-empty choices, dependencies on the first dimension.
        return try! SearchSpace(dimensions: dims, context: context)
    }

    /// The BERT space a generic space describes (e.g. one read back from a store), or nil when
    /// it is not a BERT space.
    public init?(searchSpace s: SearchSpace) {
        guard let first = s.dimensions.first, first.name == "layers", (s.count - 1) % 2 == 0 else { return nil }
        let l = (s.count - 1) / 2
        let heads = s.dimensions[1...l], ffn = s.dimensions[(l + 1)...]
        guard l > 0, heads.enumerated().allSatisfy({ $0.element.name == "heads.\($0.offset)" }),
              ffn.enumerated().allSatisfy({ $0.element.name == "ffn.\($0.offset)" }),
              Set(heads.map(\.choices)).count == 1, Set(ffn.map(\.choices)).count == 1,
              (first.choices.max() ?? 0) <= l else { return nil }
        self.init(maxLayers: l, layerChoices: first.choices, headChoices: heads.first!.choices, ffnChoices: ffn.first!.choices)
    }

    /// The sub-network of a generic encoding, checked against the space first so an encoding
    /// from elsewhere fails with a message naming the dimension.
    public func subnet(fromSearchEncoding e: [Int]) throws -> BertSubnet {
        try searchSpace().check(e)
        return try decode(e)
    }
}
