import Foundation

/// The cos/sin of rotary position embeddings (RoPE) for positions 0..<`positions`: one
/// angle per position and frequency, `positions × half` values each. transformers computes
/// them in float32 as `cos(position · inv_freq)`; so does this table.
public struct RotaryTable: Sendable {
    public let positions: Int
    /// Rotated pairs per head (rotary dimension / 2).
    public let half: Int
    public let cos: [Float]
    public let sin: [Float]

    public init(inverseFrequencies: [Float], positions: Int, attentionScaling: Float = 1) {
        self.positions = positions
        half = inverseFrequencies.count
        var c = [Float](repeating: 0, count: positions * half), s = c
        for p in 0..<positions {
            for i in 0..<half {
                let angle = Float(p) * inverseFrequencies[i]
                c[p * half + i] = Float(Foundation.cos(Double(angle))) * attentionScaling
                s[p * half + i] = Float(Foundation.sin(Double(angle))) * attentionScaling
            }
        }
        cos = c
        sin = s
    }
}

/// Rotates each head of rows [rows, heads · headDim] by its row's position, in the
/// "rotate half" layout transformers uses: for the first 2·half dims of a head, pairs
/// (i, i + half) turn by angle position · inv_freq[i]; the remaining dims pass through.
/// `inverse` turns by the negative angle (the backward pass). `y` may equal `x`.
public func rotaryRows(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, rows: Int, heads: Int, headDim: Int,
                       positions: UnsafePointer<Int32>, table: RotaryTable, inverse: Bool, pool: ThreadPool) {
    let half = table.half
    precondition(2 * half <= headDim, "rotary: rotary dimension \(2 * half) exceeds head size \(headDim)")
    let width = heads * headDim
    let xb = UncheckedSendableBox(x), yb = UncheckedSendableBox(y), pb = UncheckedSendableBox(positions)
    let sign: Float = inverse ? -1 : 1
    table.cos.withUnsafeBufferPointer { cb in
        table.sin.withUnsafeBufferPointer { sb in
            let cp = UncheckedSendableBox(cb.baseAddress!), sp = UncheckedSendableBox(sb.baseAddress!)
            forEachRow(rows, width: width, pool: pool) { r in
                let p = Int(pb.value[r])
                precondition(p >= 0 && p < table.positions, "rotary: position \(p) outside the table of \(table.positions)")
                let c = cp.value + p * half, s = sp.value + p * half
                for h in 0..<heads {
                    let xr = xb.value + r * width + h * headDim, yr = yb.value + r * width + h * headDim
                    for i in 0..<half {
                        let a = xr[i], b = xr[i + half], si = sign * s[i]
                        yr[i] = a * c[i] - b * si
                        yr[i + half] = b * c[i] + a * si
                    }
                    if 2 * half < headDim && xr != UnsafePointer(yr) {
                        for i in (2 * half)..<headDim { yr[i] = xr[i] }
                    }
                }
            }
        }
    }
}

/// Plain twin of `rotaryRows` (angles in double), for tests.
public func rotaryRowsReference(_ x: [Float], rows: Int, heads: Int, headDim: Int, positions: [Int32],
                                inverseFrequencies: [Float], inverse: Bool) -> [Float] {
    var y = x
    let half = inverseFrequencies.count
    for r in 0..<rows {
        for h in 0..<heads {
            let o = r * heads * headDim + h * headDim
            for i in 0..<half {
                let angle = Double(Float(positions[r]) * inverseFrequencies[i]) * (inverse ? -1 : 1)
                let a = Double(x[o + i]), b = Double(x[o + i + half])
                y[o + i] = Float(a * Foundation.cos(angle) - b * Foundation.sin(angle))
                y[o + i + half] = Float(b * Foundation.cos(angle) + a * Foundation.sin(angle))
            }
        }
    }
    return y
}
