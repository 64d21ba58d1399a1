import Foundation
import SculptModels
import SculptCore
import SculptNN
import SculptTune

/// An MLP sub-network: the first `layers` hidden layers, layer i keeping its leading
/// `widths[i]` units of the shared weights; the classifier reads the last kept layer through
/// its leading input columns. JSON: `{"layers": 2, "widths": [64, 32]}`.
public struct MLPSubnet: Codable, Sendable, Equatable, Hashable, CompactJSON {
    public var layers: Int
    public var widths: [Int]

    public init(layers: Int, widths: [Int]) {
        self.layers = layers
        self.widths = widths
    }

}

/// The elastic dimensions of an `ImageMLP`: hidden layers kept (from 1; only when every
/// hidden layer has the same width, so the classifier can read any of them) and units per
/// layer (quarters of the layer's width).
public struct MLPSearchSpace: Codable, Sendable, Equatable {
    public var layerChoices: [Int]
    /// Per hidden layer, its width choices.
    public var widthChoices: [[Int]]

    public init(layerChoices: [Int], widthChoices: [[Int]]) {
        self.layerChoices = layerChoices.sorted()
        self.widthChoices = widthChoices.map { $0.sorted() }
    }

    public var maxLayers: Int { widthChoices.count }

    public static func standard(for mlp: ImageMLP, widthFractions: [Double] = SubnetSpace.standardWidthFractions) -> MLPSearchSpace {
        let w = mlp.hiddenWidths
        let uniform = Set(w).count <= 1
        return MLPSearchSpace(layerChoices: uniform && !w.isEmpty ? Array(1...w.count) : [w.count],
                              widthChoices: w.map { SubnetSpace.widthChoices($0, widthFractions) })
    }

    public var largest: MLPSubnet { MLPSubnet(layers: layerChoices.last!, widths: widthChoices.prefix(layerChoices.last!).map { $0.last! }) }
    public var smallest: MLPSubnet { MLPSubnet(layers: layerChoices.first!, widths: widthChoices.prefix(layerChoices.first!).map { $0.first! }) }

    public func sample(using rng: inout SeededRNG) -> MLPSubnet {
        let l = layerChoices[Int(rng.next() % UInt64(layerChoices.count))]
        return MLPSubnet(layers: l, widths: widthChoices.prefix(l).map { $0[Int(rng.next() % UInt64($0.count))] })
    }

    public func validate(_ s: MLPSubnet) throws {
        guard layerChoices.contains(s.layers) else { throw SubnetError(field: "layers", message: "\(s.layers) is not one of \(layerChoices)") }
        guard s.widths.count == s.layers else {
            throw SubnetError(field: "widths", message: "has \(s.widths.count) entries for \(s.layers) layers")
        }
        for (i, w) in s.widths.enumerated() where !widthChoices[i].contains(w) {
            throw SubnetError(field: "widths[\(i)]", message: "\(w) is not one of \(widthChoices[i])")
        }
    }

    /// Parses a sub-network from JSON, rejecting unknown fields, then validates it. `layers`
    /// defaults to the largest choice; a single number for `widths` means every kept layer.
    public func parse(_ text: String) throws -> MLPSubnet {
        let obj = try SubnetJSONObject.parse(text, known: ["layers", "widths"])
        var layers = layerChoices.last!
        if let v = obj["layers"] {
            guard let n = v as? Int else { throw SubnetError(field: "layers", message: "must be an integer") }
            layers = n
        }
        let s = MLPSubnet(layers: layers, widths: try SubnetJSONObject.integers(obj, "widths", repeating: layers))
        try validate(s)
        return s
    }

    /// Integer encoding for search: the layers' choice index, then each layer's width index,
    /// slots of layers beyond the depth blanked to −1.
    public func encode(_ s: MLPSubnet) -> [Int] {
        [layerChoices.firstIndex(of: s.layers) ?? -1]
            + (0..<maxLayers).map { $0 < s.layers ? widthChoices[$0].firstIndex(of: s.widths[$0]) ?? -1 : -1 }
    }

    public func decode(_ e: [Int]) throws -> MLPSubnet {
        guard e.count == 1 + maxLayers, layerChoices.indices.contains(e[0]) else {
            throw SubnetError(field: "encoding", message: "\(e) does not fit this space")
        }
        let layers = layerChoices[e[0]]
        return MLPSubnet(layers: layers, widths: try (0..<layers).map { i in
            guard widthChoices[i].indices.contains(e[1 + i]) else { throw SubnetError(field: "widths[\(i)]", message: "index \(e[1 + i]) out of range") }
            return widthChoices[i][e[1 + i]]
        })
    }
}

extension ImageMLP {
    /// Makes the forward pass use `subnet`'s leading units and first layers (nil: the whole model).
    public func activate(_ subnet: MLPSubnet?) {
        activeLayers = subnet?.layers
        let hidden = hiddenLayers
        for (i, layer) in hidden.enumerated() {
            layer.activeOutFeatures = subnet.flatMap { i < $0.layers ? $0.widths[i] : nil }
            layer.activeInFeatures = subnet.flatMap { i > 0 && i < $0.layers ? $0.widths[i - 1] : nil }
        }
        classifier.activeInFeatures = subnet.flatMap { $0.layers > 0 ? $0.widths[$0.layers - 1] : nil }
    }

    /// Copies `subnet` out as a dense, smaller `ImageMLP` whose spec records its widths.
    public func extract(_ subnet: MLPSubnet) throws -> ImageMLP {
        var s = spec
        s.hiddenWidths = subnet.widths
        s.depth = subnet.layers
        s.width = subnet.widths.first ?? 0
        let small = ImageMLP(spec: s, seed: 0)
        let full = stateDict()
        var values: [String: Tensor] = [:]
        for (name, target) in small.stateDict() {
            guard var t = full[name] else { continue }
            for axis in 0..<t.rank where t.shape[axis] > target.shape[axis] { t = t.slice(axis: axis, 0..<target.shape[axis]) }
            values[name] = t
        }
        let report = try small.update(from: values)
        precondition(report.missing.isEmpty, "extract: no source for \(report.missing)")
        return small
    }

    /// Multiply–accumulates per image and parameters of `subnet`.
    public func cost(_ subnet: MLPSubnet) -> (macs: Int, params: Int) {
        var inputs = spec.imageHeight * spec.imageWidth, macs = 0, biases = 0
        for w in subnet.widths.prefix(subnet.layers) + [spec.classes] {
            macs += inputs * w
            biases += w
            inputs = w
        }
        return (macs, macs + biases)
    }
}

/// Runs the MLP with `subnet` active and the extracted model on the same input in evaluation
/// mode and returns the largest difference of their logits.
public func checkExtraction(superNetwork: ImageMLP, subnet: MLPSubnet, extracted: ImageMLP, input: BatchInput) -> ExtractionCheck {
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
