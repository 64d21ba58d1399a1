import Foundation
import SculptCore
import SculptNN

/// How a decoder's units are scored for reordering and pruning.
public enum DecoderImportanceMethod: String, CaseIterable, Sendable, Codable {
    /// Σ w² of the weights that belong to the unit (no data).
    case magnitude
    /// First-order Taylor: |Σ w · ∂L/∂w| over the unit's weights, the next-token loss of the
    /// calibration texts.
    case taylor
    /// Minitron: the unit's activations over the calibration texts — the L2 norm of each
    /// head's attention output, |SwiGLU output| of each FFN channel, |RMSNorm output| of each
    /// hidden channel (every norm), summed over tokens.
    case activation
}

/// Scores of every unit of a decoder (higher = more important): key-value groups and FFN
/// channels per layer, hidden channels, and each layer's block influence
/// (1 − cos(input, output), averaged over tokens: ShortGPT's measure of what a layer changes).
public struct DecoderImportance: Codable, Sendable, Equatable {
    public var method: DecoderImportanceMethod
    /// [layer][key-value group].
    public var groups: [[Double]]
    /// [layer][FFN channel].
    public var ffn: [[Double]]
    /// [hidden channel].
    public var hidden: [Double]
    /// [layer]; nil without calibration data.
    public var blockInfluence: [Double]?
    /// Calibration tokens the scores come from (0 for magnitude without data).
    public var tokens: Int

    enum CodingKeys: String, CodingKey { case method, groups, ffn, hidden, blockInfluence = "block_influence", tokens }

    /// Layers by block influence, least influential first (what depth pruning removes).
    public var layersByInfluence: [Int]? {
        blockInfluence.map { b in Array(b.indices).sorted { b[$0] < b[$1] || (b[$0] == b[$1] && $0 > $1) } }
    }
}

/// Activation sums of one layer over calibration tokens.
final class DecoderLayerRecorder {
    var heads: [Double], ffn: [Double], hidden: [Double]
    var influence = 0.0, tokens = 0
    /// Σ x² per input feature of the layer's linears (Wanda's ‖X_j‖²): the attention input
    /// (q/k/v), the attention context (o), the MLP input (gate/up), the SwiGLU output (down).
    var attentionInput: [Double], context: [Double], mlpInput: [Double], mlpHidden: [Double]

    init(heads: Int, headDim: Int, ffn: Int, hidden: Int) {
        self.heads = [Double](repeating: 0, count: heads)
        self.ffn = [Double](repeating: 0, count: ffn)
        self.hidden = [Double](repeating: 0, count: hidden)
        attentionInput = [Double](repeating: 0, count: hidden)
        context = [Double](repeating: 0, count: heads * headDim)
        mlpInput = attentionInput
        mlpHidden = self.ffn
    }

    /// Rows [rows, n] of value² sums into `into`.
    static func squareSums(_ t: Tensor, into: inout [Double]) {
        let rows = t.shape[0], width = t.shape[1], p = t.storage.pointer
        for r in 0..<rows { for j in 0..<width { let v = Double(p[r * width + j]); into[j] += v * v } }
    }

    /// Context rows [rows, heads·headDim]: each head's L2 norm per row.
    func recordContext(_ t: Tensor, headDim d: Int) {
        let rows = t.shape[0], width = t.shape[1], p = t.storage.pointer
        for r in 0..<rows {
            for h in 0..<(width / d) {
                var s: Float = 0
                for j in 0..<d { let v = p[r * width + h * d + j]; s += v * v }
                heads[h] += Double(s.squareRoot())
            }
        }
    }

    /// Rows [rows, n] of |value| sums into `into`.
    static func absSums(_ t: Tensor, into: inout [Double]) {
        let rows = t.shape[0], width = t.shape[1], p = t.storage.pointer
        for r in 0..<rows { for j in 0..<width { into[j] += Double(abs(p[r * width + j])) } }
    }

    /// 1 − cos of each row of the layer's input and output.
    func recordInfluence(input x: Tensor, output y: Tensor) {
        let rows = x.shape[0], width = x.shape[1], a = x.storage.pointer, b = y.storage.pointer
        for r in 0..<rows {
            var dot: Double = 0, na: Double = 0, nb: Double = 0
            for j in 0..<width {
                let u = Double(a[r * width + j]), v = Double(b[r * width + j])
                dot += u * v; na += u * u; nb += v * v
            }
            influence += 1 - dot / max((na * nb).squareRoot(), 1e-30)
        }
        tokens += rows
    }
}

extension DecoderLayer {
    /// The layer's forward pass recording its activations into `r` (evaluation only).
    func recorded(_ x: Variable, step: DecoderStep, cache: KVCache?, into r: DecoderLayerRecorder) -> Variable {
        let n1 = inputLayernorm(x)
        DecoderLayerRecorder.absSums(n1.value, into: &r.hidden)
        DecoderLayerRecorder.squareSums(n1.value, into: &r.attentionInput)
        let h = x + selfAttention(n1, step: step, cache: cache, recorder: r)
        let n2 = postAttentionLayernorm(h)
        DecoderLayerRecorder.absSums(n2.value, into: &r.hidden)
        DecoderLayerRecorder.squareSums(n2.value, into: &r.mlpInput)
        let act = swiglu(gate: mlp.gateProj(n2), up: mlp.upProj(n2))
        DecoderLayerRecorder.absSums(act.value, into: &r.ffn)
        DecoderLayerRecorder.squareSums(act.value, into: &r.mlpHidden)
        let y = h + mlp.downProj(act)
        r.recordInfluence(input: x.value, output: y.value)
        return y
    }
}

extension DecoderLM {
    /// Scores every unit. `calibration` (token sequences, each run alone so no padding enters
    /// the sums) is needed for taylor and activation; with it, block influence is measured for
    /// every method. Runs on the whole model (any active sub-network is switched off).
    public func importance(_ method: DecoderImportanceMethod, calibration: [[Int32]] = []) throws -> DecoderImportance {
        guard method == .magnitude || !calibration.isEmpty else {
            throw ModelError.badWeights(file: "importance", message: "\(method.rawValue) importance needs calibration texts (--data)")
        }
        try activate(nil)
        let c = config, d = c.headDim, g = DecoderSubnet.groupSize(c)
        let wasTraining = training
        eval()
        defer { if wasTraining { train() } }
        let recorders = model.layers.map { _ in DecoderLayerRecorder(heads: c.numAttentionHeads, headDim: c.headDim, ffn: c.intermediateSize, hidden: c.hiddenSize) }
        var tokens = 0
        if !calibration.isEmpty {
            if method == .taylor { zeroGrad() }
            tokens = try record(calibration, into: recorders, backward: method == .taylor)
        }
        var groups: [[Double]] = [], ffn: [[Double]] = [], hidden = [Double](repeating: 0, count: c.hiddenSize)
        let criterion: ImportanceCriterion = method == .taylor ? .taylor : .magnitude
        func add(_ xs: [Double], into acc: inout [Double]) { for i in acc.indices { acc[i] += xs[i] } }
        for (l, layer) in model.layers.enumerated() {
            let a = layer.selfAttention, m = layer.mlp
            if method == .activation {
                let r = recorders[l]
                groups.append((0..<c.numKeyValueHeads).map { k in (0..<g).reduce(0) { $0 + r.heads[k * g + $1] } / Double(tokens) })
                ffn.append(r.ffn.map { $0 / Double(tokens) })
                add(r.hidden.map { $0 / Double(tokens) }, into: &hidden)
                continue
            }
            let q = unitScores(a.qProj, alongRows: true, criterion), k = unitScores(a.kProj, alongRows: true, criterion)
            let v = unitScores(a.vProj, alongRows: true, criterion), o = unitScores(a.oProj, alongRows: false, criterion)
            groups.append((0..<c.numKeyValueHeads).map { kv in
                var s = 0.0
                for r in (kv * g * d)..<((kv + 1) * g * d) { s += q[r] + o[r] }
                for r in (kv * d)..<((kv + 1) * d) { s += k[r] + v[r] }
                return s
            })
            let gate = unitScores(m.gateProj, alongRows: true, criterion), up = unitScores(m.upProj, alongRows: true, criterion)
            let down = unitScores(m.downProj, alongRows: false, criterion)
            ffn.append((0..<c.intermediateSize).map { gate[$0] + up[$0] + down[$0] })
            for p in [a.qProj, a.kProj, a.vProj, m.gateProj, m.upProj] { add(unitScores(p, alongRows: false, criterion), into: &hidden) }
            for p in [a.oProj, m.downProj] { add(unitScores(p, alongRows: true, criterion), into: &hidden) }
        }
        if method != .activation {
            add(unitScores(model.embedTokens.weight, alongRows: false, criterion), into: &hidden)
            if method == .taylor { zeroGrad() }
        }
        let influence: [Double]? = calibration.isEmpty ? nil : recorders.map { $0.influence / Double(max($0.tokens, 1)) }
        return DecoderImportance(method: method, groups: groups, ffn: ffn, hidden: hidden, blockInfluence: influence, tokens: tokens)
    }

    /// Runs the calibration texts (each alone) with `recorders` attached; with `backward`,
    /// back-propagates their next-token loss too. Returns the tokens seen.
    func record(_ calibration: [[Int32]], into recorders: [DecoderLayerRecorder], backward: Bool) throws -> Int {
        for l in model.layers.indices { model.layers[l].recorder = recorders[l] }
        defer { for l in model.layers { l.recorder = nil } }
        var tokens = 0
        for ids in calibration where ids.count >= 2 {
            tokens += ids.count
            if backward {
                let labels = DecoderLM.shiftedLabels(ids, batch: 1, sequence: ids.count)
                let hidden = hiddenStates(ids: ids, batch: 1, sequence: ids.count)
                lmCrossEntropy(hidden: hidden, weight: headWeight, labels: labels).backward()
            } else {
                _ = withoutGradients { hiddenStates(ids: ids, batch: 1, sequence: ids.count) }
            }
        }
        guard tokens > 0 else { throw ModelError.badWeights(file: "importance", message: "the calibration texts have no sequence of two or more tokens") }
        return tokens
    }

    /// Permutes the weights so every layer's key-value groups and FFN channels, and the
    /// hidden channels, run from most to least important: leading slices (what sub-networks
    /// keep) then hold the most important units. The function the model computes is unchanged
    /// (RMSNorm and the rest are equivariant to these permutations).
    public func reorder(by imp: DecoderImportance) throws {
        let c = config, d = c.headDim, g = DecoderSubnet.groupSize(c)
        guard imp.groups.count == c.numHiddenLayers, imp.ffn.count == c.numHiddenLayers, imp.hidden.count == c.hiddenSize else {
            throw ModelError.badWeights(file: "importance", message: "scores do not fit this model's \(c.numHiddenLayers) layers and \(c.hiddenSize) hidden channels")
        }
        try activate(nil)
        func descending(_ s: [Double]) -> [Int32] { s.indices.sorted { s[$0] > s[$1] || (s[$0] == s[$1] && $0 < $1) }.map(Int32.init) }
        func permute(_ v: Variable, axis: Int, _ order: [Int32]) { v.value = v.value.indexSelect(axis: axis, order) }
        let hiddenOrder = descending(imp.hidden)
        let identityHidden = hiddenOrder == (0..<Int32(c.hiddenSize)).map { $0 }
        for (l, layer) in model.layers.enumerated() {
            let a = layer.selfAttention, m = layer.mlp
            let groupOrder = descending(imp.groups[l])
            let kvRows = groupOrder.flatMap { k in (0..<Int32(d)).map { k * Int32(d) + $0 } }
            let qRows = groupOrder.flatMap { k in (0..<Int32(g * d)).map { k * Int32(g * d) + $0 } }
            for (p, rows) in [(a.qProj, qRows), (a.kProj, kvRows), (a.vProj, kvRows)] {
                permute(p.weight, axis: 0, rows)
                if let b = p.bias { permute(b, axis: 0, rows) }
            }
            permute(a.oProj.weight, axis: 1, qRows)
            let ch = descending(imp.ffn[l])
            for p in [m.gateProj, m.upProj] { permute(p.weight, axis: 0, ch); if let b = p.bias { permute(b, axis: 0, ch) } }
            permute(m.downProj.weight, axis: 1, ch)
            guard !identityHidden else { continue }
            for p in [a.qProj, a.kProj, a.vProj, m.gateProj, m.upProj] { permute(p.weight, axis: 1, hiddenOrder) }
            for p in [a.oProj, m.downProj] { permute(p.weight, axis: 0, hiddenOrder); if let b = p.bias { permute(b, axis: 0, hiddenOrder) } }
            permute(layer.inputLayernorm.weight, axis: 0, hiddenOrder)
            permute(layer.postAttentionLayernorm.weight, axis: 0, hiddenOrder)
        }
        guard !identityHidden else { return }
        permute(model.embedTokens.weight, axis: 1, hiddenOrder)
        permute(model.norm.weight, axis: 0, hiddenOrder)
        if let h = lmHead { permute(h.weight, axis: 1, hiddenOrder) }
    }
}
