import XCTest
import SculptCore
import SculptNN
import SculptIO
import SculptModels
import SculptSearch
import SculptTune
import SculptTestSupport
@testable import SculptSubnet

final class SubnetSearchTests: XCTestCase {
    let config = BertConfig(hiddenSize: 16, numHiddenLayers: 3, numAttentionHeads: 4, intermediateSize: 24, vocabSize: 40, maxPositionEmbeddings: 32)

    func testAdapterRoundTripsEncodingsBothWays() throws {
        let bert = BertSearchSpace.standard(for: config)
        let generic = bert.searchSpace()
        XCTAssertEqual(generic.dimensions.map(\.name), ["layers", "heads.0", "heads.1", "heads.2", "ffn.0", "ffn.1", "ffn.2"])
        XCTAssertEqual(BertSearchSpace(searchSpace: generic), bert)
        XCTAssertNil(BertSearchSpace(searchSpace: .uniform(count: 3, choices: [1, 2])))
        XCTAssertEqual(try bert.subnet(fromSearchEncoding: generic.minEncoding), bert.smallest)
        XCTAssertEqual(try bert.subnet(fromSearchEncoding: generic.maxEncoding), bert.largest)
        var rng = SeededRNG(seed: 5)
        for _ in 0..<50 {
            let s = bert.sample(using: &rng)
            let e = bert.encode(s)
            XCTAssertNoThrow(try generic.check(e), "\(e)")
            XCTAssertEqual(try bert.subnet(fromSearchEncoding: e), s)
            let g = generic.random(using: &rng)
            XCTAssertEqual(bert.encode(try bert.subnet(fromSearchEncoding: g)), g)
            // What the store keeps beside each evaluation names the same sub-network.
            let v = generic.values(g)
            let d = try bert.decode(g)
            XCTAssertEqual(v["layers"], d.layers)
            XCTAssertEqual((0..<d.layers).map { v["heads.\($0)"]! }, d.heads)
        }
        XCTAssertThrowsError(try bert.subnet(fromSearchEncoding: [0, 0, 0, 0, 0, 0, 0]))   // layer 2 of 1 not blank
        // The context changes the hash (the store's key), nothing else.
        XCTAssertNotEqual(bert.searchSpace(context: "a").hash, bert.searchSpace(context: "b").hash)
        XCTAssertEqual(bert.searchSpace(context: "a").dimensions, generic.dimensions)
    }

    func tinyClassifier(seed: UInt64 = 1) throws -> BertClassifier {
        var spec = ClassifierSpec(kind: .bert, classes: 3)
        spec.maxLength = 16
        return BertClassifier(bert: try BertModel(config: config, withPooler: true, seed: seed), spec: spec, seed: seed)
    }

    func testParamsAndMacsMatchTheExtractedModel() throws {
        let net = BertSuperNetwork(classifier: try tinyClassifier(), padId: 0, reorder: nil)
        var rng = SeededRNG(seed: 2)
        for _ in 0..<10 {
            let e = net.searchSpace.random(using: &rng)
            let s = try net.subnet(e)
            let small = try net.classifier.bert.extract(s)
            XCTAssertEqual(try net.params(e), Double(small.parameterCount + net.classifier.classifier.parameterCount))
            let setting = LatencySetting(sequence: 16)
            let info = ModelInfo(model: small, fileBytes: 0, sequenceLength: 16)
            XCTAssertEqual(try net.macs(e, setting: setting), Double(16 * info.macsPerToken + 16 * 3))
            XCTAssertEqual(try net.latencyParts(e).count, 2 + 2 * s.layers)
        }
    }

    func testLatencyTablePredictsTheSumOfItsPartsAndRoughlyTheMeasurement() throws {
        let net = BertSuperNetwork(classifier: try tinyClassifier(), padId: 0, reorder: nil)
        let setting = LatencySetting(batch: 2, sequence: 16, threads: 1, warmup: 1, runs: 5)
        let t = try buildLatencyTable(net, setting: setting, checkSubnets: 6)
        XCTAssertEqual(Set(t.partsMs.keys), Set(net.allLatencyParts))
        XCTAssertEqual(t.check.count, 6)
        let k = try XCTUnwrap(t.calibration)
        XCTAssertEqual(k.samples.count, 12)
        XCTAssertEqual(k.samples[0].encoding, net.searchSpace.minEncoding)
        XCTAssertEqual(k.samples[1].encoding, net.searchSpace.maxEncoding)
        XCTAssertTrue(Set(k.samples.map(\.encoding)).isDisjoint(with: Set(t.check.map(\.encoding))), "calibration and check sub-networks differ")
        for c in t.check + k.samples {
            let sum = try net.latencyParts(c.encoding).reduce(0.0) { $0 + t.partsMs[$1]! }
            let predicted = k.samples.contains { $0.encoding == c.encoding } ? sum : k.apply(partsSum: sum, params: try net.params(c.encoding))
            XCTAssertEqual(c.predictedMs, predicted, accuracy: 1e-9)
            // Timing is never asserted tightly here (shared CPU); the benchmark measures the error.
            XCTAssertGreaterThan(c.measuredMs, 0)
            XCTAssertLessThan(c.predictedMs / c.measuredMs, 20)
            XCTAssertGreaterThan(c.predictedMs / c.measuredMs, 0.05)
        }
        let dir = temporaryDirectory()
        try t.write(to: LatencyTable.url(in: dir))
        let back = try LatencyTable.load(runDirectory: dir, network: net, setting: setting)
        XCTAssertEqual(back.partsMs, t.partsMs)
        XCTAssertEqual(back.medianAbsolutePercentageError, t.medianAbsolutePercentageError)
        var other = setting
        other.sequence = 8
        XCTAssertThrowsError(try LatencyTable.load(runDirectory: dir, network: net, setting: other)) {
            XCTAssertTrue("\($0)".contains("sequence 16"), "\($0)")
        }
    }

    func testCalibrationRecoversAKnownLinearLawAndStaysNonNegative() {
        let sums = [1.0, 2, 3, 4, 5, 6, 2.5, 3.5], params = [1e6, 3e6, 2e6, 5e6, 4e6, 7e6, 6e6, 1.5e6]
        let measured = zip(sums, params).map { 1.5 * $0 + 2e-7 * $1 + 0.3 }
        let k = LatencyCalibration.fit(sums: sums, params: params, measured: measured, samples: [])
        XCTAssertEqual(k.sumCoefficient, 1.5, accuracy: 1e-6)
        XCTAssertEqual(k.paramsCoefficient, 2e-7, accuracy: 1e-12)
        XCTAssertEqual(k.interceptMs, 0.3, accuracy: 1e-6)
        XCTAssertEqual(k.apply(partsSum: 10, params: 1e6), 15.5, accuracy: 1e-6)
        // Latency falling with parameters is not physical: that term is dropped, not negated.
        let odd = zip(sums, params).map { 2 * $0 - 1e-7 * $1 + 1 }
        let k2 = LatencyCalibration.fit(sums: sums, params: params, measured: odd, samples: [])
        XCTAssertGreaterThanOrEqual(k2.paramsCoefficient, 0)
        XCTAssertGreaterThanOrEqual(k2.interceptMs, 0)
        XCTAssertGreaterThan(k2.sumCoefficient, 0)
    }

    // MARK: on a real (tiny) run

    /// A tiny random BERT with MiniLM's tokenizer, fine-tuned for a few steps: a run directory
    /// with final/, run.json and a validation split.
    func tinyRun(in dir: URL) throws -> URL {
        let modelDir = try TinyBert.write(in: dir, layers: 3)
        let train = try TinyBert.catsAndMoney(in: dir, count: 40)
        var c = TrainConfig()
        c.model = modelDir.path; c.data = train.path; c.out = dir.appendingPathComponent("run").path
        c.epochs = 2; c.batchSize = 8; c.lr = 5e-3; c.maxLength = 16; c.threads = 1; c.valFraction = 0.25
        return try Trainer.run(c).runDirectory
    }

    func testSearchOnATinyRunAndPickFromTheFront() throws {
        let dir = temporaryDirectory()
        let run = try tinyRun(in: dir)
        var o = SubnetSearchOptions(run: run, db: dir.appendingPathComponent("s.sqlite").path)
        o.objectives = "accuracy:max,params:min"
        o.evaluations = 10; o.population = 4; o.seed = 3
        var rounds: [SearchProgress] = []
        let out = try searchSuperNetwork(o, progress: { rounds.append($0) })
        XCTAssertEqual(out.result.evaluations, 10)
        XCTAssertEqual(out.result.evaluatorCalls, 10)
        XCTAssertEqual(out.validationExamples, 10)
        XCTAssertFalse(rounds.isEmpty)
        XCTAssertFalse(out.front.isEmpty)
        // The same command again answers everything from the store.
        let again = try searchSuperNetwork(o)
        XCTAssertEqual(again.result.evaluatorCalls, 0)
        XCTAssertEqual(again.front.map(\.encoding), out.front.map(\.encoding))

        let picked = try subnetFromFront(db: o.db, rank: 1)
        XCTAssertEqual(picked.encoding, out.front[0].encoding)
        XCTAssertEqual(picked.run, run.standardizedFileURL.path)
        let (model, _, _, _) = try ClassifierStore.load(run)
        let space = BertSearchSpace.standard(for: (model as! BertClassifier).bert.config)
        XCTAssertNoThrow(try space.parse(picked.subnet))
        XCTAssertThrowsError(try subnetFromFront(db: o.db, rank: out.front.count + 1)) { XCTAssertTrue("\($0)".contains("outside the front"), "\($0)") }

        // Clear errors for an unknown objective, an impossible constraint and a foreign file.
        var bad = o
        bad.objectives = "accuracy:max,speed:min"
        XCTAssertThrowsError(try searchSuperNetwork(bad)) { XCTAssertTrue("\($0)".contains("unknown objective \"speed\""), "\($0)") }
        bad = o
        bad.maxMacs = 1; bad.db = dir.appendingPathComponent("c.sqlite").path
        XCTAssertThrowsError(try searchSuperNetwork(bad)) { XCTAssertTrue("\($0)".contains("impossible constraint macs<=1"), "\($0)") }
        bad = o
        bad.db = dir.appendingPathComponent("foreign.sqlite").path
        try Data("not a database at all, just text".utf8).write(to: URL(fileURLWithPath: bad.db))
        XCTAssertThrowsError(try searchSuperNetwork(bad)) { XCTAssertTrue("\($0)".contains("not an SQLite file"), "\($0)") }
    }

    /// An evaluator that dies after `limit` calls, like a process killed mid-search.
    final class Dying: SubnetEvaluator {
        let inner: SubnetEvaluator
        let limit: Int
        var calls: [[Int]] = []
        init(_ inner: SubnetEvaluator, limit: Int) { self.inner = inner; self.limit = limit }
        struct Killed: Error {}
        func evaluate(_ encoding: [Int], objectives: [ObjectiveSpec]) throws -> [String: Double] {
            guard calls.count < limit else { throw Killed() }
            calls.append(encoding)
            return try inner.evaluate(encoding, objectives: objectives)
        }
    }

    func testResumeAfterADroppedSearchRepeatsNothingAndEndsOnTheSameFront() throws {
        let dir = temporaryDirectory()
        let run = try tinyRun(in: dir)
        let loaded = try loadSuperNetwork(run: run)
        var space = loaded.network.searchSpace
        space.context = "resume-test"
        let real = try SuperNetworkEvaluator(network: loaded.network, validation: loaded.validation, setting: LatencySetting(sequence: 16),
                                             table: nil, needed: ["accuracy", "params"], evalThreads: 1)
        var config = SearchConfig(objectives: try ObjectiveSpec.parseList("accuracy:max,params:min"), evaluations: 14, population: 4)
        config.seed = 9
        let reference = try runSearch(space: space, evaluator: real, config: config, dbPath: dir.appendingPathComponent("ref.sqlite").path)

        let db = dir.appendingPathComponent("resume.sqlite").path
        let first = Dying(real, limit: 6)
        XCTAssertThrowsError(try runSearch(space: space, evaluator: first, config: config, dbPath: db))
        XCTAssertEqual(try EvaluationStore(path: db).evaluationCount(), 6)
        let second = Dying(real, limit: 1000)
        let resumed = try runSearch(space: space, evaluator: second, config: config, dbPath: db)
        XCTAssertEqual(first.calls.count + second.calls.count, 14)
        XCTAssertTrue(Set(first.calls).isDisjoint(with: Set(second.calls)))
        XCTAssertEqual(resumed.front.map(\.encoding), reference.front.map(\.encoding))
        XCTAssertEqual(resumed.hypervolume, reference.hypervolume, accuracy: 1e-12)
    }
}
