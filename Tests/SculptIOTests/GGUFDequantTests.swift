import Foundation
import XCTest
@testable import SculptIO
import SculptCore

/// Each dequantizer against hand-built blocks. Expected values come from literal hand
/// computations and from an element-by-element restatement of ggml's layout (a different
/// loop structure from the implementation's).
final class GGUFDequantTests: XCTestCase {
    func testQ4_0() throws {
        // d = 0.5; low nibble j, high nibble 15 - j → x[j] = (j - 8)/2, x[j+16] = (7 - j)/2.
        let block = f16Bytes(0.5) + (0..<16).map { UInt8($0) | UInt8(15 - $0) << 4 }
        let y = try dequantized(.q4_0, block + block, count: 64)
        XCTAssertEqual(Array(y[0..<4]), [-4, -3.5, -3, -2.5])
        XCTAssertEqual(y[15], 3.5)
        XCTAssertEqual(y[16], 3.5)
        XCTAssertEqual(y[31], -4)
        for j in 0..<16 {
            XCTAssertEqual(y[j], Float(j - 8) * 0.5)
            XCTAssertEqual(y[j + 16], Float(7 - j) * 0.5)
        }
        XCTAssertEqual(Array(y[32...]), Array(y[..<32]))
    }

    func testQ4_1() throws {
        // d = 0.25, m = -1; low nibble j, high nibble 3j mod 16.
        let block = f16Bytes(0.25) + f16Bytes(-1) + (0..<16).map { UInt8($0) | UInt8((3 * $0) & 15) << 4 }
        let y = try dequantized(.q4_1, block, count: 32)
        XCTAssertEqual(y[0], -1)
        XCTAssertEqual(y[4], 0)
        XCTAssertEqual(y[15], 2.75)
        XCTAssertEqual(y[16 + 5], 2.75)
        XCTAssertEqual(y[16 + 6], -0.5)
        for j in 0..<16 {
            XCTAssertEqual(y[j], Float(j) * 0.25 - 1)
            XCTAssertEqual(y[j + 16], Float((3 * j) & 15) * 0.25 - 1)
        }
    }

    func testQ5_0() throws {
        // d = 2; fifth bits set for elements 0, 3, 16 and 31; low nibbles j (first half), 0 (second).
        let qh: UInt32 = 1 | 8 | 1 << 16 | 1 << 31
        var block = f16Bytes(2)
        withUnsafeBytes(of: qh.littleEndian) { block += $0 }
        block += (0..<16).map { UInt8($0) }
        let y = try dequantized(.q5_0, block, count: 32)
        XCTAssertEqual(y[0], 0)
        XCTAssertEqual(y[1], -30)
        XCTAssertEqual(y[3], 6)
        XCTAssertEqual(y[15], -2)
        XCTAssertEqual(y[16], 0)
        XCTAssertEqual(y[17], -32)
        XCTAssertEqual(y[30], -32)
        XCTAssertEqual(y[31], 0)
    }

    func testQ5_1() throws {
        // d = 0.5, m = 1; fifth bits set for the whole second half; low j, high 15 - j.
        var block = f16Bytes(0.5) + f16Bytes(1)
        withUnsafeBytes(of: UInt32(0xFFFF_0000).littleEndian) { block += $0 }
        block += (0..<16).map { UInt8($0) | UInt8(15 - $0) << 4 }
        let y = try dequantized(.q5_1, block, count: 32)
        for j in 0..<16 {
            XCTAssertEqual(y[j], Float(j) * 0.5 + 1)
            XCTAssertEqual(y[j + 16], Float(31 - j) * 0.5 + 1)
        }
        XCTAssertEqual(y[16], 16.5)
        XCTAssertEqual(y[31], 9)
    }

    func testQ8_0() throws {
        var qs = [Int8](repeating: 0, count: 32)
        qs[0] = -128; qs[1] = -1; qs[3] = 1; qs[4] = 127
        let block = f16Bytes(0.125) + qs.map { UInt8(bitPattern: $0) }
        let y = try dequantized(.q8_0, block, count: 32)
        XCTAssertEqual(Array(y[0..<5]), [-16, -0.125, 0, 0.125, 15.875])
    }

    /// The Q4_K / Q5_K scale bytes for sub-block scales [1, 2, 3, 4, 17, 33, 5, 63] and mins
    /// [0, 1, 2, 3, 20, 7, 36, 1], packed by hand: bytes 0–3 hold scales 0–3 in their low 6
    /// bits and the top 2 bits of scales 4–7; bytes 4–7 the same for mins; bytes 8–11 the low
    /// nibbles of scale (low) and min (high) 4–7.
    static let kScales: [UInt8] = [65, 130, 3, 196, 64, 1, 130, 3, 65, 113, 69, 31]
    static let kScale: [Float] = [1, 2, 3, 4, 17, 33, 5, 63]
    static let kMin: [Float] = [0, 1, 2, 3, 20, 7, 36, 1]
    /// 128 bytes of nibbles: low nibble i mod 16, high nibble (i / 8) mod 16.
    static let kNibbles: [UInt8] = (0..<128).map { UInt8($0 % 16) | UInt8(($0 / 8) % 16) << 4 }

    func testQ4_K() throws {
        let block = f16Bytes(1) + f16Bytes(0.5) + Self.kScales + Self.kNibbles
        XCTAssertEqual(block.count, 144)
        let y = try dequantized(.q4_K, block, count: 256)
        // Hand-computed: d·sc·q − dmin·m.
        XCTAssertEqual(y[0], 0)
        XCTAssertEqual(y[5], 5)
        XCTAssertEqual(y[32], -0.5)
        XCTAssertEqual(y[63], 5.5)
        XCTAssertEqual(y[64 + 10], 29)
        XCTAssertEqual(y[128 + 40], 293.5)
        XCTAssertEqual(y[192], -18)
        XCTAssertEqual(y[255], 944.5)
        for e in 0..<256 {
            let c = e / 64, w = e % 64
            let (q, s) = w < 32 ? (Int(Self.kNibbles[32 * c + w] & 15), 2 * c) : (Int(Self.kNibbles[32 * c + w - 32] >> 4), 2 * c + 1)
            XCTAssertEqual(y[e], Self.kScale[s] * Float(q) - 0.5 * Self.kMin[s], "element \(e)")
        }
    }

    func testQ5_K() throws {
        let qh: [UInt8] = (0..<32).map { UInt8(($0 * 7) & 0xFF) }
        let block = f16Bytes(1) + f16Bytes(0.5) + Self.kScales + qh + Self.kNibbles
        XCTAssertEqual(block.count, 176)
        let y = try dequantized(.q5_K, block, count: 256)
        XCTAssertEqual(y[0], 0)
        XCTAssertEqual(y[1], 17)
        XCTAssertEqual(y[33], 31.5)
        XCTAssertEqual(y[255], 1952.5)
        for e in 0..<256 {
            let c = e / 64, w = e % 64, l = w % 32
            let high = w >= 32
            let low = high ? Int(Self.kNibbles[32 * c + l] >> 4) : Int(Self.kNibbles[32 * c + l] & 15)
            let s = high ? 2 * c + 1 : 2 * c
            let fifth = (Int(qh[l]) >> s) & 1
            XCTAssertEqual(y[e], Self.kScale[s] * Float(low + 16 * fifth) - 0.5 * Self.kMin[s], "element \(e)")
        }
    }

    func testQ6_K() throws {
        let ql: [UInt8] = (0..<128).map { UInt8(($0 * 13) % 256) }
        let qh: [UInt8] = (0..<64).map { UInt8(($0 * 29 + 5) % 256) }
        let sc: [Int8] = (0..<16).map { Int8($0 - 8) }
        let block = ql + qh + sc.map { UInt8(bitPattern: $0) } + f16Bytes(0.5)
        XCTAssertEqual(block.count, 210)
        let y = try dequantized(.q6_K, block, count: 256)
        XCTAssertEqual(y[0], 64)
        XCTAssertEqual(y[1], -52)
        for e in 0..<256 {
            let h = e / 128, w = e % 128, quad = w / 32, l = w % 32
            let byte = ql[64 * h + l + (quad & 1) * 32]
            let low = quad < 2 ? Int(byte & 15) : Int(byte >> 4)
            let high = (Int(qh[32 * h + l]) >> (2 * quad)) & 3
            let q = (low | high << 4) - 32
            let scale = Float(sc[8 * h + l / 16 + 2 * quad])
            XCTAssertEqual(y[e], 0.5 * scale * Float(q), "element \(e)")
        }
    }

    func testQ2_K() throws {
        let scales: [UInt8] = (0..<16).map { UInt8($0) | UInt8(15 - $0) << 4 }
        let qs: [UInt8] = (0..<64).map { UInt8(($0 * 5 + 1) % 256) }
        let block = scales + qs + f16Bytes(0.5) + f16Bytes(0.25)
        XCTAssertEqual(block.count, 84)
        let y = try dequantized(.q2_K, block, count: 256)
        XCTAssertEqual(y[0], -3.75)
        XCTAssertEqual(y[16], -3)
        for e in 0..<256 {
            let h = e / 128, w = e % 128, j = w / 32, g = (w % 32) / 16, l = w % 16
            let q = (Int(qs[32 * h + 16 * g + l]) >> (2 * j)) & 3
            let s = Int(scales[8 * h + 2 * j + g])
            XCTAssertEqual(y[e], 0.5 * Float(s & 15) * Float(q) - 0.25 * Float(s >> 4), "element \(e)")
        }
    }

    func testQ3_K() throws {
        let s: [Int] = (0..<16).map { ($0 * 5 + 3) % 64 }  // 6-bit scales, used as s − 32
        // ggml's packing (quantize_row_q3_K_ref): bytes 0–7 low nibbles of scales j and j + 8;
        // bytes 8–11 the top two bits of scale j at bit 2·(j / 4) of byte 8 + j % 4.
        var packed = [UInt8](repeating: 0, count: 12)
        for j in 0..<16 {
            if j < 8 { packed[j] = UInt8(s[j] & 15) } else { packed[j - 8] |= UInt8((s[j] & 15) << 4) }
            packed[8 + j % 4] |= UInt8((s[j] >> 4) << (2 * (j / 4)))
        }
        let hmask: [UInt8] = (0..<32).map { UInt8(($0 * 53 + 7) % 256) }
        let qs: [UInt8] = (0..<64).map { UInt8(($0 * 11 + 2) % 256) }
        let block = hmask + qs + packed + f16Bytes(0.25)
        XCTAssertEqual(block.count, 110)
        let y = try dequantized(.q3_K, block, count: 256)
        XCTAssertEqual(y[0], -14.5)
        for e in 0..<256 {
            let h = e / 128, w = e % 128, j = w / 32, g = (w % 32) / 16, l = w % 16
            let low = (Int(qs[32 * h + 16 * g + l]) >> (2 * j)) & 3
            let hbit = (Int(hmask[16 * g + l]) >> (4 * h + j)) & 1
            let scale = s[8 * h + 2 * j + g] - 32
            XCTAssertEqual(y[e], 0.25 * Float(scale) * Float(low - (hbit == 1 ? 0 : 4)), "element \(e)")
        }
    }

    func testQ8_KAndPlainTypes() throws {
        var block: [UInt8] = []
        withUnsafeBytes(of: Float(0.5).bitPattern.littleEndian) { block += $0 }
        block += (0..<256).map { UInt8(bitPattern: Int8($0 - 128)) }
        block += [UInt8](repeating: 0xEE, count: 32)  // bsums, ignored
        let y = try dequantized(.q8_K, block, count: 256)
        for j in 0..<256 { XCTAssertEqual(y[j], Float(j - 128) * 0.5) }

        // Plain types, read from an odd address (unaligned loads).
        let values: [Float] = [1.5, -2, 0, 65504, -0.000061035156]
        var f16: [UInt8] = [0], bf16: [UInt8] = [0], f64: [UInt8] = [0], i16: [UInt8] = [0], i32: [UInt8] = [0]
        for v in values {
            f16 += f16Bytes(v)
            withUnsafeBytes(of: floatToBFloat16Bits(v).littleEndian) { bf16 += $0 }
            withUnsafeBytes(of: Double(v).bitPattern.littleEndian) { f64 += $0 }
        }
        for v in [Int16(-3), 7, 32767, -32768, 0] { withUnsafeBytes(of: v.littleEndian) { i16 += $0 } }
        for v in [Int32(-3), 7, 1 << 24, Int32.min, 0] { withUnsafeBytes(of: v.littleEndian) { i32 += $0 } }
        func at1(_ t: GGMLType, _ bytes: [UInt8]) throws -> [Float] {
            var out = [Float](repeating: 0, count: 5)
            try bytes.withUnsafeBytes { src in
                try out.withUnsafeMutableBufferPointer { try dequantizeRow(type: t, from: src.baseAddress! + 1, count: 5, into: $0.baseAddress!) }
            }
            return out
        }
        XCTAssertEqual(try at1(.f16, f16), values)
        XCTAssertEqual(try at1(.bf16, bf16), floatsFromBFloat16Bits(bfloat16Bits(values)))
        XCTAssertEqual(try at1(.f64, f64), values)
        XCTAssertEqual(try at1(.i16, i16), [-3, 7, 32767, -32768, 0])
        XCTAssertEqual(try at1(.i32, i32), [-3, 7, 16_777_216, -2_147_483_648, 0])
        XCTAssertEqual(try dequantized(.i8, [0xFF, 0x7F, 0x80], count: 3), [-1, 127, -128])
    }

    func testUnsupportedTypesAndBadCounts() throws {
        assertGGUFError(["IQ2_XXS", "not supported"]) { _ = try dequantized(.iq2_XXS, [UInt8](repeating: 0, count: 66), count: 256) }
        assertGGUFError(["Q8_1", "not supported"]) { _ = try dequantized(.q8_1, [UInt8](repeating: 0, count: 36), count: 32) }
        assertGGUFError(["33 elements is not a multiple of the Q4_0 block size 32"]) {
            _ = try dequantized(.q4_0, [UInt8](repeating: 0, count: 36), count: 33)
        }
        XCTAssertEqual(GGMLType(name: "q4_k"), .q4_K)
        XCTAssertEqual(GGMLType(name: "BF16"), .bf16)
        XCTAssertNil(GGMLType(name: "q4_2"))
        XCTAssertEqual(GGMLType.q6_K.rowBytes(512), 420)
        XCTAssertNil(GGMLType.q6_K.rowBytes(100))
        // Block geometry matches ggml's type traits.
        let expected: [GGMLType: (Int, Int)] = [.f32: (1, 4), .f16: (1, 2), .bf16: (1, 2), .q4_0: (32, 18), .q4_1: (32, 20),
                                                .q5_0: (32, 22), .q5_1: (32, 24), .q8_0: (32, 34), .q8_1: (32, 36),
                                                .q2_K: (256, 84), .q3_K: (256, 110), .q4_K: (256, 144), .q5_K: (256, 176),
                                                .q6_K: (256, 210), .q8_K: (256, 292), .iq4_NL: (32, 18), .iq4_XS: (256, 136)]
        for (t, (b, s)) in expected {
            XCTAssertEqual(t.blockSize, b, t.name)
            XCTAssertEqual(t.bytesPerBlock, s, t.name)
        }
    }
}
