import Foundation
import XCTest
import SculptIO

/// Locates `shared/` (env SCULPT_SHARED, else `<repo root>/../shared`) and its tokenizer data.
private enum TokenizerTestData {
    static let shared: URL? = {
        if let env = ProcessInfo.processInfo.environment["SCULPT_SHARED"], !env.isEmpty {
            return URL(fileURLWithPath: env, isDirectory: true)
        }
        var dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        while dir.pathComponents.count > 1 {
            if FileManager.default.fileExists(atPath: dir.appendingPathComponent("Package.swift").path) {
                return dir.deletingLastPathComponent().appendingPathComponent("shared", isDirectory: true)
            }
            dir = dir.deletingLastPathComponent()
        }
        return nil
    }()

    /// `shared/<relative>`, or XCTSkip (with the reason printed) when it is absent.
    static func require(_ relative: String) throws -> URL {
        guard let shared else {
            let reason = "shared data not found (set SCULPT_SHARED or put shared/ next to the repository)"
            print("skipping: \(reason)")
            throw XCTSkip(reason)
        }
        let url = shared.appendingPathComponent(relative)
        guard FileManager.default.fileExists(atPath: url.path) else {
            let reason = "\(url.path) is absent"
            print("skipping: \(reason)")
            throw XCTSkip(reason)
        }
        return url
    }

    static var modelDirectory: URL { get throws { try require("models/all-MiniLM-L6-v2") } }

    struct Case: Decodable {
        let text: String
        let input_ids: [Int32]
    }

    static func goldenCases() throws -> [Case] {
        let url = try require("goldens/minilm/tokenizer_cases.jsonl")
        let data = try Data(contentsOf: url)
        let decoder = JSONDecoder()
        return try data.split(separator: UInt8(ascii: "\n")).filter { !$0.isEmpty }.map {
            try decoder.decode(Case.self, from: Data($0))
        }
    }

    /// A fresh temporary directory, removed at the end of the test.
    static func temporaryDirectory(_ test: XCTestCase) throws -> URL {
        let dir = FileManager.default.temporaryDirectory
            .appendingPathComponent("sculpt-tokenizer-tests-\(UUID().uuidString)", isDirectory: true)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        test.addTeardownBlock { try? FileManager.default.removeItem(at: dir) }
        return dir
    }

    /// A tiny BERT vocabulary (ids are line numbers) for tests that must not need shared/.
    static let tinyVocab = [
        "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]",  // 0...4
        "un", "##aff", "##able", "hello", "world",  // 5...9
        "a", "##a", ".", "!", "the", "cafe",  // 10...15
    ]

    static func tinyTokenizer(_ test: XCTestCase) throws -> WordPieceTokenizer {
        let dir = try temporaryDirectory(test)
        let url = dir.appendingPathComponent("vocab.txt")
        try (tinyVocab.joined(separator: "\n") + "\n").write(to: url, atomically: true, encoding: .utf8)
        return try WordPieceTokenizer(vocabTXT: url)
    }
}

final class TokenizerTests: XCTestCase {
    // MARK: Hugging Face goldens

    func testGoldenCasesMatchHuggingFace() throws {
        let tokenizer = try WordPieceTokenizer(tokenizerJSON: try TokenizerTestData.modelDirectory.appendingPathComponent("tokenizer.json"))
        let cases = try TokenizerTestData.goldenCases()
        XCTAssertFalse(cases.isEmpty)
        var passed = 0
        for c in cases {
            let ids = tokenizer.encode(c.text)
            if ids == c.input_ids {
                passed += 1
            } else {
                XCTFail("text \(c.text.debugDescription): expected \(c.input_ids), got \(ids) (\(tokenizer.tokenize(c.text)))")
            }
        }
        print("tokenizer goldens: \(passed)/\(cases.count) equal")
    }

    func testVocabTXTGivesSameIdsAsTokenizerJSON() throws {
        let model = try TokenizerTestData.modelDirectory
        let fromJSON = try WordPieceTokenizer(tokenizerJSON: model.appendingPathComponent("tokenizer.json"))
        let fromTXT = try WordPieceTokenizer(vocabTXT: model.appendingPathComponent("vocab.txt"))

        // load(modelDirectory:) falls back to vocab.txt + tokenizer_config.json.
        let dir = try TokenizerTestData.temporaryDirectory(self)
        for name in ["vocab.txt", "tokenizer_config.json", "special_tokens_map.json"] {
            try FileManager.default.copyItem(at: model.appendingPathComponent(name), to: dir.appendingPathComponent(name))
        }
        let fromDirectory = try WordPieceTokenizer.load(modelDirectory: dir)
        let preferred = try WordPieceTokenizer.load(modelDirectory: model)
        XCTAssertEqual(preferred.configuredTruncationLength, 128, "load(modelDirectory:) should prefer tokenizer.json")

        for t in [fromTXT, fromDirectory] {
            XCTAssertEqual(t.vocabularySize, fromJSON.vocabularySize)
            XCTAssertEqual([t.padId, t.unkId, t.clsId, t.sepId], [fromJSON.padId, fromJSON.unkId, fromJSON.clsId, fromJSON.sepId])
            XCTAssertEqual(t.normalizer, fromJSON.normalizer)
        }
        for c in try TokenizerTestData.goldenCases() {
            XCTAssertEqual(fromTXT.encode(c.text), c.input_ids, c.text.debugDescription)
            XCTAssertEqual(fromDirectory.encode(c.text), c.input_ids, c.text.debugDescription)
        }
    }

    /// Extra cases checked against `tokenizers` 0.23.3 (special tokens in the text are kept
    /// whole and matched case-sensitively on the raw text, like Hugging Face's added tokens).
    func testSpecialTokensAndUnicodeCornersMatchHuggingFace() throws {
        let tokenizer = try WordPieceTokenizer.load(modelDirectory: try TokenizerTestData.modelDirectory)
        let cases: [(String, [Int32])] = [
            ("hello [MASK] world", [101, 7592, 103, 2088, 102]),
            ("hello[MASK]world", [101, 7592, 103, 2088, 102]),
            ("[mask] [CLS][SEP]x", [101, 1031, 7308, 1033, 101, 102, 1060, 102]),
            ("[PAD]", [101, 0, 102]),
            ("İstanbul ΣΑΣ", [101, 9960, 1173, 14608, 29733, 102]),  // İ lowercases to i + U+0307
            ("a\u{301}\u{327}b", [101, 11113, 102]),
            ("\u{F900} \u{2B81F}\u{2B820}\u{2B920}", [101, 100, 100, 100, 100, 102]),
        ]
        for (text, expected) in cases {
            XCTAssertEqual(tokenizer.encode(text), expected, text.debugDescription)
        }
        XCTAssertEqual(tokenizer.tokenize("hello [MASK] world"), ["hello", "[MASK]", "world"])
        XCTAssertEqual(tokenizer.id(of: "[MASK]"), 103)
        XCTAssertEqual(tokenizer.id(of: "##ing"), 2075)
        XCTAssertNil(tokenizer.id(of: "no-such-token"))
        XCTAssertEqual(tokenizer.vocabularySize, 30522)
        XCTAssertEqual([tokenizer.padId, tokenizer.unkId, tokenizer.clsId, tokenizer.sepId], [0, 100, 101, 102])
    }

    func testTokenizingFortunesIsFast() throws {
        let tokenizer = try WordPieceTokenizer(tokenizerJSON: try TokenizerTestData.modelDirectory.appendingPathComponent("tokenizer.json"))
        let texts = try TextLines.read(try TokenizerTestData.require("datasets/fortunes/topics.train.jsonl"))
        XCTAssertEqual(texts.count, 3057)
        let start = Date()
        var tokens = 0
        for text in texts { tokens += tokenizer.encode(text).count }
        let seconds = Date().timeIntervalSince(start)
        print(String(format: "tokenized %d texts (%d tokens) in %.3f s", texts.count, tokens, seconds))
        XCTAssertLessThan(seconds, 2.0)
    }

    // MARK: Behaviour on a tiny vocabulary (no shared data needed)

    func testGreedyLongestMatchFirst() throws {
        let t = try TokenizerTestData.tinyTokenizer(self)
        XCTAssertEqual(t.tokenize("UnAffable"), ["un", "##aff", "##able"])
        XCTAssertEqual(t.tokenize("Hello, world!"), ["hello", "[UNK]", "world", "!"])  // "," is not in the vocabulary
        XCTAssertEqual(t.tokenize("unaffablex the"), ["[UNK]", "the"])  // one unmatchable piece makes the word [UNK]
        XCTAssertEqual(t.tokenize("Café"), ["cafe"])  // accents stripped because lowercase
        XCTAssertEqual(t.encode("hello world"), [2, 8, 9, 3])
        XCTAssertEqual(t.encode("hello world", addSpecialTokens: false), [8, 9])
        XCTAssertEqual(t.encode(""), [2, 3])
        XCTAssertEqual(t.vocabularySize, TokenizerTestData.tinyVocab.count)
        XCTAssertEqual(t.id(of: "##able"), 7)
    }

    func testWordLongerThan100CharactersIsUnknown() throws {
        let t = try TokenizerTestData.tinyTokenizer(self)
        let hundred = String(repeating: "a", count: 100)
        XCTAssertEqual(t.encode(hundred), [2, 10] + Array(repeating: 11, count: 99) + [3])
        XCTAssertEqual(t.encode(hundred + "a"), [2, 1, 3])
        XCTAssertEqual(t.encode("the " + hundred + "a the"), [2, 14, 1, 14, 3])
        // Characters are counted as Unicode scalars after normalization: 101 × "á" (a + U+0301
        // after NFD, then the accent is stripped) is 101 characters → [UNK].
        XCTAssertEqual(t.encode(String(repeating: "\u{E1}", count: 101)), [2, 1, 3])
        XCTAssertEqual(t.encode(String(repeating: "\u{E1}", count: 100)).count, 102)
    }

    func testTruncationKeepsSEPAndPaddingMasks() throws {
        let t = try TokenizerTestData.tinyTokenizer(self)
        let long = Array(repeating: "hello world", count: 10).joined(separator: " ")  // 20 wordpieces
        XCTAssertEqual(t.encode(long, maxLength: 6), [2, 8, 9, 8, 9, 3])
        XCTAssertEqual(t.encode(long, maxLength: 6, addSpecialTokens: false), [8, 9, 8, 9, 8, 9])
        XCTAssertEqual(t.encode("hello", maxLength: 6), [2, 8, 3])  // shorter than maxLength: untouched
        XCTAssertEqual(t.encode(long, maxLength: 1), [2, 3])  // too small: special tokens only

        let batch = t.encodeBatch(["hello", long, ""], maxLength: 8)
        XCTAssertEqual(batch.batchSize, 3)
        XCTAssertEqual(batch.sequenceLength, 8)
        XCTAssertEqual(batch.inputIds, [
            2, 8, 3, 0, 0, 0, 0, 0,
            2, 8, 9, 8, 9, 8, 9, 3,
            2, 3, 0, 0, 0, 0, 0, 0,
        ])
        XCTAssertEqual(batch.attentionMask, [
            1, 1, 1, 0, 0, 0, 0, 0,
            1, 1, 1, 1, 1, 1, 1, 1,
            1, 1, 0, 0, 0, 0, 0, 0,
        ])
        XCTAssertEqual(batch.tokenTypeIds, Array(repeating: 0, count: 24))
        XCTAssertEqual((0..<3).map { batch.length(ofRow: $0) }, [3, 8, 2])

        // Padding goes to the longest row, not to maxLength …
        let short = t.encodeBatch(["hello", "hello world"], maxLength: 64)
        XCTAssertEqual(short.sequenceLength, 4)
        XCTAssertEqual(short.inputIds, [2, 8, 3, 0, 2, 8, 9, 3])
        XCTAssertEqual(short.attentionMask, [1, 1, 1, 0, 1, 1, 1, 1])
        // … unless padToLongest is false.
        let fixed = t.encodeBatch(["hello"], maxLength: 6, padToLongest: false)
        XCTAssertEqual(fixed.sequenceLength, 6)
        XCTAssertEqual(fixed.inputIds, [2, 8, 3, 0, 0, 0])
        // No truncation without maxLength.
        XCTAssertEqual(t.encodeBatch([long], maxLength: nil).sequenceLength, 22)
        XCTAssertEqual(t.encodeBatch([], maxLength: nil).inputIds, [])
    }

    // MARK: Errors

    func testNonJSONTokenizerFileErrorNamesTheFile() throws {
        let dir = try TokenizerTestData.temporaryDirectory(self)
        let url = dir.appendingPathComponent("tokenizer.json")
        try "this is not JSON".write(to: url, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try WordPieceTokenizer(tokenizerJSON: url)) { error in
            let message = String(describing: error)
            XCTAssertTrue(error is TokenizerError)
            XCTAssertTrue(message.contains(url.path), message)
            XCTAssertTrue(message.contains("JSON"), message)
            XCTAssertFalse(message.contains("\n"), message)
        }
        // Through load(modelDirectory:) as well.
        XCTAssertThrowsError(try WordPieceTokenizer.load(modelDirectory: dir)) { error in
            XCTAssertTrue(String(describing: error).contains("tokenizer.json"))
        }
    }

    func testTokenizerFileWithoutVocabAndMissingFiles() throws {
        let dir = try TokenizerTestData.temporaryDirectory(self)
        let url = dir.appendingPathComponent("tokenizer.json")
        try #"{"model": {"type": "WordPiece", "unk_token": "[UNK]"}}"#.write(to: url, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try WordPieceTokenizer(tokenizerJSON: url)) { error in
            let message = String(describing: error)
            XCTAssertTrue(message.contains(url.path) && message.contains("model.vocab"), message)
        }
        let missing = dir.appendingPathComponent("missing.json")
        XCTAssertThrowsError(try WordPieceTokenizer(tokenizerJSON: missing)) { error in
            XCTAssertTrue(String(describing: error).contains(missing.path))
        }
        XCTAssertThrowsError(try WordPieceTokenizer(vocabTXT: dir.appendingPathComponent("vocab.txt"))) { error in
            XCTAssertTrue(String(describing: error).contains("vocab.txt"))
        }
        let empty = dir.appendingPathComponent("empty", isDirectory: true)
        try FileManager.default.createDirectory(at: empty, withIntermediateDirectories: true)
        XCTAssertThrowsError(try WordPieceTokenizer.load(modelDirectory: empty)) { error in
            XCTAssertTrue(String(describing: error).contains(empty.path))
        }
    }

    // MARK: TextLines

    func testTextLinesJSONLErrorsNameTheLine() throws {
        let dir = try TokenizerTestData.temporaryDirectory(self)
        let url = dir.appendingPathComponent("texts.jsonl")
        try "{\"text\": \"one\", \"label\": 0}\n\n{\"text\": \"two\"}\n{\"text\": broken}\n".write(to: url, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try TextLines.read(url)) { error in
            let message = String(describing: error)
            XCTAssertEqual((error as? TextLinesError)?.line, 4, message)
            XCTAssertTrue(message.hasPrefix("\(url.path):4:"), message)
        }
        try "{\"text\": \"one\"}\n{\"body\": \"two\"}\n".write(to: url, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try TextLines.read(url)) { error in
            let message = String(describing: error)
            XCTAssertTrue(message.contains(":2:") && message.contains("\"text\""), message)
        }
    }

    func testTextLinesReadsJSONLAndPlainText() throws {
        let dir = try TokenizerTestData.temporaryDirectory(self)
        let jsonl = dir.appendingPathComponent("a.jsonl")
        try "\u{FEFF}{\"text\": \"Héllo\\nthere\", \"label\": 1}\r\n\n{\"text\": \"😀\", \"body\": \"x\"}\n".write(to: jsonl, atomically: true, encoding: .utf8)
        XCTAssertEqual(try TextLines.read(jsonl), ["Héllo\nthere", "😀"])
        XCTAssertThrowsError(try TextLines.read(jsonl, field: "body")) { error in
            XCTAssertEqual((error as? TextLinesError)?.line, 1)  // the first record has no "body"
        }
    }

    /// The leniencies the tokenizer loader and TextLines kept when they moved to StrictJSON:
    /// a byte-order mark, unpaired surrogates and invalid UTF-8 (→ U+FFFD), `3.0` as an id,
    /// and the first of repeated keys.
    func testLenientJSONReading() throws {
        let dir = try TokenizerTestData.temporaryDirectory(self)
        let url = dir.appendingPathComponent("tokenizer.json")
        let json = #"{"model": {"type": "WordPiece", "vocab": {"[UNK]": 0, "[CLS]": 1.0, "[SEP]": 2e0, "a": 3}, "unk_token": "[UNK]"}, "model": 5}"#
        try Data([0xEF, 0xBB, 0xBF] + Array(json.utf8)).write(to: url)
        let t = try WordPieceTokenizer(tokenizerJSON: url)
        XCTAssertEqual(t.encode("a"), [1, 3, 2])

        let jsonl = dir.appendingPathComponent("b.jsonl")
        let bytes = Array(#"{"text": "x\ud800\u0041", "text": "ignored"}"#.utf8) + [0x0A]
            + Array(#"{"text": "\udc00"#.utf8) + [0xFF] + Array(#"y"}"#.utf8) + [0x0A]
        try Data(bytes).write(to: jsonl)
        XCTAssertEqual(try TextLines.read(jsonl), ["x\u{FFFD}A", "\u{FFFD}\u{FFFD}y"])
        XCTAssertThrowsError(try StrictJSON.parse(Array(#""\ud800""#.utf8)))  // strict by default
    }

    func testTextLinesPlainText() throws {
        let dir = try TokenizerTestData.temporaryDirectory(self)
        let plain = dir.appendingPathComponent("a.txt")
        try "first line\r\n\n  {not json} third\nlast".write(to: plain, atomically: true, encoding: .utf8)
        XCTAssertEqual(try TextLines.read(plain), ["first line", "", "  {not json} third", "last"])
        try "one\ntwo\n".write(to: plain, atomically: true, encoding: .utf8)
        XCTAssertEqual(try TextLines.read(plain), ["one", "two"])  // no empty line after the final newline
        try "".write(to: plain, atomically: true, encoding: .utf8)
        XCTAssertEqual(try TextLines.read(plain), [])
        XCTAssertThrowsError(try TextLines.read(dir.appendingPathComponent("nope.txt"))) { error in
            XCTAssertTrue(String(describing: error).contains("nope.txt"))
        }
    }
}
