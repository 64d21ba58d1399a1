import XCTest
import SculptCore
import SculptIO
import SculptModels
import SculptTestSupport
@testable import SculptTune

/// The text path end to end on a tiny random BERT that uses MiniLM's tokenizer.
final class TextTrainingTests: XCTestCase {
    /// A new head as transformers makes it (N(0, 0.02), zero bias) or as nn.Linear does
    /// (U(±1/√hidden) for weights and bias).
    func testHeadInitialisations() throws {
        let bert = try BertModel(config: BertConfig(hiddenSize: 64, numHiddenLayers: 1, numAttentionHeads: 4, intermediateSize: 32,
                                                    vocabSize: 40, maxPositionEmbeddings: 16), withPooler: false, seed: 1)
        let spec = ClassifierSpec(kind: .bert, classes: 50)
        let t = BertClassifier(bert: bert, spec: spec, seed: 3).classifier
        XCTAssertTrue(t.bias!.value.scalars.allSatisfy { $0 == 0 })
        let w = t.weight.value.scalars, std = (w.map { Double($0 * $0) }.reduce(0, +) / Double(w.count)).squareRoot()
        XCTAssertEqual(std, 0.02, accuracy: 0.002, "3,200 draws of N(0, 0.02)")
        let u = BertClassifier(bert: bert, spec: spec, seed: 3, headInit: .torch).classifier
        let bound: Float = 1 / 8
        XCTAssertTrue(u.weight.value.scalars.allSatisfy { abs($0) <= bound })
        XCTAssertGreaterThan(u.weight.value.scalars.map(abs).max()!, 0.9 * bound)
        XCTAssertTrue(u.bias!.value.scalars.allSatisfy { abs($0) <= bound } && u.bias!.value.scalars.contains { $0 != 0 })
    }

    func testBertFineTuningWritesLoadableRunAndPredicts() throws {
        let dir = temporaryDirectory()
        let model = try Fixtures.tinyBert(in: dir)
        let train = try TinyBert.catsAndMoney(in: dir, count: 24)
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

    /// A merged model directory (one encoder, `heads/task_<i>/` per task, as `sculpt merge`
    /// writes it) evaluates with the chosen task's head and labels, and says when no task or
    /// a missing one is chosen.
    func testMergedDirectoryEvaluatesWithTheChosenTasksHead() throws {
        let dir = temporaryDirectory()
        let model = try Fixtures.tinyBert(in: dir)
        func run(_ name: String, _ a: String, _ b: String) throws -> (URL, URL) {
            var lines = ""
            for i in 0..<16 { lines += i % 2 == 0 ? "{\"text\": \"the cat sat on the mat \(i)\", \"label\": \"\(a)\"}\n" : "{\"text\": \"stocks fell sharply today \(i)\", \"label\": \"\(b)\"}\n" }
            let data = try Fixtures.write(lines, "\(name).jsonl", in: dir)
            var c = TrainConfig()
            c.model = model.path; c.data = data.path; c.out = dir.appendingPathComponent(name).path
            c.epochs = 1; c.batchSize = 4; c.lr = 5e-3; c.maxLength = 16; c.threads = 1; c.valFraction = 0.25
            return (try Trainer.run(c).runDirectory, data)
        }
        let (runA, dataA) = try run("a", "cats", "money")
        let (runB, dataB) = try run("b", "yes", "no")
        let merged = dir.appendingPathComponent("merged")
        let fm = FileManager.default
        try fm.createDirectory(at: merged, withIntermediateDirectories: true)
        for f in ["config.json", "model.safetensors", "tokenizer.json", "vocab.txt", "tokenizer_config.json"] {
            try fm.copyItem(at: RunDirectory(runA).final.appendingPathComponent(f), to: merged.appendingPathComponent(f))
        }
        for (i, r) in [runA, runB].enumerated() {
            let h = merged.appendingPathComponent("heads/task_\(i)")
            try fm.createDirectory(at: h, withIntermediateDirectories: true)
            for f in ["head.safetensors", "classifier.json", "labels.json"] {
                try fm.copyItem(at: RunDirectory(r).final.appendingPathComponent(f), to: h.appendingPathComponent(f))
            }
        }
        XCTAssertEqual(ClassifierStore.mergedTasks(merged), [0, 1])
        XCTAssertEqual(ClassifierStore.mergedTasks(runA), [])

        // Task 0 is run A's encoder and head: the same numbers as the run itself.
        let a = try Evaluation.evaluate(modelOrRun: runA, data: dataA)
        let m0 = try Evaluation.evaluate(modelOrRun: merged, data: dataA, task: 0)
        XCTAssertEqual(m0.accuracy, a.accuracy)
        XCTAssertEqual(m0.loss, a.loss)
        // Task 1 reads B's labels (A's data has labels B does not know) and B's head.
        XCTAssertNoThrow(try Evaluation.evaluate(modelOrRun: merged, data: dataB, task: 1))
        XCTAssertThrowsError(try Evaluation.evaluate(modelOrRun: merged, data: dataA, task: 1)) { e in
            XCTAssertTrue("\(e)".contains("unknown label \"cats\""), "\(e)")
        }
        let texts = try Fixtures.write("a cat on a mat\nstocks fell\n", "texts.txt", in: dir)
        XCTAssertTrue(try Evaluation.predict(modelOrRun: merged, textsFile: texts, task: 1).allSatisfy { ["yes", "no"].contains($0) })

        XCTAssertThrowsError(try Evaluation.evaluate(modelOrRun: merged, data: dataA)) { e in
            XCTAssertTrue("\(e)".contains("tasks 0, 1") && "\(e)".contains("--task"), "\(e)")
        }
        XCTAssertThrowsError(try Evaluation.evaluate(modelOrRun: merged, data: dataA, task: 2)) { e in
            XCTAssertTrue("\(e)".contains("--task 2") && "\(e)".contains("tasks 0, 1 only"), "\(e)")
        }
        XCTAssertThrowsError(try Evaluation.evaluate(modelOrRun: runA, data: dataA, task: 0)) { e in
            XCTAssertTrue("\(e)".contains("not a merged model"), "\(e)")
        }
    }
}
