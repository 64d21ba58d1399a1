import XCTest
import SculptCore
import SculptNN
import SculptIO
import SculptModels
import SculptTestSupport
@testable import SculptTune

/// lora, sparse, s2ft and bitfit on a tiny random BERT: only the intended weights move, the
/// saved form evaluates like the trained model, and a killed run resumes bit-identically.
final class MethodTests: XCTestCase {
    struct Setup { let dir: URL; let model: URL; var config: TrainConfig }

    func setUp(_ method: String) throws -> Setup {
        let dir = temporaryDirectory()
        let model = try Fixtures.tinyBert(in: dir)
        let train = try TinyBert.catsAndMoney(in: dir, count: 32)
        let test = try Fixtures.write("{\"text\": \"a cat on a mat\", \"label\": \"cats\"}\n{\"text\": \"stocks fell\", \"label\": \"money\"}\n{\"text\": \"the cat\", \"label\": \"cats\"}\n", "test.jsonl", in: dir)
        var c = TrainConfig()
        c.model = model.path; c.data = train.path; c.evalData = test.path; c.out = dir.appendingPathComponent("run").path
        c.method = method; c.epochs = 2; c.batchSize = 4; c.lr = 1e-2; c.maxLength = 16; c.threads = 1; c.warmupRatio = 0.1
        c.evalEvery = 3; c.checkpointEvery = 2; c.logEvery = 1
        c.density = method == "s2ft" ? 0.5 : 0.05
        if method == "sparse" { c.sparseLr = 3e-2 }
        return Setup(dir: dir, model: model, config: c)
    }

    func tensors(_ url: URL, prefix: String = "") throws -> [String: Tensor] {
        let f = try SafeTensorsFile(url: url)
        var out: [String: Tensor] = [:]
        for n in f.names where n.hasPrefix(prefix) { out[String(n.dropFirst(prefix.count))] = try f.tensor(n) }
        return out
    }

    /// The trained BERT weights as the last checkpoint holds them (names relative to the BERT).
    func trainedBert(_ run: URL) throws -> [String: Tensor] {
        try tensors(RunDirectory(run).lastCheckpoint, prefix: "model.bert.")
    }

    /// The weights `final/` holds: the best by validation accuracy.
    func bestBert(_ run: URL) throws -> [String: Tensor] {
        try tensors(RunDirectory(run).bestCheckpoint, prefix: "bert.")
    }

    func assertRoundTrip(_ r: TrainResult, _ s: Setup, file: StaticString = #filePath, line: UInt = #line) throws {
        let e = try Evaluation.evaluate(modelOrRun: r.runDirectory, data: URL(fileURLWithPath: s.config.evalData!))
        XCTAssertEqual(e.accuracy, r.validation!.accuracy, file: file, line: line)
        XCTAssertEqual(e.loss, r.validation!.loss, accuracy: 1e-5, file: file, line: line)
    }

    /// Every file under final/, byte for byte.
    func finalFiles(_ run: URL) throws -> [String: Data] {
        let root = RunDirectory(run).final
        var out: [String: Data] = [:]
        for case let u as URL in FileManager.default.enumerator(at: root, includingPropertiesForKeys: nil)! where !u.hasDirectoryPath {
            out[u.path.replacingOccurrences(of: root.path, with: "")] = try Data(contentsOf: u)
        }
        return out
    }

    func assertResumesBitIdentically(_ s: Setup, killAfter step: Int, file: StaticString = #filePath, line: UInt = #line) throws {
        let whole = try Trainer.run(s.config)
        var k = s.config
        k.out = s.dir.appendingPathComponent("killed").path
        XCTAssertEqual(try Trainer.run(k, hooks: TrainHooks(abandonAfterStep: step)).outcome, .abandoned, file: file, line: line)
        let resumed = try Trainer.run(k, resume: true)
        XCTAssertEqual(resumed.outcome, .completed, file: file, line: line)
        let a = try finalFiles(whole.runDirectory), b = try finalFiles(resumed.runDirectory)
        XCTAssertEqual(a.keys.sorted(), b.keys.sorted(), file: file, line: line)
        for (name, data) in a { XCTAssertTrue(data == b[name], "final\(name) differs after resume", file: file, line: line) }
    }

    func testLoRATrainsAdaptersAndHeadOnlyAndSavesPEFTFiles() throws {
        let s = try setUp("lora")
        let r = try Trainer.run(s.config)
        let base = try tensors(s.model.appendingPathComponent("model.safetensors"))
        let trained = try trainedBert(r.runDirectory)
        for (n, t) in base { XCTAssertEqual(trained[n], t, "\(n) is frozen under LoRA") }
        XCTAssertEqual(Set(trained.keys).subtracting(base.keys), ["encoder.layer.0.attention.self.query.lora_A.weight", "encoder.layer.0.attention.self.query.lora_B.weight",
                                                                  "encoder.layer.0.attention.self.value.lora_A.weight", "encoder.layer.0.attention.self.value.lora_B.weight"])
        XCTAssertGreaterThan(trained["encoder.layer.0.attention.self.value.lora_B.weight"]!.maxAbs(), 0)

        let final = RunDirectory(r.runDirectory).final
        let adapter = try tensors(final.appendingPathComponent("adapter/adapter_model.safetensors"))
        XCTAssertEqual(adapter["base_model.model.encoder.layer.0.attention.self.query.lora_A.weight"], try bestBert(r.runDirectory)["encoder.layer.0.attention.self.query.lora_A.weight"])
        XCTAssertEqual(adapter.count, 4)
        let config = try PEFTLoRAConfig.load(from: final.appendingPathComponent("adapter/adapter_config.json"))
        XCTAssertEqual(config.r, 8); XCTAssertEqual(config.targetModules, .names(["query", "value"]))
        XCTAssertFalse(FileManager.default.fileExists(atPath: final.appendingPathComponent("model.safetensors").path), "no full copy of the base")
        XCTAssertTrue(FileManager.default.fileExists(atPath: final.appendingPathComponent("head.safetensors").path))
        try assertRoundTrip(r, s)
    }

    func testLoRAResumesBitIdentically() throws {
        try assertResumesBitIdentically(try setUp("lora"), killAfter: 7)
    }

    func testLoRARegexTargets() throws {
        var s = try setUp("lora")
        s = Setup(dir: s.dir, model: s.model, config: { var c = s.config; c.loraTargets = "encoder\\.layer\\.0\\.output\\.dense"; c.epochs = 1; return c }())
        let r = try Trainer.run(s.config)
        let adapter = try tensors(RunDirectory(r.runDirectory).final.appendingPathComponent("adapter/adapter_model.safetensors"))
        XCTAssertEqual(adapter.keys.sorted(), ["base_model.model.encoder.layer.0.output.dense.lora_A.weight", "base_model.model.encoder.layer.0.output.dense.lora_B.weight"])
        var bad = s.config
        bad.loraTargets = "no_such_module"; bad.out = s.dir.appendingPathComponent("bad").path
        XCTAssertThrowsError(try Trainer.run(bad)) { XCTAssertTrue("\($0)".contains("matched no module"), "\($0)") }
    }

    func testSparseTrainsOnlySelectedEntriesAndSavesADiff() throws {
        let s = try setUp("sparse")
        let r = try Trainer.run(s.config)
        XCTAssertEqual(r.totalSteps, 16 + 5)   // 2 epochs × 8 steps, then a full phase of round(0.34 × 16)
        // Each phase warms up to its own peak: --lr in the full phase, --sparse-lr in the sparse one.
        let lrs = MetricsLog.read(RunDirectory(r.runDirectory).metrics).compactMap { m in m.lr.map { (m.step, $0) } }
        XCTAssertEqual(lrs.count, 21)
        let fullPhase = lrs.filter { $0.0 <= 5 }.map(\.1), sparsePhase = lrs.filter { $0.0 > 5 }.map(\.1)
        XCTAssertEqual(fullPhase.max()!, 1e-2, accuracy: 1e-8)
        XCTAssertEqual(sparsePhase.max()!, 3e-2, accuracy: 1e-8)
        XCTAssertLessThan(sparsePhase.last!, sparsePhase.max()!, "decays within the sparse phase")
        let base = try tensors(s.model.appendingPathComponent("model.safetensors"))
        let trained = try trainedBert(r.runDirectory)
        let final = RunDirectory(r.runDirectory).final
        let diff = try SparseDiff.load(from: final.appendingPathComponent("sparse_diff.safetensors"))
        let candidates = base.filter { !$0.key.hasSuffix("_embeddings.weight") }.values.reduce(0) { $0 + $1.count }
        XCTAssertEqual(diff.count, Int((0.05 * Double(candidates)).rounded()))
        // Outside the support every weight is bit-identical to the base (decay included).
        var changed = 0
        for (n, b) in base {
            let t = trained[n]!
            let support = Set(diff.parts[n]?.indices.map(Int.init) ?? [])
            b.withUnsafePointer { bp in t.withUnsafePointer { tp in
                for i in 0..<b.count where bp[i] != tp[i] {
                    changed += 1
                    XCTAssertTrue(support.contains(i), "\(n)[\(i)] moved outside the support")
                }
            } }
        }
        XCTAssertGreaterThan(changed, diff.count / 2)
        // The diff applied to the base is the trained encoder that final/ holds.
        // (up to the rounding of stored differences; see SparseDiff).
        let applied = try diff.apply(to: base), best = try bestBert(r.runDirectory)
        XCTAssertEqual(Set(applied.keys), Set(best.keys))
        for (n, t) in best { XCTAssertLessThanOrEqual(t.maxAbsDifference(applied[n]!), 1e-7 * max(1, t.maxAbs()), n) }
        XCTAssertEqual(diff.metadata["base_model"], s.model.standardizedFileURL.path)
        try assertRoundTrip(r, s)
    }

    func testSparseResumesBitIdenticallyAcrossThePhaseSwitch() throws {
        let s = try setUp("sparse")
        try assertResumesBitIdentically(s, killAfter: 9)   // in the sparse phase (switch at 5, last checkpoint at 8)
        var k = s.config
        k.out = s.dir.appendingPathComponent("killed-early").path
        _ = try Trainer.run(k, hooks: TrainHooks(abandonAfterStep: 3))   // killed in the full phase
        let resumed = try Trainer.run(k, resume: true)
        XCTAssertEqual(try finalFiles(resumed.runDirectory), try finalFiles(s.dir.appendingPathComponent("run")))
    }

    func testS2FTChangesOnlyPlannedRowsAndColumnsAndFolds() throws {
        try assertS2FTChangesOnlyPlanned(sides: "both")
    }

    func testS2FTOutputSideLeavesInputSideWeightsUntouched() throws {
        try assertS2FTChangesOnlyPlanned(sides: "output")
    }

    /// Trains s2ft with `sides` and checks that only the plan's rows/columns moved: with
    /// "output" only attention.output.dense and output.dense columns, with "both" also the
    /// query/key/value and intermediate rows (each side must move somewhere).
    private func assertS2FTChangesOnlyPlanned(sides: String, file: StaticString = #filePath, line: UInt = #line) throws {
        var s = try setUp("s2ft")
        s.config.s2ftSides = sides
        let r = try Trainer.run(s.config)
        let plan = try XCTUnwrap(try Checkpoint.readState(from: RunDirectory(r.runDirectory).lastCheckpoint).s2ftPlan)
        XCTAssertEqual(plan.trainInputSide, sides == "both", file: file, line: line)
        XCTAssertEqual(plan.layers[0].heads.count, 1); XCTAssertEqual(plan.layers[0].channels.count, 16)
        let final = RunDirectory(r.runDirectory).final
        let base = try tensors(s.model.appendingPathComponent("model.safetensors"))
        let tuned = try tensors(final.appendingPathComponent("model.safetensors"))
        XCTAssertEqual(Set(tuned.keys), Set(base.keys), "folded: no split tensors left")
        let headDim = 8
        let rows = Set(plan.layers[0].heads.flatMap { h in h * headDim..<(h + 1) * headDim })
        let channels = Set(plan.layers[0].channels)
        let inputSide = ["attention.self.query.weight", "attention.self.key.weight", "attention.self.value.weight", "intermediate.dense.weight"]
        func allowed(_ n: String, _ r: Int, _ c: Int) -> Bool {
            switch n {
            case let x where x.hasSuffix("attention.self.query.weight") || x.hasSuffix("attention.self.key.weight") || x.hasSuffix("attention.self.value.weight"):
                return sides == "both" && rows.contains(r)
            case let x where x.hasSuffix("attention.output.dense.weight"): return rows.contains(c)
            case let x where x.hasSuffix("intermediate.dense.weight"): return sides == "both" && channels.contains(r)
            case let x where x.hasSuffix("layer.0.output.dense.weight"): return channels.contains(c)
            default: return false
            }
        }
        var changedInputSide = 0, changedOutputSide = 0
        for (n, b) in base {
            let t = tuned[n]!, cols = b.shape.count == 2 ? b.shape[1] : 1
            b.withUnsafePointer { bp in t.withUnsafePointer { tp in
                for i in 0..<b.count where bp[i] != tp[i] {
                    if inputSide.contains(where: { n.hasSuffix($0) }) { changedInputSide += 1 } else { changedOutputSide += 1 }
                    XCTAssertTrue(allowed(n, i / cols, i % cols), "\(n)[\(i / cols), \(i % cols)] moved outside the plan (\(sides))", file: file, line: line)
                }
            } }
        }
        XCTAssertGreaterThan(changedOutputSide, 0, file: file, line: line)
        if sides == "both" { XCTAssertGreaterThan(changedInputSide, 0, file: file, line: line) } else { XCTAssertEqual(changedInputSide, 0, file: file, line: line) }
        try assertRoundTrip(r, s)
    }

    func testS2FTResumesBitIdentically() throws {
        try assertResumesBitIdentically(try setUp("s2ft"), killAfter: 5)
    }

    func testBitFitChangesBiasesOnly() throws {
        let s = try setUp("bitfit")
        let r = try Trainer.run(s.config)
        let base = try tensors(s.model.appendingPathComponent("model.safetensors"))
        let tuned = try tensors(RunDirectory(r.runDirectory).final.appendingPathComponent("model.safetensors"))
        var biasesMoved = 0
        for (n, b) in base {
            if n.hasSuffix(".bias") { if tuned[n] != b { biasesMoved += 1 } } else { XCTAssertEqual(tuned[n], b, n) }
        }
        XCTAssertGreaterThan(biasesMoved, 3)
        try assertRoundTrip(r, s)
    }

    func testImageModelsRejectLoRAAndS2FT() throws {
        let dir = temporaryDirectory()
        var c = Fixtures.imageConfig(data: try Fixtures.idx(in: dir), out: dir.appendingPathComponent("r"))
        c.method = "lora"
        XCTAssertThrowsError(try Trainer.run(c)) { XCTAssertTrue("\($0)".contains("needs a BERT"), "\($0)") }
        c.method = "s2ft"
        XCTAssertThrowsError(try Trainer.run(c)) { XCTAssertTrue("\($0)".contains("needs a BERT"), "\($0)") }
    }
}
