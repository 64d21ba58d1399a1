#if canImport(SculptTestSupport)
import SculptTestSupport
#endif
import Foundation
import XCTest
@testable import SculptIO

/// The GPT-2 and LLaMA-3 split patterns on tricky strings, against Hugging Face `tokenizers`
/// 0.23.3 (the literals below were produced with it; no Python is needed to run the tests), and
/// the hand-written scanners against Swift `Regex` on random text.
final class BPEPreTokenizerTests: XCTestCase {
    // MARK: Expected values (generated with tokenizers 0.23.3)

    static let texts: [String] = [
        "DON'T you WON'T I'M we'RE they'Ve it'LL he'D",
        "word       many spaces before",
        "trailing spaces   ",
        "  \n  \n\n   x \t\n y\r\n\r\nz",
        "1234567 12 123 1234 ١٢٣٤ ½⅓",
        "日本語のテキスト 中文字符 한국어",
        "emoji 👍\u{1f3fd} 🇫🇷 ❤\u{fe0f}\u{200d}🔥 👨\u{200d}👩\u{200d}👧\u{200d}👦!!",
        "'s 'sound 'ſx ''ll ' ' x'",
        "\u{a0}nbsp\u{2003}em\u{3000}ideographic",
        "tabs\t\tand\u{b}vtab\u{c}ff",
        "C++ <html>&amp; a--b ... ?!",
        "e\u{301} café naïve Ⅻ ǅ",
        "   ",
        "",
        "x",
        "The quick brown fox's jumps; 2024-05-01T10:00:00Z",
    ]
    static let gpt2Pieces: [[String]] = [
        ["DON", "'", "T", " you", " WON", "'", "T", " I", "'", "M", " we", "'", "RE", " they", "'", "Ve", " it", "'", "LL", " he", "'", "D"],
        ["word", "      ", " many", " spaces", " before"],
        ["trailing", " spaces", "   "],
        ["  \n  \n\n  ", " x", " \t\n", " y", "\r\n\r", "\n", "z"],
        ["1234567", " 12", " 123", " 1234", " ١٢٣٤", " ½⅓"],
        ["日本語のテキスト", " 中文字符", " 한국어"],
        ["emoji", " 👍\u{1f3fd}", " 🇫🇷", " ❤\u{fe0f}\u{200d}🔥", " 👨\u{200d}👩\u{200d}👧\u{200d}👦!!"],
        ["'s", " '", "sound", " '", "ſx", " ''", "ll", " '", " '", " x", "'"],
        ["\u{a0}", "nbsp", "\u{2003}", "em", "\u{3000}", "ideographic"],
        ["tabs", "\t", "\t", "and", "\u{b}", "vtab", "\u{c}", "ff"],
        ["C", "++", " <", "html", ">&", "amp", ";", " a", "--", "b", " ...", " ?!"],
        ["e", "\u{301}", " café", " naïve", " Ⅻ", " ǅ"],
        ["   "],
        [],
        ["x"],
        ["The", " quick", " brown", " fox", "'s", " jumps", ";", " 2024", "-", "05", "-", "01", "T", "10", ":", "00", ":", "00", "Z"],
    ]
    static let llama3Pieces: [[String]] = [
        ["DON", "'T", " you", " WON", "'T", " I", "'M", " we", "'RE", " they", "'Ve", " it", "'LL", " he", "'D"],
        ["word", "      ", " many", " spaces", " before"],
        ["trailing", " spaces", "   "],
        ["  \n  \n\n", "  ", " x", " \t\n", " y", "\r\n\r\n", "z"],
        ["123", "456", "7", " ", "12", " ", "123", " ", "123", "4", " ", "١٢٣", "٤", " ", "½⅓"],
        ["日本語のテキスト", " 中文字符", " 한국어"],
        ["emoji", " 👍\u{1f3fd}", " 🇫🇷", " ❤\u{fe0f}\u{200d}🔥", " 👨\u{200d}👩\u{200d}👧\u{200d}👦!!"],
        ["'s", " '", "sound", " '", "ſx", " ''", "ll", " '", " '", " x", "'"],
        ["\u{a0}nbsp", "\u{2003}em", "\u{3000}ideographic"],
        ["tabs", "\t", "\tand", "\u{b}vtab", "\u{c}ff"],
        ["C", "++", " <", "html", ">&", "amp", ";", " a", "--", "b", " ...", " ?!"],
        ["e", "\u{301}", " café", " naïve", " ", "Ⅻ", " ǅ"],
        ["   "],
        [],
        ["x"],
        ["The", " quick", " brown", " fox", "'s", " jumps", ";", " ", "202", "4", "-", "05", "-", "01", "T", "10", ":", "00", ":", "00", "Z"],
    ]
    static let smolIds: [[Int32]] = [
        [52, 2154, 23, 68, 346, 408, 2154, 23, 68, 339, 23, 61, 392, 23, 3256, 502, 23, 25917, 357, 23, 16421, 384, 23, 52],
        [3002, 5013, 800, 5600, 1092],
        [4861, 4966, 5600, 333],
        [256, 11181, 39892, 1792, 216, 197, 198, 329, 7209, 198, 106],
        [33, 34, 35, 36, 37, 38, 39, 216, 33, 34, 216, 33, 34, 35, 216, 33, 34, 35, 36, 16936, 111, 164, 112, 164, 113, 164, 114, 3351, 138, 173, 223, 237],
        [23274, 115, 40993, 179, 120, 248, 26453, 11100, 224, 10391, 251, 10391, 134, 11100, 226, 216, 28589, 29184, 36518, 40562, 116, 216, 33085, 246, 181, 130, 251, 183, 240, 129],
        [391, 33777, 15107, 235, 231, 10813, 233, 138, 15107, 225, 121, 10813, 225, 132, 4636, 247, 114, 31752, 321, 231, 10813, 238, 115, 15107, 235, 118, 321, 231, 10813, 235, 119, 321, 231, 10813, 235, 117, 321, 231, 10813, 235, 116, 10095],
        [506, 637, 30451, 637, 144, 140, 104, 10922, 764, 637, 637, 1792, 23],
        [15442, 94, 32093, 321, 221, 391, 12109, 218, 489, 4551],
        [100, 7366, 197, 197, 397, 199, 102, 15999, 200, 484],
        [51, 11444, 2067, 5699, 46, 22, 1613, 43, 253, 423, 82, 4563, 9148, 17],
        [85, 151, 219, 37366, 15486, 46494, 4636, 223, 121, 216, 146, 223],
        [333],
        [],
        [104],
        [504, 2365, 6354, 16438, 506, 27003, 43, 216, 34, 32, 34, 36, 29, 32, 37, 29, 32, 33, 68, 33, 32, 42, 32, 32, 42, 32, 32, 74],
    ]
    /// SmolLM2 vocabulary with Sequence[Digits(individual_digits: true), ByteLevel] (llama.cpp's "smollm").
    static let smolDigitsIds: [[Int32]] = [
        [52, 2154, 23, 68, 346, 408, 2154, 23, 68, 339, 23, 61, 392, 23, 3256, 502, 23, 25917, 357, 23, 16421, 384, 23, 52],
        [3002, 5013, 800, 5600, 1092],
        [4861, 4966, 5600, 333],
        [256, 11181, 39892, 1792, 216, 197, 198, 329, 7209, 198, 106],
        [33, 34, 35, 36, 37, 38, 39, 216, 33, 34, 216, 33, 34, 35, 216, 33, 34, 35, 36, 216, 164, 111, 164, 112, 164, 113, 164, 114, 216, 16738, 173, 223, 237],
        [23274, 115, 40993, 179, 120, 248, 26453, 11100, 224, 10391, 251, 10391, 134, 11100, 226, 216, 28589, 29184, 36518, 40562, 116, 216, 33085, 246, 181, 130, 251, 183, 240, 129],
        [391, 33777, 15107, 235, 231, 10813, 233, 138, 15107, 225, 121, 10813, 225, 132, 4636, 247, 114, 31752, 321, 231, 10813, 238, 115, 15107, 235, 118, 321, 231, 10813, 235, 119, 321, 231, 10813, 235, 117, 321, 231, 10813, 235, 116, 10095],
        [506, 637, 30451, 637, 144, 140, 104, 10922, 764, 637, 637, 1792, 23],
        [15442, 94, 32093, 321, 221, 391, 12109, 218, 489, 4551],
        [100, 7366, 197, 197, 397, 199, 102, 15999, 200, 484],
        [51, 11444, 2067, 5699, 46, 22, 1613, 43, 253, 423, 82, 4563, 9148, 17],
        [85, 151, 219, 37366, 15486, 46494, 216, 173, 223, 121, 216, 146, 223],
        [333],
        [],
        [104],
        [504, 2365, 6354, 16438, 506, 27003, 43, 216, 34, 32, 34, 36, 29, 32, 37, 29, 32, 33, 68, 33, 32, 42, 32, 32, 42, 32, 32, 74],
    ]
    static let smolLlama3SplitIds: [[Int32]] = [
        [52, 2154, 23, 68, 346, 408, 2154, 23, 68, 339, 23, 61, 392, 23, 3256, 502, 23, 25917, 357, 23, 16421, 384, 23, 52],
        [3002, 5013, 800, 5600, 1092],
        [4861, 4966, 5600, 333],
        [256, 11181, 1116, 256, 1792, 216, 197, 198, 329, 18682, 106],
        [33, 34, 35, 36, 37, 38, 39, 216, 33, 34, 216, 33, 34, 35, 216, 33, 34, 35, 36, 216, 164, 111, 164, 112, 164, 113, 164, 114, 216, 16738, 173, 223, 237],
        [23274, 115, 40993, 179, 120, 248, 26453, 11100, 224, 10391, 251, 10391, 134, 11100, 226, 216, 28589, 29184, 36518, 40562, 116, 216, 33085, 246, 181, 130, 251, 183, 240, 129],
        [391, 33777, 15107, 235, 231, 10813, 233, 138, 15107, 225, 121, 10813, 225, 132, 4636, 247, 114, 31752, 321, 231, 10813, 238, 115, 15107, 235, 118, 321, 231, 10813, 235, 119, 321, 231, 10813, 235, 117, 321, 231, 10813, 235, 116, 10095],
        [506, 637, 30451, 637, 144, 140, 104, 10922, 764, 637, 637, 1792, 23],
        [15442, 94, 32093, 321, 221, 391, 12109, 218, 489, 4551],
        [100, 7366, 197, 197, 397, 199, 102, 15999, 200, 484],
        [51, 11444, 2067, 5699, 46, 22, 1613, 43, 253, 423, 82, 4563, 9148, 17],
        [85, 151, 219, 37366, 15486, 46494, 216, 173, 223, 121, 216, 146, 223],
        [333],
        [],
        [104],
        [504, 2365, 6354, 16438, 506, 27003, 43, 216, 34, 32, 34, 36, 29, 32, 37, 29, 32, 33, 68, 33, 32, 42, 32, 32, 42, 32, 32, 74],
    ]

    /// Pieces of llama.cpp's named pre-tokenizers, as Sequence[Split(regex, Isolated), …] in tokenizers 0.23.3.
    static let namedTexts: [String] = ["Hello World's DON'T stop 12345678 $x+=y|z^2~ `code`", "Ὗώ ΩK Ünïcödé CamelCaseWORDSlower iPhone", "日本語のテキスト 中文，标点。 한국어  \n\n  x  \r\n", "e\u{301}\u{301} 'ſx ½ ١٢٣ a.b,c!d?e…f。", "   trailing   \n"]
    static let namedPieces: [String: [[String]]] = [
        "default": [
            ["Hello", " World", "'", "s", " DON", "'", "T", " stop", " ", "123", "456", "78", " ", "$", "x", "+=", "y", "|", "z", "^", "2", "~", " `", "code", "`"],
            ["Ὗώ", " ΩK", " Ünïcödé", " CamelCaseWORDSlower", " iPhone"],
            ["日本語のテキスト", " 中文", "，", "标点", "。", " 한국어", "  \n\n ", " x", "  \r\n"],
            ["e", "\u{301}\u{301}", " ", "'", "ſx", " ", "½", " ", "١٢٣", " a", ".", "b", ",", "c", "!", "d", "?", "e", "…", "f", "。"],
            ["  ", " trailing", "   \n"],
        ],
        "falcon": [
            ["Hello", " World", "'", "s", " DON", "'", "T", " stop", " ", "123", "456", "78", " ", "$", "x", "+=", "y", "|", "z", "^", "2", "~", " ", "`", "code", "`"],
            ["Ὗώ", " ΩK", " Ünïcödé", " CamelCaseWORDSlower", " iPhone"],
            ["日本語のテキスト", " 中文", "，", "标点", "。", " 한국어", "  \n\n ", " x", "  \r\n"],
            ["e", "\u{301}\u{301}", " ", "'", "ſx", " ½", " ١٢٣", " a", ".", "b", ",", "c", "!", "d", "?", "e", "…", "f", "。"],
            ["  ", " trailing", "   \n"],
        ],
        "deepseek-llm": [
            ["Hello", " World", "'", "s", " DON", "'", "T", " stop", " ", "12345678", " $", "x", "+=", "y", "|", "z", "^", "2", "~", " `", "code", "`"],
            ["Ὗ", "ώ", " Ω", "K", " Ü", "n", "ï", "c", "ö", "d", "é", " CamelCaseWORDSlower", " iPhone"],
            ["日本語のテキスト", " ", "中文", "，", "标点", "。", " ", "한국어", "  ", "\n", "\n", " ", " x", "  ", "\r", "\n"],
            ["e", "\u{301}\u{301}", " '", "ſ", "x", " ", "½", " ", "١٢٣", " a", ".", "b", ",", "c", "!", "d", "?", "e", "…", "f", "。"],
            ["  ", " trailing", "   ", "\n"],
        ],
        "deepseek-coder": [
            ["Hello", " World", "'", "s", " DON", "'", "T", " stop", " ", "1", "2", "3", "4", "5", "6", "7", "8", " $", "x", "+=", "y", "|", "z", "^", "2", "~ `", "code", "`"],
            ["Ὗ", "ώ", " ΩK", " Ünïcödé", " CamelCaseWORDSlower", " iPhone"],
            ["日本語のテキスト", " ", "中文", "，", "标点", "。", " ", "한국어", "  ", "\n", "\n", " ", " x", "  ", "\r", "\n"],
            ["e", "\u{301}\u{301}", " '", "ſx", " ", "½", " ", "١", "٢", "٣", " a", ".", "b", ",", "c", "!", "d", "?", "e", "…", "f", "。"],
            ["  ", " trailing", "   ", "\n"],
        ],
        "gpt-4o": [
            ["Hello", " World's", " DON'T", " stop", " ", "123", "456", "78", " $", "x", "+=", "y", "|z", "^", "2", "~", " `", "code", "`"],
            ["Ὗώ", " ΩK", " Ünïcödé", " Camel", "Case", "WORDSlower", " i", "Phone"],
            ["日本語のテキスト", " 中文", "，标点", "。", " 한국어", "  \n\n", " ", " x", "  \r\n"],
            ["e\u{301}\u{301}", " '", "ſx", " ", "½", " ", "١٢٣", " a", ".b", ",c", "!d", "?e", "…f", "。"],
            ["  ", " trailing", "   \n"],
        ],
        "tekken": [
            ["Hello", " World", "'s", " DON", "'T", " stop", " ", "1", "2", "3", "4", "5", "6", "7", "8", " $", "x", "+=", "y", "|z", "^", "2", "~", " `", "code", "`"],
            ["Ὗώ", " ΩK", " Ünïcödé", " Camel", "Case", "WORDSlower", " i", "Phone"],
            ["日本語のテキスト", " 中文", "，标点", "。", " 한국어", "  \n\n", " ", " x", "  \r\n"],
            ["e\u{301}\u{301}", " '", "ſx", " ", "½", " ", "١", "٢", "٣", " a", ".b", ",c", "!d", "?e", "…f", "。"],
            ["  ", " trailing", "   \n"],
        ],
        "bloom": [
            ["Hello", " World's", " DON'T", " stop", " 12345678", " $x+=y", "|", "z^2~", " `code`"],
            ["Ὗώ", " ΩK", " Ünïcödé", " CamelCaseWORDSlower", " iPhone"],
            ["日本語のテキスト", " 中文", "，", "标点", "。", " 한국어", "  \n\n ", " x", "  \r\n"],
            ["e\u{301}\u{301}", " 'ſx", " ½", " ١٢٣", " a", ".", "b", ",", "c", "!", "d", "?", "e", "…", "f", "。"],
            ["  ", " trailing", "   \n"],
        ],
    ]

    // MARK: Tests

    static func pieces(_ pattern: BPEPattern, _ text: String) -> [[Unicode.Scalar]] {
        let scalars = Array(text.unicodeScalars)
        var matches: [Range<Int>] = []
        pattern.matches(in: scalars, 0..<scalars.count, into: &matches)
        return matches.filter { !$0.isEmpty }.map { Array(scalars[$0]) }
    }

    func testGPT2PatternPieces() throws {
        XCTAssertEqual(Self.texts.count, Self.gpt2Pieces.count)
        let regex = BPEPattern.regex(try BPERegex(BPEPattern.gpt2Source))
        for (text, expected) in zip(Self.texts, Self.gpt2Pieces) {
            let want = expected.map { Array($0.unicodeScalars) }
            XCTAssertEqual(Self.pieces(.gpt2, text), want, "gpt2 scanner \(text.debugDescription)")
            XCTAssertEqual(Self.pieces(regex, text), want, "gpt2 regex \(text.debugDescription)")
        }
    }

    func testLlama3PatternPieces() throws {
        XCTAssertEqual(Self.texts.count, Self.llama3Pieces.count)
        let regex = BPEPattern.regex(try BPERegex(BPEPattern.llama3Source))
        for (text, expected) in zip(Self.texts, Self.llama3Pieces) {
            let want = expected.map { Array($0.unicodeScalars) }
            XCTAssertEqual(Self.pieces(.llama3(maxDigits: 3), text), want, "llama3 scanner \(text.debugDescription)")
            XCTAssertEqual(Self.pieces(regex, text), want, "llama3 regex \(text.debugDescription)")
        }
    }

    func testKnownPatternsCompileToScanners() throws {
        guard case .gpt2 = try BPEPattern.compile(regex: BPEPattern.gpt2Source) else { return XCTFail("gpt2") }
        guard case .llama3(3) = try BPEPattern.compile(regex: BPEPattern.llama3Source) else { return XCTFail("llama3") }
        guard case .llama3(1) = try BPEPattern.compile(regex: BPEPattern.qwen2Source) else { return XCTFail("qwen2") }
        guard case .regex = try BPEPattern.compile(regex: #"\p{N}{1,3}"#) else { return XCTFail("fallback") }
        XCTAssertThrowsError(try BPEPattern.compile(regex: "(unclosed"))
    }

    func testSmolLM2IdsOnTrickyStrings() throws {
        let tok = try BPETokenizerTests.smol()
        for (text, expected) in zip(Self.texts, Self.smolIds) {
            XCTAssertEqual(tok.encode(text), expected, text.debugDescription)
            XCTAssertEqual(tok.decode(expected), text)
        }
    }

    /// SmolLM2's vocabulary with a LLaMA-3 style pre-tokenizer (Split with the LLaMA-3 regex,
    /// then ByteLevel without its regex), as written in a tokenizer.json.
    func testLlama3StyleSplitTokenizerJSON() throws {
        let source = try String(contentsOf: try BPETokenizerTests.modelDirectory().appendingPathComponent("tokenizer.json"), encoding: .utf8)
        let original = """
          "pre_tokenizer": {
            "type": "ByteLevel",
            "add_prefix_space": false,
            "trim_offsets": true,
            "use_regex": true
          },
        """
        XCTAssertTrue(source.contains(original))
        let escaped = BPEPattern.llama3Source.replacingOccurrences(of: "\\", with: "\\\\")
        let replacement = """
          "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": "\(escaped)"}, "behavior": "Isolated", "invert": false},
            {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": false}]},
        """
        let dir = temporaryDirectory()
        let url = dir.appendingPathComponent("tokenizer.json")
        try source.replacingOccurrences(of: original, with: replacement).write(to: url, atomically: true, encoding: .utf8)
        let tok = try BPETokenizer.load(tokenizerJSON: url, config: nil)
        for (text, expected) in zip(Self.texts, Self.smolLlama3SplitIds) {
            XCTAssertEqual(tok.encode(text), expected, text.debugDescription)
            XCTAssertEqual(tok.decode(expected), text)
        }
    }

    func testNamedPreTokenizersMatchHuggingFaceSplits() throws {
        for (name, expected) in Self.namedPieces.sorted(by: { $0.key < $1.key }) {
            let spec = try XCTUnwrap(BPENamedPreTokenizers.spec(name), name)
            let steps = try BPENamedPreTokenizers.steps(spec).filter {
                if case .byteLevel = $0 { return false }
                return true
            }
            let pre = BPEPreTokenizer(steps: steps)
            for (text, want) in zip(Self.namedTexts, expected) {
                var buffer = Array(text.unicodeScalars)
                var pieces = buffer.isEmpty ? [] : [0..<buffer.count]
                var scratch = BPEPreTokenizer.Scratch()
                pre.run(&buffer, &pieces, &scratch)
                XCTAssertEqual(pieces.map { Array(buffer[$0]) }, want.map { Array($0.unicodeScalars) }, "\(name): \(text.debugDescription)")
            }
        }
    }

    /// Random strings over a small, adversarial alphabet: every scanner equals Swift `Regex`.
    func testScannersAgreeWithRegexOnRandomText() throws {
        let alphabet: [Unicode.Scalar] = [
            // (no "ſ": Oniguruma case-folds it to "s" in `(?i:'s)`, Swift `Regex` does not)
            "a", "Z", "s", "S", "t", "T", "r", "e", "E", "v", "m", "l", "L", "d", "D", "é", "日", "ǅ", "ʕ",
            "'", "'", "'", " ", " ", " ", " ", "\n", "\r", "\t", "\u{A0}", "\u{3000}", "\u{0B}",
            "1", "2", "٣", "½", "Ⅻ", "!", ".", "-", "/", "<", "😀", "\u{301}", "\u{200D}", "\u{FE0F}", "_", "$",
        ]
        let pairs: [(BPEPattern, String)] = [
            (.gpt2, BPEPattern.gpt2Source),
            (.llama3(maxDigits: 3), BPEPattern.llama3Source),
            (.llama3(maxDigits: 1), BPEPattern.qwen2Source),
            (.numbers(maxRun: 1), #"\p{N}"#),
            (.numbers(maxRun: Int.max), #"\p{N}+"#),
        ]
        var rng = SystemRandomNumberGenerator()
        for (scanner, source) in pairs {
            let regex = BPEPattern.regex(try BPERegex(source))
            for _ in 0..<400 {
                var text = String.UnicodeScalarView()
                for _ in 0..<Int.random(in: 0...24, using: &rng) { text.append(alphabet.randomElement(using: &rng)!) }
                let s = String(text)
                XCTAssertEqual(Self.pieces(scanner, s), Self.pieces(regex, s), "\(source) on \(s.debugDescription)")
            }
        }
    }

    /// Oniguruma's case folding: `(?i:'s)` matches "'ſ" (tokenizers 0.23.3: "'ſx" → "'ſ", "x").
    func testLongSFoldsInLlama3Contractions() {
        let want: [[Unicode.Scalar]] = [["'", "ſ"], ["x"]]
        XCTAssertEqual(Self.pieces(.llama3(maxDigits: 3), "'ſx"), want)
        XCTAssertEqual(Self.pieces(.gpt2, "'ſx"), [["'"], ["ſ", "x"]])
    }

    func testEscapingNonASCIIForSwiftRegex() throws {
        XCTAssertEqual(BPERegex.escapingNonASCII("[\u{1F5F}-\u{1F7D}]\u{E9}\\p{L}\\\u{E9}"),
                       "[\\x{1f5f}-\\x{1f7c}\\x{1f7d}]\\x{e9}\\p{L}\\\u{E9}")
        let pattern = BPEPattern.regex(try BPERegex("[\u{1F5F}-\u{1F7D}]+"))
        let want: [[Unicode.Scalar]] = [["\u{1F5F}", "\u{1F7D}"]]
        XCTAssertEqual(Self.pieces(pattern, "a\u{1F5F}\u{1F7D}b"), want)
    }

    func testCharacterClassesFollowUnicode16() {
        XCTAssertEqual(BPECharClass.flags("a") & BPECharClass.letter, BPECharClass.letter)
        XCTAssertEqual(BPECharClass.flags("\u{295}"), BPECharClass.letter | BPECharClass.lower)
        XCTAssertEqual(BPECharClass.flags("\u{A0}"), BPECharClass.whitespace)
        XCTAssertEqual(BPECharClass.flags("٣") & BPECharClass.number, BPECharClass.number)
        XCTAssertEqual(BPECharClass.flags("\u{1F600}"), BPECharClass.symbol)
    }

    func testByteLevelAlphabet() {
        XCTAssertEqual(BPEByteLevel.byteToScalar[0x20], "Ġ")
        XCTAssertEqual(BPEByteLevel.byteToScalar[0x0A], "Ċ")
        XCTAssertEqual(BPEByteLevel.byteToScalar[0x41], "A")
        XCTAssertEqual(Set(BPEByteLevel.byteToScalar).count, 256)
        for b in 0..<256 { XCTAssertEqual(BPEByteLevel.byte(of: BPEByteLevel.byteToScalar[b]), UInt8(b)) }
        XCTAssertNil(BPEByteLevel.byte(of: " "))
        XCTAssertEqual(BPEByteLevel.encode("é "), "Ã©Ġ")
    }
}
