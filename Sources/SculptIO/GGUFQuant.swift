import SculptCore

// Dequantization and reference quantization of ggml block formats, written from ggml's
// reference C (`dequantize_row_*`, `quantize_row_*_ref` in ggml-quants.c; block layouts in
// ggml-common.h). The arithmetic is the reference's, operation for operation and in the same
// order, without fused multiply-adds, so results are bit-identical to ggml's scalar path and
// to gguf-py's numpy dequantizer. Blocks sit at arbitrary byte offsets, so multi-byte fields
// are read with unaligned loads. Little-endian hosts and files are assumed (GGUF's byte order).

/// Converts `count` elements of `type` at `src` to Float32 at `dst`.
///
/// `count` must be a multiple of `type.blockSize`; `src` must hold
/// `count / type.blockSize * type.bytesPerBlock` bytes. Throws `GGUFError.unsupportedType` for
/// types this library cannot dequantize (the IQ and TQ families, Q8_1).
public func dequantizeRow(type: GGMLType, from src: UnsafeRawPointer, count: Int, into dst: UnsafeMutablePointer<Float>) throws {
    guard type.canDequantize else { throw GGUFError.unsupportedType(file: "", tensor: "", type: type) }
    guard count >= 0, count % type.blockSize == 0 else {
        throw GGUFError.invalidArgument(reason: "\(count) elements is not a multiple of the \(type.name) block size \(type.blockSize)")
    }
    dequantizeRowUnchecked(type: type, from: src, count: count, into: dst)
}

/// `dequantizeRow` without the checks (the caller has validated type and count).
func dequantizeRowUnchecked(type: GGMLType, from src: UnsafeRawPointer, count: Int, into dst: UnsafeMutablePointer<Float>) {
    let blocks = count / type.blockSize
    switch type {
    case .f32:
        UnsafeMutableRawPointer(dst).copyMemory(from: src, byteCount: count * 4)
    case .f16:
        if Int(bitPattern: src) & 1 == 0 {
            convertFloat16ToFloat(src.assumingMemoryBound(to: UInt16.self), dst, count: count)
        } else {
            for i in 0..<count { dst[i] = f16(src, 2 * i) }
        }
    case .bf16:
        for i in 0..<count { dst[i] = bfloat16BitsToFloat(UInt16(littleEndian: src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))) }
    case .f64:
        for i in 0..<count { dst[i] = Float(Double(bitPattern: UInt64(littleEndian: src.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self)))) }
    case .i8:
        for i in 0..<count { dst[i] = Float(Int8(bitPattern: src.load(fromByteOffset: i, as: UInt8.self))) }
    case .i16:
        for i in 0..<count { dst[i] = Float(Int16(littleEndian: src.loadUnaligned(fromByteOffset: 2 * i, as: Int16.self))) }
    case .i32:
        for i in 0..<count { dst[i] = Float(Int32(littleEndian: src.loadUnaligned(fromByteOffset: 4 * i, as: Int32.self))) }
    case .i64:
        for i in 0..<count { dst[i] = Float(Int64(littleEndian: src.loadUnaligned(fromByteOffset: 8 * i, as: Int64.self))) }
    case .q4_0: for b in 0..<blocks { dequantizeQ4_0(src + b * 18, dst + b * 32) }
    case .q4_1: for b in 0..<blocks { dequantizeQ4_1(src + b * 20, dst + b * 32) }
    case .q5_0: for b in 0..<blocks { dequantizeQ5_0(src + b * 22, dst + b * 32) }
    case .q5_1: for b in 0..<blocks { dequantizeQ5_1(src + b * 24, dst + b * 32) }
    case .q8_0: for b in 0..<blocks { dequantizeQ8_0(src + b * 34, dst + b * 32) }
    case .q2_K: for b in 0..<blocks { dequantizeQ2_K(src + b * 84, dst + b * 256) }
    case .q3_K: for b in 0..<blocks { dequantizeQ3_K(src + b * 110, dst + b * 256) }
    case .q4_K: for b in 0..<blocks { dequantizeQ4_K(src + b * 144, dst + b * 256) }
    case .q5_K: for b in 0..<blocks { dequantizeQ5_K(src + b * 176, dst + b * 256) }
    case .q6_K: for b in 0..<blocks { dequantizeQ6_K(src + b * 210, dst + b * 256) }
    case .q8_K: for b in 0..<blocks { dequantizeQ8_K(src + b * 292, dst + b * 256) }
    default:
        // Unreachable for validated callers (canDequantize is false for the rest).
        dst.update(repeating: .nan, count: count)
    }
}

// MARK: - Field access

@inline(__always) private func u8(_ p: UnsafeRawPointer, _ offset: Int) -> UInt8 { p.load(fromByteOffset: offset, as: UInt8.self) }
@inline(__always) private func i8(_ p: UnsafeRawPointer, _ offset: Int) -> Int8 { Int8(bitPattern: u8(p, offset)) }
@inline(__always) private func u32(_ p: UnsafeRawPointer, _ offset: Int) -> UInt32 {
    UInt32(littleEndian: p.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
}
@inline(__always) private func f16(_ p: UnsafeRawPointer, _ offset: Int) -> Float {
    float16BitsToFloat(UInt16(littleEndian: p.loadUnaligned(fromByteOffset: offset, as: UInt16.self)))
}

// MARK: - Legacy 32-element blocks

/// Q4_0 (18 bytes): f16 d, 16 bytes qs. x[j] = ((qs[j] & 15) - 8)·d, x[j+16] = ((qs[j] >> 4) - 8)·d.
@inline(__always) private func dequantizeQ4_0(_ x: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
    let d = f16(x, 0)
    for j in 0..<16 {
        let q = u8(x, 2 + j)
        y[j] = Float(Int32(q & 0x0F) - 8) * d
        y[j + 16] = Float(Int32(q >> 4) - 8) * d
    }
}

/// Q4_1 (20 bytes): f16 d, f16 m, 16 bytes qs. x = q·d + m.
@inline(__always) private func dequantizeQ4_1(_ x: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
    let d = f16(x, 0), m = f16(x, 2)
    for j in 0..<16 {
        let q = u8(x, 4 + j)
        y[j] = Float(q & 0x0F) * d + m
        y[j + 16] = Float(q >> 4) * d + m
    }
}

/// Q5_0 (22 bytes): f16 d, u32 qh (fifth bits), 16 bytes qs. x = (q | h<<4) - 16, times d.
@inline(__always) private func dequantizeQ5_0(_ x: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
    let d = f16(x, 0)
    let qh = u32(x, 2)
    for j in 0..<16 {
        let q = u8(x, 6 + j)
        let h0 = UInt8(truncatingIfNeeded: (qh >> UInt32(j)) << 4) & 0x10
        let h1 = UInt8(truncatingIfNeeded: qh >> UInt32(j + 12)) & 0x10
        y[j] = Float(Int32((q & 0x0F) | h0) - 16) * d
        y[j + 16] = Float(Int32((q >> 4) | h1) - 16) * d
    }
}

/// Q5_1 (24 bytes): f16 d, f16 m, u32 qh, 16 bytes qs. x = (q | h<<4)·d + m.
@inline(__always) private func dequantizeQ5_1(_ x: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
    let d = f16(x, 0), m = f16(x, 2)
    let qh = u32(x, 4)
    for j in 0..<16 {
        let q = u8(x, 8 + j)
        let h0 = UInt8(truncatingIfNeeded: (qh >> UInt32(j)) << 4) & 0x10
        let h1 = UInt8(truncatingIfNeeded: qh >> UInt32(j + 12)) & 0x10
        y[j] = Float((q & 0x0F) | h0) * d + m
        y[j + 16] = Float((q >> 4) | h1) * d + m
    }
}

/// Q8_0 (34 bytes): f16 d, 32 int8 qs. x = q·d.
@inline(__always) private func dequantizeQ8_0(_ x: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
    let d = f16(x, 0)
    for j in 0..<32 { y[j] = Float(i8(x, 2 + j)) * d }
}

// MARK: - k-quants (256-element super-blocks)

/// The 6-bit scale and min of sub-block `j` (0..<8) from the 12 packed bytes at `q` (ggml's get_scale_min_k4).
@inline(__always) private func scaleMinK4(_ j: Int, _ q: UnsafeRawPointer) -> (Float, Float) {
    if j < 4 {
        return (Float(u8(q, j) & 63), Float(u8(q, j + 4) & 63))
    }
    let sc = (u8(q, j + 4) & 0x0F) | ((u8(q, j - 4) >> 6) << 4)
    let m = (u8(q, j + 4) >> 4) | ((u8(q, j) >> 6) << 4)
    return (Float(sc), Float(m))
}

/// Q2_K (84 bytes): 16 scale bytes (low nibble scale, high nibble min), 64 bytes of 2-bit
/// quants, f16 d, f16 dmin. x = d·sc·q - dmin·m per 16-element group.
@inline(__always) private func dequantizeQ2_K(_ x: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
    let d = f16(x, 80), dmin = f16(x, 82)
    var out = 0, scaleIndex = 0
    for half in 0..<2 {
        let q = 16 + half * 32
        var shift: UInt8 = 0
        for _ in 0..<4 {
            for group in 0..<2 {
                let sc = u8(x, scaleIndex)
                scaleIndex += 1
                let dl = d * Float(sc & 0x0F), ml = dmin * Float(sc >> 4)
                for l in 0..<16 {
                    y[out] = dl * Float((u8(x, q + group * 16 + l) >> shift) & 3) - ml
                    out += 1
                }
            }
            shift += 2
        }
    }
}

/// Q3_K (110 bytes): 32 bytes hmask (high bits), 64 bytes of 2-bit quants, 12 bytes of packed
/// 6-bit scales, f16 d. x = d·(sc - 32)·(q - (high bit clear ? 4 : 0)).
@inline(__always) private func dequantizeQ3_K(_ x: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
    let dAll = f16(x, 108)
    let kmask1: UInt32 = 0x0303_0303, kmask2: UInt32 = 0x0f0f_0f0f
    let a0 = u32(x, 96), a1 = u32(x, 100), tmp = u32(x, 104)
    let aux: (UInt32, UInt32, UInt32, UInt32) = (
        (a0 & kmask2) | (((tmp >> 0) & kmask1) << 4),
        (a1 & kmask2) | (((tmp >> 2) & kmask1) << 4),
        ((a0 >> 4) & kmask2) | (((tmp >> 4) & kmask1) << 4),
        ((a1 >> 4) & kmask2) | (((tmp >> 6) & kmask1) << 4))
    @inline(__always) func scale(_ i: Int) -> Int32 {
        let word: UInt32
        switch i >> 2 {
        case 0: word = aux.0
        case 1: word = aux.1
        case 2: word = aux.2
        default: word = aux.3
        }
        return Int32(Int8(truncatingIfNeeded: word >> UInt32(8 * (i & 3))))
    }
    var out = 0, scaleIndex = 0
    var m: UInt8 = 1
    for half in 0..<2 {
        let q = 32 + half * 32
        var shift: UInt8 = 0
        for _ in 0..<4 {
            for group in 0..<2 {
                let dl = dAll * Float(scale(scaleIndex) - 32)
                scaleIndex += 1
                for l in 0..<16 {
                    let low = Int32((u8(x, q + group * 16 + l) >> shift) & 3)
                    let high: Int32 = (u8(x, group * 16 + l) & m) != 0 ? 0 : 4
                    y[out] = dl * Float(low - high)
                    out += 1
                }
            }
            shift += 2
            m = m &<< 1
        }
    }
}

/// Q4_K (144 bytes): f16 d, f16 dmin, 12 bytes of packed 6-bit scales and mins, 128 bytes of
/// nibbles. Per 32-element sub-block: x = d·sc·q - dmin·m.
@inline(__always) private func dequantizeQ4_K(_ x: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
    let d = f16(x, 0), dmin = f16(x, 2)
    let scales = x + 4
    for chunk in 0..<4 {
        let (sc1, m1q) = scaleMinK4(2 * chunk, scales)
        let (sc2, m2q) = scaleMinK4(2 * chunk + 1, scales)
        let d1 = d * sc1, m1 = dmin * m1q
        let d2 = d * sc2, m2 = dmin * m2q
        let q = 16 + chunk * 32
        let o = y + chunk * 64
        for l in 0..<32 { o[l] = d1 * Float(u8(x, q + l) & 0x0F) - m1 }
        for l in 0..<32 { o[32 + l] = d2 * Float(u8(x, q + l) >> 4) - m2 }
    }
}

/// Q5_K (176 bytes): f16 d, f16 dmin, 12 scale bytes, 32 bytes qh (fifth bits), 128 bytes qs.
@inline(__always) private func dequantizeQ5_K(_ x: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
    let d = f16(x, 0), dmin = f16(x, 2)
    let scales = x + 4
    var u1: UInt8 = 1, u2: UInt8 = 2
    for chunk in 0..<4 {
        let (sc1, m1q) = scaleMinK4(2 * chunk, scales)
        let (sc2, m2q) = scaleMinK4(2 * chunk + 1, scales)
        let d1 = d * sc1, m1 = dmin * m1q
        let d2 = d * sc2, m2 = dmin * m2q
        let ql = 48 + chunk * 32
        let o = y + chunk * 64
        for l in 0..<32 {
            let h: UInt8 = (u8(x, 16 + l) & u1) != 0 ? 16 : 0
            o[l] = d1 * Float((u8(x, ql + l) & 0x0F) + h) - m1
        }
        for l in 0..<32 {
            let h: UInt8 = (u8(x, 16 + l) & u2) != 0 ? 16 : 0
            o[32 + l] = d2 * Float((u8(x, ql + l) >> 4) + h) - m2
        }
        u1 = u1 &<< 2
        u2 = u2 &<< 2
    }
}

/// Q6_K (210 bytes): 128 bytes ql (low 4 bits), 64 bytes qh (high 2 bits), 16 int8 scales,
/// f16 d. x = d·sc·(q - 32) per 16-element group.
@inline(__always) private func dequantizeQ6_K(_ x: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
    let d = f16(x, 208)
    for half in 0..<2 {
        let ql = half * 64, qh = 128 + half * 32, sc = 192 + half * 8
        let o = y + half * 128
        for l in 0..<32 {
            let s = l / 16
            let h = u8(x, qh + l)
            let a = u8(x, ql + l), b = u8(x, ql + l + 32)
            let q1 = Int32((a & 0x0F) | ((h & 3) << 4)) - 32
            let q2 = Int32((b & 0x0F) | (((h >> 2) & 3) << 4)) - 32
            let q3 = Int32((a >> 4) | (((h >> 4) & 3) << 4)) - 32
            let q4 = Int32((b >> 4) | (((h >> 6) & 3) << 4)) - 32
            o[l] = d * Float(i8(x, sc + s)) * Float(q1)
            o[l + 32] = d * Float(i8(x, sc + s + 2)) * Float(q2)
            o[l + 64] = d * Float(i8(x, sc + s + 4)) * Float(q3)
            o[l + 96] = d * Float(i8(x, sc + s + 6)) * Float(q4)
        }
    }
}

/// Q8_K (292 bytes): f32 d, 256 int8 qs, 16 int16 block sums (unused here). x = d·q.
@inline(__always) private func dequantizeQ8_K(_ x: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
    let d = Float(bitPattern: u32(x, 0))
    for j in 0..<256 { y[j] = d * Float(i8(x, 4 + j)) }
}
