import ArgumentParser
import Foundation
import SculptCore
import SculptTune
import SculptSubnet

struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Fine-tune a decoder LM on chat or text (causal LM), a BERT checkpoint on labelled text, or train a CNN/MLP on images; writes a run directory.")

    @Option(help: "A YAML file of options (flag names as keys); flags override it.") var config: String?
    @Option(help: "Continue the run in this directory from its last checkpoint.") var resume: String?
    @Option(help: "cnn, mlp, a BERT model directory, or a decoder (HF directory or GGUF file).") var model: String?
    @Option(help: "Training data: JSONL/CSV text, an IDX images file, or an MNIST-layout directory; for a decoder, JSONL of {\"messages\"}, {\"prompt\",\"completion\"} or {\"text\"}.") var data: String?
    @Option(help: "causal-lm (a decoder's default) or classification (BERT, CNN, MLP).") var objective: String?
    @Option(help: "Causal LM: completion (assistant turns and completions with their end-of-turn tokens; default) or all tokens.") var trainOn: String?
    @Flag(help: "Causal LM: batch examples of similar length together (less padding).") var groupByLength = false
    @Flag(help: "Causal LM: pack each batch's examples into rows of up to --max-length tokens (attention stays inside each example).") var packing = false
    @Flag(help: "Causal LM: recompute each layer in the backward pass instead of keeping its activations (less memory, about one more forward pass).") var checkpointActivations = false
    @Option(help: "Evaluation data (replaces the validation split).") var evalData: String?
    @Option(help: "full, bitfit, lora, sparse, s2ft, elastic or gates.") var method: String?
    @Option var epochs: Int?
    @Option var batchSize: Int?
    @Option var lr: Double?
    @Option var weightDecay: Double?
    @Option var seed: UInt64?
    @Option(help: "The run directory to create.") var out: String?
    @Option(help: "Fraction of the training data held out for validation.") var valFraction: Double?
    @Option var warmupRatio: Double?
    @Option(help: "linear, cosine or constant.") var schedule: String?
    @Option(help: "Max gradient norm (0: no clipping).") var clipNorm: Double?
    @Option(help: "Micro-batches per optimiser step.") var gradAccum: Int?
    @Option(help: "Evaluate every N steps (0: every epoch).") var evalEvery: Int?
    @Option(help: "Checkpoint every N steps (0: at every evaluation).") var checkpointEvery: Int?
    @Option(help: "Stop after N evaluations without improvement (0: never).") var patience: Int?
    @Option var logEvery: Int?
    @Option var evalBatchSize: Int?
    @Option(help: "Threads (0: all cores).") var threads: Int?
    @Option(help: "mean or cls.") var pooling: String?
    @Option(help: "A new BERT head: transformers (N(0, 0.02), zero bias; default) or torch (nn.Linear's uniform).") var headInit: String?
    @Option var maxLength: Int?
    @Option(help: "CNN base channels / MLP hidden units.") var width: Int?
    @Option(help: "CNN blocks per stage / MLP hidden layers.") var depth: Int?
    @Option(help: "CNN stages (stage s has width·2^s channels; default 2).") var stages: Int?
    @Flag(help: "Randomly mirror training images left-right.") var augmentFlip = false
    @Option var textField: String?
    @Option var labelField: String?
    @Option var loraRank: Int?
    @Option var loraAlpha: Double?
    @Option var loraDropout: Double?
    @Option(help: "Comma-separated module name suffixes, a full-match regex, or all-linear (decoders); default query,value (BERT) or q_proj,v_proj (decoders).") var loraTargets: String?
    @Flag(help: "rsLoRA: scale adapters by alpha/√r instead of alpha/r.") var loraRslora = false
    @Option(help: "sparse: fraction of entries trained (global); s2ft: of heads and FFN channels per layer.") var density: Double?
    @Option(help: "sparse: steps of the first, full phase as a fraction of the sparse phase's.") var sparseFullFraction: Double?
    @Option(help: "sparse: peak learning rate of the sparse phase (default: 10 × --lr, the full phase's).") var sparseLr: Double?
    @Option(help: "s2ft: fraction of attention heads per layer (default: --density).") var s2ftHeadDensity: Double?
    @Option(help: "s2ft: output (train the selected columns of attention.output.dense and output.dense; default) or both (also the query/key/value and intermediate rows).") var s2ftSides: String?
    @Option(help: "Elastic sampling: sandwich, sorted or progressive.") var elasticSchedule: String?
    @Option(help: "Elastic: random sub-networks per step besides the largest and smallest.") var randomSubnets: Int?
    @Option(help: "Elastic: temperature of the distillation to the largest sub-network.") var distillTemperature: Double?
    @Option(help: "Elastic sorted: length of the nested list the sub-networks are drawn from (default 4).") var nestedSubnets: Int?
    @Option(help: "Elastic: widths offered per dimension, as fractions of the full size (default 0.25,0.5,0.75,1).") var elasticWidths: String?
    @Option(help: "Elastic: distill the smaller sub-networks from this trained classifier (run dir or final/) instead of the largest. Decoders, any method: the teacher model (run, HF dir, GGUF) whose next-token distributions the loss matches.") var distillFrom: String?
    @Option(help: "Decoders with --distill-from: share of the loss that is the distillation, the rest the label loss (default 1).") var distillWeight: Double?
    @Option(help: "Gates: fraction of the run's steps before gates start closing.") var gatesStart: Double?
    @Option(help: "Gates: fraction of the run's steps by which the target is reached (gates fixed after).") var gatesEnd: Double?
    @Option(help: "Unit reordering before elastic fine-tuning: magnitude, taylor or none.") var importance: String?
    @Option(help: "Gates: kept fraction of MACs to reach.") var targetMacs: Double?
    @Option(help: "Gates: kept fraction of parameters to reach.") var targetParams: Double?
    @Option(help: "Start from the weights of this run (or saved classifier) instead of a fresh initialisation.") var initFrom: String?
    @Option(help: "Full: 0/1 masks (safetensors by parameter name); masked weights stay exactly zero.") var masks: String?

    func run() throws {
        var c = TrainConfig()
        if let config { c = try TrainConfig.load(yaml: URL(fileURLWithPath: config)) }
        if let resume { c.out = resume }
        if let model { c.model = model }; if let data { c.data = data }; if let evalData { c.evalData = evalData }
        if let method { c.method = method }; if let epochs { c.epochs = epochs }; if let batchSize { c.batchSize = batchSize }
        if let lr { c.lr = lr }; if let weightDecay { c.weightDecay = weightDecay }; if let seed { c.seed = seed }
        if let out, resume == nil { c.out = out }; if let valFraction { c.valFraction = valFraction }
        if let warmupRatio { c.warmupRatio = warmupRatio }; if let schedule { c.schedule = schedule }
        if let clipNorm { c.clipNorm = clipNorm }; if let gradAccum { c.gradAccum = gradAccum }; if let evalEvery { c.evalEvery = evalEvery }
        if let checkpointEvery { c.checkpointEvery = checkpointEvery }; if let patience { c.patience = patience }
        if let logEvery { c.logEvery = logEvery }; if let evalBatchSize { c.evalBatchSize = evalBatchSize }; if let threads { c.threads = threads }
        if let pooling { c.pooling = pooling }; if let headInit { c.headInit = headInit }; if let maxLength { c.maxLength = maxLength }; if let width { c.width = width }
        if let depth { c.depth = depth }; if let stages { c.stages = stages }; if augmentFlip { c.augmentFlip = true }; if let textField { c.textField = textField }; if let labelField { c.labelField = labelField }
        if let loraRank { c.loraRank = loraRank }; if let loraAlpha { c.loraAlpha = loraAlpha }; if let loraDropout { c.loraDropout = loraDropout }
        if let loraTargets { c.loraTargets = loraTargets }; if loraRslora { c.loraRslora = true }; if let density { c.density = density }
        if let objective { c.objective = objective }; if let trainOn { c.trainOn = trainOn }; if groupByLength { c.groupByLength = true }; if checkpointActivations { c.checkpointActivations = true }; if packing { c.packing = true }
        if let sparseFullFraction { c.sparseFullFraction = sparseFullFraction }; if let sparseLr { c.sparseLr = sparseLr }
        if let s2ftHeadDensity { c.s2ftHeadDensity = s2ftHeadDensity }; if let s2ftSides { c.s2ftSides = s2ftSides }
        if let elasticSchedule { c.elasticSchedule = elasticSchedule }; if let randomSubnets { c.randomSubnets = randomSubnets }
        if let distillTemperature { c.distillTemperature = distillTemperature }; if let importance { c.importance = importance }
        if let targetMacs { c.targetMacs = targetMacs }; if let targetParams { c.targetParams = targetParams }
        if let initFrom { c.initFrom = initFrom }; if let masks { c.masks = masks }
        if let distillFrom { c.distillFrom = distillFrom }; if let distillWeight { c.distillWeight = distillWeight }; if let elasticWidths { c.elasticWidths = elasticWidths }; if let nestedSubnets { c.nestedSubnets = nestedSubnets }; if let gatesStart { c.gatesStart = gatesStart }; if let gatesEnd { c.gatesEnd = gatesEnd }

        let monitor = InterruptMonitor()
        let result = try SubnetTraining.run(c, resume: resume != nil, hooks: TrainHooks(progress: ProgressDisplay(), stop: monitor.flag))
        print(jsonLine(TrainSummary(outcome: result.outcome.rawValue, steps: result.steps, totalSteps: result.totalSteps,
                                    run: result.runDirectory.path, seconds: (result.seconds * 10).rounded() / 10,
                                    valAccuracy: result.validation.map { ($0.accuracy * 10_000).rounded() / 10_000 },
                                    valLoss: result.validationLoss.map { ($0 * 10_000).rounded() / 10_000 },
                                    valPerplexity: result.validationLoss.map { (Foundation.exp($0) * 1_000).rounded() / 1_000 })))
        if result.outcome == .interrupted { throw ExitCode(130) }
    }
}

/// The line `sculpt train` ends with; numbers are JSON numbers.
struct TrainSummary: Encodable {
    let outcome: String
    let steps: Int
    let totalSteps: Int
    let run: String
    let seconds: Double
    let valAccuracy: Double?
    let valLoss: Double?
    let valPerplexity: Double?
    enum CodingKeys: String, CodingKey {
        case outcome, steps, totalSteps = "total_steps", run, seconds, valAccuracy = "val_accuracy", valLoss = "val_loss", valPerplexity = "val_perplexity"
    }
}

struct Eval: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Accuracy and loss of a run's final model (or a saved classifier) on a labelled file; loss, perplexity and exact match of a decoder (run, adapter or model) on chat data.")
    @Argument(help: "A run directory, its final/ directory, a merged model directory (with --task), or a decoder.") var modelDir: String
    @Option(help: "A merged model's task: use the head in heads/task_<N>/ (N = the model's position in the merge config).") var task: Int?
    @Option(help: "Labelled data: JSONL/CSV text, an IDX images file or an MNIST directory (its t10k split); for a decoder, chat, prompt/completion or text JSONL.") var data: String
    @Option(help: "Decoder: exact-match also scores greedy answers against the reference answers.") var metric: String?
    @Option(help: "Decoder, exact-match: new tokens at most per answer.") var maxNewTokens: Int = 8
    @Option(help: decoderSubnetHelp) var subnet: String?
    @Option var batchSize: Int = 64
    @Option(help: "Threads (0: all cores).") var threads: Int = 0
    @Flag(help: "Print one JSON object.") var json = false

    func run() throws {
        guard batchSize > 0 else { throw ValidationError("--batch-size must be positive") }
        if DecoderEvaluation.isDecoder(modelDir) {
            if let metric, metric != "exact-match" { throw ValidationError("--metric must be exact-match, got \"\(metric)\"") }
            guard maxNewTokens > 0 else { throw ValidationError("--max-new-tokens must be positive, got \(maxNewTokens)") }
            let bundle = try loadDecoder(modelDir, subnet: subnet, blockWeights: true)
            let r = try DecoderEvaluation.evaluate(bundle, data: URL(fileURLWithPath: data), exactMatch: metric != nil, maxNewTokens: maxNewTokens,
                                                   batchSize: batchSize, threads: threads)
            if json { print(jsonLine(r)); return }
            var rows = [["loss", String(format: "%.4f", r.loss)], ["perplexity", String(format: "%.3f", r.perplexity)]]
            if let em = r.exactMatch { rows.append(["exact_match", String(format: "%.4f", em)]) }
            rows.append(["examples", "\(r.examples)"])
            print(table(["metric", "value"], rows))
            return
        }
        if metric != nil || subnet != nil { throw ValidationError("--metric and --subnet apply to decoders; \(modelDir) is a classifier (sculpt extract cuts its sub-networks out)") }
        let r = try Evaluation.evaluate(modelOrRun: URL(fileURLWithPath: modelDir), data: URL(fileURLWithPath: data), batchSize: batchSize, threads: threads, task: task)
        if json { print(jsonLine(r.summary)); return }
        print(table(["metric", "value"], [["accuracy", String(format: "%.4f", r.accuracy)], ["loss", String(format: "%.4f", r.loss)], ["examples", "\(r.examples)"]]))
    }
}

struct Predict: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "The predicted label of each input text, one per line.")
    @Argument(help: "A run directory, its final/ directory, or a merged model directory (with --task).") var modelDir: String
    @Option(help: "A merged model's task: use the head in heads/task_<N>/ (N = the model's position in the merge config).") var task: Int?
    @Option(help: "JSONL with the text field, or plain text one input per line.") var textsFile: String
    @Option var batchSize: Int = 64
    @Option(help: "Threads (0: all cores).") var threads: Int = 0

    func run() throws {
        guard batchSize > 0 else { throw ValidationError("--batch-size must be positive") }
        for label in try Evaluation.predict(modelOrRun: URL(fileURLWithPath: modelDir), textsFile: URL(fileURLWithPath: textsFile), batchSize: batchSize, threads: threads, task: task) {
            print(label)
        }
    }
}

struct Demo: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Train a small CNN on the bundled Fashion-MNIST test split and report held-out accuracy (about 2 minutes).")

    func run() throws {
        note("sculpt demo: a small ResNet-style CNN on 8,500 bundled Fashion-MNIST images, 1,500 held out")
        let r = try SculptTune.Demo.run()
        print(table(["class", "accuracy", "examples"], r.perClass.map { [$0.name, String(format: "%.1f %%", $0.accuracy * 100), "\($0.examples)"] }))
        print(String(format: "held-out accuracy: %.2f %% (%d images) in %.0f s", r.accuracy * 100, r.perClass.reduce(0) { $0 + $1.examples }, r.seconds))
        print("run directory: \(r.runDirectory.path)  curve: \(r.curve.path)")
        note("elastic: fine-tuning that CNN as a super-network of narrower CNNs (sandwich rule), cutting out three, then searching its accuracy/latency front")
        let e = try ElasticDemo.run(base: r.runDirectory, out: URL(fileURLWithPath: r.runDirectory.path + "-elastic"))
        print("")
        print(table(["name", "sub-network", "accuracy", "MACs/image", "of max", "params", "ms/\(e.latencyBatch) images"],
                    e.rows.map { [$0.name, $0.subnet, String(format: "%.2f %%", $0.accuracy * 100), "\($0.macs)", String(format: "%.2f", $0.macsFraction),
                                  "\($0.params)", String(format: "%.2f", $0.latencyMilliseconds)] }))
        print("")
        print("Pareto front of a \(e.searchEvaluations)-evaluation NSGA-II search (sculpt search; store \(e.searchDatabase)):")
        print(table(["rank", "sub-network", "accuracy", "CPU ms/\(e.latencyBatch) images, 1 thread", "MACs/image"],
                    e.front.map { [String($0.rank), $0.subnet, String(format: "%.2f %%", ($0.values["accuracy"] ?? .nan) * 100),
                                   String(format: "%.2f", $0.values["latency"] ?? .nan), String(format: "%.0f", $0.values["macs"] ?? .nan)] }))
        print(String(format: "elastic fine-tuning %.0f s, sub-networks evaluated and timed in %.0f s, search %.0f s; total demo %.0f s",
                     e.trainingSeconds, e.seconds - e.trainingSeconds - e.searchSeconds, e.searchSeconds, r.seconds + e.seconds))
    }
}
