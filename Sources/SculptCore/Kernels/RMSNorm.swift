import Foundation

// RMS norm over rows (LLaMA's RMSNorm): y = x · rstd · w with rstd = 1/√(mean(x²) + eps),
// computed in float32 as transformers' LlamaRMSNorm does. Each kernel has a plain twin.

@inline(__always) private func load(_ p: UnsafePointer<Float>, _ i: Int) -> F16x {
    UnsafeRawPointer(p + i).loadUnaligned(as: F16x.self)
}
@inline(__always) private func store(_ v: F16x, _ p: UnsafeMutablePointer<Float>, _ i: Int) {
    UnsafeMutableRawPointer(p + i).storeBytes(of: v, as: F16x.self)
}

/// y = x · rstd · weight per row of length n; writes each row's rstd (if `rstd` is given).
public func rmsNormRows(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, weight: UnsafePointer<Float>?,
                        rstd: UnsafeMutablePointer<Float>?, rows: Int, n: Int, eps: Float, pool: ThreadPool) {
    let xb = UncheckedSendableBox(x), yb = UncheckedSendableBox(y), wb = UncheckedSendableBox(weight), rb = UncheckedSendableBox(rstd)
    forEachRow(rows, width: n, pool: pool) { r in
        let xr = xb.value + r * n, yr = yb.value + r * n
        var acc = F16x()
        var i = 0
        while i + 16 <= n { let v = load(xr, i); acc += v * v; i += 16 }
        var ss = acc.sum()
        while i < n { ss += xr[i] * xr[i]; i += 1 }
        let rs = 1 / (ss / Float(n) + eps).squareRoot()
        rb.value?[r] = rs
        let rv = F16x(repeating: rs)
        i = 0
        if let w = wb.value {
            while i + 16 <= n { store(load(xr, i) * rv * load(w, i), yr, i); i += 16 }
            while i < n { yr[i] = w[i] * (xr[i] * rs); i += 1 }
        } else {
            while i + 16 <= n { store(load(xr, i) * rv, yr, i); i += 16 }
            while i < n { yr[i] = xr[i] * rs; i += 1 }
        }
    }
}

/// Backward of `rmsNormRows`: dx = rstd·(g·w − x̂·mean(g·w·x̂)) with x̂ = x·rstd; accumulates
/// dweight (if given) with per-chunk partials, so the sum does not depend on thread timing.
public func rmsNormRowsBackward(_ x: UnsafePointer<Float>, _ dy: UnsafePointer<Float>, weight: UnsafePointer<Float>?, rstd: UnsafePointer<Float>,
                                dx: UnsafeMutablePointer<Float>, dweight: UnsafeMutablePointer<Float>?, rows: Int, n: Int, pool: ThreadPool) {
    let xb = UncheckedSendableBox(x), db = UncheckedSendableBox(dy), wb = UncheckedSendableBox(weight)
    let rb = UncheckedSendableBox(rstd), ob = UncheckedSendableBox(dx)
    let work = rows * n < parallelElementThreshold ? ThreadPool.serial : pool
    let chunks = min(work.threadCount, max(rows, 1))
    let partial = UnsafeMutablePointer<Float>.allocate(capacity: chunks * n)
    partial.initialize(repeating: 0, count: chunks * n)
    defer { partial.deallocate() }
    let pb = UncheckedSendableBox(partial)
    let wantWeight = dweight != nil
    work.parallelFor(chunks) { c in
        let pw = pb.value + c * n
        for r in (rows * c / chunks)..<(rows * (c + 1) / chunks) {
            let xr = xb.value + r * n, dyr = db.value + r * n, dxr = ob.value + r * n
            let rs = rb.value[r]
            var dot: Float = 0
            if let w = wb.value {
                for i in 0..<n { dot += dyr[i] * w[i] * xr[i] }
            } else {
                for i in 0..<n { dot += dyr[i] * xr[i] }
            }
            // mean(g·w·x̂) · rstd = dot · rstd² / n (x̂ = x·rstd).
            let k = dot * rs * rs / Float(n)
            if let w = wb.value {
                for i in 0..<n { dxr[i] = rs * (dyr[i] * w[i] - xr[i] * k) }
            } else {
                for i in 0..<n { dxr[i] = rs * (dyr[i] - xr[i] * k) }
            }
            if wantWeight { for i in 0..<n { pw[i] += dyr[i] * xr[i] * rs } }
        }
    }
    if let dw = dweight {
        for c in 0..<chunks { let pw = partial + c * n; for i in 0..<n { dw[i] += pw[i] } }
    }
}

/// Plain twin of `rmsNormRows` (double accumulation), for tests.
public func rmsNormRowsReference(_ x: [Float], weight: [Float]?, rows: Int, n: Int, eps: Float) -> [Float] {
    var y = [Float](repeating: 0, count: rows * n)
    for r in 0..<rows {
        var ss: Double = 0
        for i in 0..<n { ss += Double(x[r * n + i]) * Double(x[r * n + i]) }
        let rs = 1 / (ss / Double(n) + Double(eps)).squareRoot()
        for i in 0..<n { y[r * n + i] = Float(Double(x[r * n + i]) * rs * Double(weight?[i] ?? 1)) }
    }
    return y
}
