import Foundation
import SculptCore
import SculptNN

/// A sub-network of a decoder: which layers are kept (any of them, in order: dropping middle
/// layers is ShortGPT/Minitron depth pruning), and in each kept layer the leading `heads[i]`
/// query heads (whole key-value groups), the leading `ffn[i]` FFN channels, and the leading
/// `hidden` channels of the residual stream (Minitron's embedding channels) everywhere.
///
/// JSON: `{"layers": [0, 1, 2, 5], "heads": 6, "ffn": [1536, 1536, 1024, 768], "hidden": 576}`.
/// `layers` may be a count (the first n layers); `heads` and `ffn` a single number (the same in
/// every kept layer); `heads`, `ffn` and `hidden` default to the full size. Leading slices
/// are what importance reordering (`DecoderLM.reorder`) puts the most important units into.
public struct DecoderSubnet: Codable, Sendable, Hashable, CompactJSON {
    public var layers: [Int]
    public var heads: [Int]
    public var ffn: [Int]
    public var hidden: Int

    public init(layers: [Int], heads: [Int], ffn: [Int], hidden: Int) {
        self.layers = layers; self.heads = heads; self.ffn = ffn; self.hidden = hidden
    }

    /// The whole model.
    public static func full(_ c: DecoderConfig) -> DecoderSubnet {
        uniform(c, layers: Array(0..<c.numHiddenLayers))
    }

    /// `layers` with every other dimension whole, or as given.
    public static func uniform(_ c: DecoderConfig, layers: [Int], heads: Int? = nil, ffn: Int? = nil, hidden: Int? = nil) -> DecoderSubnet {
        DecoderSubnet(layers: layers, heads: Array(repeating: heads ?? c.numAttentionHeads, count: layers.count),
                      ffn: Array(repeating: ffn ?? c.intermediateSize, count: layers.count), hidden: hidden ?? c.hiddenSize)
    }

    /// Query heads per key-value group.
    public static func groupSize(_ c: DecoderConfig) -> Int { c.numAttentionHeads / c.numKeyValueHeads }

    /// Key-value heads of each kept layer.
    public func kvHeads(_ c: DecoderConfig) -> [Int] { heads.map { $0 / DecoderSubnet.groupSize(c) } }

    /// Every kept layer has the same heads and FFN width: a standard HF config holds it.
    public var isUniform: Bool { Set(heads).count <= 1 && Set(ffn).count <= 1 }

    public func isFull(_ c: DecoderConfig) -> Bool { self == DecoderSubnet.full(c) }

    /// Whether the kept layers are the first ones (an early exit, e.g. Sorted LLaMA's depths).
    public var isPrefix: Bool { layers == Array(0..<layers.count) }

    /// Parameters outside the input and output embeddings (the LM head, tied or not): the
    /// kept layers and the final norm, as the extracted model has them (zero-padding not
    /// counted) — what pruning targets refer to.
    public func nonEmbeddingParameters(_ c: DecoderConfig) -> Int {
        let h = hidden, d = c.headDim, g = DecoderSubnet.groupSize(c)
        var n = h
        for (i, _) in layers.enumerated() {
            let q = heads[i] * d, kv = heads[i] / g * d, f = ffn[i]
            n += h * q + 2 * h * kv + q * h + (c.qkvBias ? q + 2 * kv : 0) + (c.outputBias ? h : 0) + (c.qkNorm ? 2 * d : 0)
            n += 3 * h * f + (c.mlpBias ? 2 * f + h : 0) + 2 * h
        }
        return n
    }

    /// Multiply-accumulates per token of the projections, FFN and LM head (attention over the
    /// context, which grows with position, not included).
    public func macsPerToken(_ c: DecoderConfig) -> Int {
        let h = hidden, d = c.headDim, g = DecoderSubnet.groupSize(c)
        var n = c.vocabSize * h
        for (i, _) in layers.enumerated() {
            let q = heads[i] * d, kv = heads[i] / g * d
            n += 2 * h * q + 2 * h * kv + 3 * h * ffn[i]
        }
        return n
    }

    /// Checks every field against `c`, naming the first that does not fit.
    public func validate(_ c: DecoderConfig) throws {
        guard !layers.isEmpty else { throw SubnetError(field: "layers", message: "keeps no layer; a sub-network needs at least one") }
        var seen = Set<Int>()
        for (i, l) in layers.enumerated() {
            guard (0..<c.numHiddenLayers).contains(l) else {
                throw SubnetError(field: "layers[\(i)]", message: "layer \(l) does not exist (the model has layers 0–\(c.numHiddenLayers - 1))")
            }
            guard seen.insert(l).inserted else { throw SubnetError(field: "layers[\(i)]", message: "names layer \(l) twice") }
            if i > 0, l < layers[i - 1] {
                throw SubnetError(field: "layers[\(i)]", message: "layer \(l) after layer \(layers[i - 1]); list kept layers in the order they run")
            }
        }
        guard heads.count == layers.count else {
            throw SubnetError(field: "heads", message: "has \(heads.count) entries for \(layers.count) kept layers")
        }
        guard ffn.count == layers.count else {
            throw SubnetError(field: "ffn", message: "has \(ffn.count) entries for \(layers.count) kept layers")
        }
        let g = DecoderSubnet.groupSize(c)
        for (i, n) in heads.enumerated() {
            guard n >= 1, n <= c.numAttentionHeads else {
                throw SubnetError(field: "heads[\(i)]", message: "\(n) is not between 1 and \(c.numAttentionHeads) query heads")
            }
            guard n % g == 0 else {
                throw SubnetError(field: "heads[\(i)]", message: "\(n) query heads split a key-value group (\(c.numKeyValueHeads) groups of \(g) query heads: use a multiple of \(g))")
            }
        }
        for (i, n) in ffn.enumerated() where n < 1 || n > c.intermediateSize {
            throw SubnetError(field: "ffn[\(i)]", message: "\(n) is not between 1 and \(c.intermediateSize) channels")
        }
        guard hidden >= 1, hidden <= c.hiddenSize else {
            throw SubnetError(field: "hidden", message: "\(hidden) is not between 1 and \(c.hiddenSize) channels")
        }
    }

    /// Parses a sub-network from JSON text (unknown fields refused), then validates it.
    public static func parse(_ text: String, config c: DecoderConfig) throws -> DecoderSubnet {
        let obj = try SubnetJSONObject.parse(text, known: ["layers", "heads", "ffn", "hidden"])
        let layers: [Int]
        switch obj["layers"] {
        case nil: throw SubnetError(field: "layers", message: "missing (a count of leading layers or a list of layer indices)")
        case let n as Int:
            guard n >= 1 else { throw SubnetError(field: "layers", message: "keeps no layer; a sub-network needs at least one") }
            guard n <= c.numHiddenLayers else { throw SubnetError(field: "layers", message: "\(n) layers; the model has \(c.numHiddenLayers)") }
            layers = Array(0..<n)
        default: layers = try SubnetJSONObject.integers(obj, "layers", repeating: 0)
        }
        func perLayer(_ key: String, _ full: Int) throws -> [Int] {
            obj[key] == nil ? Array(repeating: full, count: layers.count) : try SubnetJSONObject.integers(obj, key, repeating: layers.count)
        }
        var hidden = c.hiddenSize
        if let v = obj["hidden"] {
            guard let n = v as? Int else { throw SubnetError(field: "hidden", message: "must be an integer") }
            hidden = n
        }
        let s = DecoderSubnet(layers: layers, heads: try perLayer("heads", c.numAttentionHeads), ffn: try perLayer("ffn", c.intermediateSize), hidden: hidden)
        try s.validate(c)
        return s
    }

    /// A sub-network given as JSON text or a file holding it.
    public static func resolve(_ spec: String, config c: DecoderConfig) throws -> DecoderSubnet {
        var text = spec
        if !spec.trimmingCharacters(in: .whitespaces).hasPrefix("{") {
            guard let t = try? String(contentsOfFile: spec, encoding: .utf8) else {
                throw SubnetError(field: "(json)", message: "\(spec) is neither JSON text nor a readable file")
            }
            text = t
        }
        return try parse(text, config: c)
    }

    /// The config of the dense extraction: the widest kept layer's heads and FFN (narrower
    /// layers are zero-padded to it).
    public func extractedConfig(_ c: DecoderConfig) -> DecoderConfig {
        var e = c
        e.numHiddenLayers = layers.count
        e.numAttentionHeads = heads.max()!
        e.numKeyValueHeads = heads.max()! / DecoderSubnet.groupSize(c)
        e.intermediateSize = ffn.max()!
        e.hiddenSize = hidden
        return e
    }
}

extension DecoderLM {
    /// The sub-network the forward pass runs (nil: the whole model).
    public var activeSubnet: DecoderSubnet? { activeSubnetStorage }

    /// How many layers the forward pass runs.
    public var runningLayerCount: Int { activeSubnetStorage?.layers.count ?? model.layers.count }

    /// The layers the forward pass runs, in order.
    var runningLayers: [DecoderLayer] { activeSubnetStorage.map { $0.layers.map { model.layers[$0] } } ?? model.layers }

    /// Makes the forward pass run `subnet` on leading slices of the shared weights (nil: the
    /// whole model). Gradients reach those slices only, so elastic training works on it; KV
    /// caches from `makeCaches` then fit the sub-network.
    public func activate(_ subnet: DecoderSubnet?) throws {
        if let s = subnet { try s.validate(config) }
        let s = subnet.flatMap { $0.isFull(config) ? nil : $0 }
        if let s, s.hidden < config.hiddenSize || s.heads.contains(where: { $0 < config.numAttentionHeads }) || s.ffn.contains(where: { $0 < config.intermediateSize }) {
            if model.layers.contains(where: { $0.projections.contains { !$0.linear.isPlain } }) {
                throw SubnetError(field: "(model)", message: "a sub-network narrower than the model runs on plain weights; merge the LoRA adapter (or fold the s2ft split) first")
            }
        }
        activeSubnetStorage = s
        let c = config, d = c.headDim
        let hidden: Int? = s.flatMap { $0.hidden < c.hiddenSize ? $0.hidden : nil }
        model.embedTokens.activeDimension = hidden
        model.norm.activeDimension = hidden
        lmHead?.activeInFeatures = hidden
        for (i, layer) in model.layers.enumerated() {
            let j = s?.layers.firstIndex(of: i)
            let heads = j.map { s!.heads[$0] }.flatMap { $0 < c.numAttentionHeads ? $0 : nil }
            let ffn = j.map { s!.ffn[$0] }.flatMap { $0 < c.intermediateSize ? $0 : nil }
            let a = layer.selfAttention
            a.activeKVHeads = heads.map { $0 / DecoderSubnet.groupSize(c) }
            a.qProj.activeOutFeatures = heads.map { $0 * d }
            for p in [a.kProj, a.vProj] { p.activeOutFeatures = heads.map { $0 / DecoderSubnet.groupSize(c) * d } }
            a.oProj.activeInFeatures = heads.map { $0 * d }
            for p in [a.qProj, a.kProj, a.vProj] { p.activeInFeatures = hidden }
            a.oProj.activeOutFeatures = hidden
            layer.mlp.gateProj.activeOutFeatures = ffn
            layer.mlp.upProj.activeOutFeatures = ffn
            layer.mlp.downProj.activeInFeatures = ffn
            layer.mlp.gateProj.activeInFeatures = hidden
            layer.mlp.upProj.activeInFeatures = hidden
            layer.mlp.downProj.activeOutFeatures = hidden
            layer.inputLayernorm.activeDimension = hidden
            layer.postAttentionLayernorm.activeDimension = hidden
        }
    }

    /// `extract(subnet)` checked: its last hidden states on `probe` against this model running
    /// the sub-network, at most 1e-4 apart (else an error, nothing returned). Returns the
    /// extraction (in evaluation mode) and the largest difference.
    public func checkedExtraction(_ subnet: DecoderSubnet, probe: [Int32]) throws -> (model: DecoderLM, maxAbsDifference: Float) {
        let small = try extract(subnet)
        let wasTraining = training
        eval()
        small.eval()
        defer { if wasTraining { train() } }
        let previous = activeSubnet
        try activate(subnet)
        defer { try? activate(previous) }
        let a = withoutGradients { hiddenStates(ids: probe, batch: 1, sequence: probe.count).value }
        let b = withoutGradients { small.hiddenStates(ids: probe, batch: 1, sequence: probe.count).value }
        let difference = a.maxAbsDifference(b)
        guard difference <= 1e-4 else {
            throw ModelError.badWeights(file: "extract", message: String(format: "the extracted model differs from the super-network by %.3g (> 1e-4); nothing written", difference))
        }
        return (small, difference)
    }

    /// A dense model holding only `subnet`: its layers renumbered from 0, leading slices of
    /// every matrix, a layer narrower than the widest kept one zero-padded to it (a zero key-
    /// value group or FFN channel adds nothing, so the outputs are the sub-network's). The
    /// config is a standard transformers config either way.
    public func extract(_ subnet: DecoderSubnet) throws -> DecoderLM {
        try subnet.validate(config)
        let ec = subnet.extractedConfig(config)
        let small = DecoderLM(config: ec, randomWeights: false)
        let source = stateDict()
        var values: [String: Tensor] = [:]
        let h = subnet.hidden, d = config.headDim, g = DecoderSubnet.groupSize(config)
        func fit(_ t: Tensor, _ keep: [Int], _ target: [Int]) -> Tensor {
            // Leading `keep[axis]` entries of every axis, then zeros up to `target`.
            var t = t
            for axis in 0..<t.rank where keep[axis] < t.shape[axis] { t = t.slice(axis: axis, 0..<keep[axis]) }
            for axis in 0..<t.rank where t.shape[axis] < target[axis] {
                var z = t.shape
                z[axis] = target[axis] - t.shape[axis]
                t = Tensor.concat([t, Tensor.zeros(z)], axis: axis)
            }
            return t
        }
        let target = small.stateDict()
        for (name, shape) in target.mapValues(\.shape) {
            var src = name
            var keep = shape
            if name.hasPrefix("model.layers.") {
                let parts = name.split(separator: ".", maxSplits: 3)
                let j = Int(parts[2])!
                let i = subnet.layers[j]
                src = "model.layers.\(i).\(parts[3])"
                let q = subnet.heads[j] * d, kv = subnet.heads[j] / g * d, f = subnet.ffn[j]
                let rest = String(parts[3])
                switch rest {
                case "self_attn.q_proj.weight": keep = [q, h]
                case "self_attn.q_proj.bias": keep = [q]
                case "self_attn.k_proj.weight", "self_attn.v_proj.weight": keep = [kv, h]
                case "self_attn.k_proj.bias", "self_attn.v_proj.bias": keep = [kv]
                case "self_attn.o_proj.weight": keep = [h, q]
                case "mlp.gate_proj.weight", "mlp.up_proj.weight": keep = [f, h]
                case "mlp.gate_proj.bias", "mlp.up_proj.bias": keep = [f]
                case "mlp.down_proj.weight": keep = [h, f]
                default: break
                }
            }
            guard let t = source[src] else { throw ModelError.badWeights(file: "extract", message: "no source tensor \(src) for \(name)") }
            values[name] = fit(t, keep, shape)
        }
        for (name, p) in small.namedParameters() { p.value = values[name]! }
        return small
    }
}
