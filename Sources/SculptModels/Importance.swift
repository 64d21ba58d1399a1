import SculptCore
import SculptNN

/// How much an attention head or FFN channel matters, from the weights that belong to it:
/// the query/key/value rows and attention-output columns of a head; the intermediate row
/// and output column of a channel.
public enum ImportanceCriterion: String, Sendable, Codable {
    /// Sum of squared weights (L2² magnitude).
    case magnitude
    /// First-order Taylor: Σ |w · ∂L/∂w| over the unit's weights, from the gradients currently
    /// accumulated on the parameters (run backward on a few batches first).
    case taylor
}

extension BertLayer {
    /// One score per head (higher = more important).
    public func headImportance(_ criterion: ImportanceCriterion) -> [Double] {
        let sa = attention.selfAttention, d = sa.headDim
        let rows = [sa.query, sa.key, sa.value].map { unitScores($0, alongRows: true, criterion) }
        let cols = unitScores(attention.output.dense, alongRows: false, criterion)
        var scores = [Double](repeating: 0, count: sa.heads)
        for j in 0..<sa.heads {
            for r in (j * d)..<((j + 1) * d) {
                let qkv: Double = rows[0][r] + rows[1][r] + rows[2][r]
                scores[j] += qkv + cols[r]
            }
        }
        return scores
    }

    /// One score per FFN channel.
    public func channelImportance(_ criterion: ImportanceCriterion) -> [Double] {
        let r = unitScores(intermediate.dense, alongRows: true, criterion), c = unitScores(output.dense, alongRows: false, criterion)
        return zip(r, c).map { $0 + $1 }
    }
}

/// Per output row (or input column) of a Linear: Σ w² (magnitude) or Σ |w·g| (Taylor).
func unitScores(_ linear: Linear, alongRows: Bool, _ criterion: ImportanceCriterion) -> [Double] {
    unitScores(linear.weight, alongRows: alongRows, criterion)
}

/// Per row (or column) of a 2-D weight variable, from its value and accumulated gradient.
func unitScores(_ weight: Variable, alongRows: Bool, _ criterion: ImportanceCriterion) -> [Double] {
    let w = weight.value
    let rows = w.shape[0], cols = w.shape[1]
    let g = criterion == .taylor ? (weight.grad ?? Tensor.zeros(w.shape)) : w
    var out = [Double](repeating: 0, count: alongRows ? rows : cols)
    w.withUnsafePointer { wp in
        g.withUnsafePointer { gp in
            for r in 0..<rows {
                for c in 0..<cols {
                    let v = criterion == .taylor ? Double(abs(wp[r * cols + c] * gp[r * cols + c])) : Double(wp[r * cols + c] * gp[r * cols + c])
                    out[alongRows ? r : c] += v
                }
            }
        }
    }
    return out
}
