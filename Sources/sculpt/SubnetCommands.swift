import ArgumentParser
import Foundation
import SculptCore
import SculptModels
import SculptSubnet
import SculptTune

struct Subnets: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "The search space of an elastic or gated run and its named sub-networks with MACs and parameters.")
    @Argument(help: "A run directory trained with --method elastic or gates, or a decoder (model or run: a sorted run lists its depths).") var runDir: String
    @Option(help: "Also list N nested sub-networks (depth and width growing together).") var nested: Int = 0
    @Flag(help: "Evaluate each sub-network on the run's validation split (BatchNorm recalibrated first).") var eval = false
    @Option(help: "Threads (0: all cores).") var threads: Int = 0
    @Flag(help: "Print one JSON object.") var json = false

    func run() throws {
        guard nested >= 0 else { throw ValidationError("--nested must be ≥ 0") }
        let decoder = DecoderEvaluation.isDecoder(runDir)
        if decoder && (nested > 0 || eval) { throw ValidationError("--nested and --eval apply to classifier runs; a decoder's sub-networks are evaluated with sculpt eval --subnet NAME") }
        let l = try withThreads(threads > 0 ? threads : ThreadPool.machineThreadCount) {
            try decoder ? DecoderSubnets.list(model: runDir) : RunSubnets.list(URL(fileURLWithPath: runDir), nested: nested, evaluate: eval)
        }
        if json { print(jsonLine(l)); return }
        print("\(l.kind) super-network (\(l.training))")
        print(table(["dimension", "choices"], l.dimensions.sorted { $0.key < $1.key }.map { [$0.key, $0.value] }))
        print("")
        print(table(["name", "MACs (\(l.macsUnit))", "fraction", "params", "accuracy", "sub-network"],
                    l.subnets.map { [$0.name, "\($0.macs)", String(format: "%.3f", $0.macsFraction), "\($0.params)",
                                     $0.accuracy.map { String(format: "%.2f %%", $0 * 100) } ?? "-", $0.subnet] }))
    }
}

struct Extract: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Cut a sub-network out of a run as a dense, smaller model directory, checked against the super-network.")
    @Argument(help: "A run directory trained with --method elastic or gates, or a decoder (model or run).") var runDir: String
    @Option(help: "min, max, gated, a named sub-network, a JSON file or JSON text (a decoder: {\"layers\": [0, 1, 5], \"heads\": 6, \"ffn\": 1024, \"hidden\": 512} or a name of its run, e.g. depth-12).") var subnet: String?
    @Option(help: "An evaluation store written by `sculpt search` on this run: take the sub-network from its front (with --rank).") var fromDb: String?
    @Option(help: "With --from-db: the 1-based row of the front, as `sculpt pareto` prints it.") var rank: Int?
    @Option(help: "With --from-db: the search when the store holds several.") var searchId: String?
    @Option(help: "The model directory to write.") var out: String
    @Flag(help: "BERT: write removed heads and FFN channels as zeroed full-size weights (a standard HF config).") var hfCompatible = false
    @Option(help: "Threads (0: all cores).") var threads: Int = 0
    @Flag(help: "Print one JSON object.") var json = false

    func validate() throws {
        guard (subnet == nil) != (fromDb == nil) else { throw ValidationError("give exactly one of --subnet or --from-db (with --rank)") }
        guard (fromDb == nil) == (rank == nil) else { throw ValidationError("--from-db and --rank go together") }
        if fromDb == nil, searchId != nil { throw ValidationError("--search-id applies to --from-db") }
    }

    func run() throws {
        let r = try withThreads(threads > 0 ? threads : ThreadPool.machineThreadCount) { () throws -> ExtractionReport in
            let runURL = URL(fileURLWithPath: runDir), outURL = URL(fileURLWithPath: out)
            if let fromDb, let rank {
                let (row, report) = try extractFromFront(run: runURL, db: fromDb, rank: rank, searchId: searchId, out: outURL, hfCompatible: hfCompatible)
                if !json {
                    let values = row.objectives.sorted { $0.key < $1.key }.map { "\($0.key) \(String(format: "%.6g", $0.value))" }.joined(separator: ", ")
                    print("front row \(row.rank) of search \(row.searchId): \(values)")
                }
                return report
            }
            if DecoderEvaluation.isDecoder(runDir) {
                guard let subnet else { throw ValidationError("a decoder's sub-network is given with --subnet (the search over decoders comes later)") }
                return try DecoderSubnets.extract(model: runDir, subnet: subnet, out: outURL)
            }
            return try RunSubnets.extract(run: runURL, subnet: subnet!, out: outURL, hfCompatible: hfCompatible)
        }
        if json { print(jsonLine(r)); return }
        print("extracted \(r.subnet) to \(r.directory) (\(r.macs) MACs, \(r.params) parameters)")
        print(String(format: "check: max |extracted − super-network| = %.3g on %d examples (limit 1e-4)", r.maxAbsDifference, r.checkedExamples))
    }
}

struct Prune: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Prune a trained run: unstructured magnitude (masks, exact zeros), iterative magnitude pruning with rewinding, or structured heads/channels with a recovery fine-tune; a decoder (model or run): structured depth/width pruning to a parameter target with distillation recovery.")
    @Argument(help: "A run directory, or (structured) a decoder: HF directory, GGUF file or decoder run.") var runDir: String
    @Option(help: "magnitude, imp or structured (a decoder: structured, magnitude or wanda).") var method: String
    @Option(help: "Fraction of prunable weights (magnitude) or of heads/channels (structured) to remove.") var sparsity: Double?
    @Option(help: "Decoder, structured: fraction of the non-embedding parameters to keep (the layers and final norm; input embedding and LM head not counted).") var targetParams: Double?
    @Option(help: "Decoder, magnitude or wanda: unstructured (--sparsity of each matrix or row) or 2:4 (2 of every 4 consecutive weights).") var pattern: String = "unstructured"
    @Flag(help: "Decoder: remove whole layers only (least block influence first).") var depthOnly = false
    @Flag(help: "Decoder: narrow every layer only (KV groups and FFN channels).") var widthOnly = false
    @Option(help: "Decoder: chat, prompt/completion or text JSONL for calibration and the recovery fine-tune.") var data: String?
    @Option(help: "Decoder: held-out JSONL for the validation losses (default --data).") var evalData: String?
    @Option(help: "Decoder: unit importance, activation (Minitron), taylor or magnitude.") var importance: String = "activation"
    @Option(help: "Decoder: calibration texts taken from --data.") var calibrationExamples: Int = 64
    @Option(help: "Decoder: learning rate of the recovery fine-tune.") var recoveryLr: Double = 1e-4
    @Flag(help: "Decoder: recover with the label loss only (no distillation from the unpruned model).") var noDistill = false
    @Option(help: "Decoder: tokens per example at most.") var maxLength: Int = 512
    @Option(help: "Decoder: examples per recovery batch.") var batchSize: Int = 8
    @Option(help: "Magnitude: global (one threshold over all layers) or layer (the same fraction in each).") var scope: String = "global"
    @Option(help: "Output directory (default RUN_DIR/pruned-METHOD; required for a decoder).") var out: String?
    @Option(help: "Structured: epochs of recovery fine-tuning (0: none).") var recoveryEpochs: Int = 1
    @Option(help: "IMP: rounds removing equal fractions of the remaining weights (default: rounds of 20 % until --sparsity).") var rounds: Int?
    @Option(help: "IMP: the run's optimiser step every round rewinds to (default 5 % of its steps; 0: the initialisation).") var rewindStep: Int?
    @Option(help: "IMP: epochs of each round's retraining (default: the run's).") var epochs: Int?
    @Option(help: "Threads (0: all cores).") var threads: Int = 0
    @Flag(help: "Print one JSON object.") var json = false

    func run() throws {
        if DecoderEvaluation.isDecoder(runDir) { return try runDecoder() }
        if targetParams != nil || depthOnly || widthOnly || data != nil { throw ValidationError("--target-params, --depth-only, --width-only and --data apply to decoders; \(runDir) is not one") }
        guard let sparsity else { throw ValidationError("--sparsity is required") }
        let r = try withThreads(threads > 0 ? threads : ThreadPool.machineThreadCount) {
            try Pruning.run(run: URL(fileURLWithPath: runDir), method: method, sparsity: sparsity, scope: scope,
                            out: out.map { URL(fileURLWithPath: $0) }, recoveryEpochs: recoveryEpochs,
                            imp: IMPOptions(rounds: rounds, rewindStep: rewindStep, epochs: epochs), progress: json ? nil : ProgressDisplay())
        }
        if json { print(jsonLine(r)); return }
        func pct(_ v: Double?) -> String { v.map { String(format: "%.2f %%", $0 * 100) } ?? "-" }
        print(table(["", "before", "after"], [
            ["accuracy (validation)", pct(r.accuracyBefore), pct(r.accuracyAfter)],
            ["latency ms (\(r.latencyInput))", String(format: "%.2f", r.latencyBeforeMilliseconds), String(format: "%.2f", r.latencyAfterMilliseconds)],
        ]))
        if let rounds = r.rounds {
            print(table(["round", "sparsity", "accuracy", "model"],
                        rounds.map { ["\($0.round)", String(format: "%.1f %%", $0.sparsity * 100), pct($0.accuracy), $0.directory] }))
        }
        print(String(format: "%@ pruning (%@): %.1f %% removed; model in %@", r.method, r.scope, r.achievedSparsity * 100, r.directory))
        print(r.note)
    }

    func runDecoder() throws {
        guard let out else { throw ValidationError("--out is required to prune a decoder") }
        guard calibrationExamples > 0, batchSize > 0, maxLength >= 2 else { throw ValidationError("--calibration-examples and --batch-size must be positive, --max-length at least 2") }
        if method == "magnitude" || method == "wanda" { return try runDecoderMasks(out: out) }
        guard method == "structured" else { throw ValidationError("decoders are pruned with --method structured, magnitude or wanda (got \"\(method)\")") }
        guard !(depthOnly && widthOnly) else { throw ValidationError("give at most one of --depth-only and --width-only") }
        guard let data else { throw ValidationError("--data is required to prune a decoder (calibration and recovery)") }
        guard recoveryEpochs >= 0 else { throw ValidationError("--recovery-epochs must be ≥ 0") }
        guard recoveryLr > 0 else { throw ValidationError("--recovery-lr must be positive") }
        let target: Double
        switch (targetParams, sparsity) {
        case (let t?, nil): target = t
        case (nil, let s?): target = 1 - s
        default: throw ValidationError("give exactly one of --target-params and --sparsity")
        }
        guard target > 0 && target < 1 else { throw ValidationError("--target-params must be in (0, 1), got \(target)") }
        guard let method = DecoderImportanceMethod(rawValue: importance) else {
            throw ValidationError("--importance must be one of \(DecoderImportanceMethod.allCases.map(\.rawValue).joined(separator: ", ")), got \"\(importance)\"")
        }
        var o = DecoderPruneOptions(targetParams: target)
        o.axes = depthOnly ? .depth : widthOnly ? .width : .both
        o.importance = method
        o.calibrationExamples = calibrationExamples
        o.recoveryEpochs = recoveryEpochs
        o.distill = !noDistill
        o.learningRate = recoveryLr
        o.batchSize = batchSize
        o.maxLength = maxLength
        let r = try withThreads(threads > 0 ? threads : ThreadPool.machineThreadCount) {
            try DecoderPruning.run(model: runDir, data: URL(fileURLWithPath: data), evalData: evalData.map { URL(fileURLWithPath: $0) },
                                   out: URL(fileURLWithPath: out), options: o, progress: json ? nil : ProgressDisplay())
        }
        if json { print(jsonLine(r)); return }
        func f(_ v: Double?) -> String { v.map { String(format: "%.4f (ppl %.2f)", $0, Foundation.exp($0)) } ?? "-" }
        print(table(["", "unpruned", "pruned", "recovered"], [
            ["non-embedding params", "\(r.paramsBefore)", "\(r.paramsAfter)", "\(r.paramsAfter)"],
            ["validation loss", f(r.lossBefore), f(r.lossPruned), f(r.lossRecovered)],
            ["decode tokens/s (batch 1)", String(format: "%.1f", r.decodeTokensPerSecondBefore), String(format: "%.1f", r.decodeTokensPerSecondAfter), ""],
        ]))
        print(String(format: "kept %.1f %% of the non-embedding parameters: %@", r.keptFraction * 100, r.subnet))
        if !r.layersRemoved.isEmpty { print("layers removed: \(r.layersRemoved.map(String.init).joined(separator: ", "))") }
        print("pruned model: \(r.prunedDirectory)" + (r.recoveredDirectory.map { "; recovered: \($0)" } ?? ""))
        print(r.note)
    }

    func runDecoderMasks(out: String) throws {
        guard ["unstructured", "2:4"].contains(pattern) else { throw ValidationError("--pattern must be unstructured or 2:4, got \"\(pattern)\"") }
        guard targetParams == nil, !depthOnly, !widthOnly else { throw ValidationError("--target-params, --depth-only and --width-only apply to --method structured") }
        let twoFour = pattern == "2:4"
        if twoFour, sparsity != nil, sparsity != 0.5 { throw ValidationError("--pattern 2:4 zeroes half the weights; drop --sparsity or give 0.5") }
        guard let s = twoFour ? 0.5 : sparsity else { throw ValidationError("--sparsity is required (the fraction of weights to zero)") }
        guard s > 0 && s < 1 else { throw ValidationError("--sparsity must be in (0, 1), got \(s)") }
        if method == "wanda" && data == nil { throw ValidationError("--method wanda needs --data (calibration texts)") }
        let r = try withThreads(threads > 0 ? threads : ThreadPool.machineThreadCount) {
            try DecoderPruning.masks(model: runDir, score: method == "wanda" ? .wanda : .magnitude, sparsity: s, twoFour: twoFour,
                                     data: data.map { URL(fileURLWithPath: $0) }, evalData: evalData.map { URL(fileURLWithPath: $0) },
                                     out: URL(fileURLWithPath: out), calibrationExamples: calibrationExamples, maxLength: maxLength, batchSize: batchSize)
        }
        if json { print(jsonLine(r)); return }
        print(table(["", "before", "after"], [
            ["validation loss", String(format: "%.4f", r.lossBefore), String(format: "%.4f", r.lossAfter)],
            ["decode tokens/s (batch 1)", String(format: "%.1f", r.decodeTokensPerSecondBefore), String(format: "%.1f", r.decodeTokensPerSecondAfter)],
        ]))
        print(String(format: "%@ %@ pruning: %.1f %% of the layers' projection weights are zero; model in %@", r.method, r.pattern, r.sparsity * 100, r.directory))
        print(r.note)
    }
}
