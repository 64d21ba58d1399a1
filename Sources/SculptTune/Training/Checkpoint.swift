import Foundation
import SculptCore
import SculptNN
import SculptIO
import SculptModels

/// Everything besides tensors that the loop needs to continue exactly: counters, data order,
/// every generator, early-stopping state. Stored as JSON in the checkpoint's metadata.
public struct LoopState: Codable, Sendable, Equatable {
    public var step: Int = 0
    public var data: DataOrderState
    /// AdamW's per-parameter step counts (bias correction), by parameter name.
    public var optimizerSteps: [String: Int] = [:]
    /// Each Dropout module's generator, by module path.
    public var dropoutRNGs: [String: SeededRNG] = [:]
    public var bestAccuracy: Double? = nil
    /// The lowest validation loss so far (language models, which select by loss).
    public var bestLoss: Double? = nil
    public var bestStep: Int? = nil
    public var evaluationsWithoutImprovement: Int = 0
    public var stoppedEarly: Bool = false
    /// Each LoRA adapter's dropout generator, by module path (lora runs).
    public var loraRNGs: [String: SeededRNG]? = nil
    /// The heads and channels s2ft trains (s2ft runs); resume re-applies this plan.
    public var s2ftPlan: S2FTPlan? = nil
    /// LT-SFT's phase: 0 = full fine-tuning, 1 = sparse (sparse runs).
    public var sparsePhase: Int? = nil
    /// The training strategy's own state (elastic / gates), as JSON.
    public var strategyState: String? = nil
}

/// A checkpoint file: `model.<name>` (parameters and buffers), `adam.m.<name>`,
/// `adam.v.<name>`, and the loop state in the metadata. Written atomically (SafeTensorsWriter
/// writes a temporary file and renames it), so a kill never leaves a torn checkpoint.
public enum Checkpoint {
    static let stateKey = "sculpt.loop_state"

    public static func save(model: any Module, optimizer: AdamW, state: LoopState, to url: URL) throws {
        var s = state
        s.optimizerSteps = optimizer.states.mapValues(\.step)
        s.dropoutRNGs = dropoutRNGs(of: model)
        let lora = model.loraLayers()
        s.loraRNGs = lora.isEmpty ? nil : Dictionary(uniqueKeysWithValues: lora.map { ($0.name, $0.layer.lora!.rng) })
        var tensors: [String: Tensor] = [:]
        for (n, t) in model.stateDict() { tensors["model." + n] = t }
        for (n, st) in optimizer.states where st.buffers.count == 2 {
            tensors["adam.m." + n] = st.buffers[0]
            tensors["adam.v." + n] = st.buffers[1]
        }
        let json = String(decoding: try JSONEncoder().encode(s), as: UTF8.self)
        try SafeTensorsSaving.write(tensors, to: url, metadata: ["format": "pt", stateKey: json])
    }

    /// The loop state alone: a method must rebuild its set-up (adapters, s2ft permutation,
    /// LT-SFT phase) before the tensors can load by name.
    public static func readState(from url: URL) throws -> LoopState {
        try state(of: try open(url), url: url)
    }

    static func open(_ url: URL) throws -> SafeTensorsFile {
        do { return try SafeTensorsFile(url: url) } catch { throw TuneError("\(url.path): cannot read the checkpoint (\(error))") }
    }

    static func state(of f: SafeTensorsFile, url: URL) throws -> LoopState {
        guard let json = f.metadata[stateKey], let state = try? JSONDecoder().decode(LoopState.self, from: Data(json.utf8)) else {
            throw TuneError("\(url.path): not a sculpt training checkpoint (no loop state)")
        }
        return state
    }

    /// Restores model, optimiser and generators; returns the loop state.
    public static func load(from url: URL, model: any Module, optimizer: AdamW) throws -> LoopState {
        let f = try open(url)
        let state = try state(of: f, url: url)
        var values: [String: Tensor] = [:]
        for n in f.names where n.hasPrefix("model.") { values[String(n.dropFirst(6))] = try f.tensor(n) }
        let r = try model.update(from: values)
        guard r.missing.isEmpty else { throw TuneError("\(url.path): checkpoint lacks \(r.missing.count) model tensors, e.g. \(r.missing[0])") }
        optimizer.states = [:]
        for (n, step) in state.optimizerSteps {
            guard f.contains("adam.m." + n), f.contains("adam.v." + n) else { throw TuneError("\(url.path): no optimiser state for \(n)") }
            optimizer.states[n] = OptimizerState(step: step, buffers: [try f.tensor("adam.m." + n), try f.tensor("adam.v." + n)])
        }
        model.visitModules { path, m in
            if let d = m as? Dropout, let rng = state.dropoutRNGs[path] { d.rng = rng }
        }
        for (name, layer) in model.loraLayers() {
            guard let rng = state.loraRNGs?[name] else { throw TuneError("\(url.path): no LoRA dropout state for \(name)") }
            layer.lora!.rng = rng
        }
        return state
    }

    /// Model weights only (the best checkpoint, final weights).
    public static func saveWeights(_ model: any Module, to url: URL) throws {
        try SafeTensorsSaving.write(model.stateDict(), to: url)
    }

    public static func loadWeights(_ url: URL, into model: any Module) throws {
        let f = try SafeTensorsFile(url: url)
        var values: [String: Tensor] = [:]
        for n in f.names { values[n] = try f.tensor(n) }
        let r = try model.update(from: values)
        guard r.missing.isEmpty else { throw TuneError("\(url.path): lacks \(r.missing.count) model tensors, e.g. \(r.missing[0])") }
    }

    static func dropoutRNGs(of model: any Module) -> [String: SeededRNG] {
        var out: [String: SeededRNG] = [:]
        model.visitModules { path, m in if let d = m as? Dropout { out[path] = d.rng } }
        return out
    }
}
