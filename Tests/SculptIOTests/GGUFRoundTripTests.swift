#if canImport(SculptTestSupport)
import SculptTestSupport
#endif
import Foundation
import XCTest
@testable import SculptIO
import SculptCore

/// GGUFWriter → GGUFFile round trips: every metadata type, nested arrays, every writable
/// tensor type, and the quantizers' bytes against plain-loop re-implementations of ggml's
/// reference quantizers.
final class GGUFRoundTripTests: XCTestCase {
    static let allTypesMetadata: [(String, GGUFValue)] = [
        ("general.architecture", .string("llama")),
        ("test.u8", .uint8(250)),
        ("test.i8", .int8(-120)),
        ("test.u16", .uint16(65_000)),
        ("test.i16", .int16(-32_000)),
        ("test.u32", .uint32(4_000_000_000)),
        ("test.i32", .int32(-2_000_000_000)),
        ("test.f32", .float32(1.5e-5)),
        ("test.bool", .bool(true)),
        ("test.bool_false", .bool(false)),
        ("test.string", .string("héllo \"wörld\"\n日本")),
        ("test.empty_string", .string("")),
        ("test.u64", .uint64(UInt64.max)),
        ("test.i64", .int64(Int64.min)),
        ("test.f64", .float64(-3.141592653589793)),
        ("test.strings", .array(.string, [.string("a"), .string(""), .string("<|im_start|>")])),
        ("test.ints", .array(.int32, [.int32(1), .int32(-2), .int32(3)])),
        ("test.floats", .array(.float32, [.float32(0.5), .float32(-1)])),
        ("test.empty", .array(.uint64, [])),
        ("test.nested", .array(.array, [
            .array(.uint8, [.uint8(1), .uint8(2)]),
            .array(.string, [.string("x")]),
            .array(.array, [.array(.bool, [.bool(true), .bool(false)])]),
        ])),
    ]

    func testMetadataOfEveryTypeRoundTrips() throws {
        let w = try GGUFWriter(metadata: Self.allTypesMetadata)
        let f = try GGUFFile(bytes: w.encoded(), name: "meta.gguf")
        XCTAssertEqual(f.version, 3)
        XCTAssertEqual(f.metadataKeys, Self.allTypesMetadata.map { $0.0 })
        for (k, v) in Self.allTypesMetadata { XCTAssertEqual(f.metadata[k], v, k) }
        XCTAssertTrue(f.tensors.isEmpty)
        XCTAssertEqual(f["test.u32"]?.int, 4_000_000_000)
        XCTAssertNil(f["test.u64"]?.int, "UInt64.max does not fit Int")
        XCTAssertEqual(f["test.strings"]?.stringArray, ["a", "", "<|im_start|>"])
        XCTAssertEqual(f["test.ints"]?.intArray, [1, -2, 3])
        XCTAssertEqual(f["test.floats"]?.floatArray, [0.5, -1])
        XCTAssertEqual(f["test.f32"]?.float, 1.5e-5)
        XCTAssertEqual(f["test.bool"]?.bool, true)
        XCTAssertEqual(f["test.empty"]?.arrayElementType, .uint64)
        XCTAssertEqual(f["test.nested"]?.array?.count, 3)
        XCTAssertEqual(f["test.strings"]?.description, "[string × 3: \"a\", \"\", \"<|im_start|>\"]")
        XCTAssertEqual(f["test.empty"]?.description, "[uint64 × 0]")
        XCTAssertEqual(GGUFValue.array(.int32, (0..<20).map { .int32(Int32($0)) }).description,
                       "[int32 × 20: 0, 1, 2, 3, 4, 5, 6, 7, …]")
    }

    func testWriterRefusesInconsistentInput() throws {
        var w = GGUFWriter()
        try w.addMetadata("a", .uint8(1))
        assertGGUFError(["\"a\"", "twice"]) { try w.addMetadata("a", .uint8(2)) }
        assertGGUFError(["\"b\"", "array of int32 holds a string at index 1"]) {
            try w.addMetadata("b", .array(.int32, [.int32(1), .string("x")]))
        }
        assertGGUFError(["general.alignment", "power of two"]) { try w.addMetadata("general.alignment", .uint32(48)) }
        assertGGUFError(["\"t\"", "not a multiple of the Q8_0 block size 32"]) {
            try w.addTensor("t", Tensor(shape: [2, 31], repeating: 1), as: .q8_0)
        }
        assertGGUFError(["\"u\"", "Q4_K"]) { try w.addTensor("u", Tensor(shape: [256], repeating: 1), as: .q4_K) }
        assertGGUFError(["\"r\"", "10 bytes given", "takes 18"]) { try w.addTensor("r", shape: [32], type: .q4_0, bytes: [UInt8](repeating: 0, count: 10)) }
        try w.addTensor("ok", Tensor(shape: [1], repeating: 1))
        assertGGUFError(["\"ok\"", "twice"]) { try w.addTensor("ok", Tensor(shape: [1], repeating: 1)) }
        assertGGUFError(["\"z\"", "below 1"]) { try w.addTensor("z", Tensor(shape: [0, 3])) }
    }

    private func ramp(_ n: Int, seed: UInt64) -> [Float] {
        var rng = SeededRNG(seed: seed)
        return (0..<n).map { _ in rng.nextNormal() * 0.7 }
    }

    func testTensorsOfEveryWritableTypeRoundTripToDisk() throws {
        let dir = temporaryDirectory()
        let url = dir.appendingPathComponent("t.gguf")
        let shape = [3, 96]  // 3 rows of 3 blocks each
        let values = ramp(shape[0] * shape[1], seed: 7)
        let source = Tensor(shape: shape, data: values)
        var w = try GGUFWriter(metadata: [("general.architecture", .string("test")), ("general.alignment", .uint32(64))])
        let types: [GGMLType] = [.f32, .f16, .bf16, .q8_0, .q4_0, .q4_1]
        for t in types { try w.addTensor("w.\(t.name)", source, as: t) }
        try w.addTensor("scalar", Tensor(scalar: 2.5))
        try w.addTensor("vec", Tensor(shape: [5], data: [1, 2, 3, 4, 5]), as: .f16)
        try w.addTensor("cube", Tensor(shape: [2, 3, 4, 32], data: ramp(768, seed: 9)), as: .bf16)
        try w.write(to: url)

        let f = try GGUFFile(path: url.path)
        XCTAssertEqual(f.alignment, 64)
        XCTAssertEqual(f.fileSize, try Data(contentsOf: url).count)
        XCTAssertEqual(f.tensors.map(\.name), types.map { "w.\($0.name)" } + ["scalar", "vec", "cube"])
        for info in f.tensors {
            XCTAssertEqual(info.offset % 64, 0, info.name)
            XCTAssertEqual(info.fileOffset % 64, 0, info.name)
        }
        for t in types {
            let info = try XCTUnwrap(f.tensorInfo("w.\(t.name)"))
            XCTAssertEqual(info.type, t)
            XCTAssertEqual(info.ne, [96, 3])
            XCTAssertEqual(info.shape, shape)
            XCTAssertEqual(info.byteCount, t.rowBytes(96)! * 3)
            let back = try f.tensor("w.\(t.name)")
            XCTAssertEqual(back.shape, shape)
            let got = back.scalars
            for b in 0..<(values.count / 32) {
                let block = values[(32 * b)..<(32 * b + 32)]
                let amax = block.map(abs).max()!
                let lo = block.min()!, hi = block.max()!
                for i in (32 * b)..<(32 * b + 32) {
                    let err = abs(got[i] - values[i])
                    switch t {
                    case .f32: XCTAssertEqual(got[i], values[i])
                    case .f16: XCTAssertLessThanOrEqual(err, abs(values[i]) * 0x1p-11 + 0x1p-24)
                    case .bf16: XCTAssertLessThanOrEqual(err, abs(values[i]) * 0x1p-8)
                    // Half a grid step, plus the f16 rounding of the scale (and min) times the
                    // largest quant; Q4_0 clamps +amax's opposite to 7·d, a full step.
                    case .q8_0: XCTAssertLessThanOrEqual(err, amax / 127 * (0.5 + 127 * 0x1p-11) + 1e-6)
                    case .q4_0: XCTAssertLessThanOrEqual(err, amax / 8 * (1 + 8 * 0x1p-11) + 1e-6)
                    case .q4_1: XCTAssertLessThanOrEqual(err, (hi - lo) / 15 * (0.5 + 15 * 0x1p-11) + abs(lo) * 0x1p-11 + 1e-6)
                    default: XCTFail()
                    }
                }
            }
            // The stored bytes are the quantizer's, and dequantizing them matches tensor().
            let raw = try f.rawData("w.\(t.name)")
            XCTAssertEqual(Array(raw), try quantized(t, values))
        }
        XCTAssertEqual(try f.tensor("scalar").shape, [])
        XCTAssertEqual(try f.tensor("scalar").scalars, [2.5])
        XCTAssertEqual(f.tensorInfo("scalar")?.ne, [])
        XCTAssertEqual(try f.tensor("vec").scalars, [1, 2, 3, 4, 5])
        XCTAssertEqual(try f.tensor("cube").shape, [2, 3, 4, 32])
        XCTAssertEqual(f.tensorInfo("cube")?.ne, [32, 4, 3, 2])
        XCTAssertEqual(try f.tensor("cube").scalars, floatsFromBFloat16Bits(bfloat16Bits(ramp(768, seed: 9))))
        assertGGUFError(["t.gguf", "no tensor named \"missing\""]) { _ = try f.tensor("missing") }

        // Partial row conversion agrees with the whole tensor.
        var rows = [Float](repeating: 0, count: 2 * 96)
        try rows.withUnsafeMutableBufferPointer { try f.dequantizeRows("w.Q4_1", rows: 1..<3, into: $0.baseAddress!) }
        XCTAssertEqual(rows, Array(try f.tensor("w.Q4_1").scalars[96...]))
        assertGGUFError(["rows 2..<4 out of range"]) {
            try rows.withUnsafeMutableBufferPointer { try f.dequantizeRows("w.Q4_1", rows: 2..<4, into: $0.baseAddress!) }
        }
    }

    func testLargeTensorDequantizesInParallelLikeSerially() throws {
        let values = ramp(512 * 256, seed: 3)
        var w = GGUFWriter()
        try w.addTensor("big", Tensor(shape: [512, 256], data: values), as: .q4_0)
        let f = try GGUFFile(bytes: w.encoded(), name: "big.gguf")
        let parallel = try withThreads(4) { try f.tensor("big") }.scalars
        let serial = try withThreads(1) { try f.tensor("big") }.scalars
        XCTAssertEqual(parallel, serial)
        XCTAssertEqual(serial, try dequantized(.q4_0, quantized(.q4_0, values), count: values.count))
    }

    // MARK: - Quantizer bytes against plain loops

    /// ggml's quantize_row_q8_0_ref, spelled out as plainly as possible.
    private func plainQ8_0(_ x: [Float]) -> [UInt8] {
        var out: [UInt8] = []
        for b in 0..<(x.count / 32) {
            let block = Array(x[(b * 32)..<(b * 32 + 32)])
            var amax: Float = 0
            for v in block { amax = max(amax, abs(v)) }
            let d = amax / 127
            let id: Float = d != 0 ? 1 / d : 0
            out += f16Bytes(d)
            for v in block { out.append(UInt8(bitPattern: Int8((v * id).rounded(.toNearestOrAwayFromZero)))) }
        }
        return out
    }

    /// ggml's quantize_row_q4_0_ref.
    private func plainQ4_0(_ x: [Float]) -> [UInt8] {
        var out: [UInt8] = []
        for b in 0..<(x.count / 32) {
            let block = Array(x[(b * 32)..<(b * 32 + 32)])
            var amax: Float = 0, mx: Float = 0
            for v in block where amax < abs(v) { amax = abs(v); mx = v }
            let d = mx / -8
            let id: Float = d != 0 ? 1 / d : 0
            out += f16Bytes(d)
            for j in 0..<16 {
                let lo = min(15, Int(Int8(block[j] * id + 8.5)))
                let hi = min(15, Int(Int8(block[j + 16] * id + 8.5)))
                out.append(UInt8(lo | (hi << 4)))
            }
        }
        return out
    }

    /// ggml's quantize_row_q4_1_ref.
    private func plainQ4_1(_ x: [Float]) -> [UInt8] {
        var out: [UInt8] = []
        for b in 0..<(x.count / 32) {
            let block = Array(x[(b * 32)..<(b * 32 + 32)])
            let lo = block.min()!, hi = block.max()!
            let d = (hi - lo) / 15
            let id: Float = d != 0 ? 1 / d : 0
            out += f16Bytes(d) + f16Bytes(lo)
            for j in 0..<16 {
                let a = min(15, Int(Int8((block[j] - lo) * id + 0.5)))
                let c = min(15, Int(Int8((block[j + 16] - lo) * id + 0.5)))
                out.append(UInt8(a | (c << 4)))
            }
        }
        return out
    }

    func testQuantizerBytesEqualPlainReferenceLoops() throws {
        for seed in 0..<20 as Range<UInt64> {
            var values = ramp(96, seed: seed)  // 3 blocks
            if seed == 1 { values.replaceSubrange(32..<64, with: repeatElement(0, count: 32)) }  // an all-zero block
            if seed == 2 { values[5] = -values.map(abs).max()! * 2 }  // a negative extreme
            XCTAssertEqual(try quantized(.q8_0, values), plainQ8_0(values), "seed \(seed)")
            XCTAssertEqual(try quantized(.q4_0, values), plainQ4_0(values), "seed \(seed)")
            XCTAssertEqual(try quantized(.q4_1, values), plainQ4_1(values), "seed \(seed)")
        }
        // A hand-checked Q8_0 block: amax 127 gives d = 1 (f16 0x3C00) and q = round(x).
        var block = [Float](repeating: 0, count: 32)
        block[0] = 127; block[1] = -2.5; block[2] = 2.5; block[3] = 0.49
        let q = try quantized(.q8_0, block)
        XCTAssertEqual(Array(q[0..<6]), [0x00, 0x3C, 127, UInt8(bitPattern: -3), 3, 0])
    }

    func testQuantizersNeverTrapOnNonFiniteInput() throws {
        var values = ramp(64, seed: 5)
        values[3] = .nan; values[40] = .infinity; values[41] = -.infinity
        for t in [GGMLType.q8_0, .q4_0, .q4_1, .f16, .bf16] {
            let bytes = try quantized(t, values)
            XCTAssertEqual(bytes.count, t.rowBytes(64))
            _ = try dequantized(t, bytes, count: 64)
        }
        assertGGUFError(["not a multiple of the Q8_0 block size"]) { _ = try quantized(.q8_0, [1, 2, 3]) }
        assertGGUFError(["Q6_K", "not supported"]) { _ = try quantized(.q6_K, [Float](repeating: 0, count: 256)) }
    }
}
