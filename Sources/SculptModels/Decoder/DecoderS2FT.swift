import SculptCore
import SculptNN

// s2ft on a decoder. Chosen query heads train their o_proj columns (and, with the input side,
// their q_proj rows) as blocks in place: heads are not permuted, so grouped-query
// attention's head → key/value-group map is untouched. Chosen FFN channels are permuted to
// the front (gate_proj and up_proj rows with down_proj columns: the function is unchanged)
// and train as a leading block of down_proj columns (and of gate/up rows with the input side).

extension S2FTPlan {
    /// ⌊density·heads⌉ query heads and ⌊density·channels⌉ FFN channels per layer, at random
    /// from `seed` (`headDensity` overrides for heads).
    public static func choose(forDecoder model: DecoderLM, density: Double, headDensity: Double? = nil, seed: UInt64 = 0,
                              trainInputSide: Bool = false) -> S2FTPlan {
        var rng = SeededRNG(seed: seed)
        let layers = model.model.layers.map { layer -> Layer in
            let h = layer.selfAttention.heads, f = layer.mlp.downProj.inFeatures
            return Layer(heads: pick(h, count(h, headDensity ?? density), .random, &rng) { [] },
                         channels: pick(f, count(f, density), .random, &rng) { [] })
        }
        return S2FTPlan(layers: layers, trainInputSide: trainInputSide)
    }
}

/// A decoder set up for s2ft by `applyS2FT(_:to:)`.
public final class DecoderS2FTSession: S2FTFolding {
    public let plan: S2FTPlan
    public let model: DecoderLM
    let channelOrders: [[Int]]
    let previouslyTrainable: [String: Bool]
    public private(set) var folded = false

    init(plan: S2FTPlan, model: DecoderLM, channelOrders: [[Int]], previouslyTrainable: [String: Bool]) {
        self.plan = plan
        self.model = model
        self.channelOrders = channelOrders
        self.previouslyTrainable = previouslyTrainable
    }

    public func fold() {
        guard !folded else { return }
        for (layer, order) in zip(model.model.layers, channelOrders) {
            let a = layer.selfAttention, m = layer.mlp
            for l in [a.qProj, a.oProj, m.gateProj, m.upProj, m.downProj] { l.foldWeight() }
            m.permuteChannels(inversePermutation(order))
        }
        for (n, p) in model.namedParameters() { p.requiresGrad = previouslyTrainable[n] ?? p.requiresGrad }
        folded = true
    }
}

extension DecoderMLP {
    /// Reorders FFN channels so new channel p is old channel `order[p]`.
    func permuteChannels(_ order: [Int]) {
        let idx = order.map(Int32.init)
        gateProj.permute(rows: idx)
        upProj.permute(rows: idx)
        downProj.permute(columns: idx)
    }
}

/// Sets up `plan` on `model` and freezes every other parameter (norms and embeddings included).
public func applyS2FT(_ plan: S2FTPlan, to model: DecoderLM) -> DecoderS2FTSession {
    precondition(plan.layers.count == model.model.layers.count, "S2FT plan has \(plan.layers.count) layers, the decoder \(model.model.layers.count)")
    var previously: [String: Bool] = [:]
    for (n, p) in model.namedParameters() { previously[n] = p.requiresGrad }
    model.setTrainable(false)
    var orders: [[Int]] = []
    for (layer, choice) in zip(model.model.layers, plan.layers) {
        let a = layer.selfAttention, m = layer.mlp, d = a.headDim
        if !choice.heads.isEmpty {
            // Adjacent heads become one block.
            var ranges: [Range<Int>] = []
            for h in choice.heads {
                if let last = ranges.last, last.upperBound == h * d { ranges[ranges.count - 1] = last.lowerBound..<((h + 1) * d) } else { ranges.append((h * d)..<((h + 1) * d)) }
            }
            a.oProj.splitWeight(.columns, ranges: ranges)
            if plan.trainInputSide { a.qProj.splitWeight(.rows, ranges: ranges) }
        }
        let chosen = Set(choice.channels)
        let order = choice.channels + (0..<m.downProj.inFeatures).filter { !chosen.contains($0) }
        m.permuteChannels(order)
        orders.append(order)
        if !choice.channels.isEmpty {
            m.downProj.splitWeight(.columns, count: choice.channels.count)
            if plan.trainInputSide { for l in [m.gateProj, m.upProj] { l.splitWeight(.rows, count: choice.channels.count) } }
        }
    }
    return DecoderS2FTSession(plan: plan, model: model, channelOrders: orders, previouslyTrainable: previously)
}
