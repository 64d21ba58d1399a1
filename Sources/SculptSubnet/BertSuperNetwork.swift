import Foundation
import SculptCore
import SculptNN
import SculptIO
import SculptModels
import SculptSearch
import SculptTune

/// Cycles 0, 1, …, count − 1, 0, … (a class so probe closures can share and advance it).
final class RoundRobin {
    let count: Int
    var i = 0
    init(count: Int) { self.count = max(1, count) }
    func advance() -> Int { defer { i = (i + 1) % count }; return i }
}

/// A fine-tuned BERT classifier as a super-network of the standard space (depth, heads and
/// FFN width per layer as leading slices of its weights).
///
/// A run trained with `full` (or any non-elastic method) was never taught to work sliced, so
/// its sub-networks lose quality quickly; importance reordering (on by default for those runs)
/// at least puts the heaviest heads and channels in the leading slices. Elastic runs are
/// trained for this and are used as they are.
public final class BertSuperNetwork: SuperNetwork {
    public let classifier: BertClassifier
    public let space: BertSearchSpace
    public let padId: Int32
    public let identity: String
    public var kind: String { "bert" }
    public let searchSpace: SearchSpace

    /// `space`: the run's recorded space (nil: the standard one).
    public init(classifier: BertClassifier, padId: Int32, reorder: ImportanceCriterion?, weightsDirectory: URL? = nil, space: BertSearchSpace? = nil) {
        self.classifier = classifier
        self.padId = padId
        if let r = reorder { classifier.bert.reorderByImportance(r) }
        self.space = space ?? BertSearchSpace.standard(for: classifier.bert.config)
        searchSpace = self.space.searchSpace()
        classifier.eval()
        var parts = ["bert", "reorder=\(reorder?.rawValue ?? "none")"]
        if let dir = weightsDirectory {
            parts += ["model.safetensors", "head.safetensors"].map { fileStamp(dir.appendingPathComponent($0)) }
        }
        identity = parts.joined(separator: " ")
    }

    var bert: BertModel { classifier.bert }
    var config: BertConfig { bert.config }

    public func subnet(_ encoding: [Int]) throws -> BertSubnet { try space.subnet(fromSearchEncoding: encoding) }

    public func subnetJSON(_ encoding: [Int]) throws -> String { try subnet(encoding).json }

    public func activate(_ encoding: [Int]?) throws { bert.activate(try encoding.map(subnet)) }

    public func macs(_ encoding: [Int], setting: LatencySetting) throws -> Double {
        let s = try subnet(encoding)
        let perToken = BertCost.macsPerToken(config: config, heads: s.heads, intermediate: s.ffn, sequenceLength: setting.sequence)
        return Double(setting.sequence * perToken + config.hiddenSize * classifier.spec.classes)
    }

    public func params(_ encoding: [Int]) throws -> Double {
        let s = try subnet(encoding)
        let h = config.hiddenSize, d = config.headDim
        // Everything outside the layers (embeddings, pooler, head) is kept whole.
        let outside = classifier.parameterCount - bert.encoder.parameterCount
        var total = outside
        for (heads, ffn) in zip(s.heads, s.ffn) {
            let a: Int = heads * d
            let attention: Int = 3 * (h * a + a) + (a * h + h) + 2 * h   // query/key/value, output, LayerNorm
            let feedForward: Int = (h * ffn + ffn) + (ffn * h + h) + 2 * h  // FFN in, out, LayerNorm
            total += attention + feedForward
        }
        return Double(total)
    }

    public func evaluate(_ encoding: [Int], on data: ClassificationData, batchSize: Int) throws -> EvalResult {
        try activate(encoding)
        defer { bert.activate(nil) }
        return Evaluator.evaluate(classifier, on: data, batchSize: batchSize, padId: padId)
    }

    /// Random token ids of the setting's shape, every position attended (the latency of a
    /// padded batch is the latency of its full shape).
    func tokens(_ setting: LatencySetting) -> TokenizedBatch {
        var rng = SeededRNG(seed: 17)
        let n = setting.batch * setting.sequence
        return TokenizedBatch(batchSize: setting.batch, sequenceLength: setting.sequence,
                              inputIds: (0..<n).map { _ in Int32(rng.next() % UInt64(config.vocabSize)) })
    }

    func checkSequence(_ setting: LatencySetting) throws {
        guard setting.sequence <= config.maxPositionEmbeddings else {
            throw SuperNetworkError("sequence length \(setting.sequence) exceeds the model's \(config.maxPositionEmbeddings) positions")
        }
    }

    public func forwardProbe(_ encoding: [Int], setting: LatencySetting) throws -> () -> Void {
        try checkSequence(setting)
        let s = try subnet(encoding)
        let input = BatchInput.tokens(tokens(setting))
        return { [classifier] in
            // Activation inside the probe, so probes of different sub-networks can interleave.
            classifier.bert.activate(s)
            _ = withoutGradients { classifier.logits(input) }
            classifier.bert.activate(nil)
        }
    }

    public func latencyParts(_ encoding: [Int]) throws -> [String] {
        let s = try subnet(encoding)
        return ["embeddings"] + zip(s.heads, s.ffn).flatMap { ["attention.\($0)", "ffn.\($1)"] } + ["head"]
    }

    public var allLatencyParts: [String] {
        ["embeddings"] + space.headChoices.map { "attention.\($0)" } + space.ffnChoices.map { "ffn.\($0)" } + ["head"]
    }

    /// Parts: the embeddings; one layer's attention block with h heads (all layers have the
    /// same shape, so one entry serves every layer); one layer's FFN block of width f; the
    /// pooling and classification head.
    public func partProbe(_ part: String, setting: LatencySetting) throws -> () -> Void {
        try checkSequence(setting)
        let b = setting.batch, sq = setting.sequence, hsz = config.hiddenSize
        var rng = SeededRNG(seed: 23)
        let hidden = Variable(Tensor.randomNormal([b * sq, hsz], std: 1, using: &rng))
        // Each run takes the next layer, so a part's weights come from memory as they do in a
        // forward pass through many layers; timing one layer again and again keeps its weights
        // in cache and underestimated deep sub-networks by ~2× (batch 1 is memory-bound).
        let layers = bert.encoder.layers
        let next = RoundRobin(count: layers.count)
        let fullHeads = space.headChoices.last!, fullFFN = space.ffnChoices.last!
        let bertModel = bert
        if part == "embeddings" {
            let batch = tokens(setting)
            return { _ = withoutGradients { bertModel.embeddings(batch).reshaped([b * sq, hsz]) } }
        }
        if part == "head" {
            let mask = tokens(setting).maskTensor
            let hidden3 = Variable(hidden.value.reshaped([b, sq, hsz]))
            let spec = classifier.spec, head = classifier.classifier
            return {
                _ = withoutGradients {
                    let features = spec.pooling == "cls" ? hidden3.slice(axis: 1, 0..<1).reshaped([b, hsz]) : maskedMeanPool(hidden3, mask: mask)
                    return head(features)
                }
            }
        }
        if part.hasPrefix("attention."), let h = Int(part.dropFirst("attention.".count)), space.headChoices.contains(h) {
            let s = BertSubnet(layers: layers.count, heads: Array(repeating: h, count: layers.count), ffn: Array(repeating: fullFFN, count: layers.count))
            return {
                bertModel.activate(s)
                _ = withoutGradients { layers[next.advance()].attentionBlock(hidden, batch: b, sequence: sq, keyMask: nil) }
                bertModel.activate(nil)
            }
        }
        if part.hasPrefix("ffn."), let f = Int(part.dropFirst("ffn.".count)), space.ffnChoices.contains(f) {
            let s = BertSubnet(layers: layers.count, heads: Array(repeating: fullHeads, count: layers.count), ffn: Array(repeating: f, count: layers.count))
            return {
                bertModel.activate(s)
                _ = withoutGradients { layers[next.advance()].feedForwardBlock(hidden) }
                bertModel.activate(nil)
            }
        }
        throw SuperNetworkError("unknown latency-table part \"\(part)\" (known: \(allLatencyParts.joined(separator: ", ")))")
    }
}
