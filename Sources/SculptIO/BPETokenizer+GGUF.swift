import Foundation

// The `tokenizer.ggml.*` metadata of a byte-level BPE tokenizer, as llama.cpp's
// convert_hf_to_gguf.py writes it: the vocabulary with token types, the merges in rank order,
// the special token ids, add_bos/add_eos, and the name of llama.cpp's pre-tokenizer that splits
// text as this one does. llama.cpp names pre-tokenizers instead of spelling out their regexes,
// so the name is found by behaviour (as the converter does with its check text): the first
// named pre-tokenizer whose tokenizer gives the same ids on a probe text.

extension BPETokenizer {
    /// The llama.cpp pre-tokenizer names tried, most common first; one per distinct behaviour.
    static let ggufPreTokenizerCandidates = [
        "smollm", "llama-bpe", "qwen2", "gpt2", "default", "dbrx", "stablelm2", "falcon", "gpt-4o", "tekken",
        "deepseek-llm", "deepseek-coder", "deepseek-v3", "bloom", "viking",
    ]

    /// Text exercising what pre-tokenizers disagree on: digit runs, contractions, runs of
    /// spaces and newlines, punctuation, letters of several scripts, decomposed accents, emoji.
    static let ggufProbeText = """
        Hello world! I'm here, you're there; we've, they'll, she'd, IT'S & DON'T. \
        1 12 123 1234 12345 3.14159 1,000,000 $5 ~^| a+b=c <tag> (x) [y] {z} ... !!?? \
        camelCaseWord HTTPServer snake_case_name  two  spaces\n\n  indented\n\t\ttabs \r\n\
        Héllo wörld naïve café e\u{301} Ελληνικά русский текст 中文字符测试 日本語のテキスト 한국어 🚀🔥 \
        \u{00A0}nbsp   trailing   \n
        """

    /// The metadata llama.cpp reads for this tokenizer. Ids without a token (a gap below an
    /// added token) are written as unused `[PAD<id>]`, as the converter does.
    /// - Throws: `TokenizerError` when no llama.cpp pre-tokenizer behaves like this one, or
    ///   the tokenizer is not byte-level.
    public func ggufMetadata(chatTemplate: String?) throws -> [(String, GGUFValue)] {
        guard !joinsWithSpace else {
            throw TokenizerError(file: source, reason: "GGUF export needs a byte-level BPE tokenizer (its decoder is not ByteLevel)")
        }
        var tokens: [String] = [], types: [Int32] = []
        tokens.reserveCapacity(vocabularySize); types.reserveCapacity(vocabularySize)
        for id in 0..<vocabularySize {
            let i = Int32(id)
            if let added = addedTokens[i] {
                tokens.append(added); types.append(specialTokenIds.contains(i) ? 3 : 4)
            } else if id < model.tokens.count, model.vocab[BPEExactKey(model.tokens[id])] != nil {
                tokens.append(model.tokens[id]); types.append(i == unknownTokenId ? 2 : 1)
            } else {
                tokens.append("[PAD\(id)]"); types.append(5)
            }
        }
        let merges = model.rankedMerges().map { "\(model.tokens[Int($0.0)]) \(model.tokens[Int($0.1)])" }
        let pre = try ggufPreTokenizerName(tokens: tokens, merges: merges, types: types)
        var meta: [(String, GGUFValue)] = [
            ("tokenizer.ggml.model", .string("gpt2")), ("tokenizer.ggml.pre", .string(pre)),
            ("tokenizer.ggml.tokens", .array(.string, tokens.map { .string($0) })),
            ("tokenizer.ggml.token_type", .array(.int32, types.map { .int32($0) })),
            ("tokenizer.ggml.merges", .array(.string, merges.map { .string($0) })),
        ]
        for (key, id) in [("bos", bosTokenId), ("eos", eosTokenId), ("unknown", unknownTokenId), ("padding", padTokenId)] {
            if let id { meta.append(("tokenizer.ggml.\(key)_token_id", .uint32(UInt32(id)))) }
        }
        meta.append(("tokenizer.ggml.add_bos_token", .bool(addBOS)))
        meta.append(("tokenizer.ggml.add_eos_token", .bool(addEOS)))
        if let chatTemplate { meta.append(("tokenizer.chat_template", .string(chatTemplate))) }
        return meta
    }

    /// The first candidate whose tokenizer (same vocabulary, merges and added tokens) encodes
    /// the probe text to the same ids as this one.
    func ggufPreTokenizerName(tokens: [String], merges: [String], types: [Int32]) throws -> String {
        let expected = encode(Self.ggufProbeText)
        for name in Self.ggufPreTokenizerCandidates {
            guard let candidate = try? BPETokenizer(gguf: tokens, merges: merges, tokenTypes: types, preTokenizer: name,
                                                    bosTokenId: bosTokenId, eosTokenId: eosTokenId, padTokenId: padTokenId,
                                                    unknownTokenId: unknownTokenId, addBOS: false, addEOS: false, source: source)
            else { continue }
            if candidate.encode(Self.ggufProbeText) == expected { return name }
        }
        throw TokenizerError(file: source, reason: "its pre-tokenizer splits text unlike every pre-tokenizer llama.cpp names (tried \(Self.ggufPreTokenizerCandidates.joined(separator: ", "))), so a GGUF of it would tokenize differently")
    }
}

extension BPEModel {
    /// The merges as (left id, right id), in rank order.
    func rankedMerges() -> [(Int32, Int32)] {
        merges.sorted { $0.value >> 32 < $1.value >> 32 }.map { (Int32(truncatingIfNeeded: $0.key >> 32), Int32(truncatingIfNeeded: $0.key & 0xFFFF_FFFF)) }
    }
}
