import Foundation
import SculptCore
import SculptNN
import SculptIO
import SculptModels

/// Supervised fine-tuning of a decoder LM: next-token cross-entropy on the target tokens
/// (assistant turns or completions), averaged over the target tokens of each optimiser step.
final class CausalLMTask: TrainingTask {
    let c: TrainConfig
    let bundle: DecoderBundle
    let train: [LMExample]
    let validation: [LMExample]
    let padId: Int32
    var decoder: DecoderLM { bundle.model }
    var model: any Module { bundle.model }
    var kind: String { "decoder" }
    var trainCount: Int { train.count }
    var validationCount: Int { validation.count }
    var classes: Int { 0 }
    var labels: LabelVocabulary { LabelVocabulary(names: []) }
    var strategy: (any TrainingStrategy)? { nil }

    init(config c: TrainConfig, method: FineTuneMethod, hooks: TrainHooks) throws {
        self.c = c
        switch method {
        case .elastic, .gates: throw TuneError("--method \(method.name) is not available for decoder models yet (it works on BERT, CNN and MLP)")
        default: break
        }
        if c.initFrom != nil { throw TuneError("--init-from applies to classifiers; to continue from a fine-tuned decoder pass its final/ as --model") }
        bundle = try DecoderBundle.load(path: c.model)
        bundle.model.checkpointActivations = c.checkpointActivations
        let limit = bundle.model.config.contextLimit
        if c.maxLength > limit {
            throw TuneError("--max-length \(c.maxLength) exceeds the model's context (\(limit) positions, \(c.model)); use --max-length \(limit) or less")
        }
        let trainOn = try choice(c.trainOn, of: "train-on", as: TrainOn.self)
        let all = try LMData.load(URL(fileURLWithPath: c.data), text: bundle.text, maxLength: c.maxLength, trainOn: trainOn)
        if let note = all.truncationNote { hooks.progress?.line(note) }
        if let eval = c.evalData {
            let v = try LMData.load(URL(fileURLWithPath: eval), text: bundle.text, maxLength: c.maxLength, trainOn: trainOn)
            if let note = v.truncationNote { hooks.progress?.line(note) }
            train = all.examples
            validation = v.examples
        } else {
            let split = validationSplit(count: all.examples.count, fraction: c.valFraction, seed: c.seed)
            train = split.train.map { all.examples[$0] }
            validation = split.validation.map { all.examples[$0] }
        }
        let t = bundle.tokenizer
        padId = t.padTokenId ?? t.eosTokenId ?? 0
    }

    func prepareStrategy(totalSteps: Int, stepsPerEpoch: Int) throws {}

    /// With `--group-by-length`, examples of similar length share a batch (less padding):
    /// the epoch's permutation is cut into windows of 64 batches, each sorted by length,
    /// longest first, so the order stays a function of (seed, epoch).
    func epochOrder(_ permutation: [Int]) -> [Int] {
        guard c.groupByLength else { return permutation }
        let window = 64 * c.batchSize
        var out: [Int] = []
        out.reserveCapacity(permutation.count)
        for start in stride(from: 0, to: permutation.count, by: window) {
            let part = permutation[start..<min(permutation.count, start + window)]
            out += part.enumerated().sorted { a, b in
                let la = train[a.element].ids.count, lb = train[b.element].ids.count
                return la != lb ? la > lb : a.offset < b.offset
            }.map(\.element)
        }
        return out
    }

    /// Target tokens the loss averages over (position 0 predicts nothing).
    func lossUnits(_ indices: [Int]) -> Int { indices.reduce(0) { $0 + train[$1].predictedCount } }

    func accumulate(_ indices: [Int], weight: Float, step: Int) -> Double {
        let loss = Self.loss(decoder, indices.map { train[$0] }, padId: padId, packInto: c.packing ? c.maxLength : nil)
        (loss * weight).backward()
        return Double(loss.value.scalar)
    }

    /// Mean next-token loss over the target tokens of right-padded examples. Padding sits after
    /// every real token, so causal attention never lets a real token see it and no mask is
    /// needed; logits are computed only for positions whose next token is a target, a chunk of
    /// rows at a time (`lmCrossEntropy`).
    static func loss(_ decoder: DecoderLM, _ examples: [LMExample], padId: Int32, packInto capacity: Int? = nil) -> Variable {
        let hidden: Variable, shifted: [Int32]
        if let capacity {
            let p = packedBatch(examples, padId: padId, capacity: capacity)
            hidden = decoder.hiddenStates(ids: p.ids, batch: p.batch, sequence: p.sequence, positions: p.positions, segmentStarts: p.starts)
            shifted = DecoderLM.shiftedLabels(p.labels, batch: p.batch, sequence: p.sequence)
        } else {
            let (ids, labels, batch, sequence) = paddedBatch(examples, padId: padId)
            hidden = decoder.hiddenStates(ids: ids, batch: batch, sequence: sequence)
            shifted = DecoderLM.shiftedLabels(labels, batch: batch, sequence: sequence)
        }
        var rows: [Int32] = [], targets: [Int32] = []
        for (r, l) in shifted.enumerated() where l != LMData.ignore { rows.append(Int32(r)); targets.append(l) }
        return lmCrossEntropy(hidden: hidden.indexSelect(axis: 0, rows), weight: decoder.headWeight, labels: targets)
    }

    /// `--packing`: the micro-batch's examples placed into as few rows of at most `capacity`
    /// tokens as first-fit by decreasing length finds; each example keeps its own positions
    /// (from 0) and attends only itself (segment starts), and its first token is never a label
    /// (the previous example's last token must not predict it), so the loss equals the
    /// unpacked batch's.
    static func packedBatch(_ examples: [LMExample], padId: Int32, capacity: Int)
        -> (ids: [Int32], labels: [Int32], positions: [Int32], starts: [Int32], batch: Int, sequence: Int) {
        var rows: [[Int]] = [], fill: [Int] = []
        for i in examples.indices.sorted(by: { examples[$0].ids.count != examples[$1].ids.count ? examples[$0].ids.count > examples[$1].ids.count : $0 < $1 }) {
            let n = examples[i].ids.count
            if let r = fill.firstIndex(where: { $0 + n <= capacity }) { rows[r].append(i); fill[r] += n } else { rows.append([i]); fill.append(n) }
        }
        let sequence = fill.max() ?? 1
        var ids = [Int32](repeating: padId, count: rows.count * sequence)
        var labels = [Int32](repeating: LMData.ignore, count: ids.count)
        var positions = [Int32](repeating: 0, count: ids.count), starts = [Int32](repeating: 0, count: ids.count)
        for (r, members) in rows.enumerated() {
            var t = 0
            for i in members {
                let e = examples[i], start = t
                for (k, id) in e.ids.enumerated() {
                    let at = r * sequence + t
                    ids[at] = id
                    labels[at] = k == 0 ? LMData.ignore : e.labels[k]
                    positions[at] = Int32(k)
                    starts[at] = Int32(start)
                    t += 1
                }
            }
            // Padding after the last example: its own segment, attending nothing real.
            for p in t..<sequence { positions[r * sequence + p] = Int32(p - t); starts[r * sequence + p] = Int32(t) }
        }
        return (ids, labels, positions, starts, rows.count, sequence)
    }

    static func paddedBatch(_ examples: [LMExample], padId: Int32) -> (ids: [Int32], labels: [Int32], batch: Int, sequence: Int) {
        let sequence = examples.map(\.ids.count).max() ?? 1
        var ids = [Int32](repeating: padId, count: examples.count * sequence)
        var labels = [Int32](repeating: LMData.ignore, count: examples.count * sequence)
        for (b, e) in examples.enumerated() {
            for t in e.ids.indices { ids[b * sequence + t] = e.ids[t]; labels[b * sequence + t] = e.labels[t] }
        }
        return (ids, labels, examples.count, sequence)
    }

    func evaluate() -> TaskEvaluation? {
        guard !validation.isEmpty else { return nil }
        let loss = Self.meanLoss(decoder, validation, padId: padId, batchSize: c.evalBatchSize)
        return TaskEvaluation(accuracy: nil, loss: loss, note: String(format: "validation loss %.4f, perplexity %.3f", loss, Foundation.exp(loss)))
    }

    /// Mean loss per target token over `examples`, without gradients, in evaluation mode.
    static func meanLoss(_ decoder: DecoderLM, _ examples: [LMExample], padId: Int32, batchSize: Int) -> Double {
        let wasTraining = decoder.training
        decoder.eval()
        defer { decoder.setTraining(wasTraining) }
        // Sorted by length so batches carry little padding; the mean does not depend on order.
        let order = examples.indices.sorted { examples[$0].ids.count > examples[$1].ids.count }
        var sum = 0.0, count = 0
        withoutGradients {
            for start in stride(from: 0, to: order.count, by: max(1, batchSize)) {
                let part = order[start..<min(order.count, start + batchSize)].map { examples[$0] }
                let n = part.reduce(0) { $0 + $1.predictedCount }
                sum += Double(loss(decoder, part, padId: padId).value.scalar) * Double(n)
                count += n
            }
        }
        return count == 0 ? .nan : sum / Double(count)
    }

    var loraRoot: (any Module)? { decoder }
    var peftTaskType: String { "CAUSAL_LM" }
    var defaultLoRATargets: String { "q_proj,v_proj" }
    func startS2FT(plan: S2FTPlan?, density: Double, headDensity: Double?, sides: S2FTSides, seed: UInt64) throws -> (S2FTPlan, any S2FTFolding) {
        let chosen = plan ?? S2FTPlan.choose(forDecoder: decoder, density: density, headDensity: headDensity, seed: seed, trainInputSide: sides.trainsInputSide)
        guard chosen.layers.count == decoder.model.layers.count else { throw TuneError("the run's s2ft plan has \(chosen.layers.count) layers, the model \(decoder.model.layers.count)") }
        return (chosen, applyS2FT(chosen, to: decoder))
    }
    var headPrefix: String? { nil }

    func isBitFitParameter(_ name: String) -> Bool { DecoderLM.isBitFitParameter(name) }
    func isSparseCandidate(_ name: String) -> Bool { DecoderLM.isSparseCandidate(name) }

    func saveFinal(_ weights: ClassifierStore.StoredWeights, baseModel: String, to dir: URL) throws {
        switch weights {
        case .full:
            try DecoderExport.writeHFDirectory(bundle, to: dir, replace: true)
        case .loraAdapter(let config):
            try StagedDirectory.write(dir, existing: .replace) { staged in
                try LoRAAdapterFiles.save(decoder, config: config, to: staged)
            }
        case .sparseDiff(let diff):
            // The tuned model whole (what transformers loads), and the diff from the base beside it.
            try DecoderExport.writeHFDirectory(bundle, to: dir, replace: true)
            try diff.write(to: dir.appendingPathComponent(ClassifierStore.sparseDiffFile))
        }
    }

    func finish() throws {}
}
