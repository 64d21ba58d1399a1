import XCTest
import SculptCore
import SculptNN
import SculptSearch
import SculptTune
import SculptTestSupport
@testable import SculptSubnet

/// The elastic CNN as a super-network for `sculpt search`: encoding, costs, BatchNorm-
/// recalibrated accuracy, latency parts, resume, and extraction of a front row.
final class CNNSearchTests: XCTestCase {
    func testAdapterRoundTripsEncodingsAndIsNotMistakenForBert() throws {
        let cnn = ImageCNN(spec: { var s = ClassifierSpec(kind: .cnn, classes: 3); s.width = 4; s.depth = 2
            s.stageChannels = [4, 8, 16]; s.stageBlocks = [2, 2, 2]; s.imageHeight = 8; s.imageWidth = 8; return s }(), seed: 1)
        let space = CNNSearchSpace.standard(for: cnn)
        let generic = space.searchSpace()
        XCTAssertEqual(generic.dimensions.map(\.name), ["blocks.0", "blocks.1", "blocks.2", "channels.0", "channels.1", "channels.2"])
        XCTAssertEqual(CNNSearchSpace(searchSpace: generic), space)
        XCTAssertNil(BertSearchSpace(searchSpace: generic))
        XCTAssertNil(CNNSearchSpace(searchSpace: BertSearchSpace(maxLayers: 2, layerChoices: [1, 2], headChoices: [1, 2], ffnChoices: [4, 8]).searchSpace()))
        XCTAssertEqual(try space.subnet(fromSearchEncoding: generic.minEncoding), space.smallest)
        XCTAssertEqual(try space.subnet(fromSearchEncoding: generic.maxEncoding), space.largest)
        var rng = SeededRNG(seed: 4)
        for _ in 0..<30 {
            let s = space.sample(using: &rng)
            XCTAssertEqual(try space.subnet(fromSearchEncoding: space.encode(s)), s)
            let g = generic.random(using: &rng)
            XCTAssertEqual(space.encode(try space.subnet(fromSearchEncoding: g)), g)
        }
        XCTAssertThrowsError(try space.subnet(fromSearchEncoding: [0, 0, 0, 0, 0, 9])) { XCTAssertTrue("\($0)".contains("channels.2"), "\($0)") }
    }

    /// A three-stage elastic CNN trained briefly on 8×8 images, as `sculpt train` writes it.
    func elasticRun(in dir: URL) throws -> URL {
        let data = try ElasticTrainingTests.idx(in: dir)
        var c = ElasticTrainingTests.cnnConfig(data: data, out: dir.appendingPathComponent("run"), schedule: "sandwich")
        c.stages = 3
        return try SubnetTraining.run(c).runDirectory
    }

    func testSearchOverAnElasticCNNRunMeasuresWhatExtractionDelivers() throws {
        let dir = temporaryDirectory()
        let run = try elasticRun(in: dir)
        let loaded = try loadSuperNetwork(run: run)
        let net = try XCTUnwrap(loaded.network as? CNNSuperNetwork)
        XCTAssertEqual(net.kind, "cnn")
        XCTAssertEqual(net.cnn.stageChannels, [4, 8, 16])
        XCTAssertEqual(net.calibration?.count, 2)   // 120 training images in batches of 64
        let validation = try XCTUnwrap(loaded.validation)
        XCTAssertEqual(validation.count, 40)

        // Costs are those of the dense extraction; accuracy is history-independent (each
        // evaluation recalibrates from reset statistics) and equals `sculpt subnets --eval`'s.
        let setting = LatencySetting(batch: 4, sequence: 1, threads: 1, warmup: 1, runs: 3)
        var rng = SeededRNG(seed: 8)
        let encodings = (0..<4).map { _ in net.searchSpace.random(using: &rng) }
        let (model, file, _, final) = try RunSubnets.open(run)
        let (data, padId, config) = try RunSubnets.runData(run, model: model, final: final)
        var first: [Double] = []
        for e in encodings {
            let s = try net.subnet(e)
            let small = try net.cnn.extract(s)
            XCTAssertEqual(try net.params(e), Double(small.parameterCount))
            XCTAssertEqual(try net.macs(e, setting: setting), Double(net.cnn.cost(s).macs))
            let acc = try net.evaluate(e, on: validation, batchSize: 16).accuracy
            first.append(acc)
            let listed = try RunSubnets.evaluate(.cnn(s), model: model, space: file.space, data: data, padId: padId, seed: config.seed).result.accuracy
            XCTAssertEqual(acc, listed)
            XCTAssertTrue(Set(try net.latencyParts(e)).isSubset(of: Set(net.allLatencyParts)))
        }
        for (e, acc) in zip(encodings.reversed(), first.reversed()) {
            XCTAssertEqual(try net.evaluate(e, on: validation, batchSize: 16).accuracy, acc)
        }

        // The latency table: every part timed, predictions are sums of parts.
        let table = try buildLatencyTable(net, setting: setting, checkSubnets: 4)
        XCTAssertEqual(Set(table.partsMs.keys), Set(net.allLatencyParts))
        let k = try XCTUnwrap(table.calibration)
        for c in table.check {
            let sum = try net.latencyParts(c.encoding).reduce(0.0) { $0 + table.partsMs[$1]! }
            XCTAssertEqual(c.predictedMs, k.apply(partsSum: sum, params: try net.params(c.encoding)), accuracy: 1e-9)
            XCTAssertGreaterThan(c.measuredMs, 0)
        }

        // The search, then the same command again: nothing evaluated twice.
        var o = SubnetSearchOptions(run: run, db: dir.appendingPathComponent("s.sqlite").path)
        o.objectives = "accuracy:max,latency:min"
        o.evaluations = 10; o.population = 5; o.seed = 2; o.setting = setting
        let out = try searchSuperNetwork(o)
        XCTAssertEqual(out.result.evaluations, 10)
        XCTAssertEqual(out.result.evaluatorCalls, 10)
        XCTAssertEqual(out.validationExamples, 40)
        XCTAssertFalse(out.front.isEmpty)
        let again = try searchSuperNetwork(o)
        XCTAssertEqual(again.result.evaluatorCalls, 0)
        XCTAssertEqual(again.front.map(\.encoding), out.front.map(\.encoding))

        // A front row cut out of the run: the extracted model scores what the search measured.
        let row = out.front.last!
        let target = dir.appendingPathComponent("picked")
        let (picked, report) = try extractFromFront(run: run, db: o.db, rank: row.rank, out: target)
        XCTAssertEqual(picked.subnet, row.subnet)
        XCTAssertEqual(report.subnet, row.subnet)
        XCTAssertLessThanOrEqual(report.maxAbsDifference, 1e-4)
        let (extracted, _, _, _) = try ClassifierStore.load(target)
        XCTAssertEqual(Evaluator.evaluate(extracted, on: validation, batchSize: 16).accuracy, row.values["accuracy"]!, accuracy: 1e-12)
        XCTAssertThrowsError(try extractFromFront(run: dir.appendingPathComponent("elsewhere"), db: o.db, rank: 1, out: dir.appendingPathComponent("x"))) {
            XCTAssertTrue("\($0)".contains("ran over \(run.standardizedFileURL.path)"), "\($0)")
        }
        XCTAssertThrowsError(try extractFromFront(run: run, db: o.db, rank: 99, out: dir.appendingPathComponent("x"))) {
            XCTAssertTrue("\($0)".contains("outside the front"), "\($0)")
        }
    }
}
