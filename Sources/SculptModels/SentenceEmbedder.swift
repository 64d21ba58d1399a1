import Foundation
import SculptCore
import SculptNN
import SculptIO

/// Sentence embeddings as sentence-transformers computes them for all-MiniLM-L6-v2:
/// attention-masked mean of the last hidden state, L2-normalised.
public struct SentenceEmbedder {
    public let model: BertModel
    public let tokenizer: WordPieceTokenizer
    public var maxLength: Int
    public var batchSize: Int

    public init(model: BertModel, tokenizer: WordPieceTokenizer, maxLength: Int? = nil, batchSize: Int = 32) {
        self.model = model
        self.tokenizer = tokenizer
        self.maxLength = min(maxLength ?? model.config.maxPositionEmbeddings, model.config.maxPositionEmbeddings)
        self.batchSize = max(1, batchSize)
        model.eval()
    }

    /// Loads the model and tokenizer of a Hugging Face directory.
    public static func load(directory: URL, maxLength: Int? = nil, batchSize: Int = 32) throws -> SentenceEmbedder {
        let (model, _) = try BertModel.load(directory: directory)
        let tokenizer = try WordPieceTokenizer.load(modelDirectory: directory, checkedAgainst: model.config)
        try tokenizer.checkMaxLength(maxLength, source: directory.path)
        return SentenceEmbedder(model: model, tokenizer: tokenizer, maxLength: maxLength, batchSize: batchSize)
    }

    public struct Output: Sendable {
        /// [N, hidden], unit rows.
        public var sentenceEmbeddings: Tensor
        /// [N, S, hidden] and [N, S] padded to the longest input (only when requested).
        public var lastHiddenState: Tensor?
        public var attentionMask: Tensor?
    }

    /// Embeds every text, `batchSize` at a time. With `includeHidden` every sequence is
    /// padded to the longest of all texts so the hidden states stack into one tensor.
    public func embed(_ texts: [String], includeHidden: Bool = false, progress: ((Int, Int) -> Void)? = nil) -> Output {
        let hidden = model.config.hiddenSize
        let all = texts.map { tokenizer.encode($0, maxLength: maxLength) }
        let globalLength = all.map(\.count).max() ?? 0
        var embeddings = Tensor(shape: [texts.count, hidden])
        var states = includeHidden ? Tensor(shape: [texts.count, globalLength, hidden]) : nil
        var masks = includeHidden ? Tensor(shape: [texts.count, globalLength]) : nil
        var start = 0
        while start < texts.count {
            let rows = Array(all[start..<min(texts.count, start + batchSize)])
            let length = includeHidden ? globalLength : (rows.map(\.count).max() ?? 0)
            let batch = Self.pad(rows, to: length, padId: tokenizer.padId)
            let out = withoutGradients { model(batch) }
            let pooled = l2Normalize(withoutGradients { maskedMeanPool(out, mask: batch.maskTensor) }.value)
            embeddings.withUnsafeMutablePointer { dst in
                (dst + start * hidden).update(from: pooled.storage.pointer, count: pooled.count)
            }
            if includeHidden {
                states!.withUnsafeMutablePointer { dst in
                    (dst + start * length * hidden).update(from: out.value.storage.pointer, count: out.value.count)
                }
                let m = batch.maskTensor
                masks!.withUnsafeMutablePointer { dst in (dst + start * length).update(from: m.storage.pointer, count: m.count) }
            }
            start += rows.count
            progress?(start, texts.count)
        }
        return Output(sentenceEmbeddings: embeddings, lastHiddenState: states, attentionMask: masks)
    }

    /// Pads encoded sequences to one length with an attention mask.
    public static func pad(_ rows: [[Int32]], to length: Int, padId: Int32) -> TokenizedBatch {
        var ids = [Int32](), mask = [Int32]()
        ids.reserveCapacity(rows.count * length)
        for r in rows {
            ids += r + [Int32](repeating: padId, count: length - r.count)
            mask += [Int32](repeating: 1, count: r.count) + [Int32](repeating: 0, count: length - r.count)
        }
        return TokenizedBatch(batchSize: rows.count, sequenceLength: length, inputIds: ids, attentionMask: mask)
    }
}
