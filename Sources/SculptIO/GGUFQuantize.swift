import SculptCore

// Reference quantizers for the types GGUFWriter produces, as ggml's `quantize_row_q8_0_ref`,
// `quantize_row_q4_0_ref` and `quantize_row_q4_1_ref` compute them (ggml-quants.c), plus the
// plain F32 / F16 / BF16 encodings. For finite inputs the bytes equal ggml's. Non-finite inputs
// (which are undefined behaviour in the C float-to-int conversions) give deterministic bytes
// here instead of trapping: NaN converts to 0 and out-of-range values saturate.

/// Encodes `count` Floats at `src` as `type` at `dst`, which must have room for
/// `type.rowBytes(count)` bytes (any alignment). `count` must be a multiple of the block size.
/// Throws `GGUFError.unsupportedType` for types without a quantizer (see `GGMLType.canQuantize`).
public func quantizeRow(type: GGMLType, from src: UnsafePointer<Float>, count: Int, into dst: UnsafeMutableRawPointer) throws {
    guard type.canQuantize else { throw GGUFError.unsupportedType(file: "", tensor: "", type: type) }
    guard count >= 0, count % type.blockSize == 0 else {
        throw GGUFError.invalidArgument(reason: "\(count) elements is not a multiple of the \(type.name) block size \(type.blockSize)")
    }
    quantizeRowUnchecked(type: type, from: src, count: count, into: dst)
}

/// `quantizeRow` without the checks.
func quantizeRowUnchecked(type: GGMLType, from src: UnsafePointer<Float>, count: Int, into dst: UnsafeMutableRawPointer) {
    switch type {
    case .f32:
        dst.copyMemory(from: src, byteCount: count * 4)
    case .f16:
        for i in 0..<count { dst.storeBytes(of: floatToFloat16Bits(src[i]).littleEndian, toByteOffset: 2 * i, as: UInt16.self) }
    case .bf16:
        for i in 0..<count { dst.storeBytes(of: floatToBFloat16Bits(src[i]).littleEndian, toByteOffset: 2 * i, as: UInt16.self) }
    case .q8_0:
        for b in 0..<(count / 32) { quantizeQ8_0(src + 32 * b, dst + 34 * b) }
    case .q4_0:
        for b in 0..<(count / 32) { quantizeQ4_0(src + 32 * b, dst + 18 * b) }
    case .q4_1:
        for b in 0..<(count / 32) { quantizeQ4_1(src + 32 * b, dst + 20 * b) }
    default:
        break
    }
}

/// C's float-to-int8 conversion (truncation toward zero) for in-range values; NaN → 0,
/// out-of-range values saturate.
@inline(__always) private func truncatingInt8(_ v: Float) -> Int8 {
    if v.isNaN { return 0 }
    if v >= 127 { return 127 }
    if v <= -128 { return -128 }
    return Int8(v)
}

@inline(__always) private func storeF16(_ v: Float, _ dst: UnsafeMutableRawPointer, _ offset: Int) {
    dst.storeBytes(of: floatToFloat16Bits(v).littleEndian, toByteOffset: offset, as: UInt16.self)
}

/// quantize_row_q8_0_ref: amax = max |x|, d = amax / 127, id = d ≠ 0 ? 1/d : 0, q = roundf(x·id).
@inline(__always) private func quantizeQ8_0(_ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer) {
    var amax: Float = 0
    for j in 0..<32 {
        let v = abs(x[j])
        amax = amax > v ? amax : v   // C's MAX(amax, v)
    }
    let d = amax / 127
    let id: Float = d != 0 ? 1 / d : 0
    storeF16(d, y, 0)
    for j in 0..<32 {
        // roundf rounds half away from zero, as `rounded()` does.
        y.storeBytes(of: UInt8(bitPattern: truncatingInt8((x[j] * id).rounded())), toByteOffset: 2 + j, as: UInt8.self)
    }
}

/// quantize_row_q4_0_ref: max = the element of largest magnitude (first one on ties),
/// d = max / -8, id = d ≠ 0 ? 1/d : 0, q = min(15, int8(x·id + 8.5)); element j in the low
/// nibble of byte j, element j + 16 in its high nibble.
@inline(__always) private func quantizeQ4_0(_ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer) {
    var amax: Float = 0, max: Float = 0
    for j in 0..<32 {
        let v = x[j]
        if amax < abs(v) {
            amax = abs(v)
            max = v
        }
    }
    let d = max / -8
    let id: Float = d != 0 ? 1 / d : 0
    storeF16(d, y, 0)
    for j in 0..<16 {
        let q0 = UInt8(truncatingIfNeeded: Swift.min(15, truncatingInt8(x[j] * id + 8.5)))
        let q1 = UInt8(truncatingIfNeeded: Swift.min(15, truncatingInt8(x[j + 16] * id + 8.5)))
        y.storeBytes(of: q0 | (q1 << 4), toByteOffset: 2 + j, as: UInt8.self)
    }
}

/// quantize_row_q4_1_ref: min and max of the block, d = (max - min) / 15, id = d ≠ 0 ? 1/d : 0,
/// m = min, q = min(15, int8((x - min)·id + 0.5)).
@inline(__always) private func quantizeQ4_1(_ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer) {
    var lo = Float.greatestFiniteMagnitude, hi = -Float.greatestFiniteMagnitude
    for j in 0..<32 {
        let v = x[j]
        if v < lo { lo = v }
        if v > hi { hi = v }
    }
    let d = (hi - lo) / 15
    let id: Float = d != 0 ? 1 / d : 0
    storeF16(d, y, 0)
    storeF16(lo, y, 2)
    for j in 0..<16 {
        let q0 = UInt8(truncatingIfNeeded: Swift.min(15, truncatingInt8((x[j] - lo) * id + 0.5)))
        let q1 = UInt8(truncatingIfNeeded: Swift.min(15, truncatingInt8((x[j + 16] - lo) * id + 0.5)))
        y.storeBytes(of: q0 | (q1 << 4), toByteOffset: 4 + j, as: UInt8.self)
    }
}
