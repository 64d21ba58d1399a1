import XCTest
import SculptCore
import SculptIO
@testable import SculptModels
import SculptTestSupport

/// The tiny random HF decoders (llama: GQA, untied head; qwen2: q/k/v biases, tied head;
/// qwen3: q/k norms, head_dim ≠ hidden/heads) against PyTorch + transformers 5.24.
final class DecoderGoldenTests: XCTestCase {
    struct Golden {
        let file: SafeTensorsFile
        let ids: [Int32], mask: [Int32]
        let batch: Int, sequence: Int
    }

    func golden(_ type: String) throws -> (DecoderLM, Golden) {
        let dir = try SharedData.require("models/tiny-decoders/\(type)")
        let url = try SharedData.require("goldens/tiny-decoders/\(type).safetensors")
        let (model, report) = try DecoderLM.load(directory: dir)
        XCTAssertEqual(report.unexpected, [], "\(type): unexpected tensors")
        let f = try SafeTensorsFile(path: url.path)
        let shape = try f.info("input_ids").shape
        return (model, Golden(file: f, ids: try f.int64s("input_ids").map { Int32($0) }, mask: try f.int64s("attention_mask").map { Int32($0) },
                              batch: shape[0], sequence: shape[1]))
    }

    func relativeError(_ a: Tensor, _ b: Tensor) -> Float {
        let scale = max(b.scalars.map(abs).max() ?? 0, 1e-12)
        return a.maxAbsDifference(b) / scale
    }

    func testForwardMatchesTransformers() throws {
        for type in ["llama", "qwen2", "qwen3"] {
            let (model, g) = try golden(type)
            try withoutGradients {
                let hidden = model.hiddenStates(ids: g.ids, batch: g.batch, sequence: g.sequence, attentionMask: g.mask)
                let logits = model.logits(hidden)
                let refHidden = try g.file.tensor("last_hidden_state").reshaped(hidden.value.shape)
                let refLogits = try g.file.tensor("logits").reshaped(logits.value.shape)
                XCTAssertLessThan(hidden.value.maxAbsDifference(refHidden), 1e-4, "\(type): last_hidden_state")
                XCTAssertLessThan(logits.value.maxAbsDifference(refLogits), 1e-4, "\(type): logits")
            }
        }
    }

    func testLossAndEveryGradientMatchTransformers() throws {
        for type in ["llama", "qwen2", "qwen3"] {
            let (model, g) = try golden(type)
            let labels = zip(g.ids, g.mask).map { $1 == 0 ? Int32(-100) : $0 }
            let loss = model.causalLMLoss(ids: g.ids, batch: g.batch, sequence: g.sequence, attentionMask: g.mask, labels: labels)
            XCTAssertEqual(loss.value.scalar, try g.file.tensor("loss").scalars[0], accuracy: 1e-4 * max(1, abs(loss.value.scalar)), "\(type): loss")
            loss.backward()
            var checked = 0
            for (name, p) in model.namedParameters() {
                let ref = try g.file.tensor("grad." + name)
                guard let grad = p.grad else { XCTFail("\(type): no gradient for \(name)"); continue }
                XCTAssertLessThan(relativeError(grad, ref.reshaped(grad.shape)), 1e-4, "\(type): grad.\(name)")
                checked += 1
            }
            XCTAssertEqual(checked, g.file.names.filter { $0.hasPrefix("grad.") }.count, "\(type): every golden gradient compared")
        }
    }

    func testGreedyGenerationMatchesTransformers() throws {
        for type in ["llama", "qwen2", "qwen3"] {
            let (model, g) = try golden(type)
            let prompt = try g.file.int64s("generate.prompt").map { Int32($0) }
            let expected = try g.file.int64s("generate.greedy").map { Int32($0) }
            let generator = DecoderGenerator(model: model)
            let out = generator.generate(prompts: [prompt], options: GenerationOptions(maxNewTokens: expected.count, stopTokenIds: []))
            XCTAssertEqual(out[0], expected, "\(type): greedy ids (new tokens only)")
        }
    }
}
