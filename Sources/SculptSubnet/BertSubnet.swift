import Foundation
import SculptCore
import SculptNN
import SculptIO
import SculptModels

/// A BERT sub-network: the first `layers` layers, and in each the leading `heads[i]` attention
/// heads and leading `ffn[i]` FFN channels of the shared weights. Its JSON form is
/// `{"layers": 4, "heads": [12, 12, 8, 8], "ffn": [1536, 1152, 768, 768]}`.
public struct BertSubnet: Codable, Sendable, Equatable, Hashable, CompactJSON {
    public var layers: Int
    public var heads: [Int]
    public var ffn: [Int]

    public init(layers: Int, heads: [Int], ffn: [Int]) {
        self.layers = layers
        self.heads = heads
        self.ffn = ffn
    }

}

/// The elastic dimensions of a BERT super-network and their choices.
public struct BertSearchSpace: Codable, Sendable, Equatable {
    public var maxLayers: Int
    public var layerChoices: [Int]
    public var headChoices: [Int]
    public var ffnChoices: [Int]

    public init(maxLayers: Int, layerChoices: [Int], headChoices: [Int], ffnChoices: [Int]) {
        self.maxLayers = maxLayers
        self.layerChoices = layerChoices.sorted()
        self.headChoices = headChoices.sorted()
        self.ffnChoices = ffnChoices.sorted()
    }

    /// Depth from a third of the layers up, heads and FFN width in quarters of the full size.
    public static func standard(for config: BertConfig, widthFractions: [Double] = SubnetSpace.standardWidthFractions) -> BertSearchSpace {
        let l = config.numHiddenLayers, h = config.numAttentionHeads, f = config.intermediateSize
        let minLayers = max(1, l / 3)
        return BertSearchSpace(maxLayers: l, layerChoices: Array(minLayers...l),
                               headChoices: SubnetSpace.widthChoices(h, widthFractions),
                               ffnChoices: SubnetSpace.widthChoices(f, widthFractions))
    }

    public var largest: BertSubnet {
        BertSubnet(layers: layerChoices.last!, heads: Array(repeating: headChoices.last!, count: layerChoices.last!),
                   ffn: Array(repeating: ffnChoices.last!, count: layerChoices.last!))
    }

    public var smallest: BertSubnet {
        BertSubnet(layers: layerChoices.first!, heads: Array(repeating: headChoices.first!, count: layerChoices.first!),
                   ffn: Array(repeating: ffnChoices.first!, count: layerChoices.first!))
    }

    public func sample(using rng: inout SeededRNG) -> BertSubnet {
        let l = layerChoices[Int(rng.next() % UInt64(layerChoices.count))]
        return BertSubnet(layers: l,
                          heads: (0..<l).map { _ in headChoices[Int(rng.next() % UInt64(headChoices.count))] },
                          ffn: (0..<l).map { _ in ffnChoices[Int(rng.next() % UInt64(ffnChoices.count))] })
    }

    /// Checks every field against the space.
    public func validate(_ s: BertSubnet) throws {
        guard layerChoices.contains(s.layers) else {
            throw SubnetError(field: "layers", message: "\(s.layers) is not one of \(layerChoices)")
        }
        guard s.heads.count == s.layers else {
            throw SubnetError(field: "heads", message: "has \(s.heads.count) entries for \(s.layers) layers")
        }
        guard s.ffn.count == s.layers else {
            throw SubnetError(field: "ffn", message: "has \(s.ffn.count) entries for \(s.layers) layers")
        }
        for (i, h) in s.heads.enumerated() where !headChoices.contains(h) {
            throw SubnetError(field: "heads[\(i)]", message: "\(h) is not one of \(headChoices)")
        }
        for (i, f) in s.ffn.enumerated() where !ffnChoices.contains(f) {
            throw SubnetError(field: "ffn[\(i)]", message: "\(f) is not one of \(ffnChoices)")
        }
    }

    /// Parses a sub-network from JSON, rejecting unknown fields, then validates it.
    public func parse(_ text: String) throws -> BertSubnet {
        let obj = try SubnetJSONObject.parse(text, known: ["layers", "heads", "ffn"])
        guard let layers = obj["layers"] as? Int else { throw SubnetError(field: "layers", message: "missing or not an integer") }
        let s = BertSubnet(layers: layers, heads: try SubnetJSONObject.integers(obj, "heads", repeating: layers),
                           ffn: try SubnetJSONObject.integers(obj, "ffn", repeating: layers))
        try validate(s)
        return s
    }

    /// Integer encoding for search: [depth index, head index × maxLayers, FFN index × maxLayers],
    /// with slots of layers beyond the depth blanked to −1.
    public func encode(_ s: BertSubnet) -> [Int] {
        var e = [layerChoices.firstIndex(of: s.layers) ?? -1]
        e += (0..<maxLayers).map { $0 < s.layers ? headChoices.firstIndex(of: s.heads[$0]) ?? -1 : -1 }
        e += (0..<maxLayers).map { $0 < s.layers ? ffnChoices.firstIndex(of: s.ffn[$0]) ?? -1 : -1 }
        return e
    }

    public func decode(_ e: [Int]) throws -> BertSubnet {
        guard e.count == 1 + 2 * maxLayers, layerChoices.indices.contains(e[0]) else {
            throw SubnetError(field: "encoding", message: "\(e) does not fit this space")
        }
        let l = layerChoices[e[0]]
        func pick(_ choices: [Int], _ i: Int, _ field: String) throws -> Int {
            guard choices.indices.contains(i) else { throw SubnetError(field: field, message: "index \(i) out of range") }
            return choices[i]
        }
        return BertSubnet(layers: l, heads: try (0..<l).map { try pick(headChoices, e[1 + $0], "heads[\($0)]") },
                          ffn: try (0..<l).map { try pick(ffnChoices, e[1 + maxLayers + $0], "ffn[\($0)]") })
    }
}
