import Foundation
import SculptCore
import SculptNN
import SculptIO

// A LLaMA-family decoder (LLaMA, Mistral, Qwen2, Qwen3) with transformers' parameter names:
// model.embed_tokens, model.layers.N.{self_attn.{q,k,v,o}_proj, self_attn.{q,k}_norm,
// mlp.{gate,up,down}_proj, input_layernorm, post_attention_layernorm}, model.norm, lm_head.
// The forward pass runs through the autodiff engine (batched GEMMs, fused causal attention);
// with KV caches it runs incrementally for generation.

/// Attention of one layer: projections, optional per-head q/k norms (Qwen3), rotary
/// positions and causal grouped-query attention.
public final class DecoderAttention: Module {
    public var training = true
    public let qProj: Linear, kProj: Linear, vProj: Linear, oProj: Linear
    public let qNorm: RMSNorm?, kNorm: RMSNorm?
    public let heads: Int, kvHeads: Int, headDim: Int
    /// Key-value heads a sub-network keeps (the leading groups; nil: all).
    public internal(set) var activeKVHeads: Int?

    init(_ c: DecoderConfig, rng: inout WeightInitializer) {
        let std = Float(c.initializerRange)
        func linear(_ out: Int, _ inp: Int, bias: Bool) -> Linear {
            Linear(weight: rng.normal([out, inp], std: std), bias: bias ? Tensor.zeros([out]) : nil)
        }
        heads = c.numAttentionHeads; kvHeads = c.numKeyValueHeads; headDim = c.headDim
        qProj = linear(heads * headDim, c.hiddenSize, bias: c.qkvBias)
        kProj = linear(kvHeads * headDim, c.hiddenSize, bias: c.qkvBias)
        vProj = linear(kvHeads * headDim, c.hiddenSize, bias: c.qkvBias)
        oProj = linear(c.hiddenSize, heads * headDim, bias: c.outputBias)
        qNorm = c.qkNorm ? RMSNorm(headDim, eps: Float(c.rmsNormEps)) : nil
        kNorm = c.qkNorm ? RMSNorm(headDim, eps: Float(c.rmsNormEps)) : nil
    }

    public var children: [(String, any Module)] {
        var c: [(String, any Module)] = [("q_proj", qProj), ("k_proj", kProj), ("v_proj", vProj), ("o_proj", oProj)]
        if let q = qNorm { c.append(("q_norm", q)) }
        if let k = kNorm { c.append(("k_norm", k)) }
        return c
    }

    /// x [B·S, hidden] → [B·S, hidden].
    func callAsFunction(_ x: Variable, step: DecoderStep, cache: KVCache?, recorder: DecoderLayerRecorder? = nil) -> Variable {
        let rows = step.batch * step.sequence
        let kvHeads = activeKVHeads ?? self.kvHeads, heads = kvHeads * (self.heads / self.kvHeads)
        var q = qProj(x), k = kProj(x)
        let v = vProj(x)
        if let n = qNorm { q = n(q.reshaped([rows * heads, headDim])).reshaped([rows, heads * headDim]) }
        if let n = kNorm { k = n(k.reshaped([rows * kvHeads, headDim])).reshaped([rows, kvHeads * headDim]) }
        q = rotary(q, table: step.rotary, positions: step.positions, heads: heads, headDim: headDim)
        k = rotary(k, table: step.rotary, positions: step.positions, heads: kvHeads, headDim: headDim)
        let context: Variable
        if let cache {
            cache.append(k: k.value, v: v.value, steps: step.sequence)
            context = Variable(cache.attend(q: q.value, heads: heads, steps: step.sequence, keyMask: step.keyMask))
        } else {
            let shape = GroupedAttentionShape(batch: step.batch, sequence: step.sequence, heads: heads, kvHeads: kvHeads, headDim: headDim)
            context = causalAttention(q: q, k: k, v: v, shape: shape, keyMask: step.keyMask, segmentStarts: step.segmentStarts)
        }
        if let r = recorder {
            r.recordContext(context.value, headDim: headDim)
            DecoderLayerRecorder.squareSums(context.value, into: &r.context)
        }
        return oProj(context)
    }
}

/// The gated MLP: down(silu(gate(x)) · up(x)).
public final class DecoderMLP: Module {
    public var training = true
    public let gateProj: Linear, upProj: Linear, downProj: Linear

    init(_ c: DecoderConfig, rng: inout WeightInitializer) {
        let std = Float(c.initializerRange)
        func linear(_ out: Int, _ inp: Int) -> Linear {
            Linear(weight: rng.normal([out, inp], std: std), bias: c.mlpBias ? Tensor.zeros([out]) : nil)
        }
        gateProj = linear(c.intermediateSize, c.hiddenSize)
        upProj = linear(c.intermediateSize, c.hiddenSize)
        downProj = linear(c.hiddenSize, c.intermediateSize)
    }

    public var children: [(String, any Module)] { [("gate_proj", gateProj), ("up_proj", upProj), ("down_proj", downProj)] }

    func callAsFunction(_ x: Variable) -> Variable { downProj(swiglu(gate: gateProj(x), up: upProj(x))) }
}

/// One pre-norm block: x + attn(norm(x)), then + mlp(norm(·)).
public final class DecoderLayer: Module {
    public var training = true
    public let selfAttention: DecoderAttention
    public let mlp: DecoderMLP
    public let inputLayernorm: RMSNorm, postAttentionLayernorm: RMSNorm
    /// Set while importance is measured: the forward pass records activations into it.
    var recorder: DecoderLayerRecorder?

    init(_ c: DecoderConfig, rng: inout WeightInitializer) {
        selfAttention = DecoderAttention(c, rng: &rng)
        mlp = DecoderMLP(c, rng: &rng)
        inputLayernorm = RMSNorm(c.hiddenSize, eps: Float(c.rmsNormEps))
        postAttentionLayernorm = RMSNorm(c.hiddenSize, eps: Float(c.rmsNormEps))
    }

    public var children: [(String, any Module)] {
        [("self_attn", selfAttention), ("mlp", mlp), ("input_layernorm", inputLayernorm), ("post_attention_layernorm", postAttentionLayernorm)]
    }

    /// The seven projection matrices with their names inside the layer.
    public var projections: [(name: String, linear: Linear)] {
        let a = selfAttention
        return [("self_attn.q_proj", a.qProj), ("self_attn.k_proj", a.kProj), ("self_attn.v_proj", a.vProj), ("self_attn.o_proj", a.oProj),
                ("mlp.gate_proj", mlp.gateProj), ("mlp.up_proj", mlp.upProj), ("mlp.down_proj", mlp.downProj)]
    }

    func callAsFunction(_ x: Variable, step: DecoderStep, cache: KVCache?) -> Variable {
        if let r = recorder { return recorded(x, step: step, cache: cache, into: r) }
        let h = x + selfAttention(inputLayernorm(x), step: step, cache: cache)
        return h + mlp(postAttentionLayernorm(h))
    }

    /// The layer under activation checkpointing. The re-run in the backward pass draws the
    /// same LoRA dropout masks: the adapters' generators are rewound to where the forward pass
    /// found them, and the re-run leaves them where the forward pass did.
    func checkpointed(_ x: Variable, step: DecoderStep) -> Variable {
        let adapters = loraLayers().compactMap(\.layer.lora)
        let before = adapters.map(\.rng)
        return SculptCore.checkpointed(x, parameters: trainableParameters().map(\.parameter), recompute: {
            for (a, r) in zip(adapters, before) { a.rng = r }
        }) { [unowned self] v in self(v, step: step, cache: nil) }
    }
}

/// The `model.` part: embeddings, layers, final norm.
public final class DecoderBody: Module {
    public var training = true
    public let embedTokens: Embedding
    public let layers: [DecoderLayer]
    public let norm: RMSNorm

    init(_ c: DecoderConfig, rng: inout WeightInitializer) {
        embedTokens = Embedding(weight: rng.normal([c.vocabSize, c.hiddenSize], std: Float(c.initializerRange)))
        // transformers builds nn.Embedding(vocab, hidden, padding_idx=pad_token_id).
        embedTokens.paddingIndex = c.padTokenId.map(Int32.init)
        layers = (0..<c.numHiddenLayers).map { _ in DecoderLayer(c, rng: &rng) }
        norm = RMSNorm(c.hiddenSize, eps: Float(c.rmsNormEps))
    }

    public var children: [(String, any Module)] {
        var c: [(String, any Module)] = [("embed_tokens", embedTokens)]
        for (i, l) in layers.enumerated() { c.append(("layers.\(i)", l)) }
        c.append(("norm", norm))
        return c
    }
}

/// What one forward call shares across layers: the batch layout, every row's position, the
/// key mask and the rotary table.
struct DecoderStep {
    let batch: Int
    let sequence: Int
    let positions: [Int32]
    let keyMask: Tensor?
    let rotary: RotaryTable
    /// Packed rows: each token's segment start (it attends no earlier token).
    var segmentStarts: [Int32]? = nil
}

/// A causal language model: `model` (DecoderBody) and an LM head (`lm_head`, or the
/// embedding matrix when tied).
public final class DecoderLM: Module {
    public var training = true
    public let config: DecoderConfig
    public let model: DecoderBody
    /// nil when the head is tied to `model.embed_tokens`.
    public let lmHead: Linear?
    private var rotaryCache: (frequencyLength: Int, table: RotaryTable)?
    var activeSubnetStorage: DecoderSubnet?
    /// While training, keep only each layer's input for the backward pass and recompute the
    /// layer there (activation checkpointing: about one more forward pass for much less memory).
    public var checkpointActivations = false
    /// The tied head's matrix (the embedding) in llama.cpp's blocks, for inference on a few
    /// rows; see `DecoderGGUF.attachBlockWeights`.
    public internal(set) var tiedHeadBlocks: BlockMatrix?

    /// A model of `config`'s shape, with random weights (initializer_range) or zeros when a
    /// checkpoint will fill them.
    public init(config: DecoderConfig, seed: UInt64 = 0, randomWeights: Bool = true) {
        self.config = config
        var rng = WeightInitializer(seed: seed, random: randomWeights)
        model = DecoderBody(config, rng: &rng)
        lmHead = config.tieWordEmbeddings ? nil
            : Linear(weight: rng.normal([config.vocabSize, config.hiddenSize], std: Float(config.initializerRange)), bias: nil)
    }

    public var children: [(String, any Module)] {
        var c: [(String, any Module)] = [("model", model)]
        if let h = lmHead { c.append(("lm_head", h)) }
        return c
    }

    /// A rotary table covering positions 0..<length: grown in powers of two, recomputed when
    /// dynamic scaling makes the frequencies depend on the length.
    func rotaryTable(covering length: Int) -> RotaryTable {
        var frequencyLength = 0
        if case .dynamic(_, let original) = config.ropeScaling, length > original { frequencyLength = length }
        if let c = rotaryCache, c.frequencyLength == frequencyLength, c.table.positions >= length { return c.table }
        var capacity = 256
        while capacity < length { capacity *= 2 }
        if frequencyLength > 0 { capacity = length }
        let table = RotaryTable(inverseFrequencies: RotaryFrequencies.inverse(config: config, sequenceLength: length), positions: capacity)
        rotaryCache = (frequencyLength, table)
        return table
    }

    /// Final hidden states [B·S, hidden] (after the last norm) of token ids [B, S].
    /// `attentionMask` [B·S] of 0/1 excludes padding keys; `positions` default to 0..<S per
    /// row (transformers' default without a cache). With `caches` (one per layer) the tokens
    /// are appended and attend everything cached; `cacheKeyMask` [B, capacity] then masks
    /// cached padding.
    /// `segmentStarts` [B·S] packs several sequences into a row: a token attends only tokens
    /// from its segment's start on (give `positions` restarting at each segment).
    public func hiddenStates(ids: [Int32], batch: Int, sequence: Int, attentionMask: [Int32]? = nil, positions: [Int32]? = nil,
                             segmentStarts: [Int32]? = nil, caches: [KVCache]? = nil, cacheKeyMask: Tensor? = nil) -> Variable {
        exitHiddenStates(ids: ids, batch: batch, sequence: sequence, attentionMask: attentionMask, positions: positions,
                         segmentStarts: segmentStarts, caches: caches, cacheKeyMask: cacheKeyMask, exits: [runningLayers.count])[0]
    }

    /// Hidden states after the first `exits[i]` running layers, each through the final norm
    /// (early exits sharing the LM head, as Sorted LLaMA's nested depths), from one pass.
    /// `exits` increasing, each in 1...running layers; with caches only the deepest exit's
    /// layers are run and cached.
    public func exitHiddenStates(ids: [Int32], batch: Int, sequence: Int, attentionMask: [Int32]? = nil, positions: [Int32]? = nil,
                                 segmentStarts: [Int32]? = nil, caches: [KVCache]? = nil, cacheKeyMask: Tensor? = nil, exits: [Int]) -> [Variable] {
        let layers = runningLayers
        precondition(!exits.isEmpty && exits == exits.sorted() && exits.first! >= 1 && exits.last! <= layers.count,
                     "decoder: exits \(exits) must increase within 1...\(layers.count)")
        precondition(ids.count == batch * sequence, "decoder: \(ids.count) ids for [\(batch), \(sequence)]")
        let pos = positions ?? (0..<batch).flatMap { _ in (0..<sequence).map(Int32.init) }
        let maxPosition = Int(pos.max() ?? 0)
        precondition(maxPosition < config.contextLimit, "decoder: position \(maxPosition) is beyond the model's context (\(config.contextLimit))")
        let keyMask: Tensor?
        if caches != nil { keyMask = cacheKeyMask } else {
            keyMask = attentionMask.flatMap { m in m.allSatisfy { $0 != 0 } ? nil : Tensor(shape: [batch, sequence], data: m.map(Float.init)) }
        }
        precondition(segmentStarts == nil || (segmentStarts!.count == batch * sequence && caches == nil), "decoder: segment starts [\(segmentStarts!.count)] for [\(batch), \(sequence)] without a cache")
        let step = DecoderStep(batch: batch, sequence: sequence, positions: pos, keyMask: keyMask, rotary: rotaryTable(covering: maxPosition + 1),
                               segmentStarts: segmentStarts)
        var x = model.embedTokens(ids, shape: [batch * sequence])
        var out: [Variable] = []
        for (i, layer) in layers.prefix(exits.last!).enumerated() {
            if checkpointActivations && training && caches == nil {
                x = layer.checkpointed(x, step: step)
            } else {
                x = layer(x, step: step, cache: caches?[i])
            }
            if exits.contains(i + 1) { out.append(model.norm(x)) }
        }
        return out
    }

    /// BitFit's parameters: biases where the model has them (Qwen2's q/k/v) and every RMSNorm
    /// weight — LLaMA-style decoders have no biases, so BitFit there trains the norms' scales.
    public static func isBitFitParameter(_ name: String) -> Bool { name.hasSuffix(".bias") || name.hasSuffix("norm.weight") }

    /// What sparse fine-tuning may select: the layers and the final norm; the embedding and the
    /// LM head are left out (a dense vocabulary-sized gradient every sparse step).
    public static func isSparseCandidate(_ name: String) -> Bool { name.hasPrefix("model.layers.") || name == "model.norm.weight" }

    /// The LM head's weight [vocab, hidden]: `lm_head`, or the embedding matrix when tied.
    /// With a sub-network active, its leading hidden columns.
    public var headWeight: Variable {
        let w = lmHead?.weight ?? model.embedTokens.weight
        guard let h = activeSubnetStorage?.hidden, h < config.hiddenSize else { return w }
        return w.slice(axis: 1, 0..<h)
    }

    /// Logits [rows, vocab] of hidden states [rows, hidden].
    public func logits(_ hidden: Variable) -> Variable {
        if let h = lmHead { return h(hidden) }
        if let blocks = tiedHeadBlocks, activeSubnetStorage?.hidden == nil, !ExecutionContext.current.recordsGradients,
           hidden.value.shape.last == blocks.cols, hidden.value.count / blocks.cols <= 8 {
            let rows = hidden.value.count / blocks.cols
            let out = Tensor(uninitializedShape: Array(hidden.value.shape.dropLast()) + [blocks.rows])
            hidden.value.withUnsafePointer { blocks.multiply($0, count: rows, into: out.storage.pointer, pool: ExecutionContext.pool) }
            return Variable(out)
        }
        return matmul(hidden, headWeight, transposeB: true)
    }

    /// One KV cache per running layer for `batch` sequences of up to `capacity` tokens.
    public func makeCaches(batch: Int, capacity: Int) -> [KVCache] {
        runningLayers.map { KVCache(batch: batch, kvHeads: $0.selfAttention.activeKVHeads ?? config.numKeyValueHeads, headDim: config.headDim, capacity: capacity) }
    }
}

/// Rotary inverse frequencies as transformers' rope initialisers compute them.
public enum RotaryFrequencies {
    public static func inverse(config c: DecoderConfig, sequenceLength: Int) -> [Float] {
        let dim = c.rotaryDim
        func base(_ theta: Double) -> [Float] {
            (0..<(dim / 2)).map { i in Float(1) / powf(Float(theta), Float(2 * i) / Float(dim)) }
        }
        switch c.ropeScaling {
        case .none: return base(c.ropeTheta)
        case .linear(let factor): return base(c.ropeTheta).map { $0 / Float(factor) }
        case .dynamic(let factor, let original):
            let length = Double(max(sequenceLength, original))
            guard sequenceLength > original else { return base(c.ropeTheta) }
            let theta = c.ropeTheta * pow(factor * length / Double(original) - (factor - 1), Double(dim) / Double(dim - 2))
            return base(theta)
        case .llama3(let factor, let low, let high, let original):
            let lowWavelength = Double(original) / low, highWavelength = Double(original) / high
            return base(c.ropeTheta).map { f in
                let wavelength = 2 * Double.pi / Double(f)
                if wavelength < highWavelength { return f }
                if wavelength > lowWavelength { return f / Float(factor) }
                let smooth = (Double(original) / wavelength - low) / (high - low)
                return Float((1 - smooth) * Double(f) / factor + smooth * Double(f))
            }
        }
    }
}

extension DecoderLM {
    /// Labels shifted for next-token prediction as transformers does: position t of a row is
    /// scored against label t + 1; the last position (and −100 labels) count for nothing.
    public static func shiftedLabels(_ labels: [Int32], batch: Int, sequence: Int, ignoreIndex: Int32 = -100) -> [Int32] {
        var out = [Int32](repeating: ignoreIndex, count: batch * sequence)
        for b in 0..<batch { for t in 0..<(sequence - 1) { out[b * sequence + t] = labels[b * sequence + t + 1] } }
        return out
    }

    /// Mean next-token cross-entropy of `labels` [B·S] (−100 ignored), transformers'
    /// `ForCausalLMLoss` without `num_items_in_batch`.
    public func causalLMLoss(ids: [Int32], batch: Int, sequence: Int, attentionMask: [Int32]?, labels: [Int32]) -> Variable {
        let hidden = hiddenStates(ids: ids, batch: batch, sequence: sequence, attentionMask: attentionMask)
        return crossEntropy(logits(hidden), labels: DecoderLM.shiftedLabels(labels, batch: batch, sequence: sequence))
    }
}
