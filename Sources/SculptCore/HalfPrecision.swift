// Conversions between Float (IEEE binary32) and the two 16-bit storage formats that
// checkpoints use: IEEE binary16 ("F16", "half") and bfloat16 ("BF16").
//
// All conversions are pure bit manipulation (no reliance on a platform `Float16` type or on
// the FPU's rounding mode), so they give the same bits on every platform:
// - Float -> 16 bits rounds to nearest, ties to even; values too large overflow to ±Inf;
//   values too small for a binary16 normal become binary16 subnormals (or ±0); NaN stays NaN
//   (quieted, with as much of the payload as fits); the sign of zero is kept.
// - 16 bits -> Float is exact (every binary16 and bfloat16 value is a Float), including
//   subnormals, ±Inf and NaN payloads.
//
// The buffer versions are plain loops written without data-dependent branches so the
// compiler vectorises them; they convert hundreds of millions of values per second.

// MARK: - Scalar conversions

/// The IEEE binary16 bit pattern nearest to `value` (round to nearest, ties to even).
@inlinable @inline(__always)
public func floatToFloat16Bits(_ value: Float) -> UInt16 {
    let bits = value.bitPattern
    let sign = (bits >> 16) & 0x8000
    let magnitude = bits & 0x7FFF_FFFF

    // Normal range (result exponent 1...30, possibly rounding up to Inf): rebias the
    // exponent from 127 to 15 and round the 23-bit mantissa to 10 bits with RNE. A carry out
    // of the mantissa correctly bumps the exponent (and 65520 and above become Inf, 0x7C00).
    let mantissaOdd = (magnitude >> 13) & 1
    let normal = (magnitude &- 0x3800_0000 &+ 0x0FFF &+ mantissaOdd) >> 13

    // Subnormal range (|value| < 2^-14): adding 0.5 makes the FPU's own RNE addition round
    // the value to a multiple of 2^-24 and place it in the low mantissa bits; subtracting
    // 0.5's bit pattern leaves the binary16 subnormal (or, on rounding up, the smallest
    // normal 0x0400). Swift's Float addition is always round-to-nearest-even.
    let magic: UInt32 = 0x3F00_0000 // 0.5, whose last mantissa bit is 2^-24 (the binary16 subnormal step)
    let shifted = (Float(bitPattern: magnitude) + Float(bitPattern: magic)).bitPattern
    let subnormal = shifted &- magic

    // NaN: quiet it and keep the top 9 payload bits.
    let nan = 0x7E00 | ((magnitude >> 13) & 0x01FF)

    var result: UInt32
    result = magnitude < 0x3880_0000 ? subnormal : normal
    result = magnitude >= 0x4780_0000 ? 0x7C00 : result  // >= 65536: overflow to Inf
    result = magnitude > 0x7F80_0000 ? nan : result
    return UInt16(truncatingIfNeeded: result | sign)
}

/// The Float with the IEEE binary16 bit pattern `bits` (exact).
@inlinable @inline(__always)
public func float16BitsToFloat(_ bits: UInt16) -> Float {
    let h = UInt32(bits)
    let sign = (h & 0x8000) << 16
    let shifted = (h & 0x7FFF) << 13           // exponent and mantissa in float position
    let exponent = shifted & 0x0F80_0000
    let rebiased = shifted &+ 0x3800_0000       // exponent + (127 - 15)

    // Inf/NaN: exponent all ones -> 255.
    let infNaN = rebiased &+ 0x3800_0000
    // Zero/subnormal: treat as 1.m × 2^-14 and subtract the implicit 2^-14 (exact in Float).
    let magic = Float(bitPattern: 0x3880_0000)  // 2^-14
    let subnormal = (Float(bitPattern: rebiased &+ 0x0080_0000) - magic).bitPattern

    var result = rebiased
    result = exponent == 0x0F80_0000 ? infNaN : result
    result = exponent == 0 ? subnormal : result
    return Float(bitPattern: result | sign)
}

/// The bfloat16 bit pattern nearest to `value` (round to nearest, ties to even).
/// NaN stays NaN (quieted); overflow rounds to ±Inf.
@inlinable @inline(__always)
public func floatToBFloat16Bits(_ value: Float) -> UInt16 {
    let bits = value.bitPattern
    let rounded = (bits &+ 0x7FFF &+ ((bits >> 16) & 1)) >> 16
    let nan = (bits >> 16) | 0x0040
    let isNaN = (bits & 0x7FFF_FFFF) > 0x7F80_0000
    return UInt16(truncatingIfNeeded: isNaN ? nan : rounded)
}

/// The Float with the bfloat16 bit pattern `bits` (exact).
@inlinable @inline(__always)
public func bfloat16BitsToFloat(_ bits: UInt16) -> Float {
    Float(bitPattern: UInt32(bits) << 16)
}

// MARK: - Buffer conversions

/// Converts `count` Floats to IEEE binary16 bit patterns (RNE). `src` and `dst` must not overlap.
public func convertFloatToFloat16(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<UInt16>, count: Int) {
    var i = 0
    while i < count {
        dst[i] = floatToFloat16Bits(src[i])
        i &+= 1
    }
}

/// Converts `count` IEEE binary16 bit patterns to Floats (exact). `src` and `dst` must not overlap.
public func convertFloat16ToFloat(_ src: UnsafePointer<UInt16>, _ dst: UnsafeMutablePointer<Float>, count: Int) {
    var i = 0
    while i < count {
        dst[i] = float16BitsToFloat(src[i])
        i &+= 1
    }
}

/// Converts `count` Floats to bfloat16 bit patterns (RNE). `src` and `dst` must not overlap.
public func convertFloatToBFloat16(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<UInt16>, count: Int) {
    var i = 0
    while i < count {
        dst[i] = floatToBFloat16Bits(src[i])
        i &+= 1
    }
}

/// Converts `count` bfloat16 bit patterns to Floats (exact). `src` and `dst` must not overlap.
public func convertBFloat16ToFloat(_ src: UnsafePointer<UInt16>, _ dst: UnsafeMutablePointer<Float>, count: Int) {
    var i = 0
    while i < count {
        dst[i] = bfloat16BitsToFloat(src[i])
        i &+= 1
    }
}

// MARK: - Array conveniences

/// Runs a buffer conversion over a whole array.
private func convertArray<Source, Target>(_ values: [Source], _ convert: (UnsafePointer<Source>, UnsafeMutablePointer<Target>, Int) -> Void) -> [Target] {
    [Target](unsafeUninitializedCapacity: values.count) { out, initialized in
        values.withUnsafeBufferPointer { src in
            if let s = src.baseAddress, let d = out.baseAddress { convert(s, d, src.count) }
        }
        initialized = values.count
    }
}

/// IEEE binary16 bit patterns of `values` (RNE).
public func float16Bits(_ values: [Float]) -> [UInt16] { convertArray(values) { convertFloatToFloat16($0, $1, count: $2) } }

/// Floats of IEEE binary16 bit patterns (exact).
public func floatsFromFloat16Bits(_ bits: [UInt16]) -> [Float] { convertArray(bits) { convertFloat16ToFloat($0, $1, count: $2) } }

/// bfloat16 bit patterns of `values` (RNE).
public func bfloat16Bits(_ values: [Float]) -> [UInt16] { convertArray(values) { convertFloatToBFloat16($0, $1, count: $2) } }

/// Floats of bfloat16 bit patterns (exact).
public func floatsFromBFloat16Bits(_ bits: [UInt16]) -> [Float] { convertArray(bits) { convertBFloat16ToFloat($0, $1, count: $2) } }
