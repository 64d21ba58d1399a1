import Foundation
import SculptCore
import SculptIO
import SculptModels

/// A tiny decoder made here (no `../shared` needed): random weights of a small LLaMA shape
/// with GQA, a 512-id byte-level BPE tokenizer (the 256 byte characters, a few merges, three
/// ChatML specials) and a ChatML chat template, written as a Hugging Face directory.
public enum TinyDecoder {
    public static let template = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"

    /// Tokens, merges and token types of the tokenizer (ids 256…259 merges, 260 `<|endoftext|>`,
    /// 261 `<|im_start|>`, 262 `<|im_end|>`, the rest unused).
    public static func vocabulary() -> (tokens: [String], merges: [String], types: [Int32]) {
        // GPT-2's byte-to-character map: printable bytes stand for themselves, the rest for 256 + n.
        var byteToScalar: [Unicode.Scalar] = []
        var extra: UInt32 = 256
        for byte in 0..<256 {
            if (33...126).contains(byte) || (161...172).contains(byte) || (174...255).contains(byte) {
                byteToScalar.append(Unicode.Scalar(UInt32(byte))!)
            } else {
                byteToScalar.append(Unicode.Scalar(extra)!)
                extra += 1
            }
        }
        func b(_ c: Character) -> String { String(byteToScalar[Int(c.asciiValue!)]) }
        var tokens = byteToScalar.map { String($0) }
        let space = String(byteToScalar[32])
        let merges = ["\(b("h")) \(b("e"))", "\(b("l")) \(b("l"))", "\(b("h"))\(b("e")) \(b("l"))\(b("l"))", "\(space) \(b("h"))"]
        tokens += ["\(b("h"))\(b("e"))", "\(b("l"))\(b("l"))", "\(b("h"))\(b("e"))\(b("l"))\(b("l"))", "\(space)\(b("h"))"]
        tokens += ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
        while tokens.count < 512 { tokens.append("<unused\(tokens.count)>") }
        var types = [Int32](repeating: 1, count: 512)
        for i in 260..<263 { types[i] = 3 }
        for i in 263..<512 { types[i] = 5 }
        return (tokens, merges, types)
    }

    public static var config: DecoderConfig {
        DecoderConfig(hiddenSize: 32, numHiddenLayers: 2, numAttentionHeads: 4, numKeyValueHeads: 2, intermediateSize: 64, vocabSize: 512,
                      maxPositionEmbeddings: 256, bosTokenId: 261, eosTokenIds: [262], initializerRange: 0.1)
    }

    /// Writes the directory `dir` (created) and returns it.
    @discardableResult
    public static func write(to dir: URL, seed: UInt64 = 3) throws -> URL {
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        try DecoderLM(config: config, seed: seed).save(to: dir)
        let v = vocabulary()
        let files = try BPETokenizerFiles.fromGGUF(tokens: v.tokens, merges: v.merges, tokenTypes: v.types, preTokenizer: "smollm",
                                                   bosTokenId: 261, eosTokenId: 262, padTokenId: 262, unknownTokenId: nil, addBOS: false, source: "tiny")
        try files.tokenizerJSON.write(to: dir.appendingPathComponent("tokenizer.json"))
        try files.tokenizerConfig.write(to: dir.appendingPathComponent("tokenizer_config.json"))
        try Data(template.utf8).write(to: dir.appendingPathComponent("chat_template.jinja"))
        return dir
    }

    /// A chat JSONL file of `count` question/answer pairs the tiny model can learn: the answer
    /// is a word determined by the question's word.
    @discardableResult
    public static func chatFile(_ url: URL, count: Int, seed: UInt64 = 1) throws -> URL {
        let pairs = [("cat", "meow"), ("dog", "woof"), ("cow", "moo"), ("owl", "hoot")]
        var rng = SeededRNG(seed: seed)
        var lines: [String] = []
        for _ in 0..<count {
            let (q, a) = pairs[Int(rng.next() % UInt64(pairs.count))]
            lines.append("{\"messages\":[{\"role\":\"user\",\"content\":\"what does the \(q) say?\"},{\"role\":\"assistant\",\"content\":\"\(a)\"}]}")
        }
        try Data((lines.joined(separator: "\n") + "\n").utf8).write(to: url)
        return url
    }
}
