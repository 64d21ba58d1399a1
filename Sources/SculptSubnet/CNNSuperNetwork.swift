import Foundation
import SculptCore
import SculptNN
import SculptSearch
import SculptTune

/// `CNNSearchSpace` as the generic search's `SearchSpace`: dimensions `blocks.s` then
/// `channels.s` for every stage s, none conditional. The order is that of
/// `CNNSearchSpace.encode`, so both encodings are the same integer vector.
extension CNNSearchSpace {
    public func searchSpace(context: String? = nil) -> SearchSpace {
        let dims = blockChoices.enumerated().map { SculptSearch.Dimension(name: "blocks.\($0.offset)", choices: $0.element) }
            + channelChoices.enumerated().map { SculptSearch.Dimension(name: "channels.\($0.offset)", choices: $0.element) }
        // Force-try is safe: distinct names, non-empty choices, no dependencies.
        return try! SearchSpace(dimensions: dims, context: context)
    }

    /// The CNN space a generic space describes (e.g. one read back from a store), or nil.
    public init?(searchSpace s: SearchSpace) {
        guard s.count >= 2, s.count % 2 == 0 else { return nil }
        let n = s.count / 2
        let blocks = s.dimensions[..<n], channels = s.dimensions[n...]
        guard blocks.enumerated().allSatisfy({ $0.element.name == "blocks.\($0.offset)" && $0.element.activeWhen == nil }),
              channels.enumerated().allSatisfy({ $0.element.name == "channels.\($0.offset)" && $0.element.activeWhen == nil }) else { return nil }
        self.init(blockChoices: blocks.map(\.choices), channelChoices: channels.map(\.choices))
    }

    /// The sub-network of a generic encoding, checked against the space first.
    public func subnet(fromSearchEncoding e: [Int]) throws -> CNNSubnet {
        try searchSpace().check(e)
        return try decode(e)
    }
}

extension ImageCNN {
    /// `subnet` as a dense model with BatchNorm statistics re-estimated for it on
    /// `calibration` (the super-network's own statistics are left as the calibration set them).
    /// What a sub-network's accuracy is measured on, by search, listing and extraction alike.
    public func recalibratedExtraction(_ subnet: CNNSubnet, calibration: [BatchInput]) throws -> ImageCNN {
        activate(subnet)
        recalibrateBatchNorm(self, batches: calibration)
        activate(nil)
        let small = try extract(subnet)
        small.eval()
        return small
    }
}

/// An image CNN as a super-network of its standard space (blocks and channels per stage).
///
/// Accuracy is measured on the sub-network's dense extraction after BatchNorm recalibration
/// on a fixed set of the run's training batches (the same batches `sculpt subnets --eval` and
/// `sculpt extract` use); latency is measured directly on that dense model, as deployed.
public final class CNNSuperNetwork: SuperNetwork {
    public let cnn: ImageCNN
    public let space: CNNSearchSpace
    public let searchSpace: SearchSpace
    public let identity: String
    /// Training batches for BatchNorm recalibration (nil: accuracy cannot be measured).
    public let calibration: [BatchInput]?
    public var kind: String { "cnn" }

    /// `space`: the run's recorded space (nil: the standard one).
    public init(cnn: ImageCNN, reorder: Bool, calibration: [BatchInput]?, weightsDirectory: URL? = nil, space: CNNSearchSpace? = nil) {
        self.cnn = cnn
        if reorder { cnn.reorderChannelsByImportance() }
        self.calibration = calibration
        self.space = space ?? CNNSearchSpace.standard(for: cnn)
        searchSpace = self.space.searchSpace()
        cnn.eval()
        var parts = ["cnn", "reorder=\(reorder ? "bn-gamma" : "none")"]
        if let dir = weightsDirectory { parts.append(fileStamp(dir.appendingPathComponent("model.safetensors"))) }
        identity = parts.joined(separator: " ")
    }

    public func subnet(_ encoding: [Int]) throws -> CNNSubnet { try space.subnet(fromSearchEncoding: encoding) }

    public func subnetJSON(_ encoding: [Int]) throws -> String { try subnet(encoding).json }

    public func activate(_ encoding: [Int]?) throws { cnn.activate(try encoding.map(subnet)) }

    /// Per image (the setting's batch and sequence do not change it).
    public func macs(_ encoding: [Int], setting: LatencySetting) throws -> Double { Double(cnn.cost(try subnet(encoding)).macs) }

    public func params(_ encoding: [Int]) throws -> Double { Double(cnn.cost(try subnet(encoding)).params) }

    public func evaluate(_ encoding: [Int], on data: ClassificationData, batchSize: Int) throws -> EvalResult {
        guard let calibration else {
            throw SuperNetworkError("CNN accuracy needs the run's training data for BatchNorm recalibration (run.json's data could not be read)")
        }
        let small = try cnn.recalibratedExtraction(try subnet(encoding), calibration: calibration)
        return Evaluator.evaluate(small, on: data, batchSize: batchSize)
    }

    func images(_ setting: LatencySetting, channels: Int = 1, height: Int? = nil, width: Int? = nil) -> Variable {
        var rng = SeededRNG(seed: 29)
        return Variable(Tensor.randomNormal([setting.batch, channels, height ?? cnn.spec.imageHeight, width ?? cnn.spec.imageWidth], using: &rng))
    }

    /// The dense extraction's forward pass (what a deployed sub-network runs; the super-network's
    /// sliced forward would also time the weight slicing).
    public func forwardProbe(_ encoding: [Int], setting: LatencySetting) throws -> () -> Void {
        let small = try cnn.extract(try subnet(encoding))
        small.eval()
        let input = BatchInput.images(images(setting).value)
        return { _ = withoutGradients { small.logits(input) } }
    }

    /// Spatial size at the input of stage `s` (each stage starts with a stride-2 block).
    func resolution(atStage s: Int) -> (Int, Int) {
        var h = cnn.spec.imageHeight, w = cnn.spec.imageWidth
        for _ in 0..<s { h = (h - 1) / 2 + 1; w = (w - 1) / 2 + 1 }
        return (h, w)
    }

    /// Parts: `stem.c`; a stage's first block by input and output channels, `stage{s}.block0.{in}-{c}`
    /// (stage 0's input is the stem, which has its channels); later blocks `stage{s}.block{k}.{c}`;
    /// pooling and classifier `head.{c}`.
    public func latencyParts(_ encoding: [Int]) throws -> [String] {
        let s = try subnet(encoding)
        var parts = ["stem.\(s.channels[0])"]
        var inC = s.channels[0]
        for (st, c) in s.channels.enumerated() {
            parts.append("stage\(st).block0.\(inC)-\(c)")
            for k in 1..<max(1, s.blocks[st]) { parts.append("stage\(st).block\(k).\(c)") }
            inC = c
        }
        return parts + ["head.\(inC)"]
    }

    public var allLatencyParts: [String] {
        var parts = space.channelChoices[0].map { "stem.\($0)" }
        for st in 0..<space.stages {
            let ins = st == 0 ? nil : space.channelChoices[st - 1]
            for c in space.channelChoices[st] {
                for i in ins ?? [c] { parts.append("stage\(st).block0.\(i)-\(c)") }
                for k in 1..<max(1, space.blockChoices[st].last!) { parts.append("stage\(st).block\(k).\(c)") }
            }
        }
        return parts + space.channelChoices.last!.map { "head.\($0)" }
    }

    /// One part of a dense extraction that contains it, on a random input of its shape.
    public func partProbe(_ part: String, setting: LatencySetting) throws -> () -> Void {
        let unknown = SuperNetworkError("unknown latency-table part \"\(part)\"")
        guard allLatencyParts.contains(part) else { throw unknown }
        let fields = part.split(separator: ".").map(String.init)
        var s = space.largest
        if fields[0] == "stem" || fields[0] == "head" {
            let c = Int(fields[1])!
            if fields[0] == "stem" { s.channels[0] = c } else { s.channels[space.stages - 1] = c }
            let small = try cnn.extract(s)
            small.eval()
            if fields[0] == "stem" {
                let x = images(setting)
                return { _ = withoutGradients { small.stem(x) } }
            }
            let (h, w) = resolution(atStage: space.stages)
            let x = images(setting, channels: c, height: h, width: w)
            let pool = small.stages.layers.last!
            return { _ = withoutGradients { small.classifier(pool(x)) } }
        }
        // stageS.blockK.C or stageS.block0.IN-C
        let st = Int(fields[0].dropFirst("stage".count))!, k = Int(fields[1].dropFirst("block".count))!
        let sizes = fields[2].split(separator: "-").map { Int($0)! }
        let c = sizes.last!, inC = sizes.first!
        s.channels[st] = c
        if k == 0 && st > 0 { s.channels[st - 1] = inC }
        let small = try cnn.extract(s)
        small.eval()
        let (h, w) = resolution(atStage: k == 0 ? st : st + 1)
        let x = images(setting, channels: k == 0 ? inC : c, height: h, width: w)
        let block = small.blocksByStage[st][k]
        return { _ = withoutGradients { block(x) } }
    }
}

/// "path:size:mtime" of a file: cheap, and changes whenever a run writes new weights.
func fileStamp(_ url: URL) -> String {
    let path = url.standardizedFileURL.path
    let attrs = try? FileManager.default.attributesOfItem(atPath: path)
    let size = (attrs?[.size] as? Int) ?? -1
    let mtime = (attrs?[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0
    return "\(path):\(size):\(Int(mtime))"
}
