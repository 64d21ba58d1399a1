import XCTest
@testable import SculptCore

/// The decoder's ops (RMS norm, rotary embeddings, causal grouped-query attention, SwiGLU,
/// the KV cache): fast kernels against plain twins on odd sizes, and finite-difference
/// gradients through `GradientCheckTests.check`.
final class DecoderOpTests: XCTestCase {
    var rng = SeededRNG(seed: 7)
    func randn(_ shape: [Int], scale: Float = 1) -> Tensor { Tensor.randomNormal(shape, std: scale, using: &rng) }

    func maxDiff(_ a: [Float], _ b: [Float]) -> Float { zip(a, b).map { abs($0 - $1) }.max() ?? 0 }

    func testRMSNormMatchesPlainTwinOnOddSizes() {
        for (rows, n) in [(1, 1), (3, 17), (5, 33), (2, 576), (7, 15)] {
            let x = randn([rows, n]), w = randn([n])
            let y = rmsNorm(Variable(x), weight: Variable(w), eps: 1e-6).value
            XCTAssertLessThan(maxDiff(y.scalars, rmsNormRowsReference(x.scalars, weight: w.scalars, rows: rows, n: n, eps: 1e-6)), 1e-5, "\(rows)×\(n)")
        }
    }

    func testRotaryMatchesPlainTwinAndInverts() {
        let heads = 3, headDim = 10, rows = 5
        let inv = (0..<4).map { Float(1) / powf(10000, Float(2 * $0) / 8) }   // partial: 8 of 10 dims rotate
        let table = RotaryTable(inverseFrequencies: inv, positions: 40)
        let positions: [Int32] = [0, 3, 39, 7, 1]
        let x = randn([rows, heads * headDim])
        let y = rotary(Variable(x), table: table, positions: positions, heads: heads, headDim: headDim).value
        let ref = rotaryRowsReference(x.scalars, rows: rows, heads: heads, headDim: headDim, positions: positions, inverseFrequencies: inv, inverse: false)
        XCTAssertLessThan(maxDiff(y.scalars, ref), 1e-5)
        var back = Tensor(uninitializedShape: y.shape)
        positions.withUnsafeBufferPointer { p in
            rotaryRows(y.storage.pointer, back.storage.pointer, rows: rows, heads: heads, headDim: headDim, positions: p.baseAddress!, table: table, inverse: true, pool: .serial)
        }
        XCTAssertLessThan(back.maxAbsDifference(x), 1e-5)
        back[flat: 0] = 0
    }

    func testCausalAttentionMatchesPlainTwin() {
        for (b, s, h, kv, d) in [(1, 1, 1, 1, 3), (2, 7, 6, 2, 5), (3, 5, 4, 4, 8), (2, 9, 9, 3, 16)] {
            let g = GroupedAttentionShape(batch: b, sequence: s, heads: h, kvHeads: kv, headDim: d)
            let q = randn([b * s, h * d]), k = randn([b * s, kv * d]), v = randn([b * s, kv * d])
            var maskValues = [Float](repeating: 1, count: b * s)
            if b > 1 { for j in (s / 2)..<s { maskValues[s + j] = 0 } }   // right padding in row 1
            if b > 2 { maskValues[2 * s] = 0 }                              // a left pad in row 2
            let mask = Tensor(shape: [b, s], data: maskValues)
            let out = CausalAttention.forward(q: q, k: k, v: v, shape: g, keyMask: mask).context
            let ref = CausalAttention.reference(q: q.scalars, k: k.scalars, v: v.scalars, shape: g, keyMask: maskValues)
            XCTAssertLessThan(maxDiff(out.scalars, ref), 1e-5, "\(g)")
        }
    }

    /// Packed rows: with segment starts a token attends only its own segment (the gradient,
    /// through probabilities that are zero outside it, is checked in `testDecoderOps`).
    func testSegmentedCausalAttentionMatchesPlainTwinAndGradients() {
        let b = 2, s = 9, h = 4, kv = 2, d = 5
        let g = GroupedAttentionShape(batch: b, sequence: s, heads: h, kvHeads: kv, headDim: d)
        let q = randn([b * s, h * d]), k = randn([b * s, kv * d]), v = randn([b * s, kv * d])
        // Row 0: segments [0, 4), [4, 9); row 1: [0, 2), [2, 7), [7, 9).
        let starts: [Int32] = [0, 0, 0, 0, 4, 4, 4, 4, 4] + [0, 0, 2, 2, 2, 2, 2, 7, 7]
        let out = CausalAttention.forward(q: q, k: k, v: v, shape: g, keyMask: nil, segmentStarts: starts).context
        let ref = CausalAttention.reference(q: q.scalars, k: k.scalars, v: v.scalars, shape: g, keyMask: nil, segmentStarts: starts)
        XCTAssertLessThan(maxDiff(out.scalars, ref), 1e-5)
        // Each segment alone (as its own sequence) gives the same context.
        let alone = CausalAttention.forward(q: q.slice(axis: 0, 4..<9), k: k.slice(axis: 0, 4..<9), v: v.slice(axis: 0, 4..<9),
                                            shape: GroupedAttentionShape(batch: 1, sequence: 5, heads: h, kvHeads: kv, headDim: d), keyMask: nil).context
        XCTAssertLessThan(maxDiff(out.slice(axis: 0, 4..<9).scalars, alone.scalars), 1e-6)
    }

    func testKVCacheIncrementalEqualsFullCausalAttention() {
        let b = 2, s = 7, h = 6, kv = 2, d = 5
        let g = GroupedAttentionShape(batch: b, sequence: s, heads: h, kvHeads: kv, headDim: d)
        let q = randn([b * s, h * d]), k = randn([b * s, kv * d]), v = randn([b * s, kv * d])
        var maskValues = [Float](repeating: 1, count: b * s)
        maskValues[s] = 0; maskValues[s + 1] = 0                            // row 1 left-padded by two
        let full = CausalAttention.forward(q: q, k: k, v: v, shape: g, keyMask: Tensor(shape: [b, s], data: maskValues)).context
        let cache = KVCache(batch: b, kvHeads: kv, headDim: d, capacity: s + 3)
        var capMask = [Float](repeating: 1, count: b * (s + 3))
        capMask[s + 3] = 0; capMask[s + 4] = 0
        let keyMask = Tensor(shape: [b, s + 3], data: capMask)
        // Prefill 4 tokens, then one at a time.
        func rows(_ t: Tensor, _ range: Range<Int>, width: Int) -> Tensor {
            var out: [Float] = []
            for bi in 0..<b { for i in range { for c in 0..<width { out.append(t[flat: (bi * s + i) * width + c]) } } }
            return Tensor(shape: [b * range.count, width], data: out)
        }
        var got = [[Float]](repeating: [], count: b)
        for range in [0..<4, 4..<5, 5..<6, 6..<7] {
            cache.append(k: rows(k, range, width: kv * d), v: rows(v, range, width: kv * d), steps: range.count)
            let ctx = cache.attend(q: rows(q, range, width: h * d), heads: h, steps: range.count, keyMask: keyMask)
            for bi in 0..<b { got[bi] += Array(ctx.scalars[(bi * range.count * h * d)..<((bi + 1) * range.count * h * d)]) }
        }
        // Fully masked query rows (row 1's pads) are zero in both.
        XCTAssertLessThan(maxDiff(got[0] + got[1], full.scalars), 1e-5)
    }

    func testSwiGLUMatchesPlainTwin() {
        for n in [1, 15, 16, 17, 100] {
            let g = randn([n], scale: 3), u = randn([n])
            let y = swiglu(gate: Variable(g), up: Variable(u)).value
            XCTAssertLessThan(maxDiff(y.scalars, swigluReference(g.scalars, u.scalars)), 1e-5)
        }
    }
}

extension GradientCheckTests {
    func testDecoderOps() {
        check("rmsNorm", [randn([3, 7]), randn([7])]) { rmsNorm($0[0], weight: $0[1], eps: 1e-5) }
        check("rmsNorm without weight", [randn([4, 5])]) { rmsNorm($0[0], weight: nil, eps: 1e-5) }
        let inv = (0..<3).map { Float(1) / powf(100, Float(2 * $0) / 6) }
        let table = RotaryTable(inverseFrequencies: inv, positions: 12)
        check("rotary", [randn([4, 2 * 7])]) { rotary($0[0], table: table, positions: [0, 5, 11, 2], heads: 2, headDim: 7) }
        let g = GroupedAttentionShape(batch: 2, sequence: 5, heads: 4, kvHeads: 2, headDim: 3)
        let mask = Tensor(shape: [2, 5], data: [1, 1, 1, 1, 1, 1, 1, 1, 0, 0])
        // Packed rows: [0, 2) and [2, 5) in a row of 5, twice.
        let starts: [Int32] = [0, 0, 2, 2, 2, 0, 0, 2, 2, 2]
        check("segmented causalAttention", [randn([10, 12]), randn([10, 6]), randn([10, 6])]) {
            causalAttention(q: $0[0], k: $0[1], v: $0[2], shape: g, keyMask: nil, segmentStarts: starts)
        }
        check("causalAttention", [randn([10, 12]), randn([10, 6]), randn([10, 6])]) {
            causalAttention(q: $0[0], k: $0[1], v: $0[2], shape: g, keyMask: mask)
        }
        check("swiglu", [randn([3, 17], scale: 2), randn([3, 17])]) { swiglu(gate: $0[0], up: $0[1]) }
        check("embedding with a padding row", [randn([5, 3])]) { embedding($0[0], ids: [1, 4, 1, 2], shape: [4]) }
    }

    func testPaddedEmbeddingSkipsThePaddingRowsGradient() {
        let w = Variable(randn([5, 3]), requiresGrad: true)
        embedding(w, ids: [1, 2, 2, 4], shape: [4], paddingIndex: 2).sum().backward()
        let g = w.grad!.scalars
        XCTAssertEqual(Array(g[6..<9]), [0, 0, 0], "padding row")
        XCTAssertEqual(Array(g[3..<6]), [1, 1, 1])
        XCTAssertEqual(Array(g[12..<15]), [1, 1, 1])
    }
}

/// The chunked LM-head cross-entropy against the plain matmul + cross-entropy on odd sizes.
final class LMCrossEntropyTwinTests: XCTestCase {
    func testChunkedEqualsFullLogits() {
        var rng = SeededRNG(seed: 11)
        func randn(_ shape: [Int]) -> Tensor { Tensor.randomNormal(shape, std: 1, using: &rng) }
        for (rows, h, vocab, chunk) in [(13, 19, 37, 4), (5, 33, 101, 160), (9, 8, 17, 1)] {
            let hv = Variable(randn([rows, h]), requiresGrad: true), wv = Variable(randn([vocab, h]), requiresGrad: true)
            let labels = (0..<rows).map { Int32($0 % 3 == 1 ? -100 : ($0 * 7) % vocab) }
            let fast = lmCrossEntropy(hidden: hv, weight: wv, labels: labels, chunkRows: chunk)
            fast.backward()
            let (gh, gw) = (hv.grad!, wv.grad!)
            hv.zeroGrad(); wv.zeroGrad()
            let plain = crossEntropy(matmul(hv, wv, transposeB: true), labels: labels)
            plain.backward()
            XCTAssertEqual(fast.value.scalar, plain.value.scalar, accuracy: 1e-5)
            XCTAssertLessThan(gh.maxAbsDifference(hv.grad!), 1e-5)
            XCTAssertLessThan(gw.maxAbsDifference(wv.grad!), 1e-5)
        }
    }
}

/// The chunked LM-head distillation against klDivergence on full logits, on odd sizes, a
/// teacher of another width, and rows left out.
final class LMDistillationTwinTests: XCTestCase {
    func testChunkedEqualsFullLogits() {
        var rng = SeededRNG(seed: 12)
        func randn(_ shape: [Int]) -> Tensor { Tensor.randomNormal(shape, std: 1, using: &rng) }
        for (rows, h, ht, vocab, chunk, t) in [(13, 19, 7, 37, 4, Float(1)), (5, 33, 33, 101, 160, 2), (9, 8, 12, 17, 1, 0.7)] {
            let hv = Variable(randn([rows, h]), requiresGrad: true), wv = Variable(randn([vocab, h]), requiresGrad: true)
            let th = randn([rows, ht]), tw = randn([vocab, ht])
            let counted = (0..<rows).map { $0 % 3 != 1 }
            let fast = lmDistillation(hidden: hv, weight: wv, teacherHidden: th, teacherWeight: tw, counted: counted, temperature: t, chunkRows: chunk)
            fast.backward()
            let (gh, gw) = (hv.grad!, wv.grad!)
            hv.zeroGrad(); wv.zeroGrad()
            let keep = (0..<rows).filter { counted[$0] }.map(Int32.init)
            let student = matmul(hv, wv, transposeB: true).indexSelect(axis: 0, keep)
            let teacher = Variable(Tensor.matmul(th, tw, transposeB: true).indexSelect(axis: 0, keep))
            let plain = klDivergence(student: student, teacher: teacher, temperature: t)
            plain.backward()
            XCTAssertEqual(fast.value.scalar, plain.value.scalar, accuracy: 1e-4)
            XCTAssertGreaterThan(fast.value.scalar, 0.1)
            XCTAssertLessThan(gh.maxAbsDifference(hv.grad!), 1e-5)
            XCTAssertLessThan(gw.maxAbsDifference(wv.grad!), 1e-5)
        }
    }
}
