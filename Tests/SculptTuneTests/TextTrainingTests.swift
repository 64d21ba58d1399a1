import XCTest
import SculptCore
import SculptIO
import SculptModels
import SculptTestSupport
@testable import SculptTune

/// The text path end to end on a tiny random BERT that uses MiniLM's tokenizer.
final class TextTrainingTests: XCTestCase {
    func testBertFineTuningWritesLoadableRunAndPredicts() throws {
        let dir = SharedData.temporaryDirectory()
        let model = try Fixtures.tinyBert(in: dir)
        var lines = ""
        for i in 0..<24 { lines += i % 2 == 0 ? "{\"text\": \"the cat sat on the mat \(i)\", \"label\": \"cats\"}\n" : "{\"text\": \"stocks fell sharply today \(i)\", \"label\": \"money\"}\n" }
        let train = try Fixtures.write(lines, "train.jsonl", in: dir)
        let csv = try Fixtures.write("text,label\n\"the cat, again\",cats\nstocks rose,money\n", "test.csv", in: dir)
        var c = TrainConfig()
        c.model = model.path; c.data = train.path; c.out = dir.appendingPathComponent("run").path
        c.epochs = 3; c.batchSize = 4; c.lr = 5e-3; c.maxLength = 16; c.threads = 1; c.warmupRatio = 0.1
        let r = try Trainer.run(c)
        XCTAssertEqual(r.labels.names, ["cats", "money"])
        let run = RunDirectory(r.runDirectory)
        XCTAssertTrue(FileManager.default.fileExists(atPath: run.cache.appendingPathComponent("tokens-train.safetensors").path))
        for f in ["config.json", "model.safetensors", "head.safetensors", "tokenizer.json", "classifier.json"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: run.final.appendingPathComponent(f).path), f)
        }
        // final/ is an HF BERT directory the model loader accepts as is.
        XCTAssertNoThrow(try BertModel.load(directory: run.final))
        let e = try Evaluation.evaluate(modelOrRun: r.runDirectory, data: csv)
        XCTAssertEqual(e.examples, 2)
        let texts = try Fixtures.write("a cat on a mat\nstocks fell\n", "texts.txt", in: dir)
        let labels = try Evaluation.predict(modelOrRun: r.runDirectory, textsFile: texts)
        XCTAssertEqual(labels.count, 2)
        XCTAssertTrue(labels.allSatisfy { ["cats", "money"].contains($0) })

        let unknown = try Fixtures.write("{\"text\": \"x\", \"label\": \"cats\"}\n{\"text\": \"y\", \"label\": \"dogs\"}\n", "bad.jsonl", in: dir)
        XCTAssertThrowsError(try Evaluation.evaluate(modelOrRun: r.runDirectory, data: unknown)) { e in
            XCTAssertTrue("\(e)".contains("bad.jsonl:2: unknown label \"dogs\""), "\(e)")
        }
    }
}
