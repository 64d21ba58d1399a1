import Foundation
import Yams
import SculptModels
import SculptIO

/// The full, resolved configuration of a training run. Keys are the CLI flag names, so a
/// `run.yaml`, the flags and the saved `run.json` all say the same thing the same way.
public struct TrainConfig: Codable, Sendable, Equatable {
    /// "cnn", "mlp", or a BERT model directory.
    public var model: String = "cnn"
    public var data: String = ""
    public var evalData: String? = nil
    public var out: String = "runs/run"
    public var method: String = "full"
    public var epochs: Int = 3
    public var batchSize: Int = 32
    public var lr: Double = 1e-3
    public var weightDecay: Double = 0.01
    public var seed: UInt64 = 0
    public var valFraction: Double = 0.1
    public var warmupRatio: Double = 0
    /// "linear", "cosine" or "constant" (after warm-up).
    public var schedule: String = "linear"
    /// Maximum global gradient norm; 0 turns clipping off.
    public var clipNorm: Double = 1.0
    public var gradAccum: Int = 1
    /// Evaluate every N optimiser steps; 0 means at the end of every epoch.
    public var evalEvery: Int = 0
    /// Write a checkpoint every N optimiser steps; 0 means after every evaluation.
    public var checkpointEvery: Int = 0
    /// Stop after this many evaluations without a better validation accuracy; 0 = never.
    public var patience: Int = 0
    /// Log a metrics line every N steps.
    public var logEvery: Int = 10
    public var evalBatchSize: Int = 256
    public var threads: Int = 0
    // Models
    public var pooling: String = "mean"
    /// A new BERT head's initialisation: "transformers" (N(0, 0.02), zero bias) or "torch"
    /// (nn.Linear's default uniform).
    public var headInit: String = "transformers"
    public var maxLength: Int = 128
    public var width: Int = 16
    public var depth: Int = 1
    /// CNN stages: stage s has width·2^s channels at 1/2^(s+1) resolution (2 by default).
    public var stages: Int = 2
    /// Random left–right flips of training images.
    public var augmentFlip: Bool = false
    public var textField: String = "text"
    public var labelField: String = "label"
    // Method options (used by lora / sparse / s2ft)
    public var loraRank: Int = 8
    public var loraAlpha: Double = 16
    public var loraDropout: Double = 0.05
    /// nil: the model family's default (BERT query,value; decoders q_proj,v_proj).
    public var loraTargets: String? = nil
    /// rsLoRA: scale the adapters by alpha/√r instead of alpha/r.
    public var loraRslora: Bool = false
    /// The training objective; nil: the model's own (classification for BERT/CNN/MLP,
    /// causal-lm for a decoder).
    public var objective: String? = nil
    /// causal-lm: which tokens are learnt: "completion" (assistant turns and completions,
    /// with the end-of-turn tokens after them) or "all".
    public var trainOn: String = "completion"
    /// causal-lm: batch examples of similar length together (less padding).
    public var groupByLength: Bool = false
    /// causal-lm: recompute each layer in the backward pass instead of keeping its activations.
    public var checkpointActivations: Bool = false
    /// causal-lm: pack each micro-batch's examples into rows of up to `max-length` tokens,
    /// attention kept inside each example.
    public var packing: Bool = false
    public var density: Double = 0.01
    /// sparse: steps of LT-SFT's first (full) phase, as a fraction of the sparse phase's steps.
    public var sparseFullFraction: Double = 0.34
    /// sparse: peak learning rate of LT-SFT's sparse phase (nil: 10 × `lr`). Only `density`
    /// of the weights move in it, so it wants a larger step than the full phase (`lr`).
    public var sparseLr: Double? = nil
    /// s2ft: density of attention heads (nil: `density`); at 1 % a 12-head layer gets none.
    public var s2ftHeadDensity: Double? = nil
    /// s2ft: which side of each coupled pair trains — "output" (the selected columns of
    /// attention.output.dense and output.dense, as in S2FT's own examples; the default: on
    /// MiniLM/topics as accurate as both and a cheaper step, since no weight gradient is
    /// computed on the input side) or "both" (also the query/key/value and intermediate rows).
    public var s2ftSides: String = "output"
    // Sub-network options (used by elastic / gates; the strategies live in SculptSubnet)
    /// Elastic sampling: "sandwich" (largest, smallest, N random), "sorted" (nested sub-models
    /// from a fixed sorted list) or "progressive" (depth first, then width). Not `schedule`,
    /// which is the learning-rate schedule.
    public var elasticSchedule: String = "sandwich"
    /// Random sub-networks per step besides the largest and smallest (sandwich rule).
    public var randomSubnets: Int = 2
    /// Elastic `sorted`: the length of the nested list sub-networks are drawn from (the same
    /// list `sculpt subnets --nested N` shows).
    public var nestedSubnets: Int = 4
    /// Elastic: the widths each width dimension offers, as comma-separated fractions of its
    /// full size (1 included); narrower choices share more of the widest's weights.
    public var elasticWidths: String = "0.25,0.5,0.75,1"
    public var distillTemperature: Double = 1
    /// Elastic: a fixed trained classifier (run dir or `final/`) the smaller sub-networks
    /// distill from instead of the largest sub-network (DynaBERT's fine-tuned teacher).
    public var distillFrom: String? = nil
    /// Decoders with `distill-from`: the share of the loss that is the distillation (the rest
    /// is the label loss); 1 distils only, as Minitron's recovery does.
    public var distillWeight: Double = 1
    /// Unit reordering before elastic training of a pre-trained model: magnitude, taylor or none.
    public var importance: String = "magnitude"
    /// Gates: the kept fraction of MACs or parameters to reach (one of them, in (0, 1)).
    public var targetMacs: Double = 0
    public var targetParams: Double = 0
    /// Gates: the fractions of the run's steps where closing starts and where the target is
    /// reached (the kept fraction follows a cubic curve between them; the gates are fixed
    /// after it, so the rest of the run trains the sub-network they chose).
    public var gatesStart: Double = 0.1
    public var gatesEnd: Double = 0.6
    /// Start from the weights of this run's `final/` (or a saved image classifier) instead of
    /// a fresh initialisation: elastic fine-tuning of a trained CNN, recovery fine-tunes.
    public var initFrom: String? = nil
    /// `full` only: 0/1 masks (safetensors, parameter names) fixing pruned weights at zero
    /// (`WeightMasks`); iterative magnitude pruning trains its rounds with them.
    public var masks: String? = nil

    public init() {}

    enum CodingKeys: String, CodingKey, CaseIterable {
        case model, data, evalData = "eval-data", out, method, epochs, batchSize = "batch-size", lr, weightDecay = "weight-decay"
        case seed, valFraction = "val-fraction", warmupRatio = "warmup-ratio", schedule, clipNorm = "clip-norm"
        case gradAccum = "grad-accum", evalEvery = "eval-every", checkpointEvery = "checkpoint-every", patience
        case logEvery = "log-every", evalBatchSize = "eval-batch-size", threads, pooling, headInit = "head-init", maxLength = "max-length"
        case width, depth, stages, augmentFlip = "augment-flip", textField = "text-field", labelField = "label-field", loraRank = "lora-rank"
        case loraAlpha = "lora-alpha", loraDropout = "lora-dropout", loraTargets = "lora-targets", loraRslora = "lora-rslora", density
        case objective, trainOn = "train-on", groupByLength = "group-by-length", checkpointActivations = "checkpoint-activations", packing
        case sparseFullFraction = "sparse-full-fraction", sparseLr = "sparse-lr", s2ftHeadDensity = "s2ft-head-density", s2ftSides = "s2ft-sides"
        case elasticSchedule = "elastic-schedule", randomSubnets = "random-subnets", distillTemperature = "distill-temperature"
        case distillFrom = "distill-from", distillWeight = "distill-weight", nestedSubnets = "nested-subnets", elasticWidths = "elastic-widths", gatesStart = "gates-start", gatesEnd = "gates-end"
        case importance, targetMacs = "target-macs", targetParams = "target-params", initFrom = "init-from", masks
    }

    /// Missing keys keep their defaults, so a config file names only what it changes.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        func get<T: Decodable>(_ key: CodingKeys, _ current: T) throws -> T { try c.decodeIfPresent(T.self, forKey: key) ?? current }
        let d = TrainConfig()
        model = try get(.model, d.model); data = try get(.data, d.data); evalData = try c.decodeIfPresent(String.self, forKey: .evalData)
        out = try get(.out, d.out); method = try get(.method, d.method); epochs = try get(.epochs, d.epochs)
        batchSize = try get(.batchSize, d.batchSize); lr = try get(.lr, d.lr); weightDecay = try get(.weightDecay, d.weightDecay)
        seed = try get(.seed, d.seed); valFraction = try get(.valFraction, d.valFraction); warmupRatio = try get(.warmupRatio, d.warmupRatio)
        schedule = try get(.schedule, d.schedule); clipNorm = try get(.clipNorm, d.clipNorm); gradAccum = try get(.gradAccum, d.gradAccum)
        evalEvery = try get(.evalEvery, d.evalEvery); checkpointEvery = try get(.checkpointEvery, d.checkpointEvery)
        patience = try get(.patience, d.patience); logEvery = try get(.logEvery, d.logEvery); evalBatchSize = try get(.evalBatchSize, d.evalBatchSize)
        threads = try get(.threads, d.threads); pooling = try get(.pooling, d.pooling); maxLength = try get(.maxLength, d.maxLength)
        headInit = try get(.headInit, d.headInit)
        width = try get(.width, d.width); depth = try get(.depth, d.depth); stages = try get(.stages, d.stages); augmentFlip = try get(.augmentFlip, d.augmentFlip)
        textField = try get(.textField, d.textField)
        labelField = try get(.labelField, d.labelField); loraRank = try get(.loraRank, d.loraRank); loraAlpha = try get(.loraAlpha, d.loraAlpha)
        loraDropout = try get(.loraDropout, d.loraDropout); loraTargets = try c.decodeIfPresent(String.self, forKey: .loraTargets)
        loraRslora = try get(.loraRslora, d.loraRslora); objective = try c.decodeIfPresent(String.self, forKey: .objective)
        trainOn = try get(.trainOn, d.trainOn); groupByLength = try get(.groupByLength, d.groupByLength)
        checkpointActivations = try get(.checkpointActivations, d.checkpointActivations); packing = try get(.packing, d.packing); density = try get(.density, d.density)
        sparseFullFraction = try get(.sparseFullFraction, d.sparseFullFraction)
        sparseLr = try c.decodeIfPresent(Double.self, forKey: .sparseLr)
        s2ftHeadDensity = try c.decodeIfPresent(Double.self, forKey: .s2ftHeadDensity)
        s2ftSides = try get(.s2ftSides, d.s2ftSides)
        elasticSchedule = try get(.elasticSchedule, d.elasticSchedule); randomSubnets = try get(.randomSubnets, d.randomSubnets)
        distillTemperature = try get(.distillTemperature, d.distillTemperature); importance = try get(.importance, d.importance)
        targetMacs = try get(.targetMacs, d.targetMacs); targetParams = try get(.targetParams, d.targetParams)
        distillFrom = try c.decodeIfPresent(String.self, forKey: .distillFrom); distillWeight = try get(.distillWeight, d.distillWeight); elasticWidths = try get(.elasticWidths, d.elasticWidths)
        nestedSubnets = try get(.nestedSubnets, d.nestedSubnets)
        gatesStart = try get(.gatesStart, d.gatesStart); gatesEnd = try get(.gatesEnd, d.gatesEnd)
        initFrom = try c.decodeIfPresent(String.self, forKey: .initFrom)
        masks = try c.decodeIfPresent(String.self, forKey: .masks)
    }

    /// Reads a YAML (or JSON, which is YAML) config; unknown keys are an error naming them,
    /// since a misspelt option silently ignored would change the run.
    public static func load(yaml url: URL) throws -> TrainConfig {
        guard let text = try? String(contentsOf: url, encoding: .utf8) else { throw TuneError("\(url.path): cannot read the config file") }
        let node: Any?
        do { node = try StrictYAML.load(text, file: url.path) } catch { throw TuneError("\(error)") }
        guard let dict = node as? [String: Any] else { throw TuneError("\(url.path): expected a mapping of option names to values") }
        let known = Set(CodingKeys.allCases.map(\.rawValue))
        if let bad = dict.keys.sorted().first(where: { !known.contains($0) }) {
            throw TuneError("\(url.path): unknown option \"\(bad)\" (options use the flag names, e.g. batch-size)")
        }
        do { return try YAMLDecoder().decode(TrainConfig.self, from: text) } catch let DecodingError.typeMismatch(_, ctx), let DecodingError.dataCorrupted(ctx) {
            throw TuneError("\(url.path): option \"\(ctx.codingPath.map(\.stringValue).joined(separator: "."))\": \(ctx.debugDescription)")
        } catch {
            throw TuneError("\(url.path): \(error)")
        }
    }

    /// `elastic-widths` as numbers; nil when one is not a number (`validate` refuses it).
    public var elasticWidthFractions: [Double]? { commaSeparatedNumbers(elasticWidths) }

    /// Checks ranges and names; the message names the option.
    public func validate() throws {
        func fail(_ m: String) throws -> Never { throw TuneError(m) }
        if data.isEmpty { try fail("--data is required (a JSONL/CSV file, an IDX images file or an MNIST-layout directory)") }
        if epochs <= 0 { try fail("--epochs must be positive, got \(epochs)") }
        if batchSize <= 0 { try fail("--batch-size must be positive, got \(batchSize)") }
        if !(lr > 0) || !lr.isFinite { try fail("--lr must be a positive number, got \(lr)") }
        if weightDecay < 0 { try fail("--weight-decay must be ≥ 0, got \(weightDecay)") }
        if !(valFraction >= 0 && valFraction < 1) { try fail("--val-fraction must be in [0, 1), got \(valFraction)") }
        if !(warmupRatio >= 0 && warmupRatio <= 1) { try fail("--warmup-ratio must be in [0, 1], got \(warmupRatio)") }
        if !["linear", "cosine", "constant"].contains(schedule) { try fail("--schedule must be linear, cosine or constant, got \"\(schedule)\"") }
        if clipNorm < 0 { try fail("--clip-norm must be ≥ 0, got \(clipNorm)") }
        if gradAccum <= 0 { try fail("--grad-accum must be positive, got \(gradAccum)") }
        if evalEvery < 0 || checkpointEvery < 0 || patience < 0 || logEvery < 0 { try fail("--eval-every, --checkpoint-every, --patience and --log-every must be ≥ 0") }
        if evalBatchSize <= 0 { try fail("--eval-batch-size must be positive") }
        if threads < 0 { try fail("--threads must be ≥ 0 (0 = all cores)") }
        if !["mean", "cls"].contains(pooling) { try fail("--pooling must be mean or cls, got \"\(pooling)\"") }
        _ = try choice(headInit, of: "head-init", as: BertClassifier.HeadInit.self)
        if maxLength < 2 { try fail("--max-length must be at least 2, got \(maxLength)") }
        if width <= 0 || depth <= 0 { try fail("--width and --depth must be positive") }
        if !(1...4).contains(stages) { try fail("--stages must be 1 to 4, got \(stages)") }
        if !(sparseFullFraction > 0 && sparseFullFraction <= 1) { try fail("--sparse-full-fraction must be in (0, 1], got \(sparseFullFraction)") }
        if let s = sparseLr, !(s > 0) || !s.isFinite { try fail("--sparse-lr must be a positive number, got \(s)") }
        if let h = s2ftHeadDensity, !(h >= 0 && h <= 1) { try fail("--s2ft-head-density must be in [0, 1], got \(h)") }
        _ = try choice(s2ftSides, of: "s2ft-sides", as: S2FTSides.self)
        if !["sandwich", "sorted", "progressive"].contains(elasticSchedule) {
            try fail("--elastic-schedule must be sandwich, sorted or progressive, got \"\(elasticSchedule)\"")
        }
        if nestedSubnets < 2 { try fail("--nested-subnets must be at least 2, got \(nestedSubnets)") }
        if randomSubnets < 0 { try fail("--random-subnets must be ≥ 0, got \(randomSubnets)") }
        if !(distillTemperature > 0) { try fail("--distill-temperature must be positive, got \(distillTemperature)") }
        if !["magnitude", "taylor", "none"].contains(importance) { try fail("--importance must be magnitude, taylor or none, got \"\(importance)\"") }
        if targetMacs < 0 || targetMacs >= 1 || targetParams < 0 || targetParams >= 1 { try fail("--target-macs and --target-params must be in (0, 1) (0: not set)") }
        if method == "gates" && (targetMacs > 0) == (targetParams > 0) { try fail("--method gates needs exactly one of --target-macs or --target-params") }
        if !(gatesStart >= 0 && gatesStart < gatesEnd && gatesEnd <= 1) { try fail("--gates-start and --gates-end must satisfy 0 ≤ start < end ≤ 1, got \(gatesStart) and \(gatesEnd)") }
        if !(elasticWidthFractions.map { !$0.isEmpty && $0.allSatisfy { $0 > 0 && $0 <= 1 } && $0.contains(1) } ?? false) {
            try fail("--elastic-widths must be comma-separated fractions in (0, 1] including 1, got \"\(elasticWidths)\"")
        }
        if distillFrom != nil && method != "elastic" && !isDecoderModel {
            try fail("--distill-from applies to --method elastic (or to any method on a decoder), got \"\(method)\"")
        }
        if !(distillWeight >= 0 && distillWeight <= 1) { try fail("--distill-weight must be in [0, 1], got \(distillWeight)") }
        if masks != nil && method != "full" { try fail("--masks applies to --method full, got \"\(method)\"") }
        _ = try choice(trainOn, of: "train-on", as: TrainOn.self)
        if (packing || groupByLength || checkpointActivations) && !isDecoderModel {
            try fail("--packing, --group-by-length and --checkpoint-activations apply to decoder models; \(model) is not one")
        }
        if let o = objective, !["classification", "causal-lm"].contains(o) { try fail("--objective must be classification or causal-lm, got \"\(o)\"") }
        _ = try FineTuneMethod(config: self)
    }

    /// Whether `model` names a decoder LM (a decoder HF directory or a GGUF file).
    public var isDecoderModel: Bool {
        guard !ClassifierStore.isImageModel(model), let (family, _) = try? ModelRegistry.family(of: model) else { return false }
        return family is DecoderFamily
    }
}
