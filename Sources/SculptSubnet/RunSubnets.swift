import Foundation
import Dispatch
import SculptCore
import SculptNN
import SculptIO
import SculptModels
import SculptTune

/// One sub-network in a listing, with its cost.
public struct SubnetEntry: Codable, Sendable {
    public var name: String
    public var subnet: String
    public var macs: Int
    public var params: Int
    /// MACs relative to the largest sub-network.
    public var macsFraction: Double
    /// Validation accuracy (with `--eval`), BatchNorm recalibrated for the sub-network first.
    public var accuracy: Double?

    enum CodingKeys: String, CodingKey { case name, subnet, macs, params, macsFraction = "macs_fraction", accuracy }
}

/// What `sculpt subnets` prints.
public struct SubnetListing: Codable, Sendable {
    public var kind: String
    public var training: String
    /// Each elastic dimension with its choices, e.g. "layers" → "[2, 3, 4, 5, 6]".
    public var dimensions: [String: String]
    /// What the MACs count: per image, or per sequence of 128 tokens for BERT's encoder.
    public var macsUnit: String
    public var subnets: [SubnetEntry]

    enum CodingKeys: String, CodingKey { case kind, training, dimensions, macsUnit = "macs_unit", subnets }
}

/// The result of `sculpt extract`.
public struct ExtractionReport: Codable, Sendable {
    public var subnet: String
    public var directory: String
    public var maxAbsDifference: Float
    public var checkedExamples: Int
    public var macs: Int
    public var params: Int
    public var hfCompatible: Bool

    enum CodingKeys: String, CodingKey {
        case subnet, directory, maxAbsDifference = "max_abs_difference", checkedExamples = "checked_examples", macs, params
        case hfCompatible = "hf_compatible"
    }
}

/// Sub-networks of a trained run: listing, extraction with its check, evaluation.
public enum RunSubnets {
    /// The run's super-network (its `final/`) and recorded search space. A run without
    /// `subnets.json` (not trained elastically or with gates) offers the standard space over
    /// the plain leading slices of its weights (training "none").
    public static func open(_ run: URL) throws -> (model: any Classifier, file: SubnetsFile, labels: LabelVocabulary, final: URL) {
        let (model, labels, _, dir) = try ClassifierStore.load(run)
        let url = SubnetsFile.url(in: run)
        let file = FileManager.default.fileExists(atPath: url.path) ? try SubnetsFile.read(from: url)
            : SubnetsFile(space: try SubnetSpace.standard(for: model), training: "none")
        return (model, file, labels, dir)
    }

    /// A sub-network given as a name in the run (`min`, `max`, `gated`, …), a JSON file or JSON text.
    public static func resolve(_ spec: String, in file: SubnetsFile) throws -> Subnet {
        if let named = file.named[spec] { return named }
        if spec == "min" { return file.space.smallest }
        if spec == "max" { return file.space.largest }
        var text = spec
        if !spec.trimmingCharacters(in: .whitespaces).hasPrefix("{") {
            guard let t = try? String(contentsOfFile: spec, encoding: .utf8) else {
                throw TuneError("--subnet \(spec): not a sub-network name (\(file.named.keys.sorted().joined(separator: ", "))), a readable JSON file or JSON text")
            }
            text = t
        }
        return try file.space.parse(text)
    }

    /// The run's search space and sub-networks: `min`, `max`, the named ones, and `nested`
    /// sub-networks from the sorted nested list (`nested-1` smallest); with `evaluate`, each
    /// one's accuracy on the run's validation split.
    public static func list(_ run: URL, nested: Int = 0, evaluate: Bool = false) throws -> SubnetListing {
        let (model, file, _, final) = try open(run)
        var dims: [String: String] = [:]
        switch file.space {
        case .bert(let s):
            dims = ["layers": "\(s.layerChoices)", "heads (per layer)": "\(s.headChoices)", "ffn (per layer)": "\(s.ffnChoices)"]
        case .cnn(let s):
            dims = ["blocks (per stage)": "\(s.blockChoices)", "channels (per stage)": "\(s.channelChoices)"]
        case .mlp(let s):
            dims = ["layers": "\(s.layerChoices)", "widths (per layer)": "\(s.widthChoices)"]
        }
        let full = Double(file.space.cost(file.space.largest, in: model).macs)
        var named = file.named
        named["min"] = named["min"] ?? file.space.smallest
        named["max"] = named["max"] ?? file.space.largest
        if nested > 0 {
            for (i, s) in file.space.sortedList(count: nested).enumerated() where !named.values.contains(s) { named["nested-\(i + 1)"] = s }
        }
        var prepared: (data: PreparedData, padId: Int32, config: TrainConfig)? = nil
        if evaluate {
            guard file.training != "gates" else { throw TuneError("--eval: a gates run keeps only its gated model; use sculpt eval on it") }
            prepared = try runData(run, model: model, final: final)
        }
        let entries = try named.sorted { file.space.cost($0.value, in: model).macs < file.space.cost($1.value, in: model).macs }.map { name, s in
            let c = file.space.cost(s, in: model)
            var e = SubnetEntry(name: name, subnet: s.json, macs: c.macs, params: c.params, macsFraction: Double(c.macs) / max(full, 1))
            if let p = prepared {
                e.accuracy = try RunSubnets.evaluate(s, model: model, space: file.space, data: p.data, padId: p.padId, seed: p.config.seed).result.accuracy
            }
            return e
        }
        return SubnetListing(kind: file.space.kind, training: file.training, dimensions: dims,
                             macsUnit: file.space.kind == "bert" ? "encoder, per 128-token sequence" : "per image", subnets: entries)
    }

    /// The run's training and evaluation data, as configured in its `run.json`.
    static func runData(_ run: URL, model: any Classifier, final: URL) throws -> (data: PreparedData, padId: Int32, config: TrainConfig) {
        let runDir = RunDirectory(run)
        guard let d = try? Data(contentsOf: runDir.runJSON), let record = try? JSONDecoder().decode(RunRecord.self, from: d) else {
            throw TuneError("\(runDir.runJSON.path): no readable run.json; extraction checks use the run's data")
        }
        let tokenizer = try (model as? BertClassifier).map { try WordPieceTokenizer.load(modelDirectory: final, checkedAgainst: $0.bert.config) }
        let data = try DataPreparation.prepare(record.config, tokenizer: tokenizer, cacheDirectory: runDir.cache)
        return (data, tokenizer?.padId ?? 0, record.config)
    }

    /// Recalibrates BatchNorm for `subnet` (CNN) on the run's training data, then returns the
    /// super-network ready to run it and a dense extracted copy.
    public static func prepare(_ subnet: Subnet, model: any Classifier, space: SubnetSpace, train: ClassificationData, seed: UInt64) throws -> any Classifier {
        if let cnn = model as? ImageCNN, case .cnn(let s) = subnet {
            return try cnn.recalibratedExtraction(s, calibration: calibrationBatches(train, count: 8, batchSize: 64, seed: seed))
        }
        let small = try space.extract(subnet, from: model)
        small.eval()
        return small
    }

    /// Cuts `subnet` out of the run as a model directory that `sculpt eval` accepts, after
    /// checking it against the super-network on a batch of the run's evaluation data.
    public static func extract(run: URL, subnet spec: String, out: URL, hfCompatible: Bool = false, checkExamples: Int = 32) throws -> ExtractionReport {
        let (model, file, labels, final) = try open(run)
        let subnet = try resolve(spec, in: file)
        if file.training == "gates" {
            // A gates run's final/ already is the extracted `gated` model (checked when the
            // run ended); the super-network it came from is not kept.
            guard subnet == file.named["gated"], !hfCompatible || model is BertClassifier else {
                throw TuneError("\(run.path): a gates run keeps only its gated sub-network (final/); extract --subnet gated")
            }
            let summary = try JSONDecoder().decode(GatesSummary.self, from: Data(contentsOf: run.appendingPathComponent("gates.json")))
            var toSave = model
            if hfCompatible, let b = model as? BertClassifier, case .bert(let s) = subnet, case .bert(let sp) = file.space {
                toSave = try zeroPadded(b, subnet: s, fullHeads: sp.headChoices.last!)
            }
            try ClassifierStore.saveFinal(toSave, labels: labels, tokenizerSource: final, to: out)
            let cost = file.space.cost(subnet, in: model)
            return ExtractionReport(subnet: subnet.json, directory: out.path, maxAbsDifference: summary.extractionMaxAbsDifference,
                                    checkedExamples: 32, macs: cost.macs, params: cost.params, hfCompatible: hfCompatible)
        }
        let (data, padId, config) = try runData(run, model: model, final: final)
        let small = try prepare(subnet, model: model, space: file.space, train: data.train, seed: config.seed)
        let checkSet = data.validation ?? data.train
        let batch = checkSet.batch(Array(0..<min(checkExamples, checkSet.count)), padId: padId)
        let check: ExtractionCheck
        switch (subnet, model, small) {
        case (.cnn(let s), let big as ImageCNN, let little as ImageCNN):
            check = checkExtraction(superNetwork: big, subnet: s, extracted: little, input: batch.input)
        case (.mlp(let s), let big as ImageMLP, let little as ImageMLP):
            check = checkExtraction(superNetwork: big, subnet: s, extracted: little, input: batch.input)
        case (.bert(let s), let big as BertClassifier, let little as BertClassifier):
            guard case .tokens(let tokens) = batch.input else { throw TuneError("extract: the run's data is not text") }
            check = checkExtraction(superNetwork: big.bert, subnet: s, extracted: little.bert, batch: tokens)
        default: throw TuneError("extract: \(subnet.json) does not fit the run's model")
        }
        guard check.passed else {
            throw TuneError(String(format: "extract: the extracted model differs from the super-network by %.3g (> 1e-4); nothing written", check.maxAbsDifference))
        }
        var toSave = small
        if hfCompatible {
            guard let b = small as? BertClassifier, case .bert(let s) = subnet else { throw TuneError("--hf-compatible applies to BERT sub-networks") }
            toSave = try zeroPadded(b, subnet: s, fullHeads: (model as! BertClassifier).bert.config.numAttentionHeads)
        }
        try ClassifierStore.saveFinal(toSave, labels: labels, tokenizerSource: model is BertClassifier ? final : nil, to: out)
        let cost = file.space.cost(subnet, in: model)
        return ExtractionReport(subnet: subnet.json, directory: out.path, maxAbsDifference: check.maxAbsDifference,
                                checkedExamples: batch.count, macs: cost.macs, params: cost.params, hfCompatible: hfCompatible)
    }

    /// A BERT sub-network as a standard HF config: every layer has all heads and the widest
    /// FFN, the removed heads and channels zero. A zero head has zero values, so it adds
    /// nothing; a zero FFN channel gives GELU(0) = 0. The outputs equal the dense extraction.
    static func zeroPadded(_ small: BertClassifier, subnet: BertSubnet, fullHeads: Int) throws -> BertClassifier {
        var c = small.bert.config
        c.numAttentionHeads = fullHeads
        c.intermediateSize = subnet.ffn.max() ?? c.intermediateSize
        c.layerNumHeads = nil
        c.layerIntermediateSizes = nil
        let padded = try BertModel(config: c, withPooler: small.bert.pooler != nil, randomWeights: false)
        let source = small.bert.stateDict()
        var values: [String: Tensor] = [:]
        for (name, target) in padded.stateDict() {
            guard var t = source[name] else { continue }
            for axis in 0..<t.rank where t.shape[axis] < target.shape[axis] {
                var zeroShape = t.shape
                zeroShape[axis] = target.shape[axis] - t.shape[axis]
                t = Tensor.concat([t, Tensor.zeros(zeroShape)], axis: axis)
            }
            values[name] = t
        }
        let r = try padded.update(from: values)
        precondition(r.missing.isEmpty, "zeroPadded: no source for \(r.missing)")
        let out = BertClassifier(bert: padded, spec: small.spec, seed: 0)
        try out.classifier.update(from: small.classifier.stateDict())
        return out
    }

    /// Accuracy of a sub-network on the run's validation data, with BatchNorm recalibrated
    /// for it first (CNN), computed on its dense extraction.
    public static func evaluate(_ subnet: Subnet, model: any Classifier, space: SubnetSpace, data: PreparedData, padId: Int32, seed: UInt64,
                                batchSize: Int = 256) throws -> (result: EvalResult, extracted: any Classifier) {
        let small = try prepare(subnet, model: model, space: space, train: data.train, seed: seed)
        guard let val = data.validation else { throw TuneError("the run has no validation data") }
        return (Evaluator.evaluate(small, on: val, batchSize: batchSize, padId: padId), small)
    }
}

/// Median seconds of one inference pass of `model` on `input` (after a warm-up), repeated
/// until `minimumSeconds` have passed and at least `minimumRuns` ran.
public func measureLatency(_ model: any Classifier, input: BatchInput, minimumSeconds: Double = 0.5, minimumRuns: Int = 5) -> Double {
    model.eval()
    return withoutGradients {
        _ = model.logits(input)
        var times: [Double] = []
        let start = DispatchTime.now().uptimeNanoseconds
        while times.count < minimumRuns || Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9 < minimumSeconds {
            let t0 = DispatchTime.now().uptimeNanoseconds
            _ = model.logits(input)
            times.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)
        }
        return times.sorted()[times.count / 2]
    }
}

extension RunSubnets {
    /// Inference time of a saved image classifier (a run's `final/` or an extracted CNN) on
    /// random images of its input size: median seconds per batch.
    public static func imageLatency(directory: URL, batch: Int, threads: Int, minimumSeconds: Double) throws -> Double {
        let (model, _, _, _) = try ClassifierStore.load(directory)
        guard model.spec.kind != .bert else { throw TuneError("\(directory.path): not an image classifier") }
        var rng = SeededRNG(seed: 0)
        let input = BatchInput.images(Tensor.randomNormal([batch, 1, model.spec.imageHeight, model.spec.imageWidth], using: &rng))
        return withThreads(threads) { measureLatency(model, input: input, minimumSeconds: minimumSeconds) }
    }
}
