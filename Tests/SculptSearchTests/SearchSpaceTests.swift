import SculptCore
import SculptSearch
import XCTest

final class SearchSpaceTests: XCTestCase {
    /// A BERT-like space: depth 2/4/6 and per-layer heads, layers beyond the depth inactive.
    static func bertLike() throws -> SearchSpace {
        var dims = [Dimension(name: "layers", choices: [2, 4, 6])]
        for l in 0..<6 {
            dims.append(Dimension(name: "heads.\(l)", choices: [4, 8, 12], activeWhen: l < 2 ? nil : .init(dimension: "layers", atLeast: l + 1)))
        }
        return try SearchSpace(dimensions: dims)
    }

    func testInactiveSlotsAreBlanked() throws {
        let s = try Self.bertLike()
        XCTAssertEqual(s.minEncoding, [0, 0, 0, -1, -1, -1, -1])
        XCTAssertEqual(s.maxEncoding, [2, 2, 2, 2, 2, 2, 2])
        var rng = SeededRNG(seed: 1)
        // Depth 4: heads.4 and heads.5 blanked, heads.2 filled.
        let e = s.repair([1, 0, 1, -1, 2, 2, 2], using: &rng)
        XCTAssertEqual(Array(e[5...]), [-1, -1])
        XCTAssertNotEqual(e[3], -1)
        XCTAssertNoThrow(try s.check(e))
        XCTAssertThrowsError(try s.check([0, 0, 0, 1, -1, -1, -1])) { XCTAssertEqual("\($0)", "dimension \"heads.2\" is inactive but its slot is not blank (-1)") }
        XCTAssertEqual(s.values(s.minEncoding), ["layers": 2, "heads.0": 4, "heads.1": 4])
        for _ in 0..<200 { XCTAssertNoThrow(try s.check(s.random(using: &rng))) }
    }

    func testMutationAndCrossoverKeepEncodingsValid() throws {
        let s = try Self.bertLike()
        var rng = SeededRNG(seed: 2)
        for kind in [EncodingVariation.Crossover.uniform, .onePoint] {
            let v = EncodingVariation(space: s, crossover: kind, mutationProbability: 0.5)
            for _ in 0..<300 {
                let (a, b) = v.crossover(s.random(using: &rng), s.random(using: &rng), using: &rng)
                XCTAssertNoThrow(try s.check(v.mutate(a, using: &rng)))
                XCTAssertNoThrow(try s.check(b))
            }
        }
        // Mutation always moves to a different choice.
        let v = EncodingVariation(space: .uniform(count: 1, choices: [1, 2, 3]), mutationProbability: 1)
        for _ in 0..<50 { XCTAssertNotEqual(v.mutate([1], using: &rng), [1]) }
    }

    func testSpaceErrorsNameTheField() {
        XCTAssertThrowsError(try SearchSpace(dimensions: [Dimension(name: "a", choices: [1], activeWhen: .init(dimension: "b", atLeast: 1))])) {
            XCTAssertEqual("\($0)", "dimension \"a\" depends on unknown dimension \"b\"")
        }
        XCTAssertThrowsError(try SearchSpace(dimensions: [Dimension(name: "a", choices: [])])) { XCTAssertEqual("\($0)", "dimension \"a\" has no choices") }
    }

    func testObjectiveParsing() throws {
        XCTAssertEqual(try ObjectiveSpec.parseList("accuracy:max,latency:min"), [.init("accuracy", .max), .init("latency", .min)])
        XCTAssertEqual(try ObjectiveSpec.parseList("macs"), [.init("macs", .min)])
        XCTAssertEqual(try ObjectiveSpec.parseList("f1:max", extraNames: ["f1"]), [.init("f1", .max)])
        XCTAssertThrowsError(try ObjectiveSpec.parseList("acuracy:max")) {
            XCTAssertEqual("\($0)", "unknown objective \"acuracy\" (known: accuracy, latency, loss, macs, params)")
        }
        XCTAssertThrowsError(try ObjectiveSpec.parseList("accuracy:up")) { XCTAssertEqual("\($0)", "unknown direction in \"accuracy:up\" (use min or max)") }
        XCTAssertThrowsError(try ObjectiveSpec.parseList("latency,latency")) { XCTAssertEqual("\($0)", "objective \"latency\" is given twice") }
        XCTAssertThrowsError(try ObjectiveSpec.parseList("accuracy:max,")) { XCTAssertTrue("\($0)".hasPrefix("empty objective")) }
    }

    func testConstraintParsing() throws {
        XCTAssertEqual(try Constraint.parse("latency<=12.5"), Constraint("latency", .atMost, 12.5))
        XCTAssertEqual(try Constraint.parse("accuracy >= 0.8"), Constraint("accuracy", .atLeast, 0.8))
        XCTAssertThrowsError(try Constraint.parse("latency<12")) { XCTAssertEqual("\($0)", "malformed constraint \"latency<12\" (expected NAME<=VALUE or NAME>=VALUE)") }
        let cs = try Constraint.fromOptions(maxLatencyMs: 5, maxMacs: 1e6, generic: ["params<=100"])
        XCTAssertEqual(cs.map(\.description), ["latency<=5.0", "macs<=1000000.0", "params<=100.0"])
    }

    func testImpossibleConstraintIsReported() throws {
        let p = SyntheticProblem()
        var config = SearchConfig(objectives: SyntheticProblem.objectives, evaluations: 40, population: 10)
        // The smallest sub-network's latency is Σ cost_i ≥ 10: a bound of 1 cannot be met.
        config.constraints = [Constraint("latency", .atMost, 1)]
        let s = try Searcher(space: p.space, evaluator: p.evaluator, config: config)
        XCTAssertThrowsError(try s.run()) { e in
            XCTAssertTrue("\(e)".hasPrefix("impossible constraint latency<=1.0: the best sub-network in the space for it measures latency="), "\(e)")
        }
        XCTAssertEqual(s.evaluatorCalls, 2, "found out from the two extremes, before spending the population")
    }

    func testEvaluatorErrorsAreClear() throws {
        let space = SearchSpace.uniform(count: 2, choices: [1, 2])
        let config = SearchConfig(objectives: SyntheticProblem.objectives, evaluations: 4, population: 2)
        let missing = FunctionEvaluator { _ in ["accuracy": 0.5] }
        XCTAssertThrowsError(try Searcher(space: space, evaluator: missing, config: config).run()) {
            XCTAssertEqual("\($0)", "the evaluator returned no value for \"latency\"")
        }
        let nan = FunctionEvaluator { _ in ["accuracy": .nan, "latency": 1] }
        XCTAssertThrowsError(try Searcher(space: space, evaluator: nan, config: config).run()) {
            XCTAssertEqual("\($0)", "the evaluator returned a non-finite \"accuracy\" for sub-network [0,0]")
        }
    }

    func testConstrainedSearchKeepsFrontFeasible() throws {
        let p = SyntheticProblem()
        var config = SearchConfig(objectives: SyntheticProblem.objectives, evaluations: 200, population: 20)
        config.constraints = [Constraint("latency", .atMost, 30)]
        let r = try Searcher(space: p.space, evaluator: p.evaluator, config: config).run()
        XCTAssertFalse(r.front.isEmpty)
        for f in r.front { XCTAssertLessThanOrEqual(f.values["latency"]!, 30) }
    }
}
