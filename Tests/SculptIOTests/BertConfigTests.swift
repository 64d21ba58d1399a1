import Foundation
import XCTest
@testable import SculptIO
import SculptTestSupport

final class BertConfigTests: XCTestCase {
    private var dir: URL!

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory
            .appendingPathComponent("sculpt-config-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        if let dir { try? FileManager.default.removeItem(at: dir) }
    }

    private let minimal = """
    {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 128,
     "vocab_size": 100, "max_position_embeddings": 32}
    """

    /// Writes `json` to a file and asserts loading fails with exactly `message` (after the path).
    private func assertLoadFails(_ json: String, _ message: String, line: UInt = #line) throws {
        let url = dir.appendingPathComponent("config\(line).json")
        try Data(json.utf8).write(to: url)
        XCTAssertThrowsError(try BertConfig.load(from: url), line: line) { error in
            XCTAssertTrue(error is ConfigError, line: line)
            XCTAssertEqual("\(error)", "\(url.path): \(message)", line: line)
        }
    }

    private func replacing(_ key: String, with value: String) -> String {
        var obj = (try? JSONSerialization.jsonObject(with: Data(minimal.utf8)) as? [String: Any]) ?? [:]
        obj.removeValue(forKey: key)
        let body = obj.keys.sorted().map { k -> String in
            let v = obj[k].map { "\($0)" } ?? "null"
            return "\"\(k)\": \(v)"
        }
        return "{" + (body + (value.isEmpty ? [] : ["\"\(key)\": \(value)"])).joined(separator: ", ") + "}"
    }

    func testLoadsMiniLMConfig() throws {
        let url = try SharedData.require("models/all-MiniLM-L6-v2/config.json")
        let c = try BertConfig.load(from: url)
        XCTAssertEqual(c.hiddenSize, 384)
        XCTAssertEqual(c.numHiddenLayers, 6)
        XCTAssertEqual(c.numAttentionHeads, 12)
        XCTAssertEqual(c.intermediateSize, 1536)
        XCTAssertEqual(c.vocabSize, 30522)
        XCTAssertEqual(c.maxPositionEmbeddings, 512)
        XCTAssertEqual(c.typeVocabSize, 2)
        XCTAssertEqual(c.layerNormEps, 1e-12)
        XCTAssertEqual(c.hiddenAct, "gelu")
        XCTAssertEqual(c.hiddenDropoutProb, 0.1)
        XCTAssertEqual(c.attentionProbsDropoutProb, 0.1)
        XCTAssertEqual(c.padTokenId, 0)
        XCTAssertEqual(c.modelType, "bert")
        XCTAssertEqual(c.headDim, 32)
        XCTAssertNil(c.layerIntermediateSizes)
        XCTAssertEqual(c.intermediateSize(layer: 3), 1536)
        XCTAssertEqual(c.numHeads(layer: 5), 12)
    }

    func testDefaultsForOptionalKeysAndUnknownKeysIgnored() throws {
        let json = replacing("gradient_checkpointing", with: "false")
            .replacingOccurrences(of: "}", with: #", "some_future_key": {"nested": [1, 2]}, "pad_token_id": null}"#)
        let c = try BertConfig.parse(Data(json.utf8))
        XCTAssertEqual(c, BertConfig(hiddenSize: 64, numHiddenLayers: 2, numAttentionHeads: 4, intermediateSize: 128,
                                     vocabSize: 100, maxPositionEmbeddings: 32))
        XCTAssertEqual(c.typeVocabSize, 2)
        XCTAssertEqual(c.layerNormEps, 1e-12)
        XCTAssertEqual(c.hiddenAct, "gelu")
        XCTAssertEqual(c.hiddenDropoutProb, 0.1)
        XCTAssertEqual(c.padTokenId, 0)
    }

    func testMissingRequiredKeys() throws {
        for key in ["hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size", "vocab_size",
                    "max_position_embeddings"] {
            try assertLoadFails(replacing(key, with: ""), "\"\(key)\": missing required key")
        }
    }

    func testWrongTypes() throws {
        try assertLoadFails(replacing("hidden_size", with: "\"64\""), "\"hidden_size\": expected an integer, found a string (\"64\")")
        try assertLoadFails(replacing("hidden_size", with: "64.0"), "\"hidden_size\": expected an integer, found a number (64.0)")
        try assertLoadFails(replacing("num_hidden_layers", with: "true"), "\"num_hidden_layers\": expected an integer, found a boolean")
        try assertLoadFails(replacing("vocab_size", with: "[100]"), "\"vocab_size\": expected an integer, found an array")
        try assertLoadFails(replacing("layer_norm_eps", with: "\"1e-12\""), "\"layer_norm_eps\": expected a number, found a string (\"1e-12\")")
        try assertLoadFails(replacing("hidden_act", with: "1"), "\"hidden_act\": expected a string, found an integer (1)")
        try assertLoadFails(replacing("sculpt_intermediate_sizes", with: "[1, \"2\"]"),
                            "\"sculpt_intermediate_sizes\": expected an array of integers, found a string (\"2\")")
        try assertLoadFails("[1]", "the JSON is an array, not an object")
        try assertLoadFails("{\"hidden_size\": ", "not valid JSON: unexpected end of input at byte 16")
    }

    func testInvalidValues() throws {
        try assertLoadFails(replacing("num_attention_heads", with: "5"),
                            "\"hidden_size\": 64 is not divisible by num_attention_heads (5)")
        try assertLoadFails(replacing("num_hidden_layers", with: "0"), "\"num_hidden_layers\": must be positive, got 0")
        try assertLoadFails(replacing("intermediate_size", with: "-3"), "\"intermediate_size\": must be positive, got -3")
        try assertLoadFails(replacing("hidden_act", with: "\"swishy\""),
                            "\"hidden_act\": unsupported activation \"swishy\" (supported: gelu, gelu_new, gelu_pytorch_tanh, relu)")
        try assertLoadFails(replacing("layer_norm_eps", with: "0"), "\"layer_norm_eps\": must be positive, got 0.0")
        try assertLoadFails(replacing("hidden_dropout_prob", with: "1.5"), "\"hidden_dropout_prob\": must be in [0, 1), got 1.5")
        try assertLoadFails(replacing("position_embedding_type", with: "\"relative_key\""),
                            "\"position_embedding_type\": only \"absolute\" is supported, got \"relative_key\"")
        try assertLoadFails(replacing("pad_token_id", with: "100"), "\"pad_token_id\": 100 is outside the vocabulary (0..<100)")
        try assertLoadFails(replacing("sculpt_num_heads", with: "[4]"), "\"sculpt_num_heads\": has 1 entries for 2 layers")
        try assertLoadFails(replacing("sculpt_num_heads", with: "[4, 9]"), "\"sculpt_num_heads\": entry 1 is 9, outside 0...4")
        let missing = dir.appendingPathComponent("absent.json")
        XCTAssertThrowsError(try BertConfig.load(from: missing)) { error in
            XCTAssertTrue("\(error)".hasPrefix("\(missing.path): cannot read:"), "\(error)")
            XCTAssertFalse("\(error)".contains("\n"))
        }
    }

    func testWriteReadRoundTrip() throws {
        var c = BertConfig(hiddenSize: 384, numHiddenLayers: 3, numAttentionHeads: 12, intermediateSize: 1536,
                           vocabSize: 30522, maxPositionEmbeddings: 512, hiddenAct: "gelu_new", hiddenDropoutProb: 0,
                           padTokenId: 0)
        c.layerIntermediateSizes = [1536, 768, 0]
        c.layerNumHeads = [12, 6, 1]
        let url = dir.appendingPathComponent("config.json")
        try c.write(to: url)
        XCTAssertEqual(try BertConfig.load(from: url), c)
        XCTAssertEqual(c.intermediateSize(layer: 1), 768)
        XCTAssertEqual(c.numHeads(layer: 2), 1)

        let text = String(decoding: try Data(contentsOf: url), as: UTF8.self)
        XCTAssertTrue(text.contains("\"architectures\" : [\n    \"BertModel\"\n  ]"), text)
        XCTAssertTrue(text.contains("\"model_type\" : \"bert\""), text)
        XCTAssertTrue(text.contains("\"layer_norm_eps\" : 1e-12"), text)
        XCTAssertTrue(text.contains("\"sculpt_num_heads\""), text)
        // Keys are sorted.
        let keys = text.split(separator: "\n").compactMap { line -> String? in
            guard line.hasPrefix("  \""), let end = line.dropFirst(3).firstIndex(of: "\"") else { return nil }
            return String(line[line.index(line.startIndex, offsetBy: 3)..<end])
        }
        XCTAssertEqual(keys, keys.sorted())
        XCTAssertTrue(keys.contains("vocab_size"))

        // Codable round trip through JSONDecoder gives the same value.
        XCTAssertEqual(try JSONDecoder().decode(BertConfig.self, from: try c.jsonData()), c)

        // Without per-layer sizes the sculpt keys are omitted.
        c.layerIntermediateSizes = nil
        c.layerNumHeads = nil
        XCTAssertFalse(String(decoding: try c.jsonData(), as: UTF8.self).contains("sculpt_"))

        // An invalid config is not written.
        c.numAttentionHeads = 7
        XCTAssertThrowsError(try c.write(to: dir.appendingPathComponent("bad.json")))
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.appendingPathComponent("bad.json").path))
    }

    func testTransformersLoadsWrittenConfig() throws {
        let python = ProcessInfo.processInfo.environment["SCULPT_PYTHON"] ?? "/root/venv-torch/bin/python"
        guard FileManager.default.isExecutableFile(atPath: python) else { throw XCTSkip("no Python at \(python)") }
        let c = BertConfig(hiddenSize: 32, numHiddenLayers: 2, numAttentionHeads: 4, intermediateSize: 48,
                           vocabSize: 50, maxPositionEmbeddings: 16, layerNormEps: 1e-7, hiddenAct: "gelu_new",
                           layerIntermediateSizes: [48, 24])
        try c.write(to: dir.appendingPathComponent("config.json"))
        let script = """
        import sys
        try:
            from transformers import AutoConfig
        except Exception as e:
            print("SKIP", e); sys.exit(0)
        c = AutoConfig.from_pretrained(sys.argv[1])
        print(type(c).__name__, c.hidden_size, c.num_hidden_layers, c.num_attention_heads, c.intermediate_size,
              c.vocab_size, c.max_position_embeddings, c.type_vocab_size, c.layer_norm_eps, c.hidden_act,
              c.architectures[0])
        """
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = ["-c", script, dir.path]
        process.environment = ["HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PATH": "/usr/bin:/bin"]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        try process.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        if output.hasPrefix("SKIP") { throw XCTSkip("transformers unavailable: \(output)") }
        XCTAssertEqual(process.terminationStatus, 0)
        XCTAssertEqual(output.trimmingCharacters(in: .whitespacesAndNewlines),
                       "BertConfig 32 2 4 48 50 16 2 1e-07 gelu_new BertModel")
    }
}
