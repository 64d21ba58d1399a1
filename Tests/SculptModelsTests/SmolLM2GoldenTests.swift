import XCTest
import SculptCore
import SculptIO
@testable import SculptModels
import SculptTestSupport

/// SmolLM2-135M-Instruct from its GGUF (Q4_1 weights, Q8_0 embedding, dequantized) against
/// PyTorch + transformers 5.24 on the same file: tokenizer ids, chat renderings, hidden
/// states, logits, next-token log-probs, greedy generations and an SFT batch's gradients.
final class SmolLM2GoldenTests: XCTestCase {
    nonisolated(unsafe) static var cached: DecoderBundle?

    func bundle() throws -> DecoderBundle {
        if let b = SmolLM2GoldenTests.cached { return b }
        let b = try DecoderBundle.load(path: try SharedData.smolLM2GGUF())
        SmolLM2GoldenTests.cached = b
        return b
    }

    func jsonLines(_ relative: String) throws -> [[String: Any]] {
        let url = try SharedData.require(relative)
        return try String(contentsOf: url, encoding: .utf8).split(separator: "\n").map {
            try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any]
        }
    }

    func testForwardMatchesTransformers() throws {
        let b = try bundle()
        let golden = try SafeTensorsFile(path: try SharedData.require("goldens/smollm2/forward.safetensors").path)
        let texts = try JSONSerialization.jsonObject(with: Data(contentsOf: try SharedData.require("goldens/smollm2/forward_texts.json"))) as! [[String: Any]]
        for (i, entry) in texts.enumerated() {
            let text = entry["text"] as! String
            let ids = b.tokenizer.encode(text, addSpecialTokens: false)
            XCTAssertEqual(ids.map(Int64.init), try golden.int64s("text\(i).input_ids"), "text \(i): ids")
            let s = b.model.score(ids)
            let hidden = try golden.tensor("text\(i).last_hidden_state").reshaped(s.lastHiddenState.shape)
            XCTAssertLessThan(s.lastHiddenState.maxAbsDifference(hidden), 2e-3, "text \(i): last_hidden_state")
            let logits = try golden.tensor("text\(i).last_logits")
            XCTAssertLessThan(s.lastLogits.maxAbsDifference(logits.reshaped(s.lastLogits.shape)), 5e-3, "text \(i): last_logits")
            let top = try golden.int64s("text\(i).top20_indices")
            let expectedTop = Array(top.suffix(20))   // the last position's row
            let values = s.lastLogits.scalars
            let ours = values.indices.sorted { values[$0] > values[$1] }.prefix(20).map(Int64.init)
            XCTAssertEqual(Array(ours), expectedTop, "text \(i): top-20 ids of the last position")
            let lp = try golden.tensor("text\(i).next_token_logprob")
            XCTAssertLessThan(Tensor(shape: lp.shape, data: s.nextTokenLogProb).maxAbsDifference(lp), 2e-3, "text \(i): next_token_logprob")
        }
    }

    func testGreedyGenerationsMatchTransformers() throws {
        let b = try bundle()
        let cases = try jsonLines("goldens/smollm2/generate.jsonl")
        // All prompts in one left-padded batch, and the first alone: the same ids.
        let prompts = cases.map { ($0["input_ids"] as! [Int]).map(Int32.init) }
        let expected = cases.map { ($0["greedy_ids"] as! [Int]).map(Int32.init) }
        let maxNew = cases[0]["max_new_tokens"] as! Int
        for (i, c) in cases.enumerated() {
            let rendered = try b.encodeChat([ChatMessage(role: "user", content: c["prompt"] as! String)], addGenerationPrompt: true)
            XCTAssertEqual(rendered, prompts[i], "case \(i): chat prompt ids")
        }
        let generator = DecoderGenerator(model: b.model)
        let single = generator.generate(prompts: [prompts[0]], options: GenerationOptions(maxNewTokens: maxNew, stopTokenIds: b.stopTokenIds))
        XCTAssertEqual(single[0], expected[0], "case 0 alone")
        let batched = generator.generate(prompts: prompts, options: GenerationOptions(maxNewTokens: maxNew, stopTokenIds: b.stopTokenIds))
        for i in prompts.indices { XCTAssertEqual(batched[i], expected[i], "case \(i) in a padded batch") }
        XCTAssertEqual(b.tokenizer.decode(expected[0]), cases[0]["greedy_text"] as? String)
    }

    /// Decoding on the file's Q4_1 / Q8_0 blocks (what `generate`, `score`, `eval` and `bench`
    /// use on a GGUF) gives transformers' greedy ids too, alone and in a batch.
    func testGreedyGenerationsOnTheFilesBlocksMatchTransformers() throws {
        let path = try SharedData.smolLM2GGUF()
        let b = try DecoderBundle.load(path: path)
        XCTAssertEqual(try DecoderGGUF.attachBlockWeights(b.model, file: GGUFFile(path: path)), 30 * 7 + 1, "every projection and the tied head")
        let cases = try jsonLines("goldens/smollm2/generate.jsonl")
        let prompts = cases.map { ($0["input_ids"] as! [Int]).map(Int32.init) }
        let expected = cases.map { ($0["greedy_ids"] as! [Int]).map(Int32.init) }
        let options = GenerationOptions(maxNewTokens: cases[0]["max_new_tokens"] as! Int, stopTokenIds: b.stopTokenIds)
        let generator = DecoderGenerator(model: b.model)
        XCTAssertEqual(generator.generate(prompts: [prompts[0]], options: options)[0], expected[0], "case 0 alone")
        let batched = generator.generate(prompts: prompts, options: options)
        for i in prompts.indices { XCTAssertEqual(batched[i], expected[i], "case \(i) in a padded batch") }
    }

    func testTokenizerAndChatCasesThroughTheGGUFTokenizer() throws {
        let b = try bundle()
        for (i, c) in try jsonLines("goldens/smollm2/tokenizer_cases.jsonl").enumerated() {
            let ids = b.tokenizer.encode(c["text"] as! String, addSpecialTokens: false)
            XCTAssertEqual(ids.map(Int.init), c["input_ids"] as! [Int], "tokenizer case \(i)")
            XCTAssertEqual(b.tokenizer.decode(ids), c["decoded"] as? String, "tokenizer case \(i): decoded")
        }
        for (i, c) in try jsonLines("goldens/smollm2/chat_cases.jsonl").enumerated() {
            let messages = (c["messages"] as! [[String: String]]).map { ChatMessage(role: $0["role"]!, content: $0["content"]!) }
            let ids = try b.encodeChat(messages, addGenerationPrompt: c["add_generation_prompt"] as! Bool)
            XCTAssertEqual(ids.map(Int.init), c["input_ids"] as! [Int], "chat case \(i)")
        }
    }

    func testSFTLossAndGradientsMatchTransformers() throws {
        let b = try bundle()
        let golden = try SafeTensorsFile(path: try SharedData.require("goldens/smollm2/backward.safetensors").path)
        let shape = try golden.info("input_ids").shape
        let ids = try golden.int64s("input_ids").map { Int32($0) }
        let mask = try golden.int64s("attention_mask").map { Int32($0) }
        let labels = try golden.int64s("labels").map { Int32($0) }
        let model = b.model
        model.zeroGrad()
        defer { model.zeroGrad() }
        let loss = model.causalLMLoss(ids: ids, batch: shape[0], sequence: shape[1], attentionMask: mask, labels: labels)
        XCTAssertEqual(loss.value.scalar, try golden.tensor("loss").scalars[0], accuracy: 1e-3)
        loss.backward()
        let params = Dictionary(uniqueKeysWithValues: model.namedParameters().map { ($0.name, $0.parameter) })
        for name in golden.names where name.hasPrefix("grad.") && !name.contains("embed_tokens") && name != "grad_total_norm" {
            let ref = try golden.tensor(name)
            let grad = try XCTUnwrap(params[String(name.dropFirst(5))]?.grad, name)
            let scale = ref.scalars.map(abs).max() ?? 1
            XCTAssertLessThan(grad.maxAbsDifference(ref.reshaped(grad.shape)) / scale, 1e-3, name)
        }
        // Rows of the (tied) embedding gradient.
        let rows = try golden.int64s("grad.model.embed_tokens.weight.rows")
        let refRows = try golden.tensor("grad.model.embed_tokens.weight.at_rows")
        let g = try XCTUnwrap(params["model.embed_tokens.weight"]?.grad)
        let width = g.shape[1]
        var ours: [Float] = []
        for r in rows { ours += Array(g.scalars[(Int(r) * width)..<((Int(r) + 1) * width)]) }
        let scale = refRows.scalars.map(abs).max() ?? 1
        XCTAssertLessThan(Tensor(shape: refRows.shape, data: ours).maxAbsDifference(refRows) / scale, 1e-3, "embedding gradient rows")
    }
}
