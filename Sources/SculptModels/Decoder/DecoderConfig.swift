import Foundation
import SculptIO

/// How rotary frequencies are scaled for long contexts (transformers' `rope_type`).
public enum RopeScaling: Sendable, Equatable {
    case none
    /// Positions divided by `factor` (inverse frequencies / factor).
    case linear(factor: Double)
    /// NTK-aware: the base grows once the sequence passes `originalMaxPositions`.
    case dynamic(factor: Double, originalMaxPositions: Int)
    /// LLaMA 3.1's per-frequency scaling.
    case llama3(factor: Double, lowFrequencyFactor: Double, highFrequencyFactor: Double, originalMaxPositions: Int)

    public var name: String {
        switch self {
        case .none: return "default"
        case .linear: return "linear"
        case .dynamic: return "dynamic"
        case .llama3: return "llama3"
        }
    }
}

/// A LLaMA-family decoder's `config.json` (`model_type` llama, mistral, qwen2 or qwen3), as
/// transformers reads it: defaults filled per family, anything the implementation cannot
/// honour refused with a `ConfigError` naming the file and the key.
public struct DecoderConfig: Sendable, Equatable {
    public static let supportedModelTypes = ["llama", "mistral", "qwen2", "qwen3"]

    public var modelType: String
    public var hiddenSize: Int
    public var numHiddenLayers: Int
    public var numAttentionHeads: Int
    public var numKeyValueHeads: Int
    public var headDim: Int
    public var intermediateSize: Int
    public var vocabSize: Int
    public var maxPositionEmbeddings: Int
    public var rmsNormEps: Double
    public var ropeTheta: Double
    public var ropeScaling: RopeScaling
    /// Fraction of each head's dimensions that rotate (transformers' `partial_rotary_factor`).
    public var partialRotaryFactor: Double
    /// Biases on the q/k/v projections (Qwen2 always; LLaMA with `attention_bias`).
    public var qkvBias: Bool
    /// A bias on the output projection (LLaMA with `attention_bias`).
    public var outputBias: Bool
    public var mlpBias: Bool
    /// RMS norms of each query and key head (Qwen3).
    public var qkNorm: Bool
    public var tieWordEmbeddings: Bool
    /// Mistral's sliding attention window: contexts longer than this are refused.
    public var slidingWindow: Int?
    public var bosTokenId: Int?
    public var eosTokenIds: [Int]
    public var padTokenId: Int?
    public var initializerRange: Double

    /// The longest context this implementation computes exactly (full attention only).
    public var contextLimit: Int { min(maxPositionEmbeddings, slidingWindow ?? .max) }

    /// Rotated dimensions per head.
    public var rotaryDim: Int { Int(Double(headDim) * partialRotaryFactor) / 2 * 2 }

    public var architectureName: String {
        switch modelType {
        case "mistral": return "MistralForCausalLM"
        case "qwen2": return "Qwen2ForCausalLM"
        case "qwen3": return "Qwen3ForCausalLM"
        default: return "LlamaForCausalLM"
        }
    }

    public init(modelType: String = "llama", hiddenSize: Int, numHiddenLayers: Int, numAttentionHeads: Int, numKeyValueHeads: Int? = nil,
                headDim: Int? = nil, intermediateSize: Int, vocabSize: Int, maxPositionEmbeddings: Int = 2048, rmsNormEps: Double = 1e-6,
                ropeTheta: Double = 10000, ropeScaling: RopeScaling = .none, partialRotaryFactor: Double = 1,
                qkvBias: Bool = false, outputBias: Bool = false, mlpBias: Bool = false, qkNorm: Bool = false, tieWordEmbeddings: Bool = false,
                slidingWindow: Int? = nil, bosTokenId: Int? = nil, eosTokenIds: [Int] = [], padTokenId: Int? = nil, initializerRange: Double = 0.02) {
        self.modelType = modelType
        self.hiddenSize = hiddenSize
        self.numHiddenLayers = numHiddenLayers
        self.numAttentionHeads = numAttentionHeads
        self.numKeyValueHeads = numKeyValueHeads ?? numAttentionHeads
        self.headDim = headDim ?? (numAttentionHeads > 0 ? hiddenSize / numAttentionHeads : 0)
        self.intermediateSize = intermediateSize
        self.vocabSize = vocabSize
        self.maxPositionEmbeddings = maxPositionEmbeddings
        self.rmsNormEps = rmsNormEps
        self.ropeTheta = ropeTheta
        self.ropeScaling = ropeScaling
        self.partialRotaryFactor = partialRotaryFactor
        self.qkvBias = qkvBias
        self.outputBias = outputBias
        self.mlpBias = mlpBias
        self.qkNorm = qkNorm
        self.tieWordEmbeddings = tieWordEmbeddings
        self.slidingWindow = slidingWindow
        self.bosTokenId = bosTokenId
        self.eosTokenIds = eosTokenIds
        self.padTokenId = padTokenId
        self.initializerRange = initializerRange
    }

    /// Throws a `ConfigError` naming `file` and the key if the values are unusable. Sizes
    /// are bounded so that costs can be computed without overflow and nothing is allocated
    /// from an absurd config.
    public func validate(file: String) throws {
        func fail(_ key: String, _ message: String) -> ConfigError { ConfigError(file: file, key: key, message: message) }
        guard Self.supportedModelTypes.contains(modelType) else {
            throw fail("model_type", "unsupported decoder \(StrictJSON.displayQuoted(modelType, limit: 40)) (supported: \(Self.supportedModelTypes.joined(separator: ", ")))")
        }
        let limit = 1 << 24
        for (key, value) in [("hidden_size", hiddenSize), ("num_hidden_layers", numHiddenLayers), ("num_attention_heads", numAttentionHeads),
                             ("num_key_value_heads", numKeyValueHeads), ("head_dim", headDim), ("intermediate_size", intermediateSize),
                             ("vocab_size", vocabSize), ("max_position_embeddings", maxPositionEmbeddings)] {
            guard value > 0 else { throw fail(key, "must be positive, got \(value)") }
            guard value <= limit else { throw fail(key, "\(value) is larger than this implementation supports (\(limit))") }
        }
        guard numHiddenLayers <= 4096, numAttentionHeads <= 4096 else { throw fail("num_hidden_layers", "too many layers or heads") }
        guard numAttentionHeads % numKeyValueHeads == 0 else {
            throw fail("num_key_value_heads", "\(numAttentionHeads) attention heads are not a multiple of \(numKeyValueHeads) key/value heads")
        }
        // Parameter counts must fit comfortably in an Int (and in memory checks later).
        let perLayer = hiddenSize.multipliedReportingOverflow(by: (numAttentionHeads + 2 * numKeyValueHeads) * headDim + 3 * intermediateSize)
        let embeddings = vocabSize.multipliedReportingOverflow(by: hiddenSize)
        guard !perLayer.overflow, !embeddings.overflow, perLayer.partialValue <= 1 << 40, embeddings.partialValue <= 1 << 40,
              !perLayer.partialValue.multipliedReportingOverflow(by: numHiddenLayers).overflow else {
            throw fail("hidden_size", "the model's sizes multiply to more parameters than this implementation supports")
        }
        guard rmsNormEps > 0, rmsNormEps.isFinite else { throw fail("rms_norm_eps", "must be positive, got \(rmsNormEps)") }
        guard ropeTheta > 0, ropeTheta.isFinite else { throw fail("rope_theta", "must be positive, got \(ropeTheta)") }
        guard partialRotaryFactor > 0, partialRotaryFactor <= 1, rotaryDim >= 2 else {
            throw fail("partial_rotary_factor", "must be in (0, 1] and leave at least 2 rotary dimensions, got \(partialRotaryFactor)")
        }
        switch ropeScaling {
        case .none: break
        case .linear(let f), .dynamic(let f, _):
            guard f >= 1, f.isFinite else { throw fail("rope_scaling", "factor must be at least 1, got \(f)") }
        case .llama3(let f, let low, let high, let original):
            guard f >= 1, f.isFinite, low > 0, high > low, original > 0 else {
                throw fail("rope_scaling", "llama3 scaling needs factor ≥ 1, 0 < low_freq_factor < high_freq_factor and original_max_position_embeddings > 0")
            }
        }
        if let w = slidingWindow { guard w > 0 else { throw fail("sliding_window", "must be positive, got \(w)") } }
        for (key, id) in [("bos_token_id", bosTokenId), ("pad_token_id", padTokenId)] {
            if let id, id < 0 || id >= vocabSize { throw fail(key, "\(id) is outside the vocabulary (0..<\(vocabSize))") }
        }
        if let bad = eosTokenIds.first(where: { $0 < 0 || $0 >= vocabSize }) {
            throw fail("eos_token_id", "\(bad) is outside the vocabulary (0..<\(vocabSize))")
        }
    }

    // MARK: Reading

    /// Loads and validates a decoder `config.json`.
    public static func load(from url: URL) throws -> DecoderConfig {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw ConfigError(file: url.path, key: nil, message: "cannot read: \(error.localizedDescription)")
        }
        return try parse(data, file: url.path)
    }

    /// The `model_type` of a config file's JSON, if it has one (for choosing a family).
    public static func modelType(ofConfig data: Data) -> String? {
        guard let json = try? data.withUnsafeBytes({ try StrictJSON.parse($0) }) else { return nil }
        return json["model_type"]?.stringValue
    }

    public static func parse(_ data: Data, file: String) throws -> DecoderConfig {
        let json: StrictJSON.Value
        do { json = try data.withUnsafeBytes { try StrictJSON.parse($0) } } catch let e as StrictJSON.ParseError {
            throw ConfigError(file: file, key: nil, message: "not valid JSON: \(e)")
        }
        guard case .object = json else { throw ConfigError(file: file, key: nil, message: "the JSON is \(json.kindDescription), not an object") }
        let reader = ConfigReader(json: json, file: file)
        let modelType = try reader.string("model_type", default: nil)
        guard supportedModelTypes.contains(modelType) else {
            throw ConfigError(file: file, key: "model_type", message: "unsupported decoder \(StrictJSON.displayQuoted(modelType, limit: 40)) (supported: \(supportedModelTypes.joined(separator: ", ")))")
        }
        let activation = try reader.string("hidden_act", default: "silu")
        guard activation == "silu" || activation == "swish" else {
            throw ConfigError(file: file, key: "hidden_act", message: "only silu (SwiGLU) is supported, got \(StrictJSON.displayQuoted(activation, limit: 40))")
        }
        let heads = try reader.int("num_attention_heads", default: nil)
        let hidden = try reader.int("hidden_size", default: nil)
        let attentionBias = try reader.bool("attention_bias", default: false)
        // transformers 5 keeps rope settings in `rope_parameters`; older files in rope_theta + rope_scaling.
        let rope = try reader.object("rope_parameters") ?? reader.object("rope_scaling")
        let ropeReader = rope.map { ConfigReader(json: $0, file: file, prefix: json["rope_parameters"] != nil ? "rope_parameters." : "rope_scaling.") }
        let theta = try ropeReader?.double("rope_theta", default: nil, optional: true) ?? reader.double("rope_theta", default: 10000)
        let maxPositions = try reader.int("max_position_embeddings", default: 2048)
        let scaling = try ropeReader.map { try $0.ropeScaling(maxPositions: maxPositions) } ?? .none
        let declaresSlidingWindow = try reader.bool("use_sliding_window", default: false)
        let usesSlidingWindow = modelType == "mistral" || declaresSlidingWindow
        let eos: [Int]
        switch json["eos_token_id"] {
        case .none, .some(.null): eos = []
        case .some(.array(let items)):
            eos = try items.map { guard let n = $0.intValue else { throw reader.wrongType("eos_token_id", $0, "an integer or a list of integers") }; return n }
        case .some(let v):
            guard let n = v.intValue else { throw reader.wrongType("eos_token_id", v, "an integer or a list of integers") }
            eos = [n]
        }
        let config = DecoderConfig(
            modelType: modelType, hiddenSize: hidden,
            numHiddenLayers: try reader.int("num_hidden_layers", default: nil), numAttentionHeads: heads,
            numKeyValueHeads: try reader.int("num_key_value_heads", default: heads),
            headDim: try reader.int("head_dim", default: heads > 0 ? hidden / heads : 0),
            intermediateSize: try reader.int("intermediate_size", default: nil), vocabSize: try reader.int("vocab_size", default: nil),
            maxPositionEmbeddings: maxPositions, rmsNormEps: try reader.double("rms_norm_eps", default: 1e-6),
            ropeTheta: theta, ropeScaling: scaling,
            partialRotaryFactor: try ropeReader?.double("partial_rotary_factor", default: nil, optional: true) ?? reader.double("partial_rotary_factor", default: 1),
            qkvBias: modelType == "qwen2" ? true : attentionBias, outputBias: modelType == "qwen2" ? false : attentionBias,
            mlpBias: try reader.bool("mlp_bias", default: false), qkNorm: modelType == "qwen3",
            tieWordEmbeddings: try reader.bool("tie_word_embeddings", default: false),
            slidingWindow: usesSlidingWindow ? try reader.optionalInt("sliding_window") : nil,
            bosTokenId: try reader.optionalInt("bos_token_id"), eosTokenIds: eos, padTokenId: try reader.optionalInt("pad_token_id"),
            initializerRange: try reader.double("initializer_range", default: 0.02))
        try config.validate(file: file)
        return config
    }

    // MARK: Writing

    /// config.json as transformers writes it for this family (rope settings both in the
    /// transformers-5 `rope_parameters` form and as `rope_theta`, so older versions read it).
    public func jsonObject(torchDtype: String = "float32") -> [String: Any] {
        var rope: [String: Any] = ["rope_type": ropeScaling.name, "rope_theta": ropeTheta]
        switch ropeScaling {
        case .none: break
        case .linear(let f): rope["factor"] = f
        case .dynamic(let f, let o): rope["factor"] = f; rope["original_max_position_embeddings"] = o
        case .llama3(let f, let lo, let hi, let o):
            rope["factor"] = f; rope["low_freq_factor"] = lo; rope["high_freq_factor"] = hi; rope["original_max_position_embeddings"] = o
        }
        if partialRotaryFactor != 1 { rope["partial_rotary_factor"] = partialRotaryFactor }
        var o: [String: Any] = [
            "architectures": [architectureName], "model_type": modelType, "hidden_size": hiddenSize, "num_hidden_layers": numHiddenLayers,
            "num_attention_heads": numAttentionHeads, "num_key_value_heads": numKeyValueHeads, "head_dim": headDim,
            "intermediate_size": intermediateSize, "vocab_size": vocabSize, "max_position_embeddings": maxPositionEmbeddings,
            "rms_norm_eps": rmsNormEps, "rope_theta": ropeTheta, "rope_parameters": rope, "hidden_act": "silu",
            "tie_word_embeddings": tieWordEmbeddings, "mlp_bias": mlpBias, "initializer_range": initializerRange,
            "attention_dropout": 0.0, "use_cache": true, "torch_dtype": torchDtype,
        ]
        if modelType != "qwen2" { o["attention_bias"] = qkvBias }
        if modelType == "mistral" || modelType.hasPrefix("qwen") {
            o["sliding_window"] = slidingWindow.map { $0 as Any } ?? NSNull()
            if modelType.hasPrefix("qwen") { o["use_sliding_window"] = false }
        }
        if let b = bosTokenId { o["bos_token_id"] = b }
        if eosTokenIds.count == 1 { o["eos_token_id"] = eosTokenIds[0] } else if !eosTokenIds.isEmpty { o["eos_token_id"] = eosTokenIds }
        if let p = padTokenId { o["pad_token_id"] = p }
        return o
    }

    /// Validates and writes config.json atomically.
    public func write(to url: URL, torchDtype: String = "float32") throws {
        try validate(file: url.path)
        var data = try JSONSerialization.data(withJSONObject: jsonObject(torchDtype: torchDtype), options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
        data.append(UInt8(ascii: "\n"))
        try AtomicFile.write(data, to: url)
    }
}

/// Typed reads of a config object with errors naming the file and the key.
struct ConfigReader {
    let json: StrictJSON.Value
    let file: String
    var prefix = ""

    func value(_ key: String) -> StrictJSON.Value? {
        guard let v = json[key] else { return nil }
        if case .null = v { return nil }
        return v
    }
    func wrongType(_ key: String, _ v: StrictJSON.Value, _ expected: String) -> ConfigError {
        var found = v.kindDescription
        if case .number(let text) = v { found += " (\(text.prefix(40)))" }
        if case .string(let s) = v { found += " (\(StrictJSON.displayQuoted(s, limit: 40)))" }
        return ConfigError(file: file, key: prefix + key, message: "expected \(expected), found \(found)")
    }
    func missing(_ key: String) -> ConfigError { ConfigError(file: file, key: prefix + key, message: "missing required key") }

    func int(_ key: String, default fallback: Int?) throws -> Int {
        guard let v = value(key) else { if let fallback { return fallback }; throw missing(key) }
        guard let n = v.intValue else { throw wrongType(key, v, "an integer") }
        return n
    }
    func optionalInt(_ key: String) throws -> Int? {
        guard let v = value(key) else { return nil }
        guard let n = v.intValue else { throw wrongType(key, v, "an integer") }
        return n
    }
    func double(_ key: String, default fallback: Double?, optional: Bool = false) throws -> Double? {
        guard let v = value(key) else { if let fallback { return fallback }; if optional { return nil }; throw missing(key) }
        guard let d = v.doubleValue else { throw wrongType(key, v, "a number") }
        return d
    }
    func double(_ key: String, default fallback: Double) throws -> Double { try double(key, default: fallback, optional: false)! }
    func bool(_ key: String, default fallback: Bool) throws -> Bool {
        guard let v = value(key) else { return fallback }
        guard let b = v.boolValue else { throw wrongType(key, v, "true or false") }
        return b
    }
    func string(_ key: String, default fallback: String?) throws -> String {
        guard let v = value(key) else { if let fallback { return fallback }; throw missing(key) }
        guard let s = v.stringValue else { throw wrongType(key, v, "a string") }
        return s
    }
    func object(_ key: String) throws -> StrictJSON.Value? {
        guard let v = value(key) else { return nil }
        guard case .object = v else { throw wrongType(key, v, "an object") }
        return v
    }

    /// A rope_parameters / rope_scaling object's scaling type; types the implementation
    /// does not compute exactly (yarn, longrope, …) are refused by name.
    func ropeScaling(maxPositions: Int) throws -> RopeScaling {
        let type = try value("rope_type") != nil ? string("rope_type", default: nil) : string("type", default: "default")
        switch type {
        case "default": return .none
        case "linear": return .linear(factor: try double("factor", default: nil, optional: false)!)
        case "dynamic":
            return .dynamic(factor: try double("factor", default: nil, optional: false)!,
                            originalMaxPositions: try int("original_max_position_embeddings", default: maxPositions))
        case "llama3":
            return .llama3(factor: try double("factor", default: nil, optional: false)!,
                           lowFrequencyFactor: try double("low_freq_factor", default: 1),
                           highFrequencyFactor: try double("high_freq_factor", default: 4),
                           originalMaxPositions: try int("original_max_position_embeddings", default: 8192))
        default:
            throw ConfigError(file: file, key: prefix + "rope_type", message: "unsupported rope scaling \(StrictJSON.displayQuoted(type, limit: 40)) (supported: default, linear, dynamic, llama3)")
        }
    }
}
