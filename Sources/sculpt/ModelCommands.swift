import ArgumentParser
import Foundation
import SculptCore
import SculptIO
import SculptModels

struct Info: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Architecture, parameter counts, MACs per token and file size of a model directory.")

    @Argument(help: "A Hugging Face BERT model directory (config.json + model.safetensors).") var modelDir: String
    @Option(help: "Sequence length used for the attention part of MACs per token.") var seq: Int = 128
    @Flag(help: "Print one JSON object.") var json = false

    func run() throws {
        let info = try ModelInfo.describe(directory: URL(fileURLWithPath: modelDir), sequenceLength: seq)
        if json { print(jsonLine(info)); return }
        let uniformHeads = Set(info.headsPerLayer).count == 1 ? "\(info.headsPerLayer.first ?? 0)" : "\(info.headsPerLayer)"
        let uniformFFN = Set(info.intermediateSizes).count == 1 ? "\(info.intermediateSizes.first ?? 0)" : "\(info.intermediateSizes)"
        print(table(["property", "value"], [
            ["architecture", info.architecture],
            ["layers", "\(info.layers)"],
            ["hidden size", "\(info.hiddenSize)"],
            ["heads per layer", uniformHeads],
            ["FFN width", uniformFFN],
            ["vocabulary", "\(info.vocabSize)"],
            ["parameters", formatCount(info.totalParameters)],
            ["  embedding", formatCount(info.embeddingParameters)],
            ["  non-embedding", formatCount(info.nonEmbeddingParameters)],
            ["MACs per token (seq \(info.sequenceLength))", formatCount(info.macsPerToken)],
            ["file size", String(format: "%.1f MB", Double(info.fileBytes) / 1e6)],
        ]))
    }
}

func formatCount(_ n: Int) -> String {
    if n >= 1_000_000 { return String(format: "%.2fM", Double(n) / 1e6) }
    if n >= 10_000 { return String(format: "%.1fk", Double(n) / 1e3) }
    return "\(n)"
}

struct Tokenize: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Token ids of each input line, as the model's WordPiece tokenizer gives them.")

    @Argument(help: "A model directory with tokenizer.json or vocab.txt.") var modelDir: String
    @Option(help: "JSONL with a \"text\" field, or plain text one input per line.") var textsFile: String
    @Option(help: "Truncate to at most this many tokens (with [CLS] and [SEP]).") var maxLength: Int?
    @Flag(help: "Print one {\"input_ids\": [...]} object per input line.") var json = false

    func run() throws {
        let tokenizer = try WordPieceTokenizer.load(modelDirectory: URL(fileURLWithPath: modelDir))
        let texts = try TextLines.read(URL(fileURLWithPath: textsFile))
        struct Line: Encodable { let input_ids: [Int32] }
        for text in texts {
            let ids = tokenizer.encode(text, maxLength: maxLength)
            if json { print(jsonLine(Line(input_ids: ids))) } else {
                print(ids.map { tokenizer.token(of: $0) ?? "?" }.joined(separator: " "))
            }
        }
    }
}

struct Embed: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Sentence embeddings (masked mean, L2-normalised) for every input line.")

    @Argument(help: "A Hugging Face BERT model directory.") var modelDir: String
    @Option(help: "JSONL with a \"text\" field, or plain text one input per line.") var textsFile: String
    @Option(help: "Write sentence_embedding (and with --hidden last_hidden_state, attention_mask) to this safetensors file.") var out: String?
    @Flag(help: "Also compute last_hidden_state and attention_mask (padded to the longest input).") var hidden = false
    @Option(help: "Sequences per forward pass.") var batchSize: Int = 32
    @Option(help: "Truncate inputs to this many tokens.") var maxLength: Int?
    @Option(help: "Threads (default: all cores).") var threads: Int?
    @Flag(help: "Print one JSON array (the embedding) per input line.") var json = false

    func validate() throws {
        guard batchSize > 0 else { throw ValidationError("--batch-size must be positive") }
        if let t = threads, t <= 0 { throw ValidationError("--threads must be positive") }
    }

    func run() throws {
        let texts = try TextLines.read(URL(fileURLWithPath: textsFile))
        let embedder = try SentenceEmbedder.load(directory: URL(fileURLWithPath: modelDir), maxLength: maxLength, batchSize: batchSize)
        let result = withThreads(threads ?? ThreadPool.machineThreadCount) {
            embedder.embed(texts, includeHidden: hidden) { done, total in note("embedded \(done)/\(total)") }
        }
        if let out {
            var tensors = ["sentence_embedding": result.sentenceEmbeddings]
            if let h = result.lastHiddenState, let m = result.attentionMask {
                tensors["last_hidden_state"] = h
                tensors["attention_mask"] = m
            }
            try SafeTensorsSaving.write(tensors, to: URL(fileURLWithPath: out))
            note("wrote \(out)")
        }
        let e = result.sentenceEmbeddings
        let dim = e.shape[1]
        if json {
            for r in 0..<e.shape[0] { print(jsonLine((0..<dim).map { e[flat: r * dim + $0] })) }
        } else if out == nil {
            for r in 0..<e.shape[0] {
                let head = (0..<min(4, dim)).map { String(format: "%+.4f", e[flat: r * dim + $0]) }.joined(separator: " ")
                print("\(r)\t[\(head) …] (\(dim) values)")
            }
        }
    }
}
