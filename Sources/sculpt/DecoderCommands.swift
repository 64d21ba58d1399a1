import ArgumentParser
import Foundation
import SculptCore
import SculptIO
import SculptModels
import SculptSubnet
import SculptTune

/// Loads a decoder (a run stands for its final/ model, an adapter for its base with the
/// adapter merged) and says on stderr what was not used.
/// With `subnet` (a name of the run's subnets.json, JSON text or a file) the model runs that
/// sub-network of its weights.
/// With `blockWeights` (inference-only commands) a GGUF's Q8_0/Q4_0/Q4_1 matrices are also
/// kept in their blocks, which decoding reads instead of the floats.
func loadDecoder(_ path: String, subnet: String? = nil, blockWeights: Bool = false) throws -> DecoderBundle {
    let bundle = try DecoderBundle.load(path: DecoderEvaluation.modelPath(path))
    if blockWeights && bundle.source.format == .gguf {
        try DecoderGGUF.attachBlockWeights(bundle.model, file: GGUFFile(path: bundle.source.path))
    }
    if !bundle.unexpectedTensors.isEmpty {
        note("note: \(bundle.unexpectedTensors.count) tensor(s) of \(path) are not used by the model: \(bundle.unexpectedTensors.prefix(4).joined(separator: ", "))")
    }
    if let subnet {
        do { try bundle.model.activate(try DecoderSubnetsFile.resolve(subnet, run: path, config: bundle.model.config)) } catch let e as SubnetError {
            throw CommandError("--subnet: \(e)")
        }
    }
    return bundle
}

/// The help of every decoder command's `--subnet`.
let decoderSubnetHelp = ArgumentHelp("Run this sub-network of the model: a name of the run's subnets.json (depth-12), JSON text ({\"layers\": 12}) or a JSON file.")

struct Generate: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Generate text with a decoder LM (KV cache; greedy or seeded sampling), streaming tokens as they come.")

    @Argument(help: "A decoder: a Hugging Face directory, a GGUF file, a PEFT adapter directory or a run.") var model: String
    @Option(help: "The prompt.") var prompt: String?
    @Option(help: "Prompts, one per line (plain text, or JSONL with a \"text\" field; with --chat JSONL of {\"messages\": […]} also works).") var promptsFile: String?
    @Flag(help: "Render each prompt as one user message with the chat template and its generation prompt.") var chat = false
    @Option(help: "New tokens at most.") var maxNewTokens: Int = 64
    @Option(help: "0 is greedy; above 0 samples.") var temperature: Float = 0
    @Option(help: "Sample among the most likely tokens whose probability reaches P.") var topP: Float?
    @Option(help: "Sample among the K most likely tokens.") var topK: Int?
    @Option(help: "Repetition penalty (1: none).") var repetitionPenalty: Float = 1
    @Option(help: "Random seed for sampling.") var seed: UInt64 = 0
    @Option(help: "Stop when the text ends with this string (repeatable).") var stop: [String] = []
    @Option(help: "Prompts generated together (left-padded).") var batchSize: Int = 8
    @Option(help: "Threads (default: all cores).") var threads: Int?
    @Option(help: decoderSubnetHelp) var subnet: String?
    @Option(help: "Self-speculative decoding (greedy, one prompt at a time): this nested depth of the model (depth-12, {\"layers\": 12}: its first layers, sharing their weights and KV caches) drafts tokens the whole model verifies.") var draft: String?
    @Option(help: "With --draft: tokens drafted per verification.") var draftTokens: Int = 4
    @Flag(help: "With --draft: also decode plainly, check the outputs are identical and print both speeds.") var compare = false
    @Flag(help: "Print one {\"input_ids\",\"output_ids\",\"text\"} object per prompt.") var json = false

    func validate() throws {
        guard (prompt == nil) != (promptsFile == nil) else { throw ValidationError("give exactly one of --prompt and --prompts-file") }
        guard maxNewTokens > 0 else { throw ValidationError("--max-new-tokens must be positive, got \(maxNewTokens)") }
        guard temperature >= 0, temperature.isFinite else { throw ValidationError("--temperature must be 0 or more, got \(temperature)") }
        if let p = topP { guard p > 0, p <= 1 else { throw ValidationError("--top-p must be in (0, 1], got \(p)") } }
        if let k = topK { guard k > 0 else { throw ValidationError("--top-k must be positive, got \(k)") } }
        guard repetitionPenalty > 0, repetitionPenalty.isFinite else { throw ValidationError("--repetition-penalty must be positive, got \(repetitionPenalty)") }
        guard batchSize > 0 else { throw ValidationError("--batch-size must be positive") }
        if let t = threads { guard t > 0 else { throw ValidationError("--threads must be positive") } }
        if stop.contains("") { throw ValidationError("--stop must not be empty") }
        if draft != nil {
            guard temperature == 0, repetitionPenalty == 1, stop.isEmpty else { throw ValidationError("--draft decodes greedily: no --temperature, --repetition-penalty or --stop") }
            guard draftTokens > 0 else { throw ValidationError("--draft-tokens must be positive, got \(draftTokens)") }
            guard subnet == nil else { throw ValidationError("--draft runs the whole model (drop --subnet)") }
        } else if compare { throw ValidationError("--compare applies to --draft") }
    }

    func run() throws {
        let bundle = try loadDecoder(model, subnet: subnet, blockWeights: true)
        var prompts: [[Int32]] = []
        if let prompt {
            prompts = [try encode(prompt, bundle)]
        } else if let promptsFile {
            let url = URL(fileURLWithPath: promptsFile)
            if chat, let lines = try? ChatLines.read(url) {
                prompts = try lines.map { try bundle.encodeChat($0.messages, addGenerationPrompt: $0.addGenerationPrompt) }
            } else {
                prompts = try TextLines.read(url).map { try encode($0, bundle) }
            }
        }
        if let empty = prompts.firstIndex(where: { $0.isEmpty }) {
            throw CommandError("prompt \(empty + 1) has no tokens")
        }
        let limit = bundle.model.config.contextLimit
        if let long = prompts.firstIndex(where: { $0.count + maxNewTokens > limit }) {
            throw CommandError("prompt \(long + 1) has \(prompts[long].count) tokens; with --max-new-tokens \(maxNewTokens) that exceeds the model's context of \(limit)")
        }
        let options = GenerationOptions(maxNewTokens: maxNewTokens, stopTokenIds: bundle.stopTokenIds,
                                        sampling: SamplingOptions(temperature: temperature, topK: topK, topP: topP, repetitionPenalty: repetitionPenalty, seed: seed))
        let generator = DecoderGenerator(model: bundle.model)
        let tokenizer = bundle.tokenizer
        if let draft { return try speculative(bundle, prompts: prompts, draft: draft, options: options) }
        let streaming = !json && prompts.count == 1
        var decoder = tokenizer.makeStreamingDecoder()
        struct Line: Encodable { let input_ids: [Int32]; let output_ids: [Int32]; let text: String }
        var start = 0
        withThreads(threads ?? ThreadPool.machineThreadCount) {
            while start < prompts.count {
                let group = Array(prompts[start..<min(start + batchSize, prompts.count)])
                let outputs = generator.generate(prompts: group, options: options, onToken: { _, id in
                    if streaming && !options.stopTokenIds.contains(id) {
                        FileHandle.standardOutput.write(Data(decoder.append(id).utf8))
                    }
                }, shouldStop: stop.isEmpty ? nil : { _, ids in
                    let text = tokenizer.decode(ids)
                    return stop.contains { text.hasSuffix($0) }
                })
                for (i, out) in outputs.enumerated() {
                    let text = generatedText(out, stopTokens: options.stopTokenIds, tokenizer: tokenizer)
                    if json {
                        print(jsonLine(Line(input_ids: group[i], output_ids: out, text: text)))
                    } else if streaming {
                        print(decoder.finish())
                    } else {
                        print("[\(start + i + 1)] \(text)")
                    }
                }
                start += group.count
            }
        }
    }

    /// `--draft`: every prompt decoded speculatively (and with `--compare` plainly too).
    func speculative(_ bundle: DecoderBundle, prompts: [[Int32]], draft: String, options: GenerationOptions) throws {
        let c = bundle.model.config
        let s: DecoderSubnet
        do { s = try DecoderSubnetsFile.resolve(draft, run: model, config: c) } catch let e as SubnetError { throw CommandError("--draft: \(e)") }
        guard s.isPrefix, s == DecoderSubnet.uniform(c, layers: s.layers), s.layers.count < c.numHiddenLayers else {
            throw CommandError("--draft \(draft): a draft is a nested depth (the first N < \(c.numHiddenLayers) layers at full width), got \(s.json)")
        }
        let generator = DecoderGenerator(model: bundle.model)
        struct Line: Encodable { let input_ids: [Int32]; let output_ids: [Int32]; let text: String; let drafted: Int; let accepted: Int; let identical: Bool? }
        var drafted = 0, accepted = 0, tokens = 0, plainTokens = 0, identical = 0
        var seconds = 0.0, plainSeconds = 0.0
        try withThreads(threads ?? ThreadPool.machineThreadCount) {
            for (i, p) in prompts.enumerated() {
                let t0 = DispatchTime.now().uptimeNanoseconds
                let r = generator.generateSpeculative(prompt: p, draftLayers: s.layers.count, draftTokens: draftTokens, options: options)
                seconds += Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
                drafted += r.drafted; accepted += r.accepted; tokens += r.tokens.count
                var same: Bool? = nil
                if compare {
                    let t1 = DispatchTime.now().uptimeNanoseconds
                    let plain = generator.generate(prompts: [p], options: options)[0]
                    plainSeconds += Double(DispatchTime.now().uptimeNanoseconds - t1) / 1e9
                    plainTokens += plain.count
                    same = plain == r.tokens
                    if same! { identical += 1 }
                }
                let text = generatedText(r.tokens, stopTokens: options.stopTokenIds, tokenizer: bundle.tokenizer)
                if json {
                    print(jsonLine(Line(input_ids: p, output_ids: r.tokens, text: text, drafted: r.drafted, accepted: r.accepted, identical: same)))
                } else {
                    print("[\(i + 1)] \(text)")
                }
            }
            guard drafted > 0 || tokens > 0 else { return }
            var summary = String(format: "draft %@ (%d of %d layers), %d tokens per draft: %d of %d drafted tokens accepted (%.1f %%); %.1f tokens/s",
                                 draft, s.layers.count, c.numHiddenLayers, draftTokens, accepted, drafted, 100 * Double(accepted) / Double(max(drafted, 1)),
                                 Double(tokens) / max(seconds, 1e-9))
            if compare {
                let plainRate = Double(plainTokens) / max(plainSeconds, 1e-9)
                summary += String(format: "; plain greedy %.1f tokens/s (%.2f× speed-up); identical outputs: %d of %d", plainRate,
                                  Double(tokens) / max(seconds, 1e-9) / plainRate, identical, prompts.count)
                if identical != prompts.count { throw CommandError("speculative and plain greedy outputs differ on \(prompts.count - identical) prompt(s)") }
            }
            note(summary)
        }
    }

    func encode(_ text: String, _ bundle: DecoderBundle) throws -> [Int32] {
        chat ? try bundle.encodeChat([ChatMessage(role: "user", content: text)], addGenerationPrompt: true)
             : bundle.tokenizer.encode(text, addSpecialTokens: true)
    }

    /// The text of the new tokens without the stop token that ended them, cut at a stop string.
    func generatedText(_ ids: [Int32], stopTokens: Set<Int32>, tokenizer: BPETokenizer) -> String {
        var text = tokenizer.decode(ids.last.map(stopTokens.contains) == true ? Array(ids.dropLast()) : ids)
        for s in stop { if let r = text.range(of: s, options: .backwards), r.upperBound == text.endIndex { text = String(text[..<r.lowerBound]) } }
        return text
    }
}

struct Score: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Per text: token count, mean negative log-likelihood and perplexity under a decoder LM.")

    @Argument(help: "A decoder: a Hugging Face directory, a GGUF file, a PEFT adapter directory or a run.") var model: String
    @Option(help: "JSONL with a \"text\" field, or plain text one input per line (tokenized without special tokens).") var textsFile: String
    @Option(help: "Write text{i}.input_ids, .last_hidden_state, .last_logits, .next_token_logprob to this safetensors file.") var out: String?
    @Option(help: "Threads (default: all cores).") var threads: Int?
    @Option(help: decoderSubnetHelp) var subnet: String?
    @Flag(help: "Print one {\"tokens\",\"nll\",\"perplexity\"} object per text.") var json = false

    func validate() throws {
        if let t = threads { guard t > 0 else { throw ValidationError("--threads must be positive") } }
    }

    func run() throws {
        let bundle = try loadDecoder(model, subnet: subnet, blockWeights: true)
        let texts = try TextLines.read(URL(fileURLWithPath: textsFile))
        let limit = bundle.model.config.contextLimit
        let ids = try texts.enumerated().map { i, t -> [Int32] in
            let ids = bundle.tokenizer.encode(t, addSpecialTokens: false)
            guard !ids.isEmpty else { throw CommandError("text \(i + 1) has no tokens") }
            guard ids.count <= limit else { throw CommandError("text \(i + 1) has \(ids.count) tokens, more than the model's context of \(limit)") }
            return ids
        }
        struct Line: Encodable { let tokens: Int; let nll: Double; let perplexity: Double }
        var tensors = SafeTensorsWriter()
        var rows: [[String]] = []
        try withThreads(threads ?? ThreadPool.machineThreadCount) {
            for (i, t) in ids.enumerated() {
                let s = bundle.model.score(t)
                if json { print(jsonLine(Line(tokens: s.tokens, nll: s.nll, perplexity: s.perplexity))) } else {
                    rows.append(["\(i)", "\(s.tokens)", String(format: "%.4f", s.nll), String(format: "%.3f", s.perplexity)])
                }
                if out != nil {
                    try tensors.add(name: "text\(i).input_ids", int64s: t.map(Int64.init), shape: [t.count])
                    try tensors.add(name: "text\(i).last_hidden_state", floats: s.lastHiddenState.scalars, shape: s.lastHiddenState.shape)
                    try tensors.add(name: "text\(i).last_logits", floats: s.lastLogits.scalars, shape: s.lastLogits.shape)
                    try tensors.add(name: "text\(i).next_token_logprob", floats: s.nextTokenLogProb, shape: [s.nextTokenLogProb.count])
                }
            }
        }
        if !json { print(table(["text", "tokens", "nll", "perplexity"], rows)) }
        if let out {
            try tensors.write(to: URL(fileURLWithPath: out))
            note("wrote \(out)")
        }
    }
}

struct Convert: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Write a decoder as a Hugging Face directory transformers loads (float32 safetensors, config, tokenizer, chat template, generation config) or, for --out F.gguf, as a GGUF file llama.cpp loads, every matrix keeping the precision it came in.")

    @Argument(help: "A decoder: a GGUF file, a Hugging Face directory, a PEFT adapter directory or a run.") var model: String
    @Option(help: "The directory to create, or a file ending in .gguf.") var out: String
    @Flag(help: "Replace --out if it exists (atomically).") var force = false
    @Flag(help: "Print what was written as one JSON object.") var json = false

    func run() throws {
        let bundle = try loadDecoder(model)
        if out.lowercased().hasSuffix(".gguf") {
            let report = try DecoderGGUF.write(bundle, to: URL(fileURLWithPath: out), replace: force)
            printGGUFReport(report, source: model, out: out, json: json)
            return
        }
        let written = try DecoderExport.writeHFDirectory(bundle, to: URL(fileURLWithPath: out), replace: force)
        if json { print(jsonLine(["out": out, "files": written.joined(separator: ",")])); return }
        print("converted \(model) to \(out): \(written.joined(separator: ", "))")
    }
}

struct Quantize: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Store a decoder's matrices in fewer bits: a GGUF file llama.cpp loads (Q8_0, Q4_0, Q4_1 blocks as llama.cpp's reference quantizer makes them; BF16, F16, F32), or a Hugging Face directory of BF16/F16 safetensors. Norms and biases stay F32.")

    static let types = Dictionary(uniqueKeysWithValues: GGUFExportOptions.writableTypes.map { ($0.name.lowercased(), $0) })

    @Argument(help: "A decoder: a GGUF file, a Hugging Face directory, a PEFT adapter directory or a run.") var model: String
    @Option(help: "q8_0, q4_0, q4_1, bf16, f16 or f32.") var type: String
    @Option(help: "Tensors to keep at their source precision: a glob on GGUF or transformers names (token_embd.weight, *ffn_down*); repeatable.") var keep: [String] = []
    @Option(help: "A file ending in .gguf, or a directory (bf16, f16 and f32 only).") var out: String
    @Flag(help: "Replace --out if it exists (atomically).") var force = false
    @Flag(help: "Print what was written as one JSON object.") var json = false

    func run() throws {
        guard let t = Self.types[type.lowercased()] else {
            let later = ["nf4", "int8"].contains(type.lowercased()) ? " (\(type) is not implemented yet)" : ""
            throw ValidationError("--type must be one of \(Self.types.keys.sorted().joined(separator: ", ")), got \"\(type)\"\(later)")
        }
        let gguf = out.lowercased().hasSuffix(".gguf")
        if !gguf {
            let dtypes: [GGMLType: SafeTensorsDType] = [.bf16: .bf16, .f16: .f16, .f32: .f32]
            guard let dtype = dtypes[t] else { throw ValidationError("--type \(type) is written to GGUF only: give --out a name ending in .gguf") }
            guard keep.isEmpty else { throw ValidationError("--keep applies to GGUF output only") }
            let bundle = try loadDecoder(model)
            let written = try DecoderExport.writeHFDirectory(bundle, to: URL(fileURLWithPath: out), replace: force, dtype: dtype)
            if json { print(jsonLine(["out": out, "type": t.name, "files": written.joined(separator: ",")])); return }
            print("wrote \(out) (\(t.name) safetensors): \(written.joined(separator: ", "))")
            return
        }
        let bundle = try loadDecoder(model)
        let report = try DecoderGGUF.write(bundle, to: URL(fileURLWithPath: out), options: GGUFExportOptions(type: t, keep: keep), replace: force)
        let unmatched = keep.filter { k in let g = NameGlob(k); return !report.tensors.contains { g.matches($0.name) } && !bundle.model.namedParameters().contains { g.matches($0.name) } }
        if !unmatched.isEmpty { note("note: --keep \(unmatched.joined(separator: ", ")) matched no tensor") }
        printGGUFReport(report, source: model, out: out, json: json)
    }
}

/// The summary of a GGUF export: tensors and bytes per type, and any fallbacks.
func printGGUFReport(_ report: GGUFExportReport, source: String, out: String, json: Bool) {
    if json { print(jsonLine(report)); return }
    let rows = report.byType.map { [$0.type, "\($0.tensors)", String(format: "%.1f MB", Double($0.bytes) / 1e6)] }
    print(table(["type", "tensors", "bytes"], rows))
    let copied = report.tensors.filter(\.copied).count
    print(String(format: "wrote %@ (%@, GGUF v3, %.1f MB) from %@", out, report.architecture, Double(report.fileBytes) / 1e6, source)
          + (copied > 0 ? "; \(copied) tensors copied unchanged from the source file" : ""))
    if !report.fallbacks.isEmpty {
        print("F16 for \(report.fallbacks.count) matrices whose rows do not split into 32-value blocks: \(report.fallbacks.prefix(4).joined(separator: ", "))\(report.fallbacks.count > 4 ? ", …" : "")")
    }
}

struct ImportanceCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "importance",
        abstract: "Score a decoder's units for pruning: KV groups and FFN channels per layer, hidden channels, and each layer's block influence (1 − cos(input, output)).")
    @Argument(help: "A decoder: a Hugging Face directory, a GGUF file, a PEFT adapter directory or a run.") var model: String
    @Option(help: "Calibration texts: chat, prompt/completion or text JSONL (needed by activation and taylor; gives block influence).") var data: String?
    @Option(help: "activation (Minitron: mean |activation|), taylor (|w·∂L/∂w|) or magnitude (Σ w²).") var method: String = "activation"
    @Option(help: "Calibration texts taken from --data.") var calibrationExamples: Int = 64
    @Option(help: "Tokens per text at most.") var maxLength: Int = 512
    @Option(help: "Threads (default: all cores).") var threads: Int?
    @Flag(help: "Print the whole report as one JSON object (every unit's score).") var json = false

    func run() throws {
        guard let m = DecoderImportanceMethod(rawValue: method) else {
            throw ValidationError("--method must be one of \(DecoderImportanceMethod.allCases.map(\.rawValue).joined(separator: ", ")), got \"\(method)\"")
        }
        guard calibrationExamples > 0, maxLength >= 2 else { throw ValidationError("--calibration-examples must be positive and --max-length at least 2") }
        if let t = threads { guard t > 0 else { throw ValidationError("--threads must be positive") } }
        if m != .magnitude && data == nil { throw ValidationError("--method \(method) needs --data") }
        let bundle = try loadDecoder(model)
        let c = bundle.model.config
        let calibration = try data.map { try DecoderPruning.calibration(URL(fileURLWithPath: $0), text: bundle.text, maxLength: min(maxLength, c.contextLimit), count: calibrationExamples) } ?? []
        if data != nil && calibration.isEmpty { throw CommandError("--data \(data!): no examples") }
        let imp = try withThreads(threads ?? ThreadPool.machineThreadCount) { try bundle.model.importance(m, calibration: calibration) }
        if json { print(jsonLine(imp)); return }
        let influenceRank = imp.layersByInfluence.map { order in Dictionary(uniqueKeysWithValues: order.enumerated().map { ($1, $0 + 1) }) }
        func g(_ v: Double) -> String { String(format: "%.4g", v) }
        let rows = (0..<c.numHiddenLayers).map { l -> [String] in
            let groups = imp.groups[l]
            let order = groups.indices.sorted { groups[$0] > groups[$1] }
            let ffn = imp.ffn[l], total = ffn.reduce(0, +)
            let sorted = ffn.sorted(by: >)
            let half = sorted.prefix(ffn.count / 2).reduce(0, +)
            return ["\(l)", imp.blockInfluence.map { g($0[l]) } ?? "-", influenceRank.map { "\($0[l]!)" } ?? "-",
                    order.map(String.init).joined(separator: " "), groups.map(g).joined(separator: " "), g(total / Double(max(ffn.count, 1))),
                    String(format: "%.1f %%", 100 * half / max(total, 1e-30))]
        }
        print(table(["layer", "block influence", "removal rank", "KV groups by score", "KV group scores", "mean FFN score", "FFN score in top half"], rows))
        let hidden = imp.hidden.sorted(by: >), total = hidden.reduce(0, +)
        print(String(format: "%@ importance over %d calibration tokens; the top half of the %d hidden channels holds %.1f %% of their score",
                     imp.method.rawValue, imp.tokens, c.hiddenSize, 100 * hidden.prefix(c.hiddenSize / 2).reduce(0, +) / max(total, 1e-30)))
        if imp.blockInfluence != nil { print("removal rank 1 is the layer depth pruning removes first (least block influence)") }
    }
}
