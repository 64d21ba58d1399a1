import Foundation

// Loading a `BPETokenizer` from a Hugging Face tokenizer.json (+ tokenizer_config.json) or
// from GGUF tokenizer metadata. Every problem is a `TokenizerError` naming the file and field.

extension BPETokenizer {
    /// Loads `tokenizer.json` of a Hugging Face model directory, with `tokenizer_config.json`
    /// when present (special tokens, `add_bos_token`, `add_eos_token`).
    public static func load(modelDirectory: URL) throws -> BPETokenizer {
        let json = modelDirectory.appendingPathComponent("tokenizer.json")
        guard FileManager.default.fileExists(atPath: json.path) else {
            throw TokenizerError(file: modelDirectory.path, reason: "no tokenizer.json in the directory")
        }
        let config = modelDirectory.appendingPathComponent("tokenizer_config.json")
        return try load(tokenizerJSON: json, config: FileManager.default.fileExists(atPath: config.path) ? config : nil)
    }

    /// Loads a Hugging Face `tokenizer.json` with a BPE model, and optionally its
    /// `tokenizer_config.json`.
    public static func load(tokenizerJSON: URL, config: URL?) throws -> BPETokenizer {
        let path = tokenizerJSON.path
        func fail(_ reason: String) -> TokenizerError { TokenizerError(file: path, reason: reason) }
        let root = try readObject(tokenizerJSON)

        // Model.
        guard let model = root[first: "model"], case .object = model else { throw fail("no \"model\" object (not a Hugging Face tokenizer.json?)") }
        let type = model[first: "type"]?.stringValue ?? "BPE"
        guard type == "BPE" else { throw fail("model.type \"\(type)\" is not supported (only BPE)") }
        guard let vocabMembers = model[first: "vocab"]?.objectMembers, !vocabMembers.isEmpty else {
            throw fail("model.vocab is missing, empty or not an object")
        }
        var tokens = [String?](repeating: nil, count: vocabMembers.count)
        for member in vocabMembers {
            guard let id = member.value.bpeIntegral, id >= 0 else {
                throw fail("model.vocab[\(StrictJSON.displayQuoted(member.key))] is not a non-negative integer id")
            }
            guard id < tokens.count else {
                throw fail("model.vocab[\(StrictJSON.displayQuoted(member.key))]: id \(id) is not below the number of entries (\(tokens.count))")
            }
            if let other = tokens[id] {
                throw fail("model.vocab: id \(id) is used by both \(StrictJSON.displayQuoted(other)) and \(StrictJSON.displayQuoted(member.key))")
            }
            tokens[id] = member.key
        }
        guard let mergeList = model[first: "merges"]?.arrayValue, !mergeList.isEmpty else {
            throw fail("model.merges is missing or empty")
        }
        var merges: [(String, String)] = []
        merges.reserveCapacity(mergeList.count)
        for (i, item) in mergeList.enumerated() {
            if let s = item.stringValue, let pair = splitMerge(s) {
                merges.append(pair)
            } else if let a = item.arrayValue, a.count == 2, let l = a[0].stringValue, let r = a[1].stringValue {
                merges.append((l, r))
            } else {
                throw fail("model.merges[\(i)] is neither \"a b\" nor [\"a\", \"b\"]")
            }
        }
        for key in ["continuing_subword_prefix", "end_of_word_suffix"] {
            if let s = model[first: key]?.stringValue, !s.isEmpty {
                throw fail("model.\(key) \(StrictJSON.displayQuoted(s)) is not supported")
            }
        }
        let bpe: BPEModel
        do {
            bpe = try BPEModel(
                tokens: tokens.map { $0! }, merges: merges,
                unkToken: model[first: "unk_token"]?.stringValue,
                fuseUnk: model[first: "fuse_unk"]?.boolValue ?? false,
                byteFallback: model[first: "byte_fallback"]?.boolValue ?? false,
                ignoreMerges: model[first: "ignore_merges"]?.boolValue ?? false)
        } catch {
            throw fail("\(error.field): \(error.message)")
        }

        // Added tokens.
        var added: [AddedToken] = []
        for (i, item) in (root[first: "added_tokens"]?.arrayValue ?? []).enumerated() {
            guard let content = item[first: "content"]?.stringValue, !content.isEmpty,
                  let id = item[first: "id"]?.bpeIntegral, id >= 0, id <= Int(Int32.max) else {
                throw fail("added_tokens[\(i)] has no string content or no valid id")
            }
            added.append(AddedToken(
                id: Int32(id), content: content,
                special: item[first: "special"]?.boolValue ?? false,
                singleWord: item[first: "single_word"]?.boolValue ?? false,
                lstrip: item[first: "lstrip"]?.boolValue ?? false,
                rstrip: item[first: "rstrip"]?.boolValue ?? false,
                normalized: item[first: "normalized"]?.boolValue ?? !(item[first: "special"]?.boolValue ?? false)))
        }

        let normalizer = try parseNormalizer(root[first: "normalizer"] ?? .null, field: "normalizer", fail)
        var steps: [BPEPreTokenizer.Step] = []
        try parsePreTokenizer(root[first: "pre_tokenizer"] ?? .null, field: "pre_tokenizer", into: &steps, fail)
        let byteLevelDecoder = try parseDecoder(root[first: "decoder"] ?? .null, field: "decoder", fail)

        // Special tokens: tokenizer_config.json, else the post-processor's template.
        let configRoot = try config.map { try readObject($0) }
        func lookup(_ token: String) -> Int32? {
            added.first(where: { $0.content.unicodeScalars.elementsEqual(token.unicodeScalars) })?.id ?? bpe.vocab[BPEExactKey(token)]
        }
        func configToken(_ key: String) throws -> Int32? {
            guard let configRoot, let v = configRoot[first: key], !v.isNull else { return nil }
            guard let s = v.stringValue ?? v[first: "content"]?.stringValue else {
                throw TokenizerError(file: config!.path, reason: "\(key) is neither a string nor an object with \"content\"")
            }
            guard let id = lookup(s) else {
                throw TokenizerError(file: config!.path, reason: "\(key) \(StrictJSON.displayQuoted(s)) is not in \(path)")
            }
            return id
        }
        var (prefix, suffix) = try parsePostProcessor(root[first: "post_processor"] ?? .null, field: "post_processor", lookup, fail)
        let bos = try configToken("bos_token") ?? prefix.first
        let eos = try configToken("eos_token") ?? suffix.last
        let pad = try configToken("pad_token") ?? (root[first: "padding"]?[first: "pad_id"]?.bpeIntegral).map { Int32($0) }
        if let configRoot {
            if let addBOS = configRoot[first: "add_bos_token"]?.boolValue {
                prefix = addBOS ? (bos.map { [$0] } ?? []) : []
            }
            if let addEOS = configRoot[first: "add_eos_token"]?.boolValue {
                suffix = addEOS ? (eos.map { [$0] } ?? []) : []
            }
        }
        return BPETokenizer(
            model: bpe, normalizer: normalizer, preTokenizer: BPEPreTokenizer(steps: steps), added: added,
            bos: bos, eos: eos, pad: pad, prefixIds: prefix, suffixIds: suffix,
            byteLevelDecoder: byteLevelDecoder, source: path)
    }

    /// A tokenizer from GGUF metadata: `tokenizer.ggml.tokens`, `.merges` ("a b" strings),
    /// `.token_type` (1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte),
    /// `.pre` (a llama.cpp pre-tokenizer name such as "llama-bpe", "qwen2", "smollm") and the
    /// special token ids. Control and user-defined tokens are matched in the text before
    /// splitting, as llama.cpp and transformers' GGUF conversion do; control tokens are special.
    /// - Parameter source: the GGUF file path, for error messages.
    public convenience init(gguf tokens: [String], merges: [String], tokenTypes: [Int32]?, preTokenizer: String,
                            bosTokenId: Int32?, eosTokenId: Int32?, padTokenId: Int32?, unknownTokenId: Int32?,
                            addBOS: Bool, addEOS: Bool, source: String) throws {
        func fail(_ reason: String) -> TokenizerError { TokenizerError(file: source, reason: reason) }
        guard !tokens.isEmpty else { throw fail("tokenizer.ggml.tokens is empty") }
        guard !merges.isEmpty else { throw fail("tokenizer.ggml.merges is missing or empty") }
        if let tokenTypes, tokenTypes.count != tokens.count {
            throw fail("tokenizer.ggml.token_type has \(tokenTypes.count) entries for \(tokens.count) tokens")
        }
        guard let spec = BPENamedPreTokenizers.spec(preTokenizer) else {
            throw fail("tokenizer.ggml.pre \(StrictJSON.displayQuoted(preTokenizer)) is not a known pre-tokenizer")
        }
        let steps: [BPEPreTokenizer.Step]
        do { steps = try BPENamedPreTokenizers.steps(spec) } catch { throw fail("tokenizer.ggml.pre \(preTokenizer): \(error.message)") }
        var pairs: [(String, String)] = []
        pairs.reserveCapacity(merges.count)
        for (i, m) in merges.enumerated() {
            guard let pair = Self.splitMerge(m) else { throw fail("tokenizer.ggml.merges[\(i)] \(StrictJSON.displayQuoted(m)) is not \"a b\"") }
            pairs.append(pair)
        }
        for (name, id) in [("bos", bosTokenId), ("eos", eosTokenId), ("padding", padTokenId), ("unknown", unknownTokenId)] {
            if let id, id < 0 || Int(id) >= tokens.count {
                throw fail("tokenizer.ggml.\(name)_token_id \(id) is out of range (\(tokens.count) tokens)")
            }
        }
        var unk: String? = unknownTokenId.map { tokens[Int($0)] }
        var added: [AddedToken] = []
        for (i, type) in (tokenTypes ?? []).enumerated() {
            if type == 2 && unk == nil { unk = tokens[i] }
            if type == 3 || type == 4, !tokens[i].isEmpty {
                added.append(AddedToken(id: Int32(i), content: tokens[i], special: type == 3, singleWord: false,
                                        lstrip: false, rstrip: false, normalized: false))
            }
        }
        let model: BPEModel
        do {
            model = try BPEModel(tokens: tokens, merges: pairs, unkToken: unk, fuseUnk: false, byteFallback: false,
                                 ignoreMerges: spec.ignoreMerges, mergesField: "tokenizer.ggml.merges",
                                 vocabField: "tokenizer.ggml.tokens", allowDuplicateTokens: true)
        } catch {
            throw fail("\(error.field): \(error.message)")
        }
        self.init(
            model: model, normalizer: spec.normalizer, preTokenizer: BPEPreTokenizer(steps: steps), added: added,
            bos: bosTokenId, eos: eosTokenId, pad: padTokenId,
            prefixIds: addBOS ? (bosTokenId.map { [$0] } ?? []) : [],
            suffixIds: addEOS ? (eosTokenId.map { [$0] } ?? []) : [],
            byteLevelDecoder: true, source: source)
    }

    // MARK: - Parsing helpers

    /// "a b" → ("a", "b"), split at the first space after the first character.
    static func splitMerge(_ s: String) -> (String, String)? {
        let scalars = s.unicodeScalars
        guard !scalars.isEmpty else { return nil }
        let start = scalars.index(after: scalars.startIndex)
        guard let space = scalars[start...].firstIndex(of: " ") else { return nil }
        let left = String(scalars[..<space])
        let right = String(scalars[scalars.index(after: space)...])
        guard !right.isEmpty else { return nil }
        return (left, right)
    }

    private static func readObject(_ url: URL) throws -> StrictJSON.Value {
        let value: StrictJSON.Value
        do {
            value = try WordPieceTokenizer.parseJSON(try WordPieceTokenizer.readBytes(url))
        } catch let error as StrictJSON.ParseError {
            throw TokenizerError(file: url.path, reason: "not valid JSON (\(error))")
        }
        guard case .object = value else {
            throw TokenizerError(file: url.path, reason: "expected a JSON object at the top level but found \(value.kindDescription)")
        }
        return value
    }

    private static func pattern(_ value: StrictJSON.Value?, field: String, _ fail: (String) -> TokenizerError) throws -> BPEPattern {
        if let s = value?[first: "String"]?.stringValue { return .literal(Array(s.unicodeScalars)) }
        if let r = value?[first: "Regex"]?.stringValue {
            do { return try BPEPattern.compile(regex: r) } catch { throw fail("\(field).Regex: \(error.message)") }
        }
        throw fail("\(field) is neither {\"String\": …} nor {\"Regex\": …}")
    }

    private static func parseNormalizer(_ n: StrictJSON.Value, field: String, _ fail: (String) -> TokenizerError) throws -> BPENormalizer {
        if n.isNull { return .none }
        let type = n[first: "type"]?.stringValue ?? "?"
        switch type {
        case "NFC": return .nfc
        case "NFD": return .nfd
        case "NFKC": return .nfkc
        case "NFKD": return .nfkd
        case "Lowercase": return .lowercase
        case "Prepend":
            guard let s = n[first: "prepend"]?.stringValue else { throw fail("\(field).prepend is missing") }
            return .prepend(Array(s.unicodeScalars))
        case "Replace":
            guard let content = n[first: "content"]?.stringValue else { throw fail("\(field).content is missing") }
            return .replace(try pattern(n[first: "pattern"], field: "\(field).pattern", fail), Array(content.unicodeScalars))
        case "Strip":
            return .strip(left: n[first: "strip_left"]?.boolValue ?? true, right: n[first: "strip_right"]?.boolValue ?? true)
        case "Sequence":
            guard let list = n[first: "normalizers"]?.arrayValue else { throw fail("\(field).normalizers is missing") }
            return .sequence(try list.enumerated().map { try parseNormalizer($1, field: "\(field).normalizers[\($0)]", fail) })
        default:
            throw fail("\(field): normalizer type \"\(type)\" is not supported")
        }
    }

    private static func parsePreTokenizer(_ p: StrictJSON.Value, field: String, into steps: inout [BPEPreTokenizer.Step],
                                          _ fail: (String) -> TokenizerError) throws {
        if p.isNull { return }
        let type = p[first: "type"]?.stringValue ?? "?"
        switch type {
        case "ByteLevel":
            steps.append(.byteLevel(addPrefixSpace: p[first: "add_prefix_space"]?.boolValue ?? true,
                                    useRegex: p[first: "use_regex"]?.boolValue ?? true))
        case "Split":
            let behaviorName = p[first: "behavior"]?.stringValue ?? "?"
            guard let behavior = BPESplitBehavior(rawValue: behaviorName) else {
                throw fail("\(field).behavior \"\(behaviorName)\" is not a split behavior")
            }
            steps.append(.split(try pattern(p[first: "pattern"], field: "\(field).pattern", fail), behavior,
                                invert: p[first: "invert"]?.boolValue ?? false))
        case "Digits":
            steps.append(BPEPreTokenizer.digits(individual: p[first: "individual_digits"]?.boolValue ?? false))
        case "Whitespace":
            do { steps.append(.split(try BPEPattern.compile(regex: #"\w+|[^\w\s]+"#), .removed, invert: true)) } catch { throw fail("\(field): \(error.message)") }
        case "WhitespaceSplit":
            do { steps.append(.split(try BPEPattern.compile(regex: #"\s"#), .removed, invert: false)) } catch { throw fail("\(field): \(error.message)") }
        case "Sequence":
            guard let list = p[first: "pretokenizers"]?.arrayValue else { throw fail("\(field).pretokenizers is missing") }
            for (i, item) in list.enumerated() { try parsePreTokenizer(item, field: "\(field).pretokenizers[\(i)]", into: &steps, fail) }
        default:
            throw fail("\(field): pre-tokenizer type \"\(type)\" is not supported")
        }
    }

    /// Whether the decoder is byte-level (true) or absent (false: tokens joined with spaces).
    private static func parseDecoder(_ d: StrictJSON.Value, field: String, _ fail: (String) -> TokenizerError) throws -> Bool {
        if d.isNull { return false }
        let type = d[first: "type"]?.stringValue ?? "?"
        switch type {
        case "ByteLevel": return true
        case "Sequence":
            let list = d[first: "decoders"]?.arrayValue ?? []
            if list.count == 1, list[0][first: "type"]?.stringValue == "ByteLevel" { return true }
            throw fail("\(field): only a Sequence holding one ByteLevel decoder is supported")
        default:
            throw fail("\(field): decoder type \"\(type)\" is not supported (only ByteLevel)")
        }
    }

    /// The ids a single-sequence template puts before and after the text.
    private static func parsePostProcessor(_ p: StrictJSON.Value, field: String, _ lookup: (String) -> Int32?,
                                           _ fail: (String) -> TokenizerError) throws -> ([Int32], [Int32]) {
        if p.isNull { return ([], []) }
        let type = p[first: "type"]?.stringValue ?? "?"
        switch type {
        case "ByteLevel":
            return ([], [])
        case "Sequence":
            var prefix: [Int32] = [], suffix: [Int32] = []
            for (i, item) in (p[first: "processors"]?.arrayValue ?? []).enumerated() {
                let (a, b) = try parsePostProcessor(item, field: "\(field).processors[\(i)]", lookup, fail)
                prefix = a + prefix
                suffix += b
            }
            return (prefix, suffix)
        case "RobertaProcessing", "BertProcessing":
            guard let cls = p[first: "cls"]?.arrayValue, cls.count == 2, let c = cls[1].bpeIntegral,
                  let sep = p[first: "sep"]?.arrayValue, sep.count == 2, let s = sep[1].bpeIntegral else {
                throw fail("\(field): malformed \(type)")
            }
            return ([Int32(c)], [Int32(s)])
        case "TemplateProcessing":
            guard let single = p[first: "single"]?.arrayValue else { throw fail("\(field).single is missing") }
            var prefix: [Int32] = [], suffix: [Int32] = []
            var seenSequence = false
            for piece in single {
                if piece[first: "Sequence"] != nil {
                    seenSequence = true
                } else if let name = piece[first: "SpecialToken"]?[first: "id"]?.stringValue {
                    var ids: [Int32] = []
                    if let list = p[first: "special_tokens"]?[first: name]?[first: "ids"]?.arrayValue {
                        for v in list {
                            guard let i = v.bpeIntegral else { throw fail("\(field).special_tokens[\(StrictJSON.displayQuoted(name))] has a bad id") }
                            ids.append(Int32(i))
                        }
                    } else if let id = lookup(name) {
                        ids = [id]
                    } else {
                        throw fail("\(field).single: special token \(StrictJSON.displayQuoted(name)) has no id")
                    }
                    if seenSequence { suffix += ids } else { prefix += ids }
                } else {
                    throw fail("\(field).single has an unrecognised item")
                }
            }
            return (prefix, suffix)
        default:
            throw fail("\(field): post-processor type \"\(type)\" is not supported")
        }
    }
}

extension StrictJSON.Value {
    /// An integral number (`3`, `3.0`) below 2^31 as an Int.
    fileprivate var bpeIntegral: Int? {
        if let i = intValue { return i >= Int(Int32.min) && i <= Int(Int32.max) ? i : nil }
        guard case .number(let text) = self, let d = Double(text), d.rounded() == d, abs(d) <= Double(Int32.max) else { return nil }
        return Int(d)
    }
}
