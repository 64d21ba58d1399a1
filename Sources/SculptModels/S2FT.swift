import SculptCore
import SculptNN

/// Structured sparse fine-tuning (s2ft, Yang et al. 2024): "select sparsely, compute densely".
///
/// Per layer a few attention heads and FFN channels are chosen; the heads (row blocks of
/// query/key/value, column blocks of attention.output.dense) and channels (rows of
/// intermediate.dense, columns of output.dense) are permuted to the front — the network
/// computes the same function — and each of those weights is split (`Linear.splitWeight`) so
/// only the leading block is a trainable variable: the backward pass computes dW for the
/// selected block alone. `S2FTSession.fold()` writes the blocks back and undoes the
/// permutation, leaving a model in the checkpoint's order whose changes are confined to the
/// selected rows/columns (so it can also be saved as a `SparseDiff`).
public struct S2FTPlan: Sendable, Equatable, Codable {
    public enum Criterion: String, Sendable, Codable {
        /// Uniformly at random from a seeded generator (the paper's default selection).
        case random
        /// The largest squared-weight norm: a head scores Σ w² over its query/key/value rows
        /// and its attention.output.dense columns; a channel over its intermediate row and its
        /// output.dense column.
        case magnitude
    }

    /// Selected heads and channels of one layer, ascending, in the checkpoint's numbering.
    public struct Layer: Sendable, Equatable, Codable {
        public var heads: [Int]
        public var channels: [Int]
        public init(heads: [Int], channels: [Int]) {
            self.heads = heads
            self.channels = channels
        }
    }

    public var layers: [Layer]
    /// Also train the input side (query/key/value rows and intermediate rows); false (the
    /// default, as in S2FT's own examples) trains only the output side (attention.output.dense
    /// and output.dense columns), which needs no weight gradient on the input side.
    public var trainInputSide: Bool

    public init(layers: [Layer], trainInputSide: Bool = false) {
        self.layers = layers
        self.trainInputSide = trainInputSide
    }

    /// Chooses ⌊density·heads⌉ heads and ⌊density·channels⌉ channels per layer (rounded half
    /// away from zero; `headDensity` overrides for heads — at 1 % a 12-head layer gets none).
    public static func choose(for model: BertModel, density: Double, headDensity: Double? = nil,
                              criterion: Criterion = .random, seed: UInt64 = 0, trainInputSide: Bool = false) -> S2FTPlan {
        var rng = SeededRNG(seed: seed)
        let layers = model.encoder.layers.map { layer -> Layer in
            let h = layer.attention.selfAttention.heads
            let f = layer.intermediate.dense.outFeatures
            let heads = pick(h, count(h, headDensity ?? density), criterion, &rng) { layer.headImportance(.magnitude) }
            let channels = pick(f, count(f, density), criterion, &rng) { layer.channelImportance(.magnitude) }
            return Layer(heads: heads, channels: channels)
        }
        return S2FTPlan(layers: layers, trainInputSide: trainInputSide)
    }

    /// ⌊density·n⌉, rounded half away from zero, within 0…n.
    static func count(_ n: Int, _ d: Double) -> Int { min(n, max(0, Int((d * Double(n)).rounded(.toNearestOrAwayFromZero)))) }

    /// k of 0..<n, ascending: at random (a seeded Fisher–Yates prefix) or the k best scores.
    static func pick(_ n: Int, _ k: Int, _ criterion: Criterion, _ rng: inout SeededRNG, scores: () -> [Double]) -> [Int] {
        switch criterion {
        case .random:
            var order = Array(0..<n)
            for i in stride(from: n - 1, to: 0, by: -1) { order.swapAt(i, Int(rng.next() % UInt64(i + 1))) }
            return Array(order.prefix(k)).sorted()
        case .magnitude:
            let s = scores()
            return Array((0..<n).sorted { s[$0] != s[$1] ? s[$0] > s[$1] : $0 < $1 }.prefix(k)).sorted()
        }
    }
}

/// A model set up for s2ft training; `fold()` once, after training, writes the trained blocks
/// back into the checkpoint's order.
public protocol S2FTFolding: AnyObject {
    func fold()
}

extension BertLayer {
    /// Reorders heads so new head p is old head `order[p]`; the layer's function is unchanged.
    public func permuteHeads(_ order: [Int]) {
        let sa = attention.selfAttention, d = sa.headDim
        precondition(order.sorted() == Array(0..<sa.heads), "permuteHeads: \(order) is not a permutation of 0..<\(sa.heads)")
        let idx = order.flatMap { o in (o * d..<(o + 1) * d).map(Int32.init) }
        for l in [sa.query, sa.key, sa.value] { l.permute(rows: idx) }
        attention.output.dense.permute(columns: idx)
    }

    /// Reorders FFN channels so new channel p is old channel `order[p]`.
    public func permuteChannels(_ order: [Int]) {
        precondition(order.sorted() == Array(0..<intermediate.dense.outFeatures), "permuteChannels: not a permutation")
        let idx = order.map(Int32.init)
        intermediate.dense.permute(rows: idx)
        output.dense.permute(columns: idx)
    }
}

extension Linear {
    /// New output row p = old row idx[p] (weight and bias).
    func permute(rows idx: [Int32]) {
        weight.value = weight.value.indexSelect(axis: 0, idx)
        if let b = bias { b.value = b.value.indexSelect(axis: 0, idx) }
    }

    /// New input column p = old column idx[p].
    func permute(columns idx: [Int32]) { weight.value = weight.value.indexSelect(axis: 1, idx) }
}

/// Which side of each coupled pair s2ft trains (`--s2ft-sides`).
public enum S2FTSides: String, Sendable, CaseIterable {
    /// The chosen columns of attention.output.dense and output.dense (S2FT's own examples).
    case output
    /// Also the chosen query/key/value and intermediate.dense rows.
    case both
    public var trainsInputSide: Bool { self == .both }
}

/// A BERT set up for s2ft training. Create with `applyS2FT`, train the parameters it leaves
/// trainable (`….s2ft.weight`), then call `fold()` once.
public final class S2FTSession: S2FTFolding {
    public let plan: S2FTPlan
    public let model: BertModel
    let headOrders: [[Int]]
    let channelOrders: [[Int]]
    let previouslyTrainable: [String: Bool]
    public private(set) var folded = false

    init(plan: S2FTPlan, model: BertModel, headOrders: [[Int]], channelOrders: [[Int]], previouslyTrainable: [String: Bool]) {
        self.plan = plan
        self.model = model
        self.headOrders = headOrders
        self.channelOrders = channelOrders
        self.previouslyTrainable = previouslyTrainable
    }

    /// Writes every trained block into its weight, removes the splits, restores the
    /// checkpoint's head/channel order and each parameter's earlier trainable flag.
    public func fold() {
        guard !folded else { return }
        for (i, layer) in model.encoder.layers.enumerated() {
            let sa = layer.attention.selfAttention
            for l in [sa.query, sa.key, sa.value, layer.attention.output.dense, layer.intermediate.dense, layer.output.dense] { l.foldWeight() }
            layer.permuteHeads(inversePermutation(headOrders[i]))
            layer.permuteChannels(inversePermutation(channelOrders[i]))
        }
        for (n, p) in model.namedParameters() { p.requiresGrad = previouslyTrainable[n] ?? p.requiresGrad }
        folded = true
    }
}

/// The permutation that undoes `order` (inverse[order[p]] = p).
func inversePermutation(_ order: [Int]) -> [Int] {
    var inv = [Int](repeating: 0, count: order.count)
    for (p, o) in order.enumerated() { inv[o] = p }
    return inv
}

/// Permutes the plan's heads and channels to the front of each layer, splits the affected
/// weights so only the selected block trains, and freezes every other parameter of `model`
/// (biases and LayerNorms included). A head you add outside the model is unaffected.
public func applyS2FT(_ plan: S2FTPlan, to model: BertModel) -> S2FTSession {
    precondition(plan.layers.count == model.encoder.layers.count, "S2FT plan has \(plan.layers.count) layers, the model \(model.encoder.layers.count)")
    var previously: [String: Bool] = [:]
    for (n, p) in model.namedParameters() { previously[n] = p.requiresGrad }
    model.setTrainable(false)
    var headOrders: [[Int]] = [], channelOrders: [[Int]] = []
    for (layer, choice) in zip(model.encoder.layers, plan.layers) {
        let sa = layer.attention.selfAttention, d = sa.headDim
        let chosenHeads = Set(choice.heads), chosenChannels = Set(choice.channels)
        let headOrder = choice.heads + (0..<sa.heads).filter { !chosenHeads.contains($0) }
        let channelOrder = choice.channels + (0..<layer.intermediate.dense.outFeatures).filter { !chosenChannels.contains($0) }
        layer.permuteHeads(headOrder)
        layer.permuteChannels(channelOrder)
        headOrders.append(headOrder)
        channelOrders.append(channelOrder)
        if !choice.heads.isEmpty {
            if plan.trainInputSide { for l in [sa.query, sa.key, sa.value] { l.splitWeight(.rows, count: choice.heads.count * d) } }
            layer.attention.output.dense.splitWeight(.columns, count: choice.heads.count * d)
        }
        if !choice.channels.isEmpty {
            if plan.trainInputSide { layer.intermediate.dense.splitWeight(.rows, count: choice.channels.count) }
            layer.output.dense.splitWeight(.columns, count: choice.channels.count)
        }
    }
    return S2FTSession(plan: plan, model: model, headOrders: headOrders, channelOrders: channelOrders, previouslyTrainable: previously)
}
