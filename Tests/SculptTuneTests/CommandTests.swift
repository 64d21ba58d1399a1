import XCTest
import SculptCore
import SculptTestSupport
@testable import SculptTune

/// The errors the CLI prints come from these library calls: one line naming what and where.
final class CommandTests: XCTestCase {
    func testMissingDataFileIsNamed() {
        var c = TrainConfig(); c.data = "/nonexistent/train-images-idx3-ubyte"; c.out = temporaryDirectory().path
        XCTAssertThrowsError(try Trainer.run(c)) { XCTAssertTrue("\($0)".contains("/nonexistent/train-images-idx3-ubyte"), "\($0)") }
    }

    func testTextDataWithImageModelIsExplained() throws {
        let dir = temporaryDirectory()
        var c = TrainConfig(); c.model = "cnn"; c.out = dir.appendingPathComponent("r").path
        c.data = try Fixtures.write("{\"text\": \"a\", \"label\": \"x\"}\n", "t.jsonl", in: dir).path
        XCTAssertThrowsError(try Trainer.run(c)) { XCTAssertTrue("\($0)".contains("is text; --model cnn trains on images"), "\($0)") }
    }

    func testBadOptionsAreNamed() {
        var c = TrainConfig(); c.data = "x"
        c.method = "magic"
        XCTAssertThrowsError(try c.validate()) { XCTAssertTrue("\($0)".contains("--method"), "\($0)") }
        c.method = "full"; c.valFraction = 1.5
        XCTAssertThrowsError(try c.validate()) { XCTAssertTrue("\($0)".contains("--val-fraction"), "\($0)") }
        c.valFraction = 0.1; c.sparseLr = 0
        XCTAssertThrowsError(try c.validate()) { XCTAssertTrue("\($0)".contains("--sparse-lr"), "\($0)") }
        c.sparseLr = nil; c.s2ftSides = "input"
        XCTAssertThrowsError(try c.validate()) { XCTAssertTrue("\($0)".contains("--s2ft-sides must be output or both, got \"input\""), "\($0)") }
        c.s2ftSides = "both"; c.headInit = "xavier"
        XCTAssertThrowsError(try c.validate()) { XCTAssertTrue("\($0)".contains("--head-init must be transformers or torch, got \"xavier\""), "\($0)") }
        c.headInit = "torch"; c.model = "/no/such/model"
        XCTAssertThrowsError(try ClassifierStore.build(c, classes: 2, imageSize: (0, 0))) { XCTAssertTrue("\($0)".contains("--model /no/such/model"), "\($0)") }
    }

    func testExistingRunNeedsResumeAndResumeNeedsRun() throws {
        let dir = temporaryDirectory()
        var c = Fixtures.imageConfig(data: try Fixtures.idx(in: dir), out: dir.appendingPathComponent("r"))
        c.epochs = 1
        _ = try Trainer.run(c)
        XCTAssertThrowsError(try Trainer.run(c)) { XCTAssertTrue("\($0)".contains("already holds a run"), "\($0)") }
        c.out = dir.appendingPathComponent("none").path
        XCTAssertThrowsError(try Trainer.run(c, resume: true)) { XCTAssertTrue("\($0)".contains("run.json"), "\($0)") }
        XCTAssertThrowsError(try Evaluation.evaluate(modelOrRun: dir, data: dir)) { XCTAssertTrue("\($0)".contains("classifier.json"), "\($0)") }
    }

    func testYAMLConfigAndUnknownKeys() throws {
        let dir = temporaryDirectory()
        let good = try Fixtures.write("model: mlp\nbatch-size: 12\nlr: 0.005\nschedule: cosine\neval-data: t.idx\n", "run.yaml", in: dir)
        let c = try TrainConfig.load(yaml: good)
        XCTAssertEqual(c.batchSize, 12)
        XCTAssertEqual(c.lr, 0.005)
        XCTAssertEqual(c.schedule, "cosine")
        XCTAssertEqual(c.evalData, "t.idx")
        XCTAssertEqual(c.epochs, TrainConfig().epochs)
        let bad = try Fixtures.write("batch_size: 12\n", "bad.yaml", in: dir)
        XCTAssertThrowsError(try TrainConfig.load(yaml: bad)) { XCTAssertTrue("\($0)".contains("unknown option \"batch_size\""), "\($0)") }
        let wrongType = try Fixtures.write("epochs: many\n", "t.yaml", in: dir)
        XCTAssertThrowsError(try TrainConfig.load(yaml: wrongType)) { XCTAssertTrue("\($0)".contains("epochs"), "\($0)") }
    }

    func testTrainingCurveStacksLossAboveAccuracyOnOneStepAxis() {
        var a = MetricsRecord(step: 10, epoch: 0.5), b = MetricsRecord(step: 20, epoch: 1), c = MetricsRecord(step: 20, epoch: 1)
        a.loss = 2.5; b.loss = 1.0; c.valAccuracy = 0.75
        let metrics = [a, b, c]
        let svg = TrainingCurve.svg(metrics: metrics)
        XCTAssertTrue(svg.hasPrefix("<svg"))
        XCTAssertEqual(svg.components(separatedBy: "<g transform=").count - 1, 2, "two panels")
        XCTAssertTrue(svg.contains(">Training loss<") && svg.contains(">Validation accuracy<"))
        // Data markers have radius 3 (the legend swatch is 4), so this sees the accuracy point itself.
        XCTAssertEqual(svg.components(separatedBy: "r=\"3.00\"").count - 1, 1, "one accuracy point drawn")
    }
}
