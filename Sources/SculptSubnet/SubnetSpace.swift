import Foundation
import SculptCore
import SculptNN
import SculptIO
import SculptModels
import SculptTune

/// A sub-network of any supported classifier.
public enum Subnet: Sendable, Hashable {
    case bert(BertSubnet)
    case cnn(CNNSubnet)
    case mlp(MLPSubnet)

    public var json: String {
        switch self { case .bert(let s): return s.json; case .cnn(let s): return s.json; case .mlp(let s): return s.json }
    }
}

/// The search space of a classifier's super-network: BERT (layers, heads, FFN width per
/// layer), CNN (blocks and channels per stage) or MLP (hidden layers and units per layer).
/// One interface so elastic training, gates, extraction and listing are written once.
public enum SubnetSpace: Sendable, Equatable {
    case bert(BertSearchSpace)
    case cnn(CNNSearchSpace)
    case mlp(MLPSearchSpace)

    public var kind: String { switch self { case .bert: return "bert"; case .cnn: return "cnn"; case .mlp: return "mlp" } }

    /// The standard width fractions: quarters of each dimension's full size.
    public static let standardWidthFractions: [Double] = [0.25, 0.5, 0.75, 1]

    /// The choices of one width dimension of full size `full`: those fractions of it.
    static func widthChoices(_ full: Int, _ fractions: [Double]) -> [Int] {
        Array(Set(fractions.map { max(1, Int(Double(full) * $0)) })).sorted()
    }

    /// The standard space of `model`; every width dimension (heads, FFN channels, CNN
    /// channels, MLP units) offers `widthFractions` of its full size.
    public static func standard(for model: any Classifier, widthFractions: [Double] = standardWidthFractions) throws -> SubnetSpace {
        if let b = model as? BertClassifier { return .bert(.standard(for: b.bert.config, widthFractions: widthFractions)) }
        if let c = model as? ImageCNN { return .cnn(.standard(for: c, widthFractions: widthFractions)) }
        if let m = model as? ImageMLP {
            guard !m.hiddenWidths.isEmpty else { throw TuneError("sub-networks need hidden layers; this MLP has none (--depth 0)") }
            return .mlp(.standard(for: m, widthFractions: widthFractions))
        }
        throw TuneError("sub-networks need a BERT, CNN or MLP classifier; \(model.spec.kind.rawValue) has no elastic dimensions")
    }

    public var largest: Subnet {
        switch self { case .bert(let s): return .bert(s.largest); case .cnn(let s): return .cnn(s.largest); case .mlp(let s): return .mlp(s.largest) }
    }
    public var smallest: Subnet {
        switch self { case .bert(let s): return .bert(s.smallest); case .cnn(let s): return .cnn(s.smallest); case .mlp(let s): return .mlp(s.smallest) }
    }

    public func sample(using rng: inout SeededRNG) -> Subnet {
        switch self {
        case .bert(let s): return .bert(s.sample(using: &rng))
        case .cnn(let s): return .cnn(s.sample(using: &rng))
        case .mlp(let s): return .mlp(s.sample(using: &rng))
        }
    }

    public func parse(_ text: String) throws -> Subnet {
        switch self {
        case .bert(let s): return .bert(try s.parse(text))
        case .cnn(let s): return .cnn(try s.parse(text))
        case .mlp(let s): return .mlp(try s.parse(text))
        }
    }

    public func encode(_ subnet: Subnet) -> [Int] {
        switch (self, subnet) {
        case (.bert(let s), .bert(let n)): return s.encode(n)
        case (.cnn(let s), .cnn(let n)): return s.encode(n)
        case (.mlp(let s), .mlp(let n)): return s.encode(n)
        default: preconditionFailure("SubnetSpace.encode: a \(subnet) sub-network in a \(kind) space")
        }
    }

    /// The space with depth and/or width fixed at their largest choice (progressive shrinking
    /// first makes depth elastic, then width).
    public func restricted(elasticDepth: Bool, elasticWidth: Bool) -> SubnetSpace {
        switch self {
        case .bert(var s):
            if !elasticDepth { s.layerChoices = [s.layerChoices.last!] }
            if !elasticWidth { s.headChoices = [s.headChoices.last!]; s.ffnChoices = [s.ffnChoices.last!] }
            return .bert(s)
        case .cnn(var s):
            if !elasticDepth { s.blockChoices = s.blockChoices.map { [$0.last!] } }
            if !elasticWidth { s.channelChoices = s.channelChoices.map { [$0.last!] } }
            return .cnn(s)
        case .mlp(var s):
            if !elasticDepth { s.layerChoices = [s.layerChoices.last!] }
            if !elasticWidth { s.widthChoices = s.widthChoices.map { [$0.last!] } }
            return .mlp(s)
        }
    }

    /// `count` nested sub-networks from smallest to largest, every dimension growing together
    /// (SortedNet's sorted list: each contains the one before it).
    public func sortedList(count: Int) -> [Subnet] {
        let k = max(2, count)
        func pick(_ choices: [Int], _ i: Int) -> Int { choices[(i * (choices.count - 1) + (k - 1) / 2) / (k - 1)] }
        let list: [Subnet] = (0..<k).map { i in
            switch self {
            case .bert(let s):
                let l = pick(s.layerChoices, i)
                return .bert(BertSubnet(layers: l, heads: Array(repeating: pick(s.headChoices, i), count: l),
                                        ffn: Array(repeating: pick(s.ffnChoices, i), count: l)))
            case .cnn(let s):
                return .cnn(CNNSubnet(blocks: s.blockChoices.map { pick($0, i) }, channels: s.channelChoices.map { pick($0, i) }))
            case .mlp(let s):
                let l = pick(s.layerChoices, i)
                return .mlp(MLPSubnet(layers: l, widths: s.widthChoices.prefix(l).map { pick($0, i) }))
            }
        }
        var seen = Set<Subnet>()
        return list.filter { seen.insert($0).inserted }
    }

    /// Makes `model` run `subnet` (nil: the whole model).
    public func activate(_ subnet: Subnet?, on model: any Classifier) {
        switch (subnet, model) {
        case (nil, let b as BertClassifier): b.bert.activate(nil)
        case (nil, let c as ImageCNN): c.activate(nil)
        case (nil, let m as ImageMLP): m.activate(nil)
        case (.bert(let s)?, let b as BertClassifier): b.bert.activate(s)
        case (.cnn(let s)?, let c as ImageCNN): c.activate(s)
        case (.mlp(let s)?, let m as ImageMLP): m.activate(s)
        default: preconditionFailure("SubnetSpace.activate: \(String(describing: subnet)) does not fit a \(model.spec.kind.rawValue) classifier")
        }
    }

    /// A dense classifier holding only `subnet` (same head and labels).
    public func extract(_ subnet: Subnet, from model: any Classifier) throws -> any Classifier {
        switch (subnet, model) {
        case (.bert(let s), let b as BertClassifier):
            let small = BertClassifier(bert: try b.bert.extract(s), spec: b.spec, seed: 0)
            try small.classifier.update(from: b.classifier.stateDict())
            return small
        case (.cnn(let s), let c as ImageCNN):
            return try c.extract(s)
        case (.mlp(let s), let m as ImageMLP):
            return try m.extract(s)
        default:
            throw TuneError("sub-network \(subnet.json) does not fit a \(model.spec.kind.rawValue) classifier")
        }
    }

    /// MACs (per image, or per sequence of `sequenceLength` tokens for BERT's encoder) and
    /// parameters of `subnet` in `model`.
    public func cost(_ subnet: Subnet, in model: any Classifier, sequenceLength: Int = 128) -> (macs: Int, params: Int) {
        switch (subnet, model) {
        case (.bert(let s), let b as BertClassifier):
            let p = bertCost(s, config: b.bert.config, sequenceLength: sequenceLength, withPooler: b.bert.pooler != nil)
            return (p.macs, p.params + b.classifier.parameterCount)
        case (.cnn(let s), let c as ImageCNN): return c.cost(s)
        case (.mlp(let s), let m as ImageMLP): return m.cost(s)
        default: preconditionFailure("SubnetSpace.cost: \(subnet.json) does not fit a \(model.spec.kind.rawValue) classifier")
        }
    }
}

/// Encoder MACs per sequence and parameters of a BERT sub-network: per token and layer
/// Q, K, V and the attention output (4·h·a·d), the FFN (2·h·f) and attention itself (2·L·a·d).
public func bertCost(_ s: BertSubnet, config c: BertConfig, sequenceLength: Int, withPooler: Bool) -> (macs: Int, params: Int) {
    let h = c.hiddenSize, d = c.headDim, L = sequenceLength
    var macs = 0
    var params = (c.vocabSize + c.maxPositionEmbeddings + c.typeVocabSize) * h + 2 * h + (withPooler ? h * h + h : 0)
    for i in 0..<s.layers {
        let a = s.heads[i] * d, f = s.ffn[i]
        macs += L * (4 * h * a + 2 * h * f + 2 * L * a)
        params += 3 * (h * a + a) + a * h + h + 2 * h + h * f + f + f * h + h + 2 * h
    }
    return (macs, params)
}

/// `subnets.json` in a run directory: the search space of the trained super-network and its
/// named sub-networks (`min`, `max`, and `gated` after a gates run).
public struct SubnetsFile: Sendable {
    public var space: SubnetSpace
    public var named: [String: Subnet]
    /// How the super-network was trained (e.g. "elastic/sandwich").
    public var training: String

    public init(space: SubnetSpace, named: [String: Subnet] = [:], training: String) {
        self.space = space
        self.named = named
        self.training = training
    }

    public static func url(in run: URL) -> URL { run.appendingPathComponent("subnets.json") }

    public func write(to url: URL) throws {
        func object(_ s: Subnet) throws -> Any { try JSONSerialization.jsonObject(with: Data(s.json.utf8)) }
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys]
        let spaceData: Data
        switch space {
        case .bert(let s): spaceData = try e.encode(s)
        case .cnn(let s): spaceData = try e.encode(s)
        case .mlp(let s): spaceData = try e.encode(s)
        }
        var named: [String: Any] = [:]
        for (k, v) in self.named { named[k] = try object(v) }
        let obj: [String: Any] = ["kind": space.kind, "training": training, "space": try JSONSerialization.jsonObject(with: spaceData), "named": named]
        try AtomicFile.write(try JSONSerialization.data(withJSONObject: obj, options: [.prettyPrinted, .sortedKeys]), to: url)
    }

    public static func read(from url: URL) throws -> SubnetsFile {
        guard let data = try? Data(contentsOf: url) else {
            throw TuneError("\(url.path): missing; sub-networks are recorded by `sculpt train --method elastic` or `gates`")
        }
        guard let obj = try? JSONSerialization.jsonObject(with: data) as? [String: Any], let kind = obj["kind"] as? String else {
            throw TuneError("\(url.path): not a sub-networks file")
        }
        if kind == "decoder" {
            throw TuneError("\(url.path): a decoder run's nested depths; this command works on classifier super-networks (for a decoder run use `sculpt subnets`, `extract --subnet`, or --subnet on eval, score and generate)")
        }
        guard let spaceObj = obj["space"] else { throw TuneError("\(url.path): not a sub-networks file") }
        let spaceData = try JSONSerialization.data(withJSONObject: spaceObj)
        let space: SubnetSpace
        do {
            switch kind {
            case "bert": space = .bert(try JSONDecoder().decode(BertSearchSpace.self, from: spaceData))
            case "cnn": space = .cnn(try JSONDecoder().decode(CNNSearchSpace.self, from: spaceData))
            case "mlp": space = .mlp(try JSONDecoder().decode(MLPSearchSpace.self, from: spaceData))
            default: throw TuneError("\(url.path): unknown kind \"\(kind)\"")
            }
        } catch let e as TuneError { throw e } catch { throw TuneError("\(url.path): bad search space (\(error))") }
        var named: [String: Subnet] = [:]
        for (k, v) in (obj["named"] as? [String: Any]) ?? [:] {
            let text = String(decoding: try JSONSerialization.data(withJSONObject: v), as: UTF8.self)
            do { named[k] = try space.parse(text) } catch { throw TuneError("\(url.path): named sub-network \"\(k)\": \(error)") }
        }
        return SubnetsFile(space: space, named: named, training: obj["training"] as? String ?? "")
    }
}

