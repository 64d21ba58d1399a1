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
        let config = BertConfig(hiddenSize: 8, numHiddenLayers: 1, numAttentionHeads: 2, intermediateSize: 8, vocabSize: 12, maxPositionEmbeddings: 16)
        try BertModel(config: config, seed: 1).save(to: dir)
        let vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "hello", "world", "a", "b", "c", "d", "e"]
        try vocab.joined(separator: "\n").write(to: dir.appendingPathComponent("vocab.txt"), atomically: true, encoding: .utf8)
        try "hello world\n".write(to: dir.appendingPathComponent("texts.txt"), atomically: true, encoding: .utf8)
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
}
