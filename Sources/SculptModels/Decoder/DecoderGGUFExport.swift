import Foundation
import SculptCore
import SculptIO

// A decoder as a GGUF v3 file llama.cpp loads: `general.*` and `<arch>.*` metadata from the
// config, the tokenizer as `tokenizer.ggml.*`, transformers' tensors under llama.cpp's names
// with LLaMA's q/k rows permuted into llama.cpp's order. Each tensor's storage type is chosen
// here: vectors (norms, biases) are F32; matrices take the requested type, or — without one —
// the precision they came in (a GGUF tensor whose values are unchanged is copied byte for
// byte, a safetensors tensor keeps its F16/BF16/F32 dtype).

/// How `DecoderGGUF.write` stores the matrices.
public struct GGUFExportOptions: Sendable {
    /// The storage type of every matrix; nil keeps each one's source precision.
    public var type: GGMLType?
    /// Globs (`*` and `?`) on GGUF or transformers tensor names kept at their source precision.
    public var keep: [String]
    public init(type: GGMLType? = nil, keep: [String] = []) { self.type = type; self.keep = keep }

    /// The types a decoder can be written as.
    public static let writableTypes: [GGMLType] = [.f32, .f16, .bf16, .q8_0, .q4_0, .q4_1]
}

/// What was written: every tensor's GGUF name, type and bytes, and the file's size.
public struct GGUFExportReport: Sendable, Encodable {
    public struct Entry: Sendable, Encodable {
        public let name: String, type: String, bytes: Int
        /// Copied from the source file unchanged (not re-encoded).
        public let copied: Bool
    }
    public let architecture: String
    public let tensors: [Entry]
    /// Matrices written in another type than asked, because their rows do not split into blocks.
    public let fallbacks: [String]
    public let fileBytes: Int

    /// Tensors and bytes per storage type, most bytes first.
    public var byType: [(type: String, tensors: Int, bytes: Int)] {
        var t: [String: (Int, Int)] = [:]
        for e in tensors { t[e.type, default: (0, 0)].0 += 1; t[e.type, default: (0, 0)].1 += e.bytes }
        return t.map { ($0.key, $0.value.0, $0.value.1) }.sorted { $0.bytes > $1.bytes || ($0.bytes == $1.bytes && $0.type < $1.type) }
    }
}

extension DecoderGGUF {
    /// llama.cpp's name of a transformers tensor (the inverse of `transformersName`).
    public static func ggufName(_ name: String) -> String? {
        switch name {
        case "model.embed_tokens.weight": return "token_embd.weight"
        case "model.norm.weight": return "output_norm.weight"
        case "lm_head.weight": return "output.weight"
        default: break
        }
        let parts = name.split(separator: ".", maxSplits: 3).map(String.init)
        guard parts.count == 4, parts[0] == "model", parts[1] == "layers", let layer = Int(parts[2]) else { return nil }
        let suffixes: [(String, String)] = [
            ("input_layernorm.", "attn_norm."), ("post_attention_layernorm.", "ffn_norm."),
            ("self_attn.q_norm.", "attn_q_norm."), ("self_attn.k_norm.", "attn_k_norm."),
            ("self_attn.q_proj.", "attn_q."), ("self_attn.k_proj.", "attn_k."), ("self_attn.v_proj.", "attn_v."),
            ("self_attn.o_proj.", "attn_output."),
            ("mlp.gate_proj.", "ffn_gate."), ("mlp.up_proj.", "ffn_up."), ("mlp.down_proj.", "ffn_down."),
        ]
        for (hf, g) in suffixes where parts[3].hasPrefix(hf) {
            let leaf = parts[3].dropFirst(hf.count)
            guard leaf == "weight" || leaf == "bias" else { return nil }
            return "blk.\(layer).\(g)\(leaf)"
        }
        return nil
    }

    /// The GGUF architecture a config is written as (llama.cpp's names; Mistral is "llama").
    static func architecture(_ c: DecoderConfig, file: String) throws -> String {
        switch c.modelType {
        case "llama", "mistral": return "llama"
        case "qwen2", "qwen3": return c.modelType
        default: throw ModelError.badWeights(file: file, message: "model_type \(c.modelType) has no GGUF architecture here (llama, mistral, qwen2, qwen3)")
        }
    }

    /// `general.*` and `<arch>.*` metadata for a config.
    static func metadata(_ c: DecoderConfig, arch: String, name: String, fileType: Int, file: String) throws -> [(String, GGUFValue)] {
        func u(_ v: Int) -> GGUFValue { .uint32(UInt32(v)) }
        var m: [(String, GGUFValue)] = [
            ("general.architecture", .string(arch)), ("general.name", .string(name)),
            ("general.file_type", u(fileType)), ("general.quantization_version", u(2)),
            ("\(arch).block_count", u(c.numHiddenLayers)), ("\(arch).context_length", u(c.maxPositionEmbeddings)),
            ("\(arch).embedding_length", u(c.hiddenSize)), ("\(arch).feed_forward_length", u(c.intermediateSize)),
            ("\(arch).attention.head_count", u(c.numAttentionHeads)), ("\(arch).attention.head_count_kv", u(c.numKeyValueHeads)),
            ("\(arch).attention.key_length", u(c.headDim)), ("\(arch).attention.value_length", u(c.headDim)),
            ("\(arch).attention.layer_norm_rms_epsilon", .float32(Float(c.rmsNormEps))),
            ("\(arch).rope.freq_base", .float32(Float(c.ropeTheta))), ("\(arch).rope.dimension_count", u(c.rotaryDim)),
            ("\(arch).vocab_size", u(c.vocabSize)),
        ]
        switch c.ropeScaling {
        case .none: break
        case .linear(let f):
            m += [("\(arch).rope.scaling.type", .string("linear")), ("\(arch).rope.scaling.factor", .float32(Float(f)))]
        default:
            throw ModelError.badWeights(file: file, message: "rope scaling \(c.ropeScaling.name) is not written to GGUF here (none and linear are)")
        }
        if let w = c.slidingWindow { m.append(("\(arch).attention.sliding_window", u(w))) }
        return m
    }

    /// llama.cpp's `general.file_type` (LLAMA_FTYPE_*) for the type most matrix bytes use.
    static func fileType(_ t: GGMLType) -> Int {
        switch t {
        case .f32: return 0
        case .f16: return 1
        case .q4_0: return 2
        case .q4_1: return 3
        case .q8_0: return 7
        case .bf16: return 32
        default: return 0
        }
    }

    /// Writes `bundle` as a GGUF file at `url` (atomically; an existing file is refused unless
    /// `replace`).
    @discardableResult
    public static func write(_ bundle: DecoderBundle, to url: URL, options: GGUFExportOptions = .init(), replace: Bool = false) throws -> GGUFExportReport {
        let path = url.path
        if FileManager.default.fileExists(atPath: path) && !replace {
            throw ModelError.badWeights(file: path, message: "already exists (pass --force to replace it)")
        }
        if let t = options.type, !GGUFExportOptions.writableTypes.contains(t) {
            throw ModelError.badWeights(file: path, message: "cannot write \(t.name) (supported: \(GGUFExportOptions.writableTypes.map(\.name).joined(separator: ", ")))")
        }
        let model = bundle.model, c = model.config
        let arch = try architecture(c, file: bundle.source.path)
        let permuted = permutesQK(arch)
        let source = try SourcePrecision(bundle)
        let patterns = options.keep.map(NameGlob.init)

        // Choose every tensor's type first: general.file_type depends on the result.
        struct Planned { let gguf: String, tensor: Tensor, type: GGMLType, raw: [UInt8]? }
        var planned: [Planned] = [], fallbacks: [String] = []
        for (name, p) in model.namedParameters() {
            guard let g = ggufName(name) else { throw ModelError.badWeights(file: path, message: "tensor \(name) has no GGUF name") }
            var t = p.value
            if permuted, let heads = permutedHeads(name, c) { t = permute(t, heads: heads) }
            var type = GGMLType.f32, raw: [UInt8]? = nil
            if t.shape.count >= 2 {
                if let wanted = options.type, !patterns.contains(where: { $0.matches(g) || $0.matches(name) }) {
                    type = wanted
                } else {
                    (type, raw) = try source.precision(of: name, gguf: g, value: t)
                }
            }
            if raw == nil, type.rowBytes(t.shape.last ?? 1) == nil || !type.canQuantize {
                fallbacks.append(g)
                type = .f16
            }
            planned.append(Planned(gguf: g, tensor: t, type: type, raw: raw))
        }
        var bytesByType: [GGMLType: Int] = [:]
        for p in planned where p.tensor.shape.count >= 2 { bytesByType[p.type, default: 0] += p.tensor.count }
        let main = bytesByType.max { $0.value < $1.value || ($0.value == $1.value && $0.key.rawValue > $1.key.rawValue) }?.key ?? .f32

        var meta = try metadata(c, arch: arch, name: bundle.source.url.deletingPathExtension().lastPathComponent,
                                fileType: fileType(main), file: bundle.source.path)
        // A source GGUF's descriptive keys (name, license, organization, …) carry over.
        if let file = source.gguf {
            let own = Set(meta.map(\.0))
            for key in file.metadataKeys where key.hasPrefix("general.") && !own.contains(key) && !key.hasPrefix("general.quantiz") {
                if let v = file[key] { meta.append((key, v)) }
            }
            if let v = file["general.name"], let i = meta.firstIndex(where: { $0.0 == "general.name" }) { meta[i] = ("general.name", v) }
        }
        // A source GGUF's tokenizer is copied as it is (token types such as "unused" or
        // "byte" included); otherwise it is described from the tokenizer.
        if let file = source.gguf, file["tokenizer.ggml.model"] != nil {
            for key in file.metadataKeys where key.hasPrefix("tokenizer.") { if let v = file[key] { meta.append((key, v)) } }
        } else {
            meta += try bundle.text.tokenizer.ggufMetadata(chatTemplate: bundle.text.chatTemplate?.source)
        }
        var w = try GGUFWriter(metadata: meta)
        var entries: [GGUFExportReport.Entry] = []
        for p in planned {
            if let raw = p.raw {
                try w.addTensor(p.gguf, shape: p.tensor.shape, type: p.type, bytes: raw)
            } else {
                try w.addTensor(p.gguf, p.tensor, as: p.type)
            }
            entries.append(.init(name: p.gguf, type: p.type.name, bytes: p.type.rowBytes(p.tensor.shape.last ?? 1)! * (p.tensor.count / max(p.tensor.shape.last ?? 1, 1)), copied: p.raw != nil))
        }
        try w.write(to: url)
        let size = ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? Int) ?? 0
        return GGUFExportReport(architecture: arch, tensors: entries, fallbacks: fallbacks, fileBytes: size)
    }

    /// The precision each tensor came in, and its bytes when the source GGUF holds it unchanged.
    struct SourcePrecision {
        let gguf: GGUFFile?
        let checkpoint: SafeTensorsCheckpoint?
        /// Whether the source GGUF's q/k rows are in the order this export writes.
        let sameOrder: Bool

        init(_ bundle: DecoderBundle) throws {
            switch bundle.source.format {
            case .gguf:
                let file = try GGUFFile(path: bundle.source.path)
                gguf = file; checkpoint = nil
                let arch = file["general.architecture"]?.string ?? ""
                sameOrder = DecoderGGUF.permutesQK(arch) == DecoderGGUF.permutesQK(try DecoderGGUF.architecture(bundle.model.config, file: bundle.source.path))
            case .directory where FileManager.default.fileExists(atPath: bundle.source.url.appendingPathComponent("config.json").path):
                gguf = nil; checkpoint = try? SafeTensorsCheckpoint(directory: bundle.source.url); sameOrder = true
            default:
                gguf = nil; checkpoint = nil; sameOrder = true
            }
        }

        func precision(of name: String, gguf g: String, value: Tensor) throws -> (type: GGMLType, raw: [UInt8]?) {
            if let file = gguf, sameOrder, let info = file.tensorInfo(g), GGUFExportOptions.writableTypes.contains(info.type) {
                let original = try file.tensor(g)
                if original.shape == value.shape, original.maxAbsDifference(value) == 0 {
                    return (info.type, try file.withRawData(g) { Array($0) })
                }
                return (info.type, nil)
            }
            if let file = gguf, let info = file.tensorInfo(g) {
                // A type that cannot be re-encoded here (K-quants, …): the nearest one that can.
                return (info.type.blockSize > 1 ? .q8_0 : .f32, nil)
            }
            if let ck = checkpoint, let i = ck.location[name], let info = try? ck.files[i].info(name) {
                switch info.dtype {
                case .f16: return (.f16, nil)
                case .bf16: return (.bf16, nil)
                default: return (.f32, nil)
                }
            }
            return (.f32, nil)
        }
    }
}

/// A shell-style glob on names: `*` any run of characters, `?` one character.
public struct NameGlob: Sendable {
    let pattern: [Character]
    public init(_ pattern: String) { self.pattern = Array(pattern) }

    public func matches(_ name: String) -> Bool {
        let s = Array(name)
        var p = 0, i = 0, star = -1, mark = 0
        while i < s.count {
            if p < pattern.count && (pattern[p] == "?" || pattern[p] == s[i]) { p += 1; i += 1 }
            else if p < pattern.count && pattern[p] == "*" { star = p; mark = i; p += 1 }
            else if star >= 0 { p = star + 1; mark += 1; i = mark }
            else { return false }
        }
        while p < pattern.count && pattern[p] == "*" { p += 1 }
        return p == pattern.count
    }
}
