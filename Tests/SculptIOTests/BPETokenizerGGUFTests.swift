import XCTest
import Foundation
@testable import SculptIO
import SculptTestSupport

/// A tokenizer's GGUF metadata (`ggufMetadata`): read back through `BPETokenizer(gguf:)` it
/// tokenizes as the original, and the llama.cpp pre-tokenizer name is found by behaviour on a
/// real vocabulary (SmolLM2's), for several pre-tokenizer specs; one llama.cpp cannot name is refused.
final class BPETokenizerGGUFTests: XCTestCase {
    static let texts = [
        "Hello world", "  two  spaces\n\nand 12345 digits, 3.14!", "I'm sure they'll've DONE it.", "<|im_start|>user\nhi<|im_end|>",
        "naïve café e\u{301} 中文 🚀", BPETokenizer.ggufProbeText,
    ]

    func reread(_ tok: BPETokenizer) throws -> (BPETokenizer, String) {
        let meta = Dictionary(uniqueKeysWithValues: try tok.ggufMetadata(chatTemplate: nil))
        func strings(_ k: String) -> [String] { meta[k]!.stringArray! }
        func id(_ k: String) -> Int32? { meta[k]?.int.map { Int32($0) } }
        let pre = meta["tokenizer.ggml.pre"]!.string!
        let back = try BPETokenizer(gguf: strings("tokenizer.ggml.tokens"), merges: strings("tokenizer.ggml.merges"),
                                    tokenTypes: meta["tokenizer.ggml.token_type"]!.intArray!.map { Int32($0) }, preTokenizer: pre,
                                    bosTokenId: id("tokenizer.ggml.bos_token_id"), eosTokenId: id("tokenizer.ggml.eos_token_id"),
                                    padTokenId: id("tokenizer.ggml.padding_token_id"), unknownTokenId: id("tokenizer.ggml.unknown_token_id"),
                                    addBOS: meta["tokenizer.ggml.add_bos_token"]!.bool!, addEOS: meta["tokenizer.ggml.add_eos_token"]!.bool!, source: "x")
        return (back, pre)
    }

    /// SmolLM2's tokenizer.json with its pre-tokenizer (and normalizer, ignore_merges) replaced.
    func variant(_ preTokenizer: Any, normalizer: Any = NSNull(), ignoreMerges: Bool = false) throws -> BPETokenizer {
        let dir = try SharedData.require("models/smollm2-135m-instruct")
        var j = try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("tokenizer.json"))) as! [String: Any]
        j["pre_tokenizer"] = preTokenizer
        j["normalizer"] = normalizer
        var model = j["model"] as! [String: Any]
        model["ignore_merges"] = ignoreMerges
        j["model"] = model
        let url = SharedData.temporaryDirectory("bpe-gguf").appendingPathComponent("tokenizer.json")
        try JSONSerialization.data(withJSONObject: j).write(to: url)
        defer { try? FileManager.default.removeItem(at: url.deletingLastPathComponent()) }
        return try BPETokenizer.load(tokenizerJSON: url, config: nil)
    }

    static func split(_ regex: String) -> [String: Any] {
        ["type": "Sequence", "pretokenizers": [
            ["type": "Split", "pattern": ["Regex": regex], "behavior": "Isolated", "invert": false],
            ["type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": false]]]
    }

    func testMetadataReadsBackToTheSameTokenizerAndNamesThePreTokenizer() throws {
        let smol = try BPETokenizer.load(modelDirectory: try SharedData.require("models/smollm2-135m-instruct"))
        // On this vocabulary (no multi-digit tokens; every whole piece in the vocabulary is also
        // what its merges make) several names behave alike: any of them is right, the first
        // candidate is chosen, and the ids must agree.
        let cases: [([String], BPETokenizer)] = [
            (["smollm"], smol),
            (["llama-bpe"], try variant(Self.split(BPEPattern.llama3Source), ignoreMerges: true)),
            (["llama-bpe", "dbrx"], try variant(Self.split(BPEPattern.llama3Source))),
            (["qwen2"], try variant(Self.split(BPEPattern.qwen2Source), normalizer: ["type": "NFC"])),
            (["llama-bpe", "dbrx", "stablelm2"], try variant(Self.split(BPEPattern.qwen2Source))),
            (["gpt2", "smollm"], try variant(["type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true])),
        ]
        for (allowed, tok) in cases {
            let expected = allowed.last!
            let (back, pre) = try reread(tok)
            XCTAssertTrue(allowed.contains(pre), "\(pre) for \(expected)")
            XCTAssertEqual(back.vocabularySize, tok.vocabularySize)
            XCTAssertEqual(back.specialTokenIds, tok.specialTokenIds, expected)
            for t in Self.texts { XCTAssertEqual(back.encode(t), tok.encode(t), "\(expected): \(t)") }
        }
        // SmolLM2's ByteLevel-regex tokenizer and llama.cpp's "smollm" (digits split first) agree
        // on this vocabulary, which has no multi-digit tokens: the probe sees the same ids.
    }

    func testAPreTokenizerLlamaCppCannotNameIsRefused() throws {
        let odd = try variant(["type": "Sequence", "pretokenizers": [
            ["type": "Split", "pattern": ["String": "e"], "behavior": "Isolated", "invert": false],
            ["type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true]]])
        XCTAssertThrowsError(try odd.ggufMetadata(chatTemplate: nil)) { e in
            XCTAssertTrue("\(e)".contains("llama.cpp"), "\(e)")
        }
    }
}
