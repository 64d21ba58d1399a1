import XCTest
import Foundation
@testable import SculptCore

/// Every fast kernel against its plain-loop twin, on odd sizes and both thread counts.
final class KernelTwinTests: XCTestCase {
    let sizes = [1, 7, 33, 129, 1000]
    var rng = SeededRNG(seed: 3)

    func values(_ n: Int, scale: Float = 3) -> [Float] { (0..<n).map { _ in rng.nextNormal() * scale } }

    func testUnaryKernelsMatchLibm() {
        for f in UnaryFunction.allCases {
            for n in sizes + [70_001] {
                var x = values(n)
                if f == .log || f == .sqrt || f == .reciprocal { x = x.map { abs($0) + 0.01 } }
                for threads in [1, 2] {
                    let y = withThreads(threads) { Tensor(shape: [n], data: x).applying(f) }
                    let d = withThreads(threads) { Tensor(shape: [n], data: x).unaryGradient(f, upstream: Tensor(shape: [n], repeating: 1)) }
                    for i in 0..<n {
                        let ref = unaryReference(f, x[i]), dref = unaryDerivativeReference(f, x[i])
                        XCTAssertEqual(y[flat: i], ref, accuracy: 2e-6 * max(1, abs(ref)), "\(f)(\(x[i])) n=\(n)")
                        XCTAssertEqual(d[flat: i], dref, accuracy: 2e-5 * max(1, abs(dref)), "\(f)'(\(x[i])) n=\(n)")
                    }
                }
            }
        }
    }

    func testDropoutMaskMatchesScalarTwin() {
        // The SIMD fill against the per-entry scalar definition, from odd offsets and sizes,
        // on one and two threads; the kept fraction follows p.
        for n in sizes + [70_001] {
            for p: Float in [0.1, 0.5] {
                let threshold = UInt32(Double(p) * 4_294_967_296.0), keep = 1 / (1 - p)
                for threads in [1, 2] {
                    var buf = [Float](repeating: -1, count: n)
                    withThreads(threads) {
                        buf.withUnsafeMutableBufferPointer { fillDropoutMask($0.baseAddress!, count: n, key: 0xC0FFEE, threshold: threshold, keep: keep, pool: ExecutionContext.pool) }
                    }
                    for i in 0..<n {
                        XCTAssertEqual(buf[i], dropoutMaskEntry(key: 0xC0FFEE, index: i, threshold: threshold, keep: keep), "entry \(i) of \(n), p \(p)")
                    }
                    if n == 70_001 {
                        let dropped = Double(buf.filter { $0 == 0 }.count) / Double(n)
                        XCTAssertEqual(dropped, Double(p), accuracy: 0.01, "dropped fraction at p \(p)")
                    }
                }
            }
        }
        XCTAssertEqual(splitMix64(key: 0, counter: 0), 0xE220_A839_7B1D_CDAF, "SplitMix64's first output from state 0")
    }

    func testExpCoversFullRange() {
        let xs: [Float] = [-100, -87, -20, -1e-3, 0, 1e-3, 1, 10, 50, 88, 100]
        let y = Tensor(shape: [xs.count], data: xs).applying(.exp)
        for (i, x) in xs.enumerated() {
            let ref = Foundation.exp(x)
            if ref.isInfinite { XCTAssertGreaterThan(y[flat: i], 1e38) } else {
                XCTAssertEqual(y[flat: i], ref, accuracy: max(3e-7 * ref, 1e-37), "exp(\(x))")
            }
        }
    }

    func testSoftmaxMatchesReference() {
        for n in sizes {
            for rows in [1, 3, 65] {
                let x = values(rows * n, scale: 10)
                for log in [false, true] {
                    let fast = withThreads(2) { Tensor(shape: [rows, n], data: x).softmax(log: log) }
                    let ref = softmaxRowsReference(x, rows: rows, n: n, log: log)
                    for i in 0..<ref.count { XCTAssertEqual(fast[flat: i], ref[i], accuracy: 1e-5 * max(1, abs(ref[i])), "softmax log=\(log) n=\(n)") }
                }
            }
        }
    }

    func testMaskedSoftmaxMatchesReference() {
        for n in sizes {
            let batch = 3, rowsPerSequence = 5
            let x = values(batch * rowsPerSequence * n)
            let mask = (0..<(batch * n)).map { i -> Float in (i % n) < max(1, n - (i / n) * 2) ? 1 : 0 }
            let y = withThreads(2) {
                maskedSoftmax(Variable(Tensor(shape: [batch, rowsPerSequence, n], data: x)), scale: 0.3, keyMask: Tensor(shape: [batch, n], data: mask)).value
            }
            for r in 0..<(batch * rowsPerSequence) {
                let b = r / rowsPerSequence
                let kept = (0..<n).filter { mask[b * n + $0] == 1 }
                let ref = softmaxRowsReference(kept.map { x[r * n + $0] * 0.3 }, rows: 1, n: kept.count, log: false)
                var expected = [Float](repeating: 0, count: n)
                for (j, c) in kept.enumerated() { expected[c] = ref[j] }
                for c in 0..<n { XCTAssertEqual(y[flat: r * n + c], expected[c], accuracy: 1e-6, "maskedSoftmax n=\(n) row \(r)") }
            }
        }
    }

    func testFusedAttentionMatchesReference() {
        for (b, s, h, d) in [(1, 1, 1, 1), (2, 7, 3, 5), (3, 33, 2, 16), (1, 129, 4, 8)] {
            let shape = AttentionShape(batch: b, sequence: s, heads: h, headDim: d)
            let qkv = values(b * s * 3 * h * d, scale: 1)
            let mask = (0..<(b * s)).map { i -> Float in (i % s) < max(1, s - (i / s) * 3) ? 1 : 0 }
            let fast = withThreads(2) {
                FusedAttention.forward(qkv: Tensor(shape: [b * s, 3 * h * d], data: qkv), shape: shape, keyMask: Tensor(shape: [b, s], data: mask), dropoutMask: nil).context
            }
            let ref = FusedAttention.reference(qkv: qkv, shape: shape, keyMask: mask)
            for i in 0..<ref.count { XCTAssertEqual(fast[flat: i], ref[i], accuracy: 1e-5, "attention b=\(b) s=\(s) h=\(h) d=\(d)") }
        }
    }

    func testLayerNormMatchesReference() {
        for n in sizes {
            let rows = 37
            let x = values(rows * n), g = values(n, scale: 1), b = values(n, scale: 1)
            let fast = withThreads(2) { Tensor(shape: [rows, n], data: x).layerNorm(gamma: Tensor(shape: [n], data: g), beta: Tensor(shape: [n], data: b), eps: 1e-5).output }
            let ref = layerNormRowsReference(x, gamma: g, beta: b, rows: rows, n: n, eps: 1e-5)
            for i in 0..<ref.count { XCTAssertEqual(fast[flat: i], ref[i], accuracy: 2e-5 * max(1, abs(ref[i])), "layerNorm n=\(n)") }
        }
    }

    func testIm2colMatchesReference() {
        for (c, h, w, kh, kw, s, p) in [(1, 1, 1, 1, 1, 1, 0), (3, 7, 5, 3, 3, 1, 1), (2, 33, 9, 5, 3, 2, 2), (4, 8, 8, 2, 2, 2, 0)] {
            let x = values(c * h * w)
            let ref = im2colReference(x, channels: c, height: h, width: w, kernelH: kh, kernelW: kw, strideH: s, strideW: s, padH: p, padW: p)
            var cols = [Float](repeating: .nan, count: ref.cols.count)
            x.withUnsafeBufferPointer { xp in
                cols.withUnsafeMutableBufferPointer { cp in
                    im2col(xp.baseAddress!, channels: c, height: h, width: w, kernelH: kh, kernelW: kw, strideH: s, strideW: s,
                           padH: p, padW: p, outH: ref.outH, outW: ref.outW, cp.baseAddress!)
                }
            }
            XCTAssertEqual(cols, ref.cols, "im2col c=\(c) h=\(h) w=\(w) k=\(kh)x\(kw) s=\(s) p=\(p)")
        }
    }

    func testBroadcastFastPathsMatchStridedPath() {
        let cases: [([Int], [Int])] = [([129, 33], [33]), ([33], [129, 33]), ([7, 129, 1], [7, 129, 33]), ([1000, 7], [1]), ([3, 1, 5], [1, 4, 1]), ([2, 3, 4], [2, 3, 4])]
        for (sa, sb) in cases {
            let a = Tensor(shape: sa, data: values(Shape.count(sa))), b = Tensor(shape: sb, data: values(Shape.count(sb)).map { $0 + 10 })
            for f in [BinaryFunction.add, .sub, .mul, .div] {
                let fast = withThreads(2) { Tensor.binary(f, a, b) }
                let outShape = try! Shape.broadcast(sa, sb, op: "test")
                var ref = [Float](repeating: 0, count: Shape.count(outShape))
                binaryStrided(f, a.storage.pointer, aStrides: a.broadcastStrides(to: outShape), b.storage.pointer, bStrides: b.broadcastStrides(to: outShape), &ref, shape: outShape)
                XCTAssertEqual(fast.shape, outShape)
                XCTAssertEqual(fast.scalars, ref, "\(f) \(sa) \(sb)")
            }
        }
    }

    func testReductionsMatchLoops() {
        let shape = [7, 33, 5]
        let x = Tensor(shape: shape, data: values(Shape.count(shape)))
        let s1 = withThreads(2) { x.sum(axes: [1]) }
        for o in 0..<7 { for i in 0..<5 {
            var ref: Float = 0
            for l in 0..<33 { ref += x[flat: (o * 33 + l) * 5 + i] }
            XCTAssertEqual(s1[flat: o * 5 + i], ref, accuracy: 1e-4)
        } }
        let s2 = x.sum(axes: [-1])
        for r in 0..<(7 * 33) {
            var ref: Float = 0
            for i in 0..<5 { ref += x[flat: r * 5 + i] }
            XCTAssertEqual(s2[flat: r], ref, accuracy: 1e-4)
        }
        XCTAssertEqual(x.sum().scalar, x.scalars.reduce(0, +), accuracy: 1e-2)
    }

    func testPermuteMatchesIndexArithmetic() {
        let x = Tensor(shape: [2, 3, 4, 5], data: (0..<120).map(Float.init))
        let y = x.permuted([0, 2, 1, 3])
        XCTAssertEqual(y.shape, [2, 4, 3, 5])
        for a in 0..<2 { for b in 0..<4 { for c in 0..<3 { for d in 0..<5 {
            XCTAssertEqual(y[flat: ((a * 4 + b) * 3 + c) * 5 + d], x[flat: ((a * 3 + c) * 4 + b) * 5 + d])
        } } } }
        let z = x.permuted([3, 1, 0, 2])
        XCTAssertEqual(z.permuted([2, 1, 3, 0]), x)
    }

    func testShapeErrorsNameOpAndShapes() {
        XCTAssertThrowsError(try Shape.broadcast([2, 3], [4], op: "add")) { e in
            XCTAssertEqual("\(e)", "add: shapes [2, 3] and [4] cannot be broadcast together")
        }
        XCTAssertThrowsError(try Shape.matmul([2, 3], [4, 5], transposeA: false, transposeB: false)) { e in
            XCTAssertTrue("\(e)".hasPrefix("matmul:") && "\(e)".contains("[2, 3]") && "\(e)".contains("[4, 5]"), "\(e)")
        }
        XCTAssertThrowsError(try Tensor.resolveReshape([2, 3], [4, 2])) { e in
            XCTAssertTrue("\(e)".hasPrefix("reshape:") && "\(e)".contains("[2, 3]"), "\(e)")
        }
        XCTAssertThrowsError(try Conv2DGeometry(input: [1, 3, 2, 2], kernel: (3, 3), stride: (1, 1), padding: (0, 0), op: "conv2d")) { e in
            XCTAssertTrue("\(e)".hasPrefix("conv2d:"), "\(e)")
        }
    }
}
