import SculptCore
import SculptNN

// The two halves of a BERT layer as public entry points, so latency tables can time each
// part alone (what a sub-network's cost is summed from) with exactly the code the full
// forward pass runs.
extension BertLayer {
    /// Self-attention with its output projection, residual and LayerNorm: [B·S, H] → [B·S, H].
    /// With no active head the block is skipped, as in the layer's forward pass.
    public func attentionBlock(_ x: Variable, batch: Int, sequence: Int, keyMask: Tensor?) -> Variable {
        guard attention.selfAttention.activeHeads > 0 else { return x }
        let context = attention.selfAttention(x, batch: batch, sequence: sequence, keyMask: keyMask)
        return attention.output(context, residual: x)
    }

    /// The FFN (intermediate, activation, output, residual, LayerNorm): [B·S, H] → [B·S, H].
    public func feedForwardBlock(_ x: Variable) -> Variable {
        guard intermediate.dense.activeShape.out > 0 else { return x }
        return output(intermediate(x), residual: x)
    }
}
