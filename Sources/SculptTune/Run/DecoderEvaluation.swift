import Foundation
import SculptCore
import SculptIO
import SculptModels

/// `sculpt eval` on a decoder: loss and perplexity on the target tokens, and exact-match
/// accuracy of greedy answers.
public struct DecoderEvalResult: Sendable, Encodable {
    public var examples: Int
    public var loss: Double
    public var perplexity: Double
    /// The fraction of examples whose greedy answer equals the reference (nil unless asked).
    public var exactMatch: Double?
    /// (reference, answer) of each example, when exact match was computed.
    public var answers: [(reference: String, answer: String)] = []

    enum CodingKeys: String, CodingKey { case examples, loss, perplexity, exactMatch = "exact_match" }
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(examples, forKey: .examples)
        try c.encode(loss, forKey: .loss)
        try c.encode(perplexity, forKey: .perplexity)
        try c.encodeIfPresent(exactMatch, forKey: .exactMatch)
    }
}

public enum DecoderEvaluation {
    /// The model a path names for decoder commands: a run directory stands for its `final/`.
    public static func modelPath(_ path: String) -> String {
        let run = RunDirectory(URL(fileURLWithPath: path))
        let fm = FileManager.default
        if fm.fileExists(atPath: run.runJSON.path) && fm.fileExists(atPath: run.final.path) { return run.final.path }
        return path
    }

    /// Whether a path (a run directory included) names a decoder.
    public static func isDecoder(_ path: String) -> Bool { DecoderBundle.isDecoder(modelPath(path)) }

    /// Loss and perplexity per target token of `data` (chat, prompt/completion or text JSONL),
    /// and with `exactMatch` the share of examples whose greedy answer — at most
    /// `maxNewTokens` new tokens, the text before the end-of-turn token, stripped — equals
    /// the reference answer stripped.
    public static func evaluate(_ bundle: DecoderBundle, data: URL, maxLength: Int? = nil, exactMatch: Bool, maxNewTokens: Int = 8,
                                batchSize: Int = 8, threads: Int = 0) throws -> DecoderEvalResult {
        let limit = bundle.model.config.contextLimit
        let set = try LMData.load(data, text: bundle.text, maxLength: min(maxLength ?? limit, limit), trainOn: .completion)
        let padId = bundle.tokenizer.padTokenId ?? bundle.tokenizer.eosTokenId ?? 0
        return try withThreads(threads > 0 ? threads : ThreadPool.machineThreadCount) {
            let loss = CausalLMTask.meanLoss(bundle.model, set.examples, padId: padId, batchSize: batchSize)
            var result = DecoderEvalResult(examples: set.examples.count, loss: loss, perplexity: Foundation.exp(loss))
            guard exactMatch else { return result }
            let prompts: [[Int32]] = try set.examples.map { e in
                if let m = e.promptMessages { return try bundle.encodeChat(m, addGenerationPrompt: true) }
                if let p = e.promptText { return (bundle.tokenizer.addBOS ? bundle.tokenizer.bosTokenId.map { [$0] } ?? [] : []) + bundle.tokenizer.encode(p) }
                throw TuneError("\(data.path):\(e.line): --metric exact-match needs chat or prompt/completion lines (this one is plain text)")
            }
            for (i, p) in prompts.enumerated() where p.count + maxNewTokens > limit {
                throw TuneError("\(data.path):\(set.examples[i].line): the prompt (\(p.count) tokens) and --max-new-tokens \(maxNewTokens) exceed the model's context (\(limit))")
            }
            let generator = DecoderGenerator(model: bundle.model)
            let options = GenerationOptions(maxNewTokens: maxNewTokens, stopTokenIds: bundle.stopTokenIds)
            // Prompts of similar length generate together (little left padding).
            let order = prompts.indices.sorted { prompts[$0].count < prompts[$1].count }
            var answers = [String](repeating: "", count: prompts.count)
            for start in stride(from: 0, to: order.count, by: max(1, batchSize)) {
                let part = Array(order[start..<min(order.count, start + batchSize)])
                let outputs = generator.generate(prompts: part.map { prompts[$0] }, options: options)
                for (k, out) in zip(part, outputs) {
                    let kept = out.prefix { !options.stopTokenIds.contains($0) }
                    answers[k] = bundle.tokenizer.decode(Array(kept), skipSpecialTokens: true).trimmingCharacters(in: .whitespacesAndNewlines)
                }
            }
            var correct = 0
            for (e, a) in zip(set.examples, answers) {
                let reference = (e.reference ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
                if a == reference { correct += 1 }
                result.answers.append((reference, a))
            }
            result.exactMatch = Double(correct) / Double(max(1, set.examples.count))
            return result
        }
    }
}

/// `subnets.json` of a decoder run: its named sub-networks (a sorted run's nested depths,
/// `depth-N`), in the layout of the classifiers' file (`kind`, `training`, `named`).
public struct DecoderSubnetsFile: Sendable {
    public static let fileName = "subnets.json"
    public var training: String
    public var named: [String: DecoderSubnet]

    public init(training: String, named: [String: DecoderSubnet]) { self.training = training; self.named = named }

    public func write(to url: URL) throws {
        var named: [String: Any] = [:]
        for (k, v) in self.named { named[k] = try JSONSerialization.jsonObject(with: Data(v.json.utf8)) }
        let obj: [String: Any] = ["kind": "decoder", "training": training, "named": named]
        try AtomicFile.write(try JSONSerialization.data(withJSONObject: obj, options: [.prettyPrinted, .sortedKeys]), to: url)
    }

    /// The file of the run `path` names (a run directory or its `final/`), if it has one.
    public static func read(run path: String, config: DecoderConfig) throws -> DecoderSubnetsFile? {
        var dir = URL(fileURLWithPath: path)
        if dir.lastPathComponent == "final" { dir = dir.deletingLastPathComponent() }
        let url = dir.appendingPathComponent(fileName)
        guard let data = FileManager.default.contents(atPath: url.path) else { return nil }
        guard let obj = try? JSONSerialization.jsonObject(with: data) as? [String: Any], obj["kind"] as? String == "decoder",
              let named = obj["named"] as? [String: Any] else { throw TuneError("\(url.path): not a decoder sub-networks file") }
        var out: [String: DecoderSubnet] = [:]
        for (k, v) in named {
            let text = String(decoding: try JSONSerialization.data(withJSONObject: v), as: UTF8.self)
            do { out[k] = try DecoderSubnet.parse(text, config: config) } catch { throw TuneError("\(url.path): named sub-network \"\(k)\": \(error)") }
        }
        return DecoderSubnetsFile(training: obj["training"] as? String ?? "", named: out)
    }

    /// A sub-network given as a name of the run's file (`depth-12`), JSON text or a JSON file.
    public static func resolve(_ spec: String, run path: String, config: DecoderConfig) throws -> DecoderSubnet {
        let file = try read(run: path, config: config)
        if let s = file?.named[spec] { return s }
        let looksLikeName = !spec.hasPrefix("{") && !FileManager.default.fileExists(atPath: spec)
        if looksLikeName {
            let names = file.map { $0.named.keys.sorted().joined(separator: ", ") } ?? ""
            throw TuneError("--subnet \(spec): not a sub-network of \(path)\(names.isEmpty ? " (it names none)" : " (it names \(names))"), JSON text or a readable file")
        }
        do { return try DecoderSubnet.resolve(spec, config: config) } catch let e as SubnetError { throw TuneError("--subnet: \(e)") }
    }
}
