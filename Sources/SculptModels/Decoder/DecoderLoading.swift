import Foundation
import SculptCore
import SculptNN
import SculptIO

/// The safetensors of a Hugging Face model directory: `model.safetensors`, or the shards
/// named by `model.safetensors.index.json`'s `weight_map`.
public struct SafeTensorsCheckpoint {
    public let files: [SafeTensorsFile]
    /// Which file holds each tensor.
    public let location: [String: Int]
    public var names: [String] { location.keys.sorted() }

    public init(directory: URL) throws {
        let single = directory.appendingPathComponent("model.safetensors")
        let index = directory.appendingPathComponent("model.safetensors.index.json")
        if FileManager.default.fileExists(atPath: single.path) {
            let file = try SafeTensorsFile(path: single.path)
            files = [file]
            location = Dictionary(uniqueKeysWithValues: file.names.map { ($0, 0) })
            return
        }
        guard FileManager.default.fileExists(atPath: index.path) else {
            throw ModelError.badWeights(file: directory.path, message: "no model.safetensors or model.safetensors.index.json in the model directory")
        }
        let data: Data
        do { data = try Data(contentsOf: index) } catch { throw ConfigError(file: index.path, key: nil, message: "cannot read: \(error.localizedDescription)") }
        let json: StrictJSON.Value
        do { json = try data.withUnsafeBytes { try StrictJSON.parse($0) } } catch let e as StrictJSON.ParseError {
            throw ConfigError(file: index.path, key: nil, message: "not valid JSON: \(e)")
        }
        guard let map = json["weight_map"]?.objectMembers else {
            throw ConfigError(file: index.path, key: "weight_map", message: "missing, or not an object of tensor name → shard file")
        }
        var shardIndex: [String: Int] = [:], opened: [SafeTensorsFile] = [], where_: [String: Int] = [:]
        for member in map {
            guard let shard = member.value.stringValue, !shard.contains("/"), !shard.hasPrefix(".") else {
                throw ConfigError(file: index.path, key: "weight_map.\(member.key)", message: "expected a shard file name in the directory")
            }
            if shardIndex[shard] == nil {
                shardIndex[shard] = opened.count
                opened.append(try SafeTensorsFile(path: directory.appendingPathComponent(shard).path))
            }
            let i = shardIndex[shard]!
            guard opened[i].contains(member.key) else {
                throw ModelError.badWeights(file: opened[i].path, message: "index.json places \(member.key) here but the shard has no such tensor")
            }
            where_[member.key] = i
        }
        files = opened
        location = where_
    }

    public func tensor(_ name: String) throws -> Tensor? {
        guard let i = location[name] else { return nil }
        return try files[i].tensor(name)
    }

    /// Bytes of every shard.
    public var byteCount: Int { files.reduce(0) { $0 + $1.fileSize } }
}

extension DecoderLM {
    /// Keys of HF checkpoints that are not parameters and are safely ignored.
    static func isIgnoredKey(_ name: String, tied: Bool) -> Bool {
        name.hasSuffix(".rotary_emb.inv_freq") || (tied && name == "lm_head.weight")
    }

    /// Builds the model from `config.json` and its safetensors (single or sharded; F32, F16
    /// or BF16). A missing weight is an error naming it; unexpected names are reported.
    public static func load(directory: URL) throws -> (model: DecoderLM, report: LoadReport) {
        let configURL = directory.appendingPathComponent("config.json")
        guard FileManager.default.fileExists(atPath: configURL.path) else {
            throw ModelError.badWeights(file: directory.path, message: "no config.json in the model directory")
        }
        let config = try DecoderConfig.load(from: configURL)
        let checkpoint = try SafeTensorsCheckpoint(directory: directory)
        let model = DecoderLM(config: config, randomWeights: false)
        let report = try model.load(names: checkpoint.names, file: directory.path) { try checkpoint.tensor($0) }
        return (model, report)
    }

    /// Fills every parameter from `tensor(name)` (transformers' names), checking shapes.
    /// Missing parameters throw; names the model does not have are returned as unexpected.
    public func load(names: [String], file: String, tensor: (String) throws -> Tensor?) throws -> LoadReport {
        var unexpected: [String] = []
        var missing: [String] = []
        let available = Set(names)
        for (name, p) in namedParameters() {
            guard available.contains(name), let t = try tensor(name) else { missing.append(name); continue }
            guard t.shape == p.value.shape else {
                throw ModelError.badWeights(file: file, message: "tensor \(name) has shape \(t.shape), the config gives \(p.value.shape)")
            }
            p.value = t
        }
        let expected = Set(namedParameters().map(\.name))
        for n in names where !expected.contains(n) && !DecoderLM.isIgnoredKey(n, tied: config.tieWordEmbeddings) { unexpected.append(n) }
        if !missing.isEmpty { throw ModelError.missingWeights(file: file, names: missing) }
        return LoadReport(missing: [], unexpected: unexpected.sorted())
    }

    /// Writes config.json, generation_config.json and model.safetensors (float32, or `dtype`)
    /// into `directory`, as transformers' `save_pretrained` lays them out.
    public func save(to directory: URL, dtype: SafeTensorsDType = .f32, generation: [String: Any] = [:]) throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        var tensors: [String: Tensor] = [:]
        for (n, p) in namedParameters() { tensors[n] = p.value }
        try SafeTensorsSaving.write(tensors, to: directory.appendingPathComponent("model.safetensors"), dtype: dtype, metadata: ["format": "pt"])
        try config.write(to: directory.appendingPathComponent("config.json"),
                         torchDtype: dtype == .bf16 ? "bfloat16" : dtype == .f16 ? "float16" : "float32")
        var gen: [String: Any] = ["_from_model_config": true]
        if let b = config.bosTokenId { gen["bos_token_id"] = b }
        if config.eosTokenIds.count == 1 { gen["eos_token_id"] = config.eosTokenIds[0] } else if !config.eosTokenIds.isEmpty { gen["eos_token_id"] = config.eosTokenIds }
        if let p = config.padTokenId { gen["pad_token_id"] = p }
        for (k, v) in generation { gen[k] = v }
        var data = try JSONSerialization.data(withJSONObject: gen, options: [.prettyPrinted, .sortedKeys])
        data.append(UInt8(ascii: "\n"))
        try AtomicFile.write(data, to: directory.appendingPathComponent("generation_config.json"))
    }
}
