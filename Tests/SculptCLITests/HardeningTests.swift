import XCTest
import Foundation
import SculptCore
import SculptIO
import SculptModels
import SculptTestSupport

/// Issue 19's classes: input that used to trap, be silently accepted or exit 64 gets one
/// `Error:` line naming the file/key/flag and exit status 1.
final class HardeningTests: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws {
        dir = SharedData.temporaryDirectory("sculpt-hardening")
        try TinyBert.writeCLIFixture(in: dir)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    func path(_ name: String) -> String { dir.appendingPathComponent(name).path }

    /// Exit status 1 and exactly one `Error:` line containing every fragment.
    func assertOneError(_ args: [String], naming fragments: [String], file: StaticString = #filePath, line: UInt = #line) throws {
        let r = try SculptCLI.run(args)
        XCTAssertEqual(r.status, 1, "\(args): stderr \(r.stderr)", file: file, line: line)
        let lines = r.stderr.split(separator: "\n")
        XCTAssertEqual(lines.count, 1, "\(args) prints one line: \(r.stderr)", file: file, line: line)
        XCTAssertTrue(r.stderr.hasPrefix("Error: "), "\(args): \(r.stderr)", file: file, line: line)
        for f in fragments { XCTAssertTrue(r.stderr.contains(f), "\(args) names \(f): \(r.stderr)", file: file, line: line) }
    }

    // MARK: 1a. YAML keys that are not scalars, or repeated

    func testYAMLNonScalarAndDuplicateKeysAreRefusedByTrainAndMerge() throws {
        let cases: [(String, String, [String])] = [
            ("complex.yaml", "epochs: 1\n? width: 4\n: 3\n", ["complex.yaml", "line 2", "not a mapping"]),
            ("flow.yaml", "epochs: 1\n[a, b]: 4\n", ["flow.yaml", "line 2", "not a sequence"]),
            ("dup.yaml", "epochs: 1\nbatch-size: 2\nepochs: 3\n", ["dup.yaml", "epochs", "line 3", "duplicate key", "line 1"]),
        ]
        for (name, text, fragments) in cases {
            try text.write(toFile: path(name), atomically: true, encoding: .utf8)
            try assertOneError(["train", "--config", path(name), "--out", path("run-\(name)")], naming: fragments)
            try assertOneError(["merge", path(name), "--out", path("merged-\(name)")], naming: fragments)
        }
        // Nested: a duplicate inside a model's parameters names the path.
        let nested = "merge_method: linear\nmodels:\n  - model: a\n    parameters:\n      weight: 1\n      weight: 2\n"
        try nested.write(toFile: path("nested.yaml"), atomically: true, encoding: .utf8)
        try assertOneError(["merge", path("nested.yaml"), "--out", path("m")], naming: ["nested.yaml", "models[0].parameters.weight", "line 6"])
        // A syntax error is one line too.
        try "epochs: [1, 2\n".write(toFile: path("syntax.yaml"), atomically: true, encoding: .utf8)
        try assertOneError(["train", "--config", path("syntax.yaml")], naming: ["syntax.yaml", "not valid YAML"])
    }

    // MARK: 1b–1d. Sizes the model cannot serve

    func writeTrainData() throws -> String {
        let long = Array(repeating: "hello world a b c d e", count: 20).joined(separator: " ")
        let rows = (0..<8).map { "{\"text\": \"\($0 % 2 == 0 ? long : "hello")\", \"label\": \"\($0 % 2)\"}" }
        try rows.joined(separator: "\n").write(toFile: path("train.jsonl"), atomically: true, encoding: .utf8)
        return path("train.jsonl")
    }

    func testTrainMaxLengthAboveMaxPositionsIsRefused() throws {
        let data = try writeTrainData()
        try assertOneError(["train", "--model", dir.path, "--data", data, "--max-length", "64", "--epochs", "1", "--out", path("run")],
                           naming: ["--max-length 64", "max_position_embeddings (16"])
        XCTAssertFalse(FileManager.default.fileExists(atPath: path("run")), "nothing is created")
        let ok = try SculptCLI.run(["train", "--model", dir.path, "--data", data, "--max-length", "16", "--epochs", "1", "--batch-size", "4", "--out", path("run2")])
        XCTAssertEqual(ok.status, 0, ok.stderr)
    }

    func testTokenizerWithIdsBeyondVocabSizeIsRefused() throws {
        let vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "b", "c", "d", "e", "f", "g", "hello", "world"]
        try vocab.joined(separator: "\n").write(to: dir.appendingPathComponent("vocab.txt"), atomically: true, encoding: .utf8)
        try assertOneError(["embed", dir.path, "--texts-file", path("texts.txt")], naming: ["vocab.txt", "vocab_size is 12", "up to 13"])
        let data = try writeTrainData()
        try assertOneError(["train", "--model", dir.path, "--data", data, "--max-length", "16", "--out", path("run")], naming: ["vocab.txt", "vocab_size"])
    }

    func editConfig(_ edit: (inout [String: Any]) -> Void) throws {
        let url = dir.appendingPathComponent("config.json")
        var config = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
        edit(&config)
        try JSONSerialization.data(withJSONObject: config).write(to: url)
    }

    func testAbsurdConfigSizesAreRefusedWithoutAllocating() throws {
        try editConfig { $0["hidden_size"] = 1 << 40; $0["num_attention_heads"] = 1 }
        try assertOneError(["info", dir.path], naming: ["config.json", "hidden_size", "larger than"])
        // In bounds one by one, but more parameters than the file holds: refused before the
        // model is built (a 2^16 × 2^16 embedding table is 16 GB and would not fit in memory).
        try editConfig { $0["hidden_size"] = 1 << 16; $0["vocab_size"] = 1 << 16 }
        try assertOneError(["info", dir.path], naming: ["model.safetensors", "parameters"])
        try editConfig { $0["hidden_size"] = 1 << 24; $0["vocab_size"] = 1 << 24 }
        try assertOneError(["info", dir.path], naming: ["config.json", "hidden_size", "2^40"])
    }

    func testConfigParameterCountMatchesTheBuiltModel() throws {
        var config = BertConfig(hiddenSize: 8, numHiddenLayers: 2, numAttentionHeads: 2, intermediateSize: 12, vocabSize: 12, maxPositionEmbeddings: 16)
        config.layerIntermediateSizes = [12, 4]; config.layerNumHeads = [2, 1]
        for pooler in [true, false] {
            let model = try BertModel(config: config, withPooler: pooler, randomWeights: false)
            XCTAssertEqual(config.parameterCount(withPooler: pooler), model.parameterCount)
        }
    }

    // MARK: 2. Exit codes: a value that parsed but is invalid is a user error

    func testInvalidValuesExitOneWithOneLineAndNegativeNumbersParse() throws {
        try assertOneError(["info", dir.path, "--seq", "0"], naming: ["--seq"])
        try assertOneError(["info", dir.path, "--seq", "-3"], naming: ["--seq", "-3"])
        try assertOneError(["train", "--data", path("texts.txt"), "--epochs", "-1"], naming: ["--epochs must be positive, got -1"])
        try assertOneError(["train", "--data", path("texts.txt"), "--epochs=0"], naming: ["--epochs must be positive, got 0"])
        try assertOneError(["train", "--data", path("texts.txt"), "--lr", "-1e-3"], naming: ["--lr", "-0.001"])
        try assertOneError(["tokenize", dir.path, "--texts-file", path("texts.txt"), "--max-length", "0"], naming: ["--max-length"])
        try assertOneError(["bench", "gemm", "--sizes", "12,abc"], naming: ["--sizes"])
        // True usage errors keep ArgumentParser's usage text and status 64.
        for args in [["info", dir.path, "--bogus"], ["info"], ["tokenize", dir.path]] {
            let r = try SculptCLI.run(args)
            XCTAssertEqual(r.status, 64, "\(args): \(r.stderr)")
            XCTAssertTrue(r.stderr.contains("Usage:"), "\(args): \(r.stderr)")
        }
    }

    // MARK: 3. --json prints numbers as numbers

    func jsonObject(_ line: Substring) throws -> [String: Any] {
        try XCTUnwrap(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], String(line))
    }

    func testTrainSummaryAndImageBenchPrintJSONNumbers() throws {
        let images = try TinyImages.write(in: dir, count: 32, classes: 2)
        let run = path("cnn-run")
        let trained = try SculptCLI.run(["train", "--model", "cnn", "--data", images.path, "--width", "4", "--epochs", "1", "--batch-size", "16",
                                         "--val-fraction", "0.25", "--threads", "1", "--out", run])
        XCTAssertEqual(trained.status, 0, trained.stderr)
        let summary = try jsonObject(try XCTUnwrap(trained.stdout.split(separator: "\n").last))
        XCTAssertTrue(summary["seconds"] is NSNumber && !(summary["seconds"] is String), "\(summary)")
        XCTAssertEqual(summary["steps"] as? Int, summary["total_steps"] as? Int, "\(summary)")
        XCTAssertNotNil(summary["val_accuracy"] as? Double, "\(summary)")
        XCTAssertEqual(summary["outcome"] as? String, "completed", "\(summary)")

        let bench = try SculptCLI.run(["bench", "model", run, "--seconds", "0", "--batch", "2", "--threads", "1", "--json"])
        XCTAssertEqual(bench.status, 0, bench.stderr)
        let line = try jsonObject(try XCTUnwrap(bench.stdout.split(separator: "\n").last))
        XCTAssertEqual(line["batch"] as? Int, 2, "\(line)")
        XCTAssertEqual(line["threads"] as? Int, 1, "\(line)")
        XCTAssertNotNil(line["seconds_per_step"] as? Double, "\(line)")
    }

    // MARK: 4. --max-length shorter than BERT's special tokens

    func testMaxLengthBelowSpecialTokensIsRefused() throws {
        for args in [["tokenize", dir.path, "--texts-file", path("texts.txt"), "--max-length", "1"],
                     ["embed", dir.path, "--texts-file", path("texts.txt"), "--max-length", "1"],
                     ["embed", dir.path, "--texts-file", path("texts.txt"), "--max-length", "-2"]] {
            try assertOneError(args, naming: ["--max-length", "2 special tokens"])
        }
        let two = try SculptCLI.run(["tokenize", dir.path, "--texts-file", path("texts.txt"), "--max-length", "2", "--json"])
        XCTAssertEqual(two.status, 0, two.stderr)
        XCTAssertEqual(two.stdout, "{\"input_ids\":[2,3]}\n")
        try assertOneError(["info", dir.path, "--seq", "0"], naming: ["--seq must be positive"])
    }

    // MARK: 5. safetensors data not covered by tensors

    func testSafetensorsWithAppendedBytesIsRefused() throws {
        let url = dir.appendingPathComponent("model.safetensors")
        let handle = try FileHandle(forWritingTo: url)
        try handle.seekToEnd()
        try handle.write(contentsOf: Data(repeating: 0, count: 16))
        try handle.close()
        for args in [["info", dir.path], ["embed", dir.path, "--texts-file", path("texts.txt")]] {
            try assertOneError(args, naming: ["model.safetensors", "after the last tensor are not covered"])
        }
    }
}
