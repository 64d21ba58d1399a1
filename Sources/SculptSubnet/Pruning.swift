import Foundation
import SculptCore
import SculptNN
import SculptIO
import SculptModels
import SculptTune

/// What `sculpt prune` did and what it bought on this CPU.
public struct PruneReport: Codable, Sendable {
    public var method: String
    public var scope: String
    public var requestedSparsity: Double
    /// Zero fraction of the prunable weights (unstructured) or removed fraction of the
    /// prunable units' weights (structured).
    public var achievedSparsity: Double
    public var accuracyBefore: Double?
    public var accuracyAfter: Double?
    public var latencyBeforeMilliseconds: Double
    public var latencyAfterMilliseconds: Double
    public var latencyInput: String
    public var directory: String
    public var note: String
    /// IMP: one entry per round (round 0 is the dense run).
    public var rounds: [PruneRound]? = nil

    enum CodingKeys: String, CodingKey {
        case method, scope, requestedSparsity = "requested_sparsity", achievedSparsity = "achieved_sparsity"
        case accuracyBefore = "accuracy_before", accuracyAfter = "accuracy_after"
        case latencyBeforeMilliseconds = "latency_before_ms", latencyAfterMilliseconds = "latency_after_ms", latencyInput = "latency_input"
        case directory, note, rounds
    }
}

/// Pruning a trained run: unstructured magnitude pruning (global or per layer) with masks,
/// and structured head/channel pruning by importance followed by a short recovery fine-tune.
public enum Pruning {
    /// Weight matrices and kernels that pruning may zero: every ≥2-D weight except the
    /// embeddings and the classification head (pruned heads and vocabularies hurt most and
    /// cost little compute).
    static func prunable(_ model: any Module) -> [(name: String, parameter: Variable)] {
        model.namedParameters().filter { $0.parameter.value.rank >= 2 && !$0.name.contains("embeddings") && !$0.name.hasPrefix("classifier.") }
    }

    /// 0/1 masks keeping the largest |w|: over all prunable weights at once (`global`) or
    /// the same fraction in each tensor. Ties at the threshold are pruned in index order so
    /// the count is exact. Entries a `previous` mask removed are removed first, so masks of
    /// increasing sparsity are nested (iterative pruning).
    public static func magnitudeMasks(_ params: [(name: String, parameter: Variable)], sparsity: Double, global: Bool,
                                      previous: [String: Tensor] = [:]) -> [String: Tensor] {
        func masks(for group: [(name: String, parameter: Variable)]) -> [String: Tensor] {
            var all: [(Float, Int, Int)] = []   // (|w|, or −1 when already pruned; tensor; index)
            for (t, p) in group.enumerated() {
                let old = previous[p.name]
                for i in 0..<p.parameter.value.count { all.append((old?[flat: i] == 0 ? -1 : abs(p.parameter.value[flat: i]), t, i)) }
            }
            let prune = Int((sparsity * Double(all.count)).rounded())
            all.sort { $0.0 != $1.0 ? $0.0 < $1.0 : ($0.1, $0.2) < ($1.1, $1.2) }
            var out = group.map { Tensor.ones($0.parameter.value.shape) }
            for (_, t, i) in all.prefix(prune) { out[t][flat: i] = 0 }
            return Dictionary(uniqueKeysWithValues: zip(group.map(\.name), out))
        }
        if global { return masks(for: params) }
        return params.reduce(into: [:]) { acc, p in acc.merge(masks(for: [p])) { a, _ in a } }
    }

    static func latencyInput(for model: any Classifier) -> (BatchInput, String) {
        var rng = SeededRNG(seed: 0)
        if let b = model as? BertClassifier {
            let (batch, seq) = (8, min(128, b.spec.maxLength))
            let ids = (0..<(batch * seq)).map { _ in Int32(rng.next() % UInt64(b.bert.config.vocabSize)) }
            return (.tokens(TokenizedBatch(batchSize: batch, sequenceLength: seq, inputIds: ids, attentionMask: Array(repeating: 1, count: batch * seq))),
                    "\(batch) × \(seq) tokens")
        }
        return (.images(Tensor.randomNormal([64, 1, model.spec.imageHeight, model.spec.imageWidth], using: &rng)), "64 images")
    }

    public static func run(run: URL, method: String, sparsity: Double, scope: String = "global", out: URL? = nil,
                           recoveryEpochs: Int = 1, imp: IMPOptions = IMPOptions(), progress: ProgressDisplay? = nil) throws -> PruneReport {
        guard sparsity > 0 && sparsity < 1 else { throw TuneError("--sparsity must be in (0, 1), got \(sparsity)") }
        guard ["global", "layer"].contains(scope) else { throw TuneError("--scope must be global or layer, got \"\(scope)\"") }
        let (model, labels, _, final) = try ClassifierStore.load(run)
        let (data, padId, config) = try RunSubnets.runData(run, model: model, final: final)
        let dir = out ?? run.appendingPathComponent("pruned-\(method)")
        if FileManager.default.fileExists(atPath: dir.path) { try FileManager.default.removeItem(at: dir) }
        func accuracy(_ m: any Classifier) -> Double? {
            data.validation.map { Evaluator.evaluate(m, on: $0, batchSize: config.evalBatchSize, padId: padId).accuracy }
        }
        let (input, inputName) = latencyInput(for: model)
        let before = accuracy(model)
        let latencyBefore = measureLatency(model, input: input) * 1e3
        switch method {
        case "magnitude":
            let params = prunable(model)
            let masks = magnitudeMasks(params, sparsity: sparsity, global: scope == "global")
            WeightMasks.apply(masks, to: model)
            let total = params.reduce(0) { $0 + $1.parameter.value.count }
            let zeros = params.reduce(0) { acc, p in acc + (0..<p.parameter.value.count).filter { p.parameter.value[flat: $0] == 0 }.count }
            try ClassifierStore.saveFinal(model, labels: labels, tokenizerSource: model is BertClassifier ? final : nil, to: dir)
            try SafeTensorsSaving.write(masks, to: dir.appendingPathComponent("masks.safetensors"))
            return PruneReport(method: method, scope: scope, requestedSparsity: sparsity, achievedSparsity: Double(zeros) / Double(max(total, 1)),
                               accuracyBefore: before, accuracyAfter: accuracy(model), latencyBeforeMilliseconds: latencyBefore,
                               latencyAfterMilliseconds: measureLatency(model, input: input) * 1e3, latencyInput: inputName, directory: dir.path,
                               note: "unstructured zeros bring no speed here: the GEMM and convolution kernels are dense and multiply the zeros too; the gain is only in compressed storage")
        case "structured":
            let keep = 1 - sparsity
            let subnet: Subnet
            var c = config
            if let b = model as? BertClassifier {
                b.bert.reorderByImportance(.magnitude)
                let cfg = b.bert.config
                subnet = .bert(BertSubnet(layers: cfg.numHiddenLayers,
                                          heads: Array(repeating: max(1, Int((Double(cfg.numAttentionHeads) * keep).rounded())), count: cfg.numHiddenLayers),
                                          ffn: Array(repeating: max(1, Int((Double(cfg.intermediateSize) * keep).rounded())), count: cfg.numHiddenLayers)))
            } else if let cnn = model as? ImageCNN, cnn.spec.stageChannels == nil {
                cnn.reorderChannelsByImportance()
                // Keep the [w, 2w] shape so the recovery run rebuilds the CNN from --width.
                let w = max(1, Int((Double(cnn.spec.width) * keep).rounded()))
                subnet = .cnn(CNNSubnet(blocks: cnn.stageBlocks, channels: [w, 2 * w]))
                c.width = w
            } else {
                throw TuneError("structured pruning applies to BERT and uniform CNN classifiers")
            }
            let space = try SubnetSpace.standard(for: model)
            // Any keep fraction is allowed here, not only the search space's quarters.
            let small = try space.extract(subnet, from: model)
            let extracted = dir.appendingPathComponent("extracted")
            try ClassifierStore.saveFinal(small, labels: labels, tokenizerSource: model is BertClassifier ? final : nil, to: extracted)
            // Recovery: a short fine-tune of the smaller dense model on the run's data.
            if model is BertClassifier { c.model = extracted.path }
            c.initFrom = extracted.path
            c.method = "full"
            c.epochs = recoveryEpochs
            c.warmupRatio = 0
            c.out = dir.appendingPathComponent("recovery").path
            _ = try Trainer.run(c, hooks: TrainHooks(progress: progress))
            let recovered = try ClassifierStore.load(dir.appendingPathComponent("recovery")).model
            let removed = 1 - Double(space.cost(subnet, in: model).params) / Double(space.cost(space.largest, in: model).params)
            return PruneReport(method: method, scope: "uniform per layer", requestedSparsity: sparsity, achievedSparsity: removed,
                               accuracyBefore: before, accuracyAfter: accuracy(recovered), latencyBeforeMilliseconds: latencyBefore,
                               latencyAfterMilliseconds: measureLatency(recovered, input: input) * 1e3, latencyInput: inputName,
                               directory: dir.appendingPathComponent("recovery/final").path,
                               note: "structured pruning removes whole heads/channels, so the dense model is smaller and faster; achieved_sparsity is the removed fraction of all parameters")
        case "imp":
            return try iterativeMagnitude(run: run, sparsity: sparsity, scope: scope, out: dir, options: imp, progress: progress,
                                          accuracyBefore: before, latencyBefore: latencyBefore, latencyInput: (input, inputName))
        default:
            throw TuneError("--method must be magnitude, imp or structured, got \"\(method)\"")
        }
    }
}
