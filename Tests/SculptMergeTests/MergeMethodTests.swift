import XCTest
import SculptCore
@testable import SculptMerge

/// Every method on small tensors against numbers worked out by hand (in the comments).
final class MergeMethodTests: XCTestCase {
    func testLinearWeightedAverageAndUnnormalised() {
        let models: [[Float]] = [[1, 2, 3], [3, 2, 1]]
        // (1·1 + 3·3)/4 = 2.5, (2 + 6)/4 = 2, (3 + 3)/4 = 1.5
        XCTAssertEqual(TensorMerger(method: .linear, weights: [1, 3]).merge(base: nil, models: models), [2.5, 2, 1.5])
        // normalize: false → plain weighted sum 10, 8, 6
        XCTAssertEqual(TensorMerger(method: .linear, weights: [1, 3], normalize: false).merge(base: nil, models: models), [10, 8, 6])
    }

    func testTaskArithmetic() {
        let base: [Float] = [1, 1, 1, 1]
        // τ1 = [1, 0, −1, 0], τ2 = [0, 2, 0, −1]; w = 1, 0.5 → Σwτ = [1, 1, −1, −0.5]; λ = 2 → [2, 2, −2, −1]; + base
        var m = TensorMerger(method: .taskArithmetic, weights: [1, 0.5])
        m.lambda = 2
        XCTAssertEqual(m.merge(base: base, models: [[2, 1, 0, 1], [1, 3, 1, 0]]), [3, 3, -1, 0])
        // normalize divides Σwτ by Σw = 1.5 before λ: [2/1.5·1, …]
        m.normalize = true
        let r = m.merge(base: base, models: [[2, 1, 0, 1], [1, 3, 1, 0]])
        for (a, b) in zip(r, [1 + 2 / 1.5, 1 + 2 / 1.5, 1 - 2 / 1.5, 1 - 1 / 1.5] as [Float]) { XCTAssertEqual(a, b, accuracy: 1e-6) }
    }

    // τ1 = [3, −1, 2, 0.5], τ2 = [−2, 1, 1, 0], τ3 = [1, −4, −1, 0.2], density 0.5 (k = 2 of 4):
    // τ̂1 = [3, 0, 2, 0]
    // τ̂2 = [−2, 1, 0, 0]   (|1| at index 1 and 2 tie at the threshold: the lower index is kept)
    // τ̂3 = [1, −4, 0, 0]   (|1| at index 0 and 2 tie: index 0 kept)
    let tiesModels: [[Float]] = [[3, -1, 2, 0.5], [-2, 1, 1, 0], [1, -4, -1, 0.2]]

    func testTiesTrimAtThresholdAndDefaultMergekitSemantics() {
        var m = TensorMerger(method: .ties, weights: [1, 3, 1], densities: [0.5, 0.5, 0.5])
        // mergekit: sign of Σwτ̂, divide by Σw of agreeing.
        // e0: 3 − 6 + 1 = −2 → −: only τ2 agrees: 3·(−2)/3 = −2
        // e1: 0 + 3 − 4 = −1 → −: τ3: −4/1 = −4
        // e2: 2 + 0 + 0 → +: τ1: 2/1 = 2
        // e3: all zero → elected + (ties go to +), nobody agrees → 0
        XCTAssertEqual(m.merge(base: [0, 0, 0, 0], models: tiesModels), [-2, -4, 2, 0])
        // TIES paper / PEFT sign: Στ̂ unweighted. e0: 3 − 2 + 1 = 2 → +: (1·3 + 1·1)/(1 + 1) = 2
        m.consensus = .sumUnweighted
        XCTAssertEqual(m.merge(base: [0, 0, 0, 0], models: tiesModels), [2, -4, 2, 0])
        // Paper / PEFT mean: divide by the number of agreeing models. e0 (sum sign, −): 3·(−2)/1 = −6
        m.consensus = .sum
        m.disjointMean = .count
        XCTAssertEqual(m.merge(base: [0, 0, 0, 0], models: tiesModels), [-6, -4, 2, 0])
        // Vote: e0 signs +, −, + → +: (3 + 1)/2 = 2 with weight_sum; e1 signs 0, +, − → 0 → +: 3·1/3 = 1
        m.disjointMean = .weightSum
        m.consensus = .count
        XCTAssertEqual(m.merge(base: [0, 0, 0, 0], models: tiesModels), [2, 1, 2, 0])
        // normalize: false → plain sum over agreeing: e0 −6, e1 −4, e2 2
        m.consensus = .sum
        m.normalize = false
        XCTAssertEqual(m.merge(base: [1, 1, 1, 1], models: tiesModels.map { $0.map { $0 + 1 } }), [-5, -3, 3, 1])
    }

    func testTiesLambdaAndDensityOne() {
        var m = TensorMerger(method: .ties, weights: [1, 1, 1])
        m.lambda = 0.5
        // density 1: nothing trimmed. e0: 3−2+1 = 2 → +: (3+1)/2 = 2 → ·0.5 = 1
        // e1: −1+1−4 = −4 → −: (−1−4)/2 = −2.5 → −1.25; e2: 2+1−1 → +: 1.5 → 0.75; e3: 0.7 → +: 0.35 → 0.175
        let r = m.merge(base: [0, 0, 0, 0], models: tiesModels)
        for (a, b) in zip(r, [1, -1.25, 0.75, 0.175] as [Float]) { XCTAssertEqual(a, b, accuracy: 1e-6) }
    }

    func testAllZeroTaskVectorsGiveTheBase() {
        let base: [Float] = [0.5, -2, 0, 7]
        for method in [MergeMethodName.taskArithmetic, .ties, .dareLinear, .dareTies, .magnitudePrune] {
            let m = TensorMerger(method: method, weights: [1, 2], densities: [0.5, 0.5])
            XCTAssertEqual(m.merge(base: base, models: [base, base]), base, "\(method)")
        }
    }

    func testMagnitudePrune() {
        // τ̂1 = [3, 0, 2, 0], τ̂2 = [−2, 1, 0, 0] (as above); Σ = [1, 1, 2, 0]; + base 1
        let m = TensorMerger(method: .magnitudePrune, weights: [1, 1], densities: [0.5, 0.5])
        XCTAssertEqual(m.merge(base: [1, 1, 1, 1], models: [[4, 0, 3, 1.5], [-1, 2, 2, 1]]), [2, 2, 3, 1])
    }

    func testKeepCountFloorsLikeMergekit() {
        XCTAssertEqual(MagnitudeCut.keepCount(density: 0.3, count: 10), 3)
        XCTAssertEqual(MagnitudeCut.keepCount(density: 0.29, count: 10), 2)
        XCTAssertEqual(MagnitudeCut.keepCount(density: 0, count: 10), 0)
        XCTAssertEqual(MagnitudeCut.keepCount(density: 1, count: 10), 10)
        // Density 0 keeps nothing.
        XCTAssertEqual(TensorMerger(method: .magnitudePrune, weights: [1], densities: [0]).merge(base: [1, 1], models: [[5, 5]]), [1, 1])
    }

    func testDareMaskIsTheSeededBernoulliAndRescalesByInverseDensity() {
        let tau: [Float] = (0..<64).map { Float($0 % 7) - 3 }
        let base = [Float](repeating: 1, count: 64)
        var m = TensorMerger(method: .dareLinear, weights: [1], densities: [0.25])
        m.seed = 42
        let r = m.merge(name: "w", base: base, models: [zip(base, tau).map { $0 + $1 }])
        let seed = MergeKernels.dropSeed(42, model: 0, tensor: "w")
        var kept = 0
        for i in 0..<64 {
            let keep = MergeKernels.uniform(seed, i) < 0.25
            if keep { kept += 1 }
            XCTAssertEqual(r[i], 1 + (keep ? tau[i] * 4 : 0), accuracy: 1e-6, "entry \(i)")
        }
        XCTAssert(kept > 5 && kept < 30)
        // Same seed → same result; another seed → another mask.
        XCTAssertEqual(m.merge(name: "w", base: base, models: [zip(base, tau).map { $0 + $1 }]), r)
        m.seed = 43
        XCTAssertNotEqual(m.merge(name: "w", base: base, models: [zip(base, tau).map { $0 + $1 }]), r)
    }

    func testDareL1RescalePreservesTheNorm() {
        let tau: [Float] = (0..<200).map { Float(($0 * 37) % 11) - 5 }
        var m = TensorMerger(method: .dareLinear, weights: [1], densities: [0.3])
        m.rescale = .l1
        let r = m.merge(base: [Float](repeating: 0, count: 200), models: [tau])
        XCTAssertEqual(r.reduce(0) { $0 + abs($1) }, tau.reduce(0) { $0 + abs($1) }, accuracy: 1e-2)
        m.rescale = .none
        let plain = m.merge(base: [Float](repeating: 0, count: 200), models: [tau])
        for (a, b) in zip(plain, tau) { XCTAssert(a == 0 || a == b) }
    }

    func testDareTiesDensityOneIsTies() {
        var d = TensorMerger(method: .dareTies, weights: [1, 3, 1]); d.normalize = true
        let t = TensorMerger(method: .ties, weights: [1, 3, 1])
        XCTAssertEqual(d.merge(base: [0, 0, 0, 0], models: tiesModels), t.merge(base: [0, 0, 0, 0], models: tiesModels))
    }

    func testLayerIndexParsing() {
        XCTAssertEqual(LayerIndex.of("encoder.layer.10.attention.self.query.weight"), 10)
        XCTAssertEqual(LayerIndex.of("bert.encoder.layer.0.output.dense.bias"), 0)
        XCTAssertEqual(LayerIndex.of("layer.3.x"), 3)
        XCTAssertEqual(LayerIndex.of("model.layers.7.mlp.weight"), 7)
        XCTAssertNil(LayerIndex.of("encoder.layer_norm.weight"))
        XCTAssertNil(LayerIndex.of("encoder.layer.3"))            // no component after the index
        XCTAssertNil(LayerIndex.of("player.2.weight"))            // "layer" only as a whole component
        XCTAssertNil(LayerIndex.of("encoder.layer.x1.weight"))
        XCTAssertNil(LayerIndex.of("embeddings.word_embeddings.weight"))
        XCTAssertNil(LayerIndex.of("layer10.weight"))
    }

    func testLinesScale() {
        // L = 3: ℓ = 0 → α, 1 → α + β/2, 2 → α + β; outside the layers → α
        XCTAssertEqual(LayerIndex.linesScale(name: "encoder.layer.0.a.weight", layers: 3, alpha: 0.2, beta: 0.6), 0.2, accuracy: 1e-12)
        XCTAssertEqual(LayerIndex.linesScale(name: "encoder.layer.1.a.weight", layers: 3, alpha: 0.2, beta: 0.6), 0.5, accuracy: 1e-12)
        XCTAssertEqual(LayerIndex.linesScale(name: "encoder.layer.2.a.weight", layers: 3, alpha: 0.2, beta: 0.6), 0.8, accuracy: 1e-12)
        XCTAssertEqual(LayerIndex.linesScale(name: "embeddings.word_embeddings.weight", layers: 3, alpha: 0.2, beta: 0.6), 0.2)
        XCTAssertEqual(LayerIndex.linesScale(name: "pooler.dense.weight", layers: 3, alpha: 0.2, beta: 0.6), 0.2)
    }

    func testGlobalCutSpansTensorsWithTiesInOrder() {
        // Two "tensors" [1, 5] and [5, 2]; k = 2 of 4 → both 5s. k = 3 → 5, 5 and 2.
        let a: [Float] = [1, 5], b: [Float] = [5, 2]
        a.withUnsafeBufferPointer { ap in b.withUnsafeBufferPointer { bp in
            var cut = MagnitudeCut.select(k: 3, total: 4, chunks: [(ap.baseAddress!, 2), (bp.baseAddress!, 2)])
            var x = a, y = b
            x.withUnsafeMutableBufferPointer { cut.apply($0.baseAddress!, 2) }
            y.withUnsafeMutableBufferPointer { cut.apply($0.baseAddress!, 2) }
            XCTAssertEqual(x, [0, 5]); XCTAssertEqual(y, [5, 2])
            // Ties across tensors: [2, 2] and [2]; k = 2 → the first two in order.
            var c: [Float] = [2, 2], d: [Float] = [2]
            var cut2 = c.withUnsafeBufferPointer { cp in d.withUnsafeBufferPointer { dp in
                MagnitudeCut.select(k: 2, total: 3, chunks: [(cp.baseAddress!, 2), (dp.baseAddress!, 1)]) } }
            c.withUnsafeMutableBufferPointer { cut2.apply($0.baseAddress!, 2) }
            d.withUnsafeMutableBufferPointer { cut2.apply($0.baseAddress!, 1) }
            XCTAssertEqual(c, [2, 2]); XCTAssertEqual(d, [0])
        } }
    }
}

final class SVDTests: XCTestCase {
    func testKnownSingularValues() {
        // [[3, 0], [4, 5]]: AᵀA = [[25, 20], [20, 25]], eigenvalues 45 and 5 → σ = 3√5, √5
        let r = SVD.decompose([3, 0, 4, 5], rows: 2, cols: 2)
        XCTAssertEqual(r.s[0], 3 * 5.0.squareRoot(), accuracy: 1e-12)
        XCTAssertEqual(r.s[1], 5.0.squareRoot(), accuracy: 1e-12)
        let f: [Float] = [3, 0, 4, 5]
        let s = f.withUnsafeBufferPointer { SVD.singularValues($0.baseAddress!, rows: 2, cols: 2) }
        XCTAssertEqual(s[0], 3 * 5.0.squareRoot(), accuracy: 1e-5)
        XCTAssertEqual(s[1], 5.0.squareRoot(), accuracy: 1e-5)
    }

    func testReconstructionAndWideMatrices() {
        var rng = SeededRNG(seed: 1)
        for (m, n) in [(7, 4), (4, 7), (5, 5)] {
            let a = (0..<(m * n)).map { _ in Double(rng.nextNormal()) }
            let r = SVD.decompose(a, rows: m, cols: n)
            for i in 0..<m { for j in 0..<n {
                var x = 0.0
                for k in 0..<r.k { x += r.u[i * r.k + k] * r.s[k] * r.v[j * r.k + k] }
                XCTAssertEqual(x, a[i * n + j], accuracy: 1e-10)
            } }
            let fs = a.map(Float.init).withUnsafeBufferPointer { SVD.singularValues($0.baseAddress!, rows: m, cols: n) }
            for (x, y) in zip(fs, r.s) { XCTAssertEqual(x, y, accuracy: 1e-5) }
        }
    }

    func testRankOfLowRankProductAndExactTruncation() {
        var rng = SeededRNG(seed: 2)
        let (m, r, n) = (20, 3, 15)
        let b = (0..<(m * r)).map { _ in Double(rng.nextNormal()) }
        let a = (0..<(r * n)).map { _ in Double(rng.nextNormal()) }
        var w = [Double](repeating: 0, count: m * n)
        for i in 0..<m { for j in 0..<n { for t in 0..<r { w[i * n + j] += b[i * r + t] * a[t * n + j] } } }
        let s = w.map(Float.init).withUnsafeBufferPointer { SVD.singularValues($0.baseAddress!, rows: m, cols: n) }
        XCTAssertEqual(SVD.rank(s, rows: m, cols: n), 3)
        // Rank-3 truncation of a rank-3 product is the product.
        let t = SVD.truncateProduct(b: b, a: a, rows: m, inner: r, cols: n, rank: 3)
        for i in 0..<m { for j in 0..<n {
            var x = 0.0
            for k in 0..<3 { x += t.b[i * 3 + k] * t.a[k * n + j] }
            XCTAssertEqual(x, w[i * n + j], accuracy: 1e-9)
        } }
        // Rank 2: the squared Frobenius error is σ₃².
        let exact = SVD.decompose(w, rows: m, cols: n)
        let t2 = SVD.truncateProduct(b: b, a: a, rows: m, inner: r, cols: n, rank: 2)
        var err = 0.0
        for i in 0..<m { for j in 0..<n {
            var x = 0.0
            for k in 0..<2 { x += t2.b[i * 2 + k] * t2.a[k * n + j] }
            err += (x - w[i * n + j]) * (x - w[i * n + j])
        } }
        XCTAssertEqual(err, exact.s[2] * exact.s[2], accuracy: 1e-8)
        // A zero factor (fresh LoRA B) has rank 0 and truncates to zeros.
        let z = SVD.truncateProduct(b: [Double](repeating: 0, count: m * r), a: a, rows: m, inner: r, cols: n, rank: 2)
        XCTAssert(z.b.allSatisfy { $0 == 0 } || z.a.allSatisfy { $0 == 0 })
    }
}
