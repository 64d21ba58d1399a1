import Foundation
import SculptCore
import SculptNN
import SculptIO

/// What the training loop needs from a model: logits for a batch. Every classifier names its
/// new output layer `classifier`, so methods (BitFit, LoRA) can always keep the head trainable.
public protocol Classifier: Module {
    var spec: ClassifierSpec { get }
    func logits(_ input: BatchInput) -> Variable
}

/// Enough to rebuild a classifier from a saved directory (`classifier.json`).
public struct ClassifierSpec: Codable, Sendable, Equatable {
    public enum Kind: String, Codable, Sendable { case cnn, mlp, bert }
    public var kind: Kind
    public var classes: Int
    /// CNN: channels of the first stage; MLP: hidden units.
    public var width: Int = 0
    /// CNN: residual blocks per stage; MLP: hidden layers.
    public var depth: Int = 0
    /// CNN: per-stage output channels and residual blocks when they are not the uniform
    /// [width, 2·width] × depth (an extracted sub-network); nil in older files.
    public var stageChannels: [Int]? = nil
    public var stageBlocks: [Int]? = nil
    /// MLP: per-layer hidden units when they are not `depth` × `width` (an extracted
    /// sub-network); nil in older files.
    public var hiddenWidths: [Int]? = nil
    public var imageHeight: Int = 0
    public var imageWidth: Int = 0
    /// BERT: "mean" (attention-masked mean of the last hidden state) or "cls" (first token).
    public var pooling: String = "mean"
    public var maxLength: Int = 128
    public var textField: String = "text"
    public var labelField: String = "label"

    public init(kind: Kind, classes: Int) {
        self.kind = kind
        self.classes = classes
    }

    public func write(to url: URL) throws {
        try RunJSON.write(self, to: url)
    }

    public static func read(from url: URL) throws -> ClassifierSpec {
        guard let data = try? Data(contentsOf: url) else { throw TuneError("\(url.path): cannot read the classifier description") }
        do { return try JSONDecoder().decode(ClassifierSpec.self, from: data) } catch {
            throw TuneError("\(url.path): not a classifier description (\(error))")
        }
    }
}

/// The image side of a batch, or a clear failure when a text batch reaches an image model.
func imageTensor(_ input: BatchInput, model: String) -> Tensor {
    guard case .images(let t) = input else { preconditionFailure("\(model): expects image batches, got token batches") }
    return t
}
