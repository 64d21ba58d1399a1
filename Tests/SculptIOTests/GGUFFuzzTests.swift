import Foundation
import XCTest
@testable import SculptIO
import SculptCore

/// Seeded random-mutation fuzzing of the GGUF reader: every mutated file must either parse
/// (and then every tensor must dequantize or throw) or throw a one-line GGUFError naming the
/// file. A trap would crash the test process.
final class GGUFFuzzTests: XCTestCase {
    private static let fileName = "fuzz.gguf"

    /// A valid seed file: metadata of every type and tensors of many types.
    private func seedFile() throws -> [UInt8] {
        var rng = SeededRNG(seed: 42)
        var w = try GGUFWriter(metadata: GGUFRoundTripTests.allTypesMetadata)
        try w.addMetadata("tokenizer.ggml.tokens", .array(.string, (0..<20).map { .string("tok\($0)") }))
        try w.addMetadata("tokenizer.ggml.scores", .array(.float32, (0..<20).map { .float32(Float($0) * -0.5) }))
        func randomTensor(_ shape: [Int]) -> Tensor { Tensor.randomNormal(shape, using: &rng) }
        func randomBytes(_ n: Int) -> [UInt8] { (0..<n).map { _ in UInt8.random(in: 0...255, using: &rng) } }
        try w.addTensor("f32", randomTensor([2, 8]))
        try w.addTensor("f16", randomTensor([3, 4]), as: .f16)
        try w.addTensor("bf16", randomTensor([4]), as: .bf16)
        try w.addTensor("q8_0", randomTensor([2, 64]), as: .q8_0)
        try w.addTensor("q4_0", randomTensor([1, 32]), as: .q4_0)
        try w.addTensor("q4_1", randomTensor([2, 32]), as: .q4_1)
        for (t, rows) in [(GGMLType.q4_K, 1), (.q5_K, 1), (.q6_K, 2), (.q2_K, 1), (.q3_K, 1), (.q8_K, 1)] {
            // Random scale bytes can be f16 NaN/Inf; dequantizing must still not trap.
            try w.addTensor("raw.\(t.name)", shape: [rows, 256], type: t, bytes: randomBytes(rows * t.bytesPerBlock))
        }
        try w.addTensor("raw.Q5_0", shape: [32], type: .q5_0, bytes: randomBytes(22))
        try w.addTensor("raw.Q5_1", shape: [32], type: .q5_1, bytes: randomBytes(24))
        try w.addTensor("raw.I32", shape: [3], type: .i32, bytes: randomBytes(12))
        try w.addTensor("raw.IQ4_NL", shape: [32], type: .iq4_NL, bytes: randomBytes(18))
        return w.encoded()
    }

    private func mutate(_ input: [UInt8], _ rng: inout SeededRNG) -> [UInt8] {
        var b = input
        let extremes64: [UInt64] = [0, 1, 2, 31, 32, 255, 1 << 32, 1 << 60, UInt64(Int.max) - 31, UInt64(Int.max), .max - 31, .max]
        let extremes32: [UInt32] = [0, 1, 2, 3, 4, 5, 9, 12, 13, 16, 30, 31, 39, 99, 1 << 31, .max]
        let steps = Int.random(in: 1...4, using: &rng)
        for _ in 0..<steps {
            guard !b.isEmpty else { b = Array("GGUF".utf8); continue }
            let at = Int.random(in: 0..<b.count, using: &rng)
            switch Int.random(in: 0..<8, using: &rng) {
            case 0: b[at] ^= UInt8(1) << UInt8.random(in: 0..<8, using: &rng)
            case 1: b[at] = UInt8.random(in: 0...255, using: &rng)
            case 2: b.insert(contentsOf: (0..<Int.random(in: 1...8, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }, at: at)
            case 3: b.removeSubrange(at..<min(b.count, at + Int.random(in: 1...16, using: &rng)))
            case 4: b.removeSubrange(at..<b.count)
            case 5, 6:
                // Overwrite 8 bytes (often at a header count) with an extreme u64.
                let pos = Int.random(in: 0..<4, using: &rng) == 0 ? [8, 16][Int.random(in: 0..<2, using: &rng)] : at
                let v = extremes64.randomElement(using: &rng)!
                for k in 0..<8 where pos + k < b.count { b[pos + k] = UInt8(truncatingIfNeeded: v >> (8 * UInt64(k))) }
            default:
                let v = extremes32.randomElement(using: &rng)!
                for k in 0..<4 where at + k < b.count { b[at + k] = UInt8(truncatingIfNeeded: v >> (8 * UInt32(k))) }
            }
        }
        return b
    }

    func testMutatedFilesParseOrThrowButNeverCrash() throws {
        let seed = try seedFile()
        let baseline = try GGUFFile(bytes: seed, name: Self.fileName)
        XCTAssertEqual(baseline.tensors.count, 16)
        for info in baseline.tensors where info.type.canDequantize { _ = try baseline.tensor(info.name) }

        var rng = SeededRNG(seed: 20_240_601)
        var parsed = 0, refused = 0, tensorErrors = 0
        let start = Date()
        for _ in 0..<2000 {
            let bytes = mutate(seed, &rng)
            do {
                let f = try GGUFFile(bytes: bytes, name: Self.fileName)
                parsed += 1
                for key in f.metadataKeys { _ = f.metadata[key]?.description }
                for info in f.tensors {
                    XCTAssertLessThanOrEqual(info.fileRange.upperBound, bytes.count)
                    XCTAssertEqual(try f.rawData(info.name).count, info.byteCount)
                    do {
                        let t = try f.tensor(info.name)
                        XCTAssertEqual(t.count, info.elementCount)
                    } catch let e as GGUFError {
                        tensorErrors += 1
                        XCTAssertTrue(e.description.hasPrefix(Self.fileName + ": "), e.description)
                    }
                }
            } catch let e as GGUFError {
                refused += 1
                let text = e.description
                XCTAssertTrue(text.hasPrefix(Self.fileName + ": "), text)
                XCTAssertFalse(text.contains("\n"), text)
            }
        }
        XCTAssertEqual(parsed + refused, 2000)
        XCTAssertGreaterThan(parsed, 50, "some mutations (e.g. inside tensor data) leave the file valid")
        XCTAssertGreaterThan(refused, 500)
        print("GGUF fuzz: \(parsed) parsed, \(refused) refused, \(tensorErrors) tensor errors in \(String(format: "%.2f", Date().timeIntervalSince(start))) s")
    }
}
