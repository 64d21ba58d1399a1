import Foundation

/// The Hugging Face tokenizer files for a GGUF's `tokenizer.ggml.*` metadata: a tokenizer.json
/// (BPE model with the vocabulary and merges, the named pre-tokenizer spelled out as isolating
/// `Split` regexes before a `ByteLevel` step, a ByteLevel decoder, control and user-defined
/// tokens as added tokens) and a tokenizer_config.json, so `AutoTokenizer.from_pretrained`
/// reads what Sculpt reads from the GGUF (the chat template goes in chat_template.jinja beside
/// them). The inputs are those of `BPETokenizer(gguf:…)`.
public enum BPETokenizerFiles {
    public static func fromGGUF(tokens: [String], merges: [String], tokenTypes: [Int32]?, preTokenizer: String,
                                bosTokenId: Int32?, eosTokenId: Int32?, padTokenId: Int32?, unknownTokenId: Int32?,
                                addBOS: Bool, source: String) throws -> (tokenizerJSON: Data, tokenizerConfig: Data) {
        guard let spec = BPENamedPreTokenizers.spec(preTokenizer) else {
            throw TokenizerError(file: source, reason: "tokenizer.ggml.pre \(StrictJSON.displayQuoted(preTokenizer)) is not a known pre-tokenizer")
        }
        var added: [[String: Any]] = []
        for (i, type) in (tokenTypes ?? []).enumerated() where (type == 3 || type == 4) && !tokens[i].isEmpty {
            added.append(["id": i, "content": tokens[i], "single_word": false, "lstrip": false, "rstrip": false,
                          "normalized": false, "special": type == 3])
        }
        var vocab: [String: Int] = [:]
        for (i, t) in tokens.enumerated() where vocab[t] == nil || (tokenTypes?[i] ?? 1) == 1 { vocab[t] = i }
        let pairs: [[String]] = try merges.enumerated().map { i, m in
            guard let p = BPETokenizer.splitMerge(m) else { throw TokenizerError(file: source, reason: "tokenizer.ggml.merges[\(i)] is not \"a b\"") }
            return [p.0, p.1]
        }
        var steps: [[String: Any]] = spec.regexes.map {
            ["type": "Split", "pattern": ["Regex": $0], "behavior": "Isolated", "invert": false]
        }
        steps.append(["type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": false])
        let unk = unknownTokenId.map { tokens[Int($0)] }
        var post: Any = NSNull()
        if addBOS, let b = bosTokenId {
            let bos = tokens[Int(b)]
            post = ["type": "TemplateProcessing",
                    "single": [["SpecialToken": ["id": bos, "type_id": 0]], ["Sequence": ["id": "A", "type_id": 0]]],
                    "pair": [["SpecialToken": ["id": bos, "type_id": 0]], ["Sequence": ["id": "A", "type_id": 0]],
                             ["SpecialToken": ["id": bos, "type_id": 1]], ["Sequence": ["id": "B", "type_id": 1]]],
                    "special_tokens": [bos: ["id": bos, "ids": [Int(b)], "tokens": [bos]]]] as [String: Any]
        }
        let normalizer: Any = { if case .nfc = spec.normalizer { return ["type": "NFC"] as [String: Any] }; return NSNull() }()
        let json: [String: Any] = [
            "version": "1.0", "truncation": NSNull(), "padding": NSNull(), "added_tokens": added,
            "normalizer": normalizer,
            "pre_tokenizer": ["type": "Sequence", "pretokenizers": steps],
            "post_processor": post,
            "decoder": ["type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true],
            "model": ["type": "BPE", "dropout": NSNull(), "unk_token": unk.map { $0 as Any } ?? NSNull(), "continuing_subword_prefix": "",
                      "end_of_word_suffix": "", "fuse_unk": false, "byte_fallback": false, "ignore_merges": spec.ignoreMerges,
                      "vocab": vocab, "merges": pairs] as [String: Any],
        ]
        var config: [String: Any] = ["tokenizer_class": "PreTrainedTokenizerFast", "add_bos_token": addBOS, "add_eos_token": false,
                                     "clean_up_tokenization_spaces": false, "model_max_length": 1_000_000_000]
        for (key, id) in [("bos_token", bosTokenId), ("eos_token", eosTokenId), ("pad_token", padTokenId), ("unk_token", unknownTokenId)] {
            if let id, id >= 0, Int(id) < tokens.count { config[key] = tokens[Int(id)] }
        }
        func encode(_ o: Any) throws -> Data {
            var d = try JSONSerialization.data(withJSONObject: o, options: [.sortedKeys, .withoutEscapingSlashes])
            d.append(UInt8(ascii: "\n"))
            return d
        }
        return (try encode(json), try encode(config))
    }
}
