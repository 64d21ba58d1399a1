import XCTest
import SculptCore
import SculptNN
import SculptIO
import SculptModels
import SculptTestSupport
@testable import SculptTune

/// Chat SFT of a decoder on the tiny decoder made here: target masking, bad chat lines,
/// the methods' trainable sets and files, resume, and the causal-LM loss against a plain
/// full-logits computation.
final class CausalLMTrainingTests: XCTestCase {
    var dir: URL!
    var model: URL!
    override func setUpWithError() throws {
        dir = SharedData.temporaryDirectory("sculpt-causal-lm")
        model = try TinyDecoder.write(to: dir.appendingPathComponent("tiny"))
    }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    func text() throws -> DecoderText { try DecoderBundle.load(path: model.path).text }

    func write(_ name: String, _ lines: [String]) throws -> URL {
        let url = dir.appendingPathComponent(name)
        try Data((lines.joined(separator: "\n") + "\n").utf8).write(to: url)
        return url
    }

    func config(_ data: URL, out: String, method: String = "full") -> TrainConfig {
        var c = TrainConfig()
        c.model = model.path; c.data = data.path; c.out = dir.appendingPathComponent(out).path; c.method = method
        c.epochs = 2; c.batchSize = 4; c.lr = 3e-3; c.valFraction = 0.2; c.logEvery = 1; c.threads = 1
        return c
    }

    func testAssistantTurnsAndTheirEndOfTurnAreTheTargets() throws {
        let url = try write("chat.jsonl", [
            #"{"messages":[{"role":"system","content":"be brief"},{"role":"user","content":"hello"},{"role":"assistant","content":"hi"},{"role":"user","content":"and?"},{"role":"assistant","content":"bye"}]}"#,
            #"{"prompt":"say hello:","completion":" hello"}"#,
            #"{"text":"hello hello"}"#,
        ])
        let t = try text()
        let data = try LMData.load(url, text: t, maxLength: 128, trainOn: .completion)
        XCTAssertEqual(data.examples.count, 3)
        let chat = data.examples[0]
        XCTAssertEqual(t.tokenizer.decode(chat.ids), try t.renderChat([ChatMessage(role: "system", content: "be brief"), ChatMessage(role: "user", content: "hello"),
                                                                      ChatMessage(role: "assistant", content: "hi"), ChatMessage(role: "user", content: "and?"),
                                                                      ChatMessage(role: "assistant", content: "bye")], addGenerationPrompt: false))
        // The targets are each assistant turn with the "<|im_end|>\n" the template writes after it.
        let targets = zip(chat.ids, chat.labels).filter { $0.1 != LMData.ignore }.map(\.0)
        XCTAssertEqual(t.tokenizer.decode(targets), "hi<|im_end|>\nbye<|im_end|>\n")
        XCTAssertEqual(chat.reference, "bye")
        XCTAssertEqual(chat.promptMessages?.count, 4)
        // A completion is learnt with the EOS after it; plain text whole.
        let pc = data.examples[1]
        XCTAssertEqual(t.tokenizer.decode(zip(pc.ids, pc.labels).filter { $0.1 != LMData.ignore }.map(\.0)), " hello<|im_end|>")
        XCTAssertEqual(data.examples[2].labels, data.examples[2].ids)
        // --train-on all learns the prompt too.
        let all = try LMData.load(url, text: t, maxLength: 128, trainOn: .all)
        XCTAssertEqual(all.examples[0].labels, all.examples[0].ids)
    }

    func testTruncationIsCountedAndNeverSilentlyDropsATarget() throws {
        let long = String(repeating: "hello ", count: 40)
        let url = try write("long.jsonl", [
            #"{"messages":[{"role":"user","content":"\#(long)"},{"role":"assistant","content":"hi"}]}"#,
            #"{"messages":[{"role":"user","content":"x"},{"role":"assistant","content":"\#(long)"}]}"#,
            #"{"messages":[{"role":"user","content":"x"},{"role":"assistant","content":"y"}]}"#,
        ])
        let data = try LMData.load(url, text: try text(), maxLength: 24, trainOn: .completion)
        XCTAssertEqual(data.truncated, 2)
        XCTAssertEqual(data.dropped, 1, "the first example's answer lies past 24 tokens")
        XCTAssertEqual(data.examples.map(\.line), [2, 3])
        XCTAssertEqual(data.examples[0].ids.count, 24)
        XCTAssertTrue(data.truncationNote!.contains("2 of 3 examples"), data.truncationNote!)
        XCTAssertTrue(data.truncationNote!.contains("1 of them lost every target token"), data.truncationNote!)
    }

    func testBadChatLinesNameTheLine() throws {
        let good = #"{"messages":[{"role":"user","content":"a"},{"role":"assistant","content":"b"}]}"#
        let cases: [(String, String)] = [
            (#"{"messages":[{"content":"a"},{"role":"assistant","content":"b"}]}"#, "has no \"role\""),
            (#"{"messages":[{"role":"user","content":"a"},{"role":"user","content":"b"}]}"#, "must alternate"),
            (#"{"messages":[{"role":"user","content":"a"},{"role":"assistant","content":"  "}]}"#, "assistant turn is empty"),
            (#"{"messages":[{"role":"user","content":"a"}]}"#, "no assistant turn"),
            (#"{"messages":[{"role":"robot","content":"a"}]}"#, "unknown role"),
            (#"{"messages":[{"role":"user","content":"a"},{"role":"system","content":"b"}]}"#, "system message must come first"),
            (#"{"prompt":"a"}"#, "needs a \"completion\""),
            (#"{"question":"a"}"#, "expected \"messages\""),
            ("not json", "not valid JSON"),
        ]
        let t = try text()
        for (i, (line, fragment)) in cases.enumerated() {
            let url = try write("bad\(i).jsonl", [good, line])
            XCTAssertThrowsError(try LMData.load(url, text: t, maxLength: 64, trainOn: .completion), line) { e in
                XCTAssertTrue("\(e)".contains("bad\(i).jsonl"), "\(e)")
                XCTAssertTrue("\(e)".contains("line 2") || "\(e)".contains(":2"), "\(e)")
                XCTAssertTrue("\(e)".contains(fragment), "\(line): \(e)")
            }
        }
    }

    /// The fast loss (target rows only, chunked over the vocabulary) equals transformers'
    /// full-logits loss with −100 labels, value and gradients.
    func testCausalLMLossMatchesFullLogitsLoss() throws {
        let t = try text()
        let url = try TinyDecoder.chatFile(dir.appendingPathComponent("chat.jsonl"), count: 5)
        let examples = try LMData.load(url, text: t, maxLength: 64, trainOn: .completion).examples
        let decoder = DecoderLM(config: TinyDecoder.config, seed: 5)
        let fast = CausalLMTask.loss(decoder, examples, padId: 262)
        fast.backward()
        let fastGrads = decoder.namedParameters().map { $0.parameter.grad! }
        decoder.zeroGrad()
        let (ids, labels, b, s) = CausalLMTask.paddedBatch(examples, padId: 262)
        let mask = ids.indices.map { Int32($0 % s < examples[$0 / s].ids.count ? 1 : 0) }
        let reference = decoder.causalLMLoss(ids: ids, batch: b, sequence: s, attentionMask: mask, labels: labels)
        reference.backward()
        XCTAssertEqual(fast.value.scalar, reference.value.scalar, accuracy: 1e-5)
        for ((name, p), g) in zip(decoder.namedParameters(), fastGrads) {
            XCTAssertLessThan(g.maxAbsDifference(p.grad!), 1e-5, name)
        }
    }

    /// Activation checkpointing changes memory, not arithmetic: the same loss and gradients,
    /// LoRA dropout masks included (the re-run draws the same ones).
    func testCheckpointedLayersGiveTheSameGradients() throws {
        let url = try TinyDecoder.chatFile(dir.appendingPathComponent("chat.jsonl"), count: 6)
        let examples = try LMData.load(url, text: try text(), maxLength: 64, trainOn: .completion).examples
        var results: [(Float, [String: Tensor], [SeededRNG])] = []
        for checkpoint in [false, true] {
            let decoder = DecoderLM(config: TinyDecoder.config, seed: 5)
            var rng = SeededRNG(seed: 1)
            try applyLoRA(to: decoder, targetModules: .names(["q_proj", "v_proj", "down_proj"]), rank: 4, alpha: 8, dropout: 0.3, rng: &rng)
            for (n, p) in decoder.namedParameters() where n.hasSuffix("lora_B.weight") { p.value = Tensor.randomNormal(p.value.shape, std: 0.1, using: &rng) }
            decoder.setTrainable(true) { $0.hasSuffix("norm.weight") }
            decoder.checkpointActivations = checkpoint
            let loss = CausalLMTask.loss(decoder, examples, padId: 262)
            loss.backward()
            let grads = Dictionary(uniqueKeysWithValues: decoder.trainableParameters().map { ($0.name, $0.parameter.grad!) })
            results.append((loss.value.scalar, grads, decoder.loraLayers().map { $0.layer.lora!.rng }))
        }
        XCTAssertEqual(results[0].0, results[1].0)
        XCTAssertEqual(Set(results[0].1.keys), Set(results[1].1.keys))
        XCTAssertGreaterThan(results[0].1.count, 12)
        for (n, g) in results[0].1 { XCTAssertLessThan(g.maxAbsDifference(results[1].1[n]!), 1e-6, n) }
        XCTAssertEqual(results[0].2, results[1].2, "the dropout streams end where they would without checkpointing")
    }

    /// Packing changes the layout, not the loss: several examples per row, each attending only
    /// itself from position 0, give the unpacked batch's loss and gradients.
    func testPackedBatchesGiveTheUnpackedLossAndGradients() throws {
        let url = try write("mixed.jsonl", [
            #"{"messages":[{"role":"user","content":"hello"},{"role":"assistant","content":"hi"}]}"#,
            #"{"text":"hello hello hello"}"#,
            #"{"prompt":"say hello:","completion":" hello"}"#,
            #"{"messages":[{"role":"user","content":"a longer question here"},{"role":"assistant","content":"a longer answer"}]}"#,
            #"{"text":"he"}"#,
        ])
        let examples = try LMData.load(url, text: try text(), maxLength: 64, trainOn: .completion).examples
        let decoder = DecoderLM(config: TinyDecoder.config, seed: 5)
        let packed = CausalLMTask.packedBatch(examples, padId: 262, capacity: 48)
        XCTAssertLessThan(packed.batch, examples.count, "several examples share a row")
        var results: [(Float, [Tensor])] = []
        for capacity in [nil, 48] {
            let loss = CausalLMTask.loss(decoder, examples, padId: 262, packInto: capacity)
            loss.backward()
            results.append((loss.value.scalar, decoder.namedParameters().map { $0.parameter.grad! }))
            decoder.zeroGrad()
        }
        XCTAssertEqual(results[0].0, results[1].0, accuracy: 1e-5)
        for (a, b) in zip(results[0].1, results[1].1) { XCTAssertLessThan(a.maxAbsDifference(b), 1e-5) }
    }

    func testFullSFTLearnsTheAnswersAndWritesAnHFDirectory() throws {
        let data = try TinyDecoder.chatFile(dir.appendingPathComponent("chat.jsonl"), count: 40)
        var c = config(data, out: "full")
        c.epochs = 12; c.lr = 1e-2; c.warmupRatio = 0.1
        let r = try Trainer.run(c)
        XCTAssertEqual(r.outcome, .completed)
        let losses = MetricsLog.read(RunDirectory(r.runDirectory).metrics).compactMap(\.loss)
        XCTAssertLessThan(losses.suffix(4).reduce(0, +) / 4, losses.prefix(4).reduce(0, +) / 4 * 0.5, "\(losses)")
        XCTAssertNotNil(r.validationLoss)
        // final/ is a decoder directory with the tokenizer and template, loading to the trained weights.
        let final = try DecoderBundle.load(path: r.runDirectory.appendingPathComponent("final").path)
        XCTAssertNotNil(final.chatTemplate)
        let loss = CausalLMTask.meanLoss(final.model, try LMData.load(data, text: final.text, maxLength: 128, trainOn: .completion).examples, padId: 262, batchSize: 8)
        XCTAssertLessThan(loss, 1.0)
    }

    func testLoRAWritesAPEFTCausalLMAdapterAndBitFitTrainsNorms() throws {
        let data = try TinyDecoder.chatFile(dir.appendingPathComponent("chat.jsonl"), count: 16)
        let r = try Trainer.run(config(data, out: "lora", method: "lora"))
        let final = r.runDirectory.appendingPathComponent("final")
        let peft = try PEFTLoRAConfig.load(from: final.appendingPathComponent(PEFTLoRAConfig.configFileName))
        XCTAssertEqual(peft.taskType, "CAUSAL_LM")
        XCTAssertEqual(peft.targetModules, .names(["q_proj", "v_proj"]))
        let f = try SafeTensorsFile(url: final.appendingPathComponent(PEFTLoRAConfig.weightsFileName))
        XCTAssertEqual(f.names.count, 2 * 2 * 2)
        XCTAssertTrue(f.names.contains("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"), "\(f.names)")
        XCTAssertTrue(f.names.contains("base_model.model.model.layers.1.self_attn.v_proj.lora_B.weight"), "\(f.names)")
        XCTAssertGreaterThan(try f.tensor("base_model.model.model.layers.1.self_attn.v_proj.lora_B.weight").scalars.map(abs).max()!, 0)
        // The adapter directory loads as a decoder (base + adapter merged) with the run's validation loss.
        let merged = try DecoderBundle.load(path: final.path)
        let examples = try LMData.load(data, text: merged.text, maxLength: 128, trainOn: .completion).examples
        let validation = validationSplit(count: examples.count, fraction: 0.2, seed: 0).validation.map { examples[$0] }
        XCTAssertEqual(CausalLMTask.meanLoss(merged.model, validation, padId: 262, batchSize: 3), try XCTUnwrap(r.validationLoss), accuracy: 1e-4)

        var all = config(data, out: "lora-all", method: "lora")
        all.loraTargets = "all-linear"
        let ra = try Trainer.run(all)
        let fa = try SafeTensorsFile(url: ra.runDirectory.appendingPathComponent("final").appendingPathComponent(PEFTLoRAConfig.weightsFileName))
        XCTAssertEqual(fa.names.count, 2 * 7 * 2)

        let rb = try Trainer.run(config(data, out: "bitfit", method: "bitfit"))
        let record = try JSONDecoder().decode(RunRecord.self, from: Data(contentsOf: RunDirectory(rb.runDirectory).runJSON))
        XCTAssertEqual(record.trainableParameters, 32 * (2 * 2 + 1), "the five RMSNorm weights: the tiny llama has no biases")
    }

    /// s2ft on a decoder changes exactly the chosen heads' o_proj columns and the chosen
    /// channels' down_proj columns (and, with both sides, their q_proj and gate/up rows);
    /// everything else of final/ equals the base.
    func testS2FTChangesOnlyThePlannedColumnsAndRows() throws {
        let data = try TinyDecoder.chatFile(dir.appendingPathComponent("chat.jsonl"), count: 16)
        let base = try DecoderBundle.load(path: model.path).model.stateDict()
        for sides in ["output", "both"] {
            var c = config(data, out: "s2ft-\(sides)", method: "s2ft")
            c.density = 0.25; c.s2ftHeadDensity = 0.5; c.s2ftSides = sides
            let r = try Trainer.run(c)
            let plan = try XCTUnwrap(Checkpoint.readState(from: RunDirectory(r.runDirectory).lastCheckpoint).s2ftPlan)
            let record = try JSONDecoder().decode(RunRecord.self, from: Data(contentsOf: RunDirectory(r.runDirectory).runJSON))
            XCTAssertEqual(record.parameters, base.values.reduce(0) { $0 + $1.count }, "the blocks are not counted twice")
            let tuned = try DecoderBundle.load(path: r.runDirectory.appendingPathComponent("final").path).model.stateDict()
            XCTAssertEqual(Set(tuned.keys), Set(base.keys))
            for (name, t) in tuned {
                let b = base[name]!
                let cols = t.shape.count == 2 ? t.shape[1] : 1
                var changedRows = Set<Int>(), changedCols = Set<Int>()
                for i in 0..<t.count where t.storage.pointer[i] != b.storage.pointer[i] { changedRows.insert(i / cols); changedCols.insert(i % cols) }
                guard let layerIndex = name.split(separator: ".").dropFirst(2).first.flatMap({ Int($0) }) else {
                    XCTAssertTrue(changedRows.isEmpty, "\(name) changed"); continue
                }
                let layer = plan.layers[layerIndex]
                let headCols = Set(layer.heads.flatMap { ($0 * 8)..<(($0 + 1) * 8) })
                switch name.split(separator: ".").dropFirst(3).joined(separator: ".") {
                case "self_attn.o_proj.weight":
                    XCTAssertFalse(changedCols.isEmpty, name); XCTAssertTrue(changedCols.isSubset(of: headCols), "\(name): \(changedCols)")
                case "mlp.down_proj.weight":
                    XCTAssertFalse(changedCols.isEmpty, name); XCTAssertTrue(changedCols.isSubset(of: Set(layer.channels)), "\(name): \(changedCols)")
                case "self_attn.q_proj.weight" where sides == "both":
                    XCTAssertFalse(changedRows.isEmpty, name); XCTAssertTrue(changedRows.isSubset(of: headCols), "\(name): \(changedRows)")
                case "mlp.gate_proj.weight" where sides == "both", "mlp.up_proj.weight" where sides == "both":
                    XCTAssertFalse(changedRows.isEmpty, name); XCTAssertTrue(changedRows.isSubset(of: Set(layer.channels)), "\(name): \(changedRows)")
                default:
                    XCTAssertTrue(changedRows.isEmpty, "\(name) changed (\(sides))")
                }
            }
        }
    }

    func testKilledRunResumesBitIdentically() throws {
        let data = try TinyDecoder.chatFile(dir.appendingPathComponent("chat.jsonl"), count: 24)
        for method in ["full", "lora", "sparse", "s2ft"] {
            var c = config(data, out: "\(method)-whole", method: method)
            c.checkpointEvery = 2; c.warmupRatio = 0.2; c.groupByLength = true; c.gradAccum = 2; c.batchSize = 2
            c.density = 0.1; c.checkpointActivations = method == "lora"; c.loraDropout = 0.2; c.packing = method == "full"
            let whole = try Trainer.run(c)
            var k = c
            k.out = dir.appendingPathComponent("\(method)-killed").path
            XCTAssertEqual(try Trainer.run(k, hooks: TrainHooks(abandonAfterStep: 3)).outcome, .abandoned)
            let resumed = try Trainer.run(k, resume: true)
            XCTAssertEqual(resumed.steps, whole.steps)
            let a = try SafeTensorsFile(url: RunDirectory(whole.runDirectory).lastCheckpoint)
            let b = try SafeTensorsFile(url: RunDirectory(resumed.runDirectory).lastCheckpoint)
            XCTAssertEqual(a.names, b.names)
            for n in a.names where n.hasPrefix("model.") { XCTAssertEqual(try a.tensor(n), try b.tensor(n), "\(method): \(n)") }
        }
    }

    /// Distillation alone (no labels) moves a fresh student toward a trained teacher: its
    /// KL to the teacher on held-out examples falls, and so does its loss on their labels.
    func testDistillationPullsTheStudentToTheTeacher() throws {
        let data = try TinyDecoder.chatFile(dir.appendingPathComponent("chat.jsonl"), count: 32)
        let test = try TinyDecoder.chatFile(dir.appendingPathComponent("test.jsonl"), count: 8, seed: 9)
        var t = config(data, out: "teacher"); t.epochs = 10; t.lr = 1e-2; t.valFraction = 0
        _ = try Trainer.run(t)
        let teacherDir = dir.appendingPathComponent("teacher/final").path
        let student = dir.appendingPathComponent("student")
        try TinyDecoder.write(to: student, seed: 11)
        func distance(_ path: String) throws -> (kl: Double, loss: Double) {
            let s = try DecoderBundle.load(path: path), teacher = try DecoderBundle.load(path: teacherDir)
            let set = try LMData.load(test, text: s.text, maxLength: 64, trainOn: .completion)
            let b = CausalLMTask.batch(set.examples, padId: 262)
            let kl = withoutGradients {
                lmDistillation(hidden: CausalLMTask.targetHidden(s.model, b, exits: nil)[0], weight: s.model.headWeight,
                               teacherHidden: CausalLMTask.targetHidden(teacher.model, b, exits: nil)[0].value, teacherWeight: teacher.model.headWeight.value)
            }
            return (Double(kl.value.scalar), CausalLMTask.meanLoss(s.model, set.examples, padId: 262, batchSize: 8))
        }
        var k = config(data, out: "kd"); k.model = student.path; k.epochs = 10; k.lr = 1e-2; k.valFraction = 0
        k.distillFrom = dir.appendingPathComponent("teacher").path   // a run stands for its final/
        _ = try Trainer.run(k)
        let before = try distance(student.path), after = try distance(dir.appendingPathComponent("kd/final").path)
        XCTAssertLessThan(after.kl, before.kl * 0.5, "KL to the teacher \(before.kl) → \(after.kl)")
        XCTAssertLessThan(after.loss, before.loss * 0.5, "label loss \(before.loss) → \(after.loss)")
    }

    func testDecoderOptionsAreChecked() throws {
        let data = try TinyDecoder.chatFile(dir.appendingPathComponent("chat.jsonl"), count: 8)
        var c = config(data, out: "x")
        c.maxLength = 1000
        XCTAssertThrowsError(try Trainer.run(c)) { XCTAssertTrue("\($0)".contains("exceeds the model's context (256"), "\($0)") }
        c = config(data, out: "y"); c.trainOn = "prompt"
        XCTAssertThrowsError(try Trainer.run(c)) { XCTAssertTrue("\($0)".contains("--train-on must be completion or all"), "\($0)") }
        c = config(data, out: "z", method: "elastic")
        XCTAssertThrowsError(try Trainer.run(c)) { XCTAssertTrue("\($0)".contains("use --elastic-schedule sorted"), "\($0)") }
        c = config(data, out: "v", method: "gates"); c.targetParams = 0.5
        XCTAssertThrowsError(try Trainer.run(c)) { XCTAssertTrue("\($0)".contains("gates is not available for decoder"), "\($0)") }
        c = config(data, out: "u"); c.distillFrom = dir.appendingPathComponent("nothing").path
        XCTAssertThrowsError(try Trainer.run(c)) { XCTAssertTrue("\($0)".contains("nothing"), "\($0)") }
        c = config(data, out: "w"); c.objective = "classification"
        XCTAssertThrowsError(try Trainer.run(c)) { XCTAssertTrue("\($0)".contains("--objective classification on a decoder"), "\($0)") }
    }
}
