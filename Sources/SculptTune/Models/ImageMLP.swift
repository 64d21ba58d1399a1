import SculptCore
import SculptNN

/// Flatten → `depth` × (Linear → ReLU) → Linear to the classes.
public final class ImageMLP: Classifier {
    public var training = true
    public let spec: ClassifierSpec
    public let body: Sequential
    public let classifier: Linear

    public init(spec: ClassifierSpec, seed: UInt64) {
        self.spec = spec
        var rng = SeededRNG(seed: seed)
        var layers: [any Layer] = [Activation(.flatten)]
        var inputs = spec.imageHeight * spec.imageWidth
        for _ in 0..<max(0, spec.depth) {
            layers.append(Linear(inputs, spec.width, using: &rng))
            layers.append(Activation(.relu))
            inputs = spec.width
        }
        body = Sequential(layers)
        classifier = Linear(inputs, spec.classes, using: &rng)
    }

    public var children: [(String, any Module)] { [("body", body), ("classifier", classifier)] }

    public func logits(_ input: BatchInput) -> Variable { classifier(body(Variable(imageTensor(input, model: "mlp")))) }
}
