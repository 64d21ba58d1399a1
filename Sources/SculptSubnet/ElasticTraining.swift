import Foundation
import SculptCore
import SculptNN
import SculptModels
import SculptTune

/// Training runs that know sub-networks: `--method elastic` (and later `gates`) get their
/// strategy here; every other method runs the plain loop.
public enum SubnetTraining {
    public static func run(_ config: TrainConfig, resume: Bool = false, hooks: TrainHooks = TrainHooks()) throws -> TrainResult {
        var h = hooks
        if h.strategy == nil { h.strategy = strategy(for:) }
        return try Trainer.run(config, resume: resume, hooks: h)
    }

    /// The strategy for a resolved config (nil for methods the plain loop handles).
    public static func strategy(for c: TrainConfig) throws -> (any TrainingStrategy)? {
        switch c.method {
        case "elastic": return ElasticStrategy(config: c)
        case "gates": return GatesStrategy(config: c)
        default: return nil
        }
    }
}

/// Weight-sharing super-network training. Each step trains the largest sub-network on the
/// true labels and some smaller ones on the KL divergence to the largest's (detached) soft
/// outputs; their gradients accumulate into one optimiser step. Which smaller ones:
/// - `sandwich` (BigNAS / InstaTune): the smallest and `random-subnets` random ones;
/// - `sorted` (SortedNet): `random-subnets` (at least one) drawn from a fixed list of
///   `nested-subnets` nested sub-networks in which depth and width grow together;
/// - `progressive` (Once-for-All): the first quarter of the epochs trains the largest only,
///   the next quarter makes depth elastic, the rest depth and width (sandwich in each phase).
///
/// With `--distill-from` the smaller sub-networks distill from that fixed trained classifier
/// instead (DynaBERT's fine-tuned teacher): its outputs do not drift while the shared weights
/// are still being shaped, and it is usually better than the largest path of a super-network.
///
/// The sub-networks of a step are drawn from a generator seeded by (run seed, step), so the
/// strategy keeps no state of its own and a resumed run samples exactly what it would have.
final class ElasticStrategy: TrainingStrategy {
    let c: TrainConfig
    var space: SubnetSpace!
    var context: StrategyContext!
    var calibration: [BatchInput] = []
    /// The fixed teacher of `--distill-from` (nil: the largest sub-network teaches).
    var teacher: (any Classifier)?

    init(config: TrainConfig) { c = config }

    var finalIsLastState: Bool { true }

    func prepare(model: any Classifier, context: StrategyContext) throws {
        self.context = context
        space = try SubnetSpace.standard(for: model, widthFractions: c.elasticWidthFractions ?? SubnetSpace.standardWidthFractions)
        if !context.resume, let b = model as? BertClassifier, c.importance != "none" {
            // Leading slices must hold the most important units before sub-networks share them.
            let criterion: ImportanceCriterion = c.importance == "taylor" ? .taylor : .magnitude
            if criterion == .taylor {
                let order = calibrationIndices(context.data.train.count, count: 4 * c.batchSize)
                for start in stride(from: 0, to: order.count, by: c.batchSize) {
                    let batch = context.data.train.batch(Array(order[start..<min(order.count, start + c.batchSize)]), padId: context.padId)
                    crossEntropy(b.logits(batch.input), labels: batch.labels).backward()
                }
            }
            b.bert.reorderByImportance(criterion)
            b.zeroGrad()
        }
        if !context.resume, c.initFrom != nil, c.importance != "none", let cnn = model as? ImageCNN {
            // A trained CNN: move the important channels to the front before they are shared.
            cnn.reorderChannelsByImportance()
        }
        if !context.resume, c.initFrom != nil, c.importance != "none", let mlp = model as? ImageMLP {
            mlp.reorderUnitsByImportance()
        }
        if let path = c.distillFrom {
            let loaded = try ClassifierStore.load(URL(fileURLWithPath: path))
            guard loaded.labels == context.data.labels else {
                throw TuneError("--distill-from \(path): its labels (\(loaded.labels.names.joined(separator: ", "))) differ from the training data's (\(context.data.labels.names.joined(separator: ", ")))")
            }
            loaded.model.eval()
            teacher = loaded.model
        }
        if model is ImageCNN {
            calibration = calibrationBatches(context.data.train, count: 8, batchSize: 64, seed: c.seed)
        }
    }

    func calibrationIndices(_ n: Int, count: Int) -> [Int] {
        var rng = SeededRNG(seed: c.seed ^ 0x7A71_0B)
        var order = Array(0..<n)
        order.shuffle(using: &rng)
        return Array(order.prefix(count))
    }

    /// The sub-networks trained at `step`: the teacher (largest) first.
    func plan(step: Int) -> [Subnet] {
        var rng = SeededRNG(seed: c.seed ^ (UInt64(step) &* 0x9E37_79B9_7F4A_7C15) ^ 0xE1A5_71C)
        switch c.elasticSchedule {
        case "sorted":
            let list = space.sortedList(count: c.nestedSubnets)
            return [space.largest] + (0..<max(1, c.randomSubnets)).map { _ in list[Int(rng.next() % UInt64(list.count))] }
        case "progressive":
            let epoch = Double(step) / Double(max(1, context.stepsPerEpoch)), epochs = Double(c.epochs)
            if epoch < epochs / 4 { return [space.largest] }
            let phase = space.restricted(elasticDepth: true, elasticWidth: epoch >= epochs / 2)
            return [space.largest, phase.smallest] + (0..<c.randomSubnets).map { _ in phase.sample(using: &rng) }
        default:
            return [space.largest, space.smallest] + (0..<c.randomSubnets).map { _ in space.sample(using: &rng) }
        }
    }

    func accumulate(model: any Classifier, batch: Batch, weight: Float, step: Int) -> Double {
        let subnets = plan(step: step)
        defer { space.activate(nil, on: model) }
        space.activate(subnets[0], on: model)
        let logits = model.logits(batch.input)
        let loss = crossEntropy(logits, labels: batch.labels)
        (loss * weight).backward()
        let soft = teacher.map { t in withoutGradients { t.logits(batch.input) } } ?? logits.detached()
        for s in subnets.dropFirst() {
            space.activate(s, on: model)
            (klDivergence(student: model.logits(batch.input), teacher: soft, temperature: Float(c.distillTemperature)) * weight).backward()
        }
        return Double(loss.value.scalar)
    }

    /// Validation and the saved model are the largest sub-network, with BatchNorm statistics
    /// recalibrated for it (the running averages mixed every sub-network's activations).
    func beforeEvaluation(model: any Classifier) {
        space.activate(nil, on: model)
        if !calibration.isEmpty { recalibrateBatchNorm(model, batches: calibration) }
    }

    func checkpointState() -> String? { nil }
    func restore(checkpointState: String?) throws {}

    func finish(model: any Classifier, labels: LabelVocabulary) throws {
        let file = SubnetsFile(space: space, named: ["min": space.smallest, "max": space.largest], training: "elastic/\(c.elasticSchedule)")
        try file.write(to: SubnetsFile.url(in: context.runDirectory.url))
    }
}
