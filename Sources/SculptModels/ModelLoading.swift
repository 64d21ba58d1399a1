import Foundation
import SculptCore
import SculptNN
import SculptIO

/// What loading a checkpoint into a model found: names the model expected but the file
/// lacks, and names the file has that the model does not use.
public struct LoadReport: Sendable, Equatable {
    public var missing: [String]
    public var unexpected: [String]
    public var isComplete: Bool { missing.isEmpty }
}

extension BertModel {
    /// Buffers of HF checkpoints that are not parameters and are safely ignored.
    static let ignoredKeys: Set<String> = ["embeddings.position_ids"]

    /// Loads `config.json` and `model.safetensors` from a Hugging Face model directory.
    /// Keys may carry a `bert.` prefix (task-model checkpoints); it is stripped. Missing
    /// encoder weights are an error; a missing pooler only drops the pooler.
    public static func load(directory: URL) throws -> (model: BertModel, report: LoadReport) {
        let configURL = directory.appendingPathComponent("config.json")
        let weightsURL = directory.appendingPathComponent("model.safetensors")
        guard FileManager.default.fileExists(atPath: configURL.path) else {
            throw ModelError.badWeights(file: directory.path, message: "no config.json in the model directory")
        }
        let config = try BertConfig.load(from: configURL)
        guard FileManager.default.fileExists(atPath: weightsURL.path) else {
            throw ModelError.badWeights(file: directory.path, message: "no model.safetensors in the model directory")
        }
        let file = try SafeTensorsFile(path: weightsURL.path)
        let prefix = file.names.contains { $0.hasPrefix("bert.") } ? "bert." : ""
        let hasPooler = file.contains(prefix + "pooler.dense.weight")
        // Nothing is allocated for sizes the file cannot hold: the config's parameters must
        // be there (the file's tensors are bounded by its size).
        let needed = config.parameterCount(withPooler: hasPooler)
        let held = file.names.reduce(0) { $0 + ((try? file.info($1).elementCount) ?? 0) }
        guard needed <= held else {
            throw ModelError.badWeights(file: weightsURL.path, message: "holds \(held) parameters but config.json's sizes need \(needed) (hidden_size \(config.hiddenSize), vocab_size \(config.vocabSize), \(config.numHiddenLayers) layers)")
        }
        let model = try BertModel(config: config, withPooler: hasPooler, randomWeights: false)
        let report = try model.load(from: file, prefix: prefix)
        if !report.missing.isEmpty { throw ModelError.missingWeights(file: weightsURL.path, names: report.missing) }
        return (model, report)
    }

    /// Copies every parameter from the file (by name, with `prefix`), checking shapes.
    public func load(from file: SafeTensorsFile, prefix: String = "") throws -> LoadReport {
        var values: [String: Tensor] = [:]
        let expected = Set(namedParameters().map(\.name))
        var unexpected: [String] = []
        for name in file.names {
            guard name.hasPrefix(prefix) else { unexpected.append(name); continue }
            let key = String(name.dropFirst(prefix.count))
            if expected.contains(key) {
                values[key] = try file.tensor(name)
            } else if !BertModel.ignoredKeys.contains(key) {
                unexpected.append(name)
            }
        }
        do {
            let r = try update(from: values)
            return LoadReport(missing: r.missing, unexpected: unexpected.sorted())
        } catch let e as ModuleError {
            throw ModelError.badWeights(file: file.path, message: e.description)
        }
    }

    /// Writes the model as a Hugging Face directory: config.json and model.safetensors.
    public func save(to directory: URL) throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try SafeTensorsSaving.write(stateDict(), to: directory.appendingPathComponent("model.safetensors"))
        try config.write(to: directory.appendingPathComponent("config.json"))
    }
}
