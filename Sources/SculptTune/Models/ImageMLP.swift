import SculptCore
import SculptNN

/// Flatten → hidden layers (Linear → ReLU) → Linear to the classes. The hidden layers are
/// `depth` × `width` units, or `spec.hiddenWidths` (an extracted sub-network).
public final class ImageMLP: Classifier {
    public var training = true
    public let spec: ClassifierSpec
    public let body: Sequential
    public let classifier: Linear
    /// Units of each hidden layer.
    public let hiddenWidths: [Int]
    /// Elastic depth: when set, only the first `activeLayers` hidden layers run and the
    /// classifier reads the last of them (through its leading input columns).
    public var activeLayers: Int?

    public init(spec: ClassifierSpec, seed: UInt64) {
        self.spec = spec
        var rng = SeededRNG(seed: seed)
        hiddenWidths = spec.hiddenWidths ?? Array(repeating: spec.width, count: max(0, spec.depth))
        var layers: [any Layer] = [Activation(.flatten)]
        var inputs = spec.imageHeight * spec.imageWidth
        for w in hiddenWidths {
            layers.append(Linear(inputs, w, using: &rng))
            layers.append(Activation(.relu))
            inputs = w
        }
        body = Sequential(layers)
        classifier = Linear(inputs, spec.classes, using: &rng)
    }

    public var children: [(String, any Module)] { [("body", body), ("classifier", classifier)] }

    /// The hidden layers' Linears, in order (`body.1`, `body.3`, …).
    public var hiddenLayers: [Linear] { body.layers.compactMap { $0 as? Linear } }

    public func logits(_ input: BatchInput) -> Variable {
        var x = Variable(imageTensor(input, model: "mlp"))
        guard let n = activeLayers else { return classifier(body(x)) }
        for layer in body.layers.prefix(1 + 2 * n) { x = layer(x) }
        return classifier(x)
    }
}
