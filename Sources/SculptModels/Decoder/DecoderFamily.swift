import Foundation
import SculptCore
import SculptIO

/// A decoder with what it needs to read and write text: its byte-level BPE tokenizer and
/// chat template, from a Hugging Face directory or from a GGUF file alone.
public struct DecoderBundle {
    public let model: DecoderLM
    /// The tokenizer and chat template.
    public let text: DecoderText
    public let source: ModelSource
    /// Tensors in the checkpoint the model does not use.
    public let unexpectedTensors: [String]
    /// Storage types of a GGUF's tensors (empty for safetensors).
    public let storageTypes: [(type: String, tensors: Int)]

    /// A decoder directory or GGUF file, or a PEFT LoRA adapter directory (applied to the
    /// base model its `adapter_config.json` names and merged into its weights).
    public static func load(path: String) throws -> DecoderBundle {
        if isAdapterDirectory(path) { return try loadAdapter(URL(fileURLWithPath: path)) }
        let (family, source) = try ModelRegistry.family(of: path)
        guard family is DecoderFamily else {
            throw ModelError.badWeights(file: path, message: "a \(family.name) model, not a decoder language model")
        }
        return try load(source)
    }

    public static func load(_ source: ModelSource) throws -> DecoderBundle {
        switch source.format {
        case .gguf:
            let file = try GGUFFile(path: source.path)
            let (model, report) = try DecoderGGUF.load(file: file)
            return DecoderBundle(model: model, text: try DecoderText(source, gguf: file), source: source,
                                 unexpectedTensors: report.unexpected, storageTypes: DecoderGGUF.typeCounts(file))
        default:
            let (model, report) = try DecoderLM.load(directory: source.url)
            return DecoderBundle(model: model, text: try DecoderText(source, gguf: nil), source: source,
                                 unexpectedTensors: report.unexpected, storageTypes: [])
        }
    }

    /// The same tokenizer, template and source with another model (an extracted sub-network).
    public func replacingModel(_ model: DecoderLM) -> DecoderBundle {
        DecoderBundle(model: model, text: text, source: source, unexpectedTensors: [], storageTypes: [])
    }

    /// Whether `path` is a directory holding a PEFT adapter (`adapter_config.json`).
    public static func isAdapterDirectory(_ path: String) -> Bool {
        FileManager.default.fileExists(atPath: URL(fileURLWithPath: path).appendingPathComponent(PEFTLoRAConfig.configFileName).path)
    }

    /// Whether `path` names something `load(path:)` reads as a decoder.
    public static func isDecoder(_ path: String) -> Bool {
        if isAdapterDirectory(path) { return true }
        guard let (family, _) = try? ModelRegistry.family(of: path) else { return false }
        return family is DecoderFamily
    }

    /// The base named by the adapter's `base_model_name_or_path` (a path; a relative one is
    /// taken from the working directory, then from the adapter's directory), with the
    /// adapter's LoRA weights merged in.
    static func loadAdapter(_ dir: URL) throws -> DecoderBundle {
        let configURL = dir.appendingPathComponent(PEFTLoRAConfig.configFileName)
        let config = try PEFTLoRAConfig.load(from: configURL)
        guard let base = config.baseModelNameOrPath, !base.isEmpty else {
            throw ConfigError(file: configURL.path, key: "base_model_name_or_path", message: "names no base model; the adapter needs the path of the decoder it was trained on")
        }
        let fm = FileManager.default
        let candidates = base.hasPrefix("/") ? [base] : [base, dir.appendingPathComponent(base).standardizedFileURL.path]
        guard let basePath = candidates.first(where: { fm.fileExists(atPath: $0) }) else {
            throw ConfigError(file: configURL.path, key: "base_model_name_or_path",
                              message: "the base model \(StrictJSON.displayQuoted(base, limit: 200)) is not a local path here (download it, or edit the path)")
        }
        guard !isAdapterDirectory(basePath) else {
            throw ConfigError(file: configURL.path, key: "base_model_name_or_path", message: "names another adapter; give the base decoder")
        }
        let bundle = try load(path: basePath)
        try LoRAAdapterFiles.load(from: dir, into: bundle.model)
        bundle.model.mergeAndUnloadLoRA()
        return bundle
    }

    public var tokenizer: BPETokenizer { text.tokenizer }
    public var chatTemplate: ChatTemplate? { text.chatTemplate }

    /// Token ids of a chat rendered by the template (special tokens as the template writes them).
    public func encodeChat(_ messages: [ChatMessage], addGenerationPrompt: Bool) throws -> [Int32] {
        try text.encodeChat(messages, addGenerationPrompt: addGenerationPrompt)
    }

    /// Token ids that end generation: the config's eos ids, else the tokenizer's eos.
    public var stopTokenIds: Set<Int32> {
        var ids = Set(model.config.eosTokenIds.map(Int32.init))
        if let e = tokenizer.eosTokenId { ids.insert(e) }
        return ids
    }
}

/// LLaMA-family decoders: HF directories (`model_type` llama, mistral, qwen2, qwen3) and
/// GGUF files.
public struct DecoderFamily: ModelFamily {
    public init() {}
    public var name: String { "decoder" }
    public var tasks: Set<ModelTask> { [.causalLM] }

    public func recognizes(_ source: ModelSource) -> Bool {
        switch source.format {
        case .gguf: return true
        case .directory: return source.modelType.map(DecoderConfig.supportedModelTypes.contains) ?? false
        default: return false
        }
    }

    /// The config alone (no weights are read or allocated), so an absurd size is refused by
    /// validation and costs are computed arithmetically.
    public func config(_ source: ModelSource) throws -> (DecoderConfig, storage: [(type: String, tensors: Int)]) {
        if source.format == .gguf {
            let file = try GGUFFile(path: source.path)
            return (try DecoderConfig(gguf: file), DecoderGGUF.typeCounts(file))
        }
        return (try DecoderConfig.load(from: source.url.appendingPathComponent("config.json")), [])
    }

    public func describe(_ source: ModelSource, contextLength: Int) throws -> [ModelProperty] {
        let (c, storage) = try config(source)
        let cost = DecoderCost(config: c)
        var rows: [ModelProperty] = [
            ModelProperty("architecture", "architecture", .string("decoder LM (\(c.modelType))")),
            ModelProperty("layers", "layers", .int(c.numHiddenLayers)),
            ModelProperty("hidden_size", "hidden size", .int(c.hiddenSize)),
            ModelProperty("heads", "attention heads", .int(c.numAttentionHeads)),
            ModelProperty("kv_heads", "key/value heads", .int(c.numKeyValueHeads)),
            ModelProperty("head_dim", "head size", .int(c.headDim)),
            ModelProperty("intermediate_size", "FFN width", .int(c.intermediateSize)),
            ModelProperty("vocab_size", "vocabulary", .int(c.vocabSize)),
            ModelProperty("context_length", "context length", .int(c.contextLimit)),
            ModelProperty("rope_theta", "rope theta", .double(c.ropeTheta), display: String(format: "%g (%@)", c.ropeTheta, c.ropeScaling.name)),
            ModelProperty("tied_embeddings", "tied embeddings", .bool(c.tieWordEmbeddings)),
            ModelProperty("total_parameters", "parameters", .int(cost.parameters), display: formatCount(cost.parameters)),
            ModelProperty("embedding_parameters", "  embedding", .int(cost.embeddingParameters), display: formatCount(cost.embeddingParameters)),
            ModelProperty("non_embedding_parameters", "  non-embedding", .int(cost.parameters - cost.embeddingParameters),
                          display: formatCount(cost.parameters - cost.embeddingParameters)),
            ModelProperty("macs_per_token", "MACs per token (context \(contextLength))", .int(cost.macsPerToken(context: contextLength)),
                          display: formatCount(cost.macsPerToken(context: contextLength))),
            ModelProperty("sequence_length", "context for MACs", .int(contextLength)),
            ModelProperty("file_bytes", "file size", .int(source.weightBytes), display: String(format: "%.1f MB", Double(source.weightBytes) / 1e6)),
        ]
        if !storage.isEmpty {
            rows.append(ModelProperty("storage_types", "tensor types", .strings(storage.map { "\($0.type) ×\($0.tensors)" })))
        }
        return rows
    }

    public func tokenizer(_ source: ModelSource) throws -> any TextTokenizer {
        try DecoderText(source, gguf: source.format == .gguf ? GGUFFile(path: source.path) : nil)
    }

    /// The tokenizer a GGUF's `tokenizer.ggml.*` metadata describes (byte-level BPE only).
    public static func ggufTokenizer(_ file: GGUFFile) throws -> BPETokenizer {
        let f = try GGUFTokenizerFields(file)
        return try BPETokenizer(gguf: f.tokens, merges: f.merges, tokenTypes: f.tokenTypes, preTokenizer: f.preTokenizer,
                                bosTokenId: f.bos, eosTokenId: f.eos, padTokenId: f.pad, unknownTokenId: f.unknown,
                                addBOS: f.addBOS, addEOS: f.addEOS, source: file.path)
    }
}

/// The `tokenizer.ggml.*` fields of a GGUF, read and checked once (for the tokenizer and for
/// the tokenizer files `convert` writes).
struct GGUFTokenizerFields {
    let tokens: [String], merges: [String], tokenTypes: [Int32]?, preTokenizer: String
    let bos: Int32?, eos: Int32?, pad: Int32?, unknown: Int32?
    let addBOS: Bool, addEOS: Bool
    let chatTemplate: String?

    init(_ file: GGUFFile) throws {
        func fail(_ key: String, _ message: String) -> ConfigError { ConfigError(file: file.path, key: key, message: message) }
        let model = file["tokenizer.ggml.model"]?.string ?? ""
        guard model == "gpt2" else {
            throw fail("tokenizer.ggml.model", model.isEmpty ? "missing: the file has no tokenizer" : "unsupported tokenizer \(StrictJSON.displayQuoted(model, limit: 40)) (byte-level BPE \"gpt2\" only)")
        }
        guard let tokens = file["tokenizer.ggml.tokens"]?.stringArray else { throw fail("tokenizer.ggml.tokens", "missing, or not an array of strings") }
        guard let merges = file["tokenizer.ggml.merges"]?.stringArray, !merges.isEmpty else {
            throw fail("tokenizer.ggml.merges", "missing or empty: a BPE tokenizer needs its merges")
        }
        func id(_ key: String) -> Int32? { file[key]?.int.map { Int32(truncatingIfNeeded: $0) } }
        self.tokens = tokens
        self.merges = merges
        tokenTypes = file["tokenizer.ggml.token_type"]?.intArray?.map { Int32(truncatingIfNeeded: $0) }
        preTokenizer = file["tokenizer.ggml.pre"]?.string ?? "default"
        bos = id("tokenizer.ggml.bos_token_id"); eos = id("tokenizer.ggml.eos_token_id")
        pad = id("tokenizer.ggml.padding_token_id"); unknown = id("tokenizer.ggml.unknown_token_id")
        addBOS = file["tokenizer.ggml.add_bos_token"]?.bool ?? false
        addEOS = file["tokenizer.ggml.add_eos_token"]?.bool ?? false
        chatTemplate = file["tokenizer.chat_template"]?.string
    }
}

/// A decoder's tokenizer and chat template, from a Hugging Face directory or a GGUF's metadata.
public struct DecoderText: TextTokenizer {
    public let tokenizer: BPETokenizer
    public let chatTemplate: ChatTemplate?
    let source: String

    /// From the GGUF `file` when given, else from the directory `source`.
    init(_ source: ModelSource, gguf file: GGUFFile?) throws {
        self.source = source.path
        if let file {
            tokenizer = try DecoderFamily.ggufTokenizer(file)
            chatTemplate = try file["tokenizer.chat_template"]?.string.map { try ChatTemplate(source: $0, origin: "\(source.path): tokenizer.chat_template") }
        } else {
            tokenizer = try BPETokenizer.load(modelDirectory: source.url)
            chatTemplate = try ChatTemplate.load(modelDirectory: source.url)
        }
    }

    public func encode(_ text: String, maxLength: Int?) throws -> [Int32] {
        let ids = tokenizer.encode(text, addSpecialTokens: false)
        return maxLength.map { Array(ids.prefix($0)) } ?? ids
    }

    /// Ids of a chat rendered by the template (special tokens as the template writes them).
    public func encodeChat(_ messages: [ChatMessage], addGenerationPrompt: Bool) throws -> [Int32] {
        tokenizer.encode(try renderChat(messages, addGenerationPrompt: addGenerationPrompt), addSpecialTokens: false)
    }

    /// The text the chat template writes for `messages`.
    public func renderChat(_ messages: [ChatMessage], addGenerationPrompt: Bool) throws -> String {
        guard let chatTemplate else {
            throw ModelError.badWeights(file: source, message: "the model has no chat template (chat_template.jinja, tokenizer_config.json or tokenizer.chat_template)")
        }
        return try chatTemplate.render(messages: messages, addGenerationPrompt: addGenerationPrompt,
                                       bosToken: tokenizer.bosTokenId.flatMap(tokenizer.token(of:)),
                                       eosToken: tokenizer.eosTokenId.flatMap(tokenizer.token(of:)))
    }

    public func tokenText(_ id: Int32) -> String? { tokenizer.token(of: id) }
}

/// Parameter and multiply-accumulate counts of a decoder, computed from its config.
public struct DecoderCost: Sendable {
    public let config: DecoderConfig
    public init(config: DecoderConfig) { self.config = config }

    public var embeddingParameters: Int { config.vocabSize * config.hiddenSize }

    public var parameters: Int {
        let c = config, q = c.numAttentionHeads * c.headDim, kv = c.numKeyValueHeads * c.headDim
        var layer = c.hiddenSize * (q + 2 * kv) + q * c.hiddenSize + 3 * c.hiddenSize * c.intermediateSize + 2 * c.hiddenSize
        if c.qkvBias { layer += q + 2 * kv }
        if c.outputBias { layer += c.hiddenSize }
        if c.mlpBias { layer += 2 * c.intermediateSize + c.hiddenSize }
        if c.qkNorm { layer += 2 * c.headDim }
        return embeddingParameters + c.numHiddenLayers * layer + c.hiddenSize + (c.tieWordEmbeddings ? 0 : embeddingParameters)
    }

    /// Per token with `context` tokens attended: projections, MLP, attention scores and
    /// context, and the LM head.
    public func macsPerToken(context: Int) -> Int {
        let c = config, q = c.numAttentionHeads * c.headDim, kv = c.numKeyValueHeads * c.headDim
        let layer = c.hiddenSize * (q + 2 * kv) + q * c.hiddenSize + 3 * c.hiddenSize * c.intermediateSize + 2 * context * q
        return c.numHiddenLayers * layer + c.hiddenSize * c.vocabSize
    }
}
