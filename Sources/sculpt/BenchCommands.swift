import ArgumentParser
import Foundation
import SculptCore
import SculptIO
import SculptModels
import SculptTune
import SculptSubnet

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Benchmarks of the kernels and models on this CPU.", subcommands: [GEMM.self, MatVec.self, Model.self])

    struct GEMM: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "gemm", abstract: "SGEMM throughput at square sizes.")
        @Option(help: "Comma-separated matrix sizes (m = n = k).") var sizes: String = "256,512,1024,2048"
        @Option(help: "Threads (default: all cores).") var threads: Int?
        @Option(help: "Seconds of timed runs per size.") var seconds: Double = 1
        @Flag(help: "One JSON object per size.") var json = false

        func run() throws {
            let parsed = sizes.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
            guard !parsed.isEmpty, parsed.allSatisfy({ ($0 ?? 0) > 0 }) else {
                throw ValidationError("--sizes must be positive integers separated by commas, got \"\(sizes)\"")
            }
            let t = threads ?? ThreadPool.machineThreadCount
            guard t > 0 else { throw ValidationError("--threads must be positive") }
            if !json { print(table(["size", "threads", "ms/call", "GFLOP/s"], [])) }
            for n in parsed.compactMap({ $0 }) {
                let r = benchmarkSGEMM(m: n, n: n, k: n, threads: t, minimumSeconds: seconds)
                if json { print(jsonLine(r)) } else {
                    print(table(["size", "threads", "ms/call", "GFLOP/s"], [["\(n)", "\(t)", String(format: "%.3f", r.seconds * 1e3), String(format: "%.1f", r.gflops)]])
                        .split(separator: "\n").dropFirst(2).joined(separator: "\n"))
                }
            }
        }
    }

    struct MatVec: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "matvec",
            abstract: "Batch-1 matrix-vector time (decode's product) with the weights as F32 (SGEMM), Q8_0 or Q4_0 blocks, one thread.")
        @Option(help: "Weight rows (outputs).") var rows: Int = 1536
        @Option(help: "Weight columns (inputs; a multiple of 32).") var cols: Int = 576
        @Option(help: "Comma-separated storage types.") var types: String = "f32,q8_0,q4_0"
        @Option(help: "Seconds of timed calls per type.") var seconds: Double = 0.5
        @Flag(help: "One JSON object per type.") var json = false

        func run() throws {
            let names: [String: GGMLType] = ["f32": .f32, "q8_0": .q8_0, "q4_0": .q4_0]
            let list = try types.split(separator: ",").map { raw -> GGMLType in
                guard let t = names[raw.trimmingCharacters(in: .whitespaces).lowercased()] else { throw ValidationError("--types: \"\(raw)\" is not f32, q8_0 or q4_0") }
                return t
            }
            guard rows > 0, cols > 0, cols % 32 == 0 else { throw ValidationError("--rows must be positive and --cols a positive multiple of 32") }
            var rows_: [[String]] = []
            var f32Seconds: Double?
            for t in list {
                let r = try benchmarkMatVec(type: t, rows: rows, cols: cols, minimumSeconds: seconds)
                if t == .f32 { f32Seconds = r.seconds }
                if json { print(jsonLine(r)); continue }
                rows_.append([r.type, "\(rows)×\(cols)", String(format: "%.1f", r.seconds * 1e6), String(format: "%.2f", Double(r.weightBytes) / 1e6),
                              String(format: "%.1f", r.gbPerSecond), f32Seconds.map { String(format: "%.2f×", $0 / r.seconds) } ?? "-"])
            }
            if !json { print(table(["type", "matrix", "µs/call", "weight MB", "GB/s", "speed vs F32"], rows_)) }
        }
    }

    struct Model: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "model", abstract: "Inference or training-step time of a BERT model on random token ids; prefill and decode speed of a decoder LM.")
        @Argument(help: "A Hugging Face BERT or decoder directory, a GGUF decoder, a run, or a saved image classifier (CNN final/ or extracted).") var modelDir: String
        @Option(help: "Sequences per step (default 32; for a decoder 1, or 8 with --train).") var batch: Int?
        @Option var seq: Int = 128
        @Option(help: "Decoder: prompt tokens per sequence to prefill.") var prefill: Int = 128
        @Option(help: "Decoder: tokens to decode one at a time after the prefill.") var decode: Int = 64
        @Flag(help: "Time a training step (forward, backward, AdamW) instead of inference.") var train = false
        @Flag(help: "Decoder --train: with activation checkpointing.") var checkpointActivations = false
        @Option(help: "With --train: full, bitfit, lora, s2ft or sparse (which weights train).") var method: String = "full"
        @Option(help: "LoRA rank.") var loraRank: Int = 8
        @Option(help: "s2ft: heads and channels per layer; sparse: entries of the encoder.") var density: Double = 0.1
        @Option(help: "s2ft: output (default) or both (which side of each head/channel pair trains).") var s2ftSides: String = "output"
        @Option(help: "Threads (default: all cores).") var threads: Int?
        @Option(help: "Minimum seconds of timed steps.") var seconds: Double = 3
        @Flag(help: "Print one JSON object.") var json = false

        func validate() throws {
            guard (batch ?? 1) > 0, seq > 0 else { throw ValidationError("--batch and --seq must be positive") }
            guard prefill > 0, decode >= 0 else { throw ValidationError("--prefill must be positive and --decode at least 0") }
            _ = try benchmarkMethod()
        }

        func benchmarkMethod() throws -> BenchmarkMethod {
            guard loraRank > 0, density > 0, density <= 1 else { throw ValidationError("--lora-rank must be positive and --density in (0, 1]") }
            switch method {
            case "full": return .full
            case "bitfit": return .bitfit
            case "lora": return .lora(rank: loraRank)
            case "s2ft": return .s2ft(density: density, sides: try choice(s2ftSides, of: "s2ft-sides"))
            case "sparse": return .sparse(density: density)
            default: throw ValidationError("--method must be full, bitfit, lora, s2ft or sparse, got \"\(method)\"")
            }
        }

        func run() throws {
            // A run directory stands for its final/ model, as in `sculpt eval`; a plain HF
            // model directory has no classifier.json and is read as it is.
            let given = URL(fileURLWithPath: modelDir)
            let dir = ClassifierStore.classifierDirectory(given) ?? given
            if DecoderEvaluation.isDecoder(modelDir) {
                let bundle = try loadDecoder(modelDir, blockWeights: !train)
                if train {
                    let b = batch ?? 8
                    bundle.model.checkpointActivations = checkpointActivations
                    guard seq <= bundle.model.config.contextLimit else { throw CommandError("--seq \(seq) exceeds the model's context of \(bundle.model.config.contextLimit)") }
                    let r = try ModelBenchmark.runDecoderTraining(model: bundle.model, batch: b, sequence: seq, method: try benchmarkMethod(),
                                                                  threads: threads ?? ThreadPool.machineThreadCount, minimumSeconds: seconds)
                    if json { print(jsonLine(r)) } else {
                        print(table(["mode", "method", "batch", "seq", "threads", "s/step", "CPU s/step", "trainable", "peak MB"],
                                    [["train", r.method, "\(b)", "\(seq)", "\(r.threads)", String(format: "%.3f", r.secondsPerStep), String(format: "%.3f", r.cpuSecondsPerStep),
                                      "\(r.trainableParameters)", String(format: "%.0f", r.peakMemoryMB ?? 0)]]))
                    }
                    return
                }
                let b = batch ?? 1
                guard prefill + decode <= bundle.model.config.contextLimit else {
                    throw CommandError("--prefill \(prefill) + --decode \(decode) exceeds the model's context of \(bundle.model.config.contextLimit)")
                }
                let r = DecoderBenchmark.run(model: bundle.model, batch: b, prefill: prefill, decode: decode, threads: threads ?? ThreadPool.machineThreadCount)
                if json { print(jsonLine(r)) } else {
                    print(table(["batch", "threads", "prefill tokens", "prefill s", "decode tokens", "decode tokens/s"],
                                [["\(r.batch)", "\(r.threads)", "\(r.prefillTokens)", String(format: "%.4f", r.prefillSeconds), "\(r.decodeTokens)", String(format: "%.1f", r.decodeTokensPerSecond)]]))
                }
                return
            }
            let batch = self.batch ?? 32
            if !train, let kind = try? ClassifierSpec.read(from: dir.appendingPathComponent("classifier.json")).kind, kind != .bert {
                // An image classifier (a CNN run's final/ or an extracted CNN sub-network).
                let t = threads ?? ThreadPool.machineThreadCount
                let s = try RunSubnets.imageLatency(directory: dir, batch: batch, threads: t, minimumSeconds: seconds)
                if json { print(jsonLine(ImageBenchLine(mode: "inference", batch: batch, threads: t, secondsPerStep: s))) } else {
                    print(table(["mode", "batch", "threads", "s/step"], [["inference", "\(batch)", "\(t)", String(format: "%.5f", s)]]))
                }
                return
            }
            let (model, _) = try BertModel.load(directory: dir)
            guard seq <= model.config.maxPositionEmbeddings else {
                throw ValidationError("--seq \(seq) exceeds the model's max_position_embeddings (\(model.config.maxPositionEmbeddings))")
            }
            let r = try ModelBenchmark.run(model: model, batch: batch, sequence: seq, train: train, method: try benchmarkMethod(),
                                       threads: threads ?? ThreadPool.machineThreadCount, minimumSeconds: seconds)
            if json { print(jsonLine(r)) } else {
                print(table(["mode", "method", "trainable", "batch", "seq", "threads", "s/step", "cpu s/step", "steps"],
                            [[r.mode, r.method, "\(r.trainableParameters)", "\(r.batch)", "\(r.seq)", "\(r.threads)", String(format: "%.4f", r.secondsPerStep), String(format: "%.4f", r.cpuSecondsPerStep), "\(r.steps)"]]))
            }
        }
    }
}

/// `bench model --json` of an image classifier; numbers are JSON numbers.
struct ImageBenchLine: Encodable {
    let mode: String
    let batch: Int
    let threads: Int
    let secondsPerStep: Double
    enum CodingKeys: String, CodingKey { case mode, batch, threads, secondsPerStep = "seconds_per_step" }
}
