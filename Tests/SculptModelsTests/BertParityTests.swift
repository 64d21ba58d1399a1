import XCTest
import Foundation
import SculptCore
import SculptNN
import SculptIO
import SculptTestSupport
@testable import SculptModels

/// all-MiniLM-L6-v2 against reference outputs computed with PyTorch + transformers
/// (../shared/goldens/minilm).
final class BertParityTests: XCTestCase {
    func loadModel() throws -> BertModel {
        let dir = try SharedData.require("models/all-MiniLM-L6-v2")
        let (model, report) = try BertModel.load(directory: dir)
        XCTAssertEqual(report.missing, [])
        XCTAssertEqual(report.unexpected, [], "position_ids is ignored, nothing else is unexpected")
        model.eval()
        return model
    }

    func batch(from file: SafeTensorsFile) throws -> TokenizedBatch {
        let shape = try file.info("input_ids").shape
        return TokenizedBatch(batchSize: shape[0], sequenceLength: shape[1],
                          inputIds: try file.int32s("input_ids"), attentionMask: try file.int32s("attention_mask"))
    }

    func testForwardMatchesTransformers() throws {
        let model = try loadModel()
        let golden = try SafeTensorsFile(path: try SharedData.require("goldens/minilm/forward.safetensors").path)
        let tokens = try batch(from: golden)
        let hidden = withoutGradients { model(tokens) }
        let expected = try golden.tensor("last_hidden_state")
        XCTAssertEqual(hidden.shape, expected.shape)
        let diff = hidden.value.maxAbsDifference(expected)
        XCTAssertLessThanOrEqual(diff, 1e-4, "last_hidden_state max-abs difference \(diff)")

        let embedding = l2Normalize(withoutGradients { maskedMeanPool(hidden, mask: tokens.maskTensor) }.value)
        let eDiff = embedding.maxAbsDifference(try golden.tensor("sentence_embedding"))
        XCTAssertLessThanOrEqual(eDiff, 1e-4, "sentence_embedding max-abs difference \(eDiff)")
    }

    func testBackwardMatchesTransformers() throws {
        let model = try loadModel()
        let golden = try SafeTensorsFile(path: try SharedData.require("goldens/minilm/backward.safetensors").path)
        let tokens = try batch(from: golden)
        let head = Linear(weight: try golden.tensor("head.weight"), bias: try golden.tensor("head.bias"))
        let labels = try golden.int32s("labels")

        let features = maskedMeanPool(model(tokens), mask: tokens.maskTensor)
        let loss = crossEntropy(head(features), labels: labels)
        XCTAssertEqual(loss.value.scalar, try golden.tensor("loss").scalar, accuracy: 1e-4 * max(1, abs(loss.value.scalar)))
        loss.backward()

        var params: [String: Variable] = [:]
        for (n, p) in model.namedParameters() { params[n] = p }
        params["head.weight"] = head.weight
        params["head.bias"] = head.bias!
        for name in golden.names where name.hasPrefix("grad.") {
            let key = String(name.dropFirst("grad.".count))
            let expected = try golden.tensor(name)
            guard let g = params[key]?.grad else { XCTFail("no gradient for \(key)"); continue }
            let rel = g.maxAbsDifference(expected) / max(expected.maxAbs(), 1e-12)
            XCTAssertLessThanOrEqual(rel, 1e-4, "gradient of \(key): max-abs difference relative to its max-abs \(rel)")
        }
        let wordGrad = try XCTUnwrap(params["embeddings.word_embeddings.weight"]?.grad)
        let expectedNorm = try golden.tensor("grad_norm.embeddings.word_embeddings.weight").scalar
        XCTAssertEqual(wordGrad.norm(), expectedNorm, accuracy: 1e-4 * expectedNorm)
    }

    func testRandomModelRoundTripsThroughSafetensors() throws {
        let config = BertConfig(hiddenSize: 8, numHiddenLayers: 2, numAttentionHeads: 2, intermediateSize: 12, vocabSize: 30, maxPositionEmbeddings: 16)
        let model = try BertModel(config: config, seed: 3)
        model.eval()
        let dir = temporaryDirectory()
        try model.save(to: dir)
        let (loaded, report) = try BertModel.load(directory: dir)
        loaded.eval()
        XCTAssertEqual(report, LoadReport(missing: [], unexpected: []))
        let tokens = TokenizedBatch(batchSize: 2, sequenceLength: 5, inputIds: [1, 4, 5, 2, 0, 1, 7, 8, 9, 2], attentionMask: [1, 1, 1, 1, 0, 1, 1, 1, 1, 1])
        let a = withoutGradients { model(tokens) }.value, b = withoutGradients { loaded(tokens) }.value
        XCTAssertEqual(a, b)
    }

    func testPaddingDoesNotChangeUnpaddedOutputs() throws {
        let config = BertConfig(hiddenSize: 8, numHiddenLayers: 2, numAttentionHeads: 2, intermediateSize: 12, vocabSize: 30, maxPositionEmbeddings: 16)
        let model = try BertModel(config: config, seed: 5)
        model.eval()
        let short = TokenizedBatch(batchSize: 1, sequenceLength: 3, inputIds: [1, 4, 2])
        let padded = TokenizedBatch(batchSize: 1, sequenceLength: 5, inputIds: [1, 4, 2, 0, 0], attentionMask: [1, 1, 1, 0, 0])
        let a = withoutGradients { model(short) }.value
        let b = withoutGradients { model(padded) }.value.slice(axis: 1, 0..<3)
        XCTAssertLessThan(a.maxAbsDifference(b), 1e-5)
    }
}
