import Foundation
import SculptCore
import SculptNN
import SculptIO

// A decoder from a GGUF file (llama.cpp's format): the config from `<arch>.*` metadata, the
// tensors renamed to transformers' names and dequantized to float32, and llama.cpp's row
// permutation of LLaMA's q/k projections undone so that the weights equal transformers'.

extension DecoderConfig {
    /// GGUF architectures read as decoders, and the transformers `model_type` of each.
    static let ggufArchitectures: [String: String] = ["llama": "llama", "mistral": "mistral", "qwen2": "qwen2", "qwen3": "qwen3"]

    /// The config a GGUF file's metadata describes (`general.architecture` and its keys).
    public init(gguf file: GGUFFile) throws {
        let path = file.path
        func fail(_ key: String, _ message: String) -> ConfigError { ConfigError(file: path, key: key, message: message) }
        guard let arch = file["general.architecture"]?.string else { throw fail("general.architecture", "missing (not a model GGUF?)") }
        guard let modelType = DecoderConfig.ggufArchitectures[arch] else {
            throw fail("general.architecture", "unsupported architecture \(StrictJSON.displayQuoted(arch, limit: 40)) (supported: \(DecoderConfig.ggufArchitectures.keys.sorted().joined(separator: ", ")))")
        }
        func int(_ key: String, default fallback: Int? = nil) throws -> Int {
            guard let v = file[key] else { if let fallback { return fallback }; throw fail(key, "missing required key") }
            guard let n = v.int else { throw fail(key, "expected an integer, found \(v.type)") }
            return n
        }
        func double(_ key: String, default fallback: Double) throws -> Double {
            guard let v = file[key] else { return fallback }
            guard let d = v.double else { throw fail(key, "expected a number, found \(v.type)") }
            return d
        }
        let heads = try int("\(arch).attention.head_count")
        let hidden = try int("\(arch).embedding_length")
        let headDim = try int("\(arch).attention.key_length", default: heads > 0 ? hidden / heads : 0)
        let vocab: Int
        if let tokens = file["tokenizer.ggml.tokens"]?.array { vocab = tokens.count } else { vocab = try int("\(arch).vocab_size") }
        if file.tensorInfo("rope_freqs.weight") != nil {
            throw fail("rope_freqs.weight", "per-frequency rope factors are not supported")
        }
        var scaling = RopeScaling.none
        if let type = file["\(arch).rope.scaling.type"]?.string, type != "none" {
            let factor = try double("\(arch).rope.scaling.factor", default: 1)
            guard type == "linear" else { throw fail("\(arch).rope.scaling.type", "unsupported rope scaling \(StrictJSON.displayQuoted(type, limit: 40)) (supported: none, linear)") }
            scaling = .linear(factor: factor)
        }
        let rotaryDim = try int("\(arch).rope.dimension_count", default: headDim)
        func optionalId(_ key: String) throws -> Int? { file[key] == nil ? nil : try int(key) }
        let eos = try optionalId("tokenizer.ggml.eos_token_id")
        let layers = try int("\(arch).block_count")
        self.init(modelType: modelType, hiddenSize: hidden, numHiddenLayers: layers, numAttentionHeads: heads,
                  numKeyValueHeads: try int("\(arch).attention.head_count_kv", default: heads), headDim: headDim,
                  intermediateSize: try int("\(arch).feed_forward_length"), vocabSize: vocab,
                  maxPositionEmbeddings: try int("\(arch).context_length", default: 2048),
                  rmsNormEps: try double("\(arch).attention.layer_norm_rms_epsilon", default: 1e-6),
                  ropeTheta: try double("\(arch).rope.freq_base", default: 10000), ropeScaling: scaling,
                  partialRotaryFactor: headDim > 0 ? Double(rotaryDim) / Double(headDim) : 1,
                  qkvBias: file.tensorInfo("blk.0.attn_q.bias") != nil, outputBias: file.tensorInfo("blk.0.attn_output.bias") != nil,
                  mlpBias: file.tensorInfo("blk.0.ffn_up.bias") != nil, qkNorm: file.tensorInfo("blk.0.attn_q_norm.weight") != nil,
                  tieWordEmbeddings: file.tensorInfo("output.weight") == nil,
                  bosTokenId: try optionalId("tokenizer.ggml.bos_token_id"), eosTokenIds: eos.map { [$0] } ?? [],
                  padTokenId: try optionalId("tokenizer.ggml.padding_token_id"))
        if let w = file["\(arch).attention.sliding_window"] { slidingWindow = w.int }
        try validate(file: path)
    }
}

public enum DecoderGGUF {
    /// transformers' name of a GGUF tensor, or nil for tensors the model does not use.
    public static func transformersName(_ gguf: String) -> String? {
        switch gguf {
        case "token_embd.weight": return "model.embed_tokens.weight"
        case "output_norm.weight": return "model.norm.weight"
        case "output.weight": return "lm_head.weight"
        default: break
        }
        let parts = gguf.split(separator: ".", maxSplits: 2).map(String.init)
        guard parts.count == 3, parts[0] == "blk", let layer = Int(parts[1]) else { return nil }
        let rest = parts[2]
        let suffixes: [(String, String)] = [
            ("attn_norm.", "input_layernorm."), ("ffn_norm.", "post_attention_layernorm."),
            ("attn_q_norm.", "self_attn.q_norm."), ("attn_k_norm.", "self_attn.k_norm."),
            ("attn_q.", "self_attn.q_proj."), ("attn_k.", "self_attn.k_proj."), ("attn_v.", "self_attn.v_proj."),
            ("attn_output.", "self_attn.o_proj."),
            ("ffn_gate.", "mlp.gate_proj."), ("ffn_up.", "mlp.up_proj."), ("ffn_down.", "mlp.down_proj."),
        ]
        for (g, hf) in suffixes where rest.hasPrefix(g) {
            let leaf = rest.dropFirst(g.count)
            guard leaf == "weight" || leaf == "bias" else { return nil }
            return "model.layers.\(layer).\(hf)\(leaf)"
        }
        return nil
    }

    /// llama.cpp's conversion permutation of a LLaMA q or k projection's rows: within each
    /// head of d rows, transformers row j·d/2 + i is GGUF row 2i + j. Entry r is the GGUF row
    /// that holds transformers row r.
    static func ggufRow(ofTransformersRows rows: Int, heads: Int) -> [Int] {
        let d = rows / heads, half = d / 2
        var order = [Int](repeating: 0, count: rows)
        for h in 0..<heads { for i in 0..<half { for j in 0..<2 { order[h * d + j * half + i] = h * d + 2 * i + j } } }
        return order
    }

    /// The heads whose rows llama.cpp permutes in transformers tensor `name` (LLaMA's q and k
    /// projections, weight or bias), or nil.
    static func permutedHeads(_ name: String, _ c: DecoderConfig) -> Int? {
        if name.hasSuffix("self_attn.q_proj.weight") || name.hasSuffix("self_attn.q_proj.bias") { return c.numAttentionHeads }
        if name.hasSuffix("self_attn.k_proj.weight") || name.hasSuffix("self_attn.k_proj.bias") { return c.numKeyValueHeads }
        return nil
    }

    /// Whether a GGUF architecture stores q/k rows in llama.cpp's permuted order.
    static func permutesQK(_ architecture: String) -> Bool { architecture == "llama" || architecture == "mistral" }

    /// Moves whole rows of `rowBytes` bytes: row r of the result is row `from[r]` of `bytes`.
    static func reorderRows<C: Collection>(_ bytes: C, rowBytes: Int, from order: [Int]) -> [UInt8] where C.Element == UInt8, C.Index == Int {
        var out = [UInt8](repeating: 0, count: order.count * rowBytes)
        for (r, src) in order.enumerated() {
            let start = bytes.startIndex + src * rowBytes
            out.replaceSubrange((r * rowBytes)..<((r + 1) * rowBytes), with: bytes[start..<(start + rowBytes)])
        }
        return out
    }

    /// Undoes llama.cpp's permutation of a LLaMA q or k projection (weight [heads·d, in] or
    /// bias [heads·d]), giving transformers' rows.
    public static func unpermute(_ t: Tensor, heads: Int) -> Tensor { moveRows(t, heads: heads, toTransformers: true) }

    /// llama.cpp's permutation of a LLaMA q or k projection: the inverse of `unpermute`.
    public static func permute(_ t: Tensor, heads: Int) -> Tensor { moveRows(t, heads: heads, toTransformers: false) }

    private static func moveRows(_ t: Tensor, heads: Int, toTransformers: Bool) -> Tensor {
        let rows = t.shape[0], width = t.count / max(rows, 1)
        let out = Tensor(uninitializedShape: t.shape)
        for (hf, g) in ggufRow(ofTransformersRows: rows, heads: heads).enumerated() {
            let (dst, src) = toTransformers ? (hf, g) : (g, hf)
            (out.storage.pointer + dst * width).update(from: t.storage.pointer + src * width, count: width)
        }
        return out
    }

    /// The model in a GGUF file, every tensor dequantized to float32.
    public static func load(file: GGUFFile) throws -> (model: DecoderLM, report: LoadReport) {
        let config = try DecoderConfig(gguf: file)
        let permuted = permutesQK(file["general.architecture"]?.string ?? "")
        var byName: [String: String] = [:], unexpected: [String] = []
        for t in file.tensors {
            if let n = transformersName(t.name) { byName[n] = t.name } else if t.name != "rope_freqs.weight" { unexpected.append(t.name) }
        }
        let model = DecoderLM(config: config, randomWeights: false)
        let report = try model.load(names: Array(byName.keys), file: file.path) { name in
            guard let g = byName[name] else { return nil }
            let t = try file.tensor(g)
            guard permuted, let heads = permutedHeads(name, config) else { return t }
            return unpermute(t, heads: heads)
        }
        return (model, LoadReport(missing: report.missing, unexpected: (report.unexpected + unexpected).sorted()))
    }

    /// Keeps the file's Q8_0, Q4_0 and Q4_1 matrices beside their float copies for inference
    /// on a few rows (decode reads ~3–6× fewer weight bytes): each projection, the untied
    /// head, and the tied head from the token embedding. A matrix is attached only where the
    /// model's weight still equals the file's dequantized values (so an adapter merged in, a
    /// pruning or a fine-tune falls back to the floats). Training and prefill use the floats.
    /// - Returns: the number of matrices attached.
    @discardableResult
    public static func attachBlockWeights(_ model: DecoderLM, file: GGUFFile) throws -> Int {
        let c = model.config
        let permuted = permutesQK(file["general.architecture"]?.string ?? "")
        func blocks(_ g: String, heads: Int?) throws -> (BlockMatrix, Tensor)? {
            guard let info = file.tensorInfo(g), info.shape.count == 2 else { return nil }
            let format: BlockMatrix.Format
            switch info.type {
            case .q8_0: format = .q8_0
            case .q4_0: format = .q4_0
            case .q4_1: format = .q4_1
            default: return nil
            }
            var t = try file.tensor(g)
            let rows = t.shape[0], cols = t.shape[1]
            var bytes = try file.withRawData(g) { Array($0) }
            if permuted, let heads {
                t = unpermute(t, heads: heads)
                bytes = reorderRows(bytes, rowBytes: bytes.count / rows, from: ggufRow(ofTransformersRows: rows, heads: heads))
            }
            guard let m = BlockMatrix(format: format, rows: rows, cols: cols, bytes: bytes) else { return nil }
            return (m, t)
        }
        var attached = 0
        for (i, layer) in model.model.layers.enumerated() {
            for (name, linear) in layer.projections {
                let hf = "model.layers.\(i).\(name).weight"
                if let (m, t) = try blocks(ggufName(hf)!, heads: permutedHeads(hf, c)), linear.attachBlockWeight(m, dequantized: t) { attached += 1 }
            }
        }
        if let head = model.lmHead {
            if let (m, t) = try blocks("output.weight", heads: nil), head.attachBlockWeight(m, dequantized: t) { attached += 1 }
        } else if let (m, t) = try blocks("token_embd.weight", heads: nil), t.maxAbsDifference(model.model.embedTokens.weight.value) == 0 {
            model.tiedHeadBlocks = m
            attached += 1
        }
        return attached
    }

    /// Tensor count per storage type ("Q4_1": 182, …), for `sculpt info`.
    public static func typeCounts(_ file: GGUFFile) -> [(type: String, tensors: Int)] {
        var counts: [String: Int] = [:]
        for t in file.tensors { counts[t.type.name, default: 0] += 1 }
        return counts.sorted { $0.value > $1.value || ($0.value == $1.value && $0.key < $1.key) }.map { ($0.key, $0.value) }
    }
}
