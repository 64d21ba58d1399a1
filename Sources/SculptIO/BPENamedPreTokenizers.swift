// The pre-tokenizers that GGUF files name in `tokenizer.ggml.pre` instead of spelling out.
// Each is the list of regexes llama.cpp applies one after another (each one splits every piece
// of the previous, keeping matches and gaps as pieces: a Hugging Face `Split` with behavior
// Isolated), followed by the byte-level mapping. Where llama.cpp rewrote a regex for its own
// engine, the original Hugging Face pattern is used. Names and flags follow llama.cpp's
// `llama-vocab.cpp`.

enum BPENamedPreTokenizers {
    struct Spec: Sendable {
        let regexes: [String]
        /// llama.cpp's `ignore_merges` for this pre-tokenizer.
        var ignoreMerges = false
        /// Hugging Face's normalizer for the family (Qwen2 applies NFC).
        var normalizer: BPENormalizer = .none
    }

    private static let gpt2 = BPEPattern.gpt2Source
    private static let llama3 = BPEPattern.llama3Source
    private static let qwen2 = BPEPattern.qwen2Source
    private static let gpt4o = #"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
    private static let tekken = #"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
    private static let bloom = #" ?[^(\s|.,!?…。，、।۔،)]+"#
    private static let cjk = "[一-龥ࠀ-一가-퟿]+"

    /// The spec of llama.cpp pre-tokenizer `name`, or nil when unknown.
    static func spec(_ name: String) -> Spec? {
        switch name {
        case "default":
            return Spec(regexes: [#"[\p{P}\$\+<=>\^~\|]+"#, gpt2, #"\p{N}+"#, "[0-9][0-9][0-9]"])
        case "gpt2", "gpt-2", "phi-2", "mpt", "olmo", "jais", "jina-es", "jina-de", "jina-v2-es", "jina-v2-de",
             "jina-v1-en", "jina-v2-code", "roberta-bpe", "gigachat", "a.x-4.0", "mellum", "modern-bert",
             "exaone4", "trillion", "granite-docling":
            return Spec(regexes: [gpt2])
        case "llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2":
            return Spec(regexes: [llama3], ignoreMerges: true)
        case "dbrx", "smaug-bpe", "chatglm-bpe", "glm4":
            return Spec(regexes: [llama3])
        case "qwen2", "deepseek-r1-qwen", "megrez":
            return Spec(regexes: [qwen2], normalizer: .nfc)
        case "stablelm2", "hunyuan":
            return Spec(regexes: [qwen2])
        case "smollm", "starcoder", "refact", "command-r", "codeshell", "exaone", "minerva-7b":
            return Spec(regexes: [#"\p{N}"#, gpt2])
        case "falcon":
            return Spec(regexes: [#"[\p{P}\$\+<=>\^~\|`]+"#, gpt2, "[0-9][0-9][0-9]"])
        case "deepseek-llm":
            // The cased letters (Lu, Ll, Lt) of DeepSeek's tokenizer.json, escaped so that no
            // editor's Unicode normalization can change them (ώ U+1F7D, Ω U+2126, K U+212A, …).
            return Spec(regexes: [
                "[\r\n]",
                #"\s?[A-Za-z\x{B5}\x{C0}-\x{D6}\x{D8}-\x{F6}\x{F8}-\x{1BA}\x{1BC}-\x{1BF}\x{1C4}-\x{293}\x{295}-\x{2AF}\x{370}-\x{373}\x{376}\x{377}\x{37B}-\x{37D}\x{37F}\x{386}\x{388}-\x{38A}\x{38C}\x{38E}-\x{3A1}\x{3A3}-\x{3F5}\x{3F7}-\x{481}\x{48A}-\x{52F}\x{531}-\x{556}\x{10A0}-\x{10C5}\x{13A0}-\x{13F5}\x{13F8}-\x{13FD}\x{1C90}-\x{1CBA}\x{1CBD}-\x{1CBF}\x{1D00}-\x{1D2B}\x{1D6B}-\x{1D77}\x{1D79}-\x{1D9A}\x{1E00}-\x{1F15}\x{1F18}-\x{1F1D}\x{1F20}-\x{1F45}\x{1F48}-\x{1F4D}\x{1F50}-\x{1F57}\x{1F59}\x{1F5B}\x{1F5D}\x{1F5F}-\x{1F7D}\x{1F80}-\x{1FB4}\x{1FB6}-\x{1FBC}\x{1FBE}\x{1FC2}-\x{1FC4}\x{1FC6}-\x{1FCC}\x{1FD0}-\x{1FD3}\x{1FD6}-\x{1FDB}\x{1FE0}-\x{1FEC}\x{1FF2}-\x{1FF4}\x{1FF6}-\x{1FFC}\x{2102}\x{2107}\x{210A}-\x{2113}\x{2115}\x{2119}-\x{211D}\x{2124}\x{2126}\x{2128}\x{212A}-\x{212D}\x{212F}-\x{2134}\x{2139}\x{213C}-\x{213F}\x{2145}-\x{2149}\x{214E}\x{2183}\x{2184}\x{2C00}-\x{2C7B}\x{2C7E}-\x{2CE4}\x{2CEB}-\x{2CEE}\x{2CF2}\x{2CF3}\x{A640}-\x{A66D}\x{A680}-\x{A69B}\x{A722}-\x{A76F}\x{A771}-\x{A787}\x{A78B}-\x{A78E}\x{AB70}-\x{ABBF}\x{FB00}-\x{FB06}\x{FB13}-\x{FB17}\x{FF21}-\x{FF3A}\x{FF41}-\x{FF5A}\x{10400}-\x{1044F}\x{104B0}-\x{104D3}\x{104D8}-\x{104FB}\x{10C80}-\x{10CB2}\x{10CC0}-\x{10CF2}\x{118A0}-\x{118DF}\x{1E900}-\x{1E943}]+"#,
                #"\s?[!-/:-~！-／：-～‘-‟　-。]+"#,
                #"\s+$"#,
                cjk,
                #"\p{N}+"#,
            ])
        case "deepseek-coder":
            return Spec(regexes: ["[\r\n]", #"\s?\p{L}+"#, #"\s?\p{P}+"#, cjk, #"\p{N}"#])
        case "deepseek-v3":
            return Spec(regexes: [
                #"\p{N}{1,3}"#,
                "[一-龥぀-ゟ゠-ヿ]+",
                ##"[!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+| ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"##,
            ])
        case "gpt-4o", "llama4":
            return Spec(regexes: [gpt4o])
        case "tekken":
            return Spec(regexes: [tekken], ignoreMerges: true)
        case "poro-chat", "bloom", "gpt3-finnish":
            return Spec(regexes: [bloom])
        case "viking":
            return Spec(regexes: [bloom, #"\p{N}"#])
        default:
            return nil
        }
    }

    /// The pre-tokenizer steps of `spec`: one isolating split per regex, then the byte-level map.
    static func steps(_ spec: Spec) throws(BPEPatternError) -> [BPEPreTokenizer.Step] {
        var steps: [BPEPreTokenizer.Step] = []
        for source in spec.regexes {
            steps.append(.split(try BPEPattern.compile(regex: source), .isolated, invert: false))
        }
        steps.append(.byteLevel(addPrefixSpace: false, useRegex: false))
        return steps
    }
}
