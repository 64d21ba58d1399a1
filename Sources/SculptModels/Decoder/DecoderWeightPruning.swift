import Foundation
import SculptCore
import SculptNN

/// How unstructured pruning of a decoder scores weights.
public enum DecoderWeightScore: String, CaseIterable, Sendable {
    /// |w|, the lowest of each matrix.
    case magnitude
    /// Wanda: |w| · ‖x_j‖ (the norm of the weight's input feature over calibration tokens),
    /// the lowest of each output row.
    case wanda
}

extension DecoderLM {
    /// Zeroes `sparsity` of the weights of every layer's seven projection matrices (the
    /// embedding, norms and head untouched): the lowest-scored per matrix (magnitude) or per
    /// output row (Wanda); with `twoFour`, the 2 lowest of every 4 consecutive input weights
    /// of each row instead (the 2:4 pattern; `sparsity` is then ignored). Returns the 0/1
    /// masks by parameter name.
    @discardableResult
    public func pruneWeights(_ score: DecoderWeightScore, sparsity: Double, twoFour: Bool, calibration: [[Int32]] = []) throws -> [String: Tensor] {
        guard twoFour || (sparsity > 0 && sparsity < 1) else {
            throw ModelError.badWeights(file: "prune", message: "sparsity must be in (0, 1), got \(sparsity)")
        }
        try activate(nil)
        let c = config
        var norms: [[String: [Double]]] = model.layers.map { _ in [:] }
        if score == .wanda {
            guard !calibration.isEmpty else { throw ModelError.badWeights(file: "prune", message: "Wanda needs calibration texts (--data)") }
            let wasTraining = training
            eval()
            defer { if wasTraining { train() } }
            let recorders = model.layers.map { _ in DecoderLayerRecorder(heads: c.numAttentionHeads, headDim: c.headDim, ffn: c.intermediateSize, hidden: c.hiddenSize) }
            _ = try record(calibration, into: recorders, backward: false)
            for (l, r) in recorders.enumerated() {
                let a = r.attentionInput.map { $0.squareRoot() }, m = r.mlpInput.map { $0.squareRoot() }
                norms[l] = ["self_attn.q_proj": a, "self_attn.k_proj": a, "self_attn.v_proj": a, "self_attn.o_proj": r.context.map { $0.squareRoot() },
                            "mlp.gate_proj": m, "mlp.up_proj": m, "mlp.down_proj": r.mlpHidden.map { $0.squareRoot() }]
            }
        }
        var masks: [String: Tensor] = [:]
        for (l, layer) in model.layers.enumerated() {
            for (name, linear) in layer.projections {
                let w = linear.weight.value
                let rows = w.shape[0], cols = w.shape[1], p = w.storage.pointer
                let inputNorm = norms[l][name] ?? [Double](repeating: 1, count: cols)
                let mask = Tensor.ones(w.shape)
                let mp = mask.storage.pointer
                func scored(_ r: Int, _ range: Range<Int>) -> [Int] {
                    range.sorted { i, j in
                        let si = Double(abs(p[r * cols + i])) * inputNorm[i], sj = Double(abs(p[r * cols + j])) * inputNorm[j]
                        return si < sj || (si == sj && i < j)
                    }
                }
                if twoFour {
                    for r in 0..<rows {
                        for g in stride(from: 0, to: cols - cols % 4, by: 4) { for j in scored(r, g..<(g + 4)).prefix(2) { mp[r * cols + j] = 0 } }
                    }
                } else if score == .wanda {
                    let k = Int((sparsity * Double(cols)).rounded())
                    for r in 0..<rows { for j in scored(r, 0..<cols).prefix(k) { mp[r * cols + j] = 0 } }
                } else {
                    let k = Int((sparsity * Double(rows * cols)).rounded())
                    let order = (0..<(rows * cols)).sorted { abs(p[$0]) < abs(p[$1]) || (abs(p[$0]) == abs(p[$1]) && $0 < $1) }
                    for i in order.prefix(k) { mp[i] = 0 }
                }
                for i in 0..<(rows * cols) where mp[i] == 0 { p[i] = 0 }
                masks["model.layers.\(l).\(name).weight"] = mask
            }
        }
        return masks
    }
}
