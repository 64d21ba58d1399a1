import SculptCore
import SculptSearch
import XCTest

final class PredictorTests: XCTestCase {
    let space = SearchSpace.uniform(count: 8, choices: [1, 2, 3, 4])

    func samples(_ n: Int, seed: UInt64) -> [[Int]] {
        var rng = SeededRNG(seed: seed)
        return (0..<n).map { _ in space.random(using: &rng) }
    }

    func testRidgeRecoversLinearFunction() throws {
        // y = 3 + Σ w_i·value_i on normalized features (value scaled to [0,1] = (v-1)/3).
        let w: [Double] = [1, -2, 0.5, 3, 0, -1, 2, 0.25]
        let xs = samples(60, seed: 1)
        let enc = FeatureEncoder(space: space, kind: .normalized)
        let ys = xs.map { e in 3 + zip(w, enc.features(e)).map(*).reduce(0, +) }
        let r = try RidgeRegressor.fit(xs.map(enc.features), ys, lambda: 1e-8)
        for i in w.indices { XCTAssertEqual(r.weights[i], w[i], accuracy: 1e-5) }
        XCTAssertEqual(r.intercept, 3, accuracy: 1e-5)
    }

    func testCholeskyRefusesIndefiniteSystem() {
        // One-hot columns of a dimension sum to 1, so with λ = 0 the centred system is singular.
        let xs = samples(30, seed: 2)
        let enc = FeatureEncoder(space: space, kind: .oneHot)
        XCTAssertThrowsError(try RidgeRegressor.fit(xs.map(enc.features), xs.map { Double($0[0]) }, lambda: 0))
    }

    func testMLPFitsNonlinearFunction() {
        // An interaction no additive model can fit: y = 1 if the first two dims agree.
        let xs = samples(300, seed: 3)
        let f = { (e: [Int]) -> Double in e[0] == e[1] ? 1 : 0 }
        let enc = FeatureEncoder(space: space, kind: .oneHot)
        let m = MLPRegressor.fit(xs.map(enc.features), xs.map(f), seed: 4)
        let test = samples(200, seed: 5)
        let rmse = (test.map { e in pow(m.predict(enc.features(e)) - f(e), 2) }.reduce(0, +) / 200).squareRoot()
        print("MLP held-out RMSE on the agreement function: \(rmse)")
        XCTAssertLessThan(rmse, 0.2)
    }

    func testCrossValidationPicksRidgeForAdditiveData() throws {
        let xs = samples(120, seed: 6)
        let ys = xs.map { e in e.enumerated().map { Double(($0.offset % 3) + 1) * Double($0.element * $0.element) }.reduce(0, +) }
        let p = try fitPredictor(space: space, encodings: xs, targets: ys, seed: 7)
        print("additive: chosen \(p.kind), CV RMSE \(p.cvRMSE), relative \(p.relativeError)")
        XCTAssertEqual(p.kind, .ridge)
        XCTAssertLessThan(p.relativeError, 0.01)
    }

    func testQuadraticFeaturesFitProductsOfSizes() throws {
        // Like a stage's latency: blocks × width, plus one width × the next.
        let xs = samples(80, seed: 10)
        let v = { (e: [Int], i: Int) in Double(self.space.dimensions[i].choices[e[i]]) }
        let ys = xs.map { e in 2 * v(e, 0) * v(e, 1) + v(e, 2) * v(e, 3) + 0.5 * v(e, 4) }
        let enc = FeatureEncoder(space: space, kind: .quadratic)
        XCTAssertEqual(enc.width, 8 + 36)
        XCTAssertEqual(enc.features(xs[0]).count, enc.width)
        let p = try fitPredictor(space: space, encodings: xs, targets: ys, seed: 11)
        print("products: chosen \(p.kind) on \(p.encoder.kind), CV RMSE \(p.cvRMSE), relative \(p.relativeError)")
        XCTAssertEqual(p.kind, .ridge)
        XCTAssertEqual(p.encoder.kind, .quadratic)
        XCTAssertLessThan(p.relativeError, 0.01)
        XCTAssertEqual(p.rmse, p.cvRMSE["ridge/quadratic"]!)
    }

    func testCrossValidationPicksMLPForInteractionData() throws {
        let xs = samples(300, seed: 8)
        let ys = xs.map { e -> Double in (e[0] == e[1] ? 1 : 0) + (e[2] == e[3] ? 1 : 0) }
        let p = try fitPredictor(space: space, encodings: xs, targets: ys, seed: 9)
        print("interaction: chosen \(p.kind), CV RMSE \(p.cvRMSE), relative \(p.relativeError)")
        XCTAssertEqual(p.kind, .mlp)
    }

    func testTooFewSamples() {
        XCTAssertThrowsError(try fitPredictor(space: space, encodings: samples(3, seed: 1), targets: [1, 2, 3], seed: 1)) { e in
            XCTAssertEqual("\(e)", "predictor: 3 samples, at least 5 needed for cross-validation")
        }
    }
}
