import SculptCore
import SculptNN
import SculptIO

/// Draws initial weights, or gives zeros when a checkpoint will overwrite them anyway.
public struct WeightInitializer {
    public var rng: SeededRNG
    public let random: Bool

    public init(seed: UInt64, random: Bool = true) {
        rng = SeededRNG(seed: seed)
        self.random = random
    }

    public mutating func normal(_ shape: [Int], std: Float) -> Tensor {
        random ? Tensor.randomNormal(shape, std: std, using: &rng) : Tensor.zeros(shape)
    }

    /// An independent generator for a sub-module (dropout streams).
    public mutating func split() -> SeededRNG { rng.split() }
}

extension TokenizedBatch {
    /// A batch from ids alone: every position attended, token type 0.
    public init(batchSize: Int, sequenceLength: Int, inputIds: [Int32], attentionMask: [Int32]? = nil) {
        let n = batchSize * sequenceLength
        precondition(inputIds.count == n, "TokenizedBatch: \(inputIds.count) ids for [\(batchSize), \(sequenceLength)]")
        self.init(batchSize: batchSize, sequenceLength: sequenceLength, inputIds: inputIds,
                  attentionMask: attentionMask ?? [Int32](repeating: 1, count: n), tokenTypeIds: [Int32](repeating: 0, count: n))
    }

    /// The attention mask as a float tensor [batch, sequence].
    public var maskTensor: Tensor { Tensor(shape: [batchSize, sequenceLength], data: attentionMask.map(Float.init)) }
}

/// word + position + token-type embeddings, then LayerNorm and dropout.
public final class BertEmbeddings: Module {
    public var training = true
    public let wordEmbeddings: Embedding
    public let positionEmbeddings: Embedding
    public let tokenTypeEmbeddings: Embedding
    public let layerNorm: LayerNorm
    public let dropout: Dropout

    init(_ c: BertConfig, rng: inout WeightInitializer) {
        let std = Float(c.initializerRange)
        wordEmbeddings = Embedding(weight: rng.normal([c.vocabSize, c.hiddenSize], std: std))
        positionEmbeddings = Embedding(weight: rng.normal([c.maxPositionEmbeddings, c.hiddenSize], std: std))
        tokenTypeEmbeddings = Embedding(weight: rng.normal([c.typeVocabSize, c.hiddenSize], std: std))
        layerNorm = LayerNorm(c.hiddenSize, eps: Float(c.layerNormEps))
        dropout = Dropout(p: Float(c.hiddenDropoutProb), rng: rng.split())
    }

    public var children: [(String, any Module)] {
        [("word_embeddings", wordEmbeddings), ("position_embeddings", positionEmbeddings),
         ("token_type_embeddings", tokenTypeEmbeddings), ("LayerNorm", layerNorm), ("dropout", dropout)]
    }

    public func callAsFunction(_ batch: TokenizedBatch) -> Variable {
        let shape = [batch.batchSize, batch.sequenceLength]
        let positions = (0..<batch.sequenceLength).map(Int32.init)
        let words = wordEmbeddings(batch.inputIds, shape: shape)
        let pos = positionEmbeddings(positions, shape: [1, batch.sequenceLength])
        let types = tokenTypeEmbeddings(batch.tokenTypeIds, shape: shape)
        return dropout(layerNorm(words + pos + types))
    }
}

/// Multi-head self-attention (`attention.self`): query/key/value projections.
public final class BertSelfAttention: Module {
    public var training = true
    public let query: Linear, key: Linear, value: Linear
    public let dropout: Dropout
    public let headDim: Int

    init(hidden: Int, heads: Int, headDim: Int, dropoutProb: Float, rng: inout WeightInitializer, std: Float) {
        func projection() -> Linear {
            Linear(weight: rng.normal([heads * headDim, hidden], std: std), bias: Tensor.zeros([heads * headDim]))
        }
        query = projection(); key = projection(); value = projection()
        dropout = Dropout(p: dropoutProb, rng: rng.split())
        self.headDim = headDim
    }

    public var heads: Int { query.outFeatures / headDim }
    /// Heads the forward pass uses now (leading heads when a sub-network is active).
    public var activeHeads: Int { query.activeShape.out / headDim }

    public var children: [(String, any Module)] { [("query", query), ("key", key), ("value", value), ("dropout", dropout)] }

    /// x: [B·S, H] → context [B·S, heads·headDim].
    func callAsFunction(_ x: Variable, batch: Int, sequence: Int, keyMask: Tensor?) -> Variable {
        let h = activeHeads
        if h == 0 { return Variable(Tensor.zeros([batch * sequence, 0])) }
        // One GEMM for query, key and value by their stacked weights (when the projections are
        // plain); the fused attention then reads each head in place. With fewer token rows than
        // hidden units (batch-1 inference) stacking would copy more weight than the three
        // outputs are worth, so the projections run separately and their outputs are joined.
        // s2ft's row blocks stack the same way: the stacked W is a constant with the blocks
        // written in, and only the blocks get gradients; so do LoRA adapters (below).
        let projections = [query, key, value]
        let stacked = batch * sequence >= query.activeShape.in
        /// The three biases stacked like the weights (nil unless all three have one).
        func stackedBias(_ biases: [Variable?]) -> Variable? {
            biases.allSatisfy { $0 != nil } ? concat(biases.map { $0! }, axis: 0) : nil
        }
        let qkv: Variable
        if projections.allSatisfy({ $0.isPlain }) && stacked {
            let parts = projections.map { $0.activeParameters() }
            let w = concat(parts.map(\.weight), axis: 0)
            qkv = linear(x, weight: w, bias: stackedBias(parts.map(\.bias)))
        } else if stacked, projections.allSatisfy(\.stacksByRows) {
            var blocks: [(Variable, WeightBlock)] = [], offset = 0
            for p in projections {
                if let s = p.split { for (t, r) in zip(s.trainables, s.ranges) { blocks.append((t, WeightBlock(.rows, offset: offset + r.lowerBound))) } }
                offset += p.outFeatures
            }
            qkv = matmulTransposedWithTrainableBlocks(x, weight: Tensor.concat(projections.map(\.weight.value), axis: 0), blocks: blocks,
                                                      bias: stackedBias(projections.map(\.bias)))
        } else if stacked, projections.allSatisfy(\.stacksWithLoRA) {
            // LoRA (PEFT's default targets query and value): the base projections stacked as
            // above, each adapter's B·hidden accumulated into its own columns of the output.
            var updates: [ColumnUpdate] = [], offset = 0
            for p in projections {
                if let l = p.lora, !l.merged { updates.append(ColumnUpdate(hidden: l.hidden(x, training: p.training), up: l.b, offset: offset)) }
                offset += p.outFeatures
            }
            qkv = linear(x, weight: concat(projections.map(\.weight), axis: 0), bias: stackedBias(projections.map(\.bias)), columnUpdates: updates)
        } else {
            qkv = concat(projections.map { $0(x) }, axis: 1)
        }
        let shape = AttentionShape(batch: batch, sequence: sequence, heads: h, headDim: headDim)
        return fusedSelfAttention(qkv, shape: shape, keyMask: keyMask, dropout: training ? dropout.p : 0, rng: &dropout.rng)
    }
}

/// A dense projection followed by dropout, a residual connection and LayerNorm
/// (`attention.output` and `output` in HF's BERT).
public final class BertResidualOutput: Module {
    public var training = true
    public let dense: Linear
    public let layerNorm: LayerNorm
    public let dropout: Dropout

    init(inFeatures: Int, hidden: Int, eps: Float, dropoutProb: Float, rng: inout WeightInitializer, std: Float) {
        dense = Linear(weight: rng.normal([hidden, inFeatures], std: std), bias: Tensor.zeros([hidden]))
        layerNorm = LayerNorm(hidden, eps: eps)
        dropout = Dropout(p: dropoutProb, rng: rng.split())
    }

    public var children: [(String, any Module)] { [("dense", dense), ("LayerNorm", layerNorm), ("dropout", dropout)] }

    func callAsFunction(_ x: Variable, residual: Variable) -> Variable {
        layerNorm(dropout(dense(x)) + residual)
    }
}

public final class BertAttention: Module {
    public var training = true
    public let selfAttention: BertSelfAttention
    public let output: BertResidualOutput

    init(_ selfAttention: BertSelfAttention, _ output: BertResidualOutput) {
        self.selfAttention = selfAttention
        self.output = output
    }

    public var children: [(String, any Module)] { [("self", selfAttention), ("output", output)] }
}

/// The FFN's first projection and activation (`intermediate`).
public final class BertIntermediate: Module {
    public var training = true
    public let dense: Linear
    public let activation: UnaryFunction

    init(dense: Linear, activation: UnaryFunction) {
        self.dense = dense
        self.activation = activation
    }

    public var children: [(String, any Module)] { [("dense", dense)] }
    func callAsFunction(_ x: Variable) -> Variable { dense(x).applying(activation) }
}

/// One transformer block (post-LN, as BERT).
public final class BertLayer: Module {
    public var training = true
    public let attention: BertAttention
    public let intermediate: BertIntermediate
    public let output: BertResidualOutput

    init(_ c: BertConfig, layer: Int, rng: inout WeightInitializer) throws {
        let std = Float(c.initializerRange), eps = Float(c.layerNormEps)
        let heads = c.numHeads(layer: layer), ffn = c.intermediateSize(layer: layer)
        let sa = BertSelfAttention(hidden: c.hiddenSize, heads: heads, headDim: c.headDim, dropoutProb: Float(c.attentionProbsDropoutProb), rng: &rng, std: std)
        attention = BertAttention(sa, BertResidualOutput(inFeatures: heads * c.headDim, hidden: c.hiddenSize, eps: eps,
                                                        dropoutProb: Float(c.hiddenDropoutProb), rng: &rng, std: std))
        intermediate = BertIntermediate(
            dense: Linear(weight: rng.normal([ffn, c.hiddenSize], std: std), bias: Tensor.zeros([ffn])),
            activation: try BertModel.activation(named: c.hiddenAct))
        output = BertResidualOutput(inFeatures: ffn, hidden: c.hiddenSize, eps: eps, dropoutProb: Float(c.hiddenDropoutProb), rng: &rng, std: std)
    }

    public var children: [(String, any Module)] { [("attention", attention), ("intermediate", intermediate), ("output", output)] }

    /// x: [B·S, H] → [B·S, H].
    func callAsFunction(_ x: Variable, batch: Int, sequence: Int, keyMask: Tensor?) -> Variable {
        var h = x
        if attention.selfAttention.activeHeads > 0 {
            let context = attention.selfAttention(x, batch: batch, sequence: sequence, keyMask: keyMask)
            h = attention.output(context, residual: x)
        }
        if intermediate.dense.activeShape.out > 0 {
            h = output(intermediate(h), residual: h)
        }
        return h
    }
}

public final class BertEncoder: Module {
    public var training = true
    public let layers: [BertLayer]
    init(_ layers: [BertLayer]) { self.layers = layers }
    public var children: [(String, any Module)] { layers.enumerated().map { ("layer.\($0.offset)", $0.element as any Module) } }
}

public final class BertPooler: Module {
    public var training = true
    public let dense: Linear
    init(dense: Linear) { self.dense = dense }
    public var children: [(String, any Module)] { [("dense", dense)] }
}

/// BERT encoder with Hugging Face parameter names (`embeddings.*`, `encoder.layer.N.*`, `pooler.*`).
public final class BertModel: Module {
    public var training = true
    public let config: BertConfig
    public let embeddings: BertEmbeddings
    public let encoder: BertEncoder
    public let pooler: BertPooler?
    /// Elastic depth: when set, only the first `activeLayerCount` layers run.
    public var activeLayerCount: Int?

    /// A model with weights drawn as BERT initialises them (normal, std `initializer_range`),
    /// or with `randomWeights: false` left at zero for a checkpoint to fill (loading skips
    /// drawing ~23M random numbers).
    public init(config: BertConfig, withPooler: Bool = true, seed: UInt64 = 0, randomWeights: Bool = true) throws {
        try config.validate()
        var rng = WeightInitializer(seed: seed, random: randomWeights)
        self.config = config
        embeddings = BertEmbeddings(config, rng: &rng)
        encoder = BertEncoder(try (0..<config.numHiddenLayers).map { try BertLayer(config, layer: $0, rng: &rng) })
        pooler = withPooler ? BertPooler(dense: Linear(weight: rng.normal([config.hiddenSize, config.hiddenSize], std: Float(config.initializerRange)), bias: Tensor.zeros([config.hiddenSize]))) : nil
    }

    public var children: [(String, any Module)] {
        var c: [(String, any Module)] = [("embeddings", embeddings), ("encoder", encoder)]
        if let p = pooler { c.append(("pooler", p)) }
        return c
    }

    static func activation(named name: String) throws -> UnaryFunction {
        switch name {
        case "gelu": return .geluErf
        case "gelu_new", "gelu_pytorch_tanh": return .geluTanh
        case "relu": return .relu
        default: throw ModelError.unsupported("hidden_act \"\(name)\"")
        }
    }

    /// The last hidden state, [B, S, H].
    public func callAsFunction(_ batch: TokenizedBatch) -> Variable {
        let b = batch.batchSize, s = batch.sequenceLength
        let keyMask = batch.attentionMask.allSatisfy({ $0 == 1 }) ? nil : batch.maskTensor
        var h = embeddings(batch).reshaped([b * s, config.hiddenSize])
        for layer in encoder.layers.prefix(activeLayerCount ?? encoder.layers.count) {
            h = layer(h, batch: b, sequence: s, keyMask: keyMask)
        }
        return h.reshaped([b, s, config.hiddenSize])
    }

    /// tanh(dense(hidden[:, 0])), BERT's pooled output.
    public func pooled(_ hidden: Variable) -> Variable {
        guard let p = pooler else { preconditionFailure("BertModel.pooled: this model has no pooler") }
        let first = hidden.slice(axis: 1, 0..<1).reshaped([hidden.shape[0], hidden.shape[2]])
        return p.dense(first).tanh()
    }
}

/// Attention-masked mean over the sequence: hidden [B, S, H], mask [B, S] → [B, H].
public func maskedMeanPool(_ hidden: Variable, mask: Tensor) -> Variable {
    let b = hidden.shape[0], s = hidden.shape[1]
    let m = mask.reshaped([b, s, 1])
    let counts = mask.sum(axes: [1], keepDims: true)                      // [B, 1]
    let inverse = Tensor(shape: counts.shape, data: counts.scalars.map { 1 / Swift.max($0, 1e-9) })
    return (hidden * Variable(m)).sum(axes: [1]) * Variable(inverse)
}

/// Row-wise L2 normalisation, as `torch.nn.functional.normalize(x, p=2, dim=1)` (eps 1e-12).
public func l2Normalize(_ x: Tensor) -> Tensor {
    let n = x.shape.last ?? 1
    let rows = x.count / Swift.max(n, 1)
    var out = x
    out.withUnsafeMutablePointer { p in
        for r in 0..<rows {
            var s: Float = 0
            for i in 0..<n { s += p[r * n + i] * p[r * n + i] }
            let inv = 1 / Swift.max(s.squareRoot(), 1e-12)
            for i in 0..<n { p[r * n + i] *= inv }
        }
    }
    return out
}

public enum ModelError: Error, CustomStringConvertible {
    case unsupported(String)
    case missingWeights(file: String, names: [String])
    case badWeights(file: String, message: String)

    public var description: String {
        switch self {
        case .unsupported(let what): return "unsupported model setting: \(what)"
        case .missingWeights(let file, let names):
            return "\(file): missing \(names.count) tensor(s): \(names.prefix(4).joined(separator: ", "))\(names.count > 4 ? ", …" : "")"
        case .badWeights(let file, let message): return "\(file): \(message)"
        }
    }
}
