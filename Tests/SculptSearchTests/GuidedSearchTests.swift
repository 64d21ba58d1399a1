import SculptCore
@testable import SculptSearch
import XCTest

final class GuidedSearchTests: XCTestCase {
    /// A candidate inherits the mean residual of the measured sub-networks one choice away,
    /// shrunk by one pseudo-neighbour; farther ones and itself do not count.
    func testNeighbourResidualCorrection() {
        let measured = [[0, 0, 0], [1, 0, 0], [0, 2, 0], [1, 1, 0], [0, 0, 1]]
        XCTAssertEqual(Searcher.neighbours(of: [0, 0, 0], in: measured), [1, 2, 4])
        XCTAssertEqual(Searcher.neighbours(of: [2, 2, 2], in: measured), [])
        let residuals = [5.0, 0.3, 0.6, -9.0, 0.3]
        XCTAssertEqual(Searcher.neighbourResidual([1, 2, 4], residuals), 1.2 / 4, accuracy: 1e-12)
        XCTAssertEqual(Searcher.neighbourResidual([], residuals), 0)
    }

    /// Predictor-guided search on the synthetic 20-dim × 4-choice problem must reach, within
    /// 150 real evaluations, the hypervolume plain NSGA-II reaches after 500.
    func testPredictorGuidedBeatsPlainNSGA2() throws {
        let p = SyntheticProblem()
        // One reference point for both: just worse than the extremes of the space.
        let ref = p.referencePoint
        var wins = 0
        let seeds: [UInt64] = [1, 2, 3]
        for seed in seeds {
            var plain = SearchConfig(objectives: SyntheticProblem.objectives, evaluations: 500, population: 50)
            plain.seed = seed
            plain.referencePoint = ref
            let a = try Searcher(space: p.space, evaluator: p.evaluator, config: plain).run()

            var guided = SearchConfig(objectives: SyntheticProblem.objectives, evaluations: 150, population: 25)
            guided.seed = seed
            guided.predictor = true
            guided.referencePoint = ref
            var log: [String] = []
            let b = try Searcher(space: p.space, evaluator: p.evaluator, config: guided, progress: { pr in
                log.append("round \(pr.round) evals \(pr.evaluations) hv \(String(format: "%.4f", pr.hypervolume)) "
                    + pr.predictors.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value.0.rawValue)(\(String(format: "%.3f", $0.value.1)))" }.joined(separator: " "))
            }).run()
            print(log.joined(separator: "\n"))
            print("seed \(seed): plain NSGA-II 500 evals HV \(a.hypervolume); predictor-guided \(b.evaluations) evals HV \(b.hypervolume)")
            if b.hypervolume >= a.hypervolume { wins += 1 }
        }
        XCTAssertEqual(wins, seeds.count)
    }
}
