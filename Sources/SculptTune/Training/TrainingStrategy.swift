import Foundation
import SculptCore
import SculptNN

/// What a training strategy sees of the run it joins.
public struct StrategyContext {
    public let config: TrainConfig
    public let data: PreparedData
    public let runDirectory: RunDirectory
    public let totalSteps: Int
    public let stepsPerEpoch: Int
    public let padId: Int32
    public let resume: Bool
}

/// A way of computing a step's gradients other than cross-entropy of the whole model, such as
/// elastic super-network training or learned gates (SculptSubnet implements them; SculptTune
/// cannot import it). The loop is unchanged around it: data order, accumulation, clipping,
/// the optimiser, checkpoints and evaluation stay the loop's, so every method shares them.
public protocol TrainingStrategy: AnyObject {
    /// After the model is built and the method has set what trains, before the optimiser
    /// collects the trainable parameters (a strategy may add parameters or permute units).
    func prepare(model: any Classifier, context: StrategyContext) throws
    /// True when the run's final model is its end-of-training state rather than the best
    /// validation checkpoint (validation sees only one configuration of a super-network,
    /// while the others keep improving after it peaks; gates reach their target at the end).
    var finalIsLastState: Bool { get }
    /// Forward and backward for one micro-batch with its gradients scaled by `weight`;
    /// returns the loss to log. `step` counts optimiser steps done so far.
    func accumulate(model: any Classifier, batch: Batch, weight: Float, step: Int) -> Double
    /// Before each validation and before the final model is saved (e.g. activate the largest
    /// sub-network and recalibrate BatchNorm).
    func beforeEvaluation(model: any Classifier)
    /// State carried in checkpoints so a resumed run continues exactly (JSON; nil for none).
    func checkpointState() -> String?
    func restore(checkpointState: String?) throws
    /// After `final/` is written: the strategy's own files (search space, extracted model).
    func finish(model: any Classifier, labels: LabelVocabulary) throws
}
