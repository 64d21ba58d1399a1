import Foundation
import SculptCore
import SculptNN
import SculptIO
import SculptModels

extension BertModel {
    /// Makes the forward pass use `subnet`'s leading slices of the shared weights (nil: the
    /// whole model). Gradients flow into those slices only, so elastic training works on it.
    public func activate(_ subnet: BertSubnet?) {
        activeLayerCount = subnet?.layers
        let d = config.headDim
        for (i, layer) in encoder.layers.enumerated() {
            let inSubnet = subnet.map { i < $0.layers } ?? false
            let heads = inSubnet ? subnet!.heads[i] : nil
            let ffn = inSubnet ? subnet!.ffn[i] : nil
            let sa = layer.attention.selfAttention
            for lin in [sa.query, sa.key, sa.value] { lin.activeOutFeatures = heads.map { $0 * d } }
            layer.attention.output.dense.activeInFeatures = heads.map { $0 * d }
            layer.intermediate.dense.activeOutFeatures = ffn
            layer.output.dense.activeInFeatures = ffn
        }
    }

    /// Copies `subnet` out as a dense, smaller model. The config records per-layer sizes; when
    /// every layer keeps all heads and the same FFN width it is a standard HF BERT config.
    public func extract(_ subnet: BertSubnet) throws -> BertModel {
        var c = config
        c.numHiddenLayers = subnet.layers
        let uniformFFN = Set(subnet.ffn).count <= 1
        let allHeads = subnet.heads.allSatisfy { $0 == config.numAttentionHeads }
        c.intermediateSize = subnet.ffn.max() ?? config.intermediateSize
        c.layerIntermediateSizes = uniformFFN ? nil : subnet.ffn
        c.layerNumHeads = allHeads ? nil : subnet.heads
        let small = try BertModel(config: c, withPooler: pooler != nil, randomWeights: false)
        var values: [String: Tensor] = [:]
        let full = stateDict()
        for (name, _) in small.namedParameters() {
            guard var t = full[name] else { continue }
            let target = small.namedParameters().first { $0.name == name }!.parameter.value.shape
            // Leading slices along every dimension where the sub-network is smaller.
            for axis in 0..<t.rank where t.shape[axis] > target[axis] { t = t.slice(axis: axis, 0..<target[axis]) }
            values[name] = t
        }
        let report = try small.update(from: values)
        precondition(report.missing.isEmpty, "extract: no source for \(report.missing)")
        return small
    }
}

/// The result of checking an extracted model against the super-network.
public struct ExtractionCheck: Sendable, Codable {
    public let maxAbsDifference: Float
    public let tokens: Int
    public var passed: Bool { maxAbsDifference <= 1e-4 }
}

/// Runs the super-network with `subnet` active and the extracted model on the same batch and
/// returns the largest difference of their last hidden states (padding positions excluded).
public func checkExtraction(superNetwork: BertModel, subnet: BertSubnet, extracted: BertModel, batch: TokenizedBatch) -> ExtractionCheck {
    superNetwork.eval()
    extracted.eval()
    superNetwork.activate(subnet)
    defer { superNetwork.activate(nil) }
    let a = withoutGradients { superNetwork(batch) }.value
    let b = withoutGradients { extracted(batch) }.value
    let h = a.shape[2]
    var worst: Float = 0
    for (i, m) in batch.attentionMask.enumerated() where m != 0 {
        for j in 0..<h { worst = max(worst, abs(a[flat: i * h + j] - b[flat: i * h + j])) }
    }
    return ExtractionCheck(maxAbsDifference: worst, tokens: batch.attentionMask.filter { $0 != 0 }.count)
}
