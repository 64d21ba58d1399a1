import Foundation

/// Fused multi-head self-attention over a packed QKV tensor, without layout copies.
///
/// `qkv` is [B·S, 3·H·d] with each row holding the token's query, key and value for every
/// head (the output of one projection by the stacked weights). Each (batch, head) pair's
/// matrices are read in place through leading dimensions, so no permute is materialised;
/// pairs run in parallel, each with single-threaded GEMMs.
public struct AttentionShape: Sendable, Equatable {
    public let batch, sequence, heads, headDim: Int
    public var width: Int { heads * headDim }
    public var rowStride: Int { 3 * heads * headDim }
    public init(batch: Int, sequence: Int, heads: Int, headDim: Int) {
        self.batch = batch; self.sequence = sequence; self.heads = heads; self.headDim = headDim
    }
}

public enum FusedAttention {
    /// Returns the context [B·S, H·d], the attention probabilities [B, H, S, S] before dropout,
    /// for the backward pass. `keyMask` [B, S] (1 keep, 0 pad); `dropoutMask` [B, H, S, S]
    /// holds 0 or 1/(1−p) per probability.
    public static func forward(qkv: Tensor, shape g: AttentionShape, keyMask: Tensor?, dropoutMask: Tensor?) -> (context: Tensor, probabilities: Tensor) {
        precondition(qkv.shape == [g.batch * g.sequence, g.rowStride], "attention: qkv \(qkv.shape) does not match \(g)")
        let s = g.sequence, d = g.headDim, w = g.width, ld = g.rowStride
        let context = Tensor(uninitializedShape: [g.batch * s, w])
        let probs = Tensor(uninitializedShape: [g.batch, g.heads, s, s])
        let scale = 1 / Float(d).squareRoot()
        let q = UncheckedSendableBox(qkv.storage.pointer), c = UncheckedSendableBox(context.storage.pointer)
        let p = UncheckedSendableBox(probs.storage.pointer), m = UncheckedSendableBox(keyMask?.storage.pointer)
        let dm = UncheckedSendableBox(dropoutMask?.storage.pointer)
        let pairs = g.batch * g.heads
        let workers = min(ExecutionContext.pool.threadCount, max(pairs, 1))
        let scratch = UnsafeMutablePointer<Float>.allocate(capacity: workers * s * s)
        defer { scratch.deallocate() }
        let sb = UncheckedSendableBox(scratch)
        ExecutionContext.pool.parallelFor(workers) { worker in
            // Per-worker scratch for the dropped probabilities.
            let dropped = sb.value + worker * s * s
            for pair in (pairs * worker / workers)..<(pairs * (worker + 1) / workers) {
                let b = pair / g.heads, h = pair % g.heads
                let base = q.value + b * s * ld + h * d
                let pr = p.value + pair * s * s
                sgemm(transA: false, transB: true, m: s, n: s, k: d, alpha: 1, a: base, lda: ld, b: base + w, ldb: ld,
                      beta: 0, c: pr, ldc: s, pool: .serial)
                maskedSoftmaxRows(pr, pr, rows: s, n: s, scale: scale, keyMask: m.value.map { UnsafePointer($0 + b * s) }, rowsPerMask: s, pool: .serial)
                var used = UnsafePointer(pr)
                if let mask = dm.value {
                    let mk = mask + pair * s * s
                    for i in 0..<(s * s) { dropped[i] = pr[i] * mk[i] }
                    used = UnsafePointer(dropped)
                }
                sgemm(transA: false, transB: false, m: s, n: d, k: s, alpha: 1, a: used, lda: s, b: base + 2 * w, ldb: ld,
                      beta: 0, c: c.value + b * s * w + h * d, ldc: w, pool: .serial)
            }
        }
        return (context, probs)
    }

    /// Gradient with respect to qkv given the upstream gradient of the context.
    public static func backward(qkv: Tensor, probabilities: Tensor, dropoutMask: Tensor?, upstream dctx: Tensor, shape g: AttentionShape) -> Tensor {
        let s = g.sequence, d = g.headDim, w = g.width, ld = g.rowStride
        let dqkv = Tensor(uninitializedShape: qkv.shape)
        let scale = 1 / Float(d).squareRoot()
        let q = UncheckedSendableBox(qkv.storage.pointer), dq = UncheckedSendableBox(dqkv.storage.pointer)
        let p = UncheckedSendableBox(probabilities.storage.pointer), dc = UncheckedSendableBox(dctx.storage.pointer)
        let dm = UncheckedSendableBox(dropoutMask?.storage.pointer)
        let pairs = g.batch * g.heads
        let pool = ExecutionContext.pool
        let workers = min(pool.threadCount, max(pairs, 1))
        // Per worker: dP (s·s) and, with dropout, the dropped probabilities (s·s).
        let scratch = UnsafeMutablePointer<Float>.allocate(capacity: workers * 2 * s * s)
        defer { scratch.deallocate() }
        let sb = UncheckedSendableBox(scratch)
        pool.parallelFor(workers) { worker in
            let dP = sb.value + worker * 2 * s * s, dropped = dP + s * s
            for pair in (pairs * worker / workers)..<(pairs * (worker + 1) / workers) {
                let b = pair / g.heads, h = pair % g.heads
                let base = q.value + b * s * ld + h * d
                let dbase = dq.value + b * s * ld + h * d
                let pr = p.value + pair * s * s
                let dctxBH = dc.value + b * s * w + h * d
                var used = UnsafePointer(pr)
                if let mask = dm.value {
                    let mk = mask + pair * s * s
                    for i in 0..<(s * s) { dropped[i] = pr[i] * mk[i] }
                    used = UnsafePointer(dropped)
                }
                // dV = P̃ᵀ · dctx
                sgemm(transA: true, transB: false, m: s, n: d, k: s, alpha: 1, a: used, lda: s, b: dctxBH, ldb: w,
                      beta: 0, c: dbase + 2 * w, ldc: ld, pool: .serial)
                // dP̃ = dctx · Vᵀ, then through dropout.
                sgemm(transA: false, transB: true, m: s, n: s, k: d, alpha: 1, a: dctxBH, lda: w, b: base + 2 * w, ldb: ld,
                      beta: 0, c: dP, ldc: s, pool: .serial)
                if let mask = dm.value {
                    let mk = mask + pair * s * s
                    for i in 0..<(s * s) { dP[i] *= mk[i] }
                }
                // dScores = scale · P ⊙ (dP − rowsum(dP ⊙ P)), in place in dP.
                softmaxRowsBackward(pr, dP, dP, rows: s, n: s, log: false, pool: .serial)
                // dQ = dS · K · scale; dK = dSᵀ · Q · scale.
                sgemm(transA: false, transB: false, m: s, n: d, k: s, alpha: scale, a: dP, lda: s, b: base + w, ldb: ld,
                      beta: 0, c: dbase, ldc: ld, pool: .serial)
                sgemm(transA: true, transB: false, m: s, n: d, k: s, alpha: scale, a: dP, lda: s, b: base, ldb: ld,
                      beta: 0, c: dbase + w, ldc: ld, pool: .serial)
            }
        }
        return dqkv
    }

    /// Plain twin: the same attention by explicit loops, for tests.
    public static func reference(qkv: [Float], shape g: AttentionShape, keyMask: [Float]?) -> [Float] {
        let s = g.sequence, d = g.headDim, w = g.width, ld = g.rowStride
        var out = [Float](repeating: 0, count: g.batch * s * w)
        let scale = 1 / Float(d).squareRoot()
        for b in 0..<g.batch { for h in 0..<g.heads { for i in 0..<s {
            var scores = [Float](repeating: -.infinity, count: s)
            for j in 0..<s where keyMask == nil || keyMask![b * s + j] != 0 {
                var dot: Float = 0
                for t in 0..<d { dot += qkv[(b * s + i) * ld + h * d + t] * qkv[(b * s + j) * ld + w + h * d + t] }
                scores[j] = dot * scale
            }
            let probs = softmaxRowsReference(scores.map { $0 == -.infinity ? -1e30 : $0 }, rows: 1, n: s, log: false)
            for t in 0..<d {
                var acc: Float = 0
                for j in 0..<s where scores[j] != -.infinity { acc += probs[j] * qkv[(b * s + j) * ld + 2 * w + h * d + t] }
                out[(b * s + i) * w + h * d + t] = acc
            }
        } } }
        return out
    }
}
