import Foundation
import SculptCore
import SculptIO

/// What a model serves.
public enum ModelTask: String, Sendable, CaseIterable {
    case sequenceClassification = "sequence-classification"
    case embeddings
    case causalLM = "causal-lm"
}

/// A model on disk as the registry sees it before any family has read it: a directory
/// (with its config.json's `model_type`, if any) or a single file and its format.
public struct ModelSource: Sendable {
    public enum Format: String, Sendable { case directory, gguf, safetensors, other }
    public let url: URL
    public let format: Format
    /// `model_type` of a directory's config.json.
    public let modelType: String?

    /// Inspects `path` without loading weights; a missing path is an error naming it.
    public init(path: String) throws {
        url = URL(fileURLWithPath: path)
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw ModelError.badWeights(file: path, message: "no such file or directory")
        }
        if isDirectory.boolValue {
            format = .directory
            let config = url.appendingPathComponent("config.json")
            modelType = (try? Data(contentsOf: config)).flatMap(DecoderConfig.modelType(ofConfig:))
        } else {
            modelType = nil
            var magic = [UInt8](repeating: 0, count: 4)
            if let h = FileHandle(forReadingAtPath: path) {
                let d = h.readData(ofLength: 4)
                try? h.close()
                magic = Array(d)
            }
            if magic == Array("GGUF".utf8) || path.lowercased().hasSuffix(".gguf") { format = .gguf }
            else if path.lowercased().hasSuffix(".safetensors") { format = .safetensors }
            else { format = .other }
        }
    }

    public var path: String { url.path }

    /// Bytes of the weights: the file, or the directory's safetensors files.
    public var weightBytes: Int {
        func size(_ u: URL) -> Int { (try? FileManager.default.attributesOfItem(atPath: u.path)[.size] as? Int) ?? 0 }
        guard format == .directory else { return size(url) }
        let files = (try? FileManager.default.contentsOfDirectory(atPath: url.path)) ?? []
        return files.filter { $0.hasSuffix(".safetensors") }.reduce(0) { $0 + size(url.appendingPathComponent($1)) }
    }
}

/// One row of `sculpt info`: a JSON key, a label for the table and the value.
public struct ModelProperty: Sendable {
    public enum Value: Sendable, Encodable {
        case int(Int), double(Double), bool(Bool), string(String), ints([Int]), strings([String])
        public func encode(to encoder: Encoder) throws {
            var c = encoder.singleValueContainer()
            switch self {
            case .int(let v): try c.encode(v)
            case .double(let v): try c.encode(v)
            case .bool(let v): try c.encode(v)
            case .string(let v): try c.encode(v)
            case .ints(let v): try c.encode(v)
            case .strings(let v): try c.encode(v)
            }
        }
    }
    public let key: String
    public let label: String
    public let value: Value
    /// How the table shows it (counts as 22.71M, sizes in MB, uniform lists as one number).
    public let display: String

    public init(_ key: String, _ label: String, _ value: Value, display: String? = nil) {
        self.key = key; self.label = label; self.value = value
        switch value {
        case .int(let n): self.display = display ?? "\(n)"
        case .double(let d): self.display = display ?? "\(d)"
        case .bool(let b): self.display = display ?? (b ? "yes" : "no")
        case .string(let s): self.display = display ?? s
        case .ints(let v): self.display = display ?? (Set(v).count == 1 ? "\(v[0])" : "\(v)")
        case .strings(let v): self.display = display ?? v.joined(separator: ", ")
        }
    }
}

/// An architecture family: how it recognises, loads and describes its models and which tasks
/// it serves. Commands ask `ModelRegistry` for the family of a path instead of switching on
/// a kind; adding a family is a folder and one entry in `ModelRegistry.families`.
public protocol ModelFamily: Sendable {
    /// Short name ("bert", "decoder").
    var name: String { get }
    var tasks: Set<ModelTask> { get }
    /// Whether this family reads `source` (directory `model_type` values, file formats).
    func recognizes(_ source: ModelSource) -> Bool
    /// `sculpt info`'s rows: architecture, sizes, parameter counts, MACs per token at
    /// `contextLength` tokens of attention, file size, storage types.
    func describe(_ source: ModelSource, contextLength: Int) throws -> [ModelProperty]
    /// The model's tokenizer (from the directory, or from a GGUF's metadata).
    func tokenizer(_ source: ModelSource) throws -> any TextTokenizer
}

/// A tokenizer as commands use it, whatever its algorithm.
public protocol TextTokenizer {
    /// Ids of `text`. WordPiece adds [CLS]/[SEP]; byte-level BPE adds no special tokens.
    func encode(_ text: String, maxLength: Int?) throws -> [Int32]
    /// Ids of a chat rendered by the model's chat template (special tokens as it writes them).
    func encodeChat(_ messages: [ChatMessage], addGenerationPrompt: Bool) throws -> [Int32]
    /// The token text of an id, for display.
    func tokenText(_ id: Int32) -> String?
}

public enum ModelRegistry {
    /// Every family, asked in order.
    public static let families: [any ModelFamily] = [BertFamily(), DecoderFamily()]

    /// The family that reads the model at `path`, or an error naming the path and what it is.
    public static func family(of path: String) throws -> (family: any ModelFamily, source: ModelSource) {
        let source = try ModelSource(path: path)
        if let f = families.first(where: { $0.recognizes(source) }) { return (f, source) }
        switch source.format {
        case .directory:
            if let t = source.modelType {
                throw ConfigError(file: source.url.appendingPathComponent("config.json").path, key: "model_type",
                                  message: "unsupported model \(StrictJSON.displayQuoted(t, limit: 40)) (supported: bert and its variants, \(DecoderConfig.supportedModelTypes.joined(separator: ", ")))")
            }
            throw ModelError.badWeights(file: path, message: "not a model directory (no config.json with a model_type)")
        default:
            throw ModelError.badWeights(file: path, message: "not a model this tool reads (a Hugging Face directory or a GGUF file)")
        }
    }
}
