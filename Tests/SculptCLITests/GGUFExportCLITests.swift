import XCTest
import Foundation
import SculptCore
@testable import SculptIO
@testable import SculptModels
import SculptTestSupport

/// GGUF export (`sculpt convert … --out F.gguf`, `sculpt quantize`): a GGUF written from a GGUF
/// copies unchanged tensors byte for byte; one written from a Hugging Face directory (LLaMA with
/// permuted q/k, Qwen2 with biases, Qwen3 with q/k norms) loads back to the same logits; the
/// tokenizer metadata round-trips; quantized blocks are the reference quantizer's; bad requests
/// give one `Error:` line.
extension DecoderCLITests {
    func logits(_ b: DecoderBundle, _ ids: [Int32]) -> Tensor {
        withoutGradients { b.model.logits(b.model.hiddenStates(ids: ids, batch: 1, sequence: ids.count)).value }
    }

    /// Every tensor of `a` in `b` with the same type, shape and bytes.
    func assertSameTensors(_ a: URL, _ b: URL, file: StaticString = #filePath, line: UInt = #line) throws {
        let fa = try GGUFFile(path: a.path), fb = try GGUFFile(path: b.path)
        XCTAssertEqual(Set(fa.tensors.map(\.name)), Set(fb.tensors.map(\.name)), file: file, line: line)
        for t in fa.tensors {
            let u = try fb.info(t.name)
            XCTAssertEqual(t.type, u.type, t.name, file: file, line: line)
            XCTAssertEqual(t.shape, u.shape, t.name, file: file, line: line)
            XCTAssertEqual(try fa.withRawData(t.name) { Array($0) }, try fb.withRawData(t.name) { Array($0) }, t.name, file: file, line: line)
        }
    }

    func testConvertToGGUFCopiesAGGUFAndRoundTripsThroughADirectory() throws {
        let (url, _) = try makeGGUF()
        let copy = dir.appendingPathComponent("copy.gguf")
        let r = try sculpt(["convert", url.path, "--out", copy.path, "--json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let report = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [String: Any]
        let entries = report["tensors"] as! [[String: Any]]
        // Matrices are copied from the file; vectors are F32 either way (same bytes, checked below).
        let matrices = entries.filter { !($0["name"] as! String).hasSuffix("norm.weight") }
        XCTAssertEqual(matrices.count, 3 * 7 + 2, "seven projections per layer, the embedding and the untied head")
        XCTAssertTrue(matrices.allSatisfy { $0["copied"] as? Bool == true }, "\(matrices.filter { $0["copied"] as? Bool != true })")
        try assertSameTensors(url, copy)
        // The tokenizer metadata is the source's (the pre-tokenizer found by behaviour).
        let src = try GGUFFile(path: url.path), out = try GGUFFile(path: copy.path)
        for key in ["tokenizer.ggml.tokens", "tokenizer.ggml.token_type", "tokenizer.ggml.merges", "tokenizer.ggml.bos_token_id",
                    "tokenizer.ggml.eos_token_id", "tokenizer.chat_template", "llama.block_count", "llama.attention.head_count_kv"] {
            XCTAssertEqual(src[key], out[key], key)
        }

        // GGUF → directory → GGUF: float32 everywhere, q/k permuted back into llama.cpp's order,
        // so the tensors equal the source's dequantized ones and the logits are the same.
        let hf = dir.appendingPathComponent("hf"), back = dir.appendingPathComponent("back.gguf")
        XCTAssertEqual(try sculpt(["convert", url.path, "--out", hf.path]).status, 0)
        let r2 = try sculpt(["convert", hf.path, "--out", back.path])
        XCTAssertEqual(r2.status, 0, r2.stderr)
        let fb = try GGUFFile(path: back.path)
        for t in src.tensors {
            XCTAssertEqual(try fb.info(t.name).type, .f32, t.name)
            XCTAssertEqual(try src.tensor(t.name).maxAbsDifference(try fb.tensor(t.name)), 0, t.name)
        }
        let ids: [Int32] = [258, 111, 32, 259, 101, 261]
        let a = try DecoderBundle.load(path: url.path), b = try DecoderBundle.load(path: back.path)
        XCTAssertEqual(logits(a, ids).maxAbsDifference(logits(b, ids)), 0)
        for text in ["hello world", "he ll <|im_end|> 123", BPETokenizer.ggufProbeText] {
            XCTAssertEqual(a.tokenizer.encode(text), b.tokenizer.encode(text), text)
        }
    }

    /// Qwen2 (q/k/v biases, no permutation) and Qwen3 (q/k norms) from Hugging Face
    /// directories, with the tokenizer files of the tiny GGUF.
    func testQwenDirectoriesExportToGGUFWithTheSameLogits() throws {
        let (url, _) = try makeGGUF()
        let hf = dir.appendingPathComponent("hf")
        XCTAssertEqual(try sculpt(["convert", url.path, "--out", hf.path]).status, 0)
        for family in ["llama", "qwen2", "qwen3"] {
            let src = try SharedData.require("models/tiny-decoders/\(family)")
            let model = dir.appendingPathComponent(family)
            try FileManager.default.createDirectory(at: model, withIntermediateDirectories: true)
            for f in ["config.json", "model.safetensors"] {
                try FileManager.default.copyItem(at: src.appendingPathComponent(f), to: model.appendingPathComponent(f))
            }
            for f in ["tokenizer.json", "tokenizer_config.json", "chat_template.jinja"] {
                try FileManager.default.copyItem(at: hf.appendingPathComponent(f), to: model.appendingPathComponent(f))
            }
            let out = dir.appendingPathComponent("\(family).gguf")
            let r = try sculpt(["convert", model.path, "--out", out.path])
            XCTAssertEqual(r.status, 0, r.stderr)
            let file = try GGUFFile(path: out.path)
            XCTAssertEqual(file["general.architecture"]?.string, family)
            XCTAssertEqual(file.tensorInfo("blk.0.attn_q.bias") != nil, family == "qwen2", family)
            XCTAssertEqual(file.tensorInfo("blk.0.attn_q_norm.weight") != nil, family == "qwen3", family)
            let a = try DecoderBundle.load(path: model.path), b = try DecoderBundle.load(path: out.path)
            XCTAssertEqual(a.model.config.headDim, b.model.config.headDim, family)
            XCTAssertEqual(a.model.config.tieWordEmbeddings, b.model.config.tieWordEmbeddings, family)
            let ids: [Int32] = [258, 111, 32, 259, 101, 7, 300]
            XCTAssertEqual(logits(a, ids).maxAbsDifference(logits(b, ids)), 0, family)
        }
    }

    func testQuantizeWritesReferenceBlocksAndKeepsWhatIsAsked() throws {
        let (url, _) = try makeGGUF()
        let hf = dir.appendingPathComponent("hf")
        XCTAssertEqual(try sculpt(["convert", url.path, "--out", hf.path]).status, 0)
        let reference = try DecoderBundle.load(path: hf.path)
        let ids: [Int32] = [258, 111, 32, 259, 101, 261, 40]
        let exact = logits(reference, ids)
        for (type, tolerance) in [("q8_0", Float(0.05)), ("q4_0", 0.5), ("q4_1", 0.5), ("bf16", 0.05), ("f16", 0.01)] {
            let out = dir.appendingPathComponent("\(type).gguf")
            let r = try sculpt(["quantize", hf.path, "--type", type, "--keep", "*ffn_down*", "--out", out.path])
            XCTAssertEqual(r.status, 0, r.stderr)
            let file = try GGUFFile(path: out.path)
            let want: GGMLType = ["q8_0": .q8_0, "q4_0": .q4_0, "q4_1": .q4_1, "bf16": .bf16, "f16": .f16][type]!
            for (name, p) in reference.model.namedParameters() {
                let g = DecoderGGUF.ggufName(name)!
                let info = try file.info(g)
                let expected: GGMLType = p.value.shape.count == 1 || g.contains("ffn_down") ? .f32 : want
                XCTAssertEqual(info.type, expected, "\(type) \(g)")
                guard expected == want, p.value.shape.count == 2 else { continue }
                // The bytes are the reference quantizer's on the (permuted) float weights.
                var w = p.value
                if name.contains("q_proj") { w = DecoderGGUF.permute(w, heads: reference.model.config.numAttentionHeads) }
                if name.contains("k_proj") { w = DecoderGGUF.permute(w, heads: reference.model.config.numKeyValueHeads) }
                let cols = w.shape[1], rowBytes = want.rowBytes(cols)!
                var bytes = [UInt8](repeating: 0, count: rowBytes * w.shape[0])
                try w.withUnsafePointer { src in
                    try bytes.withUnsafeMutableBytes { dst in
                        for row in 0..<w.shape[0] { try quantizeRow(type: want, from: src + row * cols, count: cols, into: dst.baseAddress! + row * rowBytes) }
                    }
                }
                XCTAssertEqual(try file.withRawData(g) { Array($0) }, bytes, "\(type) \(g)")
            }
            XCTAssertEqual(file["general.file_type"]?.int, DecoderGGUF.fileType(want), type)
            let q = try DecoderBundle.load(path: out.path)
            let diff = logits(q, ids).maxAbsDifference(exact)
            XCTAssertGreaterThan(diff, 0, "\(type) changes the weights")
            XCTAssertLessThan(diff, tolerance, type)
        }
        // bf16 into a directory: BF16 safetensors that load to the bf16-rounded weights.
        let bdir = dir.appendingPathComponent("bf16-hf")
        XCTAssertEqual(try sculpt(["quantize", hf.path, "--type", "bf16", "--out", bdir.path]).status, 0)
        let st = try SafeTensorsFile(path: bdir.appendingPathComponent("model.safetensors").path)
        XCTAssertEqual(try st.info("model.layers.0.mlp.up_proj.weight").dtype, .bf16)
        let viaGGUF = try DecoderBundle.load(path: dir.appendingPathComponent("bf16.gguf").path)
        let viaDir = try DecoderBundle.load(path: bdir.path)
        XCTAssertEqual(viaDir.model.model.layers[0].mlp.upProj.weight.value.maxAbsDifference(viaGGUF.model.model.layers[0].mlp.upProj.weight.value), 0)
    }

    /// Decoding reads a GGUF's Q8_0/Q4_0/Q4_1 matrices in their blocks: the logits of a few
    /// rows equal the float path's (within float rounding), prefill and training keep the
    /// floats, a changed weight is not attached, and greedy generation is unchanged.
    func testBlockWeightsDecodeAsTheFloats() throws {
        let (url, _) = try makeGGUF()
        let hf = dir.appendingPathComponent("hf")
        XCTAssertEqual(try sculpt(["convert", url.path, "--out", hf.path]).status, 0)
        for type in ["q8_0", "q4_0", "q4_1"] {
            let out = dir.appendingPathComponent("blocks-\(type).gguf")
            XCTAssertEqual(try sculpt(["quantize", hf.path, "--type", type, "--out", out.path]).status, 0)
            let floats = try DecoderBundle.load(path: out.path), blocks = try DecoderBundle.load(path: out.path)
            let file = try GGUFFile(path: out.path)
            // 7 projections × 3 layers and the untied head.
            XCTAssertEqual(try DecoderGGUF.attachBlockWeights(blocks.model, file: file), 22, type)
            var differs = false
            for ids in [[Int32(258)], [258, 111, 32], Array(repeating: 259, count: 8)] {
                let a = logits(floats, ids), b = logits(blocks, ids)
                XCTAssertLessThan(a.maxAbsDifference(b), 1e-4, "\(type) \(ids.count) rows")
                differs = differs || a.maxAbsDifference(b) > 0
            }
            // The block path ran (its summation order differs from the GEMM's in the last bits).
            XCTAssertTrue(differs, type)
            // Nine rows (a prefill) take the floats: identical to the float model.
            let nine: [Int32] = [258, 111, 32, 259, 101, 7, 300, 40, 41]
            XCTAssertEqual(logits(floats, nine).maxAbsDifference(logits(blocks, nine)), 0, type)
            let options = GenerationOptions(maxNewTokens: 12, stopTokenIds: [])
            let prompts: [[Int32]] = [[258, 111], [259, 32, 101, 7]]
            XCTAssertEqual(DecoderGenerator(model: blocks.model).generate(prompts: prompts, options: options),
                           DecoderGenerator(model: floats.model).generate(prompts: prompts, options: options), type)
            XCTAssertEqual(try sculpt(["generate", out.path, "--prompt", "hello", "--max-new-tokens", "4"]).status, 0)
            // A weight that no longer equals the file's is not attached.
            let changed = try DecoderBundle.load(path: out.path)
            changed.model.model.layers[0].mlp.upProj.weight.value.storage.pointer[0] += 1
            XCTAssertEqual(try DecoderGGUF.attachBlockWeights(changed.model, file: file), 21, type)
            XCTAssertNil(changed.model.model.layers[0].mlp.upProj.blockWeight)
        }
    }

    func testQuantizeRefusalsAreOneLine() throws {
        let (url, _) = try makeGGUF()
        let out = dir.appendingPathComponent("q.gguf").path
        try assertOneErrorLine(["quantize", url.path, "--type", "q5_k", "--out", out], naming: ["--type", "q5_k", "q8_0"])
        try assertOneErrorLine(["quantize", url.path, "--type", "nf4", "--out", out], naming: ["nf4", "not implemented"])
        try assertOneErrorLine(["quantize", url.path, "--type", "q8_0", "--out", dir.appendingPathComponent("d").path], naming: ["q8_0", ".gguf"])
        try assertOneErrorLine(["quantize", dir.appendingPathComponent("nothing").path, "--type", "q8_0", "--out", out], naming: ["nothing"])
        XCTAssertFalse(FileManager.default.fileExists(atPath: out))
        XCTAssertEqual(try sculpt(["quantize", url.path, "--type", "q8_0", "--out", out]).status, 0)
        try assertOneErrorLine(["quantize", url.path, "--type", "q4_0", "--out", out], naming: [out, "already exists"])
        XCTAssertEqual(try GGUFFile(path: out).info("blk.0.ffn_up.weight").type, .q8_0, "the refused run left the file alone")
    }
}
