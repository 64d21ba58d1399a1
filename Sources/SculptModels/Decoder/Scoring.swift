import Foundation
import SculptCore
import SculptNN

/// Per-token log-likelihoods of a text under a decoder (`sculpt score`).
public struct TextScore: Sendable {
    public let inputIds: [Int32]
    /// log p(token t | tokens < t) for t = 1..<n.
    public let nextTokenLogProb: [Float]
    /// Final hidden states [n, hidden] (after the last norm).
    public let lastHiddenState: Tensor
    /// Logits of the last position [vocab].
    public let lastLogits: Tensor

    public var tokens: Int { inputIds.count }
    /// Mean negative log-likelihood of tokens 1..<n (0 for a one-token text).
    public var nll: Double {
        nextTokenLogProb.isEmpty ? 0 : -nextTokenLogProb.reduce(0.0) { $0 + Double($1) } / Double(nextTokenLogProb.count)
    }
    public var perplexity: Double { Foundation.exp(nll) }
}

extension DecoderLM {
    /// Scores one token sequence in one forward pass; logits are formed `chunk` rows at a
    /// time so a long text never holds [n × vocab] at once.
    public func score(_ ids: [Int32], chunk: Int = 256) -> TextScore {
        precondition(!ids.isEmpty, "score: an empty text")
        return withoutGradients {
            let n = ids.count
            let hidden = hiddenStates(ids: ids, batch: 1, sequence: n).value
            let width = hidden.shape[1]
            var logProbs = [Float](repeating: 0, count: n - 1)
            var last = Tensor.zeros([config.vocabSize])
            var start = 0
            while start < n {
                let rows = min(chunk, n - start)
                let part = Tensor(uninitializedShape: [rows, width])
                part.storage.pointer.update(from: hidden.storage.pointer + start * width, count: rows * width)
                let logits = self.logits(Variable(part)).value
                let vocab = logits.shape[1]
                if start + rows == n {
                    last = Tensor(uninitializedShape: [vocab])
                    last.storage.pointer.update(from: logits.storage.pointer + (rows - 1) * vocab, count: vocab)
                }
                let lp = logits.softmax(log: true)
                for r in 0..<rows where start + r + 1 < n {
                    logProbs[start + r] = lp.storage.pointer[r * vocab + Int(ids[start + r + 1])]
                }
                start += rows
            }
            return TextScore(inputIds: ids, nextTokenLogProb: logProbs, lastHiddenState: hidden, lastLogits: last)
        }
    }
}

/// Prefill and decode speed of a decoder (`sculpt bench model DECODER --prefill N --decode M`).
public struct DecoderBenchmarkResult: Codable, Sendable {
    public let batch: Int
    public let threads: Int
    public let prefillTokens: Int
    /// Median seconds of one prefill of `prefillTokens` per sequence.
    public let prefillSeconds: Double
    public let decodeTokens: Int
    /// New tokens per second per sequence, one token at a time after the prefill.
    public let decodeTokensPerSecond: Double

    enum CodingKeys: String, CodingKey {
        case batch, threads
        case prefillTokens = "prefill_tokens", prefillSeconds = "prefill_seconds"
        case decodeTokens = "decode_tokens", decodeTokensPerSecond = "decode_tokens_per_second"
    }
}

public enum DecoderBenchmark {
    /// Times `repeats` prefills (median) and one decode of `decode` tokens after a prefill
    /// (random ids, greedy; eos ignored so every run decodes the same count).
    public static func run(model: DecoderLM, batch: Int, prefill: Int, decode: Int, threads: Int, repeats: Int = 3, seed: UInt64 = 0) -> DecoderBenchmarkResult {
        var rng = SeededRNG(seed: seed)
        let vocab = UInt64(model.config.vocabSize)
        let prompts = (0..<batch).map { _ in (0..<prefill).map { _ in Int32(rng.next() % vocab) } }
        return withThreads(threads) {
            let generator = DecoderGenerator(model: model)
            // Warm-up: one short generation (allocations, page faults of the weights).
            _ = generator.generate(prompts: prompts, options: GenerationOptions(maxNewTokens: 2, stopTokenIds: []))
            var prefillTimes: [Double] = []
            for _ in 0..<max(repeats, 1) {
                let caches = model.makeCaches(batch: batch, capacity: prefill + decode)
                let t0 = DispatchTime.now().uptimeNanoseconds
                withoutGradients {
                    let h = model.hiddenStates(ids: prompts.flatMap { $0 }, batch: batch, sequence: prefill, caches: caches)
                    _ = model.logits(Variable(generator.lastRows(h.value, batch: batch, steps: prefill)))
                }
                prefillTimes.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)
            }
            prefillTimes.sort()
            let median = prefillTimes[prefillTimes.count / 2]
            var decodeSeconds = 0.0
            if decode > 0 {
                // Decode time = (prefill + decode tokens) − (prefill + 1 token), both measured.
                let t0 = DispatchTime.now().uptimeNanoseconds
                _ = generator.generate(prompts: prompts, options: GenerationOptions(maxNewTokens: decode + 1, stopTokenIds: []))
                let total = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
                decodeSeconds = max(total - median, 1e-9)
            }
            return DecoderBenchmarkResult(batch: batch, threads: threads, prefillTokens: prefill, prefillSeconds: median, decodeTokens: decode,
                                          decodeTokensPerSecond: decode > 0 ? Double(decode) / decodeSeconds : 0)
        }
    }
}
