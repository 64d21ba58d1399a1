import XCTest
import SculptCore
import SculptIO
import SculptTestSupport
@testable import SculptTune

final class DataTests: XCTestCase {
    func testCSVQuotesNewlinesAndDoubledQuotes() throws {
        let text = "text,label\n\"a, b\",x\r\n\"say \"\"hi\"\"\",y\n\n\"two\nlines\",z\nplain,w"
        let r = try CSV.parse(text)
        XCTAssertEqual(r.map(\.fields), [["text", "label"], ["a, b", "x"], ["say \"hi\"", "y"], ["two\nlines", "z"], ["plain", "w"]])
        XCTAssertEqual(r.map(\.line), [1, 2, 3, 5, 7])
        XCTAssertEqual(try CSV.parse("a,,\n").first?.fields, ["a", "", ""])
    }

    func testCSVUnclosedQuoteNamesLine() {
        XCTAssertThrowsError(try CSV.parse("text,label\nok,1\n\"never closed,2\n", file: "f.csv")) { e in
            XCTAssertEqual("\(e)", "f.csv:3: quoted field is never closed")
        }
    }

    func testTextExamplesFromCSVWithCustomFields() throws {
        let dir = temporaryDirectory()
        let url = try Fixtures.write("id,sentence,topic\n1,\"hello, world\",greet\n2,bye,leave\n", "d.csv", in: dir)
        let ex = try TextExamples.read(url, textField: "sentence", labelField: "topic")
        XCTAssertEqual(ex.map(\.text), ["hello, world", "bye"])
        XCTAssertEqual(ex.map(\.label), ["greet", "leave"])
        XCTAssertThrowsError(try TextExamples.read(url)) { XCTAssertTrue("\($0)".contains("no \"text\" column"), "\($0)") }
    }

    func testMalformedJSONLNamesTheLine() throws {
        let dir = temporaryDirectory()
        let url = try Fixtures.write("{\"text\": \"a\", \"label\": \"x\"}\n\n{\"text\": \"b\", \"label\": \n", "d.jsonl", in: dir)
        XCTAssertThrowsError(try TextExamples.read(url)) { e in
            XCTAssertTrue("\(e)".hasPrefix("\(url.path):3: malformed JSON"), "\(e)")
        }
        let noLabel = try Fixtures.write("{\"text\": \"a\"}\n", "n.jsonl", in: dir)
        XCTAssertThrowsError(try TextExamples.read(noLabel)) { XCTAssertTrue("\($0)".hasSuffix(":1: no \"label\" field"), "\($0)") }
    }

    func testEmptyDatasetIsAnError() throws {
        let dir = temporaryDirectory()
        let url = try Fixtures.write("\n  \n", "empty.jsonl", in: dir)
        XCTAssertThrowsError(try TextExamples.read(url)) { XCTAssertTrue("\($0)".contains("the dataset is empty"), "\($0)") }
        let images = dir.appendingPathComponent("train-images-idx3-ubyte")
        try Fixtures.header(0x803, [0, 8, 8]).write(to: images)
        try Fixtures.header(0x801, [0]).write(to: dir.appendingPathComponent("train-labels-idx1-ubyte"))
        var c = TrainConfig(); c.data = images.path
        XCTAssertThrowsError(try DataPreparation.prepare(c, tokenizer: nil, cacheDirectory: nil)) { XCTAssertTrue("\($0)".contains("empty"), "\($0)") }
    }

    func testIDXWrongMagicAndTruncation() throws {
        let dir = temporaryDirectory()
        let images = try Fixtures.idx(in: dir, count: 8)
        var c = TrainConfig(); c.data = images.path
        var bytes = try Data(contentsOf: images)
        bytes[3] = 0x01
        try bytes.write(to: images)
        XCTAssertThrowsError(try DataPreparation.prepare(c, tokenizer: nil, cacheDirectory: nil)) { XCTAssertTrue("\($0)".contains("magic"), "\($0)") }
        _ = try Fixtures.idx(in: dir, count: 8)
        try Data(try Data(contentsOf: images).prefix(16 + 8 * 64 - 10)).write(to: images)
        XCTAssertThrowsError(try DataPreparation.prepare(c, tokenizer: nil, cacheDirectory: nil)) { e in
            XCTAssertTrue("\(e)".contains(images.path), "\(e)")
        }
    }

    func testLabelVocabularySortsNumericallyAndRejectsUnknownEvalLabels() throws {
        XCTAssertEqual(LabelVocabulary(collecting: ["10", "2", "1", "2"]).names, ["1", "2", "10"])
        let v = LabelVocabulary(collecting: ["b", "a"])
        XCTAssertEqual(v.names, ["a", "b"])
        XCTAssertThrowsError(try v.ids(of: [TextExample(text: "t", label: "a", line: 1), TextExample(text: "u", label: "c", line: 4)], file: "eval.jsonl")) { e in
            XCTAssertTrue("\(e)".hasPrefix("eval.jsonl:4: unknown label \"c\""), "\(e)")
        }
        let dir = temporaryDirectory()
        let url = dir.appendingPathComponent("labels.json")
        try v.write(to: url)
        XCTAssertEqual(try LabelVocabulary.read(from: url), v)
    }

    func testUnknownImageLabelInEvalData() throws {
        let dir = temporaryDirectory()
        let train = try Fixtures.idx(in: dir, count: 16, classes: 2)
        let eval = try Fixtures.idx(in: dir, count: 16, classes: 3, prefix: "t10k")
        var c = TrainConfig(); c.data = train.path; c.evalData = eval.path
        XCTAssertThrowsError(try DataPreparation.prepare(c, tokenizer: nil, cacheDirectory: nil)) { e in
            XCTAssertTrue("\(e)".contains("label 2, which the training data does not have"), "\(e)")
        }
    }

    func testBatchPadsToLongestInBatch() {
        let d = ClassificationData(inputs: .tokens([[101, 5, 102], [101, 102], [101, 7, 8, 9, 102]]), labels: [0, 1, 0])
        let b = d.batch([0, 1], padId: 0)
        guard case .tokens(let t) = b.input else { return XCTFail() }
        XCTAssertEqual(t.sequenceLength, 3)
        XCTAssertEqual(t.inputIds, [101, 5, 102, 101, 102, 0])
        XCTAssertEqual(t.attentionMask, [1, 1, 1, 1, 1, 0])
        XCTAssertEqual(b.labels, [0, 1])
    }

    func testImageBatchNormalises() {
        let d = ClassificationData(inputs: .images(pixels: [0, 255, 0, 255], height: 1, width: 2), labels: [0, 1])
        guard case .images(let t) = d.batch([1]).input else { return XCTFail() }
        XCTAssertEqual(t.shape, [1, 1, 1, 2])
        XCTAssertEqual(t[flat: 1], (1 - 0.2860) / 0.3530, accuracy: 1e-5)
    }

    func testSeededOrderAndSplit() {
        let a = DataOrderState(seed: 7, epoch: 2).permutation(count: 50)
        XCTAssertEqual(a, DataOrderState(seed: 7, epoch: 2).permutation(count: 50))
        XCTAssertNotEqual(a, DataOrderState(seed: 7, epoch: 3).permutation(count: 50))
        XCTAssertEqual(a.sorted(), Array(0..<50))
        let (t, v) = validationSplit(count: 100, fraction: 0.1, seed: 3)
        XCTAssertEqual(v.count, 10)
        XCTAssertEqual(Set(t).union(v), Set(0..<100))
        XCTAssertTrue(Set(t).isDisjoint(with: v))
    }

    func testTokenCacheRoundTrips() throws {
        let dir = temporaryDirectory()
        let model = try SharedData.require("models/all-MiniLM-L6-v2")
        let tok = try WordPieceTokenizer.load(modelDirectory: model)
        let url = dir.appendingPathComponent("cache/tokens.safetensors")
        let a = try TokenCache.tokens(["hello world", "a longer sentence here"], tokenizer: tok, maxLength: 8, cacheFile: url)
        XCTAssertTrue(FileManager.default.fileExists(atPath: url.path))
        XCTAssertEqual(try TokenCache.load(url, fingerprint: TokenCache.fingerprintOf(["hello world", "a longer sentence here"], maxLength: 8, vocabulary: tok.vocabularySize), count: 2), a)
        XCTAssertEqual(a[1].count, 6)
    }
}

final class AugmentationTests: XCTestCase {
    func testFlipIsSeededAndMirrors() {
        let d = ClassificationData(inputs: .images(pixels: (0..<64).map { UInt8($0) } + (0..<64).map { UInt8($0) }, height: 2, width: 2),
                                   labels: Array(repeating: 0, count: 32))
        let idx = Array(0..<32)
        guard case .images(let a) = d.batch(idx, flipSeed: 5).input, case .images(let b) = d.batch(idx, flipSeed: 5).input,
              case .images(let plain) = d.batch(idx).input else { return XCTFail() }
        XCTAssertEqual(a, b)
        var flipped = 0
        for r in 0..<32 {
            let row = (0..<4).map { a[flat: r * 4 + $0] }, orig = (0..<4).map { plain[flat: r * 4 + $0] }
            if row != orig { flipped += 1; XCTAssertEqual(row, [orig[1], orig[0], orig[3], orig[2]]) }
        }
        XCTAssertGreaterThan(flipped, 4)
        XCTAssertLessThan(flipped, 28)
    }
}
