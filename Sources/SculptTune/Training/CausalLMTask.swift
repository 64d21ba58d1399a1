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
    /// `--distill-from`: the decoder whose next-token distributions the loss also matches.
    let teacher: DecoderLM?
    /// `--method elastic --elastic-schedule sorted` (SoFT, Sorted LLaMA): the nested depths
    /// that each exit through the final norm and the shared LM head and learn the labels.
    let exits: [Int]?

    init(config c: TrainConfig, method: FineTuneMethod, runDir: RunDirectory, hooks: TrainHooks) throws {
        self.c = c
        if case .gates = method { throw TuneError("--method gates is not available for decoder models yet (it works on BERT, CNN and MLP)") }
        if case .elastic = method, c.elasticSchedule != "sorted" {
            throw TuneError("--method elastic on decoders trains nested depths: use --elastic-schedule sorted (sandwich and progressive work on BERT, CNN and MLP)")
        }
        if c.initFrom != nil { throw TuneError("--init-from applies to classifiers; to continue from a fine-tuned decoder pass its final/ as --model") }
        bundle = try DecoderBundle.load(path: c.model)
        if case .elastic = method {
            let depths = CausalLMTask.nestedDepths(layers: bundle.model.config.numHiddenLayers, count: c.nestedSubnets)
            exits = depths
            let config = bundle.model.config
            try DecoderSubnetsFile(training: "elastic/sorted", named: Dictionary(uniqueKeysWithValues: depths.map {
                ("depth-\($0)", DecoderSubnet.uniform(config, layers: Array(0..<$0)))
            })).write(to: runDir.url.appendingPathComponent(DecoderSubnetsFile.fileName))
        } else {
            exits = nil
        }
        if let t = c.distillFrom {
            let path = DecoderEvaluation.modelPath(t)
            let tb = try DecoderBundle.load(path: path)
            guard tb.model.config.vocabSize == bundle.model.config.vocabSize else {
                throw TuneError("--distill-from \(t): its vocabulary (\(tb.model.config.vocabSize)) differs from the model's (\(bundle.model.config.vocabSize))")
            }
            tb.model.eval()
            tb.model.setTrainable(false)
            teacher = tb.model
        } else {
            teacher = nil
        }
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
        let b = Self.batch(indices.map { train[$0] }, padId: padId, packInto: c.packing ? c.maxLength : nil)
        let loss: Variable
        if let teacher {
            // One student pass; at every exit (a sorted run's depths, else the whole model)
            // the distillation to the teacher's distributions, mixed with the label loss.
            let hidden = Self.targetHidden(decoder, b, exits: exits)
            let t = withoutGradients { Self.targetHidden(teacher, b, exits: nil)[0].value }
            let w = Float(c.distillWeight)
            let perExit = hidden.map { h -> Variable in
                let kd = lmDistillation(hidden: h, weight: decoder.headWeight, teacherHidden: t, teacherWeight: teacher.headWeight.value,
                                        temperature: Float(c.distillTemperature))
                return w == 1 ? kd : kd * w + lmCrossEntropy(hidden: h, weight: decoder.headWeight, labels: b.targets) * (1 - w)
            }
            loss = Self.mean(perExit)
        } else {
            loss = Self.loss(decoder, b, exits: exits)
        }
        (loss * weight).backward()
        return Double(loss.value.scalar)
    }

    static func mean(_ losses: [Variable]) -> Variable {
        guard losses.count > 1 else { return losses[0] }
        return losses.dropFirst().reduce(losses[0], +) * (1 / Float(losses.count))
    }

    /// The depths of the nested sub-models of a sorted run: `count` of them, evenly from a
    /// third of the layers to all of them.
    public static func nestedDepths(layers: Int, count: Int) -> [Int] {
        let low = max(1, layers / 3), k = max(2, count)
        return Array(Set((0..<k).map { low + ($0 * (layers - low) + (k - 1) / 2) / (k - 1) })).sorted()
    }

    /// A micro-batch laid out for the forward pass, with the rows whose next token is a target.
    struct Batch {
        var ids: [Int32], positions: [Int32]?, starts: [Int32]?, batch: Int, sequence: Int
        var rows: [Int32], targets: [Int32]
    }

    /// Right-padded examples (padding sits after every real token, so causal attention never
    /// lets a real token see it and no mask is needed), or packed ones with `capacity`.
    static func batch(_ examples: [LMExample], padId: Int32, packInto capacity: Int? = nil) -> Batch {
        var b: Batch, labels: [Int32]
        if let capacity {
            let p = packedBatch(examples, padId: padId, capacity: capacity)
            b = Batch(ids: p.ids, positions: p.positions, starts: p.starts, batch: p.batch, sequence: p.sequence, rows: [], targets: [])
            labels = p.labels
        } else {
            let p = paddedBatch(examples, padId: padId)
            b = Batch(ids: p.ids, positions: nil, starts: nil, batch: p.batch, sequence: p.sequence, rows: [], targets: [])
            labels = p.labels
        }
        for (r, l) in DecoderLM.shiftedLabels(labels, batch: b.batch, sequence: b.sequence).enumerated() where l != LMData.ignore {
            b.rows.append(Int32(r)); b.targets.append(l)
        }
        return b
    }

    /// Final hidden states of the target rows (one per exit depth; nil: the whole model).
    static func targetHidden(_ decoder: DecoderLM, _ b: Batch, exits: [Int]?) -> [Variable] {
        decoder.exitHiddenStates(ids: b.ids, batch: b.batch, sequence: b.sequence, positions: b.positions, segmentStarts: b.starts,
                                 exits: exits ?? [decoder.runningLayerCount]).map { $0.indexSelect(axis: 0, b.rows) }
    }

    /// Mean next-token loss over the batch's target tokens, logits formed a chunk of rows at a
    /// time (`lmCrossEntropy`); with exits, the mean of every depth's loss.
    static func loss(_ decoder: DecoderLM, _ b: Batch, exits: [Int]? = nil) -> Variable {
        mean(targetHidden(decoder, b, exits: exits).map { lmCrossEntropy(hidden: $0, weight: decoder.headWeight, labels: b.targets) })
    }

    static func loss(_ decoder: DecoderLM, _ examples: [LMExample], padId: Int32, packInto capacity: Int? = nil) -> Variable {
        loss(decoder, batch(examples, padId: padId, packInto: capacity))
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
