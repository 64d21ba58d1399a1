import Foundation
import SculptCore
import SculptNN
import SculptIO

/// Size and cost of a BERT model, as `sculpt info` reports it.
public struct ModelInfo: Codable, Sendable {
    public let architecture: String
    public let layers: Int
    public let hiddenSize: Int
    public let headsPerLayer: [Int]
    public let intermediateSizes: [Int]
    public let vocabSize: Int
    public let maxPositions: Int
    public let totalParameters: Int
    public let embeddingParameters: Int
    public let nonEmbeddingParameters: Int
    /// Multiply-accumulates per token of the encoder's projections and FFN, plus attention
    /// over `sequenceLength` tokens.
    public let macsPerToken: Int
    public let sequenceLength: Int
    public let fileBytes: Int

    enum CodingKeys: String, CodingKey {
        case architecture, layers
        case hiddenSize = "hidden_size", headsPerLayer = "heads_per_layer", intermediateSizes = "intermediate_sizes"
        case vocabSize = "vocab_size", maxPositions = "max_positions", totalParameters = "total_parameters"
        case embeddingParameters = "embedding_parameters", nonEmbeddingParameters = "non_embedding_parameters"
        case macsPerToken = "macs_per_token", sequenceLength = "sequence_length", fileBytes = "file_bytes"
    }

    public init(model: BertModel, fileBytes: Int, sequenceLength: Int = 128) {
        let c = model.config
        architecture = "BERT encoder"
        layers = c.numHiddenLayers
        hiddenSize = c.hiddenSize
        headsPerLayer = model.encoder.layers.map { $0.attention.selfAttention.heads }
        intermediateSizes = model.encoder.layers.map { $0.intermediate.dense.outFeatures }
        vocabSize = c.vocabSize
        maxPositions = c.maxPositionEmbeddings
        totalParameters = model.parameterCount
        embeddingParameters = model.embeddings.parameterCount
        nonEmbeddingParameters = totalParameters - embeddingParameters
        macsPerToken = BertCost.macsPerToken(config: c, heads: headsPerLayer, intermediate: intermediateSizes, sequenceLength: sequenceLength)
        self.sequenceLength = sequenceLength
        self.fileBytes = fileBytes
    }

    /// Loads a model directory and describes it.
    public static func describe(directory: URL, sequenceLength: Int = 128) throws -> ModelInfo {
        let (model, _) = try BertModel.load(directory: directory)
        let size = (try? FileManager.default.attributesOfItem(atPath: directory.appendingPathComponent("model.safetensors").path)[.size] as? Int) ?? 0
        return ModelInfo(model: model, fileBytes: size, sequenceLength: sequenceLength)
    }
}

/// Multiply-accumulate counts of BERT's encoder.
public enum BertCost {
    public static func macsPerToken(config c: BertConfig, heads: [Int], intermediate: [Int], sequenceLength: Int) -> Int {
        var total = 0
        for (h, f) in zip(heads, intermediate) {
            let a = h * c.headDim
            total += 4 * c.hiddenSize * a          // query, key, value, attention output
            total += 2 * c.hiddenSize * f          // FFN in and out
            total += 2 * sequenceLength * a        // scores and context
        }
        return total
    }
}
