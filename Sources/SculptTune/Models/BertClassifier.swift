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

    public init(bert: BertModel, spec: ClassifierSpec, seed: UInt64) {
        self.bert = bert
        self.spec = spec
        var rng = SeededRNG(seed: seed)
        // transformers initialises a new head with N(0, initializer_range) and zero bias.
        let w = Tensor.randomNormal([spec.classes, bert.config.hiddenSize], std: Float(bert.config.initializerRange), using: &rng)
        classifier = Linear(weight: w, bias: Tensor.zeros([spec.classes]))
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
