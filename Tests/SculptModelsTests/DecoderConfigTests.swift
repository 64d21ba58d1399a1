import XCTest
import SculptIO
@testable import SculptModels

/// Decoder config.json parsing per family, rope scaling against transformers' initialisers,
/// and the errors of configs the implementation cannot honour.
final class DecoderConfigTests: XCTestCase {
    func config(_ extra: String, modelType: String = "llama") throws -> DecoderConfig {
        let json = #"{"model_type": "\#(modelType)", "hidden_size": 64, "num_attention_heads": 4, "head_dim": 16, "num_hidden_layers": 1, "intermediate_size": 96, "vocab_size": 100, "max_position_embeddings": 128\#(extra)}"#
        return try DecoderConfig.parse(Data(json.utf8), file: "config.json")
    }

    func assertClose(_ a: [Float], _ b: [Float], file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(a.count, b.count, file: file, line: line)
        for (x, y) in zip(a, b) { XCTAssertEqual(x, y, accuracy: 2e-6 * max(abs(y), 1e-30) + 1e-12, file: file, line: line) }
    }

    /// Expected values: transformers 5.24's ROPE_INIT_FUNCTIONS on the same settings
    /// (head_dim 16, max_position_embeddings 128).
    func testRopeScalingMatchesTransformers() throws {
        let llama3 = try config(#", "rope_parameters": {"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 64}"#)
        assertClose(RotaryFrequencies.inverse(config: llama3, sequenceLength: 10),
                    [1.0, 0.079403013, 0.00470075384, 0.000911583134, 0.000176776681, 3.42810235e-05, 6.64786967e-06, 1.28917316e-06])
        let linear = try config(#", "rope_scaling": {"type": "linear", "factor": 4.0}, "rope_theta": 10000.0"#)
        assertClose(RotaryFrequencies.inverse(config: linear, sequenceLength: 10),
                    [0.25, 0.079056941, 0.0250000004, 0.00790569466, 0.00249999994, 0.000790569466, 0.000250000012, 7.90569466e-05])
        let dynamic = try config(#", "rope_parameters": {"rope_type": "dynamic", "rope_theta": 10000.0, "factor": 2.0}"#)
        assertClose(RotaryFrequencies.inverse(config: dynamic, sequenceLength: 300),
                    [1.0, 0.262445003, 0.0688773692, 0.0180765204, 0.004744092, 0.00124506326, 0.000326760608, 8.57566774e-05])
        // Below the original length dynamic scaling leaves the frequencies alone.
        XCTAssertEqual(RotaryFrequencies.inverse(config: dynamic, sequenceLength: 100), RotaryFrequencies.inverse(config: try config(""), sequenceLength: 100))
    }

    func testFamilyDefaults() throws {
        let qwen2 = try config(#", "tie_word_embeddings": true"#, modelType: "qwen2")
        XCTAssertTrue(qwen2.qkvBias); XCTAssertFalse(qwen2.outputBias); XCTAssertFalse(qwen2.qkNorm)
        let qwen3 = try config("", modelType: "qwen3")
        XCTAssertTrue(qwen3.qkNorm); XCTAssertFalse(qwen3.qkvBias)
        let mistral = try config(#", "sliding_window": 64, "eos_token_id": [2, 7]"#, modelType: "mistral")
        XCTAssertEqual(mistral.contextLimit, 64)
        XCTAssertEqual(mistral.eosTokenIds, [2, 7])
        XCTAssertEqual(try config(#", "attention_bias": true"#).outputBias, true)
        XCTAssertEqual(try config(#", "num_key_value_heads": 2"#).numKeyValueHeads, 2)
    }

    func testUnusableConfigsNameTheKey() throws {
        let cases: [(String, String, String)] = [
            (#", "rope_parameters": {"rope_type": "yarn", "factor": 4.0}"#, "llama", "rope_type"),
            (#", "num_key_value_heads": 3"#, "llama", "num_key_value_heads"),
            (#", "hidden_act": "gelu""#, "llama", "hidden_act"),
            ("", "gpt2", "model_type"),
            (#", "eos_token_id": 500"#, "llama", "eos_token_id"),
            (#", "rms_norm_eps": -1"#, "llama", "rms_norm_eps"),
        ]
        for (extra, type, key) in cases {
            XCTAssertThrowsError(try config(extra, modelType: type), key) { e in
                XCTAssertTrue("\(e)".contains(key) && "\(e)".hasPrefix("config.json"), "\(e)")
            }
        }
        let huge = #"{"model_type": "llama", "hidden_size": 1099511627776, "num_attention_heads": 4, "num_hidden_layers": 1, "intermediate_size": 96, "vocab_size": 100}"#
        XCTAssertThrowsError(try DecoderConfig.parse(Data(huge.utf8), file: "config.json")) { XCTAssertTrue("\($0)".contains("hidden_size"), "\($0)") }
    }

    func testWrittenConfigReadsBack() throws {
        let c = try config(#", "rope_parameters": {"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 64}, "bos_token_id": 1, "eos_token_id": 2"#)
        let data = try JSONSerialization.data(withJSONObject: c.jsonObject())
        XCTAssertEqual(try DecoderConfig.parse(data, file: "written"), c)
    }
}
