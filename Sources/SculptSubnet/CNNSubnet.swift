import Foundation
import SculptModels
import SculptCore
import SculptNN
import SculptTune

/// A CNN sub-network: in each stage the first `blocks[s]` residual blocks and the leading
/// `channels[s]` channels of the shared weights (the stem has the first stage's channels).
/// JSON: `{"blocks": [2, 1], "channels": [8, 16]}`.
public struct CNNSubnet: Codable, Sendable, Equatable, Hashable, CompactJSON {
    public var blocks: [Int]
    public var channels: [Int]

    public init(blocks: [Int], channels: [Int]) {
        self.blocks = blocks
        self.channels = channels
    }

}

/// The elastic dimensions of an `ImageCNN`: blocks per stage (the first block of a stage,
/// which changes resolution and width, always stays) and channels per stage.
public struct CNNSearchSpace: Codable, Sendable, Equatable {
    public var blockChoices: [[Int]]
    public var channelChoices: [[Int]]

    public init(blockChoices: [[Int]], channelChoices: [[Int]]) {
        self.blockChoices = blockChoices.map { $0.sorted() }
        self.channelChoices = channelChoices.map { $0.sorted() }
    }

    public var stages: Int { channelChoices.count }

    /// Every block count from 1, and channels in `widthFractions` (quarters) of each stage's width.
    public static func standard(for cnn: ImageCNN, widthFractions: [Double] = SubnetSpace.standardWidthFractions) -> CNNSearchSpace {
        CNNSearchSpace(blockChoices: cnn.stageBlocks.map { Array(1...$0) },
                       channelChoices: cnn.stageChannels.map { SubnetSpace.widthChoices($0, widthFractions) })
    }

    public var largest: CNNSubnet { CNNSubnet(blocks: blockChoices.map { $0.last! }, channels: channelChoices.map { $0.last! }) }
    public var smallest: CNNSubnet { CNNSubnet(blocks: blockChoices.map { $0.first! }, channels: channelChoices.map { $0.first! }) }

    public func sample(using rng: inout SeededRNG) -> CNNSubnet {
        CNNSubnet(blocks: blockChoices.map { $0[Int(rng.next() % UInt64($0.count))] },
                  channels: channelChoices.map { $0[Int(rng.next() % UInt64($0.count))] })
    }

    public func validate(_ s: CNNSubnet) throws {
        guard s.blocks.count == stages else { throw SubnetError(field: "blocks", message: "has \(s.blocks.count) entries for \(stages) stages") }
        guard s.channels.count == stages else { throw SubnetError(field: "channels", message: "has \(s.channels.count) entries for \(stages) stages") }
        for (i, b) in s.blocks.enumerated() where !blockChoices[i].contains(b) {
            throw SubnetError(field: "blocks[\(i)]", message: "\(b) is not one of \(blockChoices[i])")
        }
        for (i, c) in s.channels.enumerated() where !channelChoices[i].contains(c) {
            throw SubnetError(field: "channels[\(i)]", message: "\(c) is not one of \(channelChoices[i])")
        }
    }

    /// Parses a sub-network from JSON, rejecting unknown fields, then validates it. A single
    /// number for a field means the same in every stage.
    public func parse(_ text: String) throws -> CNNSubnet {
        let obj = try SubnetJSONObject.parse(text, known: ["blocks", "channels"])
        let s = CNNSubnet(blocks: try SubnetJSONObject.integers(obj, "blocks", repeating: stages),
                          channels: try SubnetJSONObject.integers(obj, "channels", repeating: stages))
        try validate(s)
        return s
    }

    /// Integer encoding for search: the choice index of each stage's blocks, then channels.
    public func encode(_ s: CNNSubnet) -> [Int] {
        s.blocks.enumerated().map { blockChoices[$0.offset].firstIndex(of: $0.element) ?? -1 }
            + s.channels.enumerated().map { channelChoices[$0.offset].firstIndex(of: $0.element) ?? -1 }
    }

    public func decode(_ e: [Int]) throws -> CNNSubnet {
        guard e.count == 2 * stages else { throw SubnetError(field: "encoding", message: "\(e) does not fit this space") }
        func pick(_ choices: [Int], _ i: Int, _ field: String) throws -> Int {
            guard choices.indices.contains(i) else { throw SubnetError(field: field, message: "index \(i) out of range") }
            return choices[i]
        }
        return CNNSubnet(blocks: try (0..<stages).map { try pick(blockChoices[$0], e[$0], "blocks[\($0)]") },
                         channels: try (0..<stages).map { try pick(channelChoices[$0], e[stages + $0], "channels[\($0)]") })
    }
}

extension ImageCNN {
    var stemConv: Conv2d { stem.layers[0] as! Conv2d }
    var stemNorm: BatchNorm2d { stem.layers[1] as! BatchNorm2d }

    /// Makes the forward pass use `subnet`'s leading channel slices of the shared conv / BN
    /// weights and skip the blocks beyond its depth (nil: the whole model).
    public func activate(_ subnet: CNNSubnet?) {
        var inC = subnet?.channels[0]
        stemConv.activeOutChannels = inC
        stemNorm.activeChannels = inC
        for (s, blocks) in blocksByStage.enumerated() {
            let c = subnet?.channels[s]
            for (b, block) in blocks.enumerated() {
                block.skipped = subnet.map { b >= $0.blocks[s] } ?? false
                block.conv1.activeInChannels = inC
                block.conv1.activeOutChannels = c
                block.bn1.activeChannels = c
                block.conv2.activeInChannels = c
                block.conv2.activeOutChannels = c
                block.bn2.activeChannels = c
                if let sc = block.shortcut {
                    (sc.layers[0] as! Conv2d).activeInChannels = inC
                    (sc.layers[0] as! Conv2d).activeOutChannels = c
                    (sc.layers[1] as! BatchNorm2d).activeChannels = c
                }
                inC = c
            }
        }
        classifier.activeInFeatures = inC
    }

    /// Copies `subnet` out as a dense, smaller `ImageCNN` whose spec records the per-stage
    /// channels and blocks (so `ClassifierStore.load` rebuilds it). Running statistics are
    /// copied too: recalibrate the super-network for `subnet` first.
    public func extract(_ subnet: CNNSubnet) throws -> ImageCNN {
        var s = spec
        s.stageChannels = subnet.channels
        s.stageBlocks = subnet.blocks
        s.width = subnet.channels[0]
        s.depth = subnet.blocks.max() ?? 1
        let small = ImageCNN(spec: s, seed: 0)
        // Block k of stage s in the small model is block k of that stage in the super-network.
        var blockMap: [Int: Int] = [:]
        var smallIndex = 0, superStart = 0
        for (st, n) in stageBlocks.enumerated() {
            for b in 0..<subnet.blocks[st] { blockMap[smallIndex] = superStart + b; smallIndex += 1 }
            superStart += n
        }
        let full = stateDict()
        var values: [String: Tensor] = [:]
        for (name, target) in small.stateDict() {
            var source = name
            if name.hasPrefix("stages.") {
                let parts = name.split(separator: ".", maxSplits: 2)
                let i = Int(parts[1])!
                source = "stages.\(blockMap[i]!).\(parts[2])"
            }
            guard var t = full[source] else { continue }
            for axis in 0..<t.rank where t.shape[axis] > target.shape[axis] { t = t.slice(axis: axis, 0..<target.shape[axis]) }
            values[name] = t
        }
        let report = try small.update(from: values)
        precondition(report.missing.isEmpty, "extract: no source for \(report.missing)")
        return small
    }

    /// Multiply–accumulates per image and parameters of `subnet` (convolutions and the
    /// classifier; BatchNorm and pooling add no MACs worth counting).
    public func cost(_ subnet: CNNSubnet) -> (macs: Int, params: Int) {
        var h = spec.imageHeight, w = spec.imageWidth
        var inC = subnet.channels[0]
        var macs = 9 * inC * h * w, params = 9 * inC + 2 * inC
        for (s, c) in subnet.channels.enumerated() {
            for b in 0..<subnet.blocks[s] {
                if b == 0 { h = (h - 1) / 2 + 1; w = (w - 1) / 2 + 1 }
                macs += 9 * (inC + c) * c * h * w
                params += 9 * (inC + c) * c + 4 * c
                if b == 0 { macs += inC * c * h * w; params += inC * c + 2 * c }
                inC = c
            }
        }
        return (macs + inC * spec.classes, params + inC * spec.classes + spec.classes)
    }
}

/// Every BatchNorm2d of a model.
func batchNorms(_ model: any Module) -> [BatchNorm2d] {
    var out: [BatchNorm2d] = []
    model.visitModules { _, m in if let bn = m as? BatchNorm2d { out.append(bn) } }
    return out
}

/// BatchNorm recalibration: running statistics collected during weight-sharing training mix
/// every sub-network's activations, so before a sub-network is evaluated or extracted its
/// statistics are reset and re-estimated as the plain average over `batches` forwarded in
/// training mode without gradients. The model's mode is restored afterwards (the training
/// loop evaluates mid-run and must continue in training mode).
public func recalibrateBatchNorm(_ model: any Classifier, batches: [BatchInput]) {
    let norms = batchNorms(model)
    guard !norms.isEmpty else { return }
    let wasTraining = model.training
    for bn in norms { bn.resetRunningStatistics(); bn.cumulativeBatches = 0 }
    model.train()
    withoutGradients { for b in batches { _ = model.logits(b) } }
    for bn in norms { bn.cumulativeBatches = nil }
    model.setTraining(wasTraining)
}

/// The first `count` batches of `data` in a fixed seeded order (calibration and checks use
/// the same images every time, so results repeat).
public func calibrationBatches(_ data: ClassificationData, count: Int, batchSize: Int, padId: Int32 = 0, seed: UInt64 = 0) -> [BatchInput] {
    var rng = SeededRNG(seed: seed ^ 0xCA11_B8A7E)
    var order = Array(0..<data.count)
    order.shuffle(using: &rng)
    return stride(from: 0, to: min(data.count, count * batchSize), by: batchSize).map {
        data.batch(Array(order[$0..<min(data.count, $0 + batchSize)]), padId: padId).input
    }
}

/// Runs the super-network with `subnet` active and the extracted model on the same input in
/// evaluation mode and returns the largest difference of their logits.
public func checkExtraction(superNetwork: ImageCNN, subnet: CNNSubnet, extracted: ImageCNN, input: BatchInput) -> ExtractionCheck {
    superNetwork.eval()
    extracted.eval()
    superNetwork.activate(subnet)
    defer { superNetwork.activate(nil) }
    let a = withoutGradients { superNetwork.logits(input) }.value
    let b = withoutGradients { extracted.logits(input) }.value
    var worst: Float = 0
    for i in 0..<a.count { worst = max(worst, abs(a[flat: i] - b[flat: i])) }
    return ExtractionCheck(maxAbsDifference: worst, tokens: a.shape[0])
}
