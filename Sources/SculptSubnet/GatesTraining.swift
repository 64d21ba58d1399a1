import Foundation
import SculptCore
import SculptNN
import SculptIO
import SculptModels
import SculptTune

/// `--method gates`: a learned gate per attention head and FFN channel (BERT) or per channel
/// of each CNN stage (the units the CNN sub-network space slices), used as 0/1 in the
/// forward pass (straight-through gradient), pushed to 0 or 1 by the polarization
/// regularizer λ·Σ(t·|g| − |g − ḡ|) (Zhuang et al. 2020) with gates clamped to [0, 1]. λ is
/// raised or lowered every step by an integral controller on the kept fraction of MACs (BERT:
/// of the encoder) or parameters against a scheduled target, so one pass ends at the target:
/// the gates stay open until `gates-start` (the task is learnt first, so the task gradient
/// that ranks units means something), the scheduled target then falls on a cubic curve (fast
/// first, gently near the end; Zhu & Gupta 2017) to the user's at `gates-end`, and once it is
/// reached the gates are fixed, so the rest of the run fine-tunes the chosen sub-network. At the
/// end the gates are fixed, kept units are permuted to the front and the sub-network is
/// extracted (CNN: BatchNorm recalibrated first): the run's `final/` holds no gate, and the
/// sub-network is named `gated`.
///
/// The gates have their own update (outside the loop's AdamW): Adam's per-element
/// normalisation would move every gate at the same speed and close them all at once, so
/// they take plain gradient steps with the task gradient normalised by its RMS over all
/// gates — relative importance decides which close first, the controller how many.
final class GatesStrategy: TrainingStrategy {
    let c: TrainConfig
    var context: StrategyContext!
    var space: SubnetSpace!
    var bert: BertClassifier?
    var cnn: ImageCNN?
    var headGates: [UnitGate] = []
    var ffnGates: [UnitGate] = []
    /// CNN: one gate per stage over its channels.
    var stageGates: [UnitGate] = []
    /// Controller state (carried in checkpoints).
    struct State: Codable { var lambda: Double = 0; var lastKept: Double = 1; var fixed: Bool? = nil }
    var state = State()
    var accumulatedWeight: Float = 0
    /// The polarization's t (weight of the L1 term against the spread term).
    let t: Float = 1.2

    init(config: TrainConfig) { c = config }

    var finalIsLastState: Bool { true }

    var target: Double { c.targetMacs > 0 ? c.targetMacs : c.targetParams }
    var allGates: [UnitGate] { headGates + ffnGates + stageGates }

    func prepare(model: any Classifier, context: StrategyContext) throws {
        self.context = context
        if let b = model as? BertClassifier {
            bert = b
            let d = b.bert.config.headDim
            for layer in b.bert.encoder.layers {
                let h = UnitGate(units: layer.attention.selfAttention.heads, unitSize: d)
                let f = UnitGate(units: layer.intermediate.dense.outFeatures, unitSize: 1)
                layer.attention.output.dense.inputGate = h
                layer.output.dense.inputGate = f
                headGates.append(h)
                ffnGates.append(f)
            }
        } else if let net = model as? ImageCNN {
            cnn = net
            stageGates = net.stageChannels.map { UnitGate(units: $0, unitSize: 1) }
            net.setChannelGates(stageGates)
        } else {
            throw TuneError("--method gates needs a BERT or CNN classifier; \(model.spec.kind.rawValue) has no gated units")
        }
        space = try SubnetSpace.standard(for: model)
        // Excluded from the loop's optimiser (it collects trainable parameters next); they
        // take their own steps in `updateGates`.
        for g in allGates { g.scores.requiresGrad = false }
    }

    /// The sub-network the gates select now (at least one head and channel per layer, one
    /// channel per stage; every CNN block stays).
    func gatedSubnet() -> Subnet {
        if let net = cnn {
            return .cnn(CNNSubnet(blocks: net.stageBlocks, channels: stageGates.map { max(1, $0.kept.count) }))
        }
        return .bert(BertSubnet(layers: headGates.count, heads: headGates.map { max(1, $0.kept.count) }, ffn: ffnGates.map { max(1, $0.kept.count) }))
    }

    func keptFraction() -> Double {
        if let net = cnn {
            let now = space.cost(gatedSubnet(), in: net), full = space.cost(space.largest, in: net)
            return c.targetMacs > 0 ? Double(now.macs) / Double(full.macs) : Double(now.params) / Double(full.params)
        }
        guard let bert, case .bert(let gated) = gatedSubnet() else { preconditionFailure("gates: no gated model") }
        let cfg = bert.bert.config, seq = c.maxLength
        let full = bertCost(BertSubnet(layers: cfg.numHiddenLayers, heads: Array(repeating: cfg.numAttentionHeads, count: cfg.numHiddenLayers),
                                       ffn: Array(repeating: cfg.intermediateSize, count: cfg.numHiddenLayers)), config: cfg, sequenceLength: seq, withPooler: false)
        let now = bertCost(gated, config: cfg, sequenceLength: seq, withPooler: false)
        if c.targetMacs > 0 { return Double(now.macs) / Double(full.macs) }
        let embeddings = (cfg.vocabSize + cfg.maxPositionEmbeddings + cfg.typeVocabSize) * cfg.hiddenSize + 2 * cfg.hiddenSize
        return Double(now.params - embeddings) / Double(full.params - embeddings)   // encoder parameters
    }

    func accumulate(model: any Classifier, batch: Batch, weight: Float, step: Int) -> Double {
        for g in allGates { g.scores.requiresGrad = true }
        let loss = crossEntropy(model.logits(batch.input), labels: batch.labels)
        (loss * weight).backward()
        accumulatedWeight += weight
        if accumulatedWeight > 0.999 {
            updateGates(step: step)
            accumulatedWeight = 0
        }
        return Double(loss.value.scalar)
    }

    /// The kept fraction aimed for after `step` optimiser steps: 1 until `gates-start`, then a
    /// cubic fall to the target at `gates-end`.
    func scheduledTarget(step: Int) -> Double {
        Self.scheduledKeptFraction(step: step, totalSteps: context.totalSteps, start: c.gatesStart, end: c.gatesEnd, target: target)
    }

    static func scheduledKeptFraction(step: Int, totalSteps: Int, start: Double, end: Double, target: Double) -> Double {
        let total = Double(max(1, totalSteps))
        let p = min(1, max(0, (Double(step) - start * total) / max(1, (end - start) * total)))
        return target + (1 - target) * (1 - p) * (1 - p) * (1 - p)
    }

    func updateGates(step: Int) {
        let gates = allGates
        // Before the start and once fixed, the gates only drop their gradients.
        if Double(step) < c.gatesStart * Double(context.totalSteps) || state.fixed == true {
            for g in gates { g.scores.grad = nil; g.scores.requiresGrad = false }
            return
        }
        let goal = scheduledTarget(step: step)
        let window = Float(max(1, Double(context.totalSteps) * (c.gatesEnd - c.gatesStart)))
        // The target keeps falling, so the error λ integrates stays small: the gain must be
        // large for λ to keep pace (0.02 left a demo CNN, whose channels are a percent or more
        // of its MACs each, at 0.54 for 0.5); the reopening below stops any overshoot.
        let eta = max(0.01, 3 / window), gain = Double(max(0.1, 30 / window))
        state.lastKept = keptFraction()
        state.lambda = max(0, state.lambda + gain * (state.lastKept - goal))
        var sumSq: Double = 0, count = 0, sum: Double = 0
        for g in gates {
            let grad = g.scores.grad
            for i in 0..<g.units {
                if let grad { sumSq += Double(grad[flat: i] * grad[flat: i]) }
                sum += Double(g.scores.value[flat: i]); count += 1
            }
        }
        let rms = Float((sumSq / Double(max(count, 1))).squareRoot()), mean = Float(sum / Double(max(count, 1)))
        let lambda = Float(state.lambda)
        let before = gates.map(\.scores.value)
        for g in gates {
            let grad = g.scores.grad
            var v = g.scores.value
            for i in 0..<g.units {
                let x = v[flat: i]
                // d/dg of t·|g| − |g − ḡ| for g ≥ 0 (the small term through ḡ is dropped).
                let polar = t - (x > mean ? 1 : x < mean ? -1 : 0)
                let task = rms > 0 ? (grad?[flat: i] ?? 0) / rms : 0
                v[flat: i] = min(1, max(0, x - eta * (task + lambda * polar)))
            }
            // A layer keeps at least one head and one channel (depth is not gated), so the
            // extracted model stays equal to the gated one.
            if !(0..<g.units).contains(where: { v[flat: $0] > 0.5 }) {
                let best = (0..<g.units).max { v[flat: $0] < v[flat: $1] }!
                v[flat: best] = 0.51
            }
            g.scores.value = v
            g.scores.grad = nil
            g.scores.requiresGrad = false
        }
        // Never step below the target: the integrator alone overshoots (λ keeps pushing for as
        // long as it took to build up; MiniLM ended at 32 % of MACs for a 50 % target), and
        // letting λ go at the target lets the task gradient reopen units. So if this update
        // closed enough units to cross the target, the
        // units it just closed reopen, highest score first, until the target is met again
        // (the kept fraction approaches the target from above).
        if keptFraction() < goal {
            var closed: [(gate: Int, unit: Int, score: Float)] = []
            for (k, (g, old)) in zip(gates, before).enumerated() {
                for i in 0..<g.units where old[flat: i] > 0.5 && g.scores.value[flat: i] <= 0.5 {
                    closed.append((k, i, g.scores.value[flat: i]))
                }
            }
            for u in closed.sorted(by: { $0.score > $1.score }) {
                gates[u.gate].scores.value[flat: u.unit] = before[u.gate][flat: u.unit]
                if keptFraction() >= goal { break }
            }
        }
        // At the target (within 1 %) after the schedule's end: fixed for the rest of the run.
        if Double(step) >= c.gatesEnd * Double(context.totalSteps) && keptFraction() <= target * 1.01 { state.fixed = true }
    }

    func beforeEvaluation(model: any Classifier) {}

    func checkpointState() -> String? { String(decoding: (try? JSONEncoder().encode(state)) ?? Data(), as: UTF8.self) }
    func restore(checkpointState: String?) throws {
        guard let s = checkpointState else { return }
        guard let st = try? JSONDecoder().decode(State.self, from: Data(s.utf8)) else { throw TuneError("checkpoint: unreadable gates state") }
        state = st
    }

    /// Fixes the gates, moves kept units to the front, removes the gates and replaces `final/`
    /// with the extracted sub-network (checked against the gated super-network).
    func finish(model: any Classifier, labels: LabelVocabulary) throws {
        let runDir = context.runDirectory
        let subnet = gatedSubnet()
        if cnn != nil {
            // The running statistics mix every gate state of the run: re-estimate them for the
            // gated network, which the extracted model then inherits.
            recalibrateBatchNorm(model, batches: calibrationBatches(context.data.train, count: 8, batchSize: 64, seed: c.seed))
        }
        let checkSet = context.data.validation ?? context.data.train
        let batch = checkSet.batch(Array(0..<min(32, checkSet.count)), padId: context.padId)
        model.eval()
        let gatedLogits = withoutGradients { model.logits(batch.input) }.value
        /// Kept units (by score) first, each part in index order.
        func order(_ g: UnitGate, keep: Int) -> [Int] {
            let s = (0..<g.units).map { g.scores.value[flat: $0] }
            let byScore = s.indices.sorted { s[$0] != s[$1] ? s[$0] > s[$1] : $0 < $1 }
            return byScore.prefix(keep).sorted() + byScore.dropFirst(keep).sorted()
        }
        switch (subnet, space!) {
        case (.bert(let gated), .bert(var s)):
            for (i, layer) in bert!.bert.encoder.layers.enumerated() {
                layer.permuteHeads(order(headGates[i], keep: gated.heads[i]))
                layer.permuteChannels(order(ffnGates[i], keep: gated.ffn[i]))
                layer.attention.output.dense.inputGate = nil
                layer.output.dense.inputGate = nil
            }
            s.headChoices = Array(Set(s.headChoices + gated.heads)).sorted()
            s.ffnChoices = Array(Set(s.ffnChoices + gated.ffn)).sorted()
            space = .bert(s)
        case (.cnn(let gated), .cnn(var s)):
            cnn!.permuteStageChannels(stageGates.enumerated().map { order($0.element, keep: gated.channels[$0.offset]) })
            cnn!.setChannelGates(nil)
            s.channelChoices = zip(s.channelChoices, gated.channels).map { Array(Set($0 + [$1])).sorted() }
            space = .cnn(s)
        default:
            preconditionFailure("gates: the sub-network does not fit the space")
        }
        let small = try space.extract(subnet, from: model)
        small.eval()
        // The extracted model must compute what the gated super-network computed.
        let extractedLogits = withoutGradients { small.logits(batch.input) }.value
        var worst: Float = 0
        for i in 0..<gatedLogits.count { worst = max(worst, abs(gatedLogits[flat: i] - extractedLogits[flat: i])) }
        guard worst <= 1e-4 else { throw TuneError(String(format: "gates: the extracted model differs from the gated one by %.3g", worst)) }
        try? FileManager.default.removeItem(at: runDir.final)
        try ClassifierStore.saveFinal(small, labels: labels, tokenizerSource: bert != nil ? URL(fileURLWithPath: c.model) : nil, to: runDir.final)
        var summary = GatesSummary(subnet: subnet.json, keptFraction: keptFraction(), target: target, lambda: state.lambda,
                                   extractionMaxAbsDifference: worst, validationAccuracy: nil)
        if let val = context.data.validation {
            summary.validationAccuracy = Evaluator.evaluate(small, on: val, batchSize: c.evalBatchSize, padId: context.padId).accuracy
        }
        try RunJSONWriter.write(summary, to: runDir.url.appendingPathComponent("gates.json"))
        try SubnetsFile(space: space, named: ["gated": subnet, "min": space.smallest, "max": space.largest], training: "gates")
            .write(to: SubnetsFile.url(in: runDir.url))
    }
}

/// `gates.json`: what the gates kept and how close it came to the target.
public struct GatesSummary: Codable, Sendable {
    public var subnet: String
    public var keptFraction: Double
    public var target: Double
    public var lambda: Double
    public var extractionMaxAbsDifference: Float
    public var validationAccuracy: Double?

    enum CodingKeys: String, CodingKey {
        case subnet, keptFraction = "kept_fraction", target, lambda, extractionMaxAbsDifference = "extraction_max_abs_difference"
        case validationAccuracy = "validation_accuracy"
    }
}

enum RunJSONWriter {
    static func write<T: Encodable>(_ value: T, to url: URL) throws {
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        try AtomicFile.write(try e.encode(value), to: url)
    }
}
