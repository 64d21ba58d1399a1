import Foundation
import SculptCore
import SculptNN
import SculptIO
import SculptModels
import SculptTune

/// Which dimensions structured pruning of a decoder removes.
public enum DecoderPruneAxes: String, CaseIterable, Sendable, Codable {
    /// Whole layers (least block influence first), then KV groups and FFN channels.
    case both
    /// Whole layers only (ShortGPT / Minitron depth pruning).
    case depth
    /// KV groups and FFN channels in every layer (Minitron width pruning).
    case width
}

public struct DecoderPruneOptions: Sendable {
    /// Fraction of non-embedding parameters to keep (`--target-params`).
    public var targetParams: Double
    public var axes: DecoderPruneAxes = .both
    public var importance: DecoderImportanceMethod = .activation
    /// Calibration texts taken from the data (first ones, full sequences).
    public var calibrationExamples: Int = 64
    public var recoveryEpochs: Int = 1
    /// Distil from the unpruned model during recovery (else the label loss alone).
    public var distill: Bool = true
    /// Share of the recovery loss that is distillation (the rest: labels).
    public var distillWeight: Double = 1
    public var learningRate: Double = 1e-4
    public var batchSize: Int = 8
    public var maxLength: Int = 512
    public var seed: UInt64 = 0

    public init(targetParams: Double) { self.targetParams = targetParams }
}

/// What `sculpt prune` did to a decoder.
public struct DecoderPruneReport: Codable, Sendable {
    public var subnet: String
    public var paramsBefore: Int
    public var paramsAfter: Int
    public var keptFraction: Double
    public var layersRemoved: [Int]
    public var extractionMaxAbsDifference: Float
    public var lossBefore: Double?
    public var lossPruned: Double?
    public var lossRecovered: Double?
    public var decodeTokensPerSecondBefore: Double
    public var decodeTokensPerSecondAfter: Double
    /// The pruned model before recovery (an HF directory).
    public var prunedDirectory: String
    /// The recovered model (the recovery run's final/), nil with no recovery epochs.
    public var recoveredDirectory: String?
    public var note: String

    enum CodingKeys: String, CodingKey {
        case subnet, paramsBefore = "non_embedding_params_before", paramsAfter = "non_embedding_params_after", keptFraction = "kept_fraction"
        case layersRemoved = "layers_removed", extractionMaxAbsDifference = "extraction_max_abs_difference"
        case lossBefore = "val_loss_before", lossPruned = "val_loss_pruned", lossRecovered = "val_loss_recovered"
        case decodeTokensPerSecondBefore = "decode_tokens_per_second_before", decodeTokensPerSecondAfter = "decode_tokens_per_second_after"
        case prunedDirectory = "pruned_directory", recoveredDirectory = "recovered_directory", note
    }
}

public enum DecoderPruning {
    /// The uniform sub-network reaching at most `target` of the non-embedding parameters:
    /// depth removes the least influential layers; width keeps the same number of KV groups
    /// and FFN channels (a multiple of 8 when it can) in every kept layer, as balanced between
    /// attention and FFN as the target allows; both first removes layers down to √target,
    /// then narrows. The hidden size is kept.
    public static func shape(_ c: DecoderConfig, importance imp: DecoderImportance, target: Double, axes: DecoderPruneAxes) throws -> DecoderSubnet {
        guard target > 0 && target < 1 else { throw TuneError("--target-params must be in (0, 1), got \(target)") }
        let full = DecoderSubnet.full(c).nonEmbeddingParameters(c)
        let budget = Int(target * Double(full))
        var layers = Array(0..<c.numHiddenLayers)
        func params(_ layers: [Int], _ groups: Int, _ ffn: Int) -> Int {
            DecoderSubnet.uniform(c, layers: layers, heads: groups * DecoderSubnet.groupSize(c), ffn: ffn).nonEmbeddingParameters(c)
        }
        if axes != .width {
            guard let order = imp.layersByInfluence else { throw TuneError("depth pruning ranks layers by block influence, which needs calibration data (--data)") }
            let depthBudget = axes == .depth ? budget : Int(target.squareRoot() * Double(full))
            for l in order where layers.count > 1 && params(layers, c.numKeyValueHeads, c.intermediateSize) > depthBudget {
                layers.removeAll { $0 == l }
            }
            if axes == .depth {
                guard params(layers, c.numKeyValueHeads, c.intermediateSize) <= budget else {
                    throw TuneError("--target-params \(target): even one layer keeps more than that; use --width-only or a larger target")
                }
                return DecoderSubnet.uniform(c, layers: layers)
            }
        }
        var best: (groups: Int, ffn: Int, score: Double, params: Int)? = nil
        let step = c.intermediateSize >= 64 ? 8 : 1
        for g in 1...c.numKeyValueHeads {
            // The widest FFN (a multiple of `step`) that fits beside g groups.
            var f = c.intermediateSize
            while f > 0 && params(layers, g, f) > budget { f -= f % step == 0 ? step : f % step }
            guard f > 0 else { continue }
            let p = params(layers, g, f)
            let balance = abs(Double(g) / Double(c.numKeyValueHeads) - Double(f) / Double(c.intermediateSize))
            // Close to the budget first (within 3 %), then balanced.
            let score = (Double(p) >= 0.97 * Double(budget) ? 0 : 1) + balance
            if best == nil || score < best!.score { best = (g, f, score, p) }
        }
        guard let b = best else { throw TuneError("--target-params \(target): no width fits; use a larger target") }
        return DecoderSubnet.uniform(c, layers: layers, heads: b.groups * DecoderSubnet.groupSize(c), ffn: b.ffn)
    }

    /// Token sequences of the first `n` examples of a data file (whole rendered texts).
    public static func calibration(_ data: URL, text: DecoderText, maxLength: Int, count n: Int) throws -> [[Int32]] {
        let set = try LMData.load(data, text: text, maxLength: maxLength, trainOn: .all)
        return set.examples.prefix(n).map(\.ids)
    }

    /// Structured pruning of a decoder with distillation recovery (Minitron's recipe): scores
    /// units on calibration texts, reorders the weights so the kept units lead, cuts the
    /// sub-network out as an ordinary HF directory (`OUT/pruned`, checked against the
    /// super-network ≤ 1e-4), then fine-tunes it on `data` distilling the unpruned model's
    /// next-token distributions (`OUT/recovery`, its `final/` the result).
    public static func run(model path: String, data: URL, evalData: URL?, out: URL, options o: DecoderPruneOptions,
                           progress: ProgressDisplay?) throws -> DecoderPruneReport {
        let modelPath = DecoderEvaluation.modelPath(path)
        let bundle = try DecoderBundle.load(path: modelPath)
        let c = bundle.model.config
        if FileManager.default.fileExists(atPath: out.path) {
            throw TuneError("--out \(out.path) exists; choose a new directory (nothing was written)")
        }
        let maxLength = min(o.maxLength, c.contextLimit)
        let calibration = try calibration(data, text: bundle.text, maxLength: maxLength, count: o.calibrationExamples)
        guard !calibration.isEmpty else { throw TuneError("--data \(data.path): no examples to calibrate on") }
        progress?.line("scoring units (\(o.importance.rawValue)) on \(calibration.count) calibration texts")
        let imp = try bundle.model.importance(o.importance, calibration: calibration)
        let subnet = try shape(c, importance: imp, target: o.targetParams, axes: o.axes)
        // Reordering leaves the function (and the cost) unchanged: the reordered model stands
        // for the unpruned one below.
        try bundle.model.reorder(by: imp)
        let (small, difference) = try bundle.model.checkedExtraction(subnet, probe: calibration[0])
        // Built in place; a failure removes everything this command wrote.
        try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
        var done = false
        defer { if !done { try? FileManager.default.removeItem(at: out) } }
        let prunedBundle = bundle.replacingModel(small)
        try DecoderExport.writeHFDirectory(prunedBundle, to: out.appendingPathComponent("pruned"), replace: false)
        let eval = evalData ?? data
        func loss(_ m: DecoderBundle) throws -> Double {
            try DecoderEvaluation.evaluate(m, data: eval, maxLength: maxLength, exactMatch: false, batchSize: o.batchSize, threads: 0).loss
        }
        progress?.line("validation loss of the unpruned and the pruned model on \(eval.lastPathComponent)")
        let lossBefore = try loss(bundle), lossPruned = try loss(prunedBundle)
        let threads = ExecutionContext.pool.threadCount
        let speedBefore = DecoderBenchmark.run(model: bundle.model, batch: 1, prefill: 64, decode: 32, threads: threads)
        let speedAfter = DecoderBenchmark.run(model: small, batch: 1, prefill: 64, decode: 32, threads: threads)
        var recovered: String? = nil, lossRecovered: Double? = nil
        if o.recoveryEpochs > 0 {
            var tc = TrainConfig()
            tc.model = out.appendingPathComponent("pruned").path
            tc.data = data.path
            tc.evalData = evalData?.path
            tc.out = out.appendingPathComponent("recovery").path
            tc.method = "full"
            tc.epochs = o.recoveryEpochs
            tc.lr = o.learningRate
            tc.batchSize = o.batchSize
            tc.maxLength = maxLength
            tc.seed = o.seed
            if o.distill { tc.distillFrom = modelPath; tc.distillWeight = o.distillWeight }
            progress?.line("recovery: \(o.recoveryEpochs) epoch(s) of full fine-tuning\(o.distill ? " distilling the unpruned model" : "") on \(data.lastPathComponent)")
            _ = try Trainer.run(tc, hooks: TrainHooks(progress: progress))
            let final = RunDirectory(URL(fileURLWithPath: tc.out)).final
            lossRecovered = try loss(try DecoderBundle.load(path: final.path))
            recovered = out.appendingPathComponent("recovery/final").path
        }
        done = true
        let before = DecoderSubnet.full(c).nonEmbeddingParameters(c), after = subnet.nonEmbeddingParameters(c)
        return DecoderPruneReport(
            subnet: subnet.json, paramsBefore: before, paramsAfter: after, keptFraction: Double(after) / Double(before),
            layersRemoved: (0..<c.numHiddenLayers).filter { !subnet.layers.contains($0) }, extractionMaxAbsDifference: difference,
            lossBefore: lossBefore, lossPruned: lossPruned, lossRecovered: lossRecovered,
            decodeTokensPerSecondBefore: speedBefore.decodeTokensPerSecond, decodeTokensPerSecondAfter: speedAfter.decodeTokensPerSecond,
            prunedDirectory: out.appendingPathComponent("pruned").path, recoveredDirectory: recovered,
            note: "kept_fraction counts non-embedding parameters (the input embedding and the LM head excluded); decode speed is batch 1 after a 64-token prompt, 32 tokens, in this run")
    }
}

public enum DecoderSubnets {
    /// The sub-networks a decoder run names (a sorted run's depths) and the whole model, with
    /// MACs per token (projections, FFN, head) and parameters (embedding included).
    public static func list(model path: String) throws -> SubnetListing {
        let bundle = try DecoderBundle.load(path: DecoderEvaluation.modelPath(path))
        let c = bundle.model.config
        let file = try DecoderSubnetsFile.read(run: path, config: c)
        var named = file?.named ?? [:]
        if !named.values.contains(DecoderSubnet.full(c)) { named["max"] = DecoderSubnet.full(c) }
        let full = Double(DecoderSubnet.full(c).macsPerToken(c))
        let entries = named.map { name, s in
            SubnetEntry(name: name, subnet: s.json, macs: s.macsPerToken(c), params: s.nonEmbeddingParameters(c) + c.vocabSize * s.hidden * (c.tieWordEmbeddings ? 1 : 2),
                        macsFraction: Double(s.macsPerToken(c)) / full, accuracy: nil)
        }.sorted { ($0.macs, $0.name) < ($1.macs, $1.name) }
        let g = DecoderSubnet.groupSize(c)
        return SubnetListing(kind: "decoder", training: file?.training ?? "none",
                             dimensions: ["layers": "any of 0–\(c.numHiddenLayers - 1), in order", "heads (per layer)": "multiples of \(g) up to \(c.numAttentionHeads)",
                                          "ffn (per layer)": "1–\(c.intermediateSize)", "hidden": "1–\(c.hiddenSize)"],
                             macsUnit: "per token: projections, FFN and LM head", subnets: entries)
    }

    /// Cuts `spec` (a name of the run's `subnets.json`, JSON text or a JSON file) out of a
    /// decoder as an HF directory: its last hidden states are checked against the model running
    /// the sub-network on a fixed 64-token probe (≤ 1e-4) before anything is written.
    public static func extract(model path: String, subnet spec: String, out: URL) throws -> ExtractionReport {
        let modelPath = DecoderEvaluation.modelPath(path)
        let bundle = try DecoderBundle.load(path: modelPath)
        let c = bundle.model.config
        let subnet = try DecoderSubnetsFile.resolve(spec, run: path, config: c)
        var rng = SeededRNG(seed: 0x5EED)
        let probe = (0..<min(64, c.contextLimit)).map { _ in Int32(rng.next() % UInt64(c.vocabSize)) }
        let (small, difference) = try bundle.model.checkedExtraction(subnet, probe: probe)
        try DecoderExport.writeHFDirectory(bundle.replacingModel(small), to: out, replace: false)
        return ExtractionReport(subnet: subnet.json, directory: out.path, maxAbsDifference: difference, checkedExamples: 1,
                                macs: subnet.macsPerToken(c), params: subnet.nonEmbeddingParameters(c) + c.vocabSize * subnet.hidden, hfCompatible: true)
    }
}

/// What unstructured or 2:4 pruning of a decoder did.
public struct DecoderMaskReport: Codable, Sendable {
    public var method: String
    public var pattern: String
    /// Zero fraction of the layers' projection weights.
    public var sparsity: Double
    public var lossBefore: Double
    public var lossAfter: Double
    public var decodeTokensPerSecondBefore: Double
    public var decodeTokensPerSecondAfter: Double
    public var directory: String
    public var note: String

    enum CodingKeys: String, CodingKey {
        case method, pattern, sparsity, lossBefore = "val_loss_before", lossAfter = "val_loss_after"
        case decodeTokensPerSecondBefore = "decode_tokens_per_second_before", decodeTokensPerSecondAfter = "decode_tokens_per_second_after"
        case directory, note
    }
}

extension DecoderPruning {
    /// Zeroes weights of a decoder's layers (magnitude or Wanda, unstructured or 2:4) and
    /// writes the result as an HF directory with its masks (`masks.safetensors`, for a masked
    /// fine-tune); reports validation loss and batch-1 decode speed before and after.
    public static func masks(model path: String, score: DecoderWeightScore, sparsity: Double, twoFour: Bool, data: URL?, evalData: URL?,
                             out: URL, calibrationExamples: Int = 64, maxLength: Int = 512, batchSize: Int = 8) throws -> DecoderMaskReport {
        let modelPath = DecoderEvaluation.modelPath(path)
        let bundle = try DecoderBundle.load(path: modelPath)
        let c = bundle.model.config
        if FileManager.default.fileExists(atPath: out.path) { throw TuneError("--out \(out.path) exists; choose a new directory (nothing was written)") }
        guard let eval = evalData ?? data else { throw TuneError("--data (or --eval-data) is required: the losses before and after are measured on it") }
        let length = min(maxLength, c.contextLimit)
        let texts = try data.map { try DecoderPruning.calibration($0, text: bundle.text, maxLength: length, count: calibrationExamples) } ?? []
        func loss(_ b: DecoderBundle) throws -> Double {
            try DecoderEvaluation.evaluate(b, data: eval, maxLength: length, exactMatch: false, batchSize: batchSize, threads: 0).loss
        }
        let before = try loss(bundle)
        let threads = ExecutionContext.pool.threadCount
        let speedBefore = DecoderBenchmark.run(model: bundle.model, batch: 1, prefill: 64, decode: 32, threads: threads)
        let masks = try bundle.model.pruneWeights(score, sparsity: sparsity, twoFour: twoFour, calibration: texts)
        var zeros = 0, total = 0
        for m in masks.values { total += m.count; for i in 0..<m.count where m[flat: i] == 0 { zeros += 1 } }
        let after = try loss(bundle)
        let speedAfter = DecoderBenchmark.run(model: bundle.model, batch: 1, prefill: 64, decode: 32, threads: threads)
        try StagedDirectory.write(out, existing: .refuse) { dir in
            try bundle.model.save(to: dir)
            _ = try DecoderExport.writeTokenizer(bundle, to: dir)
            try SafeTensorsSaving.write(masks, to: dir.appendingPathComponent("masks.safetensors"))
        }
        return DecoderMaskReport(method: score.rawValue, pattern: twoFour ? "2:4" : "unstructured", sparsity: Double(zeros) / Double(max(total, 1)),
                                 lossBefore: before, lossAfter: after, decodeTokensPerSecondBefore: speedBefore.decodeTokensPerSecond,
                                 decodeTokensPerSecondAfter: speedAfter.decodeTokensPerSecond, directory: out.path,
                                 note: "the zeros bring no speed here: Sculpt's kernels are dense and multiply the zeros too (no sparse or 2:4 kernels on this CPU); the gain is compressibility, and the masks let a masked fine-tune recover")
    }
}
