import XCTest
import Foundation
import SculptCore
import SculptIO
import SculptTestSupport

/// `sculpt prune --method imp` and `sculpt train --masks` through the binary.
final class PruneCLITests: XCTestCase {
    func writeImages(in dir: URL, count: Int = 160, classes: Int = 4) throws -> URL {
        try TinyImages.write(in: dir, count: count, classes: classes)
    }

    func testIMPRoundsAndMaskErrors() throws {
        let dir = temporaryDirectory()
        let images = try writeImages(in: dir).path
        let run = dir.appendingPathComponent("run").path
        let common = ["--model", "cnn", "--data", images, "--width", "4", "--epochs", "2", "--batch-size", "16", "--lr", "0.01",
                      "--val-fraction", "0.25", "--threads", "1"]
        var r = try SculptCLI.run(["train"] + common + ["--out", run])
        XCTAssertEqual(r.status, 0, r.stderr)
        r = try SculptCLI.run(["prune", run, "--method", "imp", "--sparsity", "0.36", "--rewind-step", "2", "--threads", "1", "--json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let report = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        let rounds = try XCTUnwrap(report["rounds"] as? [[String: Any]])
        XCTAssertEqual(rounds.compactMap { $0["round"] as? Int }, [0, 1, 2])
        XCTAssertEqual(try XCTUnwrap(report["achieved_sparsity"] as? Double), 0.36, accuracy: 0.01)
        // The table form lists every round.
        r = try SculptCLI.run(["prune", run, "--method", "imp", "--sparsity", "0.2", "--rewind-step", "0", "--epochs", "1", "--threads", "1",
                               "--out", dir.appendingPathComponent("imp-table").path])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("round") && r.stdout.contains("20.0 %"), r.stdout)

        func assertOneError(_ args: [String], naming fragment: String, file: StaticString = #filePath, line: UInt = #line) throws {
            let r = try SculptCLI.run(args)
            XCTAssertEqual(r.status, 1, r.stderr, file: file, line: line)
            XCTAssertEqual(r.stderr.split(separator: "\n").count, 1, r.stderr, file: file, line: line)
            XCTAssertTrue(r.stderr.hasPrefix("Error: ") && r.stderr.contains(fragment), r.stderr, file: file, line: line)
        }
        try assertOneError(["prune", run, "--method", "imp", "--sparsity", "0.5", "--rewind-step", "999"], naming: "--rewind-step")
        let bad = dir.appendingPathComponent("bad-masks.safetensors")
        try SafeTensorsSaving.write(["nope.weight": Tensor.ones([2, 2])], to: bad)
        try assertOneError(["train"] + common + ["--masks", bad.path, "--out", dir.appendingPathComponent("m1").path], naming: "nope.weight")
        try SafeTensorsSaving.write(["stem.0.weight": Tensor.ones([2, 2])], to: bad)
        try assertOneError(["train"] + common + ["--masks", bad.path, "--out", dir.appendingPathComponent("m2").path], naming: "stem.0.weight")
        try assertOneError(["train"] + common + ["--masks", bad.path, "--method", "bitfit", "--out", dir.appendingPathComponent("m3").path], naming: "--masks")
    }
}
