import Foundation
import SculptCore
import SculptNN
import SculptIO
import SculptModels

/// Building classifiers for a run, and saving / loading the self-contained `final/`
/// directory (classifier.json + labels.json + weights; for BERT an HF model dir, the
/// tokenizer files and `head.safetensors`).
public enum ClassifierStore {
    static let tokenizerFiles = ["tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"]

    public static func isImageModel(_ name: String) -> Bool { name == "cnn" || name == "mlp" }

    /// A fresh classifier for `config` (BERT weights from the model directory, a new head).
    public static func build(_ c: TrainConfig, classes: Int, imageSize: (Int, Int)) throws -> any Classifier {
        switch c.model {
        case "cnn", "mlp":
            var spec = ClassifierSpec(kind: c.model == "cnn" ? .cnn : .mlp, classes: classes)
            spec.width = c.width; spec.depth = c.depth
            if c.model == "cnn", c.stages != 2 {
                spec.stageChannels = (0..<c.stages).map { c.width << $0 }
                spec.stageBlocks = Array(repeating: c.depth, count: c.stages)
            }
            (spec.imageHeight, spec.imageWidth) = imageSize
            return spec.kind == .cnn ? ImageCNN(spec: spec, seed: c.seed) : ImageMLP(spec: spec, seed: c.seed)
        default:
            let dir = URL(fileURLWithPath: c.model)
            guard FileManager.default.fileExists(atPath: dir.appendingPathComponent("config.json").path) else {
                throw TuneError("--model \(c.model): expected cnn, mlp or a BERT model directory with config.json")
            }
            let (bert, _) = try BertModel.load(directory: dir)
            var spec = ClassifierSpec(kind: .bert, classes: classes)
            spec.pooling = c.pooling; spec.maxLength = c.maxLength
            spec.textField = c.textField; spec.labelField = c.labelField
            reseedDropout(bert, seed: c.seed)
            return BertClassifier(bert: bert, spec: spec, seed: c.seed, headInit: try choice(c.headInit, of: "head-init"))
        }
    }

    /// Gives every Dropout module its own stream derived from the run seed and its path.
    static func reseedDropout(_ model: any Module, seed: UInt64) {
        model.visitModules { path, m in
            guard let d = m as? Dropout else { return }
            var h: UInt64 = seed ^ 0xD809_0D7A
            for b in path.utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
            d.rng = SeededRNG(seed: h)
        }
    }

    /// How `final/` stores the encoder's weights.
    public enum StoredWeights {
        /// A complete HF model directory.
        case full
        /// `adapter/` in PEFT's format, keys relative to the BERT, plus `base_model.json`.
        case loraAdapter(PEFTLoRAConfig)
        /// `sparse_diff.safetensors` (names relative to the BERT), plus `base_model.json`.
        case sparseDiff(SparseDiff)
    }

    /// `base_model.json` of a `final/` that stores an adapter or a diff instead of weights.
    public struct BaseReference: Codable, Sendable, Equatable {
        public var method: String
        /// The base model directory (absolute when written by `sculpt train`).
        public var baseModel: String
        enum CodingKeys: String, CodingKey { case method, baseModel = "base_model" }
    }

    static let baseReferenceFile = "base_model.json"
    static let adapterDirectory = "adapter"
    static let sparseDiffFile = "sparse_diff.safetensors"

    public static func saveFinal(_ model: any Classifier, labels: LabelVocabulary, tokenizerSource: URL?, to dir: URL,
                                 weights: StoredWeights = .full, baseModel: String? = nil) throws {
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        try model.spec.write(to: dir.appendingPathComponent("classifier.json"))
        try labels.write(to: dir.appendingPathComponent("labels.json"))
        if let bc = model as? BertClassifier {
            switch weights {
            case .full:
                try bc.bert.save(to: dir)
            case .loraAdapter(let config):
                try LoRAAdapterFiles.save(bc.bert, config: config, to: dir.appendingPathComponent(adapterDirectory))
                try RunJSON.write(BaseReference(method: "lora", baseModel: baseModel ?? ""), to: dir.appendingPathComponent(baseReferenceFile))
            case .sparseDiff(let diff):
                try bertRelative(diff).write(to: dir.appendingPathComponent(sparseDiffFile))
                try RunJSON.write(BaseReference(method: "sparse", baseModel: baseModel ?? ""), to: dir.appendingPathComponent(baseReferenceFile))
            }
            try SafeTensorsSaving.write(bc.classifier.stateDict().reduce(into: [:]) { $0["classifier." + $1.key] = $1.value },
                                       to: dir.appendingPathComponent("head.safetensors"))
            if let src = tokenizerSource {
                for name in tokenizerFiles {
                    let from = src.appendingPathComponent(name), to = dir.appendingPathComponent(name)
                    guard FileManager.default.fileExists(atPath: from.path) else { continue }
                    try? FileManager.default.removeItem(at: to)
                    try FileManager.default.copyItem(at: from, to: to)
                }
            }
        } else {
            // Image models are small: every method stores them whole.
            try Checkpoint.saveWeights(model, to: dir.appendingPathComponent("model.safetensors"))
        }
    }

    /// The classifier's `bert.` names made relative to the BERT, as in its HF checkpoint.
    static func bertRelative(_ diff: SparseDiff) -> SparseDiff {
        var out = diff
        out.parts = Dictionary(uniqueKeysWithValues: diff.parts.map { ($0.key.hasPrefix("bert.") ? String($0.key.dropFirst(5)) : $0.key, $0.value) })
        return out
    }

    /// The encoder of a saved BERT classifier: the weights in `dir`, or the base model that
    /// `base_model.json` names with its adapter (merged, for speed) or sparse diff applied.
    static func loadBert(_ dir: URL) throws -> BertModel {
        let refURL = dir.appendingPathComponent(baseReferenceFile)
        guard FileManager.default.fileExists(atPath: refURL.path) else { return try BertModel.load(directory: dir).model }
        let ref: BaseReference
        do { ref = try JSONDecoder().decode(BaseReference.self, from: Data(contentsOf: refURL)) } catch {
            throw TuneError("\(refURL.path): not a base-model reference (\(error))")
        }
        let baseDir = URL(fileURLWithPath: ref.baseModel, relativeTo: dir)
        guard FileManager.default.fileExists(atPath: baseDir.appendingPathComponent("config.json").path) else {
            throw TuneError("\(refURL.path): the base model \(ref.baseModel) is not a model directory (moved?); the \(ref.method) weights need it")
        }
        let bert = try BertModel.load(directory: baseDir).model
        switch ref.method {
        case "lora":
            try LoRAAdapterFiles.load(from: dir.appendingPathComponent(adapterDirectory), into: bert)
            bert.mergeAndUnloadLoRA()
        case "sparse":
            try SparseDiff.load(from: dir.appendingPathComponent(sparseDiffFile)).apply(to: bert)
        default:
            throw TuneError("\(refURL.path): unknown method \"\(ref.method)\"")
        }
        return bert
    }

    /// Copies the weights of a saved classifier (a run or its `final/`) into `model`, which must
    /// have the same architecture (`--init-from`).
    public static func loadWeights(from url: URL, into model: any Classifier) throws {
        let saved = try load(url).model
        guard saved.spec.kind == model.spec.kind else {
            throw TuneError("--init-from \(url.path): a \(saved.spec.kind.rawValue) classifier, but this run trains \(model.spec.kind.rawValue)")
        }
        do { try model.update(from: saved.stateDict()) } catch {
            throw TuneError("--init-from \(url.path): \(error) (the architectures differ)")
        }
    }

    /// The directory holding a saved classifier (`classifier.json`): `url` itself, or the
    /// `final/` of the run directory `url`; nil when neither holds one.
    public static func classifierDirectory(_ url: URL) -> URL? {
        [url, RunDirectory(url).final].first { FileManager.default.fileExists(atPath: $0.appendingPathComponent("classifier.json").path) }
    }

    /// The per-task heads of a merged model directory (`heads/task_<i>/`, written by
    /// `sculpt merge`), sorted by task index; empty for any other directory.
    public static func mergedTasks(_ dir: URL) -> [Int] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir.appendingPathComponent(mergedHeadsDirectory).path)) ?? []
        return names.compactMap { $0.hasPrefix("task_") ? Int($0.dropFirst(5)) : nil }.sorted()
    }

    static let mergedHeadsDirectory = "heads"

    /// A saved classifier from a `final/` directory or a run directory (its `final/`), or from
    /// a merged model directory with the head of task `task` (`heads/task_<task>/`: its
    /// classifier.json, labels.json and head.safetensors over the merged encoder).
    public static func load(_ url: URL, task: Int? = nil) throws -> (model: any Classifier, labels: LabelVocabulary, tokenizer: WordPieceTokenizer?, directory: URL) {
        let fm = FileManager.default
        var dir = url
        var headDir = url
        let tasks = mergedTasks(url)
        if !tasks.isEmpty {
            let list = tasks.map(String.init).joined(separator: ", ")
            guard let task else {
                throw TuneError("\(url.path): a merged model with one head per task (tasks \(list)); choose one with --task N")
            }
            guard tasks.contains(task) else { throw TuneError("--task \(task): \(url.path) has heads for tasks \(list) only") }
            headDir = url.appendingPathComponent("\(mergedHeadsDirectory)/task_\(task)")
            guard fm.fileExists(atPath: headDir.appendingPathComponent("classifier.json").path) else {
                throw TuneError("\(headDir.path): no classifier.json (not a Sculpt classifier head)")
            }
        } else {
            if let task {
                throw TuneError("--task \(task): \(url.path) is not a merged model with per-task heads (no heads/task_<i>/)")
            }
            guard let found = classifierDirectory(url) else {
                guard fm.fileExists(atPath: url.path) else { throw TuneError("\(url.path): no such file or directory") }
                let model = fm.fileExists(atPath: url.appendingPathComponent("final").path) ? url.appendingPathComponent("final") : url
                if DecoderBundle.isDecoder(model.path) {
                    throw TuneError("\(url.path): a decoder language model, not a classifier; this command works on classifiers (decoders take eval, score, generate, subnets, extract, prune, merge)")
                }
                throw TuneError("\(url.path): not a run directory with final/ nor a saved classifier (no classifier.json)")
            }
            dir = found
            headDir = dir
        }
        let spec = try ClassifierSpec.read(from: headDir.appendingPathComponent("classifier.json"))
        let labels = try LabelVocabulary.read(from: headDir.appendingPathComponent("labels.json"))
        let model: any Classifier
        var tokenizer: WordPieceTokenizer? = nil
        switch spec.kind {
        case .cnn, .mlp:
            model = spec.kind == .cnn ? ImageCNN(spec: spec, seed: 0) : ImageMLP(spec: spec, seed: 0)
            try Checkpoint.loadWeights(dir.appendingPathComponent("model.safetensors"), into: model)
        case .bert:
            let bert = try loadBert(dir)
            let bc = BertClassifier(bert: bert, spec: spec, seed: 0)
            let head = try SafeTensorsFile(url: headDir.appendingPathComponent("head.safetensors"))
            try bc.classifier.update(from: ["weight": try head.tensor("classifier.weight"), "bias": try head.tensor("classifier.bias")])
            model = bc
            tokenizer = try WordPieceTokenizer.load(modelDirectory: dir, checkedAgainst: bert.config)
        }
        model.eval()
        return (model, labels, tokenizer, dir)
    }
}
