import Foundation
import SculptCore
import SculptNN

extension DecoderLM {
    /// Runs running layers `range` on rows `x` [tokens, hidden] of one sequence at `positions`,
    /// appending to `caches` (one per running layer, indexed as the layers): the residual
    /// stream after the last of them, before the final norm.
    func runLayers(_ x: Variable, positions: [Int32], range: Range<Int>, caches: [KVCache]) -> Variable {
        let maxPosition = Int(positions.max() ?? 0)
        let step = DecoderStep(batch: 1, sequence: positions.count, positions: positions, keyMask: nil, rotary: rotaryTable(covering: maxPosition + 1))
        let layers = runningLayers
        var x = x
        for i in range { x = layers[i](x, step: step, cache: caches[i]) }
        return x
    }
}

/// What self-speculative decoding did: the tokens, and how many drafted tokens the full
/// model accepted.
public struct SpeculativeResult: Sendable {
    public var tokens: [Int32]
    public var drafted: Int
    public var accepted: Int
    /// Full-model verification passes (each gives at least one token).
    public var verifications: Int
    public var acceptanceRate: Double { drafted == 0 ? 0 : Double(accepted) / Double(drafted) }
}

extension DecoderGenerator {
    /// Greedy generation where the model's first `draftLayers` layers (an early exit through
    /// the final norm and the shared LM head — a nested depth of a sorted run) propose
    /// `draftTokens` tokens one at a time and the whole model checks them in one pass,
    /// keeping the agreeing prefix and its own next token. The draft's layers are the model's
    /// first layers, so their KV caches are shared (no second model, no second cache) and
    /// the verification runs only the remaining layers on the drafted tokens. The output is
    /// the model's own greedy output.
    public func generateSpeculative(prompt: [Int32], draftLayers: Int, draftTokens: Int, options: GenerationOptions) -> SpeculativeResult {
        precondition(options.sampling.isGreedy && options.sampling.repetitionPenalty == 1, "speculative decoding is greedy")
        let layers = model.runningLayerCount
        precondition(draftLayers >= 1 && draftLayers < layers && draftTokens >= 1, "speculative decoding: draft of \(draftLayers) of \(layers) layers, \(draftTokens) tokens")
        precondition(!prompt.isEmpty, "generate: an empty prompt")
        var result = SpeculativeResult(tokens: [], drafted: 0, accepted: 0, verifications: 0)
        guard options.maxNewTokens > 0 else { return result }
        let capacity = prompt.count + options.maxNewTokens + draftTokens + 1
        precondition(capacity <= model.config.contextLimit, "generate: \(capacity) tokens exceed the context of \(model.config.contextLimit)")
        return withoutGradients {
            let caches = model.makeCaches(batch: 1, capacity: capacity)
            var rng = SeededRNG(seed: 0)  // greedy choice draws none; `choose` takes one all the same
            func greedy(_ residual: Variable) -> [Int32] {
                let logits = model.logits(model.model.norm(residual)).value
                return (0..<logits.shape[0]).map { choose(logits, row: $0, history: [], options.sampling, rng: &rng) }
            }
            var x = model.runLayers(model.model.embedTokens(prompt, shape: [prompt.count]), positions: (0..<prompt.count).map(Int32.init),
                                    range: 0..<layers, caches: caches)
            var current = greedy(Variable(lastRows(x.value, batch: 1, steps: prompt.count)))[0]
            result.tokens.append(current)
            func finished() -> Bool {
                result.tokens.count >= options.maxNewTokens || options.stopTokenIds.contains(result.tokens.last!)
            }
            while !finished() {
                let base = caches[0].length
                let k = min(draftTokens, options.maxNewTokens - result.tokens.count)
                // Draft: the first layers, one token at a time, caching as they go.
                var residuals: [Tensor] = [], proposal: [Int32] = []
                var token = current
                for j in 0..<k {
                    x = model.runLayers(model.model.embedTokens([token], shape: [1]), positions: [Int32(base + j)], range: 0..<draftLayers, caches: caches)
                    residuals.append(x.value)
                    token = greedy(x)[0]
                    proposal.append(token)
                    if options.stopTokenIds.contains(token) { break }
                }
                let n = proposal.count
                // The last proposal's first layers, then every token's remaining layers at once.
                x = model.runLayers(model.model.embedTokens([proposal[n - 1]], shape: [1]), positions: [Int32(base + n)], range: 0..<draftLayers, caches: caches)
                residuals.append(x.value)
                let stacked = Variable(Tensor.concat(residuals, axis: 0))
                let y = model.runLayers(stacked, positions: (0...n).map { Int32(base + $0) }, range: draftLayers..<layers, caches: caches)
                let verified = greedy(y)
                result.verifications += 1
                result.drafted += n
                var agree = 0
                while agree < n && proposal[agree] == verified[agree] { agree += 1 }
                result.accepted += agree
                // Keep the cache entries of `current` and the accepted proposals.
                for c in caches { c.truncate(to: base + agree + 1) }
                for t in proposal.prefix(agree) + [verified[agree]] {
                    result.tokens.append(t)
                    if finished() { break }
                }
                current = result.tokens.last!
            }
            return result
        }
    }
}
