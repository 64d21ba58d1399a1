import SculptCore
@testable import SculptSearch
import XCTest

final class ParetoTests: XCTestCase {
    /// Front rows print sub-networks as `sculpt extract --subnet` reads them: per-index dimensions as lists.
    func testFrontRowSubnetGathersIndexedDimensions() {
        XCTAssertEqual(ParetoReport.compactJSON(["layers": 2, "heads.1": 6, "heads.0": 12, "ffn.10": 3, "ffn.2": 7]),
                       #"{"ffn":[7,3],"heads":[12,6],"layers":2}"#)
        XCTAssertEqual(ParetoReport.compactJSON(["x": 1]), #"{"x":1}"#)
    }

    func testNonDominatedSortOnHandMadePoints() {
        // Minimisation. Front 0: a(1,5) b(2,3) c(4,1); front 1: d(3,4) e(5,2); front 2: f(6,6).
        let pts: [[Double]] = [[3, 4], [1, 5], [6, 6], [2, 3], [5, 2], [4, 1]]
        XCTAssertEqual(Pareto.nonDominatedSort(pts), [[1, 3, 5], [0, 4], [2]])
    }

    func testDuplicatesShareAFront() {
        XCTAssertEqual(Pareto.nonDominatedSort([[1, 1], [1, 1], [2, 2]]), [[0, 1], [2]])
    }

    func testConstraintDomination() {
        // Point 0 dominates in objectives but is infeasible; the feasible one ranks first,
        // and of two infeasible ones the smaller violation wins.
        let fronts = Pareto.nonDominatedSort([[0, 0], [5, 5], [1, 1]], violations: [0.5, 0, 0.2])
        XCTAssertEqual(fronts, [[1], [2], [0]])
    }

    func testCrowdingDistanceByHand() {
        // Front sorted by f1: (0,4) (1,2) (3,1) (4,0). Ranges: 4 and 4.
        // Interior (1,2): (3-0)/4 + (4-1)/4 = 1.5; (3,1): (4-1)/4 + (2-0)/4 = 1.25.
        let d = Pareto.crowdingDistance([[1, 2], [0, 4], [4, 0], [3, 1]])
        XCTAssertEqual(d[0], 1.5, accuracy: 1e-12)
        XCTAssertEqual(d[3], 1.25, accuracy: 1e-12)
        XCTAssertEqual(d[1], .infinity)
        XCTAssertEqual(d[2], .infinity)
    }

    func testHypervolume2DByHand() throws {
        // Ref (4,4); points (1,3), (2,2), (3,1): staircase area 3·1 + 2·1 + 1·1 = 6.
        XCTAssertEqual(try Hypervolume.compute([[1, 3], [2, 2], [3, 1]], reference: [4, 4]), 6, accuracy: 1e-12)
        // A dominated point and one outside the reference add nothing.
        XCTAssertEqual(try Hypervolume.compute([[1, 3], [2, 2], [3, 1], [3, 3], [5, 0]], reference: [4, 4]), 6, accuracy: 1e-12)
        XCTAssertEqual(try Hypervolume.compute([], reference: [1, 1]), 0)
    }

    func testHypervolume3DByHand() throws {
        // One point: a box. (1,1,1) to ref (2,3,4): 1·2·3 = 6.
        XCTAssertEqual(try Hypervolume.compute([[1, 1, 1]], reference: [2, 3, 4]), 6, accuracy: 1e-12)
        // Two boxes from (0,0,1) and (1,1,0) to (2,2,2): 2·2·1 + 1·1·2 − overlap 1·1·1 = 5.
        XCTAssertEqual(try Hypervolume.compute([[0, 0, 1], [1, 1, 0]], reference: [2, 2, 2]), 5, accuracy: 1e-12)
        // Three points (1,0,0),(0,1,0),(0,0,1), ref (2,2,2): inclusion–exclusion
        // 3·4 − 3·2 + 1 = 7.
        XCTAssertEqual(try Hypervolume.compute([[1, 0, 0], [0, 1, 0], [0, 0, 1]], reference: [2, 2, 2]), 7, accuracy: 1e-12)
    }

    func testHypervolume3DAgainstMonteCarlo() throws {
        var rng = SeededRNG(seed: 3)
        let pts = (0..<15).map { _ in (0..<3).map { _ in rng.nextDouble() } }
        let exact = try Hypervolume.compute(pts, reference: [1, 1, 1])
        var hit = 0
        let n = 200_000
        for _ in 0..<n {
            let s = (0..<3).map { _ in rng.nextDouble() }
            if pts.contains(where: { p in zip(p, s).allSatisfy { $0 <= $1 } }) { hit += 1 }
        }
        XCTAssertEqual(exact, Double(hit) / Double(n), accuracy: 0.005)
    }

    func testHypervolumeDimensionMismatch() {
        XCTAssertThrowsError(try Hypervolume.compute([[1, 2]], reference: [3, 3, 3])) { e in
            XCTAssertTrue("\(e)".contains("2 objectives"))
        }
    }

    func testZDTTrueFrontHypervolume() {
        // Dense sampling of the true front agrees with the closed form.
        for p in ZDT.allCases {
            let pts = (0...20000).map { i -> [Double] in
                var x = [Double](repeating: 0, count: ZDT.variables)
                x[0] = Double(i) / 20000
                return p.evaluate(x)
            }
            XCTAssertEqual(try Hypervolume.compute(pts, reference: [1.1, 1.1]), p.trueFrontHypervolume(reference: [1.1, 1.1]), accuracy: 1e-4)
        }
    }

    func testNSGA2OnZDTFullSetting() {
        // The issue's setting (population 100, 250 generations) runs in well under a second.
        // The archive (every point evaluated, as `sculpt pareto` sees a search) must reach
        // 99 % of the true front's hypervolume. The final population alone is capped by its
        // 100 points: evenly spaced ones reach only 99.4 % (ZDT1) and 99.07 % (ZDT2).
        for p in ZDT.allCases {
            let r = runZDTBenchmark(p, population: 100, generations: 250, seed: 1)
            print("\(p.rawValue) 100x250: HV \(r.hypervolume) / \(r.trueHypervolume) = \(r.ratio), archive \(r.archiveRatio), \(r.seconds) s")
            XCTAssertGreaterThanOrEqual(r.archiveRatio, 0.99, "\(p)")
            XCTAssertGreaterThanOrEqual(r.ratio, 0.98, "\(p)")
        }
    }

    func testNSGA2IsReproducible() {
        let a = runZDTBenchmark(.zdt1, population: 20, generations: 10, seed: 7)
        let b = runZDTBenchmark(.zdt1, population: 20, generations: 10, seed: 7)
        XCTAssertEqual(a.hypervolume, b.hypervolume)
    }
}
