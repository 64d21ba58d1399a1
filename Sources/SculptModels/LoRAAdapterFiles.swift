import Foundation
import SculptCore
import SculptNN
import SculptIO

extension TargetModules {
    public init(_ t: PEFTLoRAConfig.Targets) {
        switch t {
        case .regex(let p): self = .regex(p)
        case .names(let l): self = .names(l)
        }
    }

    public var peft: PEFTLoRAConfig.Targets {
        switch self {
        case .regex(let p): return .regex(p)
        case .names(let l): return .names(l)
        }
    }
}

public enum LoRAAdapterFileError: Error, CustomStringConvertible, Equatable {
    case noAdapters
    case missingTensors(file: String, names: [String])
    case unexpectedTensors(file: String, names: [String])
    case merged(String)

    public var description: String {
        switch self {
        case .noAdapters: return "the model has no LoRA adapters to save"
        case .missingTensors(let f, let n): return "\(f): missing \(n.count) tensor(s): \(n.prefix(4).joined(separator: ", "))\(n.count > 4 ? ", …" : "")"
        case .unexpectedTensors(let f, let n): return "\(f): \(n.count) tensor(s) the model does not have: \(n.prefix(4).joined(separator: ", "))\(n.count > 4 ? ", …" : "")"
        case .merged(let n): return "LoRA adapter of \(n) is merged into its base weight; unmerge before saving the adapter"
        }
    }
}

/// PEFT's on-disk LoRA format: `<dir>/adapter_config.json` and `<dir>/adapter_model.safetensors`
/// with keys `base_model.model.<module>.lora_A.weight` / `.lora_B.weight` (no adapter name,
/// as `save_pretrained` strips it) and `base_model.model.<param>` for `modules_to_save`.
/// Names are relative to the module passed in, so pass the module PEFT would wrap.
public enum LoRAAdapterFiles {
    public static func save(_ model: any Module, config: PEFTLoRAConfig, to directory: URL) throws {
        let layers = model.loraLayers()
        guard !layers.isEmpty else { throw LoRAAdapterFileError.noAdapters }
        if let m = layers.first(where: { $0.layer.lora!.merged }) { throw LoRAAdapterFileError.merged(m.name) }
        var writer = SafeTensorsWriter()
        for (name, p) in model.namedParameters() {
            let isLoRA = name.hasSuffix(".lora_A.weight") || name.hasSuffix(".lora_B.weight")
            guard isLoRA || isInModulesToSave(name, config.modulesToSave ?? []) else { continue }
            try writer.add(name: PEFTLoRAConfig.keyPrefix + name, floats: p.value.scalars, shape: p.value.shape)
        }
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        // Weights first, config last: a directory with a config always has its weights.
        try writer.write(to: directory.appendingPathComponent(PEFTLoRAConfig.weightsFileName))
        try config.write(to: directory.appendingPathComponent(PEFTLoRAConfig.configFileName))
    }

    /// Reads an adapter directory, attaches adapters to `model` as its config says, and loads
    /// their weights (and any `modules_to_save` parameters). Every adapter tensor must be
    /// present and every file tensor used. Returns the config and the adapted module names.
    @discardableResult
    public static func load(from directory: URL, into model: any Module) throws -> (config: PEFTLoRAConfig, modules: [String]) {
        let config = try PEFTLoRAConfig.load(from: directory.appendingPathComponent(PEFTLoRAConfig.configFileName))
        // adapter_model.safetensors, or the pickled adapter_model.bin older PEFT versions wrote.
        var weightsURL = directory.appendingPathComponent(PEFTLoRAConfig.weightsFileName)
        let binURL = directory.appendingPathComponent("adapter_model.bin")
        let file: AdapterWeights
        if !FileManager.default.fileExists(atPath: weightsURL.path) && FileManager.default.fileExists(atPath: binURL.path) {
            weightsURL = binURL
            file = AdapterWeights(tensors: try TorchCheckpoint.read(binURL))
        } else {
            file = AdapterWeights(file: try SafeTensorsFile(path: weightsURL.path))
        }
        var rng = SeededRNG(seed: 0)  // A is overwritten below; only the dropout stream uses it
        let modules = try applyLoRA(to: model, targetModules: TargetModules(config.targetModules), rank: config.r,
                                    alpha: Float(config.loraAlpha), dropout: Float(config.loraDropout), useRSLoRA: config.useRSLoRA,
                                    modulesToSave: config.modulesToSave ?? [], rng: &rng)
        var wanted: [String: Variable] = [:]
        for (name, p) in model.namedParameters() {
            let isLoRA = name.hasSuffix(".lora_A.weight") || name.hasSuffix(".lora_B.weight")
            if isLoRA || isInModulesToSave(name, config.modulesToSave ?? []) { wanted[PEFTLoRAConfig.keyPrefix + name] = p }
        }
        let unexpected = file.names.filter { wanted[$0] == nil }
        guard unexpected.isEmpty else { throw LoRAAdapterFileError.unexpectedTensors(file: weightsURL.path, names: unexpected) }
        let missing = wanted.keys.filter { !file.contains($0) }.sorted()
        // modules_to_save entries are optional in the file only if the model has no such parameters.
        guard missing.isEmpty else { throw LoRAAdapterFileError.missingTensors(file: weightsURL.path, names: missing) }
        for (key, p) in wanted {
            let t = try file.tensor(key)
            guard t.shape == p.value.shape else {
                throw ModelError.badWeights(file: weightsURL.path, message: "\(key): expected shape \(p.value.shape), got \(t.shape)")
            }
            p.value = t
        }
        return (config, modules)
    }
}

/// An adapter's tensors from safetensors or from a torch.save file.
struct AdapterWeights {
    var file: SafeTensorsFile? = nil
    var tensors: [String: Tensor] = [:]
    init(file: SafeTensorsFile) { self.file = file }
    init(tensors: [String: Tensor]) { self.tensors = tensors }
    var names: [String] { file?.names ?? tensors.keys.sorted() }
    func contains(_ name: String) -> Bool { file?.contains(name) ?? (tensors[name] != nil) }
    func tensor(_ name: String) throws -> Tensor {
        if let file { return try file.tensor(name) }
        guard let t = tensors[name] else { throw ModelError.badWeights(file: name, message: "missing") }
        return t
    }
}

