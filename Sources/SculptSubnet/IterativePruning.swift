import Foundation
import SculptCore
import SculptNN
import SculptIO
import SculptTune

/// Options of iterative magnitude pruning (`sculpt prune --method imp`).
public struct IMPOptions: Sendable {
    /// Rounds, each removing the same fraction of the remaining weights (nil: as many rounds
    /// of 20 % as the target needs, the last one smaller).
    public var rounds: Int?
    /// The optimiser step of the run whose weights every round restarts from (nil: 5 % of the
    /// run's steps, at least 1; 0: the initialisation, as in the original lottery ticket).
    public var rewindStep: Int?
    /// Epochs of each round's retraining (nil: the run's own epochs).
    public var epochs: Int?

    public init(rounds: Int? = nil, rewindStep: Int? = nil, epochs: Int? = nil) {
        self.rounds = rounds
        self.rewindStep = rewindStep
        self.epochs = epochs
    }
}

/// One round of iterative magnitude pruning (round 0: the dense run).
public struct PruneRound: Codable, Sendable {
    public var round: Int
    /// Zero fraction of the prunable weights in the round's saved model.
    public var sparsity: Double
    /// Validation accuracy of the round's final model.
    public var accuracy: Double?
    /// The round's model directory.
    public var directory: String
}

extension Pruning {
    /// Sparsity after each round: rounds removing 20 % of the remaining weights until
    /// `sparsity` (the last round clipped to it), or `rounds` equal geometric steps.
    public static func impSchedule(sparsity: Double, rounds: Int?) -> [Double] {
        var out: [Double] = []
        if let n = rounds {
            out = (1...max(1, n)).map { 1 - Foundation.pow(1 - sparsity, Double($0) / Double(n)) }
        } else {
            var kept = 1.0
            while out.last.map({ $0 < sparsity }) ?? true {
                kept *= 0.8
                // 1 − 0.8² is 0.35999…: a target hit up to rounding ends the schedule there.
                out.append(1 - kept >= sparsity - 1e-9 ? sparsity : 1 - kept)
            }
        }
        out[out.count - 1] = sparsity
        return out
    }

    /// The weights (and BatchNorm statistics) the run had after `step` optimiser steps,
    /// recomputed by replaying its recipe in `scratch` (training is deterministic: the same
    /// config and seed give the same weights; the scratch run is removed afterwards).
    public static func rewindWeights(_ config: TrainConfig, step k: Int, scratch: URL) throws -> [String: Tensor] {
        try? FileManager.default.removeItem(at: scratch)
        defer { try? FileManager.default.removeItem(at: scratch) }
        var c = config
        c.out = scratch.path
        var captured: [String: Tensor]? = nil
        // The hook sees the model before step k + 1, i.e. after k steps; one more step runs.
        _ = try Trainer.run(c, hooks: TrainHooks(abandonAfterStep: k + 1, beforeStep: { s, model in
            if s == k { captured = model.stateDict() }
        }))
        guard let w = captured else { throw TuneError("--rewind-step \(k): the run's recipe ends before that step") }
        return w
    }

    /// Iterative magnitude pruning with rewinding (Frankle & Carbin 2019; Frankle et al.
    /// 2020): from the trained run, each round prunes the smallest |w| of the prunable weights
    /// still kept (global or per layer) to the round's sparsity, rewinds the kept weights to
    /// their values at step k and retrains the run's recipe under the masks (`--masks`: the
    /// pruned weights stay exactly zero through AdamW and its weight decay).
    ///
    /// `out/`: `rewind.safetensors` (the step-k weights), `round-N/masks.safetensors`,
    /// `round-N/start/` (the rewound, masked start), `round-N/run/` (the round's run
    /// directory), `masks.safetensors` (the last round's) and `imp.json` (the rounds).
    static func iterativeMagnitude(run: URL, sparsity: Double, scope: String, out dir: URL, options: IMPOptions, progress: ProgressDisplay?,
                                   accuracyBefore: Double?, latencyBefore: Double, latencyInput: (BatchInput, String)) throws -> PruneReport {
        let runDir = RunDirectory(run)
        guard let d = try? Data(contentsOf: runDir.runJSON), let record = try? JSONDecoder().decode(RunRecord.self, from: d) else {
            throw TuneError("\(runDir.runJSON.path): no readable run.json; --method imp retrains the run's recipe")
        }
        guard record.config.method == "full", record.config.masks == nil else {
            throw TuneError("--method imp retrains the run's recipe and needs an unmasked --method full run; \(run.path) was trained with --method \(record.config.method)")
        }
        if let r = options.rounds, r < 1 { throw TuneError("--rounds must be ≥ 1, got \(r)") }
        if let e = options.epochs, e < 1 { throw TuneError("--epochs must be ≥ 1, got \(e)") }
        let k = options.rewindStep ?? max(1, Int((0.05 * Double(record.totalSteps)).rounded()))
        guard k >= 0 && k < record.totalSteps else {
            throw TuneError("--rewind-step must be in [0, \(record.totalSteps)) (the run's optimiser steps), got \(k)")
        }
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        progress?.line("imp: replaying the run's first \(k) of \(record.totalSteps) steps for the rewind weights")
        let rewind = try rewindWeights(record.config, step: k, scratch: dir.appendingPathComponent("rewind-replay"))
        try SafeTensorsSaving.write(rewind, to: dir.appendingPathComponent("rewind.safetensors"))

        let loaded = try ClassifierStore.load(run)
        var model = loaded.model
        let (labels, final) = (loaded.labels, loaded.directory)
        let tokenizerSource = model is BertClassifier ? final : nil
        let names = Set(prunable(model).map(\.name))
        var rounds = [PruneRound(round: 0, sparsity: WeightMasks.zeroFraction(model, names: names), accuracy: accuracyBefore, directory: final.path)]
        var masks: [String: Tensor] = [:]
        for (i, target) in impSchedule(sparsity: sparsity, rounds: options.rounds).enumerated() {
            let roundDir = dir.appendingPathComponent("round-\(i + 1)")
            try FileManager.default.createDirectory(at: roundDir, withIntermediateDirectories: true)
            // Pruned by the magnitudes the previous round trained; nested by construction.
            masks = magnitudeMasks(prunable(model), sparsity: target, global: scope == "global", previous: masks)
            let masksFile = roundDir.appendingPathComponent("masks.safetensors")
            try SafeTensorsSaving.write(masks, to: masksFile)
            let report = try model.update(from: rewind)
            precondition(report.missing.isEmpty, "imp: the rewind weights lack \(report.missing)")
            WeightMasks.apply(masks, to: model)
            let start = roundDir.appendingPathComponent("start")
            try ClassifierStore.saveFinal(model, labels: labels, tokenizerSource: tokenizerSource, to: start)
            var c = record.config
            c.out = roundDir.appendingPathComponent("run").path
            c.initFrom = start.path
            c.masks = masksFile.path
            if let e = options.epochs { c.epochs = e }
            progress?.line(String(format: "imp round %d: sparsity %.1f %%, retraining from step %d", i + 1, target * 100, k))
            let r = try Trainer.run(c, hooks: TrainHooks(progress: progress))
            model = try ClassifierStore.load(r.runDirectory).model
            rounds.append(PruneRound(round: i + 1, sparsity: WeightMasks.zeroFraction(model, names: names), accuracy: r.validation?.accuracy,
                                     directory: RunDirectory(r.runDirectory).final.path))
            progress?.line(String(format: "imp round %d: %.2f %% zeros, accuracy %@", i + 1, rounds.last!.sparsity * 100,
                                  rounds.last!.accuracy.map { String(format: "%.2f %%", $0 * 100) } ?? "-"))
        }
        try SafeTensorsSaving.write(masks, to: dir.appendingPathComponent("masks.safetensors"))
        var result = PruneReport(method: "imp", scope: scope, requestedSparsity: sparsity, achievedSparsity: rounds.last!.sparsity,
                                 accuracyBefore: accuracyBefore, accuracyAfter: rounds.last!.accuracy, latencyBeforeMilliseconds: latencyBefore,
                                 latencyAfterMilliseconds: measureLatency(model, input: latencyInput.0) * 1e3, latencyInput: latencyInput.1,
                                 directory: rounds.last!.directory,
                                 note: "each round rewinds the kept weights to step \(k) and retrains under the masks; unstructured zeros bring no speed here (dense kernels multiply them too)")
        result.rounds = rounds
        try RunJSONWriter.write(result, to: dir.appendingPathComponent("imp.json"))
        return result
    }
}
