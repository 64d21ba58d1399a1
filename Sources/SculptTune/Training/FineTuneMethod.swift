import Foundation
import SculptCore
import SculptNN
import SculptIO
import SculptModels

/// Which weights train.
public enum FineTuneMethod: Sendable, Equatable {
    case full
    case bitfit
    case lora(rank: Int, alpha: Double, dropout: Double, targets: TargetModules, rsLoRA: Bool)
    /// LT-SFT: a full phase of `fullFraction` × the sparse phase's steps, then the top
    /// `density` |change| entries train from the pre-trained weights.
    case sparse(density: Double, fullFraction: Double)
    case s2ft(density: Double, headDensity: Double?, sides: S2FTSides)
    /// Weight-sharing sub-network training (all weights train; the sampling strategy is SculptSubnet's).
    case elastic
    /// Learned unit gates toward a MACs/parameter target (all weights and the gates train).
    case gates

    public init(config c: TrainConfig) throws {
        switch c.method {
        case "full": self = .full
        case "bitfit": self = .bitfit
        case "lora":
            guard c.loraRank > 0 else { throw TuneError("--lora-rank must be positive, got \(c.loraRank)") }
            guard c.loraDropout >= 0 && c.loraDropout < 1 else { throw TuneError("--lora-dropout must be in [0, 1), got \(c.loraDropout)") }
            let decoder = c.isDecoderModel
            self = .lora(rank: c.loraRank, alpha: c.loraAlpha, dropout: c.loraDropout,
                         targets: try Self.targets(c.loraTargets ?? (decoder ? "q_proj,v_proj" : "query,value"), decoder: decoder), rsLoRA: c.loraRslora)
        case "sparse", "s2ft":
            guard c.density > 0 && c.density <= 1 else { throw TuneError("--density must be in (0, 1], got \(c.density)") }
            self = c.method == "sparse" ? .sparse(density: c.density, fullFraction: c.sparseFullFraction)
                : .s2ft(density: c.density, headDensity: c.s2ftHeadDensity, sides: try choice(c.s2ftSides, of: "s2ft-sides"))
        case "elastic": self = .elastic
        case "gates": self = .gates
        default:
            throw TuneError("--method must be one of full, lora, bitfit, sparse, s2ft, elastic, gates; got \"\(c.method)\"")
        }
        if case .lora = self, ClassifierStore.isImageModel(c.model) { throw TuneError("--method lora needs a BERT --model (LoRA targets its attention layers)") }
        if case .s2ft = self, ClassifierStore.isImageModel(c.model) { throw TuneError("--method s2ft needs a BERT or decoder --model (it selects attention heads and FFN channels)") }
        if let o = c.objective {
            let decoder = c.isDecoderModel
            if o == "causal-lm" && !decoder { throw TuneError("--objective causal-lm needs a decoder --model (a decoder HF directory or a GGUF file); \(c.model) is not one") }
            if o == "classification" && decoder { throw TuneError("--objective classification on a decoder (a head on the last token) is not available yet; decoders train with --objective causal-lm") }
        }
    }

    /// `--lora-targets`: a comma-separated list of module-name suffixes (PEFT's list form), or,
    /// when it holds regex syntax, a regex that must match a module's whole dotted name
    /// relative to the BERT (PEFT's string form, e.g. `encoder\.layer\.[0-5]\.attention\.self\.(query|value)`).
    /// `all-linear` (PEFT's shorthand) is every projection of a decoder layer.
    static func targets(_ text: String, decoder: Bool) throws -> TargetModules {
        if text == "all-linear" {
            guard decoder else { throw TuneError("--lora-targets all-linear applies to decoder models; name the BERT modules (e.g. query,key,value,dense)") }
            return .names(["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])
        }
        if text.contains(where: { "\\*+?()[]{}|^$".contains($0) }) {
            do { _ = try Regex(text) } catch { throw TuneError("--lora-targets: \"\(text)\" is not a valid regex (\(error))") }
            return .regex(text)
        }
        let names = text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        guard !names.isEmpty else { throw TuneError("--lora-targets must name at least one module") }
        return .names(names)
    }

    public var name: String {
        switch self {
        case .full: return "full"
        case .bitfit: return "bitfit"
        case .lora: return "lora"
        case .sparse: return "sparse"
        case .s2ft: return "s2ft"
        case .elastic: return "elastic"
        case .gates: return "gates"
        }
    }
}

/// A method's life inside one run: marks what trains, keeps the state a checkpoint needs to
/// resume (LoRA dropout streams, the s2ft plan, the LT-SFT phase and support), switches LT-SFT
/// from its full to its sparse phase, and writes the method's `final/` form.
final class MethodRunner {
    let method: FineTuneMethod
    let task: any TrainingTask
    var model: any Module { task.model }
    let config: TrainConfig
    /// Optimiser steps of the sparse method's first (full) phase; 0 for the other methods.
    let fullPhaseSteps: Int
    private(set) var s2ft: (any S2FTFolding)?
    /// sparse: the weights before any training (θ₀ and the fresh head); LT-SFT resets to them.
    private var initial: [String: Tensor] = [:]
    /// sparse, second phase: the trained entries (values are those of the selection).
    private(set) var support: SparseDiff?

    /// The file that records the LT-SFT support once the sparse phase started.
    static func supportFile(_ runDir: RunDirectory) -> URL { runDir.checkpoints.appendingPathComponent("sparse_support.safetensors") }

    init(method: FineTuneMethod, task: any TrainingTask, config: TrainConfig, stepsPerRun: Int) {
        self.method = method
        self.task = task
        self.config = config
        if case .sparse(_, let f) = method { fullPhaseSteps = max(1, Int((f * Double(stepsPerRun)).rounded())) } else { fullPhaseSteps = 0 }
    }

    /// Sets up which parameters train. With `resuming`, rebuilds the state the checkpoint was
    /// written in (same adapters, same permutation, same phase) so its tensors load by name.
    func prepare(state: inout LoopState, resuming: Bool, runDir: RunDirectory, optimizer: AdamW) throws {
        switch method {
        case .full, .elastic, .gates:
            model.setTrainable(true)
            if let path = config.masks {
                // Fixed pruning masks (IMP rounds): zeros stay exactly zero, checkpoints included.
                let masks = try WeightMasks.read(URL(fileURLWithPath: path), for: model)
                WeightMasks.apply(masks, to: model)
                optimizer.updateMasks = masks
            }
        case .bitfit:
            model.setTrainable(false)
            model.setTrainable(true) { self.task.isBitFitParameter($0) }
        case .lora(let rank, let alpha, let dropout, let targets, let rsLoRA):
            guard let root = task.loraRoot else { throw TuneError("--method lora needs a BERT or decoder model") }
            // Adapters sit on the base model (not a classifier around it) so names are PEFT's
            // relative to it; a head outside it stays trainable (PEFT's modules_to_save).
            var rng = SeededRNG(seed: config.seed ^ 0x10_7A)
            do {
                try applyLoRA(to: root, targetModules: targets, rank: rank, alpha: Float(alpha), dropout: Float(dropout), useRSLoRA: rsLoRA, rng: &rng)
            } catch { throw TuneError("--lora-targets: \(error)") }
        case .s2ft(let density, let headDensity, let sides):
            let (plan, session) = try task.startS2FT(plan: resuming ? state.s2ftPlan : nil, density: density, headDensity: headDensity,
                                                     sides: sides, seed: config.seed ^ 0x52F7)
            state.s2ftPlan = plan
            s2ft = session
        case .sparse:
            initial = model.stateDict()
            if resuming, state.sparsePhase == 1 {
                let diff = try SparseDiff.load(from: Self.supportFile(runDir))
                startSparsePhase(diff, optimizer: optimizer)
            } else {
                model.setTrainable(true)
                state.sparsePhase = 0
            }
        }
    }

    /// LT-SFT's switch after its full phase: keep the top-K |θ − θ₀| entries, reset every
    /// weight (head included) to θ₀ and train only those entries from a fresh optimiser.
    func switchToSparsePhase(state: inout LoopState, runDir: RunDirectory, optimizer: AdamW) throws {
        guard case .sparse(let density, _) = method else { return }
        var base: [String: Tensor] = [:], tuned: [String: Tensor] = [:]
        for (n, p) in model.namedParameters() where task.isSparseCandidate(n) {
            base[n] = initial[n]
            tuned[n] = p.value
        }
        let diff = try SparseDiff.select(base: base, finetuned: tuned, density: density)
        try model.update(from: initial)
        // The support must be on disk before any checkpoint says "phase 1".
        try diff.write(to: Self.supportFile(runDir))
        startSparsePhase(diff, optimizer: optimizer)
        optimizer.states = [:]
        state.sparsePhase = 1
    }

    private func startSparsePhase(_ diff: SparseDiff, optimizer: AdamW) {
        support = diff
        let head = task.headPrefix
        optimizer.updateMasks = diff.prepareSparseTraining(model) { name in head.map { name.hasPrefix($0) } ?? false }
    }

    /// Zeroes the gradient of unselected (LT-SFT) or pruned (`--masks`) entries, so clipping
    /// sees only what trains.
    func maskGradients(_ optimizer: AdamW) {
        guard !optimizer.updateMasks.isEmpty else { return }
        WeightMasks.maskGradients(optimizer.updateMasks, of: model)
    }

    /// The learning rate at `step` of a run of `totalSteps`: `lr` under the schedule; the
    /// sparse method runs the schedule (warm-up, decay) once per phase, peaking at `lr` in its
    /// full phase and at `sparseLr` (default 10 × `lr`) in its sparse phase.
    func learningRate(step: Int, totalSteps: Int, state: LoopState, schedule: (Int) -> LRSchedule) -> Float {
        guard fullPhaseSteps > 0 else { return Float(config.lr) * schedule(totalSteps).factor(at: step) }
        if (state.sparsePhase ?? 0) == 0 { return Float(config.lr) * schedule(fullPhaseSteps).factor(at: step) }
        return Float(sparsePhaseLearningRate) * schedule(totalSteps - fullPhaseSteps).factor(at: step - fullPhaseSteps)
    }

    /// The peak learning rate of LT-SFT's sparse phase.
    var sparsePhaseLearningRate: Double { config.sparseLr ?? 10 * config.lr }

    /// Writes `final/`: a full model (full, bitfit, s2ft after folding), or the base reference
    /// plus a PEFT adapter (lora) or a sparse diff (sparse), in the task's form.
    func saveFinal(to dir: URL) throws {
        let base = absolutePath(config.model)
        switch method {
        case .full, .bitfit, .elastic, .gates:
            try task.saveFinal(.full, baseModel: base, to: dir)
        case .s2ft:
            s2ft?.fold()
            try task.saveFinal(.full, baseModel: base, to: dir)
        case .lora(let rank, let alpha, let dropout, let targets, let rsLoRA):
            let peft = PEFTLoRAConfig(r: rank, loraAlpha: alpha, loraDropout: dropout, targetModules: targets.peft, useRSLoRA: rsLoRA,
                                      baseModelNameOrPath: base, taskType: task.peftTaskType)
            try task.saveFinal(.loraAdapter(peft), baseModel: base, to: dir)
        case .sparse:
            guard let support else { throw TuneError("sparse: the run ended before its sparse phase started") }
            var initialPart: [String: Tensor] = [:], tuned: [String: Tensor] = [:]
            let current = model.stateDict()
            for name in support.parts.keys { initialPart[name] = initial[name]; tuned[name] = current[name] }
            var diff = try support.onSameSupport(base: initialPart, finetuned: tuned)
            diff.metadata["base_model"] = base
            try task.saveFinal(.sparseDiff(diff), baseModel: base, to: dir)
        }
    }

    func absolutePath(_ p: String) -> String { URL(fileURLWithPath: p).standardizedFileURL.path }
}
