import XCTest
@testable import SculptCore

/// Finite-difference checks of every differentiable op on odd shapes.
///
/// Each check builds loss = Σ f(inputs) ⊙ R for a fixed random R (so every output element
/// matters), then compares the autodiff gradient of each input with central differences.
final class GradientCheckTests: XCTestCase {
    var rng = SeededRNG(seed: 42)

    func randn(_ shape: [Int], scale: Float = 1) -> Tensor { Tensor.randomNormal(shape, std: scale, using: &rng) }

    func check(_ name: String, _ inputs: [Tensor], eps: Float = 1e-2, tolerance: Float = 2e-2,
               file: StaticString = #filePath, line: UInt = #line, _ f: ([Variable]) -> Variable) {
        let vars = inputs.map { Variable($0, requiresGrad: true) }
        let out = f(vars)
        let projection = randn(out.shape)
        let loss = (out * Variable(projection)).sum()
        loss.backward()
        func evaluate(_ values: [Tensor]) -> Double {
            withoutGradients {
                let y = f(values.map { Variable($0) }).value
                var s: Double = 0
                for i in 0..<y.count { s += Double(y[flat: i]) * Double(projection[flat: i]) }
                return s
            }
        }
        for (k, input) in inputs.enumerated() {
            guard let analytic = vars[k].grad else {
                XCTFail("\(name): no gradient for input \(k)", file: file, line: line)
                continue
            }
            XCTAssertEqual(analytic.shape, input.shape, "\(name): gradient shape", file: file, line: line)
            var worst: Float = 0
            for i in 0..<input.count {
                var plus = inputs, minus = inputs
                plus[k][flat: i] += eps
                minus[k][flat: i] -= eps
                let numeric = Float((evaluate(plus) - evaluate(minus)) / Double(2 * eps))
                let a = analytic[flat: i]
                let err = abs(numeric - a) / max(1, abs(numeric), abs(a))
                worst = max(worst, err)
            }
            XCTAssertLessThan(worst, tolerance, "\(name): input \(k) worst relative error \(worst)", file: file, line: line)
        }
    }

    func testBroadcastingArithmetic() {
        let shapes: [([Int], [Int])] = [([3, 5], [3, 5]), ([2, 3, 5], [5]), ([5], [2, 3, 5]), ([2, 3, 1], [2, 3, 5]), ([4, 1, 3], [1, 5, 1]), ([3, 5], [1]), ([7], [])]
        for (sa, sb) in shapes {
            check("add \(sa) \(sb)", [randn(sa), randn(sb)]) { $0[0] + $0[1] }
            check("sub \(sa) \(sb)", [randn(sa), randn(sb)]) { $0[0] - $0[1] }
            check("mul \(sa) \(sb)", [randn(sa), randn(sb)]) { $0[0] * $0[1] }
            let denom = randn(sb).applying(.abs) + 0.5
            check("div \(sa) \(sb)", [randn(sa), denom]) { $0[0] / $0[1] }
        }
        check("affine", [randn([3, 7])]) { $0[0] * 2.5 + 1 }
    }

    func testUnaryFunctions() {
        for f in UnaryFunction.allCases {
            var x = randn([3, 11])
            if f == .log || f == .sqrt || f == .reciprocal { x = x.applying(.abs) + 0.5 }
            if f == .relu || f == .abs { x = x + Tensor(shape: x.shape, data: x.scalars.map { $0 >= 0 ? 0.05 : -0.05 }) }
            check("unary \(f)", [x]) { $0[0].applying(f) }
        }
    }

    func testMatmulAllTransposes() {
        for ta in [false, true] {
            for tb in [false, true] {
                let a = ta ? randn([5, 3]) : randn([3, 5]), b = tb ? randn([7, 5]) : randn([5, 7])
                check("matmul ta=\(ta) tb=\(tb)", [a, b]) { matmul($0[0], $0[1], transposeA: ta, transposeB: tb) }
                let ba = ta ? randn([2, 5, 3]) : randn([2, 3, 5]), bb = tb ? randn([2, 7, 5]) : randn([2, 5, 7])
                check("batched matmul ta=\(ta) tb=\(tb)", [ba, bb]) { matmul($0[0], $0[1], transposeA: ta, transposeB: tb) }
                check("shared-B matmul ta=\(ta) tb=\(tb)", [ba, b]) { matmul($0[0], $0[1], transposeA: ta, transposeB: tb) }
            }
        }
    }

    func testReductions() {
        let x = randn([3, 4, 5])
        check("sum all", [x]) { $0[0].sum() }
        check("mean all", [x]) { $0[0].mean() }
        check("sum axis 1", [x]) { $0[0].sum(axes: [1]) }
        check("sum axes 0,2 keep", [x]) { $0[0].sum(axes: [0, 2], keepDims: true) }
        check("mean axis -1", [x]) { $0[0].mean(axes: [-1]) }
        // Distinct values 0.1 apart keep the max away from ties within eps.
        var order = Array(0..<60).map(Float.init)
        order.shuffle(using: &rng)
        let spaced = Tensor(shape: [3, 4, 5], data: order.map { $0 * 0.1 })
        check("max axis 1", [spaced]) { $0[0].max(axis: 1) }
        check("max axis -1 keep", [spaced]) { $0[0].max(axis: -1, keepDims: true) }
    }

    func testLayoutOps() {
        let x = randn([2, 3, 5])
        check("reshape", [x]) { $0[0].reshaped([6, 5]) }
        check("permute", [x]) { $0[0].permuted([2, 0, 1]) }
        check("transpose", [x]) { $0[0].transposed() }
        check("slice", [x]) { $0[0].slice(axis: 2, 1..<4) }
        check("concat", [x, randn([2, 1, 5])]) { concat([$0[0], $0[1]], axis: 1) }
        check("indexSelect repeated", [x]) { $0[0].indexSelect(axis: 1, [2, 0, 2, 1]) }
        check("embedding", [randn([7, 3])]) { embedding($0[0], ids: [1, 6, 1, 0, 3, 3], shape: [2, 3]) }
    }

    func testSoftmaxAndNorms() {
        check("softmax", [randn([3, 7])]) { $0[0].softmax() }
        check("logSoftmax", [randn([3, 33])]) { $0[0].logSoftmax() }
        let keyMask = Tensor(shape: [2, 5], data: [1, 1, 1, 0, 0, 1, 1, 1, 1, 1])
        let shape = AttentionShape(batch: 2, sequence: 5, heads: 3, headDim: 4)
        check("fusedSelfAttention", [randn([10, 36])]) { v in
            var r = SeededRNG(seed: 1)
            return fusedSelfAttention(v[0], shape: shape, keyMask: keyMask, rng: &r)
        }
        check("fusedSelfAttention dropout", [randn([10, 36])]) { v in
            var r = SeededRNG(seed: 2)
            return fusedSelfAttention(v[0], shape: shape, keyMask: nil, dropout: 0.3, rng: &r)
        }
        check("maskedSoftmax", [randn([2, 3, 4, 5])]) { maskedSoftmax($0[0], scale: 0.7, keyMask: keyMask) }
        check("layerNorm affine", [randn([4, 9]), randn([9]), randn([9])]) { layerNorm($0[0], weight: $0[1], bias: $0[2], eps: 1e-5) }
        check("layerNorm plain", [randn([4, 17])]) { layerNorm($0[0], weight: nil, bias: nil, eps: 1e-5) }
        for training in [true, false] {
            let rm = randn([3], scale: 0.1), rv = randn([3]).applying(.abs) + 0.5
            check("batchNorm training=\(training)", [randn([4, 3, 2, 3]), randn([3]), randn([3])]) { v in
                batchNorm(v[0], weight: v[1], bias: v[2], runningMean: rm, runningVar: rv, batchStatistics: training, eps: 1e-5).output
            }
        }
    }

    func testLosses() {
        check("crossEntropy", [randn([5, 4])], eps: 1e-2) { crossEntropy($0[0], labels: [0, 3, -100, 2, 1]) }
        // Chunks of 2 rows over 7 rows: a partial last chunk, and a chunk with every row ignored.
        let lmLabels: [Int32] = [3, -100, -100, -100, 0, 10, 5]
        check("lmCrossEntropy", [randn([7, 6]), randn([11, 6])], eps: 1e-2) { lmCrossEntropy(hidden: $0[0], weight: $0[1], labels: lmLabels, chunkRows: 2) }
        check("klDivergence", [randn([3, 5]), randn([3, 5])]) { klDivergence(student: $0[0], teacher: $0[1], temperature: 2) }
        let teacherHidden = randn([7, 4]), teacherWeight = randn([11, 4])
        let flags = lmLabels.map { $0 != -100 }
        check("lmDistillation", [randn([7, 6]), randn([11, 6])], eps: 1e-2) {
            lmDistillation(hidden: $0[0], weight: $0[1], teacherHidden: teacherHidden, teacherWeight: teacherWeight, counted: flags, temperature: 1.5, chunkRows: 2)
        }
    }

    func testMaskingAndDropout() {
        let mask = Tensor(shape: [3, 5], data: (0..<15).map { Float($0 % 3 == 0 ? 1 : 0) })
        check("where", [randn([3, 5]), randn([5])]) { select(mask, $0[0], $0[1]) }
        check("maskedFill", [randn([3, 5])]) { $0[0].maskedFill(mask, -3) }
        var r = SeededRNG(seed: 7)
        let x = Variable(randn([4, 6]), requiresGrad: true)
        let y = dropout(x, p: 0.5, using: &r)
        y.sum().backward()
        // The gradient of a dropout is its mask: zero or 1/(1−p).
        XCTAssertTrue(x.grad!.scalars.allSatisfy { $0 == 0 || $0 == 2 })
        XCTAssertEqual(y.value.scalars.filter { $0 == 0 }.count, x.grad!.scalars.filter { $0 == 0 }.count)
        var r1 = SeededRNG(seed: 7), r2 = SeededRNG(seed: 7)
        XCTAssertEqual(dropout(x, p: 0.3, using: &r1).value, dropout(x, p: 0.3, using: &r2).value, "dropout is reproducible from its seed")
    }

    func testConvolutionAndPooling() {
        check("conv2d s1 p1", [randn([2, 3, 5, 6]), randn([4, 3, 3, 3]), randn([4])]) { conv2d($0[0], weight: $0[1], bias: $0[2], stride: (1, 1), padding: (1, 1)) }
        check("conv2d s2 p0 no bias", [randn([1, 2, 7, 5]), randn([3, 2, 3, 2])]) { conv2d($0[0], weight: $0[1], bias: nil, stride: (2, 2), padding: (0, 0)) }
        check("maxPool2d", [randn([2, 3, 6, 5])]) { maxPool2d($0[0], kernel: (2, 2)) }
        check("avgPool2d pad", [randn([2, 2, 5, 5])]) { avgPool2d($0[0], kernel: (3, 3), stride: (2, 2), padding: (1, 1)) }
    }

    func testGradientAccumulatesAcrossBackwardCalls() {
        let w = Variable(randn([3]), requiresGrad: true)
        (w * w).sum().backward()
        let first = w.grad!
        (w * w).sum().backward()
        XCTAssertEqual(w.grad!.maxAbsDifference(first * 2), 0, accuracy: 1e-6)
    }

    func testNoGradRecordsNothing() {
        let w = Variable(randn([3]), requiresGrad: true)
        let y = withoutGradients { (w * w).sum() }
        XCTAssertFalse(y.requiresGrad)
        XCTAssertTrue(y.isLeaf)
    }

    func testLinearWithFusedBias() {
        // x·Wᵀ + b in one op: gradients for x (rank 2 and 3), W and b, and the same value as
        // the matmul plus a broadcast add.
        for xShape in [[3, 5], [2, 3, 5]] {
            check("linear \(xShape)", [randn(xShape), randn([7, 5]), randn([7])]) { linear($0[0], weight: $0[1], bias: $0[2]) }
            let x = Variable(randn(xShape)), w = Variable(randn([7, 5])), b = Variable(randn([7]))
            XCTAssertLessThan(linear(x, weight: w, bias: b).value.maxAbsDifference((matmul(x, w, transposeB: true) + b).value), 1e-5)
        }
        let w = randn([7, 5])
        check("row blocks with bias", [randn([3, 5]), randn([2, 5]), randn([7])]) {
            matmulTransposedWithTrainableBlocks($0[0], weight: w, blocks: [($0[1], WeightBlock(.rows, offset: 1))], bias: $0[2])
        }
    }

    func testLinearWithColumnUpdates() {
        // x·Wᵀ + b plus low-rank terms in columns 0..<3 and 5..<7 (x of rank 2 and 3), with and
        // without a bias; the value equals the separate products added into those columns.
        for xShape in [[3, 5], [2, 3, 5]] {
            let rows = xShape.dropLast().reduce(1, *)
            check("linear with column updates \(xShape)", [randn(xShape), randn([7, 5]), randn([7]), randn([rows, 2]), randn([3, 2]), randn([rows, 2]), randn([2, 2])]) { v in
                linear(v[0], weight: v[1], bias: v[2], columnUpdates: [ColumnUpdate(hidden: v[3], up: v[4], offset: 0), ColumnUpdate(hidden: v[5], up: v[6], offset: 5)])
            }
            check("linear with a column update, no bias \(xShape)", [randn(xShape), randn([7, 5]), randn([rows, 3]), randn([4, 3])]) { v in
                linear(v[0], weight: v[1], bias: nil, columnUpdates: [ColumnUpdate(hidden: v[2], up: v[3], offset: 2)])
            }
        }
        let x = Variable(randn([4, 5])), w = Variable(randn([7, 5])), b = Variable(randn([7])), h = Variable(randn([4, 2])), up = Variable(randn([3, 2]))
        let fused = linear(x, weight: w, bias: b, columnUpdates: [ColumnUpdate(hidden: h, up: up, offset: 4)]).value
        let base = (matmul(x, w, transposeB: true) + b).value, term = matmul(h, up, transposeB: true).value
        for r in 0..<4 { for c in 0..<7 {
            let expected = base[flat: r * 7 + c] + (c >= 4 ? term[flat: r * 3 + c - 4] : 0)
            XCTAssertEqual(fused[flat: r * 7 + c], expected, accuracy: 1e-5, "(\(r), \(c))")
        } }
    }

    func testTrainableBlocksMatmul() {
        // W [7, 5] constant except row blocks (2 rows at 1, 3 rows at 4) or column blocks
        // (2 columns at 0, 1 column at 3); x of rank 2 and 3, odd sizes.
        let w = randn([7, 5])
        for xShape in [[3, 5], [2, 3, 5]] {
            check("row blocks \(xShape)", [randn(xShape), randn([2, 5]), randn([3, 5])]) {
                matmulTransposedWithTrainableBlocks($0[0], weight: w, blocks: [($0[1], WeightBlock(.rows, offset: 1)), ($0[2], WeightBlock(.rows, offset: 4))])
            }
            check("column blocks \(xShape)", [randn(xShape), randn([7, 2]), randn([7, 1])]) {
                matmulTransposedWithTrainableBlocks($0[0], weight: w, blocks: [($0[1], WeightBlock(.columns, offset: 0)), ($0[2], WeightBlock(.columns, offset: 3))])
            }
        }
    }

    func testTrainableBlocksMatmulEqualsAPlainLinearAndGradientsAreTheBlocksOfDW() {
        // The same product and gradients as x·Wᵀ with W assembled from the blocks, whose dW
        // restricted to each block must equal that block's gradient.
        let x = randn([4, 3, 9]), w = randn([11, 9]), rowBlock = randn([4, 9]), colBlock = randn([11, 2]), g = randn([4, 3, 11])
        for (block, place) in [(rowBlock, WeightBlock(.rows, offset: 6)), (colBlock, WeightBlock(.columns, offset: 5))] {
            var assembled = w
            for i in 0..<block.shape[0] { for j in 0..<block.shape[1] {
                let (r, c) = place.axis == .rows ? (place.offset + i, j) : (i, place.offset + j)
                assembled[flat: r * 9 + c] = block[flat: i * block.shape[1] + j]
            } }
            let xv = Variable(x, requiresGrad: true), bv = Variable(block, requiresGrad: true)
            let y = matmulTransposedWithTrainableBlocks(xv, weight: w, blocks: [(bv, place)])
            y.backward(seed: g)
            let xr = Variable(x, requiresGrad: true), wr = Variable(assembled, requiresGrad: true)
            let yr = matmul(xr, wr, transposeB: true)
            yr.backward(seed: g)
            XCTAssertLessThan(y.value.maxAbsDifference(yr.value), 1e-5)
            XCTAssertLessThan(xv.grad!.maxAbsDifference(xr.grad!), 1e-5)
            let dwBlock = place.axis == .rows ? wr.grad!.slice(axis: 0, place.offset..<(place.offset + block.shape[0]))
                                              : wr.grad!.slice(axis: 1, place.offset..<(place.offset + block.shape[1]))
            XCTAssertLessThan(bv.grad!.maxAbsDifference(dwBlock), 1e-4)
        }
    }

    func testReusedVariableGetsSummedGradient() {
        check("x*x + x", [randn([4])]) { $0[0] * $0[0] + $0[0] }
    }
}

final class StraightThroughTests: XCTestCase {
    func testBinarizeForwardAndStraightThroughGradient() {
        let x = Variable(Tensor(shape: [5], data: [-0.2, 0.3, 0.5, 0.51, 1.4]), requiresGrad: true)
        let y = x.binarizedStraightThrough()
        XCTAssertEqual((0..<5).map { y.value[flat: $0] }, [0, 0, 0, 1, 1])
        // loss = Σ y ⊙ w: the gradient reaching x is w itself, even where y is 0.
        let w = Tensor(shape: [5], data: [1, -2, 3, 0.5, -1])
        (y * Variable(w)).sum().backward()
        XCTAssertEqual((0..<5).map { x.grad![flat: $0] }, [1, -2, 3, 0.5, -1])
    }
}
