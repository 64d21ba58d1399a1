import Foundation

/// SIMD16 transcendental functions for the fused kernels. Accuracy is a few ulp
/// (exp) or ~1.5e-7 absolute (erf), well inside what float32 training needs; the scalar
/// reference twins use libm and the tests bound the difference.
public typealias F16x = SIMD16<Float>

/// Lanes of `x` limited to [lo, hi]; written with selects because the generic clamp and
/// pointwiseMin/Max are not inlined and cost more than the exponential itself.
@inline(__always)
public func simdClamp(_ x: F16x, _ lo: Float, _ hi: Float) -> F16x {
    x.replacing(with: lo, where: x .< lo).replacing(with: hi, where: x .> hi)
}

@inline(__always)
public func simdExp(_ x: F16x) -> F16x {
    // exp(x) = 2^n · e^r with n = round(x / ln 2), |r| ≤ ln2/2; degree-6 polynomial for e^r.
    // Rounding and the float→int conversion use the 1.5·2²³ trick: adding it leaves n in the
    // low mantissa bits (Swift's SIMD float→int conversion is not vectorised).
    let clamped = simdClamp(x, -87.33654, 88.37626)
    let magic = F16x(repeating: 12_582_912)
    let shifted = clamped * 1.442_695_04 + magic
    let n = shifted - magic
    var r = clamped - n * 0.693_145_75
    r = r - n * 1.428_606_8e-6
    var p = F16x(repeating: 1.987_569_1e-4)
    p = p * r + 1.398_199_9e-3
    p = p * r + 8.333_452e-3
    p = p * r + 4.166_579_6e-2
    p = p * r + 1.666_666_5e-1
    p = p * r + 5.000_000_1e-1
    p = p * r * r + r + 1
    let ni = unsafeBitCast(shifted, to: SIMD16<Int32>.self) &- unsafeBitCast(magic, to: SIMD16<Int32>.self)
    let scale = unsafeBitCast((ni &+ 127) &<< 23, to: F16x.self)
    return p * scale
}

@inline(__always)
public func simdTanh(_ x: F16x) -> F16x {
    // tanh(x) = sign(x)·(1 − 2/(e^{2|x|}+1)); small |x| uses the odd Taylor series for accuracy.
    let ax = x.replacing(with: -x, where: x .< 0)
    let e = simdExp(2 * simdClamp(ax, 0, 20))
    var t = 1 - 2 / (e + 1)
    let x2 = ax * ax
    var poly = F16x(repeating: -17.0 / 315) * x2
    poly = (poly + (2.0 / 15 as Float)) * x2
    poly = (poly + (-1.0 / 3 as Float)) * x2
    let series = ax * (poly + 1)
    t = t.replacing(with: series, where: ax .< 0.0625)
    return t.replacing(with: -t, where: x .< 0)
}

@inline(__always)
public func simdErf(_ x: F16x) -> F16x { simdErfAndGaussian(x).erf }

/// erf(x) and the e^(−x²) it is built from (GELU's derivative needs both; one exponential).
@inline(__always)
public func simdErfAndGaussian(_ x: F16x) -> (erf: F16x, gaussian: F16x) {
    // Abramowitz & Stegun 7.1.26 (|error| ≤ 1.5e-7), odd symmetry; a Taylor series near 0
    // keeps the relative error small for tiny inputs.
    let ax = x.replacing(with: -x, where: x .< 0)
    let t = 1 / (1 + 0.327_591_1 * ax)
    var p = F16x(repeating: 1.061_405_429)
    p = p * t - 1.453_152_027
    p = p * t + 1.421_413_741
    p = p * t - 0.284_496_736
    p = p * t + 0.254_829_592
    let gaussian = simdExp(-ax * ax)
    var y = 1 - p * t * gaussian
    let x2 = ax * ax
    var poly = F16x(repeating: -1.0 / 42) * x2
    poly = (poly + (1.0 / 10 as Float)) * x2
    poly = (poly + (-1.0 / 3 as Float)) * x2
    let series = ax * (poly + 1) * (1.128_379_2 as Float)
    y = y.replacing(with: series, where: ax .< 0.1)
    return (y.replacing(with: -y, where: x .< 0), gaussian)
}

@inline(__always)
public func simdSigmoid(_ x: F16x) -> F16x { 1 / (1 + simdExp(-x)) }
