import XCTest
import SculptCore

/// Fast `sgemm` / `sgemmBatched` against the plain-loop `sgemmReference` twin.
final class GEMMTests: XCTestCase {
    /// Deterministic values in [-1, 1).
    private struct LCG {
        var state: UInt64
        mutating func next() -> Float {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Float(state >> 40) * (2.0 / 16_777_216.0) - 1
        }
    }

    private struct Case {
        var m: Int, n: Int, k: Int
        var transA = false, transB = false
        var alpha: Float = 1.25, beta: Float = -0.75
        var pad = 0          // extra elements per row in lda, ldb, ldc
        var nanC = false     // fill C with NaN (only meaningful with beta == 0)
        var threads = 1
        var bias = false     // add a bias row (the Linear epilogue)
    }

    /// Runs one case through the fast kernel and the reference and compares element-wise with a
    /// tolerance scaled by |alpha| * sum_p |a_ip * b_pj| + |beta * c_ij|.
    private func check(_ t: Case, file: StaticString = #filePath, line: UInt = #line) {
        let aRows = t.transA ? t.k : t.m, aCols = t.transA ? t.m : t.k
        let bRows = t.transB ? t.n : t.k, bCols = t.transB ? t.k : t.n
        let lda = max(1, aCols + t.pad), ldb = max(1, bCols + t.pad), ldc = max(1, t.n + t.pad)
        var rng = LCG(state: UInt64(t.m * 1_000_003 + t.n * 1009 + t.k * 7 + (t.transA ? 1 : 0) + (t.transB ? 2 : 0)))
        let a = (0..<max(1, aRows * lda)).map { _ in rng.next() }
        let b = (0..<max(1, bRows * ldb)).map { _ in rng.next() }
        let c0: [Float] = (0..<max(1, t.m * ldc)).map { _ in t.nanC ? .nan : rng.next() }
        let bias: [Float]? = t.bias ? (0..<max(1, t.n)).map { _ in rng.next() * 4 } : nil
        var fast = c0, ref = c0
        a.withUnsafeBufferPointer { a in
            b.withUnsafeBufferPointer { b in
                fast.withUnsafeMutableBufferPointer { c in
                    withOptionalPointer(bias) { bp in
                        sgemm(transA: t.transA, transB: t.transB, m: t.m, n: t.n, k: t.k, alpha: t.alpha,
                              a: a.baseAddress!, lda: lda, b: b.baseAddress!, ldb: ldb,
                              beta: t.beta, c: c.baseAddress!, ldc: ldc, bias: bp, pool: ThreadPool(threads: t.threads))
                    }
                }
                ref.withUnsafeMutableBufferPointer { c in
                    withOptionalPointer(bias) { bp in
                        sgemmReference(transA: t.transA, transB: t.transB, m: t.m, n: t.n, k: t.k, alpha: t.alpha,
                                       a: a.baseAddress!, lda: lda, b: b.baseAddress!, ldb: ldb,
                                       beta: t.beta, c: c.baseAddress!, ldc: ldc, bias: bp)
                    }
                }
            }
        }
        var bad = 0
        for i in 0..<t.m {
            for j in 0..<ldc {
                let idx = i * ldc + j
                if j >= t.n {  // padding between rows must be untouched
                    if !(fast[idx] == c0[idx] || (fast[idx].isNaN && c0[idx].isNaN)) { bad += 1 }
                    continue
                }
                var mag: Float = 0
                for p in 0..<t.k {
                    let x = t.transA ? a[p * lda + i] : a[i * lda + p]
                    let y = t.transB ? b[j * ldb + p] : b[p * ldb + j]
                    mag += abs(x * y)
                }
                let scale = abs(t.alpha) * mag + (t.beta == 0 ? 0 : abs(t.beta * c0[idx])) + abs(bias?[j] ?? 0)
                let tol = 1e-5 * Float(t.k + 4) .squareRoot() * scale + 1e-6
                if !(abs(fast[idx] - ref[idx]) <= tol) {
                    if bad < 5 {
                        XCTFail("\(t) at (\(i),\(j)): fast \(fast[idx]) ref \(ref[idx]) tol \(tol)", file: file, line: line)
                    }
                    bad += 1
                }
            }
        }
        XCTAssertEqual(bad, 0, "\(t): \(bad) mismatches", file: file, line: line)
    }

    private let shapes: [(Int, Int, Int)] = [
        (1, 1, 1), (7, 33, 129), (129, 7, 33), (33, 129, 300), (1000, 1, 7), (65, 97, 300),
        (1, 384, 384), (3, 40, 17), (8, 32, 256), (16, 64, 513), (17, 31, 1), (9, 600, 20),
        (70, 530, 40), (2, 300, 20), (3, 200, 50), (4, 150, 33), (1, 600, 70), (6, 99, 260),
        (12, 130, 20), (300, 1, 700), (2100, 70, 30),
    ]

    func testAllTransposeCases() {
        for (m, n, k) in shapes {
            for ta in [false, true] {
                for tb in [false, true] {
                    check(Case(m: m, n: n, k: k, transA: ta, transB: tb))
                }
            }
        }
    }

    func testBetaZeroOverwritesNaN() {
        for (m, n, k) in [(7, 33, 129), (65, 97, 300), (2, 70, 9), (40, 35, 260)] {
            for ta in [false, true] {
                for tb in [false, true] {
                    check(Case(m: m, n: n, k: k, transA: ta, transB: tb, alpha: 0.5, beta: 0, nanC: true))
                }
            }
        }
    }

    func testLeadingDimensionsAndAlphaBeta() {
        for (m, n, k) in [(7, 33, 129), (129, 7, 33), (33, 129, 65), (1, 50, 300), (12, 45, 270)] {
            for ta in [false, true] {
                for tb in [false, true] {
                    check(Case(m: m, n: n, k: k, transA: ta, transB: tb, alpha: -0.5, beta: 1, pad: 5))
                    check(Case(m: m, n: n, k: k, transA: ta, transB: tb, alpha: 2, beta: 0.25, pad: 17))
                }
            }
        }
    }

    func testTwoThreads() {
        for (m, n, k) in [(129, 257, 300), (300, 40, 200), (40, 700, 100), (5, 2000, 300), (200, 200, 70)] {
            for ta in [false, true] {
                for tb in [false, true] {
                    check(Case(m: m, n: n, k: k, transA: ta, transB: tb, pad: 3, threads: 2))
                }
            }
            check(Case(m: m, n: n, k: k, beta: 0, nanC: true, threads: 2))
        }
    }

    /// x·Wᵀ with 9...64 rows runs as Cᵀ = W·xᵀ (gemmSwapped): odd sizes, row and column
    /// remainders of the 8 x 32 tiles, beta 0 over NaN, beta 1, padded leading dimensions, two threads.
    func testSwappedSmallBatchTransposedB() {
        for m in [9, 17, 32, 33, 64] {
            for (n, k) in [(1, 7), (7, 33), (33, 129), (129, 1), (1000, 7), (37, 1000), (384, 384), (130, 300)] {
                check(Case(m: m, n: n, k: k, transB: true))
                check(Case(m: m, n: n, k: k, transB: true, alpha: 0.5, beta: 0, nanC: true))
                check(Case(m: m, n: n, k: k, transB: true, alpha: -1, beta: 1, pad: 5))
                check(Case(m: m, n: n, k: k, transB: true, alpha: 2, beta: 0.25, pad: 3, threads: 2))
            }
        }
    }

    /// The bias epilogue on every path (few rows, dot products, swapped, blocked with row and
    /// column remainders, several depth blocks, k = 0), all transposes, beta 0 over NaN and
    /// beta ≠ 0, padded leading dimensions, one and two threads.
    func testBiasEpilogue() {
        for (m, n, k) in [(1, 1, 1), (3, 40, 17), (7, 33, 129), (9, 600, 20), (33, 129, 300), (65, 97, 600), (129, 7, 33), (300, 1, 70), (2100, 70, 30), (5, 7, 0)] {
            for ta in [false, true] {
                for tb in [false, true] {
                    check(Case(m: m, n: n, k: k, transA: ta, transB: tb, bias: true))
                    check(Case(m: m, n: n, k: k, transA: ta, transB: tb, alpha: 0.5, beta: 0, pad: 3, nanC: true, threads: 2, bias: true))
                }
            }
        }
    }

    func testDegenerateSizes() {
        // k == 0: C = beta * C; alpha == 0 likewise (A and B not read as numbers).
        check(Case(m: 5, n: 7, k: 0, beta: 0.5))
        check(Case(m: 5, n: 7, k: 0, beta: 0, nanC: true))
        check(Case(m: 9, n: 40, k: 3, alpha: 0, beta: 2))
        // m == 0 or n == 0: nothing is touched.
        var c: [Float] = [42]
        let x: [Float] = [1]
        x.withUnsafeBufferPointer { p in
            c.withUnsafeMutableBufferPointer { cp in
                sgemm(transA: false, transB: false, m: 0, n: 1, k: 1, alpha: 1, a: p.baseAddress!, lda: 1,
                      b: p.baseAddress!, ldb: 1, beta: 0, c: cp.baseAddress!, ldc: 1, pool: .serial)
                sgemm(transA: false, transB: false, m: 1, n: 0, k: 1, alpha: 1, a: p.baseAddress!, lda: 1,
                      b: p.baseAddress!, ldb: 1, beta: 0, c: cp.baseAddress!, ldc: 1, pool: .serial)
            }
        }
        XCTAssertEqual(c, [42])
    }

    func testBatched() {
        // (m, n, k, batch, threads): small GEMMs spread across the batch, and a large pair split inside.
        for (m, n, k, batch, threads) in [(33, 40, 17, 5, 2), (128, 128, 32, 6, 2), (7, 9, 300, 3, 1), (260, 270, 250, 2, 2), (160, 170, 160, 3, 2)] {
            for (ta, tb) in [(false, false), (false, true), (true, false), (true, true)] {
                let lda = (ta ? m : k) + 2, ldb = (tb ? k : n) + 1, ldc = n + 3
                let sA = (ta ? k : m) * lda + 11, sB = (tb ? n : k) * ldb + 5, sC = m * ldc + 7
                var rng = LCG(state: UInt64(m * 31 + n * 17 + k + batch))
                let a = (0..<(sA * batch)).map { _ in rng.next() }
                let b = (0..<(sB * batch)).map { _ in rng.next() }
                let c0 = (0..<(sC * batch)).map { _ in rng.next() }
                var fast = c0, ref = c0
                a.withUnsafeBufferPointer { a in
                    b.withUnsafeBufferPointer { b in
                        fast.withUnsafeMutableBufferPointer { c in
                            sgemmBatched(transA: ta, transB: tb, m: m, n: n, k: k, alpha: 0.75,
                                         a: a.baseAddress!, lda: lda, strideA: sA, b: b.baseAddress!, ldb: ldb, strideB: sB,
                                         beta: 0.5, c: c.baseAddress!, ldc: ldc, strideC: sC, batch: batch,
                                         pool: ThreadPool(threads: threads))
                        }
                        ref.withUnsafeMutableBufferPointer { c in
                            for i in 0..<batch {
                                sgemmReference(transA: ta, transB: tb, m: m, n: n, k: k, alpha: 0.75,
                                               a: a.baseAddress! + i * sA, lda: lda, b: b.baseAddress! + i * sB, ldb: ldb,
                                               beta: 0.5, c: c.baseAddress! + i * sC, ldc: ldc)
                            }
                        }
                    }
                }
                let maxRef = ref.reduce(Float(0)) { max($0, abs($1)) }
                var worst: Float = 0
                for i in 0..<ref.count { worst = max(worst, abs(fast[i] - ref[i])) }
                XCTAssertLessThanOrEqual(worst, 1e-4 * (1 + maxRef), "batched \(m)x\(n)x\(k) batch \(batch) ta \(ta) tb \(tb)")
            }
        }
    }
}

/// `body` with a pointer to the array's storage, or nil.
private func withOptionalPointer<R>(_ values: [Float]?, _ body: (UnsafePointer<Float>?) -> R) -> R {
    guard let values else { return body(nil) }
    return values.withUnsafeBufferPointer { body($0.baseAddress!) }
}
