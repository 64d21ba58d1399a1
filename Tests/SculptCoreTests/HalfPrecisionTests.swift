import XCTest
@testable import SculptCore

/// HalfReference conversions written the slow, obvious way in Double arithmetic (every Float,
/// binary16 and bfloat16 value and every intermediate here is exact in Double).
private enum HalfReference {
    static func float16Value(_ h: UInt16) -> Double {
        let sign: Double = (h & 0x8000) != 0 ? -1 : 1
        let e = Int((h >> 10) & 0x1F)
        let m = Double(h & 0x3FF)
        if e == 0x1F { return m == 0 ? sign * .infinity : .nan }
        if e == 0 { return sign * m * 0x1p-24 }
        return sign * (1 + m / 1024) * Double(sign: .plus, exponent: e - 15, significand: 1)
    }

    /// RNE rounding of a finite non-negative Double `a` to a multiple of `ulp`.
    static func roundToMultiple(_ a: Double, _ ulp: Double) -> Double {
        (a / ulp).rounded(.toNearestOrEven) * ulp
    }

    static func float16Bits(_ value: Float) -> UInt16? {  // nil: NaN (any NaN acceptable)
        if value.isNaN { return nil }
        let sign: UInt16 = value.sign == .minus ? 0x8000 : 0
        let a = Double(value.magnitude)
        if a.isInfinite { return sign | 0x7C00 }
        if a < 0x1p-14 {
            let q = (a / 0x1p-24).rounded(.toNearestOrEven)  // 0...1024 (1024 = smallest normal)
            return sign | UInt16(q)
        }
        let e = Int(a.exponent)
        let r = roundToMultiple(a, Double(sign: .plus, exponent: e - 10, significand: 1))
        if r >= 65536 { return sign | 0x7C00 }
        let e2 = Int(r.exponent)
        let frac = r / Double(sign: .plus, exponent: e2, significand: 1) - 1  // [0, 1)
        return sign | UInt16(e2 + 15) << 10 | UInt16(frac * 1024)
    }

    static func bfloat16Bits(_ value: Float) -> UInt16? {
        if value.isNaN { return nil }
        let sign: Double = value.sign == .minus ? -1 : 1
        let a = Double(value.magnitude)
        if a.isInfinite { return value.bitPattern.high16 }
        let e = max(Int(a.exponent), -126)
        let r = roundToMultiple(a, Double(sign: .plus, exponent: e - 7, significand: 1))
        let f = Float(sign * r)  // exact or ±Inf (r == 2^128)
        return f.bitPattern.high16
    }
}

/// A tiny seeded generator local to these tests (SplitMix64).
private struct HalfTestRNG {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

private extension UInt32 {
    var high16: UInt16 { UInt16(truncatingIfNeeded: self >> 16) }
}

private func halfHex(_ v: UInt16) -> String { "0x" + String(v, radix: 16, uppercase: true) }
private func halfHex(_ v: UInt32) -> String { "0x" + String(v, radix: 16, uppercase: true) }

/// Float bit patterns that exercise every exponent, both signs and the rounding boundary of a
/// format that keeps `keptBits` of the 23 mantissa bits (all kept patterns when `allKept`).
private func halfTestFloats(keptBits: Int, seed: UInt64) -> [UInt32] {
    let dropped = 23 - keptBits
    let half: UInt32 = 1 << (dropped - 1)
    let lowMask: UInt32 = (1 << dropped) - 1
    var rng = HalfTestRNG(seed: seed)
    var out: [UInt32] = []
    let lows: [UInt32] = [0, 1, half - 1, half, half + 1, lowMask]
    for sign: UInt32 in [0, 0x8000_0000] {
        for exponent: UInt32 in 0...255 {
            for kept: UInt32 in 0..<(1 << keptBits) {
                let base = sign | exponent << 23 | kept << dropped
                for low in lows { out.append(base | low) }
                out.append(base | (UInt32(truncatingIfNeeded: rng.next()) & lowMask))
            }
        }
    }
    return out
}

final class HalfPrecisionTests: XCTestCase {
    // MARK: binary16

    func testAllFloat16PatternsRoundTripExactly() {
        var failures = 0
        for raw in 0...0xFFFF {
            let h = UInt16(raw)
            let f = float16BitsToFloat(h)
            let ref = HalfReference.float16Value(h)
            let back = floatToFloat16Bits(f)
            let isNaN = (h & 0x7C00) == 0x7C00 && (h & 0x03FF) != 0
            if isNaN {
                if !f.isNaN || (back & 0x7C00) != 0x7C00 || (back & 0x03FF) == 0 { failures += 1 }
                // Quiet NaNs keep their payload and sign exactly.
                if (h & 0x0200) != 0 && back != h { failures += 1 }
                if (back & 0x8000) != (h & 0x8000) { failures += 1 }
            } else {
                if Double(f) != ref || f.sign != (h & 0x8000 != 0 ? .minus : .plus) { failures += 1 }
                if back != h { failures += 1 }
            }
            if failures > 0 {
                XCTFail("pattern \(halfHex(h)): float \(f) (reference \(ref)), back \(halfHex(back))")
                return
            }
        }
    }

    func testFloatToFloat16MatchesReferenceOnStructuredAndRandomInputs() {
        var inputs = halfTestFloats(keptBits: 10, seed: 1)
        var rng = HalfTestRNG(seed: 2)
        for _ in 0..<1_000_000 { inputs.append(UInt32(truncatingIfNeeded: rng.next())) }
        var failures = 0
        for bits in inputs {
            let f = Float(bitPattern: bits)
            let got = floatToFloat16Bits(f)
            if let want = HalfReference.float16Bits(f) {
                if got != want {
                    failures += 1
                    if failures <= 5 { XCTFail("float \(halfHex(bits)) (\(f)): got \(halfHex(got)), want \(halfHex(want))") }
                }
            } else if (got & 0x7C00) != 0x7C00 || (got & 0x3FF) == 0 {
                failures += 1
                if failures <= 5 { XCTFail("NaN \(halfHex(bits)) became \(halfHex(got))") }
            }
        }
        XCTAssertEqual(failures, 0)
    }

    #if !(os(macOS) && arch(x86_64))
    /// The platform's Float16 (hardware F16C or compiler-rt) is an independent RNE oracle.
    func testFloatToFloat16AgreesWithPlatformFloat16() {
        let inputs = halfTestFloats(keptBits: 10, seed: 3)
        var failures = 0
        for bits in inputs {
            let f = Float(bitPattern: bits)
            if f.isNaN { continue }
            let got = floatToFloat16Bits(f)
            let want = Float16(f).bitPattern
            if got != want {
                failures += 1
                if failures <= 5 { XCTFail("float \(halfHex(bits)): got \(halfHex(got)), Float16 gives \(halfHex(want))") }
            }
        }
        XCTAssertEqual(failures, 0)
    }
    #endif

    func testFloat16SpecificCases() {
        let cases: [(Float, UInt16)] = [
            (0, 0x0000), (-0.0, 0x8000), (1, 0x3C00), (-2, 0xC000), (0.5, 0x3800),
            (65504, 0x7BFF),                     // max finite
            (65519.996, 0x7BFF),                 // just below the midpoint to 65536
            (65520, 0x7C00),                     // midpoint ties to even -> Inf
            (1e6, 0x7C00), (-1e6, 0xFC00),       // overflow
            (.infinity, 0x7C00), (-.infinity, 0xFC00),
            (0x1p-14, 0x0400),                   // smallest normal
            (0x1p-24, 0x0001),                   // smallest subnormal
            (0x1p-25, 0x0000),                   // half the smallest subnormal: tie to even (0)
            (0x1.8p-24, 0x0002),                 // 1.5 × min subnormal: tie to even (2)
            (0x1.0000_02p-25, 0x0001),           // just above the tie rounds up
            (-0x1p-30, 0x8000),                  // underflow keeps the sign
            (0x1.ff8p-15, 0x03FF),               // largest subnormal
            (0x1.ffcp-15, 0x0400),               // largest subnormal + half step: tie to even (min normal)
            // Ties in the normal range: 1 + 2^-11 is halfway between 1 and 1 + 2^-10.
            (1 + 0x1p-11, 0x3C00),               // tie, even mantissa stays
            (1 + 0x1p-10 + 0x1p-11, 0x3C02),     // tie, odd mantissa rounds up
            (1 + 0x1p-11 + 0x1p-23, 0x3C01),     // above the tie
            (2047 + 0.5, 0x6800),                // 2047.5: ulp 1 at 1024..2048; tie rounds to 2048
        ]
        for (value, want) in cases {
            XCTAssertEqual(floatToFloat16Bits(value), want, "\(value)")
        }
        XCTAssertTrue(floatToFloat16Bits(.nan) & 0x7FFF > 0x7C00)
        XCTAssertTrue(floatToFloat16Bits(-.nan) & 0x8000 != 0)
        // A signalling NaN whose payload lies only in the low bits must not become Inf.
        let snan = Float(bitPattern: 0x7F80_0001)
        XCTAssertTrue(snan.isNaN)
        XCTAssertTrue(float16BitsToFloat(floatToFloat16Bits(snan)).isNaN)
        XCTAssertEqual(float16BitsToFloat(0x0001), 0x1p-24)
        XCTAssertEqual(float16BitsToFloat(0x03FF), 0x1.ff8p-15)
        XCTAssertEqual(float16BitsToFloat(0x7C00), .infinity)
        XCTAssertEqual(float16BitsToFloat(0xFC00), -.infinity)
        XCTAssertEqual(float16BitsToFloat(0x8000).sign, .minus)
        XCTAssertTrue(float16BitsToFloat(0x7E00).isNaN)
        XCTAssertTrue(float16BitsToFloat(0x7C01).isNaN)
    }

    // MARK: bfloat16

    func testAllBFloat16PatternsRoundTripExactly() {
        for raw in 0...0xFFFF {
            let b = UInt16(raw)
            let f = bfloat16BitsToFloat(b)
            XCTAssertEqual(f.bitPattern, UInt32(b) << 16)
            let back = floatToBFloat16Bits(f)
            if f.isNaN {
                XCTAssertTrue(bfloat16BitsToFloat(back).isNaN, halfHex(b))
                if (b & 0x0040) != 0 { XCTAssertEqual(back, b) }  // quiet NaNs unchanged
            } else if back != b {
                XCTFail("bf16 \(halfHex(b)) round trip gave \(halfHex(back))")
                return
            }
        }
    }

    func testFloatToBFloat16MatchesReference() {
        var inputs = halfTestFloats(keptBits: 7, seed: 4)
        var rng = HalfTestRNG(seed: 5)
        for _ in 0..<1_000_000 { inputs.append(UInt32(truncatingIfNeeded: rng.next())) }
        var failures = 0
        for bits in inputs {
            let f = Float(bitPattern: bits)
            let got = floatToBFloat16Bits(f)
            if let want = HalfReference.bfloat16Bits(f) {
                if got != want {
                    failures += 1
                    if failures <= 5 { XCTFail("float \(halfHex(bits)): got \(halfHex(got)), want \(halfHex(want))") }
                }
            } else if !bfloat16BitsToFloat(got).isNaN {
                failures += 1
                if failures <= 5 { XCTFail("NaN \(halfHex(bits)) became \(halfHex(got))") }
            }
        }
        XCTAssertEqual(failures, 0)
    }

    func testBFloat16SpecificCases() {
        let cases: [(UInt32, UInt16)] = [
            (0x3F80_8000, 0x3F80),  // tie, even (…80) stays
            (0x3F81_8000, 0x3F82),  // tie, odd rounds up to even
            (0x3F80_8001, 0x3F81),  // above the tie
            (0x3F80_7FFF, 0x3F80),  // below the tie
            (0x7F7F_FFFF, 0x7F80),  // Float.greatestFiniteMagnitude overflows to Inf
            (0xFF7F_FFFF, 0xFF80),
            (0x7F7F_7FFF, 0x7F7F),  // largest that stays finite
            (0x7F80_0000, 0x7F80), (0xFF80_0000, 0xFF80),  // ±Inf
            (0x0000_0000, 0x0000), (0x8000_0000, 0x8000),  // ±0
            (0x0000_8000, 0x0000),  // subnormal tie to even (0)
            (0x0001_8000, 0x0002),  // subnormal tie to even (2)
            (0x007F_FFFF, 0x0080),  // largest float subnormal rounds to smallest normal
            (0x8000_0001, 0x8000),  // tiny negative keeps the sign
        ]
        for (bits, want) in cases {
            XCTAssertEqual(floatToBFloat16Bits(Float(bitPattern: bits)), want, halfHex(bits))
        }
        // NaNs whose payload lies only in the low 16 bits must stay NaN, not become Inf.
        for nanBits: UInt32 in [0x7F80_0001, 0xFF80_0001, 0x7FC0_0000, 0x7FFF_FFFF] {
            let out = floatToBFloat16Bits(Float(bitPattern: nanBits))
            XCTAssertTrue(bfloat16BitsToFloat(out).isNaN, halfHex(nanBits))
            XCTAssertEqual(out & 0x8000, UInt16(nanBits >> 16) & 0x8000)
        }
    }

    // MARK: buffers

    func testBufferConversionsMatchScalar() {
        var rng = HalfTestRNG(seed: 6)
        let count = 10_007
        var values = (0..<count).map { _ in Float(bitPattern: UInt32(truncatingIfNeeded: rng.next())) }
        values += [0, -0.0, .infinity, -.infinity, .nan, 65520, 0x1p-25, 0x1p-133]
        let h = float16Bits(values)
        let b = bfloat16Bits(values)
        XCTAssertEqual(h, values.map(floatToFloat16Bits))
        XCTAssertEqual(b, values.map(floatToBFloat16Bits))
        XCTAssertEqual(floatsFromFloat16Bits(h).map(\.bitPattern), h.map { float16BitsToFloat($0).bitPattern })
        XCTAssertEqual(floatsFromBFloat16Bits(b).map(\.bitPattern), b.map { bfloat16BitsToFloat($0).bitPattern })
        XCTAssertEqual(float16Bits([]), [])
        XCTAssertEqual(floatsFromBFloat16Bits([]), [])
    }

    func testBufferConversionThroughput() {
        let count = 25_000_000  // a 100 MB F32 tensor
        let src = [Float](unsafeUninitializedCapacity: count) { buf, n in
            for i in 0..<count { buf[i] = Float(i % 4099) * 0.37 - 700 }
            n = count
        }
        var half = [UInt16](repeating: 0, count: count)
        var back = [Float](repeating: 0, count: count)
        func time(_ label: String, _ body: () -> Void) -> Double {
            let start = DispatchTime.now().uptimeNanoseconds
            body()
            let s = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            print("HalfPrecision \(label): \(String(format: "%.1f", s * 1000)) ms for 25M values")
            return s
        }
        var total = 0.0
        total += time("F32->F16") { convertFloatToFloat16(src, &half, count: count) }
        total += time("F16->F32") { convertFloat16ToFloat(half, &back, count: count) }
        total += time("F32->BF16") { convertFloatToBFloat16(src, &half, count: count) }
        total += time("BF16->F32") { convertBFloat16ToFloat(half, &back, count: count) }
        XCTAssertEqual(back[1], bfloat16BitsToFloat(floatToBFloat16Bits(src[1])))
        XCTAssertLessThan(total, 10, "conversions far slower than expected")
    }
}
