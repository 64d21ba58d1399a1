import Foundation

/// Geometry of a 2-D convolution or pooling window over NCHW tensors.
public struct Conv2DGeometry: Sendable, Equatable {
    public let batch, channels, height, width: Int
    public let kernelH, kernelW, strideH, strideW, padH, padW: Int
    public var outH: Int { (height + 2 * padH - kernelH) / strideH + 1 }
    public var outW: Int { (width + 2 * padW - kernelW) / strideW + 1 }

    public init(input: [Int], kernel: (Int, Int), stride: (Int, Int), padding: (Int, Int), op: String) throws {
        guard input.count == 4 else { throw ShapeError(op, "expected an NCHW input, got shape \(input)") }
        batch = input[0]; channels = input[1]; height = input[2]; width = input[3]
        (kernelH, kernelW) = kernel
        (strideH, strideW) = stride
        (padH, padW) = padding
        guard kernelH > 0, kernelW > 0, strideH > 0, strideW > 0, padH >= 0, padW >= 0 else {
            throw ShapeError(op, "invalid kernel \(kernel), stride \(stride) or padding \(padding)")
        }
        guard height + 2 * padH >= kernelH, width + 2 * padW >= kernelW else {
            throw ShapeError(op, "kernel \(kernel) is larger than the padded input \(input)")
        }
    }
}

extension Tensor {
    /// conv2d over NCHW input with weight [O, C, kh, kw] (im2col + GEMM, one image per task).
    public static func conv2d(_ x: Tensor, weight: Tensor, bias: Tensor?, stride: (Int, Int), padding: (Int, Int)) -> Tensor {
        let g = checked { try Conv2DGeometry(input: x.shape, kernel: (weight.shape.count == 4 ? weight.shape[2] : 0, weight.shape.count == 4 ? weight.shape[3] : 0), stride: stride, padding: padding, op: "conv2d") }
        guard weight.rank == 4, weight.shape[1] == g.channels else {
            shapeFailure(ShapeError("conv2d", "weight \(weight.shape) does not match input \(x.shape) (want [O, \(g.channels), kh, kw])"))
        }
        let outC = weight.shape[0]
        if let b = bias, b.shape != [outC] { shapeFailure(ShapeError("conv2d", "bias \(b.shape) does not match \(outC) output channels")) }
        let out = Tensor(uninitializedShape: [g.batch, outC, g.outH, g.outW])
        let ckk = g.channels * g.kernelH * g.kernelW, spatial = g.outH * g.outW
        let pool = ExecutionContext.pool
        let workers = Swift.min(pool.threadCount, Swift.max(g.batch, 1))
        let scratch = UnsafeMutablePointer<Float>.allocate(capacity: workers * ckk * spatial)
        defer { scratch.deallocate() }
        let xb = UncheckedSendableBox(x.storage.pointer), wb = UncheckedSendableBox(weight.storage.pointer)
        let ob = UncheckedSendableBox(out.storage.pointer), sb = UncheckedSendableBox(scratch)
        let biasB = UncheckedSendableBox(bias?.storage.pointer)
        pool.parallelFor(workers) { w in
            let cols = sb.value + w * ckk * spatial
            for n in (g.batch * w / workers)..<(g.batch * (w + 1) / workers) {
                im2col(xb.value + n * g.channels * g.height * g.width, channels: g.channels, height: g.height, width: g.width,
                       kernelH: g.kernelH, kernelW: g.kernelW, strideH: g.strideH, strideW: g.strideW, padH: g.padH, padW: g.padW,
                       outH: g.outH, outW: g.outW, cols)
                let dst = ob.value + n * outC * spatial
                sgemm(transA: false, transB: false, m: outC, n: spatial, k: ckk, alpha: 1, a: wb.value, lda: ckk, b: cols, ldb: spatial,
                      beta: 0, c: dst, ldc: spatial, pool: .serial)
                if let bp = biasB.value {
                    for o in 0..<outC { let v = bp[o]; for i in 0..<spatial { dst[o * spatial + i] += v } }
                }
            }
        }
        return out
    }

    /// Gradients of conv2d: (dx, dweight, dbias) for upstream dy [N, O, outH, outW].
    public static func conv2dBackward(_ x: Tensor, weight: Tensor, upstream dy: Tensor, stride: (Int, Int), padding: (Int, Int), needInput: Bool) -> (dx: Tensor?, dw: Tensor, db: Tensor) {
        let g = checked { try Conv2DGeometry(input: x.shape, kernel: (weight.shape[2], weight.shape[3]), stride: stride, padding: padding, op: "conv2d") }
        let outC = weight.shape[0], ckk = g.channels * g.kernelH * g.kernelW, spatial = g.outH * g.outW
        let pool = ExecutionContext.pool
        let workers = Swift.min(pool.threadCount, Swift.max(g.batch, 1))
        let dx: Tensor? = needInput ? Tensor.zeros(x.shape) : nil
        // Per-worker scratch: columns, their gradient, and partial dW / db.
        let perWorker = 2 * ckk * spatial + outC * ckk + outC
        let scratch = UnsafeMutablePointer<Float>.allocate(capacity: workers * perWorker)
        scratch.initialize(repeating: 0, count: workers * perWorker)
        defer { scratch.deallocate() }
        let xb = UncheckedSendableBox(x.storage.pointer), wb = UncheckedSendableBox(weight.storage.pointer)
        let dyb = UncheckedSendableBox(dy.storage.pointer), sb = UncheckedSendableBox(scratch), dxb = UncheckedSendableBox(dx?.storage.pointer)
        pool.parallelFor(workers) { w in
            let cols = sb.value + w * perWorker, dcols = cols + ckk * spatial, dwPart = dcols + ckk * spatial, dbPart = dwPart + outC * ckk
            for n in (g.batch * w / workers)..<(g.batch * (w + 1) / workers) {
                im2col(xb.value + n * g.channels * g.height * g.width, channels: g.channels, height: g.height, width: g.width,
                       kernelH: g.kernelH, kernelW: g.kernelW, strideH: g.strideH, strideW: g.strideW, padH: g.padH, padW: g.padW,
                       outH: g.outH, outW: g.outW, cols)
                let dyn = dyb.value + n * outC * spatial
                // dW += dy_n · colsᵀ
                sgemm(transA: false, transB: true, m: outC, n: ckk, k: spatial, alpha: 1, a: dyn, lda: spatial, b: cols, ldb: spatial,
                      beta: 1, c: dwPart, ldc: ckk, pool: .serial)
                for o in 0..<outC { dbPart[o] += sumBuffer(dyn + o * spatial, count: spatial) }
                if let dxp = dxb.value {
                    // dcols = Wᵀ · dy_n, then scatter back.
                    sgemm(transA: true, transB: false, m: ckk, n: spatial, k: outC, alpha: 1, a: wb.value, lda: ckk, b: dyn, ldb: spatial,
                          beta: 0, c: dcols, ldc: spatial, pool: .serial)
                    col2im(dcols, channels: g.channels, height: g.height, width: g.width, kernelH: g.kernelH, kernelW: g.kernelW,
                           strideH: g.strideH, strideW: g.strideW, padH: g.padH, padW: g.padW, outH: g.outH, outW: g.outW,
                           dxp + n * g.channels * g.height * g.width)
                }
            }
        }
        var dw = Tensor.zeros(weight.shape), db = Tensor.zeros([outC])
        dw.withUnsafeMutablePointer { d in
            for w in 0..<workers { let p = scratch + w * perWorker + 2 * ckk * spatial; for i in 0..<(outC * ckk) { d[i] += p[i] } }
        }
        db.withUnsafeMutablePointer { d in
            for w in 0..<workers { let p = scratch + w * perWorker + 2 * ckk * spatial + outC * ckk; for i in 0..<outC { d[i] += p[i] } }
        }
        return (dx, dw, db)
    }

    /// Max pooling; returns the output and, per output element, the flat input index of the max.
    public static func maxPool2d(_ x: Tensor, kernel: (Int, Int), stride: (Int, Int), padding: (Int, Int) = (0, 0)) -> (Tensor, [Int32]) {
        let g = checked { try Conv2DGeometry(input: x.shape, kernel: kernel, stride: stride, padding: padding, op: "maxPool2d") }
        let out = Tensor(uninitializedShape: [g.batch, g.channels, g.outH, g.outW])
        var arg = [Int32](repeating: 0, count: out.count)
        let src = x.storage.pointer, dst = out.storage.pointer
        var o = 0
        for nc in 0..<(g.batch * g.channels) {
            let base = nc * g.height * g.width
            for oh in 0..<g.outH {
                for ow in 0..<g.outW {
                    var best = -Float.infinity, bi = -1
                    for ki in 0..<g.kernelH {
                        let ih = oh * g.strideH - g.padH + ki
                        if ih < 0 || ih >= g.height { continue }
                        for kj in 0..<g.kernelW {
                            let iw = ow * g.strideW - g.padW + kj
                            if iw < 0 || iw >= g.width { continue }
                            let v = src[base + ih * g.width + iw]
                            if bi < 0 || v > best { best = v; bi = base + ih * g.width + iw }
                        }
                    }
                    dst[o] = best
                    arg[o] = Int32(bi)
                    o += 1
                }
            }
        }
        return (out, arg)
    }

    /// Average pooling (padding counts as zeros in the average, like PyTorch's default).
    public static func avgPool2d(_ x: Tensor, kernel: (Int, Int), stride: (Int, Int), padding: (Int, Int) = (0, 0)) -> Tensor {
        let g = checked { try Conv2DGeometry(input: x.shape, kernel: kernel, stride: stride, padding: padding, op: "avgPool2d") }
        let out = Tensor(uninitializedShape: [g.batch, g.channels, g.outH, g.outW])
        let src = x.storage.pointer, dst = out.storage.pointer
        let inv = 1 / Float(g.kernelH * g.kernelW)
        var o = 0
        for nc in 0..<(g.batch * g.channels) {
            let base = nc * g.height * g.width
            for oh in 0..<g.outH {
                for ow in 0..<g.outW {
                    var s: Float = 0
                    for ki in 0..<g.kernelH {
                        let ih = oh * g.strideH - g.padH + ki
                        if ih < 0 || ih >= g.height { continue }
                        for kj in 0..<g.kernelW {
                            let iw = ow * g.strideW - g.padW + kj
                            if iw >= 0 && iw < g.width { s += src[base + ih * g.width + iw] }
                        }
                    }
                    dst[o] = s * inv
                    o += 1
                }
            }
        }
        return out
    }

    /// The adjoint of avgPool2d.
    public static func avgPool2dBackward(_ dy: Tensor, inputShape: [Int], kernel: (Int, Int), stride: (Int, Int), padding: (Int, Int)) -> Tensor {
        let g = checked { try Conv2DGeometry(input: inputShape, kernel: kernel, stride: stride, padding: padding, op: "avgPool2d") }
        var dx = Tensor.zeros(inputShape)
        let inv = 1 / Float(g.kernelH * g.kernelW)
        dx.withUnsafeMutablePointer { d in
            let src = dy.storage.pointer
            var o = 0
            for nc in 0..<(g.batch * g.channels) {
                let base = nc * g.height * g.width
                for oh in 0..<g.outH {
                    for ow in 0..<g.outW {
                        let v = src[o] * inv
                        for ki in 0..<g.kernelH {
                            let ih = oh * g.strideH - g.padH + ki
                            if ih < 0 || ih >= g.height { continue }
                            for kj in 0..<g.kernelW {
                                let iw = ow * g.strideW - g.padW + kj
                                if iw >= 0 && iw < g.width { d[base + ih * g.width + iw] += v }
                            }
                        }
                        o += 1
                    }
                }
            }
        }
        return dx
    }
}
