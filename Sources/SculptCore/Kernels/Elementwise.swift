import Foundation

/// Elementwise functions with a fused SIMD kernel each.
public enum UnaryFunction: String, Sendable, CaseIterable {
    case neg, exp, log, sqrt, tanh, relu, geluErf, geluTanh, silu, sigmoid, abs, square, reciprocal
}

/// Binary elementwise arithmetic.
public enum BinaryFunction: String, Sendable {
    case add, sub, mul, div
}

@inline(__always) private func applyVector(_ f: UnaryFunction, _ x: F16x) -> F16x {
    switch f {
    case .neg: return -x
    case .exp: return simdExp(x)
    case .log: return simdLogLanes(x)
    case .sqrt: return x.squareRoot()
    case .tanh: return simdTanh(x)
    case .relu: return x.replacing(with: 0, where: x .< 0)
    case .geluErf: return 0.5 * x * (1 + simdErf(x * 0.707_106_77))
    case .geluTanh: return 0.5 * x * (1 + simdTanh(0.797_884_56 * (x + 0.044_715 * x * x * x)))
    case .silu: return x * simdSigmoid(x)
    case .sigmoid: return simdSigmoid(x)
    case .abs: return x.replacing(with: -x, where: x .< 0)
    case .square: return x * x
    case .reciprocal: return 1 / x
    }
}

/// log has no cheap exact SIMD form here; it is rare in hot paths (losses work on
/// log-softmax), so lanes go through libm.
@inline(__always) private func simdLogLanes(_ x: F16x) -> F16x {
    var r = F16x()
    for i in 0..<16 { r[i] = Foundation.log(x[i]) }
    return r
}

/// Scalar reference for one element (libm), the twin of the SIMD path.
public func unaryReference(_ f: UnaryFunction, _ x: Float) -> Float {
    switch f {
    case .neg: return -x
    case .exp: return Foundation.exp(x)
    case .log: return Foundation.log(x)
    case .sqrt: return x.squareRoot()
    case .tanh: return Foundation.tanh(x)
    case .relu: return max(x, 0)
    case .geluErf: return 0.5 * x * (1 + Foundation.erf(x / Float(2).squareRoot()))
    case .geluTanh:
        return 0.5 * x * (1 + Foundation.tanh((2 / Float.pi).squareRoot() * (x + 0.044715 * x * x * x)))
    case .silu: return x / (1 + Foundation.exp(-x))
    case .sigmoid: return 1 / (1 + Foundation.exp(-x))
    case .abs: return Swift.abs(x)
    case .square: return x * x
    case .reciprocal: return 1 / x
    }
}

/// Derivative f'(x) for one element (reference for the fused backward kernel).
public func unaryDerivativeReference(_ f: UnaryFunction, _ x: Float) -> Float {
    switch f {
    case .neg: return -1
    case .exp: return Foundation.exp(x)
    case .log: return 1 / x
    case .sqrt: return 0.5 / x.squareRoot()
    case .tanh: let t = Foundation.tanh(x); return 1 - t * t
    case .relu: return x > 0 ? 1 : 0
    case .geluErf:
        let cdf = 0.5 * (1 + Foundation.erf(x / Float(2).squareRoot()))
        return cdf + x * Foundation.exp(-0.5 * x * x) / (2 * Float.pi).squareRoot()
    case .geluTanh:
        let c = (2 / Float.pi).squareRoot()
        let u = c * (x + 0.044715 * x * x * x)
        let t = Foundation.tanh(u)
        return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * c * (1 + 3 * 0.044715 * x * x)
    case .silu: let s = 1 / (1 + Foundation.exp(-x)); return s * (1 + x * (1 - s))
    case .sigmoid: let s = 1 / (1 + Foundation.exp(-x)); return s * (1 - s)
    case .abs: return x > 0 ? 1 : (x < 0 ? -1 : 0)
    case .square: return 2 * x
    case .reciprocal: return -1 / (x * x)
    }
}

@inline(__always) private func derivativeVector(_ f: UnaryFunction, _ x: F16x) -> F16x {
    switch f {
    case .neg: return F16x(repeating: -1)
    case .exp: return simdExp(x)
    case .log: return 1 / x
    case .sqrt: return 0.5 / x.squareRoot()
    case .tanh: let t = simdTanh(x); return 1 - t * t
    case .relu: return F16x(repeating: 1).replacing(with: 0, where: x .<= 0)
    case .geluErf:
        // erf(x/√2) is built from e^(−x²/2), which is also the normal density's factor.
        let (erf, gaussian) = simdErfAndGaussian(x * 0.707_106_77)
        return 0.5 * (1 + erf) + x * gaussian * 0.398_942_28
    case .geluTanh:
        let c: Float = 0.797_884_56
        let x3: F16x = x * x * x
        let t = simdTanh(c * (x + 0.044_715 * x3))
        let dInner: F16x = c * (1 + 0.134_145 * x * x)
        let left: F16x = 0.5 * (1 + t)
        return left + 0.5 * x * (1 - t * t) * dInner
    case .silu: let s = simdSigmoid(x); return s * (1 + x * (1 - s))
    case .sigmoid: let s = simdSigmoid(x); return s * (1 - s)
    case .abs: return F16x(repeating: 0).replacing(with: 1, where: x .> 0).replacing(with: -1, where: x .< 0)
    case .square: return 2 * x
    case .reciprocal: return -1 / (x * x)
    }
}

@inline(__always) private func load(_ p: UnsafePointer<Float>, _ i: Int) -> F16x {
    UnsafeRawPointer(p + i).loadUnaligned(as: F16x.self)
}

@inline(__always) private func store(_ v: F16x, _ p: UnsafeMutablePointer<Float>, _ i: Int) {
    UnsafeMutableRawPointer(p + i).storeBytes(of: v, as: F16x.self)
}

/// Loads up to 16 trailing elements, padding with `fill` (keeps tails on the SIMD path).
@inline(__always) private func loadTail(_ p: UnsafePointer<Float>, _ i: Int, _ n: Int, fill: Float) -> F16x {
    var v = F16x(repeating: fill)
    for j in 0..<n { v[j] = p[i + j] }
    return v
}

@inline(__always) private func storeTail(_ v: F16x, _ p: UnsafeMutablePointer<Float>, _ i: Int, _ n: Int) {
    for j in 0..<n { p[i + j] = v[j] }
}

/// Splits `count` elements into SIMD-aligned ranges over the pool when large enough.
@inline(__always)
func parallelChunks(_ count: Int, pool: ThreadPool, _ body: (Range<Int>) -> Void) {
    if count < parallelElementThreshold || pool.threadCount == 1 {
        body(0..<count)
        return
    }
    let blocks = (count + 15) / 16
    pool.parallelRanges(blocks, minimumChunk: parallelElementThreshold / 16) { r in
        body((r.lowerBound * 16)..<min(count, r.upperBound * 16))
    }
}

/// y = f(x), fused SIMD.
public func unaryForward(_ f: UnaryFunction, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int, pool: ThreadPool) {
    let xb = UncheckedSendableBox(x), yb = UncheckedSendableBox(y)
    parallelChunks(count, pool: pool) { r in
        let x = xb.value, y = yb.value
        var i = r.lowerBound
        while i + 16 <= r.upperBound {
            store(applyVector(f, load(x, i)), y, i)
            i += 16
        }
        if i < r.upperBound {
            let n = r.upperBound - i
            storeTail(applyVector(f, loadTail(x, i, n, fill: 1)), y, i, n)
        }
    }
}

/// dx = dy · f'(x), fused SIMD.
public func unaryBackward(_ f: UnaryFunction, _ x: UnsafePointer<Float>, _ dy: UnsafePointer<Float>, _ dx: UnsafeMutablePointer<Float>, count: Int, pool: ThreadPool) {
    let xb = UncheckedSendableBox(x), db = UncheckedSendableBox(dy), ob = UncheckedSendableBox(dx)
    parallelChunks(count, pool: pool) { r in
        let x = xb.value, dy = db.value, dx = ob.value
        var i = r.lowerBound
        while i + 16 <= r.upperBound {
            store(load(dy, i) * derivativeVector(f, load(x, i)), dx, i)
            i += 16
        }
        if i < r.upperBound {
            let n = r.upperBound - i
            storeTail(loadTail(dy, i, n, fill: 0) * derivativeVector(f, loadTail(x, i, n, fill: 1)), dx, i, n)
        }
    }
}

@inline(__always) private func combine(_ f: BinaryFunction, _ a: F16x, _ b: F16x) -> F16x {
    switch f {
    case .add: return a + b
    case .sub: return a - b
    case .mul: return a * b
    case .div: return a / b
    }
}

@inline(__always) private func combine(_ f: BinaryFunction, _ a: Float, _ b: Float) -> Float {
    switch f {
    case .add: return a + b
    case .sub: return a - b
    case .mul: return a * b
    case .div: return a / b
    }
}

/// c[i] = a[i] ∘ b[i] over equal-length buffers.
public func binarySameShape(_ f: BinaryFunction, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ c: UnsafeMutablePointer<Float>, count: Int, pool: ThreadPool) {
    let ab = UncheckedSendableBox(a), bb = UncheckedSendableBox(b), cb = UncheckedSendableBox(c)
    parallelChunks(count, pool: pool) { r in
        let a = ab.value, b = bb.value, c = cb.value
        var i = r.lowerBound
        while i + 16 <= r.upperBound {
            store(combine(f, load(a, i), load(b, i)), c, i)
            i += 16
        }
        while i < r.upperBound { c[i] = combine(f, a[i], b[i]); i += 1 }
    }
}

/// c[o, i] = a[o, i] ∘ b[i] — `b` repeats along `outer` rows of length `inner` (bias add).
/// With `rowScalar` the roles flip: c[o, i] = a[o, i] ∘ b[o] (b is one value per row).
public func binaryRowBroadcast(_ f: BinaryFunction, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ c: UnsafeMutablePointer<Float>, outer: Int, inner: Int, rowScalar: Bool, bIsLeft: Bool, pool: ThreadPool) {
    let ab = UncheckedSendableBox(a), bb = UncheckedSendableBox(b), cb = UncheckedSendableBox(c)
    let rowsPerChunk = max(1, parallelElementThreshold / max(inner, 1))
    let work = outer * inner < parallelElementThreshold ? ThreadPool.serial : pool
    work.parallelRanges(outer, minimumChunk: rowsPerChunk) { rows in
        let a = ab.value, b = bb.value, c = cb.value
        for o in rows {
            let ar = a + o * inner, cr = c + o * inner
            var i = 0
            if rowScalar {
                let s = F16x(repeating: b[o]), s1 = b[o]
                while i + 16 <= inner {
                    store(bIsLeft ? combine(f, s, load(ar, i)) : combine(f, load(ar, i), s), cr, i); i += 16
                }
                while i < inner { cr[i] = bIsLeft ? combine(f, s1, ar[i]) : combine(f, ar[i], s1); i += 1 }
            } else {
                while i + 16 <= inner {
                    store(bIsLeft ? combine(f, load(b, i), load(ar, i)) : combine(f, load(ar, i), load(b, i)), cr, i); i += 16
                }
                while i < inner { cr[i] = bIsLeft ? combine(f, b[i], ar[i]) : combine(f, ar[i], b[i]); i += 1 }
            }
        }
    }
}

/// General broadcasting: `aStrides`/`bStrides` are the operands' strides in the output's index
/// space (0 along broadcast dimensions). The innermost dimension runs as a tight loop.
public func binaryStrided(_ f: BinaryFunction, _ a: UnsafePointer<Float>, aStrides: [Int], _ b: UnsafePointer<Float>, bStrides: [Int], _ c: UnsafeMutablePointer<Float>, shape: [Int]) {
    let rank = shape.count
    if rank == 0 { c[0] = combine(f, a[0], b[0]); return }
    let inner = shape[rank - 1], sa = aStrides[rank - 1], sb = bStrides[rank - 1]
    let outerCount = Shape.count(Array(shape.dropLast()))
    var index = [Int](repeating: 0, count: max(rank - 1, 0))
    var out = 0
    for _ in 0..<outerCount {
        var offA = 0, offB = 0
        for d in 0..<(rank - 1) { offA += index[d] * aStrides[d]; offB += index[d] * bStrides[d] }
        for i in 0..<inner { c[out + i] = combine(f, a[offA + i * sa], b[offB + i * sb]) }
        out += inner
        var d = rank - 2
        while d >= 0 {
            index[d] += 1
            if index[d] < shape[d] { break }
            index[d] = 0
            d -= 1
        }
    }
}

/// y = alpha · x + y (in place on y).
public func axpy(_ alpha: Float, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int, pool: ThreadPool) {
    let xb = UncheckedSendableBox(x), yb = UncheckedSendableBox(y)
    parallelChunks(count, pool: pool) { r in
        let x = xb.value, y = yb.value
        let av = F16x(repeating: alpha)
        var i = r.lowerBound
        while i + 16 <= r.upperBound { store(load(y, i) + av * load(x, i), y, i); i += 16 }
        while i < r.upperBound { y[i] += alpha * x[i]; i += 1 }
    }
}

/// y = alpha · x + beta (out of place; alpha/beta scalars).
public func affine(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int, alpha: Float, beta: Float, pool: ThreadPool) {
    let xb = UncheckedSendableBox(x), yb = UncheckedSendableBox(y)
    parallelChunks(count, pool: pool) { r in
        let x = xb.value, y = yb.value
        var i = r.lowerBound
        while i + 16 <= r.upperBound { store(load(x, i) * alpha + beta, y, i); i += 16 }
        while i < r.upperBound { y[i] = x[i] * alpha + beta; i += 1 }
    }
}

/// Sum of a buffer with SIMD partial sums (Float accumulation in 16 lanes, then Double).
public func sumBuffer(_ x: UnsafePointer<Float>, count: Int) -> Float {
    var acc = F16x()
    var i = 0
    while i + 16 <= count { acc += load(x, i); i += 16 }
    var total = Double(acc.sum())
    while i < count { total += Double(x[i]); i += 1 }
    return Float(total)
}
