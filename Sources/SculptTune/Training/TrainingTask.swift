import Foundation
import SculptCore
import SculptNN
import SculptIO
import SculptModels

/// A validation pass: what it logs and how the loop compares it with the best so far
/// (higher accuracy, or lower loss when the task has no accuracy).
struct TaskEvaluation {
    var accuracy: Double?
    var loss: Double
    var note: String
}

/// What one run trains. The loop owns the order of examples, accumulation, clipping, the
/// optimiser, schedules, checkpoints and resume, identical for every task; a task owns the
/// model, its data, its loss, its validation metric and the form of `final/`.
protocol TrainingTask: AnyObject {
    var model: any Module { get }
    /// The model named in the start line ("bert", "cnn", "decoder").
    var kind: String { get }
    var trainCount: Int { get }
    var validationCount: Int { get }
    /// Classes of a classifier (0 for a language model), recorded in run.json.
    var classes: Int { get }
    var labels: LabelVocabulary { get }
    /// The sub-network strategy (classification only).
    var strategy: (any TrainingStrategy)? { get }

    /// An epoch's order of the training examples, given its seeded permutation.
    func epochOrder(_ permutation: [Int]) -> [Int]
    /// What a micro-batch counts for in its step's mean loss: its examples, or its target tokens.
    func lossUnits(_ indices: [Int]) -> Int
    /// Forward and backward of one micro-batch with its gradients scaled by `weight`;
    /// returns the micro-batch's mean loss.
    func accumulate(_ indices: [Int], weight: Float, step: Int) -> Double
    /// Validation of the current weights; nil without validation data.
    func evaluate() -> TaskEvaluation?
    /// Prepares the strategy (if any) once the run's step counts are known.
    func prepareStrategy(totalSteps: Int, stepsPerEpoch: Int) throws

    // What the fine-tuning methods need to know of the model.
    /// The module LoRA adapters are named relative to (PEFT's base model), nil when LoRA does not apply.
    var loraRoot: (any Module)? { get }
    /// PEFT's `task_type` for this task's adapters.
    var peftTaskType: String { get }
    /// The default `--lora-targets`.
    var defaultLoRATargets: String { get }
    /// Sets up s2ft: `plan` when resuming, else one chosen from the density at random.
    func startS2FT(plan: S2FTPlan?, density: Double, headDensity: Double?, sides: S2FTSides, seed: UInt64) throws -> (S2FTPlan, any S2FTFolding)
    /// Parameters that train under every method (a new classifier head), by name prefix.
    var headPrefix: String? { get }
    /// What `--method bitfit` trains.
    func isBitFitParameter(_ name: String) -> Bool
    /// What LT-SFT may select.
    func isSparseCandidate(_ name: String) -> Bool
    /// Writes `final/` for the method's stored form.
    func saveFinal(_ weights: ClassifierStore.StoredWeights, baseModel: String, to dir: URL) throws
    /// After `final/` is written (the strategy's own files).
    func finish() throws
}

/// Classification of text (BERT) or images (CNN, MLP) with cross-entropy on labels.
final class ClassificationTask: TrainingTask {
    let c: TrainConfig
    let classifier: any Classifier
    let data: PreparedData
    let padId: Int32
    let strategy: (any TrainingStrategy)?
    let runDir: RunDirectory
    let resume: Bool
    var model: any Module { classifier }
    var kind: String { classifier.spec.kind.rawValue }
    var trainCount: Int { data.train.count }
    var validationCount: Int { data.validation?.count ?? 0 }
    var classes: Int { data.labels.count }
    var labels: LabelVocabulary { data.labels }

    init(config c: TrainConfig, method: FineTuneMethod, runDir: RunDirectory, resume: Bool, hooks: TrainHooks) throws {
        self.c = c
        self.runDir = runDir
        self.resume = resume
        let isImage = ClassifierStore.isImageModel(c.model)
        let modelDir = URL(fileURLWithPath: c.model)
        let tokenizer = isImage ? nil : try Trainer.bertConfig(c).map { try WordPieceTokenizer.load(modelDirectory: modelDir, checkedAgainst: $0) }
            ?? WordPieceTokenizer.load(modelDirectory: modelDir)
        padId = tokenizer?.padId ?? 0
        data = try DataPreparation.prepare(c, tokenizer: tokenizer, cacheDirectory: runDir.cache)
        var imageSize = (0, 0)
        if case .images(_, let h, let w) = data.train.inputs { imageSize = (h, w) }
        if !isImage, case .images = data.train.inputs { throw TuneError("--data \(c.data): image data needs --model cnn or mlp") }
        if isImage, case .tokens = data.train.inputs { throw TuneError("--model \(c.model) needs image data") }
        classifier = try ClassifierStore.build(c, classes: data.labels.count, imageSize: imageSize)
        if let from = c.initFrom, !resume { try ClassifierStore.loadWeights(from: URL(fileURLWithPath: from), into: classifier) }
        strategy = try hooks.strategy?(c)
        if strategy == nil && [FineTuneMethod.elastic, .gates].contains(method) {
            throw TuneError("--method \(method.name) needs the sub-network strategies (run it through `sculpt train`)")
        }
        if resume {
            let saved = try LabelVocabulary.read(from: runDir.labels)
            guard saved == data.labels else { throw TuneError("\(runDir.labels.path): the training data's labels changed since the run started") }
        } else {
            try data.labels.write(to: runDir.labels)
        }
    }

    func prepareStrategy(totalSteps: Int, stepsPerEpoch: Int) throws {
        try strategy?.prepare(model: classifier, context: StrategyContext(config: c, data: data, runDirectory: runDir, totalSteps: totalSteps,
                                                                          stepsPerEpoch: stepsPerEpoch, padId: padId, resume: resume))
    }

    func epochOrder(_ permutation: [Int]) -> [Int] { permutation }
    func lossUnits(_ indices: [Int]) -> Int { indices.count }

    func accumulate(_ indices: [Int], weight: Float, step: Int) -> Double {
        let flipSeed = c.augmentFlip ? c.seed ^ (UInt64(step) &* 0x9E37_79B9_7F4A_7C15) : nil
        let batch = data.train.batch(indices, padId: padId, flipSeed: flipSeed)
        if let strategy { return strategy.accumulate(model: classifier, batch: batch, weight: weight, step: step) }
        let loss = crossEntropy(classifier.logits(batch.input), labels: batch.labels)
        (loss * weight).backward()
        return Double(loss.value.scalar)
    }

    func evaluate() -> TaskEvaluation? {
        guard let val = data.validation else { return nil }
        strategy?.beforeEvaluation(model: classifier)
        let r = Evaluator.evaluate(classifier, on: val, batchSize: c.evalBatchSize, padId: padId)
        return TaskEvaluation(accuracy: r.accuracy, loss: r.loss, note: String(format: "validation accuracy %.2f %%, loss %.4f", r.accuracy * 100, r.loss))
    }

    /// Accuracy and loss of the final weights on the validation data.
    func finalValidation() -> EvalResult? {
        strategy?.beforeEvaluation(model: classifier)
        return data.validation.map { Evaluator.evaluate(classifier, on: $0, batchSize: c.evalBatchSize, padId: padId) }
    }

    var bert: BertModel? { (classifier as? BertClassifier)?.bert }
    var loraRoot: (any Module)? { bert }
    var peftTaskType: String { "FEATURE_EXTRACTION" }
    var defaultLoRATargets: String { "query,value" }
    func startS2FT(plan: S2FTPlan?, density: Double, headDensity: Double?, sides: S2FTSides, seed: UInt64) throws -> (S2FTPlan, any S2FTFolding) {
        guard let bert else { throw TuneError("--method s2ft needs a BERT or decoder model") }
        let chosen = plan ?? S2FTPlan.choose(for: bert, density: density, headDensity: headDensity, criterion: .random, seed: seed, trainInputSide: sides.trainsInputSide)
        return (chosen, applyS2FT(chosen, to: bert))
    }
    var headPrefix: String? { "classifier." }
    func isBitFitParameter(_ name: String) -> Bool { name.hasSuffix(".bias") || name.hasPrefix("classifier.") }

    /// The encoder and the embedding LayerNorm of a BERT (the embedding tables and the pooler
    /// are left out: the former would make every sparse step carry a dense 30k-row gradient,
    /// the latter gets no gradient with mean pooling), every non-head parameter of an image model.
    func isSparseCandidate(_ name: String) -> Bool {
        if name.hasPrefix("classifier.") || name.hasPrefix("bert.pooler.") { return false }
        return !name.hasSuffix("_embeddings.weight")
    }

    func saveFinal(_ weights: ClassifierStore.StoredWeights, baseModel: String, to dir: URL) throws {
        let tokenizerSource = ClassifierStore.isImageModel(c.model) ? nil : URL(fileURLWithPath: c.model)
        try ClassifierStore.saveFinal(classifier, labels: data.labels, tokenizerSource: tokenizerSource, to: dir, weights: weights, baseModel: baseModel)
    }

    func finish() throws { try strategy?.finish(model: classifier, labels: data.labels) }
}
