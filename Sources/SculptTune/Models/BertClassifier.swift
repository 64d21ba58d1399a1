import Foundation
import SculptCore
import SculptNN
import SculptIO
import SculptModels

/// A pre-trained BERT encoder with a new linear head on pooled features. Children are named
/// `bert` and `classifier`, as in transformers' BertForSequenceClassification.
public final class BertClassifier: Classifier {
    public var training = true
    public let spec: ClassifierSpec
    public let bert: BertModel
    public let classifier: Linear

    /// How a new head starts.
    public enum HeadInit: String, Sendable, CaseIterable {
        /// N(0, initializer_range) weights and zero bias, as transformers initialises
        /// BertForSequenceClassification's classifier.
        case transformers
        /// torch.nn.Linear's default: weights and bias U(−1/√in, 1/√in).
        case torch
    }

    public init(bert: BertModel, spec: ClassifierSpec, seed: UInt64, headInit: HeadInit = .transformers) {
        self.bert = bert
        self.spec = spec
        var rng = SeededRNG(seed: seed)
        let shape = [spec.classes, bert.config.hiddenSize]
        switch headInit {
        case .transformers:
            classifier = Linear(weight: Tensor.randomNormal(shape, std: Float(bert.config.initializerRange), using: &rng), bias: Tensor.zeros([spec.classes]))
        case .torch:
            let bound = 1 / Float(bert.config.hiddenSize).squareRoot()
            let w = Tensor.randomUniform(shape, low: -bound, high: bound, using: &rng)
            classifier = Linear(weight: w, bias: Tensor.randomUniform([spec.classes], low: -bound, high: bound, using: &rng))
        }
    }

    public var children: [(String, any Module)] { [("bert", bert), ("classifier", classifier)] }

    public func logits(_ input: BatchInput) -> Variable {
        guard case .tokens(let batch) = input else { preconditionFailure("bert classifier: expects token batches, got images") }
        let hidden = bert(batch)
        let features: Variable
        if spec.pooling == "cls" {
            features = hidden.slice(axis: 1, 0..<1).reshaped([batch.batchSize, hidden.shape[2]])
        } else {
            features = maskedMeanPool(hidden, mask: batch.maskTensor)
        }
        return classifier(features)
    }
}
