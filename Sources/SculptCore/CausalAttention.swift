import Foundation

/// Shape of causal grouped-query attention (GQA): `heads` query heads share `kvHeads` key/value
/// heads, query head h reading key/value head h / (heads / kvHeads). Queries are rows
/// [B·S, heads·headDim], keys and values rows [B·S, kvHeads·headDim].
public struct GroupedAttentionShape: Sendable, Equatable {
    public let batch, sequence, heads, kvHeads, headDim: Int
    public init(batch: Int, sequence: Int, heads: Int, kvHeads: Int, headDim: Int) {
        precondition(kvHeads > 0 && heads % kvHeads == 0, "attention: \(heads) query heads are not a multiple of \(kvHeads) key/value heads")
        self.batch = batch; self.sequence = sequence; self.heads = heads; self.kvHeads = kvHeads; self.headDim = headDim
    }
    public var queryWidth: Int { heads * headDim }
    public var kvWidth: Int { kvHeads * headDim }
    public var group: Int { heads / kvHeads }
    public var scale: Float { 1 / Float(headDim).squareRoot() }
}

/// Softmax of row `row` of a causal score matrix: columns `first`...`last` (and, with a key
/// mask, only those whose mask entry is non-zero) take part; the rest of the `n` columns become 0.
@inline(__always)
func causalSoftmaxRow(_ p: UnsafeMutablePointer<Float>, n: Int, first: Int = 0, last: Int, scale: Float, keyMask: UnsafePointer<Float>?) {
    let used = min(last + 1, n)
    let start = min(max(first, 0), used)
    if start > 0 { p.initialize(repeating: 0, count: start) }
    maskedSoftmaxRows(p + start, p + start, rows: 1, n: used - start, scale: scale, keyMask: keyMask.map { $0 + start }, rowsPerMask: 1, pool: .serial)
    if used < n { (p + used).initialize(repeating: 0, count: n - used) }
}

public enum CausalAttention {
    /// context [B·S, heads·d] and the probabilities [B, heads, S, S] (for the backward pass).
    /// Position i of a sequence attends positions j ≤ i whose `keyMask` [B, S] entry is 1 and,
    /// with `segmentStarts` [B·S] (packed rows), j ≥ the first position of i's segment; a
    /// query with no such key gets a zero context. The backward pass needs nothing more: the
    /// excluded probabilities are 0.
    public static func forward(q: Tensor, k: Tensor, v: Tensor, shape g: GroupedAttentionShape, keyMask: Tensor?,
                               segmentStarts: [Int32]? = nil) -> (context: Tensor, probabilities: Tensor) {
        let s = g.sequence, d = g.headDim, qw = g.queryWidth, kw = g.kvWidth
        precondition(q.shape == [g.batch * s, qw] && k.shape == [g.batch * s, kw] && v.shape == k.shape,
                     "attention: q \(q.shape), k \(k.shape), v \(v.shape) do not match \(g)")
        if let m = keyMask { precondition(m.shape == [g.batch, s], "attention: key mask \(m.shape) does not match \(g)") }
        let context = Tensor(uninitializedShape: [g.batch * s, qw])
        let probs = Tensor(uninitializedShape: [g.batch, g.heads, s, s])
        let qb = UncheckedSendableBox(q.storage.pointer), kb = UncheckedSendableBox(k.storage.pointer), vb = UncheckedSendableBox(v.storage.pointer)
        let cb = UncheckedSendableBox(context.storage.pointer), pb = UncheckedSendableBox(probs.storage.pointer)
        let mb = UncheckedSendableBox(keyMask?.storage.pointer)
        let pairs = g.batch * g.heads, scale = g.scale
        ExecutionContext.pool.parallelRanges(pairs) { range in
            for pair in range {
                let b = pair / g.heads, h = pair % g.heads, kvh = h / g.group
                let qp = qb.value + b * s * qw + h * d
                let kp = kb.value + b * s * kw + kvh * d, vp = vb.value + b * s * kw + kvh * d
                let pr = pb.value + pair * s * s
                sgemm(transA: false, transB: true, m: s, n: s, k: d, alpha: 1, a: qp, lda: qw, b: kp, ldb: kw,
                      beta: 0, c: pr, ldc: s, pool: .serial)
                let mask = mb.value.map { UnsafePointer($0 + b * s) }
                if let starts = segmentStarts {
                    for i in 0..<s { causalSoftmaxRow(pr + i * s, n: s, first: Int(starts[b * s + i]), last: i, scale: scale, keyMask: mask) }
                } else {
                    for i in 0..<s { causalSoftmaxRow(pr + i * s, n: s, last: i, scale: scale, keyMask: mask) }
                }
                sgemm(transA: false, transB: false, m: s, n: d, k: s, alpha: 1, a: pr, lda: s, b: vp, ldb: kw,
                      beta: 0, c: cb.value + b * s * qw + h * d, ldc: qw, pool: .serial)
            }
        }
        return (context, probs)
    }

    /// Gradients of q, k and v given the upstream gradient of the context. Work is split by
    /// (sequence, key/value head), so the heads sharing a key/value head accumulate into it
    /// on one thread.
    public static func backward(q: Tensor, k: Tensor, v: Tensor, probabilities: Tensor, upstream dctx: Tensor,
                                shape g: GroupedAttentionShape) -> (dq: Tensor, dk: Tensor, dv: Tensor) {
        let s = g.sequence, d = g.headDim, qw = g.queryWidth, kw = g.kvWidth
        let dq = Tensor(uninitializedShape: q.shape), dk = Tensor(uninitializedShape: k.shape), dv = Tensor(uninitializedShape: v.shape)
        let qb = UncheckedSendableBox(q.storage.pointer), kb = UncheckedSendableBox(k.storage.pointer), vb = UncheckedSendableBox(v.storage.pointer)
        let dqb = UncheckedSendableBox(dq.storage.pointer), dkb = UncheckedSendableBox(dk.storage.pointer), dvb = UncheckedSendableBox(dv.storage.pointer)
        let pb = UncheckedSendableBox(probabilities.storage.pointer), gb = UncheckedSendableBox(dctx.storage.pointer)
        let groups = g.batch * g.kvHeads, scale = g.scale
        let pool = ExecutionContext.pool
        let workers = min(pool.threadCount, max(groups, 1))
        let scratch = UnsafeMutablePointer<Float>.allocate(capacity: workers * s * s)
        defer { scratch.deallocate() }
        let sb = UncheckedSendableBox(scratch)
        pool.parallelFor(workers) { worker in
            let dP = sb.value + worker * s * s
            for grp in (groups * worker / workers)..<(groups * (worker + 1) / workers) {
                let b = grp / g.kvHeads, kvh = grp % g.kvHeads
                let kp = kb.value + b * s * kw + kvh * d, vp = vb.value + b * s * kw + kvh * d
                let dkp = dkb.value + b * s * kw + kvh * d, dvp = dvb.value + b * s * kw + kvh * d
                for j in 0..<g.group {
                    let h = kvh * g.group + j
                    let qp = qb.value + b * s * qw + h * d, dqp = dqb.value + b * s * qw + h * d
                    let pr = pb.value + (b * g.heads + h) * s * s
                    let dc = gb.value + b * s * qw + h * d
                    let accumulate: Float = j == 0 ? 0 : 1
                    // dV += Pᵀ·dctx; dP = dctx·Vᵀ; dS = P ⊙ (dP − rowsum(dP ⊙ P)).
                    sgemm(transA: true, transB: false, m: s, n: d, k: s, alpha: 1, a: pr, lda: s, b: dc, ldb: qw,
                          beta: accumulate, c: dvp, ldc: kw, pool: .serial)
                    sgemm(transA: false, transB: true, m: s, n: s, k: d, alpha: 1, a: dc, lda: qw, b: vp, ldb: kw,
                          beta: 0, c: dP, ldc: s, pool: .serial)
                    softmaxRowsBackward(pr, dP, dP, rows: s, n: s, log: false, pool: .serial)
                    // dQ = scale·dS·K; dK += scale·dSᵀ·Q.
                    sgemm(transA: false, transB: false, m: s, n: d, k: s, alpha: scale, a: dP, lda: s, b: kp, ldb: kw,
                          beta: 0, c: dqp, ldc: qw, pool: .serial)
                    sgemm(transA: true, transB: false, m: s, n: d, k: s, alpha: scale, a: dP, lda: s, b: qp, ldb: qw,
                          beta: accumulate, c: dkp, ldc: kw, pool: .serial)
                }
            }
        }
        return (dq, dk, dv)
    }

    /// Plain twin: the same attention by explicit loops, for tests.
    public static func reference(q: [Float], k: [Float], v: [Float], shape g: GroupedAttentionShape, keyMask: [Float]?,
                                 segmentStarts: [Int32]? = nil) -> [Float] {
        let s = g.sequence, d = g.headDim, qw = g.queryWidth, kw = g.kvWidth
        var out = [Float](repeating: 0, count: g.batch * s * qw)
        for b in 0..<g.batch { for h in 0..<g.heads { for i in 0..<s {
            let kvh = h / g.group
            var scores = [Double](repeating: -.infinity, count: s)
            for j in 0...i where (keyMask == nil || keyMask![b * s + j] != 0) && j >= Int(segmentStarts?[b * s + i] ?? 0) {
                var dot: Double = 0
                for t in 0..<d { dot += Double(q[(b * s + i) * qw + h * d + t]) * Double(k[(b * s + j) * kw + kvh * d + t]) }
                scores[j] = dot * Double(g.scale)
            }
            guard let m = scores.max(), m > -.infinity else { continue }
            let e = scores.map { $0 == -.infinity ? 0 : Foundation.exp($0 - m) }
            let z = e.reduce(0, +)
            for t in 0..<d {
                var acc: Double = 0
                for j in 0..<s { acc += e[j] / z * Double(v[(b * s + j) * kw + kvh * d + t]) }
                out[(b * s + i) * qw + h * d + t] = Float(acc)
            }
        } } }
        return out
    }
}

/// Keys and values of one attention layer kept across calls for incremental decoding:
/// [batch, kvHeads, capacity, headDim] each. Slot t holds the token at index t of the
/// (padded) sequence; `length` slots are filled.
public final class KVCache: @unchecked Sendable {
    public let batch, kvHeads, headDim, capacity: Int
    public private(set) var length = 0
    let keys: UnsafeMutablePointer<Float>
    let values: UnsafeMutablePointer<Float>

    public init(batch: Int, kvHeads: Int, headDim: Int, capacity: Int) {
        self.batch = batch; self.kvHeads = kvHeads; self.headDim = headDim; self.capacity = capacity
        let n = batch * kvHeads * capacity * headDim
        keys = .allocate(capacity: max(n, 1))
        values = .allocate(capacity: max(n, 1))
    }

    deinit { keys.deallocate(); values.deallocate() }

    /// Empties the cache (the storage is kept).
    public func reset() { length = 0 }

    /// Forgets every token after the first `n` (rejected speculative tokens).
    public func truncate(to n: Int) {
        precondition(n >= 0 && n <= length, "KV cache: cannot truncate \(length) tokens to \(n)")
        length = n
    }

    /// Appends `steps` new tokens per sequence: k and v rows [batch·steps, kvHeads·headDim].
    public func append(k: Tensor, v: Tensor, steps: Int) {
        let kw = kvHeads * headDim
        precondition(k.shape == [batch * steps, kw] && v.shape == k.shape, "KV cache: rows \(k.shape) do not match batch \(batch) × \(steps) steps × \(kw)")
        precondition(length + steps <= capacity, "KV cache: \(length + steps) tokens exceed the capacity \(capacity)")
        for b in 0..<batch {
            for t in 0..<steps {
                let src = (b * steps + t) * kw
                for h in 0..<kvHeads {
                    let dst = ((b * kvHeads + h) * capacity + length + t) * headDim
                    (keys + dst).update(from: k.storage.pointer + src + h * headDim, count: headDim)
                    (values + dst).update(from: v.storage.pointer + src + h * headDim, count: headDim)
                }
            }
        }
        length += steps
    }

    /// Attention of the last `steps` tokens (already appended) over every filled slot: query
    /// rows [batch·steps, heads·headDim] → context of the same shape. Token t of the new ones
    /// (slot length − steps + t) attends slots ≤ its own whose `keyMask` [batch, capacity]
    /// entry is 1.
    public func attend(q: Tensor, heads: Int, steps: Int, keyMask: Tensor?) -> Tensor {
        let d = headDim, qw = heads * d, group = heads / kvHeads, past = length - steps, n = length, cap = capacity
        precondition(q.shape == [batch * steps, qw] && heads % kvHeads == 0, "KV cache: queries \(q.shape) do not match \(heads) heads × \(d)")
        if let m = keyMask { precondition(m.shape == [batch, capacity], "KV cache: key mask \(m.shape) is not [\(batch), \(capacity)]") }
        let context = Tensor(uninitializedShape: q.shape)
        let scale = 1 / Float(d).squareRoot()
        let pairs = batch * heads
        let pool = ExecutionContext.pool
        let workers = min(pool.threadCount, max(pairs, 1))
        let scratch = UnsafeMutablePointer<Float>.allocate(capacity: workers * steps * n)
        defer { scratch.deallocate() }
        let qb = UncheckedSendableBox(q.storage.pointer), cb = UncheckedSendableBox(context.storage.pointer)
        let kb = UncheckedSendableBox(keys), vb = UncheckedSendableBox(values), sb = UncheckedSendableBox(scratch)
        let mb = UncheckedSendableBox(keyMask?.storage.pointer)
        let kvHeads = self.kvHeads
        pool.parallelFor(workers) { worker in
            let pr = sb.value + worker * steps * n
            for pair in (pairs * worker / workers)..<(pairs * (worker + 1) / workers) {
                let b = pair / heads, h = pair % heads, kvh = h / group
                let kp = kb.value + (b * kvHeads + kvh) * cap * d, vp = vb.value + (b * kvHeads + kvh) * cap * d
                let qp = qb.value + b * steps * qw + h * d
                sgemm(transA: false, transB: true, m: steps, n: n, k: d, alpha: 1, a: qp, lda: qw, b: kp, ldb: d,
                      beta: 0, c: pr, ldc: n, pool: .serial)
                let mask = mb.value.map { UnsafePointer($0 + b * cap) }
                for i in 0..<steps { causalSoftmaxRow(pr + i * n, n: n, last: past + i, scale: scale, keyMask: mask) }
                sgemm(transA: false, transB: false, m: steps, n: d, k: n, alpha: 1, a: pr, lda: n, b: vp, ldb: d,
                      beta: 0, c: cb.value + b * steps * qw + h * d, ldc: qw, pool: .serial)
            }
        }
        return context
    }
}
