import Foundation
import SculptCore
import SculptSearch
import SculptTestSupport
import XCTest

/// Counts evaluator calls and can fail after a number of them, to stand in for a kill.
final class CountingEvaluator: SubnetEvaluator {
    let problem = SyntheticProblem()
    var calls = 0
    var failAfter: Int?
    struct Killed: Error {}
    func evaluate(_ encoding: [Int], objectives: [ObjectiveSpec]) throws -> [String: Double] {
        if let f = failAfter, calls >= f { throw Killed() }
        calls += 1
        return problem.evaluate(encoding)
    }
}

final class StoreTests: XCTestCase {
    var dir: URL!
    override func setUp() { dir = SharedData.temporaryDirectory("sculpt-store") }
    override func tearDown() { try? FileManager.default.removeItem(at: dir) }

    func config(_ predictor: Bool = false) -> SearchConfig {
        var c = SearchConfig(objectives: SyntheticProblem.objectives, evaluations: 120, population: 20)
        c.seed = 11
        c.predictor = predictor
        c.predictorGenerations = 10
        c.predictorPopulation = 60
        return c
    }

    func testDedupAndSharedStore() throws {
        let path = dir.appendingPathComponent("e.sqlite").path
        let store = try EvaluationStore(path: path)
        let space = SearchSpace.uniform(count: 3, choices: [1, 2])
        try store.registerSearch(id: "a", space: space, configJSON: "{}")
        try store.registerSearch(id: "b", space: space, configJSON: "{}")
        let first = try store.record([0, 1, 0], space: space, values: ["latency": 2], seconds: 0.1, searchId: "a")
        let again = try store.record([0, 1, 0], space: space, values: ["latency": 3], seconds: 0.1, searchId: "b")
        XCTAssertEqual(first.id, again.id)
        XCTAssertEqual(again.values, ["latency": 2], "the first measurement is kept")
        XCTAssertEqual(again.searchId, "a")
        XCTAssertEqual(try store.evaluationCount(), 1)
        XCTAssertEqual(try store.members(searchId: "b").map(\.encoding), [[0, 1, 0]])
        // Another space never answers.
        XCTAssertNil(try store.lookup([0, 1, 0], spaceHash: SearchSpace.uniform(count: 3, choices: [1, 3]).hash))
        // Changed settings under the same id are refused.
        XCTAssertThrowsError(try store.registerSearch(id: "a", space: space, configJSON: "{\"x\":1}")) {
            XCTAssertTrue("\($0)".hasPrefix("search \"a\" already exists in the store with other settings"))
        }
        // Reopening sees everything (committed as it went).
        XCTAssertEqual(try EvaluationStore(path: path).evaluationCount(), 1)
    }

    func testCorruptAndForeignFilesAreRefused() throws {
        let junk = dir.appendingPathComponent("junk.sqlite")
        try Data("this is not a database, just some bytes".utf8).write(to: junk)
        XCTAssertThrowsError(try EvaluationStore(path: junk.path)) {
            XCTAssertEqual("\($0)", "\(junk.path) is not an SQLite file (corrupt or another kind of file)")
        }
        // A real SQLite database of another program.
        let foreign = dir.appendingPathComponent("other.sqlite")
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", "-c", "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute('create table notes(x)'); c.commit()", foreign.path]
        try p.run(); p.waitUntilExit()
        try XCTSkipUnless(p.terminationStatus == 0, "python3 with sqlite3 is needed to make a foreign database")
        XCTAssertThrowsError(try EvaluationStore(path: foreign.path)) {
            XCTAssertEqual("\($0)", "\(foreign.path) is an SQLite file but not a Sculpt evaluation store (no sculpt_meta table; tables: notes)")
        }
        let nowhere = dir.appendingPathComponent("missing/dir/e.sqlite").path
        XCTAssertThrowsError(try EvaluationStore(path: nowhere)) { XCTAssertTrue("\($0)".hasPrefix("cannot open the evaluation store \(nowhere): "), "\($0)") }
        // A Sculpt store whose pages were damaged after the header.
        let good = dir.appendingPathComponent("good.sqlite")
        _ = try EvaluationStore(path: good.path)
        var bytes = try Data(contentsOf: good)
        for i in 100..<min(bytes.count, 4096) { bytes[i] = 0xA5 }
        try bytes.write(to: good)
        try? FileManager.default.removeItem(atPath: good.path + "-wal")
        try? FileManager.default.removeItem(atPath: good.path + "-shm")
        XCTAssertThrowsError(try EvaluationStore(path: good.path)) { e in
            print("damaged store: \(e)")
            XCTAssertTrue("\(e)".hasPrefix("\(good.path) is a damaged SQLite file: "), "\(e)")
        }
    }

    func testResumeAfterKillReplaysWithoutReevaluating() throws {
        for predictor in [false, true] {
            // Uninterrupted reference run.
            let full = CountingEvaluator()
            let ref = try Searcher(space: full.problem.space, evaluator: full, config: config(predictor),
                                   store: try EvaluationStore(path: dir.appendingPathComponent("ref\(predictor).sqlite").path)).run()
            XCTAssertEqual(full.calls, 120)

            // Killed after 57 evaluations (mid-round), then started again with the same settings.
            let path = dir.appendingPathComponent("killed\(predictor).sqlite").path
            let first = CountingEvaluator()
            first.failAfter = 57
            XCTAssertThrowsError(try Searcher(space: first.problem.space, evaluator: first, config: config(predictor),
                                              store: try EvaluationStore(path: path)).run())
            let second = CountingEvaluator()
            let resumed = try Searcher(space: second.problem.space, evaluator: second, config: config(predictor),
                                       store: try EvaluationStore(path: path)).run()
            XCTAssertEqual(first.calls, 57)
            XCTAssertEqual(second.calls, 120 - 57, "nothing evaluated twice")
            XCTAssertEqual(resumed.evaluations, 120)
            XCTAssertEqual(resumed.front.map(\.encoding), ref.front.map(\.encoding))
            XCTAssertEqual(resumed.hypervolume, ref.hypervolume)
            XCTAssertEqual(try EvaluationStore(path: path).evaluationCount(), 120)

            // A finished search run again costs nothing.
            let third = CountingEvaluator()
            _ = try Searcher(space: third.problem.space, evaluator: third, config: config(predictor), store: try EvaluationStore(path: path)).run()
            XCTAssertEqual(third.calls, 0)
        }
    }

    func testPredictedValuesAreStoredBesideMeasurements() throws {
        let path = dir.appendingPathComponent("p.sqlite").path
        let ev = CountingEvaluator()
        let s = try Searcher(space: ev.problem.space, evaluator: ev, config: config(true), store: try EvaluationStore(path: path), searchId: "guided")
        _ = try s.run()
        let members = try EvaluationStore(path: path).members(searchId: "guided")
        XCTAssertEqual(members.count, 120)
        XCTAssertTrue(members.contains { $0.predicted["latency"] != nil })
        // Latency is linear in the chosen values: ridge on normalized values predicts it
        // closely even in round 1 (20 samples for 21 unknowns), exactly later.
        for m in members where m.predicted["latency"] != nil {
            XCTAssertEqual(m.predicted["latency"]!, m.values["latency"]!, accuracy: 0.03 * m.values["latency"]!)
        }
    }
}
