import XCTest
import Foundation
import SculptCore
import SculptIO
import SculptModels
import SculptTestSupport

/// Every model-reading command, given a broken file, prints one line naming the file and
/// exits 1 — no trap, no stack dump.
final class BadInputTests: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws {
        dir = SharedData.temporaryDirectory("sculpt-cli")
        try TinyBert.writeCLIFixture(in: dir)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    var weights: URL { dir.appendingPathComponent("model.safetensors") }

    func sculpt(_ args: [String]) throws -> (status: Int32, stdout: String, stderr: String) { try SculptCLI.run(args) }

    func assertEveryCommandFails(naming fragment: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let texts = dir.appendingPathComponent("texts.txt").path
        for args in [["info", dir.path], ["embed", dir.path, "--texts-file", texts], ["bench", "model", dir.path, "--seconds", "0", "--batch", "1", "--seq", "4"]] {
            let r = try sculpt(args)
            XCTAssertEqual(r.status, 1, "\(args[0]) exit status; stderr: \(r.stderr)", file: file, line: line)
            let lines = r.stderr.split(separator: "\n").filter { !$0.hasPrefix("embedded") }
            XCTAssertEqual(lines.count, 1, "\(args[0]) prints one error line: \(r.stderr)", file: file, line: line)
            XCTAssertTrue(r.stderr.hasPrefix("Error: ") && r.stderr.contains(fragment), "\(args[0]): \(r.stderr)", file: file, line: line)
        }
    }

    /// Rewrites the safetensors header with `edit` applied to its JSON object.
    func editHeader(_ edit: (inout [String: Any]) -> Void) throws {
        let data = try Data(contentsOf: weights)
        let n = Int(data.prefix(8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) })
        var header = try JSONSerialization.jsonObject(with: data.subdata(in: 8..<(8 + n))) as! [String: Any]
        edit(&header)
        var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        while json.count % 8 != 0 { json.append(0x20) }
        var out = Data()
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { out.append(contentsOf: $0) }
        out.append(json)
        out.append(data.subdata(in: (8 + n)..<data.count))
        try out.write(to: weights)
    }

    func testWorkingModelSucceeds() throws {
        let r = try sculpt(["info", dir.path, "--json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("\"total_parameters\""), r.stdout)
    }

    func testTruncatedSafetensors() throws {
        let data = try Data(contentsOf: weights)
        try data.prefix(data.count / 2).write(to: weights)
        try assertEveryCommandFails(naming: "model.safetensors")
    }

    func testOversizedHeader() throws {
        var data = try Data(contentsOf: weights)
        data.replaceSubrange(0..<8, with: withUnsafeBytes(of: UInt64(1 << 40).littleEndian) { Data($0) })
        try data.write(to: weights)
        try assertEveryCommandFails(naming: "model.safetensors")
    }

    func testOverlappingOffsets() throws {
        try editHeader { h in
            var e = h["embeddings.LayerNorm.weight"] as! [String: Any]
            let other = h["embeddings.LayerNorm.bias"] as! [String: Any]
            e["data_offsets"] = other["data_offsets"]
            h["embeddings.LayerNorm.weight"] = e
        }
        try assertEveryCommandFails(naming: "model.safetensors")
    }

    func testUnknownDtype() throws {
        try editHeader { h in
            var e = h["embeddings.LayerNorm.weight"] as! [String: Any]
            e["dtype"] = "X32"
            h["embeddings.LayerNorm.weight"] = e
        }
        try assertEveryCommandFails(naming: "embeddings.LayerNorm.weight")
    }

    func testConfigMissingKey() throws {
        let url = dir.appendingPathComponent("config.json")
        var config = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
        config.removeValue(forKey: "hidden_size")
        try JSONSerialization.data(withJSONObject: config).write(to: url)
        try assertEveryCommandFails(naming: "hidden_size")
    }

    func testTokenizerNotJSON() throws {
        try "this is not json".write(to: dir.appendingPathComponent("tokenizer.json"), atomically: true, encoding: .utf8)
        for args in [["tokenize", dir.path, "--texts-file", dir.appendingPathComponent("texts.txt").path],
                     ["embed", dir.path, "--texts-file", dir.appendingPathComponent("texts.txt").path]] {
            let r = try sculpt(args)
            XCTAssertEqual(r.status, 1, r.stderr)
            XCTAssertEqual(r.stderr.split(separator: "\n").count, 1, r.stderr)
            XCTAssertTrue(r.stderr.contains("tokenizer.json"), r.stderr)
        }
    }

    func testBadArgumentsExitNonZero() throws {
        let r = try sculpt(["bench", "gemm", "--sizes", "12,abc"])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("--sizes"), r.stderr)
        let missing = try sculpt(["info", dir.appendingPathComponent("nope").path])
        XCTAssertEqual(missing.status, 1)
        XCTAssertTrue(missing.stderr.contains("nope"), missing.stderr)
    }
}
