import Foundation

// Fused row-wise kernels (softmax, log-softmax, layer norm) and axis reductions.
// Each has a plain-loop twin below (`…Reference`) that the tests compare against.

@inline(__always) private func load(_ p: UnsafePointer<Float>, _ i: Int) -> F16x {
    UnsafeRawPointer(p + i).loadUnaligned(as: F16x.self)
}
@inline(__always) private func store(_ v: F16x, _ p: UnsafeMutablePointer<Float>, _ i: Int) {
    UnsafeMutableRawPointer(p + i).storeBytes(of: v, as: F16x.self)
}

@inline(__always) private func rowMax(_ x: UnsafePointer<Float>, _ n: Int) -> Float {
    var m = F16x(repeating: -.infinity)
    var i = 0
    while i + 16 <= n { let v = load(x, i); m = m.replacing(with: v, where: v .> m); i += 16 }
    var r = m.max()
    while i < n { r = max(r, x[i]); i += 1 }
    return r
}

@inline(__always) private func rowSum(_ x: UnsafePointer<Float>, _ n: Int) -> Float {
    var s = F16x()
    var i = 0
    while i + 16 <= n { s += load(x, i); i += 16 }
    var r = s.sum()
    while i < n { r += x[i]; i += 1 }
    return r
}

@inline(__always) private func rowDot(_ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, _ n: Int) -> Float {
    var s = F16x()
    var i = 0
    while i + 16 <= n { s += load(x, i) * load(y, i); i += 16 }
    var r = s.sum()
    while i < n { r += x[i] * y[i]; i += 1 }
    return r
}

/// y = exp(x - max) written to y, returns the row sum.
@inline(__always) private func expShifted(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int, _ shift: Float) -> Float {
    var s = F16x()
    var i = 0
    let sv = F16x(repeating: shift)
    while i + 16 <= n { let e = simdExp(load(x, i) - sv); store(e, y, i); s += e; i += 16 }
    var r = s.sum()
    if i < n {
        var v = F16x(repeating: -.infinity)
        for j in 0..<(n - i) { v[j] = x[i + j] - shift }
        let e = simdExp(v)
        for j in 0..<(n - i) { y[i + j] = e[j]; r += e[j] }
    }
    return r
}

/// Calls `body(row)` for each row, over the pool when the work is large.
@inline(__always)
func forEachRow(_ rows: Int, width: Int, pool: ThreadPool, _ body: (Int) -> Void) {
    let p = rows * width < parallelElementThreshold ? ThreadPool.serial : pool
    p.parallelRanges(rows, minimumChunk: max(1, 4096 / max(width, 1))) { r in
        for row in r { body(row) }
    }
}

/// Softmax over rows of length `n` (numerically stable). `log` gives log-softmax.
public func softmaxRows(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, rows: Int, n: Int, log: Bool, pool: ThreadPool) {
    let xb = UncheckedSendableBox(x), yb = UncheckedSendableBox(y)
    forEachRow(rows, width: n, pool: pool) { r in
        let xr = xb.value + r * n, yr = yb.value + r * n
        let m = rowMax(xr, n)
        let s = expShifted(xr, yr, n, m)
        if log {
            let shift = m + Foundation.log(s)
            var i = 0
            let sv = F16x(repeating: shift)
            while i + 16 <= n { store(load(xr, i) - sv, yr, i); i += 16 }
            while i < n { yr[i] = xr[i] - shift; i += 1 }
        } else {
            let inv = 1 / s
            var i = 0
            while i + 16 <= n { store(load(yr, i) * inv, yr, i); i += 16 }
            while i < n { yr[i] *= inv; i += 1 }
        }
    }
}

/// Backward of softmax rows given the forward output y: dx = y·(dy − Σ dy·y).
/// For log-softmax (y = log-probabilities): dx = dy − softmax·Σ dy.
public func softmaxRowsBackward(_ y: UnsafePointer<Float>, _ dy: UnsafePointer<Float>, _ dx: UnsafeMutablePointer<Float>, rows: Int, n: Int, log: Bool, pool: ThreadPool) {
    let yb = UncheckedSendableBox(y), db = UncheckedSendableBox(dy), xb = UncheckedSendableBox(dx)
    forEachRow(rows, width: n, pool: pool) { r in
        let yr = yb.value + r * n, dyr = db.value + r * n, dxr = xb.value + r * n
        if log {
            let s = rowSum(dyr, n)
            for i in 0..<n { dxr[i] = dyr[i] - Foundation.exp(yr[i]) * s }
        } else {
            let dot = rowDot(dyr, yr, n)
            var i = 0
            let dv = F16x(repeating: dot)
            while i + 16 <= n { store(load(yr, i) * (load(dyr, i) - dv), dxr, i); i += 16 }
            while i < n { dxr[i] = yr[i] * (dyr[i] - dot); i += 1 }
        }
    }
}

/// Attention softmax: y = softmax(scale·x) over rows of length n, where columns whose key
/// mask is 0 get probability 0. Row r uses mask row r / rowsPerMask (one mask row per sequence).
public func maskedSoftmaxRows(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, rows: Int, n: Int, scale: Float,
                              keyMask: UnsafePointer<Float>?, rowsPerMask: Int, pool: ThreadPool) {
    let xb = UncheckedSendableBox(x), yb = UncheckedSendableBox(y), mb = UncheckedSendableBox(keyMask)
    forEachRow(rows, width: n, pool: pool) { r in
        let xr = xb.value + r * n, yr = yb.value + r * n
        let mask = mb.value.map { $0 + (r / rowsPerMask) * n }
        // Scaled, masked logits into y, then an in-place softmax.
        var mv = F16x(repeating: -.infinity)
        var i = 0
        let ninf = F16x(repeating: -.infinity)
        while i + 16 <= n {
            var v = load(xr, i) * scale
            if let mk = mask { v = v.replacing(with: ninf, where: load(mk, i) .== 0) }
            store(v, yr, i)
            mv = mv.replacing(with: v, where: v .> mv)
            i += 16
        }
        var m = mv.max()
        while i < n {
            let v = (mask == nil || mask![i] != 0) ? xr[i] * scale : -Float.infinity
            yr[i] = v
            m = max(m, v)
            i += 1
        }
        if m == -Float.infinity {
            yr.initialize(repeating: 0, count: n)
            return
        }
        let s = expShifted(UnsafePointer(yr), yr, n, m)
        let inv = 1 / s
        i = 0
        while i + 16 <= n { store(load(yr, i) * inv, yr, i); i += 16 }
        while i < n { yr[i] *= inv; i += 1 }
    }
}

public func softmaxRowsReference(_ x: [Float], rows: Int, n: Int, log: Bool) -> [Float] {
    var y = [Float](repeating: 0, count: rows * n)
    for r in 0..<rows {
        var m = -Float.infinity
        for i in 0..<n { m = max(m, x[r * n + i]) }
        var s: Double = 0
        for i in 0..<n { s += Double(Foundation.exp(x[r * n + i] - m)) }
        for i in 0..<n {
            y[r * n + i] = log ? x[r * n + i] - m - Float(Foundation.log(s)) : Float(Double(Foundation.exp(x[r * n + i] - m)) / s)
        }
    }
    return y
}

/// Layer norm over rows of length n: y = (x − mean)·rstd·gamma + beta. Saves mean and rstd
/// per row for the backward pass. gamma/beta may be nil (no affine).
public func layerNormRows(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, gamma: UnsafePointer<Float>?, beta: UnsafePointer<Float>?,
                          mean: UnsafeMutablePointer<Float>, rstd: UnsafeMutablePointer<Float>, rows: Int, n: Int, eps: Float, pool: ThreadPool) {
    let xb = UncheckedSendableBox(x), yb = UncheckedSendableBox(y), gb = UncheckedSendableBox(gamma), bb = UncheckedSendableBox(beta)
    let mb = UncheckedSendableBox(mean), rb = UncheckedSendableBox(rstd)
    forEachRow(rows, width: n, pool: pool) { r in
        let xr = xb.value + r * n, yr = yb.value + r * n
        let mu = rowSum(xr, n) / Float(n)
        var vs = F16x()
        var i = 0
        let mv = F16x(repeating: mu)
        while i + 16 <= n { let d = load(xr, i) - mv; vs += d * d; i += 16 }
        var v = vs.sum()
        while i < n { let d = xr[i] - mu; v += d * d; i += 1 }
        let rs = 1 / (v / Float(n) + eps).squareRoot()
        mb.value[r] = mu
        rb.value[r] = rs
        i = 0
        let rv = F16x(repeating: rs)
        if let g = gb.value, let b = bb.value {
            while i + 16 <= n { store((load(xr, i) - mv) * rv * load(g, i) + load(b, i), yr, i); i += 16 }
            while i < n { yr[i] = (xr[i] - mu) * rs * g[i] + b[i]; i += 1 }
        } else {
            while i + 16 <= n { store((load(xr, i) - mv) * rv, yr, i); i += 16 }
            while i < n { yr[i] = (xr[i] - mu) * rs; i += 1 }
        }
    }
}

/// Backward of layer norm. Writes dx; accumulates dgamma/dbeta (if given) — these are summed
/// over rows with per-thread partials so the result does not depend on thread timing.
public func layerNormRowsBackward(_ x: UnsafePointer<Float>, _ dy: UnsafePointer<Float>, gamma: UnsafePointer<Float>?, mean: UnsafePointer<Float>, rstd: UnsafePointer<Float>,
                                  dx: UnsafeMutablePointer<Float>, dgamma: UnsafeMutablePointer<Float>?, dbeta: UnsafeMutablePointer<Float>?, rows: Int, n: Int, pool: ThreadPool) {
    let xb = UncheckedSendableBox(x), db = UncheckedSendableBox(dy), gb = UncheckedSendableBox(gamma)
    let mb = UncheckedSendableBox(mean), rb = UncheckedSendableBox(rstd), ob = UncheckedSendableBox(dx)
    let work = rows * n < parallelElementThreshold ? ThreadPool.serial : pool
    let chunks = min(work.threadCount, max(rows, 1))
    // Per-chunk partial sums of dgamma and dbeta: [chunks, 2, n].
    let partial = UnsafeMutablePointer<Float>.allocate(capacity: chunks * 2 * n)
    partial.initialize(repeating: 0, count: chunks * 2 * n)
    defer { partial.deallocate() }
    let pb = UncheckedSendableBox(partial)
    let xhat = UnsafeMutablePointer<Float>.allocate(capacity: chunks * n)
    defer { xhat.deallocate() }
    let hb = UncheckedSendableBox(xhat)
    work.parallelFor(chunks) { c in
        let pg = pb.value + c * 2 * n, pbeta = pg + n, xh = hb.value + c * n
        for r in (rows * c / chunks)..<(rows * (c + 1) / chunks) {
            let xr = xb.value + r * n, dyr = db.value + r * n, dxr = ob.value + r * n
            let mu = mb.value[r], rs = rb.value[r]
            var sumG: Float = 0, sumGX: Float = 0
            for i in 0..<n {
                let h = (xr[i] - mu) * rs
                xh[i] = h
                let g = dyr[i] * (gb.value?[i] ?? 1)
                sumG += g
                sumGX += g * h
                pg[i] += dyr[i] * h
                pbeta[i] += dyr[i]
            }
            let meanG = sumG / Float(n), meanGX = sumGX / Float(n)
            for i in 0..<n {
                let g = dyr[i] * (gb.value?[i] ?? 1)
                dxr[i] = rs * (g - meanG - xh[i] * meanGX)
            }
        }
    }
    for c in 0..<chunks {
        let pg = partial + c * 2 * n
        if let dg = dgamma { for i in 0..<n { dg[i] += pg[i] } }
        if let dbt = dbeta { for i in 0..<n { dbt[i] += pg[n + i] } }
    }
}

public func layerNormRowsReference(_ x: [Float], gamma: [Float], beta: [Float], rows: Int, n: Int, eps: Float) -> [Float] {
    var y = [Float](repeating: 0, count: rows * n)
    for r in 0..<rows {
        var mu: Double = 0
        for i in 0..<n { mu += Double(x[r * n + i]) }
        mu /= Double(n)
        var v: Double = 0
        for i in 0..<n { let d = Double(x[r * n + i]) - mu; v += d * d }
        let rs = 1 / (v / Double(n) + Double(eps)).squareRoot()
        for i in 0..<n { y[r * n + i] = Float((Double(x[r * n + i]) - mu) * rs) * gamma[i] + beta[i] }
    }
    return y
}

/// out[o, i] = Σ_l x[o, l, i] (x viewed as [outer, length, inner]).
public func sumAxis(_ x: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, outer: Int, length: Int, inner: Int, pool: ThreadPool) {
    let xb = UncheckedSendableBox(x), ob = UncheckedSendableBox(out)
    if inner == 1 {
        forEachRow(outer, width: length, pool: pool) { o in ob.value[o] = rowSum(xb.value + o * length, length) }
        return
    }
    forEachRow(outer, width: length * inner, pool: pool) { o in
        let dst = ob.value + o * inner
        dst.initialize(repeating: 0, count: inner)
        for l in 0..<length {
            let src = xb.value + (o * length + l) * inner
            var i = 0
            while i + 16 <= inner { store(load(dst, i) + load(src, i), dst, i); i += 16 }
            while i < inner { dst[i] += src[i]; i += 1 }
        }
    }
}

/// out[o, i] = max_l x[o, l, i], argmax (as l) saved for the backward pass.
public func maxAxis(_ x: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, argmax: UnsafeMutablePointer<Int32>, outer: Int, length: Int, inner: Int) {
    for o in 0..<outer {
        for i in 0..<inner {
            var best = -Float.infinity, arg: Int32 = 0
            for l in 0..<length {
                let v = x[(o * length + l) * inner + i]
                if v > best || (l == 0) { best = v; arg = Int32(l) }
            }
            out[o * inner + i] = best
            argmax[o * inner + i] = arg
        }
    }
}

/// im2col for NCHW input of one image: columns [C·kh·kw, outH·outW].
public func im2col(_ x: UnsafePointer<Float>, channels: Int, height: Int, width: Int, kernelH: Int, kernelW: Int,
                   strideH: Int, strideW: Int, padH: Int, padW: Int, outH: Int, outW: Int, _ cols: UnsafeMutablePointer<Float>) {
    let spatial = outH * outW
    for c in 0..<channels {
        for ki in 0..<kernelH {
            for kj in 0..<kernelW {
                let row = cols + ((c * kernelH + ki) * kernelW + kj) * spatial
                for oh in 0..<outH {
                    let ih = oh * strideH - padH + ki
                    let dst = row + oh * outW
                    if ih < 0 || ih >= height {
                        dst.initialize(repeating: 0, count: outW)
                        continue
                    }
                    let src = x + (c * height + ih) * width
                    for ow in 0..<outW {
                        let iw = ow * strideW - padW + kj
                        dst[ow] = (iw >= 0 && iw < width) ? src[iw] : 0
                    }
                }
            }
        }
    }
}

/// The adjoint of im2col: accumulates columns back into the image gradient (dx += col2im(cols)).
public func col2im(_ cols: UnsafePointer<Float>, channels: Int, height: Int, width: Int, kernelH: Int, kernelW: Int,
                   strideH: Int, strideW: Int, padH: Int, padW: Int, outH: Int, outW: Int, _ dx: UnsafeMutablePointer<Float>) {
    let spatial = outH * outW
    for c in 0..<channels {
        for ki in 0..<kernelH {
            for kj in 0..<kernelW {
                let row = cols + ((c * kernelH + ki) * kernelW + kj) * spatial
                for oh in 0..<outH {
                    let ih = oh * strideH - padH + ki
                    if ih < 0 || ih >= height { continue }
                    let dst = dx + (c * height + ih) * width
                    for ow in 0..<outW {
                        let iw = ow * strideW - padW + kj
                        if iw >= 0 && iw < width { dst[iw] += row[oh * outW + ow] }
                    }
                }
            }
        }
    }
}

/// Plain twin of im2col: reads each column entry by its definition.
public func im2colReference(_ x: [Float], channels: Int, height: Int, width: Int, kernelH: Int, kernelW: Int,
                            strideH: Int, strideW: Int, padH: Int, padW: Int) -> (cols: [Float], outH: Int, outW: Int) {
    let outH = (height + 2 * padH - kernelH) / strideH + 1
    let outW = (width + 2 * padW - kernelW) / strideW + 1
    var cols = [Float](repeating: 0, count: channels * kernelH * kernelW * outH * outW)
    for c in 0..<channels { for ki in 0..<kernelH { for kj in 0..<kernelW {
        for oh in 0..<outH { for ow in 0..<outW {
            let ih = oh * strideH - padH + ki, iw = ow * strideW - padW + kj
            let v: Float = (ih >= 0 && ih < height && iw >= 0 && iw < width) ? x[(c * height + ih) * width + iw] : 0
            cols[(((c * kernelH + ki) * kernelW + kj) * outH + oh) * outW + ow] = v
        } }
    } } }
    return (cols, outH, outW)
}
