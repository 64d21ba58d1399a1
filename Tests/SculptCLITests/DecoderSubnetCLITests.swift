import XCTest
import Foundation
import SculptCore
import SculptModels
import SculptTestSupport

/// Decoder sub-networks from the command line: sorted (nested-depth) training and its
/// depths, importance, structured pruning with distillation recovery, extraction and
/// self-speculative decoding, on the tiny decoder of the test support.
final class DecoderSubnetCLITests: XCTestCase {
    var dir: URL!
    var model: URL!
    var train: URL!
    var test: URL!
    override func setUpWithError() throws {
        dir = SharedData.temporaryDirectory("sculpt-decoder-subnet-cli")
        model = try TinyDecoder.write(to: dir.appendingPathComponent("tiny"))
        train = try TinyDecoder.chatFile(dir.appendingPathComponent("train.jsonl"), count: 40)
        test = try TinyDecoder.chatFile(dir.appendingPathComponent("test.jsonl"), count: 12, seed: 9)
    }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    func sculpt(_ args: [String]) throws -> (status: Int32, stdout: String, stderr: String) { try SculptCLI.run(args) }
    func json(_ text: String) throws -> [String: Any] {
        try JSONSerialization.jsonObject(with: Data(text.split(separator: "\n").last!.utf8)) as! [String: Any]
    }

    /// A sorted run of a 4-layer model trains its depths 1…4 to the labels: every depth is
    /// evaluated from the same weights, the 1-layer exit of the plain run is worse than that
    /// of the sorted run, and speculative decoding with the sorted run's shallow draft gives
    /// the plain greedy output.
    func testSortedRunDepthsEvalAndSpeculativeDecoding() throws {
        var c = TinyDecoder.config
        c.numHiddenLayers = 4
        let deep = dir.appendingPathComponent("deep")
        try FileManager.default.createDirectory(at: deep, withIntermediateDirectories: true)
        try DecoderLM(config: c, seed: 3).save(to: deep)
        for f in ["tokenizer.json", "tokenizer_config.json", "chat_template.jinja"] {
            try FileManager.default.copyItem(at: model.appendingPathComponent(f), to: deep.appendingPathComponent(f))
        }
        let common = ["--data", train.path, "--epochs", "10", "--batch-size", "4", "--lr", "0.01", "--warmup-ratio", "0.1",
                      "--val-fraction", "0", "--eval-data", test.path, "--threads", "1", "--model", deep.path]
        let sortedRun = dir.appendingPathComponent("sorted").path, plainRun = dir.appendingPathComponent("plain").path
        let s = try sculpt(["train", "--method", "elastic", "--elastic-schedule", "sorted", "--nested-subnets", "4", "--out", sortedRun] + common)
        XCTAssertEqual(s.status, 0, s.stderr)
        XCTAssertEqual(try sculpt(["train", "--method", "full", "--out", plainRun] + common).status, 0)
        let named = try JSONSerialization.jsonObject(with: try Data(contentsOf: URL(fileURLWithPath: sortedRun).appendingPathComponent("subnets.json"))) as! [String: Any]
        XCTAssertEqual(named["kind"] as? String, "decoder")
        XCTAssertEqual(Set((named["named"] as! [String: Any]).keys), ["depth-1", "depth-2", "depth-3", "depth-4"])
        let listing = try sculpt(["subnets", sortedRun, "--json"])
        XCTAssertEqual(listing.status, 0, listing.stderr)
        let rows = try XCTUnwrap(try json(listing.stdout)["subnets"] as? [[String: Any]])
        XCTAssertEqual(rows.map { $0["name"] as? String }, ["depth-1", "depth-2", "depth-3", "depth-4"])
        let macs = rows.compactMap { $0["macs"] as? Int }
        XCTAssertEqual(macs, macs.sorted())
        XCTAssertEqual(rows.last?["macs_fraction"] as? Double, 1)
        XCTAssertTrue(try sculpt(["subnets", sortedRun]).stdout.contains("depth-2"))
        // A classifier-only command on the decoder run says what the run is and where to go.
        let search = try sculpt(["search", sortedRun, "--db", dir.appendingPathComponent("s.sqlite").path, "--evaluations", "4", "--population", "2"])
        XCTAssertEqual(search.status, 1, search.stdout)
        XCTAssertTrue(search.stderr.hasPrefix("Error: ") && search.stderr.contains("decoder") && search.stderr.split(separator: "\n").count == 1, search.stderr)
        func loss(_ run: String, _ subnet: String) throws -> Double {
            let e = try sculpt(["eval", run, "--data", test.path, "--subnet", subnet, "--json", "--threads", "1"])
            XCTAssertEqual(e.status, 0, e.stderr)
            return try XCTUnwrap(try json(e.stdout)["loss"] as? Double)
        }
        let sortedShallow = try loss(sortedRun, "depth-1"), plainShallow = try loss(plainRun, #"{"layers": 1}"#)
        XCTAssertLessThan(sortedShallow, plainShallow, "the sorted run's 1-layer exit learnt the task")
        XCTAssertLessThan(sortedShallow, 1.5)
        // Speculative decoding with the shallow draft: identical to plain greedy (--compare checks).
        let prompts = dir.appendingPathComponent("prompts.txt")
        try "what does the owl say?\nwhat does the cat say?\nwhat does the dog say?\n".write(to: prompts, atomically: true, encoding: .utf8)
        let g = try sculpt(["generate", sortedRun, "--prompts-file", prompts.path, "--chat", "--draft", "depth-2", "--draft-tokens", "3",
                            "--compare", "--max-new-tokens", "8", "--threads", "1"])
        XCTAssertEqual(g.status, 0, g.stderr)
        XCTAssertTrue(g.stderr.contains("identical outputs: 3 of 3"), g.stderr)
        XCTAssertTrue(g.stdout.contains("hoot"), g.stdout)
        // A draft that is not a nested depth, and a sub-network that splits a KV group.
        let bad = try sculpt(["generate", sortedRun, "--prompt", "x", "--draft", #"{"layers": [0, 2]}"#])
        XCTAssertEqual(bad.status, 1)
        XCTAssertTrue(bad.stderr.hasPrefix("Error: --draft"), bad.stderr)
        let split = try sculpt(["eval", sortedRun, "--data", test.path, "--subnet", #"{"layers": 2, "heads": 1}"#])
        XCTAssertEqual(split.status, 1)
        XCTAssertTrue(split.stderr.contains("heads[0]") && split.stderr.contains("key-value group"), split.stderr)
        XCTAssertEqual(split.stderr.split(separator: "\n").count, 1, split.stderr)
    }

    func testWandaAndTwoFourMasks() throws {
        for (method, extra) in [("wanda", ["--sparsity", "0.5"]), ("magnitude", ["--pattern", "2:4"])] {
            let out = dir.appendingPathComponent("masked-\(method)")
            let p = try sculpt(["prune", model.path, "--method", method, "--data", train.path, "--out", out.path, "--json", "--threads", "1"] + extra)
            XCTAssertEqual(p.status, 0, p.stderr)
            let r = try json(p.stdout)
            XCTAssertEqual(try XCTUnwrap(r["sparsity"] as? Double), 0.5, accuracy: 1e-9)
            XCTAssertTrue((r["note"] as? String ?? "").contains("no speed"))
            XCTAssertNoThrow(try DecoderLM.load(directory: out))
            XCTAssertTrue(FileManager.default.fileExists(atPath: out.appendingPathComponent("masks.safetensors").path))
        }
        let bad = try sculpt(["prune", model.path, "--method", "wanda", "--sparsity", "0.5", "--out", dir.appendingPathComponent("w").path])
        XCTAssertEqual(bad.status, 1)
        XCTAssertTrue(bad.stderr.hasPrefix("Error:") && bad.stderr.contains("--data"), bad.stderr)
        let pat = try sculpt(["prune", model.path, "--method", "magnitude", "--pattern", "3:4", "--data", train.path, "--out", dir.appendingPathComponent("p").path])
        XCTAssertEqual(pat.status, 1)
        XCTAssertTrue(pat.stderr.contains("--pattern"), pat.stderr)
    }

    func testImportancePruneAndExtract() throws {
        let imp = try sculpt(["importance", model.path, "--data", train.path, "--json", "--threads", "1"])
        XCTAssertEqual(imp.status, 0, imp.stderr)
        let report = try json(imp.stdout)
        XCTAssertEqual((report["block_influence"] as? [Double])?.count, 2)
        XCTAssertEqual((report["groups"] as? [[Double]])?.first?.count, 2)
        let table = try sculpt(["importance", model.path, "--data", train.path, "--method", "taylor"])
        XCTAssertEqual(table.status, 0, table.stderr)
        XCTAssertTrue(table.stdout.contains("block influence"), table.stdout)

        // Width pruning to half the non-embedding parameters, distillation recovery.
        let out = dir.appendingPathComponent("pruned")
        let p = try sculpt(["prune", model.path, "--method", "structured", "--target-params", "0.5", "--width-only", "--data", train.path,
                            "--eval-data", test.path, "--out", out.path, "--recovery-epochs", "1", "--batch-size", "4", "--json", "--threads", "1"])
        XCTAssertEqual(p.status, 0, p.stderr)
        let r = try json(p.stdout)
        let kept = try XCTUnwrap(r["kept_fraction"] as? Double)
        XCTAssertLessThanOrEqual(kept, 0.5)
        XCTAssertGreaterThan(kept, 0.4)
        XCTAssertEqual(r["layers_removed"] as? [Int], [])
        XCTAssertLessThanOrEqual(try XCTUnwrap(r["extraction_max_abs_difference"] as? Double), 1e-4)
        XCTAssertNotNil(r["val_loss_recovered"] as? Double)
        let pruned = try DecoderLM.load(directory: out.appendingPathComponent("pruned")).model
        let recovered = try DecoderLM.load(directory: out.appendingPathComponent("recovery/final")).model
        XCTAssertEqual(pruned.config, recovered.config)
        XCTAssertLessThan(pruned.config.intermediateSize, TinyDecoder.config.intermediateSize)
        XCTAssertEqual(try sculpt(["eval", out.appendingPathComponent("recovery").path, "--data", test.path]).status, 0)
        // Depth pruning removes a layer; an existing --out is refused and left alone.
        let d = try sculpt(["prune", model.path, "--method", "structured", "--target-params", "0.6", "--depth-only", "--data", train.path,
                            "--out", dir.appendingPathComponent("depth").path, "--recovery-epochs", "0", "--json", "--threads", "1"])
        XCTAssertEqual(d.status, 0, d.stderr)
        XCTAssertEqual((try json(d.stdout)["layers_removed"] as? [Int])?.count, 1)
        let again = try sculpt(["prune", model.path, "--method", "structured", "--target-params", "0.5", "--data", train.path, "--out", out.path])
        XCTAssertEqual(again.status, 1)
        XCTAssertTrue(again.stderr.hasPrefix("Error:") && again.stderr.contains("exists"), again.stderr)
        XCTAssertTrue(FileManager.default.fileExists(atPath: out.appendingPathComponent("recovery/final").path))
        // A failing prune (no data lines) leaves no --out behind.
        let empty = dir.appendingPathComponent("empty.jsonl")
        try "".write(to: empty, atomically: true, encoding: .utf8)
        let none = dir.appendingPathComponent("none")
        XCTAssertEqual(try sculpt(["prune", model.path, "--method", "structured", "--target-params", "0.5", "--data", empty.path, "--out", none.path]).status, 1)
        XCTAssertFalse(FileManager.default.fileExists(atPath: none.path))

        // Extraction of a middle-layer-dropping, non-uniform sub-network: zero-padded to a
        // standard config whose outputs are the sub-network's.
        let e = dir.appendingPathComponent("extracted")
        let x = try sculpt(["extract", model.path, "--subnet", #"{"layers": [1], "heads": 2, "ffn": 40, "hidden": 24}"#, "--out", e.path, "--json"])
        XCTAssertEqual(x.status, 0, x.stderr)
        let small = try DecoderLM.load(directory: e).model
        XCTAssertEqual(small.config.numHiddenLayers, 1)
        XCTAssertEqual(small.config.hiddenSize, 24)
        XCTAssertEqual(small.config.numKeyValueHeads, 1)
        XCTAssertTrue(FileManager.default.fileExists(atPath: e.appendingPathComponent("tokenizer.json").path))
        let xbad = try sculpt(["extract", model.path, "--subnet", #"{"layers": [1, 1]}"#, "--out", dir.appendingPathComponent("x2").path])
        XCTAssertEqual(xbad.status, 1)
        XCTAssertTrue(xbad.stderr.contains("layers[1]") && xbad.stderr.contains("twice"), xbad.stderr)
    }
}

/// Two decoder fine-tunes (on the even and the odd lines of one question → answer set, so the
/// "tasks" share a mapping) merged with ties and task_arithmetic: the result is a decoder
/// directory (tokenizer and chat template beside it) whose loss on both halves stays well
/// below the base's. It checks the merge works on decoders, not that it resolves conflicts.
final class DecoderMergeCLITests: XCTestCase {
    func testTiesAndTaskArithmeticMergeDecoderFineTunes() throws {
        let dir = SharedData.temporaryDirectory("sculpt-decoder-merge")
        defer { try? FileManager.default.removeItem(at: dir) }
        let model = try TinyDecoder.write(to: dir.appendingPathComponent("tiny"))
        let all = try TinyDecoder.chatFile(dir.appendingPathComponent("all.jsonl"), count: 40)
        let lines = try String(contentsOf: all, encoding: .utf8).split(separator: "\n")
        let a = dir.appendingPathComponent("a.jsonl"), b = dir.appendingPathComponent("b.jsonl")
        try (lines.enumerated().filter { $0.offset % 2 == 0 }.map(\.element).joined(separator: "\n") + "\n").write(to: a, atomically: true, encoding: .utf8)
        try (lines.enumerated().filter { $0.offset % 2 == 1 }.map(\.element).joined(separator: "\n") + "\n").write(to: b, atomically: true, encoding: .utf8)
        for (name, data) in [("ra", a), ("rb", b)] {
            let t = try SculptCLI.run(["train", "--model", model.path, "--data", data.path, "--out", dir.appendingPathComponent(name).path, "--epochs", "6",
                                       "--batch-size", "4", "--lr", "0.005", "--val-fraction", "0", "--threads", "1"])
            XCTAssertEqual(t.status, 0, t.stderr)
        }
        func loss(_ m: String, _ data: URL) throws -> Double {
            let e = try SculptCLI.run(["eval", m, "--data", data.path, "--json", "--threads", "1"])
            XCTAssertEqual(e.status, 0, e.stderr)
            let o = try JSONSerialization.jsonObject(with: Data(e.stdout.split(separator: "\n").last!.utf8)) as! [String: Any]
            return o["loss"] as! Double
        }
        let base = try loss(model.path, b)
        for method in ["task_arithmetic", "ties"] {
            let yaml = dir.appendingPathComponent("\(method).yaml")
            try """
            merge_method: \(method)
            base_model: \(model.path)
            models:
              - model: \(dir.appendingPathComponent("ra").path)
                parameters: {weight: 1.0}
              - model: \(dir.appendingPathComponent("rb").path)
                parameters: {weight: 1.0}
            parameters: {density: 0.5}
            """.write(to: yaml, atomically: true, encoding: .utf8)
            let out = dir.appendingPathComponent("merged-\(method)")
            let m = try SculptCLI.run(["merge", yaml.path, "--out", out.path])
            XCTAssertEqual(m.status, 0, m.stderr)
            for f in ["config.json", "tokenizer.json", "chat_template.jinja", "generation_config.json"] {
                XCTAssertTrue(FileManager.default.fileExists(atPath: out.appendingPathComponent(f).path), "\(method): \(f)")
            }
            // Task b's loss: well below the base's (the merge kept what rb learnt).
            XCTAssertLessThan(try loss(out.path, b), base * 0.7, method)
            XCTAssertLessThan(try loss(out.path, a), base * 0.7, method)
        }
    }
}
