import Foundation
import SculptCore
import SculptNN
import SculptIO

/// Optional observers and test hooks of a run.
public struct TrainHooks {
    /// Progress bar / lines on standard error; nil is silent.
    public var progress: ProgressDisplay?
    /// Raised by Ctrl-C: the loop saves a checkpoint after the current step and returns.
    public var stop: StopFlag?
    /// Test hook simulating a kill: return right after this many steps without saving anything.
    public var abandonAfterStep: Int?
    /// Called before each optimiser step with the step number (tests inject faults here).
    public var beforeStep: ((Int, any Module) -> Void)?
    /// Builds the training strategy for the resolved config (nil: plain cross-entropy).
    /// SculptSubnet's `SubnetTraining.run` sets it for `--method elastic` and `gates`.
    public var strategy: ((TrainConfig) throws -> (any TrainingStrategy)?)?

    public init(progress: ProgressDisplay? = nil, stop: StopFlag? = nil, abandonAfterStep: Int? = nil,
                beforeStep: ((Int, any Module) -> Void)? = nil, strategy: ((TrainConfig) throws -> (any TrainingStrategy)?)? = nil) {
        self.progress = progress
        self.stop = stop
        self.abandonAfterStep = abandonAfterStep
        self.beforeStep = beforeStep
        self.strategy = strategy
    }
}

public struct TrainResult: Sendable {
    public enum Outcome: String, Sendable { case completed, stoppedEarly = "stopped early", interrupted, abandoned }
    public var outcome: Outcome
    public var steps: Int
    public var totalSteps: Int
    public var runDirectory: URL
    /// Validation metrics of the final weights (nil without validation data).
    public var validation: EvalResult?
    /// A language model's validation loss per target token (nil for classifiers, or without validation data).
    public var validationLoss: Double? = nil
    public var bestAccuracy: Double?
    public var labels: LabelVocabulary
    public var seconds: Double
}

/// The training loop: AdamW with warm-up and decay, clipping, accumulation, periodic
/// evaluation with best-checkpoint and early stopping, atomic checkpoints and exact resume.
public enum Trainer {
    /// Starts a new run in `config.out`, or with `resume` continues the run there from its last checkpoint.
    public static func run(_ config: TrainConfig, resume: Bool = false, hooks: TrainHooks = TrainHooks()) throws -> TrainResult {
        let runDir = RunDirectory(URL(fileURLWithPath: config.out))
        var c = config
        if resume {
            guard let data = try? Data(contentsOf: runDir.runJSON), let record = try? JSONDecoder().decode(RunRecord.self, from: data) else {
                throw TuneError("\(runDir.url.path): no readable run.json; --resume needs a run directory made by `sculpt train`")
            }
            c = record.config
            c.out = config.out
            if config.threads > 0 { c.threads = config.threads }
            guard FileManager.default.fileExists(atPath: runDir.lastCheckpoint.path) else {
                throw TuneError("\(runDir.lastCheckpoint.path): no checkpoint to resume from (the run stopped before its first checkpoint)")
            }
        } else if FileManager.default.fileExists(atPath: runDir.runJSON.path) {
            throw TuneError("\(runDir.url.path): already holds a run (run.json); use --resume \(runDir.url.path) or another --out")
        }
        try c.validate()
        // Checked against the model before anything is created: a longer input would index
        // past the position-embedding table. Refused rather than clamped, since the run
        // records (and evaluates with) the length asked for.
        if let bert = try bertConfig(c), c.maxLength > bert.maxPositionEmbeddings {
            throw TuneError("--max-length \(c.maxLength) exceeds the model's max_position_embeddings (\(bert.maxPositionEmbeddings), \(c.model)/config.json); use --max-length \(bert.maxPositionEmbeddings) or less")
        }
        let threads = c.threads > 0 ? c.threads : ThreadPool.machineThreadCount
        return try withThreads(threads) { try Loop(config: c, runDir: runDir, resume: resume, hooks: hooks).run() }
    }

    /// The BERT config of `--model`; nil for cnn/mlp or a directory without config.json
    /// (building the model names that problem).
    static func bertConfig(_ c: TrainConfig) throws -> BertConfig? {
        guard !ClassifierStore.isImageModel(c.model), !c.isDecoderModel else { return nil }
        let url = URL(fileURLWithPath: c.model).appendingPathComponent("config.json")
        return FileManager.default.fileExists(atPath: url.path) ? try BertConfig.load(from: url) : nil
    }
}

/// One run's state while it trains.
final class Loop {
    let c: TrainConfig
    let runDir: RunDirectory
    let resume: Bool
    let hooks: TrainHooks
    let start = Date()

    init(config: TrainConfig, runDir: RunDirectory, resume: Bool, hooks: TrainHooks) {
        c = config
        self.runDir = runDir
        self.resume = resume
        self.hooks = hooks
    }

    func run() throws -> TrainResult {
        try runDir.create()
        let method = try FineTuneMethod(config: c)
        let task: any TrainingTask = c.isDecoderModel
            ? try CausalLMTask(config: c, method: method, runDir: runDir, hooks: hooks)
            : try ClassificationTask(config: c, method: method, runDir: runDir, resume: resume, hooks: hooks)
        let model = task.model
        let optimizer = AdamW(learningRate: Float(c.lr), weightDecay: Float(c.weightDecay))

        let n = task.trainCount
        let microBatches = (n + c.batchSize - 1) / c.batchSize
        let stepsPerEpoch = (microBatches + c.gradAccum - 1) / c.gradAccum
        let methodSteps = stepsPerEpoch * c.epochs
        let runner = MethodRunner(method: method, task: task, config: c, stepsPerRun: methodSteps)
        // LT-SFT's full phase comes on top of the epochs of its sparse phase.
        let totalSteps = methodSteps + runner.fullPhaseSteps
        func schedule(_ steps: Int) -> LRSchedule {
            let warmup = Int((c.warmupRatio * Double(steps)).rounded())
            return c.schedule == "cosine" ? .cosine(warmupSteps: warmup, totalSteps: steps)
                : c.schedule == "linear" ? .linear(warmupSteps: warmup, totalSteps: steps)
                : (warmup > 0 ? .linear(warmupSteps: warmup, totalSteps: Int.max / 2) : .constant)
        }

        try task.prepareStrategy(totalSteps: totalSteps, stepsPerEpoch: stepsPerEpoch)
        let strategy = task.strategy
        var state = LoopState(data: DataOrderState(seed: c.seed))
        if resume {
            var savedState = try Checkpoint.readState(from: runDir.lastCheckpoint)
            try runner.prepare(state: &savedState, resuming: true, runDir: runDir, optimizer: optimizer)
            state = try Checkpoint.load(from: runDir.lastCheckpoint, model: model, optimizer: optimizer)
            state.s2ftPlan = savedState.s2ftPlan
            try strategy?.restore(checkpointState: state.strategyState)
            try MetricsLog.truncate(runDir.metrics, afterStep: state.step)
            hooks.progress?.line("resuming \(runDir.url.path) at step \(state.step)/\(totalSteps) (epoch \(state.data.epoch + 1))")
        } else {
            try runner.prepare(state: &state, resuming: false, runDir: runDir, optimizer: optimizer)
        }
        model.train()
        var trainable = model.trainableParameters()
        // Biases and normalisation weights (all 1-D parameters) are not decayed, as is usual.
        func setNoDecay() {
            let noDecay = Set(trainable.filter { $0.parameter.value.rank <= 1 }.map(\.name))
            optimizer.noDecay = { noDecay.contains($0) }
        }
        setNoDecay()
        if !resume {
            let record = RunRecord(config: c, seed: c.seed, packageVersion: SculptVersion.current, classes: task.classes,
                                   trainExamples: n, validationExamples: task.validationCount, totalSteps: totalSteps,
                                   // s2ft's trainable blocks are copies of entries of frozen weights: counted once.
                                   parameters: model.namedParameters().filter { !$0.name.contains(".s2ft.") }.reduce(0) { $0 + $1.parameter.value.count },
                                   trainableParameters: trainable.reduce(0) { $0 + $1.parameter.value.count })
            try RunJSON.write(record, to: runDir.runJSON)
            let phases = runner.fullPhaseSteps > 0 ? " (\(runner.fullPhaseSteps) full, then \(methodSteps) sparse)" : ""
            hooks.progress?.line("training \(task.kind) (\(record.trainableParameters) of \(record.parameters) parameters train, method \(method.name)) on \(n) examples, \(record.validationExamples) for validation; \(totalSteps) steps\(phases)")
        }
        /// Evaluations, best checkpoints and early stopping belong to the method's output:
        /// LT-SFT's full phase has none.
        func inFullPhase() -> Bool { runner.fullPhaseSteps > 0 && (state.sparsePhase ?? 0) == 0 }

        let metrics = MetricsLog(url: runDir.metrics)
        var permutation = task.epochOrder(state.data.permutation(count: n))
        var windowLoss = 0.0, windowSteps = 0, windowExamples = 0
        var windowStart = Date()
        let progressStart = Date(), progressStartStep = state.step
        var outcome = TrainResult.Outcome.completed

        func saveCheckpoint() throws {
            state.strategyState = strategy?.checkpointState()
            try Checkpoint.save(model: model, optimizer: optimizer, state: state, to: runDir.lastCheckpoint)
        }

        while state.data.epoch < c.epochs && !state.stoppedEarly {
            if hooks.stop?.isRaised == true {
                try saveCheckpoint()
                hooks.progress?.line("interrupted at step \(state.step): checkpoint saved; continue with --resume \(runDir.url.path)")
                outcome = .interrupted
                break
            }
            hooks.beforeStep?(state.step, model)
            // The examples of this optimiser step: up to gradAccum micro-batches.
            let first = state.data.position
            var groups: [[Int]] = []
            var pos = first
            while groups.count < c.gradAccum && pos < n {
                let end = min(n, pos + c.batchSize)
                groups.append(Array(permutation[pos..<end]))
                pos = end
            }
            let stepExamples = pos - first
            optimizer.learningRate = runner.learningRate(step: state.step, totalSteps: totalSteps, state: state, schedule: schedule)
            // Weighting each micro-batch by its share of the step's loss units (examples, or
            // target tokens) makes the accumulated gradient that of one batch holding them all.
            let units = groups.map { task.lossUnits($0) }
            let stepUnits = max(1, units.reduce(0, +))
            var lossSum = 0.0
            for (g, u) in zip(groups, units) {
                lossSum += task.accumulate(g, weight: Float(u) / Float(stepUnits), step: state.step) * Double(u)
            }
            let loss = lossSum / Double(stepUnits)
            guard loss.isFinite else {
                model.zeroGrad()
                hooks.progress?.finish()
                let kept = FileManager.default.fileExists(atPath: runDir.lastCheckpoint.path)
                    ? "the last good checkpoint is kept at \(runDir.lastCheckpoint.path)" : "no checkpoint had been written yet"
                throw TuneError("loss became \(loss) at step \(state.step + 1) (epoch \(state.data.epoch + 1)); training stopped, \(kept)")
            }
            runner.maskGradients(optimizer)
            if c.clipNorm > 0 { clipGradientNorm(trainable, maxNorm: Float(c.clipNorm)) }
            optimizer.step(trainable)
            model.zeroGrad()

            state.step += 1
            state.data.position = pos
            let epochEnded = pos >= n
            if epochEnded {
                state.data.epoch += 1
                state.data.position = 0
                permutation = task.epochOrder(state.data.permutation(count: n))
            }
            windowLoss += loss; windowSteps += 1; windowExamples += stepExamples
            let epochFraction = Double(state.data.epoch) + Double(state.data.position) / Double(n)
            let now = Date()
            let rate = Double(windowExamples) / max(1e-9, now.timeIntervalSince(windowStart))
            let overallRate = Double(state.step - progressStartStep) / max(1e-9, now.timeIntervalSince(progressStart))
            hooks.progress?.update(step: state.step, total: totalSteps, epoch: min(state.data.epoch, c.epochs - 1), loss: loss,
                                   examplesPerSecond: rate, eta: Double(totalSteps - state.step) / max(overallRate, 1e-9))
            if c.logEvery > 0 && (state.step % c.logEvery == 0 || state.step == totalSteps) {
                var r = MetricsRecord(step: state.step, epoch: epochFraction)
                r.loss = windowLoss / Double(windowSteps)
                r.lr = Double(optimizer.learningRate)
                r.examplesPerSecond = rate
                try metrics.append(r)
                windowLoss = 0; windowSteps = 0; windowExamples = 0; windowStart = now
            }

            var phaseSwitched = false
            if inFullPhase() && state.step >= runner.fullPhaseSteps {
                try runner.switchToSparsePhase(state: &state, runDir: runDir, optimizer: optimizer)
                trainable = model.trainableParameters()
                setNoDecay()
                // The sparse phase runs its own epochs over a fresh data order.
                state.data = DataOrderState(seed: c.seed &+ 1)
                permutation = task.epochOrder(state.data.permutation(count: n))
                phaseSwitched = true
                hooks.progress?.line("step \(state.step): full phase done; training \(runner.support?.count ?? 0) selected entries from the pre-trained weights")
            }
            let evaluate = inFullPhase() || phaseSwitched ? false
                : c.evalEvery > 0 ? state.step % c.evalEvery == 0 || state.step == totalSteps : epochEnded
            if evaluate, let result = task.evaluate() {
                var r = MetricsRecord(step: state.step, epoch: epochFraction)
                r.valAccuracy = result.accuracy
                r.valLoss = result.loss
                try metrics.append(r)
                var note = "step \(state.step): " + result.note
                let better = result.accuracy.map { $0 > (state.bestAccuracy ?? -1) } ?? (result.loss < (state.bestLoss ?? .infinity))
                if better {
                    if let a = result.accuracy { state.bestAccuracy = a } else { state.bestLoss = result.loss }
                    state.bestStep = state.step
                    state.evaluationsWithoutImprovement = 0
                    try Checkpoint.saveWeights(model, to: runDir.bestCheckpoint)
                    note += " (best)"
                } else {
                    state.evaluationsWithoutImprovement += 1
                    if c.patience > 0 && state.evaluationsWithoutImprovement >= c.patience {
                        state.stoppedEarly = true
                        note += "; no improvement in \(c.patience) evaluations, stopping early"
                    }
                }
                hooks.progress?.line(note)
            }
            let checkpoint = c.checkpointEvery > 0 ? state.step % c.checkpointEvery == 0 : (evaluate || epochEnded)
            if checkpoint || phaseSwitched || state.stoppedEarly || state.data.epoch >= c.epochs { try saveCheckpoint() }
            if let k = hooks.abandonAfterStep, state.step >= k {
                return TrainResult(outcome: .abandoned, steps: state.step, totalSteps: totalSteps, runDirectory: runDir.url, validation: nil,
                                   bestAccuracy: state.bestAccuracy, labels: task.labels, seconds: Date().timeIntervalSince(start))
            }
        }
        hooks.progress?.finish()
        if state.stoppedEarly { outcome = .stoppedEarly }

        var validation: EvalResult? = nil
        var validationLoss: Double? = nil
        if outcome != .interrupted {
            // The final model is the best one by validation when there is validation data.
            if task.validationCount > 0, strategy?.finalIsLastState != true, FileManager.default.fileExists(atPath: runDir.bestCheckpoint.path) {
                try Checkpoint.loadWeights(runDir.bestCheckpoint, into: model)
            }
            if let classification = task as? ClassificationTask { validation = classification.finalValidation() } else { validationLoss = task.evaluate()?.loss }
            try runner.saveFinal(to: runDir.final)
            try task.finish()
        }
        try? TrainingCurve.write(metrics: MetricsLog.read(runDir.metrics), to: runDir.curve)
        var result = TrainResult(outcome: outcome, steps: state.step, totalSteps: totalSteps, runDirectory: runDir.url, validation: validation,
                                 bestAccuracy: state.bestAccuracy, labels: task.labels, seconds: Date().timeIntervalSince(start))
        result.validationLoss = validationLoss
        return result
    }
}
