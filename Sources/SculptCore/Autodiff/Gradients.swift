import Foundation

/// Every differentiable operation, with what its backward pass needs saved.
/// The gradient rules for all of them live in `Gradients.inputGradients` below — one table.
enum Op {
    case binary(BinaryFunction)
    case unary(UnaryFunction)
    case affine(alpha: Float)
    case sum(axes: [Int], keepDims: Bool)
    case mean(axes: [Int], keepDims: Bool)
    case maxAlong(axis: Int, keepDims: Bool, indices: [Int32])
    case matmul(transposeA: Bool, transposeB: Bool)
    /// x·Wᵀ (+ b) + hidden_i·up_iᵀ in the columns from `updateOffsets[i]` (inputs x, W, [b,]
    /// hidden_0, up_0, …); a Linear layer's x·Wᵀ + b has no updates.
    case linear(updateOffsets: [Int], hasBias: Bool)
    /// x·Wᵀ (+ b) with W (as assembled in the forward pass) constant except `blocks`
    /// (inputs x, block_0, …, [b]).
    case trainableBlocksMatmul(weight: Tensor, blocks: [WeightBlock], hasBias: Bool)
    case reshape
    case permute([Int])
    case slice(axis: Int, range: Range<Int>)
    case concat(axis: Int, sizes: [Int])
    case indexSelect(axis: Int, indices: [Int32])
    case softmax(log: Bool)
    case maskedSoftmax(scale: Float)
    case fusedAttention(shape: AttentionShape, probabilities: Tensor, dropoutMask: Tensor?)
    case layerNorm(mean: Tensor, rstd: Tensor, affine: Bool)
    case crossEntropy(logProbs: Tensor, labels: [Int32], ignoreIndex: Int32, counted: Int)
    case lmCrossEntropy(labels: [Int32], ignoreIndex: Int32, counted: Int, chunkRows: Int)
    /// Inputs [hidden, weight]; the teacher's tensors are constants.
    case lmDistillation(teacherHidden: Tensor, teacherWeight: Tensor, counted: [Bool], rows: Int, temperature: Float, chunkRows: Int)
    /// Activation checkpointing: inputs [x, parameters…]; the backward pass runs `recompute`.
    case checkpoint(recompute: (Variable) -> Variable)
    case klDivergence(temperature: Float, studentLogProbs: Tensor, teacherLogProbs: Tensor)
    case scaleByMask(Tensor)
    case select(mask: Tensor)
    case conv2d(stride: (Int, Int), padding: (Int, Int), hasBias: Bool)
    case maxPool2d(argmax: [Int32])
    case avgPool2d(kernel: (Int, Int), stride: (Int, Int), padding: (Int, Int))
    case batchNorm(normalized: Tensor, rstd: Tensor, batchStatistics: Bool)
    case straightThrough
    /// RMS norm over the last axis with the per-row rstd saved (inputs x[, weight]).
    case rmsNorm(rstd: Tensor)
    /// Rotary position embedding of rows [N, heads·headDim] at per-row positions.
    case rotary(table: RotaryTable, positions: [Int32], heads: Int, headDim: Int)
    /// Causal grouped-query attention (inputs q, k, v).
    case causalAttention(shape: GroupedAttentionShape, probabilities: Tensor)
    /// silu(gate) · up (inputs gate, up).
    case swiglu
    /// Rows of an embedding table whose gradient skips `paddingIndex` (nn.Embedding's padding_idx).
    case paddedEmbedding(indices: [Int32], paddingIndex: Int32)

    var name: String {
        switch self {
        case .binary(let f): return f.rawValue
        case .unary(let f): return f.rawValue
        case .affine: return "affine"
        case .sum: return "sum"
        case .mean: return "mean"
        case .maxAlong: return "max"
        case .matmul: return "matmul"
        case .linear: return "linear"
        case .trainableBlocksMatmul: return "trainableBlocksMatmul"
        case .reshape: return "reshape"
        case .permute: return "permute"
        case .slice: return "slice"
        case .concat: return "concat"
        case .indexSelect: return "indexSelect"
        case .softmax(let log): return log ? "logSoftmax" : "softmax"
        case .maskedSoftmax: return "maskedSoftmax"
        case .fusedAttention: return "fusedAttention"
        case .layerNorm: return "layerNorm"
        case .crossEntropy: return "crossEntropy"
        case .lmCrossEntropy: return "lmCrossEntropy"
        case .lmDistillation: return "lmDistillation"
        case .checkpoint: return "checkpoint"
        case .klDivergence: return "klDivergence"
        case .scaleByMask: return "scaleByMask"
        case .select: return "where"
        case .conv2d: return "conv2d"
        case .maxPool2d: return "maxPool2d"
        case .avgPool2d: return "avgPool2d"
        case .batchNorm: return "batchNorm"
        case .straightThrough: return "straightThrough"
        case .rmsNorm: return "rmsNorm"
        case .rotary: return "rotary"
        case .causalAttention: return "causalAttention"
        case .swiglu: return "swiglu"
        case .paddedEmbedding: return "embedding"
        }
    }
}

enum Gradients {
    /// Gradients with respect to each input, given the upstream gradient `g` of the output.
    /// `nil` marks an input that gets no gradient (indices, masks).
    static func inputGradients(_ op: Op, inputs: [Variable], output y: Tensor, upstream g: Tensor) -> [Tensor?] {
        switch op {
        case .binary(let f):
            let a = inputs[0].value, b = inputs[1].value
            let needA = inputs[0].requiresGrad, needB = inputs[1].requiresGrad
            switch f {
            case .add:
                return [needA ? g.sumToShape(a.shape) : nil, needB ? g.sumToShape(b.shape) : nil]
            case .sub:
                return [needA ? g.sumToShape(a.shape) : nil, needB ? (-g).sumToShape(b.shape) : nil]
            case .mul:
                return [needA ? (g * b).sumToShape(a.shape) : nil, needB ? (g * a).sumToShape(b.shape) : nil]
            case .div:
                // d(a/b)/da = 1/b; d(a/b)/db = −a/b² = −y/b
                return [needA ? (g / b).sumToShape(a.shape) : nil, needB ? (-(g * y) / b).sumToShape(b.shape) : nil]
            }

        case .unary(let f):
            switch f {
            case .exp: return [g * y]
            case .sqrt: return [(g / y).affine(0.5)]
            case .sigmoid: return [g * y * (1 - y)]
            default: return [inputs[0].value.unaryGradient(f, upstream: g)]
            }

        case .affine(let alpha):
            return [g.affine(alpha)]

        case .sum(let axes, let keepDims), .mean(let axes, let keepDims):
            let xShape = inputs[0].value.shape
            let rank = xShape.count
            let norm = Set(axes.map { $0 < 0 ? $0 + rank : $0 })
            var kept = xShape
            for a in norm { kept[a] = 1 }
            var gx = (keepDims ? g : g.reshaped(kept)).expanded(to: xShape)
            if case .mean = op {
                let n = norm.map { xShape[$0] }.reduce(1, *)
                gx = gx.affine(1 / Float(max(n, 1)))
            }
            return [gx]

        case .maxAlong(let axis, _, let indices):
            let xShape = inputs[0].value.shape
            let outer = Shape.count(Array(xShape[..<axis])), length = xShape[axis], inner = Shape.count(Array(xShape[(axis + 1)...]))
            var gx = Tensor.zeros(xShape)
            gx.withUnsafeMutablePointer { d in
                g.withUnsafePointer { gp in
                    for o in 0..<outer { for i in 0..<inner {
                        d[(o * length + Int(indices[o * inner + i])) * inner + i] += gp[o * inner + i]
                    } }
                }
            }
            return [gx]

        case .matmul(let ta, let tb):
            let a = inputs[0].value, b = inputs[1].value
            var ga: Tensor? = nil, gb: Tensor? = nil
            if inputs[0].requiresGrad {
                // C = op(A)·op(B): dop(A) = G·op(B)ᵀ; if A was transposed, dA = op(B)·Gᵀ.
                ga = ta ? Tensor.matmul(b, g, transposeA: tb, transposeB: true)
                        : Tensor.matmul(g, b, transposeA: false, transposeB: !tb)
            }
            if inputs[1].requiresGrad {
                if b.rank == 2 && a.rank > 2 {
                    // Shared matrix: fold the batch of A and G into rows.
                    let a2 = a.reshaped([-1, a.shape[a.rank - 1]]), g2 = g.reshaped([-1, g.shape[g.rank - 1]])
                    if ta {
                        gb = tb ? Tensor.batchedSharedGradient(a, g, transposeA: true, transposeB: true)
                                : Tensor.batchedSharedGradient(a, g, transposeA: true, transposeB: false)
                    } else {
                        gb = tb ? Tensor.matmul(g2, a2, transposeA: true, transposeB: false) : Tensor.matmul(a2, g2, transposeA: true, transposeB: false)
                    }
                } else {
                    gb = tb ? Tensor.matmul(g, a, transposeA: true, transposeB: ta)
                            : Tensor.matmul(a, g, transposeA: !ta, transposeB: false)
                }
            }
            return [ga, gb]

        case .linear(let offsets, let hasBias):
            // x and W as a matmul; db sums g over every row; each update reads its columns of g
            // in place (leading dimension `out`): d hidden = g[:, cols]·up, d up = g[:, cols]ᵀ·hidden.
            var grads = inputGradients(.matmul(transposeA: false, transposeB: true), inputs: [inputs[0], inputs[1]], output: y, upstream: g)
            if hasBias { grads.append(inputs[2].requiresGrad ? g.sumToShape(inputs[2].value.shape) : nil) }
            let first = hasBias ? 3 : 2, out = inputs[1].value.shape[0], rows = g.count / max(out, 1)
            let pool = ExecutionContext.pool
            for (i, offset) in offsets.enumerated() {
                let hidden = inputs[first + 2 * i], up = inputs[first + 2 * i + 1]
                let n = up.value.shape[0], r = up.value.shape[1]
                var dHidden: Tensor? = nil, dUp: Tensor? = nil
                if hidden.requiresGrad {
                    let t = Tensor(uninitializedShape: hidden.value.shape)
                    sgemm(transA: false, transB: false, m: rows, n: r, k: n, alpha: 1, a: g.storage.pointer + offset, lda: out,
                          b: up.value.storage.pointer, ldb: r, beta: 0, c: t.storage.pointer, ldc: r, pool: pool)
                    dHidden = t
                }
                if up.requiresGrad {
                    let t = Tensor(uninitializedShape: up.value.shape)
                    sgemm(transA: true, transB: false, m: n, n: r, k: rows, alpha: 1, a: g.storage.pointer + offset, lda: out,
                          b: hidden.value.storage.pointer, ldb: r, beta: 0, c: t.storage.pointer, ldc: r, pool: pool)
                    dUp = t
                }
                grads += [dHidden, dUp]
            }
            return grads

        case .trainableBlocksMatmul(let w, let blocks, let hasBias):
            // y = x·Wᵀ: dx = g·W; a row block [k, in] at o gets g[:, o..<o+k]ᵀ·x, a column
            // block [out, k] at o gets gᵀ·x[:, o..<o+k] — strided GEMMs, no copies.
            let x = inputs[0].value
            let out = w.shape[0], inF = w.shape[1], rows = x.count / max(inF, 1)
            let pool = ExecutionContext.pool
            var grads: [Tensor?] = [inputs[0].requiresGrad ? Tensor.matmul(g, w).reshaped(x.shape) : nil]
            for (i, b) in blocks.enumerated() {
                let v = inputs[i + 1]
                guard v.requiresGrad else { grads.append(nil); continue }
                let shape = v.value.shape
                let gb = Tensor(uninitializedShape: shape)
                switch b.axis {
                case .rows:
                    sgemm(transA: true, transB: false, m: shape[0], n: inF, k: rows, alpha: 1, a: g.storage.pointer + b.offset, lda: out,
                          b: x.storage.pointer, ldb: inF, beta: 0, c: gb.storage.pointer, ldc: inF, pool: pool)
                case .columns:
                    sgemm(transA: true, transB: false, m: out, n: shape[1], k: rows, alpha: 1, a: g.storage.pointer, lda: out,
                          b: x.storage.pointer + b.offset, ldb: inF, beta: 0, c: gb.storage.pointer, ldc: shape[1], pool: pool)
                }
                grads.append(gb)
            }
            if hasBias, let b = inputs.last { grads.append(b.requiresGrad ? g.sumToShape(b.value.shape) : nil) }
            return grads

        case .reshape:
            return [g.reshaped(inputs[0].value.shape)]

        case .permute(let order):
            var inverse = [Int](repeating: 0, count: order.count)
            for (i, o) in order.enumerated() { inverse[o] = i }
            return [g.permuted(inverse)]

        case .slice(let axis, let range):
            return [g.unsliced(axis: axis, range, fullShape: inputs[0].value.shape)]

        case .concat(let axis, let sizes):
            var start = 0
            return sizes.enumerated().map { (i, size) in
                defer { start += size }
                return inputs[i].requiresGrad ? g.slice(axis: axis, start..<(start + size)) : nil
            }

        case .indexSelect(let axis, let indices):
            return [g.indexAdd(axis: axis, indices, fullShape: inputs[0].value.shape)]

        case .softmax(let log):
            let n = y.shape.last ?? 1
            let gx = Tensor(uninitializedShape: y.shape)
            softmaxRowsBackward(y.storage.pointer, g.storage.pointer, gx.storage.pointer, rows: y.count / max(n, 1), n: n, log: log, pool: ExecutionContext.pool)
            return [gx]

        case .maskedSoftmax(let scale):
            // Masked entries have y = 0 and so receive no gradient.
            let n = y.shape.last ?? 1
            let gx = Tensor(uninitializedShape: y.shape)
            softmaxRowsBackward(y.storage.pointer, g.storage.pointer, gx.storage.pointer, rows: y.count / max(n, 1), n: n, log: false, pool: ExecutionContext.pool)
            return [scale == 1 ? gx : gx.affine(scale)]

        case .fusedAttention(let shape, let probabilities, let dropoutMask):
            return [FusedAttention.backward(qkv: inputs[0].value, probabilities: probabilities, dropoutMask: dropoutMask, upstream: g, shape: shape)]

        case .layerNorm(let mean, let rstd, let affine):
            let x = inputs[0].value
            let n = x.shape.last ?? 1
            let gx = Tensor(uninitializedShape: x.shape)
            var dgamma: Tensor? = nil, dbeta: Tensor? = nil
            if affine {
                dgamma = Tensor.zeros([n]); dbeta = Tensor.zeros([n])
            }
            let gamma = affine ? inputs[1].value : nil
            layerNormRowsBackward(x.storage.pointer, g.storage.pointer, gamma: gamma.map { UnsafePointer($0.storage.pointer) },
                                  mean: mean.storage.pointer, rstd: rstd.storage.pointer, dx: gx.storage.pointer,
                                  dgamma: dgamma?.storage.pointer, dbeta: dbeta?.storage.pointer, rows: x.count / max(n, 1), n: n, pool: ExecutionContext.pool)
            return affine ? [gx, dgamma!.reshaped(inputs[1].value.shape), dbeta!.reshaped(inputs[2].value.shape)] : [gx]

        case .crossEntropy(let logProbs, let labels, let ignoreIndex, let counted):
            // d(mean −log p[label])/dlogits = (softmax − onehot)/count on counted rows.
            let classes = logProbs.shape.last!
            let scale = g.scalar / Float(max(counted, 1))
            var gx = Tensor.zeros(logProbs.shape)
            gx.withUnsafeMutablePointer { d in
                logProbs.withUnsafePointer { lp in
                    for (r, label) in labels.enumerated() where label != ignoreIndex {
                        for c in 0..<classes { d[r * classes + c] = Foundation.exp(lp[r * classes + c]) * scale }
                        d[r * classes + Int(label)] -= scale
                    }
                }
            }
            return [gx]

        case .lmCrossEntropy(let labels, let ignoreIndex, let counted, let chunkRows):
            let (dh, dw) = LMCrossEntropy.backward(hidden: inputs[0].value, weight: inputs[1].value, labels: labels, ignoreIndex: ignoreIndex,
                                                   chunkRows: chunkRows, scale: g.scalar / Float(max(counted, 1)),
                                                   wantHidden: inputs[0].requiresGrad, wantWeight: inputs[1].requiresGrad)
            return [dh, dw]

        case .lmDistillation(let th, let tw, let counted, let rows, let t, let chunkRows):
            let (dh, dw) = LMDistillation.backward(hidden: inputs[0].value, weight: inputs[1].value, teacherHidden: th, teacherWeight: tw,
                                                   counted: counted, temperature: t, chunkRows: chunkRows, scale: g.scalar / Float(max(rows, 1)),
                                                   wantHidden: inputs[0].requiresGrad, wantWeight: inputs[1].requiresGrad)
            return [dh, dw]

        case .checkpoint(let recompute):
            // Re-run the segment recording its graph, and back-propagate the upstream gradient
            // through it: parameters inside get their gradients there, x's is returned.
            var ctx = ExecutionContext.current
            ctx.recordsGradients = true
            let x = Variable(inputs[0].value, requiresGrad: inputs[0].requiresGrad)
            ExecutionContext.$current.withValue(ctx) {
                let y = recompute(x)
                y.backward(seed: g)
            }
            return [x.grad] + [Tensor?](repeating: nil, count: inputs.count - 1)

        case .klDivergence(let t, let sLog, let tLog):
            // loss = T²/N · Σ p_t (log p_t − log p_s), p = softmax(z/T).
            let rows = sLog.count / (sLog.shape.last ?? 1)
            let scale = g.scalar * t / Float(max(rows, 1))
            let pS = sLog.applying(.exp), pT = tLog.applying(.exp)
            let gStudent: Tensor? = inputs[0].requiresGrad ? (pS - pT).affine(scale) : nil
            var gTeacher: Tensor? = nil
            if inputs[1].requiresGrad {
                let diff = tLog - sLog
                let weighted = pT * diff
                let rowSum = weighted.sum(axes: [-1], keepDims: true)
                gTeacher = (pT * (diff - rowSum)).affine(scale)
            }
            return [gStudent, gTeacher]

        case .scaleByMask(let mask):
            return [g * mask]

        case .rmsNorm(let rstd):
            let x = inputs[0].value
            let n = x.shape.last ?? 1
            let gx = Tensor(uninitializedShape: x.shape)
            let weight = inputs.count > 1 ? inputs[1].value : nil
            let dw = weight.map { Tensor.zeros($0.shape) }
            rmsNormRowsBackward(x.storage.pointer, g.storage.pointer, weight: weight.map { UnsafePointer($0.storage.pointer) }, rstd: rstd.storage.pointer,
                                dx: gx.storage.pointer, dweight: dw?.storage.pointer, rows: x.count / max(n, 1), n: n, pool: ExecutionContext.pool)
            return dw.map { [gx, $0] } ?? [gx]

        case .rotary(let table, let positions, let heads, let headDim):
            // The rotation is orthogonal: its gradient turns by the negative angle.
            let gx = Tensor(uninitializedShape: g.shape)
            positions.withUnsafeBufferPointer { pp in
                rotaryRows(g.storage.pointer, gx.storage.pointer, rows: positions.count, heads: heads, headDim: headDim,
                           positions: pp.baseAddress!, table: table, inverse: true, pool: ExecutionContext.pool)
            }
            return [gx]

        case .causalAttention(let shape, let probabilities):
            let (dq, dk, dv) = CausalAttention.backward(q: inputs[0].value, k: inputs[1].value, v: inputs[2].value,
                                                        probabilities: probabilities, upstream: g, shape: shape)
            return [dq, dk, dv]

        case .paddedEmbedding(let indices, let paddingIndex):
            var rows = g
            let width = g.count / max(indices.count, 1)
            rows.withUnsafeMutablePointer { p in
                for (r, id) in indices.enumerated() where id == paddingIndex { (p + r * width).initialize(repeating: 0, count: width) }
            }
            return [rows.reshaped([indices.count, width]).indexAdd(axis: 0, indices, fullShape: inputs[0].value.shape)]

        case .swiglu:
            let (dgate, dup) = swigluBackward(gate: inputs[0].value, up: inputs[1].value, upstream: g)
            return [inputs[0].requiresGrad ? dgate : nil, inputs[1].requiresGrad ? dup : nil]

        case .straightThrough:
            // Straight-through estimator (Bengio et al. 2013): the forward pass binarises,
            // the backward pass treats it as the identity so the real-valued gate still learns.
            return [g]

        case .select(let mask):
            // where(mask, a, b): a where mask = 1, b where mask = 0.
            let a = inputs[0].value, b = inputs[1].value
            return [inputs[0].requiresGrad ? (g * mask).sumToShape(a.shape) : nil,
                    inputs[1].requiresGrad ? (g * (1 - mask)).sumToShape(b.shape) : nil]

        case .conv2d(let stride, let padding, let hasBias):
            let (dx, dw, db) = Tensor.conv2dBackward(inputs[0].value, weight: inputs[1].value, upstream: g, stride: stride, padding: padding, needInput: inputs[0].requiresGrad)
            return hasBias ? [dx, dw, db] : [dx, dw]

        case .maxPool2d(let argmax):
            var gx = Tensor.zeros(inputs[0].value.shape)
            gx.withUnsafeMutablePointer { d in
                g.withUnsafePointer { gp in for (o, i) in argmax.enumerated() { d[Int(i)] += gp[o] } }
            }
            return [gx]

        case .avgPool2d(let kernel, let stride, let padding):
            return [Tensor.avgPool2dBackward(g, inputShape: inputs[0].value.shape, kernel: kernel, stride: stride, padding: padding)]

        case .batchNorm(let xhat, let rstd, let batchStatistics):
            // Per channel (axis 1). With batch statistics the mean and variance depend on x.
            let gamma = inputs[1].value
            let shape = xhat.shape
            let channels = shape[1], spatial = Shape.count(Array(shape[2...])), batch = shape[0]
            let m = Float(batch * spatial)
            var gx = Tensor(uninitializedShape: shape), dgamma = Tensor.zeros([channels]), dbeta = Tensor.zeros([channels])
            let gp = g.storage.pointer, hp = xhat.storage.pointer, rp = rstd.storage.pointer, gam = gamma.storage.pointer
            gx.withUnsafeMutablePointer { dx in
                for c in 0..<channels {
                    var sumG: Float = 0, sumGH: Float = 0
                    for n in 0..<batch {
                        let base = (n * channels + c) * spatial
                        for i in 0..<spatial { sumG += gp[base + i]; sumGH += gp[base + i] * hp[base + i] }
                    }
                    dgamma.storage.pointer[c] = sumGH
                    dbeta.storage.pointer[c] = sumG
                    let k = gam[c] * rp[c]
                    for n in 0..<batch {
                        let base = (n * channels + c) * spatial
                        for i in 0..<spatial {
                            dx[base + i] = batchStatistics
                                ? k * (gp[base + i] - sumG / m - hp[base + i] * sumGH / m)
                                : k * gp[base + i]
                        }
                    }
                }
            }
            return [gx, dgamma, dbeta]
        }
    }
}

extension Tensor {
    /// Gradient of a matrix B shared across A's batch when A is used transposed:
    /// C_i = A_iᵀ·op(B) ⇒ dop(B) = Σ_i A_i·G_i = [A_0 A_1 …]·[G_0; G_1; …], one GEMM after
    /// laying the A_i side by side (one copy) instead of a GEMM and two slices per batch entry.
    static func batchedSharedGradient(_ a: Tensor, _ g: Tensor, transposeA: Bool, transposeB: Bool) -> Tensor {
        let k = a.shape[a.rank - 2], m = a.shape[a.rank - 1], n = g.shape[g.rank - 1]
        let batch = a.count / (k * m)
        let side = a.reshaped([batch, k, m]).permuted([1, 0, 2]).reshaped([k, batch * m])
        let stacked = g.reshaped([batch * m, n])
        return transposeB ? Tensor.matmul(stacked, side, transposeA: true, transposeB: true) : Tensor.matmul(side, stacked)
    }
}
