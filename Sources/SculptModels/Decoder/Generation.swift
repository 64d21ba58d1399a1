import Foundation
import SculptCore
import SculptNN

/// How the next token is chosen: greedy at temperature 0, else sampled from the processed
/// distribution with transformers' logits processors in its order (repetition penalty, then
/// temperature, top-k, top-p).
public struct SamplingOptions: Sendable, Equatable {
    public var temperature: Float
    public var topK: Int?
    public var topP: Float?
    public var repetitionPenalty: Float
    public var seed: UInt64

    public init(temperature: Float = 0, topK: Int? = nil, topP: Float? = nil, repetitionPenalty: Float = 1, seed: UInt64 = 0) {
        self.temperature = temperature; self.topK = topK; self.topP = topP; self.repetitionPenalty = repetitionPenalty; self.seed = seed
    }

    public var isGreedy: Bool { temperature == 0 }
}

public struct GenerationOptions: Sendable {
    public var maxNewTokens: Int
    /// Generation of a sequence ends after any of these (eos).
    public var stopTokenIds: Set<Int32>
    public var sampling: SamplingOptions

    public init(maxNewTokens: Int, stopTokenIds: Set<Int32>, sampling: SamplingOptions = SamplingOptions()) {
        self.maxNewTokens = maxNewTokens; self.stopTokenIds = stopTokenIds; self.sampling = sampling
    }
}

/// Generates with a KV cache: the prompts (left-padded to one length, as transformers pads
/// for generation) are prefilled in one forward pass, then every sequence advances one
/// token per step until it stops or reaches `maxNewTokens`.
public struct DecoderGenerator {
    public let model: DecoderLM

    public init(model: DecoderLM) { self.model = model }

    /// The new tokens of each prompt (stop token included when one ended it). `onToken`
    /// receives (prompt index, token) as each is chosen; `shouldStop` (prompt index, new
    /// tokens so far) ends a sequence early (stop strings).
    public func generate(prompts: [[Int32]], options: GenerationOptions,
                         onToken: ((Int, Int32) -> Void)? = nil, shouldStop: ((Int, [Int32]) -> Bool)? = nil) -> [[Int32]] {
        let batch = prompts.count
        guard batch > 0, options.maxNewTokens > 0 else { return prompts.map { _ in [] } }
        let longest = prompts.map(\.count).max() ?? 0
        precondition(longest > 0, "generate: an empty prompt")
        let capacity = longest + options.maxNewTokens
        precondition(capacity <= model.config.contextLimit, "generate: \(capacity) tokens exceed the context of \(model.config.contextLimit)")
        return withoutGradients {
            let caches = model.makeCaches(batch: batch, capacity: capacity)
            let padId = Int32(model.config.padTokenId ?? model.config.eosTokenIds.first ?? 0)
            var ids = [Int32](), keyMask = [Float](repeating: 1, count: batch * capacity)
            var nextPosition = [Int32](repeating: 0, count: batch), positions = [Int32]()
            for (b, p) in prompts.enumerated() {
                let pad = longest - p.count
                ids += [Int32](repeating: padId, count: pad) + p
                for t in 0..<pad { keyMask[b * capacity + t] = 0 }
                // Positions count real tokens only: cumsum(mask) − 1, pads at 1 (transformers).
                positions += [Int32](repeating: 1, count: pad) + (0..<p.count).map(Int32.init)
                nextPosition[b] = Int32(p.count)
            }
            let mask = Tensor(shape: [batch, capacity], data: keyMask)
            var rng = SeededRNG(seed: options.sampling.seed)
            var outputs = [[Int32]](repeating: [], count: batch)
            var done = [Bool](repeating: false, count: batch)
            var history = prompts
            var stepIds = ids, steps = longest, stepPositions = positions
            for _ in 0..<options.maxNewTokens {
                let hidden = model.hiddenStates(ids: stepIds, batch: batch, sequence: steps, positions: stepPositions, caches: caches, cacheKeyMask: mask)
                let last = lastRows(hidden.value, batch: batch, steps: steps)
                let logits = model.logits(Variable(last)).value
                var next = [Int32]()
                for b in 0..<batch {
                    if done[b] { next.append(padId); continue }
                    let token = choose(logits, row: b, history: history[b], options.sampling, rng: &rng)
                    next.append(token)
                    outputs[b].append(token)
                    history[b].append(token)
                    onToken?(b, token)
                    if options.stopTokenIds.contains(token) || (shouldStop?(b, outputs[b]) ?? false) { done[b] = true }
                }
                if done.allSatisfy({ $0 }) { break }
                stepIds = next
                steps = 1
                stepPositions = nextPosition
                for b in 0..<batch { nextPosition[b] += 1 }
            }
            return outputs
        }
    }

    /// The last row of each sequence: [batch, hidden] from [batch·steps, hidden].
    func lastRows(_ h: Tensor, batch: Int, steps: Int) -> Tensor {
        if steps == 1 { return h }
        let width = h.shape[1]
        let out = Tensor(uninitializedShape: [batch, width])
        for b in 0..<batch { (out.storage.pointer + b * width).update(from: h.storage.pointer + ((b + 1) * steps - 1) * width, count: width) }
        return out
    }

    /// The next token from row `row` of logits [batch, vocab].
    func choose(_ logits: Tensor, row: Int, history: [Int32], _ s: SamplingOptions, rng: inout SeededRNG) -> Int32 {
        let vocab = logits.shape[1]
        let rowScores = UnsafeBufferPointer(start: logits.storage.pointer + row * vocab, count: vocab)
        if s.isGreedy && s.repetitionPenalty == 1 {
            // The common case reads the row in place (no copy of the vocabulary per token).
            var best = 0
            for i in 1..<vocab where rowScores[i] > rowScores[best] { best = i }
            return Int32(best)
        }
        var scores = Array(rowScores)
        if s.repetitionPenalty != 1 {
            for t in Set(history) where t >= 0 && Int(t) < vocab {
                let v = scores[Int(t)]
                scores[Int(t)] = v < 0 ? v * s.repetitionPenalty : v / s.repetitionPenalty
            }
        }
        if s.isGreedy {
            var best = 0
            for i in 1..<vocab where scores[i] > scores[best] { best = i }
            return Int32(best)
        }
        return Int32(SamplingOptions.sample(scores: scores, s, rng: &rng))
    }
}

extension SamplingOptions {
    /// Samples an index from scores after temperature, top-k and top-p (transformers'
    /// warpers: top-k keeps ties with the k-th score; top-p keeps the smallest set of the
    /// most likely tokens whose probability reaches p, at least one).
    static func sample(scores: [Float], _ s: SamplingOptions, rng: inout SeededRNG) -> Int {
        var order = Array(scores.indices)
        order.sort { scores[$0] > scores[$1] || (scores[$0] == scores[$1] && $0 < $1) }
        var keep = order.count
        if let k = s.topK, k > 0, k < keep {
            let kth = scores[order[k - 1]]
            keep = k
            while keep < order.count && scores[order[keep]] >= kth { keep += 1 }
        }
        let scaled = order.prefix(keep).map { Double(scores[$0]) / Double(s.temperature) }
        let m = scaled.first ?? 0
        var probs = scaled.map { Foundation.exp($0 - m) }
        let z = probs.reduce(0, +)
        probs = probs.map { $0 / z }
        if let p = s.topP, p < 1 {
            var cumulative = 0.0, n = 0
            while n < probs.count { cumulative += probs[n]; n += 1; if cumulative >= Double(p) { break } }
            probs = Array(probs.prefix(max(n, 1)))
            let z2 = probs.reduce(0, +)
            probs = probs.map { $0 / z2 }
        }
        let u = Double(rng.next() >> 11) / Double(1 << 53)
        var acc = 0.0
        for (i, q) in probs.enumerated() {
            acc += q
            if u < acc { return order[i] }
        }
        return order[probs.count - 1]
    }
}
