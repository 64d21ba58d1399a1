import ArgumentParser
import Foundation
import SculptCore
import SculptIO
import SculptModels

struct Info: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Architecture, parameter counts, MACs per token and file size of a model (HF directory or GGUF).")

    @Argument(help: "A Hugging Face model directory (BERT or decoder) or a GGUF file.") var modelDir: String
    @Option(name: [.customLong("seq"), .customLong("context")], help: "Tokens attended, for the attention part of MACs per token.") var seq: Int = 128
    @Flag(help: "Print one JSON object.") var json = false

    func validate() throws {
        guard seq > 0 else { throw ValidationError("--seq must be positive, got \(seq)") }
    }

    func run() throws {
        let (family, source) = try ModelRegistry.family(of: modelDir)
        let rows = try family.describe(source, contextLength: seq)
        if json {
            print(jsonLine(Dictionary(uniqueKeysWithValues: rows.map { ($0.key, $0.value) })))
            return
        }
        print(table(["property", "value"], rows.filter { $0.key != "sequence_length" && $0.key != "max_positions" }.map { [$0.label, $0.display] }))
    }
}

struct Tokenize: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Token ids of each input line, as the model's tokenizer (WordPiece or byte-level BPE) gives them.")

    @Argument(help: "A model directory with tokenizer.json (or vocab.txt), or a GGUF file.") var modelDir: String
    @Option(help: "JSONL with a \"text\" field, or plain text one input per line; with --chat, JSONL of {\"messages\": [...]}.") var textsFile: String
    @Option(help: "Truncate to at most this many tokens (BERT: with [CLS] and [SEP]).") var maxLength: Int?
    @Flag(help: "Each line is {\"messages\":[…], \"add_generation_prompt\": bool?} rendered by the model's chat template.") var chat = false
    @Flag(help: "Print one {\"input_ids\": [...]} object per input line.") var json = false

    func validate() throws {
        if let m = maxLength, m < 1 { throw ValidationError("--max-length must be at least 1, got \(m)") }
    }

    func run() throws {
        let (family, source) = try ModelRegistry.family(of: modelDir)
        let tokenizer = try family.tokenizer(source)
        struct Line: Encodable { let input_ids: [Int32] }
        let url = URL(fileURLWithPath: textsFile)
        let inputs: [[Int32]]
        if chat {
            inputs = try ChatLines.read(url).map { c in
                let ids = try tokenizer.encodeChat(c.messages, addGenerationPrompt: c.addGenerationPrompt)
                return maxLength.map { Array(ids.prefix($0)) } ?? ids
            }
        } else {
            inputs = try TextLines.read(url).map { try tokenizer.encode($0, maxLength: maxLength) }
        }
        for ids in inputs {
            if json { print(jsonLine(Line(input_ids: ids))) } else {
                print(ids.map { tokenizer.tokenText($0) ?? "?" }.joined(separator: " "))
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
