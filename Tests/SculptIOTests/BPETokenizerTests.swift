#if canImport(SculptTestSupport)
import SculptTestSupport
#endif
import Foundation
import XCTest
@testable import SculptIO

/// SmolLM2's tokenizer against Hugging Face `tokenizers` outputs (shared/goldens/smollm2), both
/// from tokenizer.json and through the GGUF initializer; streaming decoding; speed.
final class BPETokenizerTests: XCTestCase {
    struct Case: Decodable {
        let text: String
        let input_ids: [Int32]
        let decoded: String?
    }

    static func cases(_ name: String) throws -> [Case] {
        let data = try Data(contentsOf: try SharedData.require("goldens/smollm2/\(name)"))
        return try data.split(separator: UInt8(ascii: "\n")).filter { !$0.isEmpty }.map {
            try JSONDecoder().decode(Case.self, from: Data($0))
        }
    }

    static func modelDirectory() throws -> URL { try SharedData.require("models/smollm2-135m-instruct") }

    static func smol() throws -> BPETokenizer { try BPETokenizer.load(modelDirectory: try modelDirectory()) }

    /// The SmolLM2 tokenizer rebuilt from its tokenizer.json through the GGUF initializer, as a
    /// GGUF converter writes it: tokens by id, merges "a b", type 3 for special added tokens.
    static func smolFromGGUFMetadata(pre: String = "smollm") throws -> BPETokenizer {
        let url = try modelDirectory().appendingPathComponent("tokenizer.json")
        let root = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
        let model = root["model"] as! [String: Any]
        let vocab = model["vocab"] as! [String: Int]
        var tokens = [String](repeating: "", count: vocab.count)
        for (token, id) in vocab { tokens[id] = token }
        let merges = (model["merges"] as! [Any]).map { m -> String in
            if let s = m as? String { return s }
            let pair = m as! [String]
            return pair[0] + " " + pair[1]
        }
        var types = [Int32](repeating: 1, count: tokens.count)
        for added in root["added_tokens"] as! [[String: Any]] where added["special"] as? Bool == true {
            types[added["id"] as! Int] = 3
        }
        return try BPETokenizer(gguf: tokens, merges: merges, tokenTypes: types, preTokenizer: pre,
                                bosTokenId: 1, eosTokenId: 2, padTokenId: 2, unknownTokenId: nil,
                                addBOS: false, addEOS: false, source: "smollm2.gguf")
    }

    func testSmolLM2GoldenCases() throws {
        let tok = try Self.smol()
        let cases = try Self.cases("tokenizer_cases.jsonl")
        XCTAssertEqual(cases.count, 26)
        for c in cases {
            XCTAssertEqual(tok.encode(c.text), c.input_ids, "encode \(c.text.debugDescription)")
            if let decoded = c.decoded {
                XCTAssertEqual(Array(tok.decode(c.input_ids).unicodeScalars), Array(decoded.unicodeScalars), "decode \(c.text.debugDescription)")
            }
        }
    }

    func testSmolLM2ChatCases() throws {
        let tok = try Self.smol()
        let cases = try Self.cases("chat_cases.jsonl")
        XCTAssertFalse(cases.isEmpty)
        for c in cases {
            XCTAssertEqual(tok.encode(c.text), c.input_ids, "chat \(c.text.debugDescription)")
            XCTAssertEqual(tok.decode(c.input_ids), c.text)
        }
    }

    func testSmolLM2SpecialTokensAndAccessors() throws {
        let tok = try Self.smol()
        XCTAssertEqual(tok.vocabularySize, 49152)
        XCTAssertEqual(tok.bosTokenId, 1)
        XCTAssertEqual(tok.eosTokenId, 2)
        XCTAssertEqual(tok.padTokenId, 2)
        XCTAssertFalse(tok.addBOS)
        XCTAssertEqual(tok.id(of: "<|im_start|>"), 1)
        XCTAssertEqual(tok.id(of: "Ġthe"), tok.encode(" the").first)
        XCTAssertEqual(tok.token(of: 2), "<|im_end|>")
        XCTAssertNil(tok.token(of: 49152))
        XCTAssertNil(tok.token(of: -1))
        XCTAssertTrue(tok.isSpecial(0) && tok.isSpecial(1) && tok.isSpecial(2))
        XCTAssertFalse(tok.isSpecial(504))
        XCTAssertTrue(tok.specialTokenIds.contains(2))
        // No BOS/EOS configured: addSpecialTokens changes nothing.
        XCTAssertEqual(tok.encode("Hi", addSpecialTokens: true), tok.encode("Hi"))
        let ids = tok.encode("<|im_start|>user\nHi<|im_end|>\n")
        XCTAssertEqual(tok.decode(ids, skipSpecialTokens: true), "user\nHi\n")
        // Out-of-range ids are skipped, not trapped on.
        XCTAssertEqual(tok.decode([-5, 504, 1_000_000]), "The")
    }

    func testGGUFPathMatchesTokenizerJSON() throws {
        let gguf = try Self.smolFromGGUFMetadata()
        for c in try Self.cases("tokenizer_cases.jsonl") + Self.cases("chat_cases.jsonl") {
            XCTAssertEqual(gguf.encode(c.text), c.input_ids, "gguf \(c.text.debugDescription)")
            if let decoded = c.decoded { XCTAssertEqual(gguf.decode(c.input_ids), decoded) }
        }
        XCTAssertEqual(gguf.vocabularySize, 49152)
        XCTAssertTrue(gguf.isSpecial(1))
        XCTAssertEqual(gguf.encode("Hi", addSpecialTokens: true), gguf.encode("Hi"))
        // The Python-generated strings too. llama.cpp's "smollm" isolates every \p{N} before the
        // GPT-2 regex (Hugging Face: Sequence[Digits(individual_digits), ByteLevel]); this
        // tokenizer.json does not, which only matters for digits with a " X" token (١, ½).
        for (text, expected) in zip(BPEPreTokenizerTests.texts, BPEPreTokenizerTests.smolDigitsIds) {
            XCTAssertEqual(gguf.encode(text), expected, "gguf \(text.debugDescription)")
        }
    }

    func testGGUFOptionsAndErrors() throws {
        let tokens = BPEByteLevel.byteToScalar.map { String($0) } + ["Ġt", "<s>", "</s>"]
        let withBOS = try BPETokenizer(gguf: tokens, merges: ["Ġ t"], tokenTypes: nil, preTokenizer: "llama-bpe",
                                       bosTokenId: 257, eosTokenId: 258, padTokenId: nil, unknownTokenId: nil,
                                       addBOS: true, addEOS: true, source: "x.gguf")
        XCTAssertTrue(withBOS.addBOS)
        XCTAssertEqual(withBOS.encode(" t", addSpecialTokens: true), [257, 256, 258])
        XCTAssertEqual(withBOS.encode("<s>"), [60, 115, 62])  // not a control token: plain text
        func message(_ body: () throws -> BPETokenizer) -> String {
            do { _ = try body(); return "no error" } catch { return "\(error)" }
        }
        let unknownPre = message {
            try BPETokenizer(gguf: tokens, merges: ["Ġ t"], tokenTypes: nil, preTokenizer: "no-such-pre",
                             bosTokenId: nil, eosTokenId: nil, padTokenId: nil, unknownTokenId: nil,
                             addBOS: false, addEOS: false, source: "x.gguf")
        }
        XCTAssertTrue(unknownPre.contains("x.gguf") && unknownPre.contains("tokenizer.ggml.pre") && unknownPre.contains("no-such-pre"), unknownPre)
        let badMerge = message {
            try BPETokenizer(gguf: tokens, merges: ["Ġ zz"], tokenTypes: nil, preTokenizer: "gpt2",
                             bosTokenId: nil, eosTokenId: nil, padTokenId: nil, unknownTokenId: nil,
                             addBOS: false, addEOS: false, source: "x.gguf")
        }
        XCTAssertTrue(badMerge.contains("x.gguf") && badMerge.contains("tokenizer.ggml.merges[0]"), badMerge)
        let badTypes = message {
            try BPETokenizer(gguf: tokens, merges: ["Ġ t"], tokenTypes: [1], preTokenizer: "gpt2",
                             bosTokenId: nil, eosTokenId: nil, padTokenId: nil, unknownTokenId: nil,
                             addBOS: false, addEOS: false, source: "x.gguf")
        }
        XCTAssertTrue(badTypes.contains("tokenizer.ggml.token_type"), badTypes)
        // Every named pre-tokenizer compiles and runs.
        for name in ["default", "gpt2", "gpt-2", "llama3", "llama-bpe", "smollm", "qwen2", "deepseek-llm", "deepseek-coder",
                     "deepseek-v3", "falcon", "starcoder", "refact", "command-r", "olmo", "dbrx", "gpt-4o", "tekken", "bloom", "viking"] {
            let tok = try BPETokenizer(gguf: tokens, merges: ["Ġ t"], tokenTypes: nil, preTokenizer: name,
                                       bosTokenId: nil, eosTokenId: nil, padTokenId: nil, unknownTokenId: nil,
                                       addBOS: false, addEOS: false, source: "x.gguf")
            let text = "Hello, World's 12345 日本語\n\n  x  "
            XCTAssertEqual(tok.decode(tok.encode(text)), text, name)
        }
    }

    func testStreamingDecoderHoldsBackSplitCharacters() throws {
        let tok = try Self.smol()
        let texts = try Self.cases("tokenizer_cases.jsonl").map(\.text) + ["日本語のテキスト 👍🏽 🇫🇷 ❤️‍🔥 मानक"]
        for text in texts {
            let ids = tok.encode(text)
            var stream = tok.makeStreamingDecoder()
            var pieces: [String] = []
            for id in ids { pieces.append(stream.append(id)) }
            pieces.append(stream.finish())
            XCTAssertEqual(pieces.joined(), tok.decode(ids), text)
            for piece in pieces { XCTAssertFalse(piece.unicodeScalars.contains("\u{FFFD}"), "partial character in \(text)") }
        }
        // A Japanese character split over byte tokens comes out whole, once complete.
        let ids = tok.encode("語")
        XCTAssertGreaterThan(ids.count, 1)
        var stream = BPEStreamingDecoder(tokenizer: tok)
        for id in ids.dropLast() { XCTAssertEqual(stream.append(id), "") }
        XCTAssertEqual(stream.append(ids.last!), "語")
        XCTAssertEqual(stream.finish(), "")
        // Invalid or unfinished bytes become U+FFFD, exactly as whole decoding does.
        let lead = tok.encode("語").first!  // an incomplete 3-byte sequence on its own
        let sequences: [[Int32]] = [[lead], [lead, 504], [lead, lead], [504, lead, 30], ids.reversed()]
        for seq in sequences {
            var s = tok.makeStreamingDecoder()
            var out = ""
            for id in seq { out += s.append(id) }
            out += s.finish()
            XCTAssertEqual(out, tok.decode(seq))
            XCTAssertTrue(out.unicodeScalars.contains("\u{FFFD}"))
        }
        XCTAssertEqual(tok.decode([lead]), "\u{FFFD}")
        var skipping = tok.makeStreamingDecoder(skipSpecialTokens: true)
        XCTAssertEqual(skipping.append(1), "")
        XCTAssertEqual(skipping.append(504), "The")
    }

    func testIncompleteSuffixDetection() {
        typealias D = BPETokenizer.StreamingDecoder
        XCTAssertEqual(D.incompleteSuffixStart([0x41]), 1)
        XCTAssertEqual(D.incompleteSuffixStart([0x41, 0xE3]), 1)
        XCTAssertEqual(D.incompleteSuffixStart([0x41, 0xE3, 0x81]), 1)
        XCTAssertEqual(D.incompleteSuffixStart([0x41, 0xE3, 0x81, 0xAE]), 4)
        XCTAssertEqual(D.incompleteSuffixStart([0xF0, 0x9F, 0x91]), 0)
        XCTAssertEqual(D.incompleteSuffixStart([0xE0, 0x80]), 2)  // can never complete
        XCTAssertEqual(D.incompleteSuffixStart([0xED, 0xA0]), 2)  // surrogate
        XCTAssertEqual(D.incompleteSuffixStart([0xC0]), 1)
        XCTAssertEqual(D.incompleteSuffixStart([0x80, 0x80]), 2)
        XCTAssertEqual(D.incompleteSuffixStart([]), 0)
    }

    func testLoadTimeAndEncodeSpeed() throws {
        let dir = try Self.modelDirectory()
        var start = Date()
        let tok = try BPETokenizer.load(modelDirectory: dir)
        let loadSeconds = Date().timeIntervalSince(start)
        var text = ""
        for c in try Self.cases("tokenizer_cases.jsonl") + Self.cases("chat_cases.jsonl") { text += c.text + "\n" }
        let prose = "The quick brown fox jumps over the lazy dog. It's 2024, and we're testing tokenizers at scale! "
        var corpus = ""
        while corpus.utf8.count < 1_000_000 { corpus += prose + text }
        start = Date()
        let ids = tok.encode(corpus)
        let encodeSeconds = Date().timeIntervalSince(start)
        start = Date()
        let back = tok.decode(ids)
        let decodeSeconds = Date().timeIntervalSince(start)
        XCTAssertEqual(back, corpus)
        let mb = Double(corpus.utf8.count) / 1e6
        print(String(format: "BPE SmolLM2: load %.0f ms, encode %.2f MB/s (%d ids), decode %.1f MB/s",
                     loadSeconds * 1000, mb / encodeSeconds, ids.count, mb / decodeSeconds))
        XCTAssertLessThan(loadSeconds, 5)
    }
}
