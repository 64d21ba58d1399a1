import Foundation
import SculptIO
import SculptModels

/// A tiny random BERT with MiniLM's real tokenizer, and a two-class text set it learns in a few
/// steps — shared by the test targets that train text models (needs ../shared).
public enum TinyBert {
    /// The CLI tests' broken-input fixture: a one-layer BERT (hidden 8, vocab 12) with its
    /// vocab.txt and a texts.txt of one line, in `dir`.
    public static func writeCLIFixture(in dir: URL) throws {
        let config = BertConfig(hiddenSize: 8, numHiddenLayers: 1, numAttentionHeads: 2, intermediateSize: 8, vocabSize: 12, maxPositionEmbeddings: 16)
        try BertModel(config: config, seed: 1).save(to: dir)
        let vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "hello", "world", "a", "b", "c", "d", "e"]
        try vocab.joined(separator: "\n").write(to: dir.appendingPathComponent("vocab.txt"), atomically: true, encoding: .utf8)
        try "hello world\n".write(to: dir.appendingPathComponent("texts.txt"), atomically: true, encoding: .utf8)
    }

    /// Saves a random BERT of MiniLM's vocabulary at `dir/tiny-bert` and copies the tokenizer.
    public static func write(in dir: URL, layers: Int, heads: Int = 4, hidden: Int = 16, intermediate: Int = 32) throws -> URL {
        let minilm = try SharedData.require("models/all-MiniLM-L6-v2")
        let modelDir = dir.appendingPathComponent("tiny-bert")
        var config = try BertConfig.load(from: minilm.appendingPathComponent("config.json"))
        config.hiddenSize = hidden; config.numHiddenLayers = layers; config.numAttentionHeads = heads
        config.intermediateSize = intermediate; config.maxPositionEmbeddings = 64
        try BertModel(config: config, withPooler: false, seed: 3).save(to: modelDir)
        for f in ["tokenizer.json", "vocab.txt", "tokenizer_config.json"] {
            try FileManager.default.copyItem(at: minilm.appendingPathComponent(f), to: modelDir.appendingPathComponent(f))
        }
        return modelDir
    }

    /// `count` JSONL lines alternating "cats" and "money" texts, written to `dir/train.jsonl`.
    public static func catsAndMoney(in dir: URL, count: Int) throws -> URL {
        var lines = ""
        for i in 0..<count {
            lines += i % 2 == 0 ? "{\"text\": \"the cat sat on the mat \(i)\", \"label\": \"cats\"}\n"
                                : "{\"text\": \"stocks fell sharply today \(i)\", \"label\": \"money\"}\n"
        }
        let train = dir.appendingPathComponent("train.jsonl")
        try Data(lines.utf8).write(to: train)
        return train
    }
}
