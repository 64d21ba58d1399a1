import XCTest
import Foundation
import SculptCore
@testable import SculptIO
@testable import SculptModels
import SculptTestSupport

/// The decoder commands on a tiny GGUF made here from the tiny HF llama (weights permuted as
/// llama.cpp's converter permutes q/k, a byte-level tokenizer in the metadata): loading
/// un-permutes to transformers' weights, `convert` writes a directory that loads back to the
/// same logits, and broken files and configs give one `Error:` line naming file and field.
final class DecoderCLITests: XCTestCase {
    var dir: URL!
    override func setUpWithError() throws { dir = SharedData.temporaryDirectory("sculpt-decoder-cli") }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    func sculpt(_ args: [String]) throws -> (status: Int32, stdout: String, stderr: String) { try SculptCLI.run(args) }

    /// A byte-level vocabulary of 512 tokens: the 256 byte characters, a few merges, three specials.
    static func tokenizerMetadata() -> [(String, GGUFValue)] {
        var tokens = BPEByteLevel.byteToScalar.map { String($0) }
        let h = String(BPEByteLevel.byteToScalar[Int(UInt8(ascii: "h"))]), e = String(BPEByteLevel.byteToScalar[Int(UInt8(ascii: "e"))])
        let l = String(BPEByteLevel.byteToScalar[Int(UInt8(ascii: "l"))]), space = String(BPEByteLevel.byteToScalar[32])
        let merges = ["\(h) \(e)", "\(l) \(l)", "\(h)\(e) \(l)\(l)", "\(space) \(h)"]
        tokens += ["\(h)\(e)", "\(l)\(l)", "\(h)\(e)\(l)\(l)", "\(space)\(h)"]
        let specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
        tokens += specials
        while tokens.count < 512 { tokens.append("<unused\(tokens.count)>") }
        var types = [Int32](repeating: 1, count: 512)
        for i in 260..<263 { types[i] = 3 }
        for i in 263..<512 { types[i] = 5 }
        let template = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
        return [
            ("tokenizer.ggml.model", .string("gpt2")), ("tokenizer.ggml.pre", .string("smollm")),
            ("tokenizer.ggml.tokens", .array(.string, tokens.map { .string($0) })),
            ("tokenizer.ggml.token_type", .array(.int32, types.map { .int32($0) })),
            ("tokenizer.ggml.merges", .array(.string, merges.map { .string($0) })),
            ("tokenizer.ggml.bos_token_id", .uint32(261)), ("tokenizer.ggml.eos_token_id", .uint32(262)),
            ("tokenizer.ggml.padding_token_id", .uint32(262)), ("tokenizer.chat_template", .string(template)),
        ]
    }

    /// The tiny llama as a GGUF; `edit` may change metadata before the tensors are added.
    func makeGGUF(_ name: String = "tiny.gguf", dropMerges: Bool = false, architecture: String = "llama") throws -> (url: URL, model: DecoderLM) {
        let (model, _) = try DecoderLM.load(directory: try SharedData.require("models/tiny-decoders/llama"))
        let c = model.config
        var meta: [(String, GGUFValue)] = [
            ("general.architecture", .string(architecture)), ("general.name", .string("tiny")),
            ("llama.block_count", .uint32(UInt32(c.numHiddenLayers))), ("llama.context_length", .uint32(UInt32(c.maxPositionEmbeddings))),
            ("llama.embedding_length", .uint32(UInt32(c.hiddenSize))), ("llama.feed_forward_length", .uint32(UInt32(c.intermediateSize))),
            ("llama.attention.head_count", .uint32(UInt32(c.numAttentionHeads))), ("llama.attention.head_count_kv", .uint32(UInt32(c.numKeyValueHeads))),
            ("llama.attention.key_length", .uint32(UInt32(c.headDim))), ("llama.rope.freq_base", .float32(Float(c.ropeTheta))),
            ("llama.attention.layer_norm_rms_epsilon", .float32(Float(c.rmsNormEps))),
        ]
        meta += Self.tokenizerMetadata().filter { !(dropMerges && $0.0 == "tokenizer.ggml.merges") }
        var w = try GGUFWriter(metadata: meta)
        let names: [(String, String)] = [("model.embed_tokens.weight", "token_embd.weight"), ("model.norm.weight", "output_norm.weight"), ("lm_head.weight", "output.weight")]
        for (hf, g) in names { try w.addTensor(g, model.stateDict()[hf]!, as: hf.hasSuffix("embed_tokens.weight") ? .q8_0 : .f32) }
        for i in 0..<c.numHiddenLayers {
            let p = "model.layers.\(i)."
            let map = [("self_attn.q_proj.weight", "attn_q.weight"), ("self_attn.k_proj.weight", "attn_k.weight"), ("self_attn.v_proj.weight", "attn_v.weight"),
                       ("self_attn.o_proj.weight", "attn_output.weight"), ("mlp.gate_proj.weight", "ffn_gate.weight"), ("mlp.up_proj.weight", "ffn_up.weight"),
                       ("mlp.down_proj.weight", "ffn_down.weight"), ("input_layernorm.weight", "attn_norm.weight"), ("post_attention_layernorm.weight", "ffn_norm.weight")]
            for (hf, g) in map {
                var t = model.stateDict()[p + hf]!
                if hf.hasPrefix("self_attn.q_proj") { t = DecoderGGUF.permute(t, heads: c.numAttentionHeads) }
                if hf.hasPrefix("self_attn.k_proj") { t = DecoderGGUF.permute(t, heads: c.numKeyValueHeads) }
                try w.addTensor("blk.\(i).\(g)", t)
            }
        }
        let url = dir.appendingPathComponent(name)
        try w.write(to: url)
        return (url, model)
    }

    func testGGUFLoadsToTransformersWeightsAndTokenizes() throws {
        let (url, reference) = try makeGGUF()
        let bundle = try DecoderBundle.load(path: url.path)
        let refState = reference.stateDict()
        for (name, t) in bundle.model.stateDict() where !name.contains("embed_tokens") {
            XCTAssertEqual(t.maxAbsDifference(refState[name]!), 0, "\(name) un-permuted exactly")
        }
        // Q8_0 embedding: within the format's error.
        XCTAssertLessThan(bundle.model.model.embedTokens.weight.value.maxAbsDifference(refState["model.embed_tokens.weight"]!), 0.01)
        // "hello" → hell·o; " hell" → h+e, l+l, he+ll first, so the space stays alone (rank order).
        XCTAssertEqual(bundle.tokenizer.encode("hello hell", addSpecialTokens: false), [258, 111, 32, 258])
        XCTAssertEqual(bundle.tokenizer.encode(" he", addSpecialTokens: false), [32, 256])
        XCTAssertEqual(try bundle.encodeChat([ChatMessage(role: "user", content: "he")], addGenerationPrompt: true).first, 261)
    }

    func testInfoTokenizeGenerateScoreOnAGGUF() throws {
        let (url, _) = try makeGGUF()
        let info = try sculpt(["info", url.path, "--json"])
        XCTAssertEqual(info.status, 0, info.stderr)
        let json = try JSONSerialization.jsonObject(with: Data(info.stdout.utf8)) as! [String: Any]
        XCTAssertEqual(json["layers"] as? Int, 3)
        XCTAssertEqual(json["kv_heads"] as? Int, 2)
        XCTAssertEqual(json["total_parameters"] as? Int, DecoderCost(config: try DecoderConfig(gguf: GGUFFile(path: url.path))).parameters)
        XCTAssertTrue((json["storage_types"] as? [String])?.contains { $0.hasPrefix("Q8_0") } ?? false, info.stdout)

        let texts = dir.appendingPathComponent("texts.txt")
        try "hello\nhe ll\n".write(to: texts, atomically: true, encoding: .utf8)
        let tok = try sculpt(["tokenize", url.path, "--texts-file", texts.path, "--json"])
        XCTAssertEqual(tok.status, 0, tok.stderr)
        XCTAssertEqual(tok.stdout.split(separator: "\n").first, #"{"input_ids":[258,111]}"#)

        let chat = dir.appendingPathComponent("chat.jsonl")
        try #"{"messages":[{"role":"user","content":"he"}]}"#.write(to: chat, atomically: true, encoding: .utf8)
        let rendered = try sculpt(["tokenize", url.path, "--texts-file", chat.path, "--chat", "--json"])
        XCTAssertEqual(rendered.status, 0, rendered.stderr)
        XCTAssertTrue(rendered.stdout.hasPrefix(#"{"input_ids":[261,"#), rendered.stdout)

        let gen = try sculpt(["generate", url.path, "--prompt", "hello", "--max-new-tokens", "4", "--json"])
        XCTAssertEqual(gen.status, 0, gen.stderr)
        let g = try JSONSerialization.jsonObject(with: Data(gen.stdout.utf8)) as! [String: Any]
        XCTAssertEqual((g["output_ids"] as? [Int])?.count, 4)
        XCTAssertEqual(g["input_ids"] as? [Int], [258, 111])

        let score = try sculpt(["score", url.path, "--texts-file", texts.path, "--json", "--out", dir.appendingPathComponent("s.safetensors").path])
        XCTAssertEqual(score.status, 0, score.stderr)
        let first = try JSONSerialization.jsonObject(with: Data(score.stdout.split(separator: "\n")[0].utf8)) as! [String: Any]
        XCTAssertEqual(first["tokens"] as? Int, 2)
        let nll = try XCTUnwrap(first["nll"] as? Double)
        XCTAssertEqual(first["perplexity"] as! Double, Foundation.exp(nll), accuracy: 1e-6 * Foundation.exp(nll))
        let saved = try SafeTensorsFile(path: dir.appendingPathComponent("s.safetensors").path)
        XCTAssertEqual(try saved.int64s("text0.input_ids"), [258, 111])
        XCTAssertEqual(try saved.info("text1.last_hidden_state").shape, [3, 64])
        XCTAssertEqual(try saved.info("text0.last_logits").shape, [512])
    }

    func testConvertWritesADirectoryThatLoadsBackToTheSameLogits() throws {
        let (url, _) = try makeGGUF()
        let out = dir.appendingPathComponent("hf")
        let r = try sculpt(["convert", url.path, "--out", out.path])
        XCTAssertEqual(r.status, 0, r.stderr)
        for f in ["model.safetensors", "config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json", "chat_template.jinja"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: out.appendingPathComponent(f).path), f)
        }
        let a = try DecoderBundle.load(path: url.path), b = try DecoderBundle.load(path: out.path)
        let ids: [Int32] = [258, 111, 32, 259, 101]
        let la = withoutGradients { a.model.logits(a.model.hiddenStates(ids: ids, batch: 1, sequence: ids.count)).value }
        let lb = withoutGradients { b.model.logits(b.model.hiddenStates(ids: ids, batch: 1, sequence: ids.count)).value }
        XCTAssertEqual(la.maxAbsDifference(lb), 0)
        for text in ["hello world", "he ll <|im_end|> 123"] {
            XCTAssertEqual(a.tokenizer.encode(text), b.tokenizer.encode(text), text)
        }
        XCTAssertEqual(try b.encodeChat([ChatMessage(role: "user", content: "x")], addGenerationPrompt: true),
                       try a.encodeChat([ChatMessage(role: "user", content: "x")], addGenerationPrompt: true))
        // An existing --out is refused (and left alone) unless --force.
        let again = try sculpt(["convert", url.path, "--out", out.path])
        XCTAssertEqual(again.status, 1)
        XCTAssertTrue(again.stderr.hasPrefix("Error: ") && again.stderr.contains("already exists"), again.stderr)
        XCTAssertEqual(try sculpt(["convert", url.path, "--out", out.path, "--force"]).status, 0)
    }

    func assertOneErrorLine(_ args: [String], naming fragments: [String], file: StaticString = #filePath, line: UInt = #line) throws {
        let r = try sculpt(args)
        XCTAssertEqual(r.status, 1, "\(args): \(r.stderr)", file: file, line: line)
        XCTAssertEqual(r.stderr.split(separator: "\n").count, 1, "one line: \(r.stderr)", file: file, line: line)
        XCTAssertTrue(r.stderr.hasPrefix("Error: "), r.stderr, file: file, line: line)
        for f in fragments { XCTAssertTrue(r.stderr.contains(f), "\(f) in \(r.stderr)", file: file, line: line) }
    }

    func testBrokenGGUFsAndConfigsGiveOneLineNamingFileAndField() throws {
        let (url, _) = try makeGGUF()
        let bytes = try Data(contentsOf: url)
        let truncated = dir.appendingPathComponent("truncated.gguf")
        try bytes.prefix(bytes.count / 2).write(to: truncated)
        let magic = dir.appendingPathComponent("magic.gguf")
        var m = bytes; m.replaceSubrange(0..<4, with: Data("GGUX".utf8)); try m.write(to: magic)
        for cmd in [["info"], ["generate", "--prompt", "hi"], ["bench", "model"]] {
            try assertOneErrorLine(cmd.prefix(cmd[0] == "bench" ? 2 : 1) + [truncated.path] + cmd.dropFirst(cmd[0] == "bench" ? 2 : 1), naming: ["truncated.gguf"])
            try assertOneErrorLine(cmd.prefix(cmd[0] == "bench" ? 2 : 1) + [magic.path] + cmd.dropFirst(cmd[0] == "bench" ? 2 : 1), naming: ["magic.gguf", "GGUF"])
        }
        // A tensor type ggml does not know, and a tensor beyond the end of the file: patch the
        // first tensor's info (name, n_dims, dims, type, offset) in place.
        let file = try GGUFFile(path: url.path)
        let first = file.tensors[0]
        let header = try Data(contentsOf: url)
        let nameBytes = Array(first.name.utf8)
        guard let at = header.range(of: Data(nameBytes))?.upperBound else { return XCTFail("tensor name not found") }
        let typeOffset = at + 4 + 8 * first.ne.count
        var unknown = header
        unknown.replaceSubrange(typeOffset..<(typeOffset + 4), with: withUnsafeBytes(of: UInt32(99).littleEndian) { Data($0) })
        let unknownURL = dir.appendingPathComponent("unknown-type.gguf"); try unknown.write(to: unknownURL)
        try assertOneErrorLine(["info", unknownURL.path], naming: ["unknown-type.gguf", first.name, "99"])
        var beyond = header
        beyond.replaceSubrange((typeOffset + 4)..<(typeOffset + 12), with: withUnsafeBytes(of: UInt64(1 << 40).littleEndian) { Data($0) })
        let beyondURL = dir.appendingPathComponent("beyond.gguf"); try beyond.write(to: beyondURL)
        try assertOneErrorLine(["info", beyondURL.path], naming: ["beyond.gguf", first.name])

        let (noMerges, _) = try makeGGUF("no-merges.gguf", dropMerges: true)
        try assertOneErrorLine(["generate", noMerges.path, "--prompt", "hi"], naming: ["no-merges.gguf", "tokenizer.ggml.merges"])
        let (arch, _) = try makeGGUF("arch.gguf", architecture: "gpt2")
        try assertOneErrorLine(["info", arch.path], naming: ["arch.gguf", "general.architecture", "gpt2"])

        // An HF directory whose config names an unknown model_type, and a tokenizer without merges.
        let hf = dir.appendingPathComponent("hf-bad")
        try FileManager.default.createDirectory(at: hf, withIntermediateDirectories: true)
        let src = try SharedData.require("models/tiny-decoders/llama")
        for f in ["config.json", "model.safetensors"] { try FileManager.default.copyItem(at: src.appendingPathComponent(f), to: hf.appendingPathComponent(f)) }
        var config = try JSONSerialization.jsonObject(with: Data(contentsOf: hf.appendingPathComponent("config.json"))) as! [String: Any]
        config["model_type"] = "gpt2"
        try JSONSerialization.data(withJSONObject: config).write(to: hf.appendingPathComponent("config.json"))
        try assertOneErrorLine(["info", hf.path], naming: ["config.json", "model_type", "gpt2"])
        config["model_type"] = "llama"
        try JSONSerialization.data(withJSONObject: config).write(to: hf.appendingPathComponent("config.json"))
        try #"{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}, "pre_tokenizer": {"type": "ByteLevel"}, "decoder": {"type": "ByteLevel"}}"#
            .write(to: hf.appendingPathComponent("tokenizer.json"), atomically: true, encoding: .utf8)
        let texts = dir.appendingPathComponent("t.txt"); try "a\n".write(to: texts, atomically: true, encoding: .utf8)
        try assertOneErrorLine(["tokenize", hf.path, "--texts-file", texts.path], naming: ["tokenizer.json", "merges"])
        // Bad arguments are named.
        try assertOneErrorLine(["generate", url.path, "--prompt", "hi", "--max-new-tokens", "100000"], naming: ["context"])
        try assertOneErrorLine(["info", dir.appendingPathComponent("nope.gguf").path], naming: ["nope.gguf"])
    }
}
