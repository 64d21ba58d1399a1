import Foundation

/// A Hugging Face BERT `config.json` (as read by `transformers.BertConfig`).
///
/// `load(from:)` ignores unknown keys, fills Hugging Face's defaults for optional ones and
/// rejects anything the models here could not honour, with a one-line `ConfigError` naming
/// the file and the key. `write(to:)` writes a pretty-printed, key-sorted JSON that
/// `transformers.AutoConfig` / `BertModel.from_pretrained` load.
///
/// Extracted sub-networks may have per-layer sizes: `layerIntermediateSizes` (JSON key
/// `sculpt_intermediate_sizes`) and `layerNumHeads` (`sculpt_num_heads`), one entry per layer.
/// Heads keep the full model's head size (`headDim`), so a layer with `h` heads has attention
/// width `h * headDim`. Hugging Face ignores these keys.
///
/// Decoding through `Codable` applies the same defaults but does not validate; call
/// `validate(file:)` (as `load` and `write` do).
public struct BertConfig: Codable, Sendable, Equatable {
    public var hiddenSize: Int
    public var numHiddenLayers: Int
    public var numAttentionHeads: Int
    public var intermediateSize: Int
    public var vocabSize: Int
    public var maxPositionEmbeddings: Int
    public var typeVocabSize: Int
    public var layerNormEps: Double
    public var hiddenAct: String
    public var hiddenDropoutProb: Double
    public var attentionProbsDropoutProb: Double
    public var padTokenId: Int
    public var modelType: String
    public var initializerRange: Double
    public var positionEmbeddingType: String
    /// Per-layer FFN widths of an extracted sub-network (nil: every layer has `intermediateSize`).
    public var layerIntermediateSizes: [Int]?
    /// Per-layer head counts of an extracted sub-network (nil: every layer has `numAttentionHeads`).
    public var layerNumHeads: [Int]?

    /// Activations the BERT implementation supports (`gelu_new` and `gelu_pytorch_tanh` are
    /// the tanh approximation).
    public static let supportedActivations: Set<String> = ["gelu", "gelu_new", "gelu_pytorch_tanh", "relu"]

    public init(
        hiddenSize: Int,
        numHiddenLayers: Int,
        numAttentionHeads: Int,
        intermediateSize: Int,
        vocabSize: Int,
        maxPositionEmbeddings: Int,
        typeVocabSize: Int = 2,
        layerNormEps: Double = 1e-12,
        hiddenAct: String = "gelu",
        hiddenDropoutProb: Double = 0.1,
        attentionProbsDropoutProb: Double = 0.1,
        padTokenId: Int = 0,
        modelType: String = "bert",
        initializerRange: Double = 0.02,
        positionEmbeddingType: String = "absolute",
        layerIntermediateSizes: [Int]? = nil,
        layerNumHeads: [Int]? = nil
    ) {
        self.hiddenSize = hiddenSize
        self.numHiddenLayers = numHiddenLayers
        self.numAttentionHeads = numAttentionHeads
        self.intermediateSize = intermediateSize
        self.vocabSize = vocabSize
        self.maxPositionEmbeddings = maxPositionEmbeddings
        self.typeVocabSize = typeVocabSize
        self.layerNormEps = layerNormEps
        self.hiddenAct = hiddenAct
        self.hiddenDropoutProb = hiddenDropoutProb
        self.attentionProbsDropoutProb = attentionProbsDropoutProb
        self.padTokenId = padTokenId
        self.modelType = modelType
        self.initializerRange = initializerRange
        self.positionEmbeddingType = positionEmbeddingType
        self.layerIntermediateSizes = layerIntermediateSizes
        self.layerNumHeads = layerNumHeads
    }

    /// Size of one attention head.
    public var headDim: Int { numAttentionHeads > 0 ? hiddenSize / numAttentionHeads : 0 }

    /// FFN width of layer `layer` (per-layer size if present).
    public func intermediateSize(layer: Int) -> Int {
        if let sizes = layerIntermediateSizes, sizes.indices.contains(layer) { return sizes[layer] }
        return intermediateSize
    }

    /// Attention heads of layer `layer` (per-layer count if present).
    public func numHeads(layer: Int) -> Int {
        if let heads = layerNumHeads, heads.indices.contains(layer) { return heads[layer] }
        return numAttentionHeads
    }

    /// Parameters of the model this config describes, computed without building it (sizes
    /// bounded by `validate`; saturates at Int.max instead of overflowing).
    public func parameterCount(withPooler: Bool) -> Int {
        func mul(_ a: Int, _ b: Int) -> Int { let r = a.multipliedReportingOverflow(by: b); return r.overflow ? .max : r.partialValue }
        func add(_ a: Int, _ b: Int) -> Int { let r = a.addingReportingOverflow(b); return r.overflow ? .max : r.partialValue }
        let h = hiddenSize
        var total = add(mul(add(add(vocabSize, maxPositionEmbeddings), typeVocabSize), h), 2 * h)
        for layer in 0..<max(numHiddenLayers, 0) {
            let a = mul(numHeads(layer: layer), headDim), f = intermediateSize(layer: layer)
            let attention = add(mul(4, mul(h, a)), add(mul(3, a), h))     // q, k, v (+ biases), output (+ bias)
            let ffn = add(mul(2, mul(h, f)), add(f, h))                    // in (+ bias), out (+ bias)
            total = add(total, add(add(attention, ffn), 4 * h))            // two LayerNorms
        }
        return withPooler ? add(total, add(mul(h, h), h)) : total
    }

    // MARK: Keys

    enum CodingKeys: String, CodingKey, CaseIterable {
        case hiddenSize = "hidden_size"
        case numHiddenLayers = "num_hidden_layers"
        case numAttentionHeads = "num_attention_heads"
        case intermediateSize = "intermediate_size"
        case vocabSize = "vocab_size"
        case maxPositionEmbeddings = "max_position_embeddings"
        case typeVocabSize = "type_vocab_size"
        case layerNormEps = "layer_norm_eps"
        case hiddenAct = "hidden_act"
        case hiddenDropoutProb = "hidden_dropout_prob"
        case attentionProbsDropoutProb = "attention_probs_dropout_prob"
        case padTokenId = "pad_token_id"
        case modelType = "model_type"
        case initializerRange = "initializer_range"
        case positionEmbeddingType = "position_embedding_type"
        case layerIntermediateSizes = "sculpt_intermediate_sizes"
        case layerNumHeads = "sculpt_num_heads"
        case architectures
    }

    // MARK: Validation

    /// Throws a `ConfigError` (naming `file` and the key) if the values are unusable.
    public func validate(file: String = "config.json") throws {
        func fail(_ key: CodingKeys, _ message: String) -> ConfigError {
            ConfigError(file: file, key: key.rawValue, message: message)
        }
        let positives: [(CodingKeys, Int)] = [
            (.hiddenSize, hiddenSize), (.numHiddenLayers, numHiddenLayers), (.numAttentionHeads, numAttentionHeads),
            (.intermediateSize, intermediateSize), (.vocabSize, vocabSize),
            (.maxPositionEmbeddings, maxPositionEmbeddings), (.typeVocabSize, typeVocabSize),
        ]
        for (key, value) in positives where value <= 0 {
            throw fail(key, "must be positive, got \(value)")
        }
        // Bounded (as DecoderConfig is) so parameter counts and costs are computed without
        // overflow, and an absurd config is refused before anything is allocated.
        let limit = 1 << 24
        for (key, value) in positives where value > limit {
            throw fail(key, "\(value) is larger than this implementation supports (\(limit))")
        }
        guard numHiddenLayers <= 4096, numAttentionHeads <= 4096 else {
            throw fail(numHiddenLayers > 4096 ? .numHiddenLayers : .numAttentionHeads, "more than 4096 layers or heads is not supported")
        }
        if let sizes = layerIntermediateSizes, let bad = sizes.firstIndex(where: { $0 > limit }) {
            throw fail(.layerIntermediateSizes, "entry \(bad) is \(sizes[bad]), larger than this implementation supports (\(limit))")
        }
        guard parameterCount(withPooler: true) <= 1 << 40 else {
            throw fail(.hiddenSize, "the model's sizes multiply to more parameters than this implementation supports (2^40)")
        }
        guard hiddenSize % numAttentionHeads == 0 else {
            throw fail(.hiddenSize, "\(hiddenSize) is not divisible by num_attention_heads (\(numAttentionHeads))")
        }
        guard layerNormEps > 0, layerNormEps.isFinite else { throw fail(.layerNormEps, "must be positive, got \(layerNormEps)") }
        for (key, p) in [(CodingKeys.hiddenDropoutProb, hiddenDropoutProb), (.attentionProbsDropoutProb, attentionProbsDropoutProb)]
        where !(p >= 0 && p < 1) {
            throw fail(key, "must be in [0, 1), got \(p)")
        }
        guard BertConfig.supportedActivations.contains(hiddenAct) else {
            throw fail(.hiddenAct, "unsupported activation \(StrictJSON.displayQuoted(hiddenAct, limit: 40)) (supported: \(BertConfig.supportedActivations.sorted().joined(separator: ", ")))")
        }
        guard positionEmbeddingType == "absolute" else {
            throw fail(.positionEmbeddingType, "only \"absolute\" is supported, got \(StrictJSON.displayQuoted(positionEmbeddingType, limit: 40))")
        }
        guard padTokenId >= 0 && padTokenId < vocabSize else {
            throw fail(.padTokenId, "\(padTokenId) is outside the vocabulary (0..<\(vocabSize))")
        }
        if let sizes = layerIntermediateSizes {
            guard sizes.count == numHiddenLayers else {
                throw fail(.layerIntermediateSizes, "has \(sizes.count) entries for \(numHiddenLayers) layers")
            }
            if let bad = sizes.firstIndex(where: { $0 < 0 }) {
                throw fail(.layerIntermediateSizes, "entry \(bad) is negative (\(sizes[bad]))")
            }
        }
        if let heads = layerNumHeads {
            guard heads.count == numHiddenLayers else {
                throw fail(.layerNumHeads, "has \(heads.count) entries for \(numHiddenLayers) layers")
            }
            if let bad = heads.firstIndex(where: { $0 < 0 || $0 > numAttentionHeads }) {
                throw fail(.layerNumHeads, "entry \(bad) is \(heads[bad]), outside 0...\(numAttentionHeads)")
            }
        }
    }

    // MARK: Loading

    /// Loads and validates a `config.json`.
    public static func load(from url: URL) throws -> BertConfig {
        let file = url.path
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            throw ConfigError(file: file, key: nil, message: "cannot read: \(oneLine(error))")
        }
        return try parse(data, file: file)
    }

    /// Parses and validates config JSON; `file` names the source in errors.
    public static func parse(_ data: Data, file: String = "config.json") throws -> BertConfig {
        let json: StrictJSON.Value
        do {
            json = try data.withUnsafeBytes { try StrictJSON.parse($0) }
        } catch let error as StrictJSON.ParseError {
            throw ConfigError(file: file, key: nil, message: "not valid JSON: \(error)")
        }
        guard case .object = json else {
            throw ConfigError(file: file, key: nil, message: "the JSON is \(json.kindDescription), not an object")
        }

        func value(_ key: CodingKeys) -> StrictJSON.Value? {
            guard let v = json[key.rawValue] else { return nil }
            if case .null = v { return nil }  // transformers treats null like "use the default"
            return v
        }
        func int(_ key: CodingKeys, default fallback: Int?) throws -> Int {
            guard let v = value(key) else {
                if let fallback { return fallback }
                throw ConfigError(file: file, key: key.rawValue, message: "missing required key")
            }
            guard let n = v.intValue else { throw wrongType(key, v, "an integer") }
            return n
        }
        func double(_ key: CodingKeys, default fallback: Double) throws -> Double {
            guard let v = value(key) else { return fallback }
            guard let d = v.doubleValue else { throw wrongType(key, v, "a number") }
            return d
        }
        func string(_ key: CodingKeys, default fallback: String) throws -> String {
            guard let v = value(key) else { return fallback }
            guard let s = v.stringValue else { throw wrongType(key, v, "a string") }
            return s
        }
        func ints(_ key: CodingKeys) throws -> [Int]? {
            guard let v = value(key) else { return nil }
            guard case .array(let items) = v else { throw wrongType(key, v, "an array of integers") }
            return try items.map { item in
                guard let n = item.intValue else { throw wrongType(key, item, "an array of integers") }
                return n
            }
        }
        func wrongType(_ key: CodingKeys, _ v: StrictJSON.Value, _ expected: String) -> ConfigError {
            var found = v.kindDescription
            if case .number(let text) = v { found += " (\(text.prefix(40)))" }
            if case .string(let s) = v { found += " (\(StrictJSON.displayQuoted(s, limit: 40)))" }
            return ConfigError(file: file, key: key.rawValue, message: "expected \(expected), found \(found)")
        }

        let config = BertConfig(
            hiddenSize: try int(.hiddenSize, default: nil),
            numHiddenLayers: try int(.numHiddenLayers, default: nil),
            numAttentionHeads: try int(.numAttentionHeads, default: nil),
            intermediateSize: try int(.intermediateSize, default: nil),
            vocabSize: try int(.vocabSize, default: nil),
            maxPositionEmbeddings: try int(.maxPositionEmbeddings, default: nil),
            typeVocabSize: try int(.typeVocabSize, default: 2),
            layerNormEps: try double(.layerNormEps, default: 1e-12),
            hiddenAct: try string(.hiddenAct, default: "gelu"),
            hiddenDropoutProb: try double(.hiddenDropoutProb, default: 0.1),
            attentionProbsDropoutProb: try double(.attentionProbsDropoutProb, default: 0.1),
            padTokenId: try int(.padTokenId, default: 0),
            modelType: try string(.modelType, default: "bert"),
            initializerRange: try double(.initializerRange, default: 0.02),
            positionEmbeddingType: try string(.positionEmbeddingType, default: "absolute"),
            layerIntermediateSizes: try ints(.layerIntermediateSizes),
            layerNumHeads: try ints(.layerNumHeads)
        )
        try config.validate(file: file)
        return config
    }

    private static func oneLine(_ error: Error) -> String {
        String(describing: error).split(whereSeparator: \.isNewline).joined(separator: " ")
    }

    // MARK: Writing

    /// The JSON text `write(to:)` writes: pretty-printed, keys sorted, with `architectures`
    /// and `model_type` so that `transformers` recognises it.
    public func jsonData() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        var data = try encoder.encode(self)
        data.append(UInt8(ascii: "\n"))
        return data
    }

    /// Validates and writes the config atomically.
    public func write(to url: URL) throws {
        try validate(file: url.path)
        try AtomicFile.write(try jsonData(), to: url)
    }

    // MARK: Codable

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            hiddenSize: try c.decode(Int.self, forKey: .hiddenSize),
            numHiddenLayers: try c.decode(Int.self, forKey: .numHiddenLayers),
            numAttentionHeads: try c.decode(Int.self, forKey: .numAttentionHeads),
            intermediateSize: try c.decode(Int.self, forKey: .intermediateSize),
            vocabSize: try c.decode(Int.self, forKey: .vocabSize),
            maxPositionEmbeddings: try c.decode(Int.self, forKey: .maxPositionEmbeddings),
            typeVocabSize: try c.decodeIfPresent(Int.self, forKey: .typeVocabSize) ?? 2,
            layerNormEps: try c.decodeIfPresent(Double.self, forKey: .layerNormEps) ?? 1e-12,
            hiddenAct: try c.decodeIfPresent(String.self, forKey: .hiddenAct) ?? "gelu",
            hiddenDropoutProb: try c.decodeIfPresent(Double.self, forKey: .hiddenDropoutProb) ?? 0.1,
            attentionProbsDropoutProb: try c.decodeIfPresent(Double.self, forKey: .attentionProbsDropoutProb) ?? 0.1,
            padTokenId: try c.decodeIfPresent(Int.self, forKey: .padTokenId) ?? 0,
            modelType: try c.decodeIfPresent(String.self, forKey: .modelType) ?? "bert",
            initializerRange: try c.decodeIfPresent(Double.self, forKey: .initializerRange) ?? 0.02,
            positionEmbeddingType: try c.decodeIfPresent(String.self, forKey: .positionEmbeddingType) ?? "absolute",
            layerIntermediateSizes: try c.decodeIfPresent([Int].self, forKey: .layerIntermediateSizes),
            layerNumHeads: try c.decodeIfPresent([Int].self, forKey: .layerNumHeads)
        )
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(["BertModel"], forKey: .architectures)
        try c.encode(hiddenSize, forKey: .hiddenSize)
        try c.encode(numHiddenLayers, forKey: .numHiddenLayers)
        try c.encode(numAttentionHeads, forKey: .numAttentionHeads)
        try c.encode(intermediateSize, forKey: .intermediateSize)
        try c.encode(vocabSize, forKey: .vocabSize)
        try c.encode(maxPositionEmbeddings, forKey: .maxPositionEmbeddings)
        try c.encode(typeVocabSize, forKey: .typeVocabSize)
        try c.encode(layerNormEps, forKey: .layerNormEps)
        try c.encode(hiddenAct, forKey: .hiddenAct)
        try c.encode(hiddenDropoutProb, forKey: .hiddenDropoutProb)
        try c.encode(attentionProbsDropoutProb, forKey: .attentionProbsDropoutProb)
        try c.encode(padTokenId, forKey: .padTokenId)
        try c.encode(modelType, forKey: .modelType)
        try c.encode(initializerRange, forKey: .initializerRange)
        try c.encode(positionEmbeddingType, forKey: .positionEmbeddingType)
        try c.encodeIfPresent(layerIntermediateSizes, forKey: .layerIntermediateSizes)
        try c.encodeIfPresent(layerNumHeads, forKey: .layerNumHeads)
    }
}

extension WordPieceTokenizer {
    /// Loads the tokenizer of a model directory and checks it against the model's config:
    /// every id it can produce must be a row of the embedding table (`vocab_size`), so a
    /// mismatched tokenizer is refused at load instead of trapping in the embedding lookup.
    public static func load(modelDirectory: URL, checkedAgainst config: BertConfig) throws -> WordPieceTokenizer {
        let tokenizer = try load(modelDirectory: modelDirectory)
        guard tokenizer.vocabularySize <= config.vocabSize else {
            let json = modelDirectory.appendingPathComponent("tokenizer.json")
            let source = FileManager.default.fileExists(atPath: json.path) ? json : modelDirectory.appendingPathComponent("vocab.txt")
            throw TokenizerError(file: source.path, reason: "has ids up to \(tokenizer.vocabularySize - 1) but config.json's vocab_size is \(config.vocabSize) (the tokenizer does not belong to this model)")
        }
        return tokenizer
    }
}
