import Foundation

// Differentiable operations on `Variable`. Each computes its value with the raw `Tensor`
// ops and records an `Op`; the matching gradient rule is in Gradients.swift.

extension Variable {
    public static func + (a: Variable, b: Variable) -> Variable { Variable(Tensor.binary(.add, a.value, b.value), op: .binary(.add), inputs: [a, b]) }
    public static func - (a: Variable, b: Variable) -> Variable { Variable(Tensor.binary(.sub, a.value, b.value), op: .binary(.sub), inputs: [a, b]) }
    public static func * (a: Variable, b: Variable) -> Variable { Variable(Tensor.binary(.mul, a.value, b.value), op: .binary(.mul), inputs: [a, b]) }
    public static func / (a: Variable, b: Variable) -> Variable { Variable(Tensor.binary(.div, a.value, b.value), op: .binary(.div), inputs: [a, b]) }
    public static prefix func - (a: Variable) -> Variable { a.affine(-1) }
    public static func * (a: Variable, s: Float) -> Variable { a.affine(s) }
    public static func * (s: Float, a: Variable) -> Variable { a.affine(s) }
    public static func + (a: Variable, s: Float) -> Variable { a.affine(1, s) }
    public static func - (a: Variable, s: Float) -> Variable { a.affine(1, -s) }

    /// alpha · x + beta.
    public func affine(_ alpha: Float, _ beta: Float = 0) -> Variable {
        Variable(value.affine(alpha, beta), op: .affine(alpha: alpha), inputs: [self])
    }

    public func applying(_ f: UnaryFunction) -> Variable { Variable(value.applying(f), op: .unary(f), inputs: [self]) }
    public func exp() -> Variable { applying(.exp) }
    public func log() -> Variable { applying(.log) }
    public func sqrt() -> Variable { applying(.sqrt) }
    public func tanh() -> Variable { applying(.tanh) }
    public func relu() -> Variable { applying(.relu) }
    /// GELU, exact erf form (BERT's "gelu").
    public func gelu() -> Variable { applying(.geluErf) }
    /// GELU, tanh approximation ("gelu_new" / "gelu_pytorch_tanh").
    public func geluTanh() -> Variable { applying(.geluTanh) }
    public func silu() -> Variable { applying(.silu) }
    public func sigmoid() -> Variable { applying(.sigmoid) }

    public func sum(axes: [Int], keepDims: Bool = false) -> Variable {
        Variable(value.sum(axes: axes, keepDims: keepDims), op: .sum(axes: axes, keepDims: keepDims), inputs: [self])
    }
    public func sum() -> Variable { Variable(value.sum(), op: .sum(axes: Array(0..<value.rank), keepDims: false), inputs: [self]).reshaped([]) }
    public func mean(axes: [Int], keepDims: Bool = false) -> Variable {
        Variable(value.mean(axes: axes, keepDims: keepDims), op: .mean(axes: axes, keepDims: keepDims), inputs: [self])
    }
    public func mean() -> Variable { Variable(value.mean(), op: .mean(axes: Array(0..<value.rank), keepDims: false), inputs: [self]).reshaped([]) }

    public func max(axis: Int, keepDims: Bool = false) -> Variable {
        let a = checked { try Shape.axis(axis, rank: value.rank, op: "max") }
        let (v, idx) = value.max(axis: a, keepDims: keepDims)
        return Variable(v, op: .maxAlong(axis: a, keepDims: keepDims, indices: idx), inputs: [self])
    }

    public func reshaped(_ shape: [Int]) -> Variable {
        let v = value.reshaped(shape)
        return Variable(v, op: .reshape, inputs: [self])
    }

    public func permuted(_ order: [Int]) -> Variable { Variable(value.permuted(order), op: .permute(order), inputs: [self]) }

    public func transposed() -> Variable {
        var order = Array(0..<value.rank)
        order.swapAt(value.rank - 1, value.rank - 2)
        return permuted(order)
    }

    public func slice(axis: Int, _ range: Range<Int>) -> Variable {
        let a = checked { try Shape.axis(axis, rank: value.rank, op: "slice") }
        return Variable(value.slice(axis: a, range), op: .slice(axis: a, range: range), inputs: [self])
    }

    public func indexSelect(axis: Int, _ indices: [Int32]) -> Variable {
        let a = checked { try Shape.axis(axis, rank: value.rank, op: "indexSelect") }
        return Variable(value.indexSelect(axis: a, indices), op: .indexSelect(axis: a, indices: indices), inputs: [self])
    }

    /// Softmax over the last axis.
    public func softmax() -> Variable { Variable(value.softmax(), op: .softmax(log: false), inputs: [self]) }
    /// Log-softmax over the last axis.
    public func logSoftmax() -> Variable { Variable(value.softmax(log: true), op: .softmax(log: true), inputs: [self]) }

    /// Multiplies by a constant 0/1-style mask (dropout, fixed gates); no gradient to the mask.
    public func scaled(byMask mask: Tensor) -> Variable {
        Variable(Tensor.binary(.mul, value, mask), op: .scaleByMask(mask), inputs: [self])
    }

    /// 1 where the value exceeds `threshold`, else 0, with the straight-through gradient
    /// (the upstream gradient passes unchanged): binary gates that still train.
    public func binarizedStraightThrough(threshold: Float = 0.5) -> Variable {
        let y = Tensor(shape: value.shape) { buf in
            value.withUnsafePointer { p in for i in 0..<buf.count { buf[i] = p[i] > threshold ? 1 : 0 } }
        }
        return Variable(y, op: .straightThrough, inputs: [self])
    }

    /// Sets entries where `mask` is 1 to `fill` (mask broadcasts to the value's shape).
    public func maskedFill(_ mask: Tensor, _ fill: Float) -> Variable {
        select(mask, Variable(Tensor(scalar: fill)), self)
    }
}

/// Attention probabilities: softmax(scale · scores) over the last axis, with key positions
/// whose `keyMask` entry is 0 excluded. scores: [B, …, S_q, S_k]; keyMask: [B, S_k] of 0/1.
public func maskedSoftmax(_ scores: Variable, scale: Float, keyMask: Tensor?) -> Variable {
    let shape = scores.value.shape
    let n = shape.last ?? 1
    let rows = scores.value.count / Swift.max(n, 1)
    var rowsPerMask = rows
    if let m = keyMask {
        precondition(m.rank == 2 && m.shape[1] == n && rows % m.shape[0] == 0,
                     "maskedSoftmax: key mask \(m.shape) does not fit scores \(shape)")
        rowsPerMask = rows / m.shape[0]
    }
    let y = Tensor(uninitializedShape: shape)
    maskedSoftmaxRows(scores.value.storage.pointer, y.storage.pointer, rows: rows, n: n, scale: scale,
                      keyMask: keyMask.map { UnsafePointer($0.storage.pointer) }, rowsPerMask: rowsPerMask, pool: ExecutionContext.pool)
    return Variable(y, op: .maskedSoftmax(scale: scale), inputs: [scores])
}

/// Multi-head self-attention on packed QKV rows [B·S, 3·H·d] (see `FusedAttention`), with
/// optional attention dropout drawn from `rng`. Returns the context [B·S, H·d].
public func fusedSelfAttention(_ qkv: Variable, shape: AttentionShape, keyMask: Tensor?, dropout p: Float = 0, rng: inout SeededRNG) -> Variable {
    let dropoutMask = p > 0 ? dropoutMask([shape.batch, shape.heads, shape.sequence, shape.sequence], p: p, using: &rng) : nil
    let (context, probabilities) = FusedAttention.forward(qkv: qkv.value, shape: shape, keyMask: keyMask, dropoutMask: dropoutMask)
    return Variable(context, op: .fusedAttention(shape: shape, probabilities: probabilities, dropoutMask: dropoutMask), inputs: [qkv])
}

/// (Batched) matrix product with optional transposes of the last two dimensions.
public func matmul(_ a: Variable, _ b: Variable, transposeA: Bool = false, transposeB: Bool = false) -> Variable {
    Variable(Tensor.matmul(a.value, b.value, transposeA: transposeA, transposeB: transposeB),
             op: .matmul(transposeA: transposeA, transposeB: transposeB), inputs: [a, b])
}

/// A low-rank term `hidden`·`up`ᵀ (hidden [rows, r], up [n, r]) for output columns
/// [offset, offset + n) of a linear layer: a LoRA adapter with hidden = scaling·dropout(x)·Aᵀ
/// and up = B.
public struct ColumnUpdate {
    public let hidden: Variable
    public let up: Variable
    public let offset: Int
    public init(hidden: Variable, up: Variable, offset: Int) {
        self.hidden = hidden
        self.up = up
        self.offset = offset
    }
}

/// A linear layer's x·Wᵀ + b (W [out, in], b [out]) as one GEMM with the bias added to each
/// finished output tile, instead of a matmul and a broadcast add over the whole output; with
/// `columnUpdates`, low-rank terms are added into column ranges of the same output tensor,
/// each term's GEMM accumulating into its columns in place, where separate products would
/// cost an add per term and a concatenation (LoRA on stacked query/key/value weights).
public func linear(_ x: Variable, weight: Variable, bias: Variable?, columnUpdates: [ColumnUpdate] = []) -> Variable {
    if bias == nil && columnUpdates.isEmpty { return matmul(x, weight, transposeB: true) }
    let y = Tensor.matmul(x.value, weight.value, transposeB: true, bias: bias?.value)
    let out = weight.value.shape[0], rows = y.count / max(out, 1)
    for u in columnUpdates {
        let up = u.up.value, h = u.hidden.value
        precondition(up.rank == 2 && h.count == rows * up.shape[1] && u.offset >= 0 && u.offset + up.shape[0] <= out,
                     "linear: update hidden \(h.shape) · up \(up.shape) at column \(u.offset) does not fit the output [\(rows), \(out)]")
        sgemm(transA: false, transB: true, m: rows, n: up.shape[0], k: up.shape[1], alpha: 1, a: h.storage.pointer, lda: up.shape[1],
              b: up.storage.pointer, ldb: up.shape[1], beta: 1, c: y.storage.pointer + u.offset, ldc: out, pool: ExecutionContext.pool)
    }
    let inputs = [x, weight] + (bias.map { [$0] } ?? []) + columnUpdates.flatMap { [$0.hidden, $0.up] }
    return Variable(y, op: .linear(updateOffsets: columnUpdates.map(\.offset), hasBias: bias != nil), inputs: inputs)
}

/// Where a trainable block lies in a weight W [out, in]: the block variable's rows (output
/// features) or columns (input features) replace W's from `offset` on.
public struct WeightBlock: Sendable, Equatable {
    public enum Axis: String, Sendable, Codable { case rows, columns }
    public let axis: Axis
    public let offset: Int
    public init(_ axis: Axis, offset: Int) {
        self.axis = axis
        self.offset = offset
    }
}

/// x·Wᵀ (x [..., in], W [out, in], as a linear layer) where W is a constant except some
/// blocks, which are variables whose values replace W's entries there. One GEMM forward and
/// one for dx, as a plain linear layer; each block's gradient is computed for that block
/// alone (never dW of the frozen rest): "select sparsely, compute densely" (s2ft).
/// (W is copied with the blocks written in: writing them into the caller's frozen weight in
/// place measured no faster on a MiniLM s2ft step.)
public func matmulTransposedWithTrainableBlocks(_ x: Variable, weight: Tensor, blocks: [(Variable, WeightBlock)], bias: Variable? = nil) -> Variable {
    precondition(weight.rank == 2 && x.value.shape.last == weight.shape[1],
                 "matmulTransposedWithTrainableBlocks: x \(x.value.shape) does not fit W \(weight.shape)")
    var w = weight
    writeBlocks(blocks.map { ($0.0.value, $0.1) }, into: &w)
    return Variable(Tensor.matmul(x.value, w, transposeB: true, bias: bias?.value),
                    op: .trainableBlocksMatmul(weight: w, blocks: blocks.map(\.1), hasBias: bias != nil),
                    inputs: [x] + blocks.map(\.0) + (bias.map { [$0] } ?? []))
}

/// Writes each block's values into W [out, in] at its place (rows or columns from its offset).
public func writeBlocks(_ blocks: [(Tensor, WeightBlock)], into w: inout Tensor) {
    guard !blocks.isEmpty else { return }
    let out = w.shape[0], inF = w.shape[1], wShape = w.shape
    w.withUnsafeMutablePointer { wp in
        for (v, b) in blocks {
            let shape = v.shape
            precondition(shape.count == 2, "trainable block must be a matrix, got \(shape)")
            v.withUnsafePointer { vp in
                switch b.axis {
                case .rows:
                    precondition(shape[1] == inF && b.offset >= 0 && b.offset + shape[0] <= out, "row block \(shape) at \(b.offset) outside W \(wShape)")
                    (wp + b.offset * inF).update(from: vp, count: shape[0] * inF)
                case .columns:
                    precondition(shape[0] == out && b.offset >= 0 && b.offset + shape[1] <= inF, "column block \(shape) at \(b.offset) outside W \(wShape)")
                    for r in 0..<out { (wp + r * inF + b.offset).update(from: vp + r * shape[1], count: shape[1]) }
                }
            }
        }
    }
}

/// `a` where mask is 1, `b` where mask is 0 (mask a constant 0/1 tensor; all broadcast).
public func select(_ mask: Tensor, _ a: Variable, _ b: Variable) -> Variable {
    let value = Tensor.binary(.add, Tensor.binary(.mul, a.value, mask), Tensor.binary(.mul, b.value, 1 - mask))
    return Variable(value, op: .select(mask: mask), inputs: [a, b])
}

public func concat(_ parts: [Variable], axis: Int) -> Variable {
    let a = checked { try Shape.axis(axis, rank: parts.first?.value.rank ?? 1, op: "concat") }
    return Variable(Tensor.concat(parts.map(\.value), axis: a), op: .concat(axis: a, sizes: parts.map { $0.value.shape[a] }), inputs: parts)
}

/// Rows of `weight` selected by token ids: output shape = ids.shape + [dim]. With
/// `paddingIndex`, that row gets no gradient from the lookup (PyTorch's `padding_idx`).
public func embedding(_ weight: Variable, ids: [Int32], shape: [Int], paddingIndex: Int32? = nil) -> Variable {
    let vocab = weight.value.shape[0]
    if let bad = ids.first(where: { $0 < 0 || Int($0) >= vocab }) {
        shapeFailure(ShapeError("embedding", "id \(bad) is outside the table of \(vocab) rows"))
    }
    if let pad = paddingIndex, ids.contains(pad) {
        let rows = Variable(weight.value.indexSelect(axis: 0, ids), op: .paddedEmbedding(indices: ids, paddingIndex: pad), inputs: [weight])
        return rows.reshaped(shape + [weight.value.shape[1]])
    }
    return weight.indexSelect(axis: 0, ids).reshaped(shape + [weight.value.shape[1]])
}

/// Layer norm over the last axis with optional affine weight and bias.
public func layerNorm(_ x: Variable, weight: Variable?, bias: Variable?, eps: Float) -> Variable {
    let (y, mean, rstd) = x.value.layerNorm(gamma: weight?.value, beta: bias?.value, eps: eps)
    if let w = weight, let b = bias {
        return Variable(y, op: .layerNorm(mean: mean, rstd: rstd, affine: true), inputs: [x, w, b])
    }
    return Variable(y, op: .layerNorm(mean: mean, rstd: rstd, affine: false), inputs: [x])
}

/// Mean cross-entropy of logits [N, C] against integer labels; rows labelled `ignoreIndex`
/// count neither in the sum nor in the mean (PyTorch's semantics).
public func crossEntropy(_ logits: Variable, labels: [Int32], ignoreIndex: Int32 = -100) -> Variable {
    let classes = logits.value.shape.last ?? 1
    let rows = logits.value.count / Swift.max(classes, 1)
    precondition(labels.count == rows, "crossEntropy: \(labels.count) labels for \(rows) rows of logits \(logits.value.shape)")
    let logProbs = logits.value.reshaped([rows, classes]).softmax(log: true)
    var total: Double = 0
    var counted = 0
    logProbs.withUnsafePointer { lp in
        for (r, label) in labels.enumerated() where label != ignoreIndex {
            precondition(label >= 0 && Int(label) < classes, "crossEntropy: label \(label) outside 0..<\(classes)")
            total -= Double(lp[r * classes + Int(label)])
            counted += 1
        }
    }
    let loss = Tensor(scalar: counted == 0 ? 0 : Float(total / Double(counted)))
    let v = Variable(loss, op: .crossEntropy(logProbs: logProbs, labels: labels, ignoreIndex: ignoreIndex, counted: counted), inputs: [logits.reshaped([rows, classes])])
    return v
}

/// Mean cross-entropy of the logits hidden·weightᵀ (hidden [R, H], weight [V, H]) against
/// `labels` [R], without forming the [R, V] logits: they are computed `chunkRows` rows at a
/// time and recomputed in the backward pass (`LMCrossEntropy`). Equal to
/// `crossEntropy(matmul(hidden, weight, transposeB: true), labels:)`.
public func lmCrossEntropy(hidden: Variable, weight: Variable, labels: [Int32], ignoreIndex: Int32 = -100,
                           chunkRows: Int = LMCrossEntropy.defaultChunkRows) -> Variable {
    let h = weight.value.shape.last ?? 1
    let flat = hidden.reshaped([hidden.value.count / max(h, 1), h])
    let (sum, counted) = LMCrossEntropy.forward(hidden: flat.value, weight: weight.value, labels: labels, ignoreIndex: ignoreIndex, chunkRows: chunkRows)
    return Variable(Tensor(scalar: counted == 0 ? 0 : Float(sum / Double(counted))),
                    op: .lmCrossEntropy(labels: labels, ignoreIndex: ignoreIndex, counted: counted, chunkRows: chunkRows), inputs: [flat, weight])
}

/// Logit distillation through LM heads: the mean over rows with `counted` of
/// T²·KL(softmax(teacher/T) ‖ softmax(student/T)), where student logits are hidden [R, H] ·
/// weightᵀ and teacher logits teacherHidden [R, Ht] · teacherWeightᵀ, computed in chunks of
/// rows (`LMDistillation`) so no [R, V] logits are held. The teacher gets no gradient. Equal to
/// `klDivergence(student: matmul(hidden, weight, transposeB: true), teacher: …)` on the counted rows.
public func lmDistillation(hidden: Variable, weight: Variable, teacherHidden: Tensor, teacherWeight: Tensor, counted: [Bool]? = nil,
                           temperature: Float = 1, chunkRows: Int = LMCrossEntropy.defaultChunkRows) -> Variable {
    let h = weight.value.shape.last ?? 1
    let flat = hidden.reshaped([hidden.value.count / max(h, 1), h])
    let th = teacherHidden.reshaped([teacherHidden.count / max(teacherWeight.shape.last ?? 1, 1), teacherWeight.shape.last ?? 1])
    let flags = counted ?? [Bool](repeating: true, count: flat.value.shape[0])
    let (sum, n) = LMDistillation.forward(hidden: flat.value, weight: weight.value, teacherHidden: th, teacherWeight: teacherWeight,
                                          counted: flags, temperature: temperature, chunkRows: chunkRows)
    return Variable(Tensor(scalar: n == 0 ? 0 : Float(sum / Double(n))),
                    op: .lmDistillation(teacherHidden: th, teacherWeight: teacherWeight, counted: flags, rows: n, temperature: temperature, chunkRows: chunkRows),
                    inputs: [flat, weight])
}

/// Activation checkpointing: `f(x)` without keeping the tensors inside `f` for the backward
/// pass, which runs `f` again on x and back-propagates through that run. `parameters` are the
/// trainable variables `f` uses (their gradients accumulate as usual); `f` must compute the
/// same thing when run again (`recompute` is called before each re-run: restore any random
/// state there).
public func checkpointed(_ x: Variable, parameters: [Variable], recompute: @escaping () -> Void = {}, _ f: @escaping (Variable) -> Variable) -> Variable {
    guard ExecutionContext.current.recordsGradients, x.requiresGrad || parameters.contains(where: \.requiresGrad) else { return f(x) }
    let y = withoutGradients { f(x) }
    return Variable(y.value, op: .checkpoint(recompute: { v in recompute(); return f(v) }), inputs: [x] + parameters)
}

/// Distillation loss T²·KL(softmax(teacher/T) ‖ softmax(student/T)), averaged over rows
/// (PyTorch: `kl_div(log_softmax(s/T), log_softmax(t/T), log_target=True, reduction="batchmean") * T²`).
public func klDivergence(student: Variable, teacher: Variable, temperature: Float = 1) -> Variable {
    let classes = student.value.shape.last ?? 1
    let rows = student.value.count / Swift.max(classes, 1)
    let sLog = student.value.reshaped([rows, classes]).affine(1 / temperature).softmax(log: true)
    let tLog = teacher.value.reshaped([rows, classes]).affine(1 / temperature).softmax(log: true)
    var total: Double = 0
    sLog.withUnsafePointer { s in
        tLog.withUnsafePointer { t in
            for i in 0..<(rows * classes) { total += Double(Foundation.exp(t[i])) * Double(t[i] - s[i]) }
        }
    }
    let loss = Tensor(scalar: Float(total / Double(Swift.max(rows, 1))) * temperature * temperature)
    return Variable(loss, op: .klDivergence(temperature: temperature, studentLogProbs: sLog, teacherLogProbs: tLog),
                    inputs: [student.reshaped([rows, classes]), teacher.reshaped([rows, classes])])
}

/// An inverted-dropout mask: 0 with probability `p`, else 1/(1−p). One draw of `rng` keys a
/// counter-based mask (`fillDropoutMask`), so the mask costs the generator one step.
public func dropoutMask(_ shape: [Int], p: Float, using rng: inout SeededRNG) -> Tensor {
    let key = rng.next()
    let threshold = UInt32(min(Double(p) * 4_294_967_296.0, 4_294_967_295.0))
    let mask = Tensor(uninitializedShape: shape)
    fillDropoutMask(mask.storage.pointer, count: mask.count, key: key, threshold: threshold, keep: 1 / (1 - p), pool: ExecutionContext.pool)
    return mask
}

/// Inverted dropout: zeroes each element with probability `p` and scales the rest by 1/(1−p).
public func dropout(_ x: Variable, p: Float, using rng: inout SeededRNG) -> Variable {
    precondition(p >= 0 && p < 1, "dropout: p = \(p) must be in [0, 1)")
    if p == 0 { return x }
    return x.scaled(byMask: dropoutMask(x.value.shape, p: p, using: &rng))
}

/// 2-D convolution over NCHW input, weight [O, C, kh, kw].
public func conv2d(_ x: Variable, weight: Variable, bias: Variable?, stride: (Int, Int) = (1, 1), padding: (Int, Int) = (0, 0)) -> Variable {
    let y = Tensor.conv2d(x.value, weight: weight.value, bias: bias?.value, stride: stride, padding: padding)
    let inputs = bias.map { [x, weight, $0] } ?? [x, weight]
    return Variable(y, op: .conv2d(stride: stride, padding: padding, hasBias: bias != nil), inputs: inputs)
}

public func maxPool2d(_ x: Variable, kernel: (Int, Int), stride: (Int, Int)? = nil, padding: (Int, Int) = (0, 0)) -> Variable {
    let (y, arg) = Tensor.maxPool2d(x.value, kernel: kernel, stride: stride ?? kernel, padding: padding)
    return Variable(y, op: .maxPool2d(argmax: arg), inputs: [x])
}

public func avgPool2d(_ x: Variable, kernel: (Int, Int), stride: (Int, Int)? = nil, padding: (Int, Int) = (0, 0)) -> Variable {
    let s = stride ?? kernel
    return Variable(Tensor.avgPool2d(x.value, kernel: kernel, stride: s, padding: padding),
                    op: .avgPool2d(kernel: kernel, stride: s, padding: padding), inputs: [x])
}

/// Batch normalisation over axis 1 of [N, C, ...]. With `batchStatistics` the batch's mean
/// and (biased) variance normalise and are returned (for the running averages); otherwise
/// the given running mean and variance are used.
public func batchNorm(_ x: Variable, weight: Variable, bias: Variable, runningMean: Tensor, runningVar: Tensor,
                      batchStatistics: Bool, eps: Float) -> (output: Variable, mean: Tensor, variance: Tensor) {
    let shape = x.value.shape
    precondition(shape.count >= 2, "batchNorm: expected [N, C, ...], got \(shape)")
    let batch = shape[0], channels = shape[1], spatial = Shape.count(Array(shape[2...]))
    precondition(weight.value.count == channels, "batchNorm: weight \(weight.value.shape) does not match \(channels) channels")
    var mean = runningMean, variance = runningVar
    let xp = x.value.storage.pointer
    if batchStatistics {
        mean = Tensor.zeros([channels]); variance = Tensor.zeros([channels])
        for c in 0..<channels {
            var s: Double = 0, s2: Double = 0
            for n in 0..<batch {
                let base = (n * channels + c) * spatial
                for i in 0..<spatial { let v = Double(xp[base + i]); s += v; s2 += v * v }
            }
            let m = Double(batch * spatial)
            let mu = s / m
            mean.storage.pointer[c] = Float(mu)
            variance.storage.pointer[c] = Float(Swift.max(s2 / m - mu * mu, 0))
        }
    }
    let xhat = Tensor(uninitializedShape: shape), out = Tensor(uninitializedShape: shape), rstd = Tensor(uninitializedShape: [channels])
    let g = weight.value.storage.pointer, b = bias.value.storage.pointer
    for c in 0..<channels {
        let r = 1 / (variance.storage.pointer[c] + eps).squareRoot()
        rstd.storage.pointer[c] = r
        let mu = mean.storage.pointer[c]
        for n in 0..<batch {
            let base = (n * channels + c) * spatial
            for i in 0..<spatial {
                let h = (xp[base + i] - mu) * r
                xhat.storage.pointer[base + i] = h
                out.storage.pointer[base + i] = h * g[c] + b[c]
            }
        }
    }
    let v = Variable(out, op: .batchNorm(normalized: xhat, rstd: rstd, batchStatistics: batchStatistics), inputs: [x, weight, bias])
    return (v, mean, variance)
}

// MARK: - Decoder (LLaMA-family) ops

/// RMS norm over the last axis: x / √(mean(x²) + eps) · weight (LLaMA's RMSNorm).
public func rmsNorm(_ x: Variable, weight: Variable?, eps: Float) -> Variable {
    let n = x.value.shape.last ?? 1
    if let w = weight { precondition(w.value.count == n, "rmsNorm: weight \(w.value.shape) does not match the last dimension of \(x.value.shape)") }
    let rows = x.value.count / Swift.max(n, 1)
    let y = Tensor(uninitializedShape: x.value.shape), rstd = Tensor(uninitializedShape: [rows])
    rmsNormRows(x.value.storage.pointer, y.storage.pointer, weight: weight.map { UnsafePointer($0.value.storage.pointer) },
                rstd: rstd.storage.pointer, rows: rows, n: n, eps: eps, pool: ExecutionContext.pool)
    return Variable(y, op: .rmsNorm(rstd: rstd), inputs: weight.map { [x, $0] } ?? [x])
}

/// Rotary position embedding of rows [N, heads·headDim], row r at `positions[r]`.
public func rotary(_ x: Variable, table: RotaryTable, positions: [Int32], heads: Int, headDim: Int) -> Variable {
    precondition(x.value.rank == 2 && x.value.shape == [positions.count, heads * headDim],
                 "rotary: rows \(x.value.shape) do not match \(positions.count) positions × \(heads) heads × \(headDim)")
    let y = Tensor(uninitializedShape: x.value.shape)
    positions.withUnsafeBufferPointer { pp in
        rotaryRows(x.value.storage.pointer, y.storage.pointer, rows: positions.count, heads: heads, headDim: headDim,
                   positions: pp.baseAddress!, table: table, inverse: false, pool: ExecutionContext.pool)
    }
    return Variable(y, op: .rotary(table: table, positions: positions, heads: heads, headDim: headDim), inputs: [x])
}

/// Causal grouped-query attention (see `CausalAttention`); keyMask [B, S] of 0/1.
public func causalAttention(q: Variable, k: Variable, v: Variable, shape: GroupedAttentionShape, keyMask: Tensor?, segmentStarts: [Int32]? = nil) -> Variable {
    let (context, probabilities) = CausalAttention.forward(q: q.value, k: k.value, v: v.value, shape: shape, keyMask: keyMask, segmentStarts: segmentStarts)
    let recorded = ExecutionContext.current.recordsGradients
    return Variable(context, op: .causalAttention(shape: shape, probabilities: recorded ? probabilities : Tensor.zeros([0])), inputs: [q, k, v])
}

/// silu(gate) · up (SwiGLU).
public func swiglu(gate: Variable, up: Variable) -> Variable {
    precondition(gate.value.shape == up.value.shape, "swiglu: gate \(gate.value.shape) and up \(up.value.shape) differ")
    let y = Tensor(uninitializedShape: gate.value.shape)
    swigluForward(gate.value.storage.pointer, up.value.storage.pointer, y.storage.pointer, count: y.count, pool: ExecutionContext.pool)
    return Variable(y, op: .swiglu, inputs: [gate, up])
}
