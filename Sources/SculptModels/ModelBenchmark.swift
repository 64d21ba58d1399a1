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
    public let method: String
    /// Median process CPU time per step (all threads): on a shared machine wall time
    /// measures the neighbours, CPU time the work.
    public let cpuSecondsPerStep: Double
    public let trainableParameters: Int
    /// The process's peak resident memory so far (model loading included), in MB.
    public var peakMemoryMB: Double? = nil

    enum CodingKeys: String, CodingKey {
        case mode, batch, seq, threads, steps, method
        case trainableParameters = "trainable_parameters", cpuSecondsPerStep = "cpu_seconds_per_step"
        case secondsPerStep = "seconds_per_step", peakMemoryMB = "peak_memory_mb"
    }
}

/// Which weights a benchmarked training step updates (the fine-tuning methods' set-ups).
public enum BenchmarkMethod: Sendable, Equatable {
    case full
    case bitfit
    /// LoRA on query and value (PEFT's BERT default), alpha = 2r.
    case lora(rank: Int)
    /// s2ft with this density of heads and FFN channels per layer, training `sides`.
    case s2ft(density: Double, sides: S2FTSides)
    /// LT-SFT's second phase: this fraction of encoder entries (a random support) under AdamW masks.
    case sparse(density: Double)

    public var name: String {
        switch self {
        case .full: return "full"
        case .bitfit: return "bitfit"
        case .lora(let r): return "lora-r\(r)"
        case .s2ft(let d, let sides): return "s2ft-\(sides.rawValue)-\(d)"
        case .sparse(let d): return "sparse-\(d)"
        }
    }
}

public enum ModelBenchmark {
    /// Runs warm-up steps, then timed steps until `minimumSeconds` have passed (at least
    /// `minimumSteps`), and reports the median step time. Training steps are forward,
    /// backward (mean-pooled features, a linear head, cross-entropy) and an AdamW update.
    public static func run(model: BertModel, batch: Int, sequence: Int, train: Bool, method: BenchmarkMethod = .full, threads: Int,
                           warmup: Int = 1, minimumSteps: Int = 3, minimumSeconds: Double = 3, seed: UInt64 = 0) throws -> ModelBenchmarkResult {
        var rng = SeededRNG(seed: seed)
        let vocab = model.config.vocabSize
        let ids = (0..<(batch * sequence)).map { _ in Int32(rng.next() % UInt64(vocab)) }
        let tokens = TokenizedBatch(batchSize: batch, sequenceLength: sequence, inputIds: ids)
        let head = Linear(model.config.hiddenSize, 2, using: &rng)
        let labels = (0..<batch).map { _ in Int32(rng.next() % 2) }
        let optimizer = AdamW(learningRate: 1e-5)
        switch method {
        case .full: break
        case .bitfit:
            model.setTrainable(false)
            model.setTrainable(true) { $0.hasSuffix(".bias") }
        case .lora(let r):
            try applyLoRA(to: model, rank: r, alpha: Float(2 * r), dropout: 0.05, rng: &rng)
        case .s2ft(let d, let sides):
            _ = applyS2FT(S2FTPlan.choose(for: model, density: d, seed: seed, trainInputSide: sides.trainsInputSide), to: model)
        case .sparse(let d):
            optimizer.updateMasks = randomSupport(of: model, density: d, rng: &rng) { $0.hasPrefix("encoder.") }.prepareSparseTraining(model)
        }
        let params = model.trainableParameters().map { ($0.name, $0.parameter) } + head.namedParameters().map { ("head." + $0.name, $0.parameter) }
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
        let (times, cpuTimes) = timeSteps(threads: threads, warmup: warmup, minimumSteps: minimumSteps, minimumSeconds: minimumSeconds, step)
        return ModelBenchmarkResult(mode: train ? "train" : "infer", batch: batch, seq: sequence, threads: threads,
                                    secondsPerStep: times[times.count / 2], steps: times.count, method: method.name, cpuSecondsPerStep: cpuTimes[cpuTimes.count / 2],
                                    trainableParameters: params.reduce(0) { $0 + $1.1.value.count })
    }

    /// A random support of `density` of the entries of each parameter `candidate` accepts (LT-SFT's
    /// second phase, for timing).
    static func randomSupport(of model: any Module, density d: Double, rng: inout SeededRNG, where candidate: (String) -> Bool) -> SparseDiff {
        var support = SparseDiff()
        for (n, p) in model.namedParameters() where candidate(n) {
            let count = p.value.count, k = max(1, Int(d * Double(count)))
            var picked = Set<Int64>()
            while picked.count < k { picked.insert(Int64(rng.next() % UInt64(count))) }
            support.parts[n] = SparseDiff.Part(shape: p.value.shape, indices: picked.sorted(), values: [Float](repeating: 0, count: k))
        }
        return support
    }

    /// Median wall and process-CPU seconds of `step` after `warmup` untimed runs, timed until
    /// `minimumSeconds` have passed and at least `minimumSteps` ran (sorted).
    static func timeSteps(threads: Int, warmup: Int, minimumSteps: Int, minimumSeconds: Double, _ step: () -> Void) -> (wall: [Double], cpu: [Double]) {
        var times: [Double] = [], cpuTimes: [Double] = []
        func cpuNow() -> Double {
            var t = timespec()
            clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t)
            return Double(t.tv_sec) + Double(t.tv_nsec) / 1e9
        }
        withThreads(threads) {
            for _ in 0..<warmup { step() }
            let begin = DispatchTime.now().uptimeNanoseconds
            while times.count < minimumSteps || Double(DispatchTime.now().uptimeNanoseconds - begin) / 1e9 < minimumSeconds {
                let t0 = DispatchTime.now().uptimeNanoseconds, c0 = cpuNow()
                step()
                times.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)
                cpuTimes.append(cpuNow() - c0)
                if times.count >= 1000 { break }
            }
        }
        return (times.sorted(), cpuTimes.sorted())
    }

    /// The peak resident memory of this process so far, in MB: Linux's VmHWM, which starts
    /// afresh at exec (getrusage's ru_maxrss would count a parent's memory at fork).
    public static func peakMemoryMB() -> Double {
        if let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
           let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
           let kb = Double(line.split(separator: " ").dropFirst().first ?? "") {
            return kb / 1024
        }
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Double(usage.ru_maxrss) / 1024
    }

    /// A decoder's causal-LM training step on random token ids, every token a target:
    /// forward, the loss through the LM head over the vocabulary in chunks, backward and an
    /// AdamW update of what `method` trains (LoRA on q_proj and v_proj with alpha = 2r;
    /// BitFit: biases and norm weights; s2ft: random heads and channels; sparse: a random
    /// support of the layers' entries).
    public static func runDecoderTraining(model: DecoderLM, batch: Int, sequence: Int, method: BenchmarkMethod, threads: Int,
                                          warmup: Int = 1, minimumSteps: Int = 3, minimumSeconds: Double = 3, seed: UInt64 = 0) throws -> ModelBenchmarkResult {
        var rng = SeededRNG(seed: seed)
        let vocab = model.config.vocabSize
        let ids = (0..<(batch * sequence)).map { _ in Int32(rng.next() % UInt64(vocab)) }
        let labels = DecoderLM.shiftedLabels(ids, batch: batch, sequence: sequence)
        let optimizer = AdamW(learningRate: 1e-5)
        switch method {
        case .full: break
        case .bitfit:
            model.setTrainable(false)
            model.setTrainable(true, where: DecoderLM.isBitFitParameter)
        case .lora(let r):
            try applyLoRA(to: model, targetModules: .names(["q_proj", "v_proj"]), rank: r, alpha: Float(2 * r), dropout: 0.05, rng: &rng)
        case .s2ft(let d, let sides):
            _ = applyS2FT(S2FTPlan.choose(forDecoder: model, density: d, seed: seed, trainInputSide: sides.trainsInputSide), to: model)
        case .sparse(let d):
            optimizer.updateMasks = randomSupport(of: model, density: d, rng: &rng, where: DecoderLM.isSparseCandidate).prepareSparseTraining(model)
        }
        let params = model.trainableParameters()
        model.train()
        let rows = labels.indices.filter { labels[$0] != -100 }
        let targetRows = rows.map(Int32.init), targets = rows.map { labels[$0] }
        let (times, cpuTimes) = timeSteps(threads: threads, warmup: warmup, minimumSteps: minimumSteps, minimumSeconds: minimumSeconds) {
            let hidden = model.hiddenStates(ids: ids, batch: batch, sequence: sequence)
            let loss = lmCrossEntropy(hidden: hidden.indexSelect(axis: 0, targetRows), weight: model.headWeight, labels: targets)
            loss.backward()
            optimizer.step(params)
            for (_, p) in params { p.grad = nil }
        }
        var r = ModelBenchmarkResult(mode: "train", batch: batch, seq: sequence, threads: threads, secondsPerStep: times[times.count / 2], steps: times.count,
                                     method: method.name, cpuSecondsPerStep: cpuTimes[cpuTimes.count / 2],
                                     trainableParameters: params.reduce(0) { $0 + $1.parameter.value.count })
        r.peakMemoryMB = peakMemoryMB()
        return r
    }
}

/// One timing of a batch-1 matrix-vector product y = W x (W rows × cols) with W stored as
/// `type`: F32 through the SGEMM Sculpt's decode uses today, Q8_0 / Q4_0 through the block kernels.
public struct MatVecBenchmarkResult: Codable, Sendable {
    public let type: String
    public let rows: Int, cols: Int
    /// Fastest call, seconds (one thread).
    public let seconds: Double
    /// Weight bytes read per call.
    public let weightBytes: Int
    /// weightBytes / seconds / 1e9.
    public let gbPerSecond: Double
}

/// Times `type` in {F32, Q8_0, Q4_0} on random weights, one thread, fastest of the calls made
/// over `minimumSeconds`.
public func benchmarkMatVec(type: GGMLType, rows: Int, cols: Int, minimumSeconds: Double = 0.5) throws -> MatVecBenchmarkResult {
    guard [.f32, .q8_0, .q4_0].contains(type), rows > 0, cols > 0, cols % 32 == 0 else {
        throw GGUFError.invalidArgument(reason: "matvec benchmark needs F32, Q8_0 or Q4_0 and columns in whole 32-value blocks")
    }
    var rng = SeededRNG(seed: 7)
    let w = (0..<(rows * cols)).map { _ in Float.random(in: -1...1, using: &rng) }
    let x = (0..<cols).map { _ in Float.random(in: -1...1, using: &rng) }
    var y = [Float](repeating: 0, count: rows)
    let rowBytes = type.rowBytes(cols)!
    var q = [UInt8](repeating: 0, count: rowBytes * rows)
    try w.withUnsafeBufferPointer { src in
        try q.withUnsafeMutableBytes { dst in
            for r in 0..<rows { try quantizeRow(type: type, from: src.baseAddress! + r * cols, count: cols, into: dst.baseAddress! + r * rowBytes) }
        }
    }
    let pool = ThreadPool(threads: 1)
    func call() -> Double {
        let start = DispatchTime.now().uptimeNanoseconds
        x.withUnsafeBufferPointer { xp in
            y.withUnsafeMutableBufferPointer { yp in
                switch type {
                case .q8_0: q.withUnsafeBytes { q8_0MatVec($0.baseAddress!, rows: rows, cols: cols, x: xp.baseAddress!, y: yp.baseAddress!) }
                case .q4_0: q.withUnsafeBytes { q4_0MatVec($0.baseAddress!, rows: rows, cols: cols, x: xp.baseAddress!, y: yp.baseAddress!) }
                default:
                    w.withUnsafeBufferPointer { wp in
                        sgemm(transA: false, transB: true, m: 1, n: rows, k: cols, alpha: 1, a: xp.baseAddress!, lda: cols,
                              b: wp.baseAddress!, ldb: cols, beta: 0, c: yp.baseAddress!, ldc: rows, pool: pool)
                    }
                }
            }
        }
        return Double(DispatchTime.now().uptimeNanoseconds - start) * 1e-9
    }
    for _ in 0..<3 { _ = call() }
    var best = Double.infinity, total = 0.0, calls = 0
    while calls < 5 || total < minimumSeconds { let t = call(); best = min(best, t); total += t; calls += 1 }
    let bytes = rowBytes * rows
    return MatVecBenchmarkResult(type: type.name, rows: rows, cols: cols, seconds: best, weightBytes: bytes, gbPerSecond: Double(bytes) / best / 1e9)
}
