import XCTest
import SculptCore
import SculptNN
import SculptIO
import SculptModels
import SculptTestSupport
@testable import SculptSubnet

final class BertSubnetTests: XCTestCase {
    let config = BertConfig(hiddenSize: 16, numHiddenLayers: 3, numAttentionHeads: 4, intermediateSize: 24, vocabSize: 40, maxPositionEmbeddings: 32)

    func makeBatch() -> TokenizedBatch {
        var rng = SeededRNG(seed: 9)
        let ids = (0..<(2 * 7)).map { _ in Int32(rng.next() % 40) }
        return TokenizedBatch(batchSize: 2, sequenceLength: 7, inputIds: ids, attentionMask: [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0])
    }

    func testStandardSpace() {
        let space = BertSearchSpace.standard(for: config)
        XCTAssertEqual(space.layerChoices, [1, 2, 3])
        XCTAssertEqual(space.headChoices, [1, 2, 3, 4])
        XCTAssertEqual(space.ffnChoices, [6, 12, 18, 24])
        XCTAssertEqual(space.largest, BertSubnet(layers: 3, heads: [4, 4, 4], ffn: [24, 24, 24]))
        XCTAssertEqual(space.smallest, BertSubnet(layers: 1, heads: [1], ffn: [6]))
    }

    func testExtractedModelsEqualTheActiveSuperNetwork() throws {
        let model = try BertModel(config: config, seed: 1)
        let space = BertSearchSpace.standard(for: config)
        var rng = SeededRNG(seed: 4)
        let batch = makeBatch()
        for subnet in [space.largest, space.smallest] + (0..<6).map({ _ in space.sample(using: &rng) }) {
            let small = try model.extract(subnet)
            let check = checkExtraction(superNetwork: model, subnet: subnet, extracted: small, batch: batch)
            XCTAssertLessThanOrEqual(check.maxAbsDifference, 1e-5, "\(subnet.json)")
            XCTAssertEqual(small.encoder.layers.map { $0.attention.selfAttention.heads }, subnet.heads)
            XCTAssertEqual(small.encoder.layers.map { $0.intermediate.dense.outFeatures }, subnet.ffn)
            // The extracted directory round-trips through config.json with its per-layer sizes.
            let dir = temporaryDirectory()
            try small.save(to: dir)
            let (loaded, _) = try BertModel.load(directory: dir)
            loaded.eval(); small.eval()
            XCTAssertEqual(withoutGradients { loaded(batch) }.value, withoutGradients { small(batch) }.value)
        }
        // Deactivating restores the full model.
        model.activate(nil)
        let full = try model.extract(space.largest)
        XCTAssertLessThanOrEqual(checkExtraction(superNetwork: model, subnet: space.largest, extracted: full, batch: batch).maxAbsDifference, 1e-6)
    }

    func testUniformExtractionWritesStandardConfig() throws {
        let model = try BertModel(config: config, seed: 2)
        let small = try model.extract(BertSubnet(layers: 2, heads: [4, 4], ffn: [12, 12]))
        XCTAssertNil(small.config.layerNumHeads)
        XCTAssertNil(small.config.layerIntermediateSizes)
        XCTAssertEqual(small.config.numHiddenLayers, 2)
        XCTAssertEqual(small.config.intermediateSize, 12)
    }

    func testActiveSubnetTrainsOnlyItsSlices() throws {
        let model = try BertModel(config: config, seed: 3)
        model.train()
        model.activate(BertSubnet(layers: 2, heads: [2, 1], ffn: [6, 12]))
        let batch = makeBatch()
        model(batch).sum().backward()
        let q0 = model.encoder.layers[0].attention.selfAttention.query.weight.grad!
        let d = config.headDim
        // Rows of heads 2 and 3 of layer 0 get no gradient; the third layer gets none at all.
        XCTAssertEqual(q0.slice(axis: 0, (2 * d)..<(4 * d)).maxAbs(), 0)
        XCTAssertGreaterThan(q0.slice(axis: 0, 0..<(2 * d)).maxAbs(), 0)
        XCTAssertNil(model.encoder.layers[2].intermediate.dense.weight.grad)
        let inter1 = model.encoder.layers[1].intermediate.dense.weight.grad!
        XCTAssertEqual(inter1.slice(axis: 0, 12..<24).maxAbs(), 0)
    }

    func testParseRejectsBadFieldsNamingThem() {
        let space = BertSearchSpace.standard(for: config)
        XCTAssertEqual(try space.parse(#"{"layers": 2, "heads": [4, 2], "ffn": 12}"#), BertSubnet(layers: 2, heads: [4, 2], ffn: [12, 12]))
        let cases: [(String, String)] = [
            (#"{"layers": 2, "heads": 4, "ffn": 12, "width": 3}"#, "width"),
            (#"{"layers": 5, "heads": 4, "ffn": 12}"#, "layers"),
            (#"{"layers": 2, "heads": [4, 5], "ffn": 12}"#, "heads[1]"),
            (#"{"layers": 2, "heads": [4, 4, 4], "ffn": 12}"#, "heads"),
            (#"{"layers": 2, "heads": 4, "ffn": [12]}"#, "ffn"),
            (#"{"layers": 2, "heads": 4, "ffn": [12, 7]}"#, "ffn[1]"),
            (#"[1, 2]"#, "(json)"),
        ]
        for (json, field) in cases {
            XCTAssertThrowsError(try space.parse(json), json) { e in
                XCTAssertEqual((e as? SubnetError)?.field, field, "\(json): \(e)")
                XCTAssertTrue("\(e)".contains(field))
            }
        }
    }

    func testEncodingRoundTripsAndBlanksUnusedSlots() throws {
        let space = BertSearchSpace.standard(for: config)
        let s = BertSubnet(layers: 2, heads: [4, 1], ffn: [6, 24])
        let e = space.encode(s)
        XCTAssertEqual(e, [1, 3, 0, -1, 0, 3, -1])
        XCTAssertEqual(try space.decode(e), s)
        var rng = SeededRNG(seed: 1)
        for _ in 0..<20 {
            let r = space.sample(using: &rng)
            XCTAssertEqual(try space.decode(space.encode(r)), r)
        }
    }
}

final class ImportanceReorderingTests: XCTestCase {
    func testReorderingKeepsTheFunctionAndSortsUnits() throws {
        let config = BertConfig(hiddenSize: 16, numHiddenLayers: 2, numAttentionHeads: 4, intermediateSize: 24, vocabSize: 40, maxPositionEmbeddings: 32)
        let model = try BertModel(config: config, seed: 5)
        model.eval()
        let batch = TokenizedBatch(batchSize: 1, sequenceLength: 6, inputIds: [1, 5, 9, 3, 2, 0], attentionMask: [1, 1, 1, 1, 1, 0])
        let before = withoutGradients { model(batch) }.value
        // Taylor scores need gradients: accumulate them on the batch first (eval mode: no dropout).
        model(batch).sum().backward()
        for criterion in [ImportanceCriterion.magnitude, .taylor] {
            model.reorderByImportance(criterion)
            let after = withoutGradients { model(batch) }.value
            XCTAssertLessThan(before.maxAbsDifference(after), 1e-5, "\(criterion)")
        }
        model.reorderByImportance(.magnitude)
        for layer in model.encoder.layers {
            let h = layer.headImportance(.magnitude), c = layer.channelImportance(.magnitude)
            XCTAssertEqual(h, h.sorted(by: >))
            XCTAssertEqual(c, c.sorted(by: >))
        }
    }
}
