import XCTest
import SculptModels
import SculptCore
import SculptNN
import SculptTune
import SculptTestSupport
@testable import SculptSubnet

final class MLPSubnetTests: XCTestCase {
    func makeMLP(width: Int = 8, depth: Int = 3, seed: UInt64 = 3) -> ImageMLP {
        var spec = ClassifierSpec(kind: .mlp, classes: 5)
        spec.width = width; spec.depth = depth; spec.imageHeight = 6; spec.imageWidth = 6
        return ImageMLP(spec: spec, seed: seed)
    }

    func images(_ n: Int, seed: UInt64) -> BatchInput {
        var rng = SeededRNG(seed: seed)
        return .images(Tensor.randomNormal([n, 1, 6, 6], using: &rng))
    }

    func testSpaceCostAndEncoding() throws {
        let mlp = makeMLP()
        guard case .mlp(let space) = try SubnetSpace.standard(for: mlp) else { return XCTFail("not an MLP space") }
        XCTAssertEqual(space.layerChoices, [1, 2, 3])
        XCTAssertEqual(space.widthChoices, Array(repeating: [2, 4, 6, 8], count: 3))
        XCTAssertEqual(space.largest, MLPSubnet(layers: 3, widths: [8, 8, 8]))
        XCTAssertEqual(space.smallest, MLPSubnet(layers: 1, widths: [2]))
        XCTAssertEqual(mlp.cost(space.largest).params, mlp.parameterCount)
        XCTAssertEqual(mlp.cost(space.largest).macs, 36 * 8 + 8 * 8 + 8 * 8 + 8 * 5)
        XCTAssertEqual(space.encode(MLPSubnet(layers: 2, widths: [4, 8])), [1, 1, 3, -1])
        var rng = SeededRNG(seed: 1)
        for _ in 0..<8 {
            let s = space.sample(using: &rng)
            XCTAssertEqual(try space.decode(space.encode(s)), s)
            XCTAssertNoThrow(try space.validate(s))
        }
        // Non-uniform hidden layers (an extracted MLP): depth is fixed.
        var spec = mlp.spec
        spec.hiddenWidths = [8, 4]
        XCTAssertEqual(MLPSearchSpace.standard(for: ImageMLP(spec: spec, seed: 0)).layerChoices, [2])
    }

    func testExtractedMLPEqualsActiveSuperNetwork() throws {
        let mlp = makeMLP()
        guard case .mlp(let space) = try SubnetSpace.standard(for: mlp) else { return XCTFail("not an MLP space") }
        let input = images(7, seed: 21)
        let full = withoutGradients { mlp.logits(input) }.value
        var rng = SeededRNG(seed: 2)
        var distinct = Set<[Float]>()
        for subnet in [space.largest, space.smallest, MLPSubnet(layers: 2, widths: [6, 2])] + (0..<5).map({ _ in space.sample(using: &rng) }) {
            let small = try mlp.extract(subnet)
            XCTAssertEqual(small.hiddenWidths, subnet.widths)
            XCTAssertEqual(small.parameterCount, mlp.cost(subnet).params, subnet.json)
            let check = checkExtraction(superNetwork: mlp, subnet: subnet, extracted: small, input: input)
            XCTAssertLessThanOrEqual(check.maxAbsDifference, 1e-5, subnet.json)
            distinct.insert(withoutGradients { small.logits(input) }.value.scalars)
            // Saved and reloaded, the small model is the same.
            let dir = temporaryDirectory()
            try ClassifierStore.saveFinal(small, labels: LabelVocabulary(names: ["a", "b", "c", "d", "e"]), tokenizerSource: nil, to: dir)
            let loaded = try ClassifierStore.load(dir).model
            XCTAssertEqual(withoutGradients { loaded.logits(input) }.value, withoutGradients { small.logits(input) }.value)
        }
        XCTAssertGreaterThan(distinct.count, 5, "sub-networks must compute different functions")
        // Deactivated, the super-network is whole again.
        XCTAssertEqual(withoutGradients { mlp.logits(input) }.value, full)
    }

    func testActiveSubnetTrainsOnlyItsSlices() throws {
        let mlp = makeMLP()
        mlp.activate(MLPSubnet(layers: 2, widths: [4, 2]))
        let batch = images(4, seed: 3)
        crossEntropy(mlp.logits(batch), labels: [0, 1, 2, 3]).backward()
        mlp.activate(nil)
        let h = mlp.hiddenLayers
        let g0 = try XCTUnwrap(h[0].weight.grad), g1 = try XCTUnwrap(h[1].weight.grad), gc = try XCTUnwrap(mlp.classifier.weight.grad)
        func nonzero(_ g: Tensor, _ rows: Int, _ cols: Int, where outside: (Int, Int) -> Bool) -> Int {
            var n = 0
            for r in 0..<rows { for c in 0..<cols where outside(r, c) && g[flat: r * cols + c] != 0 { n += 1 } }
            return n
        }
        XCTAssertEqual(nonzero(g0, 8, 36) { r, _ in r >= 4 }, 0)
        XCTAssertEqual(nonzero(g1, 8, 8) { r, c in r >= 2 || c >= 4 }, 0)
        XCTAssertEqual(nonzero(gc, 5, 8) { _, c in c >= 2 }, 0)
        XCTAssertGreaterThan(nonzero(g1, 8, 8) { r, c in r < 2 && c < 4 }, 0)
        XCTAssertEqual(h[2].weight.grad.map { nonzero($0, 8, 8) { _, _ in true } } ?? 0, 0, "the third layer is skipped")
    }

    func testUnitReorderingKeepsTheFunctionAndSortsUnits() {
        let mlp = makeMLP()
        let input = images(5, seed: 9)
        let before = withoutGradients { mlp.logits(input) }.value
        let orders = mlp.reorderUnitsByImportance()
        XCTAssertEqual(orders.count, 3)
        XCTAssertTrue(orders.contains { $0 != Array(0..<8) }, "a random MLP is not already sorted")
        let after = withoutGradients { mlp.logits(input) }.value
        for i in 0..<before.count { XCTAssertEqual(after[flat: i], before[flat: i], accuracy: 1e-5) }
        // Leading units now carry the most outgoing weight.
        let w = mlp.classifier.weight.value
        let mass = (0..<8).map { c in (0..<5).reduce(Float(0)) { $0 + abs(w[flat: $1 * 8 + c]) } }
        XCTAssertEqual(mass, mass.sorted(by: >))
    }

    func testBadSubnetJSONIsRefusedNamingTheField() throws {
        guard case .mlp(let space) = try SubnetSpace.standard(for: makeMLP()) else { return XCTFail("not an MLP space") }
        for (json, field) in [(#"{"layers": 2, "widths": [4, 4], "heads": 2}"#, "heads"), (#"{"layers": 2, "widths": [4, 5]}"#, "widths[1]"),
                              (#"{"layers": 2, "widths": [4, 4, 4]}"#, "widths"), (#"{"layers": 4, "widths": 4}"#, "layers"),
                              (#"{"layers": 2}"#, "widths"), ("[1]", "(json)")] {
            XCTAssertThrowsError(try space.parse(json)) { XCTAssertEqual(($0 as? SubnetError)?.field, field, json) }
        }
        XCTAssertEqual(try space.parse(#"{"widths": 6}"#), MLPSubnet(layers: 3, widths: [6, 6, 6]))
    }

    func testElasticMLPRunListsAndExtracts() throws {
        let dir = temporaryDirectory()
        let data = try ElasticTrainingTests.idx(in: dir)
        var c = ElasticTrainingTests.cnnConfig(data: data, out: dir.appendingPathComponent("run"), schedule: "sandwich")
        c.model = "mlp"; c.width = 16; c.depth = 2; c.epochs = 4
        let r = try SubnetTraining.run(c)
        XCTAssertEqual(r.outcome, .completed)
        let listing = try RunSubnets.list(r.runDirectory, nested: 3, evaluate: true)
        XCTAssertEqual(listing.kind, "mlp")
        XCTAssertEqual(listing.dimensions["layers"], "[1, 2]")
        XCTAssertTrue(listing.subnets.allSatisfy { $0.accuracy != nil })
        for spec in ["min", "max", #"{"layers": 1, "widths": [8]}"#] {
            let target = dir.appendingPathComponent("x-\(spec.count)")
            let e = try RunSubnets.extract(run: r.runDirectory, subnet: spec, out: target)
            XCTAssertLessThanOrEqual(e.maxAbsDifference, 1e-4)
            XCTAssertGreaterThanOrEqual(try Evaluation.evaluate(modelOrRun: target, data: data).accuracy, 0)
        }
        XCTAssertGreaterThan(try Evaluation.evaluate(modelOrRun: r.runDirectory, data: data).accuracy, 0.6)
        XCTAssertThrowsError(try RunSubnets.extract(run: r.runDirectory, subnet: #"{"layers": 3, "widths": 8}"#, out: dir.appendingPathComponent("bad"))) {
            XCTAssertTrue("\($0)".contains("layers"), "\($0)")
        }
    }
}
