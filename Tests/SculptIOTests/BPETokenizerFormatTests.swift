#if canImport(SculptTestSupport)
import SculptTestSupport
#endif
import Foundation
import XCTest
@testable import SculptIO

/// Small hand-made tokenizer.json files: pre-tokenizer variants, merges forms, added-token flags,
/// normalizers and load errors. Expected ids were produced with Hugging Face `tokenizers`
/// 0.23.3 from the same files (built identically by the Python generator).
final class BPETokenizerFormatTests: XCTestCase {
    static let texts: [String] = ["the hello thin", "a-b--c-", "12 345 the1 2", "x <mask> y <r>  z<plain>w", "  the  ", "ＨＥＬＬＯ ﬁ Hello", "hello", "<mask><r>"]
    static let expected: [String: [[Int32]]] = [
        "byteLevel": [[266, 32, 257, 261, 111, 256, 104, 259], [97, 45, 98, 267, 99, 45], [264, 32, 51, 52, 53, 258, 49, 32, 50], [120, 271, 32, 121, 32, 272, 122, 273, 119], [32, 258, 32, 32], [239, 188, 168, 239, 188, 165, 239, 188, 172, 239, 188, 172, 239, 188, 175, 32, 239, 172, 129, 32, 72, 262, 111], [257, 261, 111], [271, 272]],
        "arrayMerges": [[266, 32, 257, 261, 111, 256, 104, 259], [97, 45, 98, 267, 99, 45], [264, 32, 51, 52, 53, 258, 49, 32, 50], [120, 271, 32, 121, 32, 272, 122, 273, 119], [32, 258, 32, 32], [239, 188, 168, 239, 188, 165, 239, 188, 172, 239, 188, 172, 239, 188, 175, 32, 239, 172, 129, 32, 72, 262, 111], [257, 261, 111], [271, 272]],
        "ignoreMerges": [[266, 32, 257, 261, 111, 256, 104, 259], [97, 45, 98, 267, 99, 45], [264, 32, 51, 52, 53, 258, 49, 32, 50], [120, 271, 32, 121, 32, 272, 122, 273, 119], [32, 258, 32, 32], [239, 188, 168, 239, 188, 165, 239, 188, 172, 239, 188, 172, 239, 188, 175, 32, 239, 172, 129, 32, 72, 262, 111], [270], [271, 272]],
        "isolatedInvert": [[266, 32, 257, 261, 111, 32, 116, 104, 259], [97, 45, 98, 267, 99, 45], [264, 32, 51, 52, 53, 32, 266, 49, 32, 50], [120, 271, 32, 121, 32, 272, 122, 273, 119], [32, 32, 266, 32, 32], [239, 188, 168, 239, 188, 165, 239, 188, 172, 239, 188, 172, 239, 188, 175, 32, 239, 172, 129, 32, 72, 262, 111], [257, 261, 111], [271, 272]],
        "removedInvert": [[266, 257, 261, 111, 116, 104, 259], [97, 98, 99], [266], [120, 271, 121, 272, 122, 273, 119], [266], [262, 111], [257, 261, 111], [271, 272]],
        "mergedWithPrevious": [[266, 32, 257, 261, 111, 256, 104, 259], [97, 45, 268, 45, 99, 45], [264, 32, 51, 52, 53, 258, 49, 32, 50], [120, 271, 32, 121, 32, 272, 122, 273, 119], [32, 258, 32, 32], [239, 188, 168, 239, 188, 165, 239, 188, 172, 239, 188, 172, 239, 188, 175, 32, 239, 172, 129, 32, 72, 262, 111], [257, 261, 111], [271, 272]],
        "mergedWithNext": [[266, 32, 257, 261, 111, 256, 104, 259], [97, 45, 98, 45, 269, 45], [264, 32, 51, 52, 53, 258, 49, 32, 50], [120, 271, 32, 121, 32, 272, 122, 273, 119], [32, 258, 32, 32], [239, 188, 168, 239, 188, 165, 239, 188, 172, 239, 188, 172, 239, 188, 175, 32, 239, 172, 129, 32, 72, 262, 111], [257, 261, 111], [271, 272]],
        "contiguousInvert": [[266, 32, 257, 261, 111, 256, 104, 259], [97, 45, 98, 267, 99, 45], [264, 32, 51, 52, 53, 258, 49, 32, 50], [120, 271, 32, 121, 32, 272, 122, 273, 119], [32, 258, 32, 32], [239, 188, 168, 239, 188, 165, 239, 188, 172, 239, 188, 172, 239, 188, 175, 32, 239, 172, 129, 32, 72, 262, 111], [257, 261, 111], [271, 272]],
        "digits": [[258, 32, 257, 261, 111, 256, 104, 259], [260, 45, 98, 267, 99, 45], [265, 32, 50, 32, 32, 51, 32, 52, 32, 53, 258, 265, 32, 32, 50], [32, 120, 271, 32, 121, 32, 272, 32, 122, 273, 32, 119], [32, 258, 32, 32], [32, 239, 188, 168, 239, 188, 165, 239, 188, 172, 239, 188, 172, 239, 188, 175, 32, 239, 172, 129, 32, 72, 262, 111], [32, 257, 261, 111], [271, 272]],
        "digitsContiguous": [[266, 32, 257, 261, 111, 256, 104, 259], [97, 45, 98, 267, 99, 45], [264, 32, 51, 52, 53, 258, 49, 32, 50], [120, 271, 32, 121, 32, 272, 122, 273, 119], [32, 258, 32, 32], [239, 188, 168, 239, 188, 165, 239, 188, 172, 239, 188, 172, 239, 188, 175, 32, 239, 172, 129, 32, 72, 262, 111], [257, 261, 111], [271, 272]],
        "nfkcLowercase": [[266, 32, 257, 261, 111, 256, 104, 259], [97, 45, 98, 267, 99, 45], [264, 32, 51, 52, 53, 258, 49, 32, 50], [120, 271, 32, 121, 32, 272, 122, 273, 119], [32, 258, 32, 32], [257, 261, 111, 32, 102, 105, 32, 257, 261, 111], [257, 261, 111], [271, 272]],
    ]

    static let merges: [(String, String)] = [
        ("Ġ", "t"), ("h", "e"), ("Ġt", "he"), ("i", "n"), ("Ġ", "a"), ("l", "l"), ("e", "ll"), ("h", "ell"),
        ("1", "2"), ("Ġ", "1"), ("t", "he"), ("-", "-"), ("b", "-"), ("-", "c"),
    ]

    /// A tokenizer.json: the 256 byte-level characters (id = byte), the merged tokens, "hello",
    /// and three added tokens (<mask> lstrip, <r> rstrip, <plain> not special).
    static func tinyJSON(pre: Any, normalizer: Any = NSNull(), ignoreMerges: Bool = false, arrayMerges: Bool = false) -> [String: Any] {
        var vocab: [String: Int] = [:]
        for b in 0..<256 { vocab[String(BPEByteLevel.byteToScalar[b])] = b }
        for (a, b) in merges where vocab[a + b] == nil { vocab[a + b] = vocab.count }
        vocab["hello"] = vocab.count
        let n = vocab.count
        func added(_ id: Int, _ content: String, lstrip: Bool, rstrip: Bool, special: Bool) -> [String: Any] {
            ["id": id, "content": content, "single_word": false, "lstrip": lstrip, "rstrip": rstrip, "normalized": false, "special": special]
        }
        return [
            "version": "1.0", "truncation": NSNull(), "padding": NSNull(),
            "added_tokens": [added(n, "<mask>", lstrip: true, rstrip: false, special: true),
                             added(n + 1, "<r>", lstrip: false, rstrip: true, special: true),
                             added(n + 2, "<plain>", lstrip: false, rstrip: false, special: false)],
            "normalizer": normalizer, "pre_tokenizer": pre, "post_processor": NSNull(),
            "decoder": ["type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true],
            "model": ["type": "BPE", "dropout": NSNull(), "unk_token": NSNull(), "continuing_subword_prefix": NSNull(),
                      "end_of_word_suffix": NSNull(), "fuse_unk": false, "byte_fallback": false, "ignore_merges": ignoreMerges,
                      "vocab": vocab,
                      "merges": arrayMerges ? merges.map { [$0.0, $0.1] } : merges.map { "\($0.0) \($0.1)" }] as [String: Any],
        ]
    }

    static func byteLevel(_ addPrefixSpace: Bool, _ useRegex: Bool) -> [String: Any] {
        ["type": "ByteLevel", "add_prefix_space": addPrefixSpace, "trim_offsets": true, "use_regex": useRegex]
    }

    static func split(_ pattern: String, _ behavior: String, invert: Bool, regex: Bool = true) -> [String: Any] {
        ["type": "Split", "pattern": [regex ? "Regex" : "String": pattern], "behavior": behavior, "invert": invert]
    }

    static func sequence(_ steps: [String: Any]...) -> [String: Any] { ["type": "Sequence", "pretokenizers": steps] }

    static var configs: [String: [String: Any]] { [
        "byteLevel": tinyJSON(pre: byteLevel(false, true)),
        "arrayMerges": tinyJSON(pre: byteLevel(false, true), arrayMerges: true),
        "ignoreMerges": tinyJSON(pre: byteLevel(false, true), ignoreMerges: true),
        "isolatedInvert": tinyJSON(pre: sequence(split(#"\s+"#, "Isolated", invert: true), byteLevel(false, false))),
        "removedInvert": tinyJSON(pre: sequence(split("[a-z]+", "Removed", invert: true), byteLevel(false, false))),
        "mergedWithPrevious": tinyJSON(pre: sequence(split("-", "MergedWithPrevious", invert: false, regex: false), byteLevel(false, false))),
        "mergedWithNext": tinyJSON(pre: sequence(split("-", "MergedWithNext", invert: false, regex: false), byteLevel(false, false))),
        "contiguousInvert": tinyJSON(pre: sequence(split(#"\d"#, "Contiguous", invert: true), byteLevel(false, false))),
        "digits": tinyJSON(pre: sequence(["type": "Digits", "individual_digits": true], byteLevel(true, true))),
        "digitsContiguous": tinyJSON(pre: sequence(["type": "Digits", "individual_digits": false], byteLevel(false, true))),
        "nfkcLowercase": tinyJSON(pre: byteLevel(false, true),
                                  normalizer: ["type": "Sequence", "normalizers": [["type": "NFKC"], ["type": "Lowercase"]]]),
    ] }

    func write(_ object: [String: Any], name: String = "tokenizer.json") throws -> URL {
        let url = temporaryDirectory().appendingPathComponent(name)
        try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]).write(to: url)
        return url
    }

    func testTinyTokenizersMatchHuggingFace() throws {
        XCTAssertEqual(Set(Self.configs.keys), Set(Self.expected.keys))
        for (name, config) in Self.configs.sorted(by: { $0.key < $1.key }) {
            let tok = try BPETokenizer.load(tokenizerJSON: try write(config), config: nil)
            for (text, ids) in zip(Self.texts, Self.expected[name]!) {
                XCTAssertEqual(tok.encode(text), ids, "\(name): \(text.debugDescription)")
            }
        }
    }

    func testAddedTokenFlagsAndDecoding() throws {
        let tok = try BPETokenizer.load(tokenizerJSON: try write(Self.configs["byteLevel"]!), config: nil)
        let mask = tok.id(of: "<mask>")!, r = tok.id(of: "<r>")!, plain = tok.id(of: "<plain>")!
        XCTAssertEqual(tok.encode(" <mask>"), [mask])          // lstrip eats the space before
        XCTAssertEqual(tok.encode("<r>  x"), [r, 120])         // rstrip eats the spaces after
        XCTAssertEqual(tok.encode("<mask> x"), [mask, 32, 120])
        XCTAssertTrue(tok.isSpecial(mask) && tok.isSpecial(r) && !tok.isSpecial(plain))
        XCTAssertEqual(tok.decode([120, mask, plain, 121], skipSpecialTokens: true), "x<plain>y")
        XCTAssertEqual(tok.decode([120, mask, plain, 121]), "x<mask><plain>y")
        XCTAssertEqual(tok.vocabularySize, Int(plain) + 1)
    }

    func testTokenizerConfigSpecialTokens() throws {
        let dir = temporaryDirectory()
        let json = dir.appendingPathComponent("tokenizer.json")
        try JSONSerialization.data(withJSONObject: Self.configs["byteLevel"]!).write(to: json)
        let config: [String: Any] = ["bos_token": ["content": "<mask>", "lstrip": false], "eos_token": "<r>",
                                     "pad_token": NSNull(), "add_bos_token": true, "add_eos_token": true]
        try JSONSerialization.data(withJSONObject: config).write(to: dir.appendingPathComponent("tokenizer_config.json"))
        let tok = try BPETokenizer.load(modelDirectory: dir)
        let mask = tok.id(of: "<mask>")!, r = tok.id(of: "<r>")!
        XCTAssertEqual(tok.bosTokenId, mask)
        XCTAssertEqual(tok.eosTokenId, r)
        XCTAssertNil(tok.padTokenId)
        XCTAssertTrue(tok.addBOS && tok.addEOS)
        XCTAssertEqual(tok.encode("x", addSpecialTokens: true), [mask, 120, r])
        XCTAssertEqual(tok.encode("x"), [120])

        // A TemplateProcessing post-processor gives BOS when the config says nothing.
        var withTemplate = Self.configs["byteLevel"]!
        withTemplate["post_processor"] = ["type": "TemplateProcessing",
                                          "single": [["SpecialToken": ["id": "<mask>", "type_id": 0]], ["Sequence": ["id": "A", "type_id": 0]]],
                                          "pair": [], "special_tokens": ["<mask>": ["id": "<mask>", "ids": [mask], "tokens": ["<mask>"]]]]
        let templated = try BPETokenizer.load(tokenizerJSON: try write(withTemplate), config: nil)
        XCTAssertEqual(templated.encode("x", addSpecialTokens: true), [mask, 120])
        XCTAssertEqual(templated.bosTokenId, mask)
        XCTAssertTrue(templated.addBOS)
    }

    func testUnknownCharacters() throws {
        // "é" is "Ã©" in byte-level characters; the vocabulary below has neither (their ids hold
        // "<unk>" and "<unk2>"). Expected ids from tokenizers 0.23.3.
        var config = Self.configs["byteLevel"]!
        var model = config["model"] as! [String: Any]
        var vocab = model["vocab"] as! [String: Int]
        vocab.removeValue(forKey: "Ã")
        vocab.removeValue(forKey: "©")
        vocab["<unk>"] = 195
        vocab["<unk2>"] = 169
        model["vocab"] = vocab
        func load(unk: String?, fuse: Bool) throws -> BPETokenizer {
            model["unk_token"] = unk ?? NSNull()
            model["fuse_unk"] = fuse
            config["model"] = model
            return try BPETokenizer.load(tokenizerJSON: try write(config), config: nil)
        }
        let fused = try load(unk: "<unk>", fuse: true)
        XCTAssertEqual(fused.encode("xéy"), [120, 195, 121])
        XCTAssertEqual(fused.encode("é é"), [195, 32, 195])
        XCTAssertEqual(fused.unknownTokenId, 195)
        let unfused = try load(unk: "<unk>", fuse: false)
        XCTAssertEqual(unfused.encode("xéy"), [120, 195, 195, 121])
        XCTAssertEqual(unfused.encode("é é"), [195, 195, 32, 195, 195])
        let dropping = try load(unk: nil, fuse: false)
        XCTAssertEqual(dropping.encode("xéy"), [120, 121])
        XCTAssertEqual(dropping.encode("é é"), [32])
        XCTAssertThrowsError(try load(unk: "<missing>", fuse: false)) { error in
            XCTAssertTrue("\(error)".contains("model.unk_token"))
        }
    }

    func assertLoadError(_ object: [String: Any], contains fragments: [String], file: StaticString = #filePath, line: UInt = #line) throws {
        let url = try write(object, name: "broken-tokenizer.json")
        do {
            _ = try BPETokenizer.load(tokenizerJSON: url, config: nil)
            XCTFail("no error", file: file, line: line)
        } catch {
            let text = "\(error)"
            XCTAssertTrue(error is TokenizerError, file: file, line: line)
            XCTAssertTrue(text.contains("broken-tokenizer.json"), text, file: file, line: line)
            XCTAssertFalse(text.contains("\n"), file: file, line: line)
            for f in fragments { XCTAssertTrue(text.contains(f), "\(text) lacks \(f)", file: file, line: line) }
        }
    }

    func testLoadErrorsNameFileAndField() throws {
        let base = Self.configs["byteLevel"]!
        var noMerges = base, model = base["model"] as! [String: Any]
        model["merges"] = [String]()
        noMerges["model"] = model
        try assertLoadError(noMerges, contains: ["model.merges"])

        var wordPiece = base
        model = base["model"] as! [String: Any]
        model["type"] = "WordPiece"
        wordPiece["model"] = model
        try assertLoadError(wordPiece, contains: ["model.type", "WordPiece"])

        var metaspace = base
        metaspace["pre_tokenizer"] = ["type": "Metaspace", "replacement": "▁"]
        try assertLoadError(metaspace, contains: ["pre_tokenizer", "Metaspace"])

        var nested = base
        nested["pre_tokenizer"] = Self.sequence(Self.byteLevel(false, true), ["type": "Punctuation"])
        try assertLoadError(nested, contains: ["pre_tokenizer.pretokenizers[1]", "Punctuation"])

        var badNormalizer = base
        badNormalizer["normalizer"] = ["type": "BertNormalizer"]
        try assertLoadError(badNormalizer, contains: ["normalizer", "BertNormalizer"])

        var outOfRange = base
        model = base["model"] as! [String: Any]
        var vocab = model["vocab"] as! [String: Int]
        vocab["hello"] = 100_000
        model["vocab"] = vocab
        outOfRange["model"] = model
        try assertLoadError(outOfRange, contains: ["model.vocab", "hello", "100000"])

        var duplicateId = base
        vocab = model["vocab"] as! [String: Int]
        vocab["hello"] = 5
        vocab["zz"] = vocab.count  // keep the count so only the duplicate is wrong
        model["vocab"] = vocab
        duplicateId["model"] = model
        try assertLoadError(duplicateId, contains: ["model.vocab", "id 5"])

        var badMerge = base
        model = base["model"] as! [String: Any]
        model["merges"] = ["Ġ t", "q zzz"]
        badMerge["model"] = model
        try assertLoadError(badMerge, contains: ["model.merges[1]"])

        var badRegex = base
        badRegex["pre_tokenizer"] = Self.split("(unclosed", "Isolated", invert: false)
        try assertLoadError(badRegex, contains: ["pre_tokenizer.pattern", "(unclosed"])

        var badBehavior = base
        badBehavior["pre_tokenizer"] = Self.split("x", "Sideways", invert: false)
        try assertLoadError(badBehavior, contains: ["pre_tokenizer.behavior", "Sideways"])

        XCTAssertThrowsError(try BPETokenizer.load(modelDirectory: temporaryDirectory())) { error in
            XCTAssertTrue("\(error)".contains("tokenizer.json"))
        }
        let garbage = temporaryDirectory().appendingPathComponent("tokenizer.json")
        try Data("{not json".utf8).write(to: garbage)
        XCTAssertThrowsError(try BPETokenizer.load(tokenizerJSON: garbage, config: nil)) { error in
            XCTAssertTrue("\(error)".contains("not valid JSON"))
        }
    }
}
