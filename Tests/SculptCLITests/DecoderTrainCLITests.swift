import XCTest
import Foundation
import SculptTestSupport

/// `sculpt train` / `eval` / `generate` / `score` / `bench` on a decoder and on its runs,
/// with the tiny decoder made in the test support.
final class DecoderTrainCLITests: XCTestCase {
    var dir: URL!
    var model: URL!
    override func setUpWithError() throws {
        dir = SharedData.temporaryDirectory("sculpt-decoder-train-cli")
        model = try TinyDecoder.write(to: dir.appendingPathComponent("tiny"))
    }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    func sculpt(_ args: [String]) throws -> (status: Int32, stdout: String, stderr: String) { try SculptCLI.run(args) }
    func json(_ line: Substring) throws -> [String: Any] { try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any] }

    func testTrainThenEvaluateGenerateAndScoreTheRun() throws {
        let train = try TinyDecoder.chatFile(dir.appendingPathComponent("train.jsonl"), count: 40)
        let test = try TinyDecoder.chatFile(dir.appendingPathComponent("test.jsonl"), count: 12, seed: 9)
        let run = dir.appendingPathComponent("run").path
        let t = try sculpt(["train", "--model", model.path, "--data", train.path, "--out", run, "--epochs", "12", "--batch-size", "4",
                            "--lr", "0.01", "--warmup-ratio", "0.1", "--val-fraction", "0", "--eval-data", test.path, "--threads", "1"])
        XCTAssertEqual(t.status, 0, t.stderr)
        let summary = try json(t.stdout.split(separator: "\n").last!)
        XCTAssertEqual(summary["outcome"] as? String, "completed")
        let valLoss = try XCTUnwrap(summary["val_loss"] as? Double)
        XCTAssertEqual(try XCTUnwrap(summary["val_perplexity"] as? Double), Foundation.exp(valLoss), accuracy: 1e-2)

        let e = try sculpt(["eval", run, "--data", test.path, "--metric", "exact-match", "--json", "--threads", "1"])
        XCTAssertEqual(e.status, 0, e.stderr)
        let r = try json(e.stdout.split(separator: "\n").last!)
        XCTAssertEqual(Set(r.keys), ["examples", "loss", "perplexity", "exact_match"])
        XCTAssertEqual(r["examples"] as? Int, 12)
        XCTAssertEqual(try XCTUnwrap(r["loss"] as? Double), valLoss, accuracy: 1e-3, "eval of final/ is the run's final validation")
        XCTAssertGreaterThanOrEqual(try XCTUnwrap(r["exact_match"] as? Double), 0.75, e.stdout)

        let g = try sculpt(["generate", run, "--prompt", "what does the owl say?", "--chat", "--max-new-tokens", "8"])
        XCTAssertEqual(g.status, 0, g.stderr)
        XCTAssertEqual(g.stdout.trimmingCharacters(in: .whitespacesAndNewlines), "hoot")

        let texts = dir.appendingPathComponent("texts.txt")
        try "hello\n".write(to: texts, atomically: true, encoding: .utf8)
        XCTAssertEqual(try sculpt(["score", run, "--texts-file", texts.path, "--json"]).status, 0)
        let b = try sculpt(["bench", "model", run, "--train", "--method", "lora", "--batch", "2", "--seq", "16", "--seconds", "0", "--json"])
        XCTAssertEqual(b.status, 0, b.stderr)
        let bench = try json(b.stdout.split(separator: "\n").last!)
        XCTAssertEqual(bench["mode"] as? String, "train")
        XCTAssertGreaterThan(try XCTUnwrap(bench["peak_memory_mb"] as? Double), 0)
    }

    func testBadChatDataAndOptionsGiveOneErrorLine() throws {
        let bad = dir.appendingPathComponent("bad.jsonl")
        try """
        {"messages":[{"role":"user","content":"a"},{"role":"assistant","content":"b"}]}
        {"messages":[{"role":"assistant","content":"b"}]}

        """.write(to: bad, atomically: true, encoding: .utf8)
        let cases: [([String], [String])] = [
            (["train", "--model", model.path, "--data", bad.path, "--out", dir.appendingPathComponent("r1").path], ["bad.jsonl:2", "starts with an assistant turn"]),
            (["train", "--model", model.path, "--data", bad.path, "--out", dir.appendingPathComponent("r2").path, "--train-on", "x"], ["--train-on"]),
            (["eval", model.path, "--data", bad.path, "--metric", "bleu"], ["--metric must be exact-match"]),
        ]
        for (args, fragments) in cases {
            let r = try sculpt(args)
            XCTAssertEqual(r.status, 1, "\(args): \(r.stderr)")
            let lines = r.stderr.split(separator: "\n")
            XCTAssertEqual(lines.count, 1, r.stderr)
            XCTAssertTrue(lines.first?.hasPrefix("Error:") ?? false, r.stderr)
            for f in fragments { XCTAssertTrue(r.stderr.contains(f), "\(f) not in \(r.stderr)") }
        }
    }
}
