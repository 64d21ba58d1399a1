import XCTest
import SculptCore
import SculptNN
import SculptIO
import SculptTestSupport
@testable import SculptTune

final class TrainingTests: XCTestCase {
    func weights(_ run: URL) throws -> [String: Tensor] {
        let f = try SafeTensorsFile(url: run.appendingPathComponent("final/model.safetensors"))
        return try Dictionary(uniqueKeysWithValues: f.names.map { ($0, try f.tensor($0)) })
    }

    func testAccumulatingTwoMicroBatchesEqualsOneDoubleBatch() throws {
        let dir = temporaryDirectory()
        let data = try Fixtures.idx(in: dir, count: 96)
        var a = Fixtures.imageConfig(data: data, out: dir.appendingPathComponent("a"))
        a.valFraction = 0; a.clipNorm = 0; a.epochs = 1; a.batchSize = 16; a.warmupRatio = 0.2
        var b = a
        b.out = dir.appendingPathComponent("b").path; b.batchSize = 8; b.gradAccum = 2
        let ra = try Trainer.run(a), rb = try Trainer.run(b)
        XCTAssertEqual(ra.steps, 6)
        XCTAssertEqual(rb.steps, 6)
        let wa = try weights(ra.runDirectory), wb = try weights(rb.runDirectory)
        for (n, t) in wa { XCTAssertLessThan(t.maxAbsDifference(wb[n]!), 1e-5, n) }
    }

    func testResumeAfterAbandonedRunIsBitIdentical() throws {
        let dir = temporaryDirectory()
        let data = try Fixtures.idx(in: dir, count: 96)
        var c = Fixtures.imageConfig(data: data, out: dir.appendingPathComponent("full"), model: "cnn")
        c.checkpointEvery = 3; c.evalEvery = 4; c.warmupRatio = 0.1; c.schedule = "cosine"
        let full = try Trainer.run(c)
        XCTAssertEqual(full.outcome, .completed)
        XCTAssertEqual(full.totalSteps, 18)   // 72 training images / 8 per batch × 2 epochs

        var k = c
        k.out = dir.appendingPathComponent("killed").path
        let killed = try Trainer.run(k, hooks: TrainHooks(abandonAfterStep: 13))   // mid-epoch 2, last checkpoint at 12
        XCTAssertEqual(killed.outcome, .abandoned)
        let resumed = try Trainer.run(k, resume: true)
        XCTAssertEqual(resumed.outcome, .completed)
        XCTAssertEqual(try weights(full.runDirectory), try weights(resumed.runDirectory))
        let steps = MetricsLog.read(RunDirectory(resumed.runDirectory).metrics).filter { $0.loss != nil }.map(\.step)
        XCTAssertEqual(steps, Array(1...18), "metrics.jsonl tells one story after the resume")
    }

    func testInterruptSavesCheckpointAndResumesExactly() throws {
        let dir = temporaryDirectory()
        let data = try Fixtures.idx(in: dir, count: 96)
        var c = Fixtures.imageConfig(data: data, out: dir.appendingPathComponent("a"))
        c.checkpointEvery = 100
        let full = try Trainer.run(c)
        c.out = dir.appendingPathComponent("b").path
        let flag = StopFlag()
        let stopped = try Trainer.run(c, hooks: TrainHooks(stop: flag, beforeStep: { step, _ in if step == 5 { flag.raise() } }))
        XCTAssertEqual(stopped.outcome, .interrupted)
        XCTAssertEqual(stopped.steps, 6)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.appendingPathComponent("b/final").path))
        let resumed = try Trainer.run(c, resume: true)
        XCTAssertEqual(try weights(full.runDirectory), try weights(resumed.runDirectory))
    }

    func testNaNLossStopsNamesStepAndKeepsLastGoodCheckpoint() throws {
        let dir = temporaryDirectory()
        let data = try Fixtures.idx(in: dir, count: 96)
        var c = Fixtures.imageConfig(data: data, out: dir.appendingPathComponent("nan"))
        c.checkpointEvery = 2
        let hooks = TrainHooks(beforeStep: { step, model in
            if step == 4, let p = model.namedParameters().first?.parameter { p.value[flat: 0] = .nan }
        })
        XCTAssertThrowsError(try Trainer.run(c, hooks: hooks)) { e in
            XCTAssertTrue("\(e)".contains("loss became nan at step 5"), "\(e)")
            XCTAssertTrue("\(e)".contains("last good checkpoint"), "\(e)")
        }
        let f = try SafeTensorsFile(url: RunDirectory(dir.appendingPathComponent("nan")).lastCheckpoint)
        XCTAssertTrue(f.metadata[Checkpoint.stateKey]!.contains("\"step\":4"))
        XCTAssertFalse(try f.tensor(f.names.first { $0.hasPrefix("model.") }!).scalars.contains { $0.isNaN })
    }

    func testEvaluationOfSavedRunMatchesTraining() throws {
        let dir = temporaryDirectory()
        let data = try Fixtures.idx(in: dir, count: 96)
        let test = try Fixtures.idx(in: dir, count: 40, seed: 9, prefix: "t10k")
        var c = Fixtures.imageConfig(data: data, out: dir.appendingPathComponent("run"), model: "cnn")
        c.evalData = test.path; c.epochs = 3
        let r = try Trainer.run(c)
        let e = try Evaluation.evaluate(modelOrRun: r.runDirectory, data: test)
        XCTAssertEqual(e.accuracy, r.validation!.accuracy)
        XCTAssertEqual(e.examples, 40)
        XCTAssertGreaterThan(e.accuracy, 0.5)
        for name in ["run.json", "labels.json", "metrics.jsonl", "curve.svg", "checkpoints/last.safetensors", "checkpoints/best.safetensors", "final/classifier.json", "final/labels.json"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: r.runDirectory.appendingPathComponent(name).path), name)
        }
        let record = try JSONDecoder().decode(RunRecord.self, from: Data(contentsOf: r.runDirectory.appendingPathComponent("run.json")))
        XCTAssertEqual(record.config, c)
        XCTAssertEqual(record.packageVersion, SculptVersion.current)
    }

    func testEarlyStoppingWithPatience() throws {
        let dir = temporaryDirectory()
        let data = try Fixtures.idx(in: dir, count: 96)
        var c = Fixtures.imageConfig(data: data, out: dir.appendingPathComponent("es"))
        c.epochs = 30; c.patience = 2
        let r = try Trainer.run(c)
        XCTAssertEqual(r.outcome, .stoppedEarly)
        XCTAssertLessThan(r.steps, r.totalSteps)
    }

    func testCheckpointRestoresDropoutGenerators() throws {
        var rng = SeededRNG(seed: 1)
        let model = ImageMLP(spec: { var s = ClassifierSpec(kind: .mlp, classes: 2); s.width = 4; s.depth = 1; s.imageHeight = 2; s.imageWidth = 2; return s }(), seed: 1)
        _ = rng.next()
        let opt = AdamW()
        let d = Dropout(p: 0.5, rng: SeededRNG(seed: 5))
        let wrapped = Sequential([d])
        _ = d.rng.next()
        let url = temporaryDirectory().appendingPathComponent("c.safetensors")
        try Checkpoint.save(model: wrapped, optimizer: opt, state: LoopState(data: DataOrderState(seed: 0)), to: url)
        let saved = d.rng
        _ = d.rng.next()
        _ = try Checkpoint.load(from: url, model: wrapped, optimizer: opt)
        XCTAssertEqual(d.rng, saved)
        _ = model
    }
}
