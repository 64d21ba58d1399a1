#if canImport(SculptTestSupport)
import SculptTestSupport
#endif
import Foundation
import XCTest
@testable import SculptIO
import SculptCore

/// The real SmolLM2-135M-Instruct Q4_1 GGUF (fetched by shared/models/smollm2-135m-instruct/fetch.sh)
/// against the PyTorch reference embeddings in shared/goldens/smollm2/forward.safetensors.
final class GGUFModelTests: XCTestCase {
    private func modelPath() throws -> String { try SharedData.smolLM2GGUF() }

    func testSmolLM2HeaderAndEmbeddingRowsMatchReference() throws {
        let path = try modelPath()
        let goldens = try SharedData.require("goldens/smollm2/forward.safetensors")
        let start = Date()
        let f = try GGUFFile(path: path)
        let parseSeconds = Date().timeIntervalSince(start)

        XCTAssertEqual(f.version, 3)
        XCTAssertEqual(f["general.architecture"]?.string, "llama")
        XCTAssertEqual(f["llama.block_count"]?.int, 30)
        XCTAssertEqual(f["llama.embedding_length"]?.int, 576)
        XCTAssertEqual(f["llama.attention.head_count"]?.int, 9)
        XCTAssertEqual(f["llama.attention.head_count_kv"]?.int, 3)
        XCTAssertEqual(f["llama.rope.freq_base"]?.float, 100_000)
        XCTAssertEqual(f["tokenizer.ggml.model"]?.string, "gpt2")
        XCTAssertEqual(f["tokenizer.ggml.tokens"]?.stringArray?.count, 49152)
        XCTAssertEqual(f["tokenizer.ggml.merges"]?.array?.count, 48900)
        XCTAssertEqual(f["tokenizer.ggml.token_type"]?.arrayElementType, .int32)
        XCTAssertEqual(f.metadataKeys.count, 33)
        XCTAssertEqual(f.metadataKeys.first, "general.architecture")
        XCTAssertEqual(f.tensors.count, 272)
        var types: [GGMLType: Int] = [:]
        for t in f.tensors { types[t.type, default: 0] += 1 }
        XCTAssertEqual(types, [.q4_1: 210, .f32: 61, .q8_0: 1])

        let embd = try XCTUnwrap(f.tensorInfo("token_embd.weight"))
        XCTAssertEqual(embd.type, .q8_0)
        XCTAssertEqual(embd.ne, [576, 49152])
        XCTAssertEqual(embd.shape, [49152, 576])
        XCTAssertEqual(f.tensorInfo("blk.0.attn_k.weight")?.shape, [192, 576])
        XCTAssertEqual(f.tensorInfo("blk.0.attn_norm.weight")?.type, .f32)

        let t0 = Date()
        let table = try f.tensor("token_embd.weight")
        let embdSeconds = Date().timeIntervalSince(t0)
        XCTAssertEqual(table.shape, [49152, 576])

        let ref = try SafeTensorsFile(path: goldens.path)
        let ids = try ref.ints("text0.input_ids")
        let embeddings = try ref.floats("text0.embeddings")
        XCTAssertEqual(embeddings.count, ids.count * 576)
        let all = table.scalars
        for (row, id) in ids.enumerated() {
            for k in 0..<576 {
                XCTAssertEqual(all[id * 576 + k], embeddings[row * 576 + k], accuracy: 1e-5, "id \(id) element \(k)")
            }
        }
        // Row-wise conversion gives the same rows.
        var one = [Float](repeating: 0, count: 576)
        try one.withUnsafeMutableBufferPointer { try f.dequantizeRows("token_embd.weight", rows: ids[0]..<(ids[0] + 1), into: $0.baseAddress!) }
        XCTAssertEqual(one, Array(all[(ids[0] * 576)..<((ids[0] + 1) * 576)]))

        // Every tensor dequantizes; the Q4_1 weights and F32 norms are finite.
        let t1 = Date()
        var q41Elements = 0
        for info in f.tensors where info.type == .q4_1 || info.type == .f32 {
            let t = try f.tensor(info.name)
            XCTAssertEqual(t.shape, info.shape)
            if info.type == .q4_1 { q41Elements += t.count }
            XCTAssertTrue(t.withUnsafePointer { p in (0..<t.count).allSatisfy { p[$0].isFinite } }, info.name)
        }
        let allSeconds = Date().timeIntervalSince(t1)
        print(String(format: "SmolLM2 GGUF: header parsed in %.3f s; token_embd (Q8_0, %d M values) in %.3f s; all Q4_1+F32 tensors (%d M values) in %.3f s",
                     parseSeconds, table.count / 1_000_000, embdSeconds, q41Elements / 1_000_000, allSeconds))
    }
}
