import Foundation
import Dispatch
import SculptCore
import SculptNN
import SculptIO

/// Time of one inference or training step of a BERT model on random token ids.
public struct ModelBenchmarkResult: Codable, Sendable {
    public let mode: String
    public let batch: Int
    public let seq: Int
    public let threads: Int
    public let secondsPerStep: Double
    public let steps: Int

    enum CodingKeys: String, CodingKey {
        case mode, batch, seq, threads, steps
        case secondsPerStep = "seconds_per_step"
    }
}

public enum ModelBenchmark {
    /// Runs warm-up steps, then timed steps until `minimumSeconds` have passed (at least
    /// `minimumSteps`), and reports the median step time. Training steps are forward,
    /// backward (mean-pooled features, a linear head, cross-entropy) and an AdamW update.
    public static func run(model: BertModel, batch: Int, sequence: Int, train: Bool, threads: Int,
                           warmup: Int = 1, minimumSteps: Int = 3, minimumSeconds: Double = 3, seed: UInt64 = 0) -> ModelBenchmarkResult {
        var rng = SeededRNG(seed: seed)
        let vocab = model.config.vocabSize
        let ids = (0..<(batch * sequence)).map { _ in Int32(rng.next() % UInt64(vocab)) }
        let tokens = TokenizedBatch(batchSize: batch, sequenceLength: sequence, inputIds: ids)
        let head = Linear(model.config.hiddenSize, 2, using: &rng)
        let labels = (0..<batch).map { _ in Int32(rng.next() % 2) }
        let optimizer = AdamW(learningRate: 1e-5)
        let params = model.namedParameters().map { ($0.name, $0.parameter) } + head.namedParameters().map { ("head." + $0.name, $0.parameter) }
        if train { model.train() } else { model.eval() }
        func step() {
            if train {
                let loss = crossEntropy(head(maskedMeanPool(model(tokens), mask: tokens.maskTensor)), labels: labels)
                loss.backward()
                optimizer.step(params)
                for (_, p) in params { p.grad = nil }
            } else {
                _ = withoutGradients { model(tokens) }
            }
        }
        var times: [Double] = []
        withThreads(threads) {
            for _ in 0..<warmup { step() }
            let begin = DispatchTime.now().uptimeNanoseconds
            while times.count < minimumSteps || Double(DispatchTime.now().uptimeNanoseconds - begin) / 1e9 < minimumSeconds {
                let t0 = DispatchTime.now().uptimeNanoseconds
                step()
                times.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)
                if times.count >= 1000 { break }
            }
        }
        times.sort()
        return ModelBenchmarkResult(mode: train ? "train" : "infer", batch: batch, seq: sequence, threads: threads,
                                    secondsPerStep: times[times.count / 2], steps: times.count)
    }
}
