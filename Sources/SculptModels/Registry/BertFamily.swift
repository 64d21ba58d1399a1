import Foundation
import SculptIO

/// BERT encoders (MiniLM and the like) in Hugging Face directories.
public struct BertFamily: ModelFamily {
    public init() {}
    public var name: String { "bert" }
    public var tasks: Set<ModelTask> { [.sequenceClassification, .embeddings] }

    /// A directory whose config.json is a BERT config (`model_type` bert, or none).
    public func recognizes(_ source: ModelSource) -> Bool {
        source.format == .directory && (source.modelType == nil || source.modelType == "bert")
            && FileManager.default.fileExists(atPath: source.url.appendingPathComponent("config.json").path)
    }

    public func describe(_ source: ModelSource, contextLength: Int) throws -> [ModelProperty] {
        let i = try ModelInfo.describe(directory: source.url, sequenceLength: contextLength)
        return [
            ModelProperty("architecture", "architecture", .string(i.architecture)),
            ModelProperty("layers", "layers", .int(i.layers)),
            ModelProperty("hidden_size", "hidden size", .int(i.hiddenSize)),
            ModelProperty("heads_per_layer", "heads per layer", .ints(i.headsPerLayer)),
            ModelProperty("intermediate_sizes", "FFN width", .ints(i.intermediateSizes)),
            ModelProperty("vocab_size", "vocabulary", .int(i.vocabSize)),
            ModelProperty("max_positions", "max positions", .int(i.maxPositions)),
            ModelProperty("total_parameters", "parameters", .int(i.totalParameters), display: formatCount(i.totalParameters)),
            ModelProperty("embedding_parameters", "  embedding", .int(i.embeddingParameters), display: formatCount(i.embeddingParameters)),
            ModelProperty("non_embedding_parameters", "  non-embedding", .int(i.nonEmbeddingParameters), display: formatCount(i.nonEmbeddingParameters)),
            ModelProperty("macs_per_token", "MACs per token (seq \(i.sequenceLength))", .int(i.macsPerToken), display: formatCount(i.macsPerToken)),
            ModelProperty("sequence_length", "sequence length", .int(i.sequenceLength)),
            ModelProperty("file_bytes", "file size", .int(i.fileBytes), display: String(format: "%.1f MB", Double(i.fileBytes) / 1e6)),
        ]
    }

    public func tokenizer(_ source: ModelSource) throws -> any TextTokenizer {
        WordPieceTextTokenizer(tokenizer: try WordPieceTokenizer.load(modelDirectory: source.url), source: source.path)
    }
}

struct WordPieceTextTokenizer: TextTokenizer {
    let tokenizer: WordPieceTokenizer
    let source: String
    func encode(_ text: String, maxLength: Int?) throws -> [Int32] {
        try tokenizer.checkMaxLength(maxLength, source: source)
        return tokenizer.encode(text, maxLength: maxLength)
    }
    func encodeChat(_ messages: [ChatMessage], addGenerationPrompt: Bool) throws -> [Int32] {
        throw ModelError.badWeights(file: source, message: "a BERT encoder has no chat template (--chat is for decoders)")
    }
    func tokenText(_ id: Int32) -> String? { tokenizer.token(of: id) }
}

/// 22.71M, 196.6k or the plain number.
public func formatCount(_ n: Int) -> String {
    if n >= 1_000_000_000 { return String(format: "%.2fB", Double(n) / 1e9) }
    if n >= 1_000_000 { return String(format: "%.2fM", Double(n) / 1e6) }
    if n >= 10_000 { return String(format: "%.1fk", Double(n) / 1e3) }
    return "\(n)"
}
