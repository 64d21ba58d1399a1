import SculptCore
import SculptNN

/// A basic residual block (ResNet's): conv3×3–BN–ReLU–conv3×3–BN plus a shortcut (a 1×1
/// strided conv + BN when the shape changes), then ReLU.
public final class ResidualBlock: Layer {
    public var training = true
    public let conv1: Conv2d, bn1: BatchNorm2d, conv2: Conv2d, bn2: BatchNorm2d
    public let shortcut: Sequential?
    /// Elastic depth: a skipped block is the identity. Only blocks whose shortcut is the
    /// identity (not the first of a stage) may be skipped, so shapes still agree.
    public var skipped = false

    public init(_ inChannels: Int, _ outChannels: Int, stride: Int, using rng: inout SeededRNG) {
        conv1 = Conv2d(inChannels, outChannels, kernel: 3, stride: stride, padding: 1, bias: false, using: &rng)
        bn1 = BatchNorm2d(outChannels)
        conv2 = Conv2d(outChannels, outChannels, kernel: 3, stride: 1, padding: 1, bias: false, using: &rng)
        bn2 = BatchNorm2d(outChannels)
        shortcut = (stride != 1 || inChannels != outChannels)
            ? Sequential([Conv2d(inChannels, outChannels, kernel: 1, stride: stride, bias: false, using: &rng), BatchNorm2d(outChannels)])
            : nil
    }

    public var children: [(String, any Module)] {
        var c: [(String, any Module)] = [("conv1", conv1), ("bn1", bn1), ("conv2", conv2), ("bn2", bn2)]
        if let s = shortcut { c.append(("shortcut", s)) }
        return c
    }

    public func callAsFunction(_ x: Variable) -> Variable {
        if skipped { return x }
        let y = bn2(conv2(bn1(conv1(x)).relu()))
        return (y + (shortcut.map { $0(x) } ?? x)).relu()
    }
}

/// A small ResNet for 1-channel images: a 3×3 stem at full resolution, then stages of
/// `depth` residual blocks (two by default, `--stages` for more: width w at 1/2 resolution,
/// 2w at 1/4, 4w at 1/8…; each stage starts with a stride-2 block), global average pooling
/// and a linear classifier. Downsampling early keeps
/// the cost low enough for CPU training (≈1.7 M MACs per 28×28 image at w = 16, depth 1).
/// An extracted sub-network gives each stage its own channels and block count
/// (`spec.stageChannels`, `spec.stageBlocks`); the stem has the first stage's channels.
public final class ImageCNN: Classifier {
    public var training = true
    public let spec: ClassifierSpec
    public let stem: Sequential
    public let stages: Sequential
    public let classifier: Linear
    /// Output channels and residual blocks of each stage; `stages.layers` holds the blocks of
    /// stage 0, then of stage 1, then the global pooling.
    public let stageChannels: [Int]
    public let stageBlocks: [Int]

    public init(spec: ClassifierSpec, seed: UInt64) {
        self.spec = spec
        var rng = SeededRNG(seed: seed)
        let w = spec.width
        stageChannels = spec.stageChannels ?? [w, 2 * w]
        stageBlocks = spec.stageBlocks ?? Array(repeating: max(1, spec.depth), count: stageChannels.count)
        stem = Sequential([Conv2d(1, stageChannels[0], kernel: 3, padding: 1, bias: false, using: &rng), BatchNorm2d(stageChannels[0]), Activation(.relu)])
        var blocks: [any Layer] = []
        var channels = stageChannels[0]
        for (out, count) in zip(stageChannels, stageBlocks) {
            for b in 0..<max(1, count) {
                blocks.append(ResidualBlock(channels, out, stride: b == 0 ? 2 : 1, using: &rng))
                channels = out
            }
        }
        stages = Sequential(blocks + [Activation(.globalAveragePool)])
        classifier = Linear(channels, spec.classes, using: &rng)
    }

    public var children: [(String, any Module)] { [("stem", stem), ("stages", stages), ("classifier", classifier)] }

    /// The residual blocks of each stage.
    public var blocksByStage: [[ResidualBlock]] {
        let all = stages.layers.compactMap { $0 as? ResidualBlock }
        var out: [[ResidualBlock]] = [], start = 0
        for n in stageBlocks { out.append(Array(all[start..<(start + n)])); start += n }
        return out
    }

    public func logits(_ input: BatchInput) -> Variable { classifier(stages(stem(Variable(imageTensor(input, model: "cnn"))))) }
}
