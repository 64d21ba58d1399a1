import XCTest
import Foundation
import SculptCore
import SculptNN
import SculptIO
import SculptTestSupport
@testable import SculptModels

func tinyBertConfig(layers: Int = 2, hidden: Int = 16, heads: Int = 4, ffn: Int = 24) -> BertConfig {
    BertConfig(hiddenSize: hidden, numHiddenLayers: layers, numAttentionHeads: heads, intermediateSize: ffn, vocabSize: 40, maxPositionEmbeddings: 16)
}

func randomTokens(batch: Int, sequence: Int, vocab: Int, seed: UInt64, padLast: Int = 0) -> TokenizedBatch {
    var rng = SeededRNG(seed: seed)
    let ids = (0..<(batch * sequence)).map { _ in Int32(rng.next() % UInt64(vocab)) }
    var mask = [Int32](repeating: 1, count: batch * sequence)
    for i in 0..<padLast { mask[(batch - 1) * sequence + sequence - 1 - i] = 0 }
    return TokenizedBatch(batchSize: batch, sequenceLength: sequence, inputIds: ids, attentionMask: mask)
}

final class LoRAAdapterTests: XCTestCase {
    /// Gives every adapter a non-zero B so a round trip is not trivially "all zeros".
    func perturb(_ model: any Module, seed: UInt64) {
        var rng = SeededRNG(seed: seed)
        for (_, l) in model.loraLayers() { l.lora!.b.value = Tensor.randomNormal(l.lora!.b.shape, std: 0.1, using: &rng) }
    }

    func testSaveLoadRoundTripInPEFTLayout() throws {
        let model = try BertModel(config: tinyBertConfig(), withPooler: false, seed: 1)
        model.eval()
        var rng = SeededRNG(seed: 2)
        let names = try applyLoRA(to: model, rank: 4, alpha: 8, dropout: 0.1, rng: &rng)
        XCTAssertEqual(names.count, 4, "query and value of 2 layers")
        perturb(model, seed: 3)
        let tokens = randomTokens(batch: 2, sequence: 5, vocab: 40, seed: 4, padLast: 2)
        let expected = withoutGradients { model(tokens) }.value

        let dir = SharedData.temporaryDirectory("lora").appendingPathComponent("adapter")
        defer { try? FileManager.default.removeItem(at: dir.deletingLastPathComponent()) }
        let config = PEFTLoRAConfig(r: 4, loraAlpha: 8, loraDropout: 0.1, targetModules: .names(["query", "value"]), baseModelNameOrPath: "tiny")
        try LoRAAdapterFiles.save(model, config: config, to: dir)

        let file = try SafeTensorsFile(path: dir.appendingPathComponent("adapter_model.safetensors").path)
        XCTAssertTrue(file.contains("base_model.model.encoder.layer.0.attention.self.query.lora_A.weight"))
        XCTAssertTrue(file.contains("base_model.model.encoder.layer.1.attention.self.value.lora_B.weight"))
        XCTAssertEqual(file.names.count, 8)
        XCTAssertEqual(try file.info("base_model.model.encoder.layer.0.attention.self.query.lora_A.weight").shape, [4, 16])
        let json = try String(contentsOf: dir.appendingPathComponent("adapter_config.json"), encoding: .utf8)
        XCTAssertTrue(json.contains("\"peft_type\" : \"LORA\""), json)
        XCTAssertEqual(try PEFTLoRAConfig.load(from: dir.appendingPathComponent("adapter_config.json")), config)

        let fresh = try BertModel(config: tinyBertConfig(), withPooler: false, seed: 1)
        fresh.eval()
        let (loaded, modules) = try LoRAAdapterFiles.load(from: dir, into: fresh)
        XCTAssertEqual(loaded, config)
        XCTAssertEqual(modules, names)
        XCTAssertEqual(withoutGradients { fresh(tokens) }.value.maxAbsDifference(expected), 0)

        // Merged model = adapter model.
        fresh.mergeAndUnloadLoRA()
        XCTAssertTrue(fresh.loraLayers().isEmpty)
        XCTAssertEqual(withoutGradients { fresh(tokens) }.value.maxAbsDifference(expected), 0, accuracy: 1e-5)
    }

    /// With at least as many token rows as hidden units, query/key/value run as one stacked
    /// GEMM with the adapters' updates added into their columns. Against the merged model
    /// (W + s·B·A, every weight trainable): the same output, and dA = s·Bᵀ·dW, dB = s·dW·Aᵀ
    /// for every adapter (layer 0's included, so the gradient crossed the whole encoder).
    func testStackedProjectionsWithAdaptersMatchTheMergedModel() throws {
        func adapted() throws -> BertModel {
            let model = try BertModel(config: tinyBertConfig(), withPooler: false, seed: 1)
            model.eval()  // no dropout, so the merged model is the same function
            var rng = SeededRNG(seed: 2)
            _ = try applyLoRA(to: model, rank: 4, alpha: 8, dropout: 0.1, rng: &rng)
            perturb(model, seed: 3)
            return model
        }
        let tokens = randomTokens(batch: 2, sequence: 9, vocab: 40, seed: 4, padLast: 2)   // 18 rows ≥ 16 hidden: stacked
        let model = try adapted(), merged = try adapted()
        merged.mergeAndUnloadLoRA()
        merged.setTrainable(true)
        let y = model(tokens), yMerged = merged(tokens)
        XCTAssertLessThan(y.value.maxAbsDifference(yMerged.value), 1e-5)
        y.applying(.tanh).sum().backward()
        yMerged.applying(.tanh).sum().backward()
        var mergedLinears: [String: Linear] = [:]
        merged.visitModules { n, m in if let l = m as? Linear { mergedLinears[n] = l } }
        for (name, layer) in model.loraLayers() {
            let l = try XCTUnwrap(layer.lora), dW = try XCTUnwrap(mergedLinears[name]?.weight.grad, name)
            let dA = Tensor.matmul(l.b.value, dW, transposeA: true).affine(l.scaling)
            let dB = Tensor.matmul(dW, l.a.value, transposeB: true).affine(l.scaling)
            XCTAssertLessThan(try XCTUnwrap(l.a.grad).maxAbsDifference(dA), 1e-4 * max(1, dA.maxAbs()), "\(name) A")
            XCTAssertLessThan(try XCTUnwrap(l.b.grad).maxAbsDifference(dB), 1e-4 * max(1, dB.maxAbs()), "\(name) B")
        }
        XCTAssertNil(model.encoder.layers[0].attention.selfAttention.key.weight.grad, "the base stays frozen")
    }

    func testModulesToSaveAndConfigErrors() throws {
        let dir = temporaryDirectory()
        let cfg = PEFTLoRAConfig(r: 2, loraAlpha: 16, targetModules: .regex(#".*\.query"#), useRSLoRA: true, modulesToSave: ["pooler"], taskType: "FEATURE_EXTRACTION")
        let back = try PEFTLoRAConfig.parse(try cfg.jsonData())
        XCTAssertEqual(back, cfg)
        let model = try BertModel(config: tinyBertConfig(), withPooler: true, seed: 1)
        var rng = SeededRNG(seed: 1)
        try applyLoRA(to: model, targetModules: .regex(#".*\.query"#), rank: 2, alpha: 16, useRSLoRA: true, modulesToSave: ["pooler"], rng: &rng)
        try LoRAAdapterFiles.save(model, config: cfg, to: dir)
        let file = try SafeTensorsFile(path: dir.appendingPathComponent("adapter_model.safetensors").path)
        XCTAssertTrue(file.contains("base_model.model.pooler.dense.weight"))
        XCTAssertEqual(file.names.count, 6)

        for bad in [#"{"peft_type": "IA3", "r": 2, "target_modules": ["q"]}"#, #"{"peft_type": "LORA", "r": 0, "target_modules": ["q"]}"#,
                    #"{"peft_type": "LORA", "r": 2, "target_modules": ["q"], "use_dora": true}"#,
                    #"{"peft_type": "LORA", "r": 2, "target_modules": ["q"], "bias": "all"}"#,
                    #"{"peft_type": "LORA", "r": 2, "target_modules": ["q"], "rank_pattern": {"q": 4}}"#,
                    #"{"peft_type": "LORA", "r": 2, "target_modules": 3}"#] {
            XCTAssertThrowsError(try PEFTLoRAConfig.parse(Data(bad.utf8)), bad)
        }
        // A PEFT-written config with its many extra keys parses.
        let peftStyle = #"{"alpha_pattern": {}, "auto_mapping": null, "base_model_name_or_path": null, "bias": "none", "fan_in_fan_out": false, "inference_mode": true, "init_lora_weights": true, "layers_pattern": null, "layers_to_transform": null, "loftq_config": {}, "lora_alpha": 8, "lora_dropout": 0.0, "megatron_config": null, "modules_to_save": ["classifier"], "peft_type": "LORA", "r": 4, "rank_pattern": {}, "revision": null, "target_modules": ["query", "value"], "task_type": null, "use_dora": false, "use_rslora": false}"#
        XCTAssertEqual(try PEFTLoRAConfig.parse(Data(peftStyle.utf8)).modulesToSave, ["classifier"])
    }

    /// Writes a fixture for scripts/peft_crosscheck.py (not a CI check): runs only when
    /// SCULPT_PEFT_FIXTURE names an output directory. MiniLM + LoRA (query, value, r 8,
    /// alpha 16) with random B, the adapter in PEFT's layout, token ids and Sculpt's output.
    func testWritePEFTCrossCheckFixture() throws {
        guard let out = ProcessInfo.processInfo.environment["SCULPT_PEFT_FIXTURE"], !out.isEmpty else {
            throw XCTSkip("set SCULPT_PEFT_FIXTURE to write the PEFT cross-check fixture")
        }
        let dir = URL(fileURLWithPath: out)
        let modelDir = try SharedData.require("models/all-MiniLM-L6-v2")
        let (model, _) = try BertModel.load(directory: modelDir)
        model.eval()
        var rng = SeededRNG(seed: 11)
        try applyLoRA(to: model, targetModules: .names(["query", "value"]), rank: 8, alpha: 16, rng: &rng)
        perturb(model, seed: 12)
        try LoRAAdapterFiles.save(model, config: PEFTLoRAConfig(r: 8, loraAlpha: 16, targetModules: .names(["query", "value"]),
                                                                 baseModelNameOrPath: modelDir.path), to: dir.appendingPathComponent("adapter"))
        let tokens = randomTokens(batch: 2, sequence: 12, vocab: 30000, seed: 13, padLast: 3)
        let hidden = withoutGradients { model(tokens) }.value
        model.mergeLoRA()
        let merged = withoutGradients { model(tokens) }.value
        var w = SafeTensorsWriter()
        try w.add(name: "input_ids", int64s: tokens.inputIds.map(Int64.init), shape: [2, 12])
        try w.add(name: "attention_mask", int64s: tokens.attentionMask.map(Int64.init), shape: [2, 12])
        try w.add(name: "last_hidden_state", floats: hidden.scalars, shape: hidden.shape)
        try w.add(name: "merged_last_hidden_state", floats: merged.scalars, shape: merged.shape)
        try w.write(to: dir.appendingPathComponent("sculpt_outputs.safetensors"))
    }
}
