import XCTest
import SculptCore
@testable import SculptNN

/// Worked examples whose expected numbers come from PyTorch's update formulas
/// (torch.optim.AdamW and torch.optim.SGD), computed by hand in double precision.
final class OptimizerTests: XCTestCase {
    func makeParameter() -> Variable { Variable(Tensor(shape: [2], data: [1, -2]), requiresGrad: true) }
    let gradient = Tensor(shape: [2], data: [0.5, 0.1])

    func testAdamWMatchesTorchFormula() {
        let p = makeParameter()
        let opt = AdamW(learningRate: 0.1, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01)
        let expected: [[Float]] = [[0.8990000, -2.0980000], [0.7981010, -2.1959020], [0.6973029, -2.2937061]]
        for e in expected {
            p.grad = gradient
            opt.step([("w", p)])
            XCTAssertEqual(p.value.scalars[0], e[0], accuracy: 2e-6)
            XCTAssertEqual(p.value.scalars[1], e[1], accuracy: 2e-6)
        }
        XCTAssertEqual(opt.states["w"]?.step, 3)
    }

    /// The update is split over the pool above 64Ki elements; it must equal the one-thread
    /// update bit for bit, with and without a mask, on a size that does not divide evenly.
    func testAdamWSplitAcrossThreadsEqualsSerial() {
        let n = 3 * 65_536 + 7
        var rng = SeededRNG(seed: 11)
        let w0 = Tensor.randomNormal([n], using: &rng), g = Tensor.randomNormal([n], using: &rng)
        let mask = Tensor(shape: [n], fill: { b in for i in 0..<n { b[i] = i % 3 == 0 ? 0 : 1 } })
        for useMask in [false, true] {
            var results: [[Float]] = []
            for threads in [1, 2] {
                let p = Variable(w0.copy(), requiresGrad: true)
                let opt = AdamW(learningRate: 0.01, weightDecay: 0.1)
                if useMask { opt.updateMasks["w"] = mask }
                withThreads(threads) {
                    for _ in 0..<2 { p.grad = g; opt.step([("w", p)]) }
                }
                results.append(p.value.scalars)
            }
            XCTAssertEqual(results[0], results[1], "mask \(useMask)")
            XCTAssertNotEqual(results[0], w0.scalars)
        }
    }

    func testAdamWMaskFreezesUnmaskedEntriesIncludingDecay() {
        let p = makeParameter()
        let opt = AdamW(learningRate: 0.1, weightDecay: 0.5)
        opt.updateMasks["w"] = Tensor(shape: [2], data: [1, 0])
        p.grad = gradient
        opt.step([("w", p)])
        XCTAssertNotEqual(p.value.scalars[0], 1)
        XCTAssertEqual(p.value.scalars[1], -2, "masked-out entry must not move, not even by weight decay")
    }

    func testSGDMomentumAndNesterovMatchTorchFormula() {
        for (nesterov, expected) in [(false, [Float(0.6662740), -1.9443790]), (true, [0.5253636, -1.9208939])] {
            let p = makeParameter()
            let opt = SGD(learningRate: 0.1, momentum: 0.9, weightDecay: 0.1, nesterov: nesterov)
            for _ in 0..<3 {
                p.grad = gradient
                opt.step([("w", p)])
            }
            XCTAssertEqual(p.value.scalars[0], expected[0], accuracy: 2e-6, "nesterov=\(nesterov)")
            XCTAssertEqual(p.value.scalars[1], expected[1], accuracy: 2e-6, "nesterov=\(nesterov)")
        }
    }

    func testParametersWithoutGradientsAreSkipped() {
        let p = makeParameter()
        let opt = AdamW(learningRate: 0.1)
        opt.step([("w", p)])
        XCTAssertEqual(p.value.scalars, [1, -2])
        XCTAssertNil(opt.states["w"])
    }

    func testSchedules() {
        let lin = LRSchedule.linear(warmupSteps: 10, totalSteps: 110)
        XCTAssertEqual(lin.factor(at: 0), 0)
        XCTAssertEqual(lin.factor(at: 5), 0.5)
        XCTAssertEqual(lin.factor(at: 10), 1)
        XCTAssertEqual(lin.factor(at: 60), 0.5)
        XCTAssertEqual(lin.factor(at: 110), 0)
        XCTAssertEqual(lin.factor(at: 200), 0)
        let cos = LRSchedule.cosine(warmupSteps: 0, totalSteps: 100)
        XCTAssertEqual(cos.factor(at: 0), 1)
        XCTAssertEqual(cos.factor(at: 50), 0.5, accuracy: 1e-6)
        XCTAssertEqual(cos.factor(at: 100), 0, accuracy: 1e-6)
        XCTAssertEqual(LRSchedule.constant.factor(at: 1234), 1)
    }

    func testGradientClippingMatchesTorch() {
        let a = Variable(Tensor(shape: [2], data: [0, 0]), requiresGrad: true)
        let b = Variable(Tensor(shape: [1], data: [0]), requiresGrad: true)
        a.grad = Tensor(shape: [2], data: [3, 0])
        b.grad = Tensor(shape: [1], data: [4])
        let norm = clipGradientNorm([("a", a), ("b", b)], maxNorm: 1)
        XCTAssertEqual(norm, 5, accuracy: 1e-6)
        XCTAssertEqual(a.grad!.scalars[0], 3 / (5 + 1e-6), accuracy: 1e-6)
        XCTAssertEqual(b.grad!.scalars[0], 4 / (5 + 1e-6), accuracy: 1e-6)
        // Below the limit nothing changes.
        let n2 = clipGradientNorm([("a", a), ("b", b)], maxNorm: 10)
        XCTAssertEqual(n2, 1, accuracy: 1e-5)
        XCTAssertEqual(a.grad!.scalars[0], 3 / (5 + 1e-6), accuracy: 1e-6)
    }
}
