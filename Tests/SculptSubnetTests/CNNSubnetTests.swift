import XCTest
import SculptModels
import SculptCore
import SculptNN
import SculptTune
import SculptTestSupport
@testable import SculptSubnet

final class CNNSubnetTests: XCTestCase {
    func makeCNN(width: Int = 8, depth: Int = 2, seed: UInt64 = 3) -> ImageCNN {
        var spec = ClassifierSpec(kind: .cnn, classes: 5)
        spec.width = width; spec.depth = depth; spec.imageHeight = 12; spec.imageWidth = 12
        return ImageCNN(spec: spec, seed: seed)
    }

    func images(_ n: Int, seed: UInt64) -> BatchInput {
        var rng = SeededRNG(seed: seed)
        return .images(Tensor.randomNormal([n, 1, 12, 12], using: &rng))
    }

    func testSpaceAndCost() {
        let cnn = makeCNN()
        let space = CNNSearchSpace.standard(for: cnn)
        XCTAssertEqual(space.blockChoices, [[1, 2], [1, 2]])
        XCTAssertEqual(space.channelChoices, [[2, 4, 6, 8], [4, 8, 12, 16]])
        XCTAssertEqual(space.largest, CNNSubnet(blocks: [2, 2], channels: [8, 16]))
        XCTAssertEqual(cnn.cost(space.largest).params, cnn.parameterCount)
        var rng = SeededRNG(seed: 1)
        for _ in 0..<5 {
            let s = space.sample(using: &rng)
            XCTAssertEqual(try space.decode(space.encode(s)), s)
        }
    }

    func testExtractedCNNEqualsActiveSuperNetworkAfterRecalibration() throws {
        let cnn = makeCNN()
        // Give BatchNorm non-trivial affine weights and statistics, as after training.
        cnn.train()
        withoutGradients { _ = cnn.logits(images(16, seed: 5)) }
        var r = SeededRNG(seed: 8)
        for bn in batchNorms(cnn) { bn.weight.value = Tensor.randomUniform(bn.weight.value.shape, low: 0.5, high: 1.5, using: &r) }
        let space = CNNSearchSpace.standard(for: cnn)
        var rng = SeededRNG(seed: 2)
        let calibration = [images(16, seed: 11), images(16, seed: 12)]
        for subnet in [space.largest, space.smallest, CNNSubnet(blocks: [1, 2], channels: [6, 8])] + (0..<4).map({ _ in space.sample(using: &rng) }) {
            cnn.activate(subnet)
            recalibrateBatchNorm(cnn, batches: calibration)
            cnn.activate(nil)
            let small = try cnn.extract(subnet)
            XCTAssertEqual(small.parameterCount, cnn.cost(subnet).params, subnet.json)
            XCTAssertEqual(small.stageChannels, subnet.channels)
            XCTAssertEqual(small.stageBlocks, subnet.blocks)
            let check = checkExtraction(superNetwork: cnn, subnet: subnet, extracted: small, input: images(6, seed: 21))
            XCTAssertLessThanOrEqual(check.maxAbsDifference, 1e-4, subnet.json)
            // Saved and reloaded through the classifier store, the small model is the same.
            let dir = temporaryDirectory()
            try ClassifierStore.saveFinal(small, labels: LabelVocabulary(names: ["a", "b", "c", "d", "e"]), tokenizerSource: nil, to: dir)
            let loaded = try ClassifierStore.load(dir).model
            small.eval()
            XCTAssertEqual(withoutGradients { loaded.logits(images(3, seed: 4)) }.value, withoutGradients { small.logits(images(3, seed: 4)) }.value)
        }
    }

    /// A CNN with some stage channels gated off computes what the dense sub-network without
    /// them computes, once the kept channels are permuted to the front.
    func testClosedChannelGatesEqualTheExtractedSubnetwork() throws {
        let cnn = makeCNN()
        cnn.train()
        withoutGradients { _ = cnn.logits(images(16, seed: 5)) }
        var r = SeededRNG(seed: 8)
        for bn in batchNorms(cnn) {
            bn.weight.value = Tensor.randomUniform(bn.weight.value.shape, low: 0.5, high: 1.5, using: &r)
            bn.bias.value = Tensor.randomUniform(bn.bias.value.shape, low: -0.5, high: 0.5, using: &r)
        }
        cnn.eval()
        let input = images(6, seed: 21)
        let ungated = withoutGradients { cnn.logits(input) }.value
        let kept: [[Int]] = [[1, 4, 6], [0, 3, 5, 9, 10, 15]]
        let gates = cnn.stageChannels.enumerated().map { s, n in
            UnitGate(units: n, unitSize: 1, initial: 0.2)
        }
        for (s, k) in kept.enumerated() { for j in k { gates[s].scores.value[flat: j] = 0.9 } }
        cnn.setChannelGates(gates)
        XCTAssertTrue(cnn.namedParameters().contains { $0.name == "stages.0.bn1.output_gate" })
        let gated = withoutGradients { cnn.logits(input) }.value
        var effect: Float = 0
        for i in 0..<gated.count { effect = max(effect, abs(gated[flat: i] - ungated[flat: i])) }
        XCTAssertGreaterThan(effect, 1e-2, "closing gates must change the output")
        cnn.permuteStageChannels(kept.enumerated().map { s, k in k + (0..<cnn.stageChannels[s]).filter { !k.contains($0) } })
        // Gates follow their channels: still the same function with the gates permuted too.
        cnn.setChannelGates(nil)
        let subnet = CNNSubnet(blocks: cnn.stageBlocks, channels: kept.map(\.count))
        let small = try cnn.extract(subnet)
        small.eval()
        let out = withoutGradients { small.logits(input) }.value
        for i in 0..<gated.count { XCTAssertEqual(out[flat: i], gated[flat: i], accuracy: 1e-4) }
    }

    func testRecalibrationAveragesBatchStatistics() {
        let bn = BatchNorm2d(4)
        bn.activeChannels = 2
        bn.cumulativeBatches = 0
        var rng = SeededRNG(seed: 1)
        let a = Tensor.randomNormal([3, 2, 2, 2], using: &rng), b = Tensor.randomNormal([3, 2, 2, 2], using: &rng).affine(2, 1)
        _ = bn(Variable(a)); _ = bn(Variable(b))
        // Mean of the two batch means on the active channels; the others untouched.
        let ma = a.mean(axes: [0, 2, 3]), mb = b.mean(axes: [0, 2, 3])
        for ch in 0..<2 { XCTAssertEqual(bn.runningMean.value[flat: ch], (ma[flat: ch] + mb[flat: ch]) / 2, accuracy: 1e-5) }
        XCTAssertEqual(bn.runningMean.value[flat: 3], 0)
        XCTAssertEqual(bn.runningVar.value[flat: 3], 1)
    }

    func testElasticConvGradientsOnlyReachTheSlice() {
        var rng = SeededRNG(seed: 3)
        let conv = Conv2d(4, 6, kernel: 3, padding: 1, using: &rng)
        conv.activeInChannels = 2; conv.activeOutChannels = 3
        var r2 = SeededRNG(seed: 4)
        conv(Variable(Tensor.randomNormal([2, 2, 5, 5], using: &r2))).sum().backward()
        let g = conv.weight.grad!
        XCTAssertEqual(g.slice(axis: 0, 3..<6).squaredSum, 0)
        XCTAssertEqual(g.slice(axis: 1, 2..<4).squaredSum, 0)
        XCTAssertGreaterThan(g.slice(axis: 0, 0..<3).slice(axis: 1, 0..<2).squaredSum, 0)
    }

    func testBadSubnetJSONIsRefusedNamingTheField() {
        let space = CNNSearchSpace.standard(for: makeCNN())
        func field(_ json: String) -> String? {
            do { _ = try space.parse(json); return nil } catch let e as SubnetError { return e.field } catch { return "?" }
        }
        XCTAssertEqual(field(#"{"blocks": [1, 2], "channels": [8, 16], "kernel": 3}"#), "kernel")
        XCTAssertEqual(field(#"{"blocks": [1, 3], "channels": [8, 16]}"#), "blocks[1]")
        XCTAssertEqual(field(#"{"blocks": [1, 2], "channels": [5, 16]}"#), "channels[0]")
        XCTAssertEqual(field(#"{"blocks": [1, 2, 1], "channels": [8, 16]}"#), "blocks")
        XCTAssertEqual(field(#"{"blocks": 1}"#), "channels")
        XCTAssertNil(field(#"{"blocks": 1, "channels": [2, 4]}"#))
    }
}

extension Tensor {
    var squaredSum: Float { (self * self).sum().scalar }
}

final class CNNReorderingTests: XCTestCase {
    func testChannelReorderingKeepsTheFunction() {
        var spec = ClassifierSpec(kind: .cnn, classes: 3)
        spec.width = 4; spec.depth = 2; spec.imageHeight = 10; spec.imageWidth = 10
        let cnn = ImageCNN(spec: spec, seed: 5)
        var rng = SeededRNG(seed: 6)
        // Distinct BatchNorm scales and statistics so the orders are not the identity.
        cnn.train()
        withoutGradients { _ = cnn.logits(.images(Tensor.randomNormal([8, 1, 10, 10], using: &rng))) }
        for bn in batchNorms(cnn) { bn.weight.value = Tensor.randomUniform(bn.weight.value.shape, low: 0.1, high: 2, using: &rng) }
        cnn.eval()
        let x = BatchInput.images(Tensor.randomNormal([3, 1, 10, 10], using: &rng))
        let before = withoutGradients { cnn.logits(x) }.value
        let orders = cnn.reorderChannelsByImportance()
        XCTAssertTrue(orders.contains { $0 != Array(0..<$0.count) })
        let after = withoutGradients { cnn.logits(x) }.value
        for i in 0..<before.count { XCTAssertEqual(before[flat: i], after[flat: i], accuracy: 1e-4) }
        // The stem's γ are now in decreasing order of magnitude.
        let g = (0..<4).map { abs(cnn.stemNorm.weight.value[flat: $0]) }
        XCTAssertEqual(g, g.sorted(by: >))
    }
}

final class RecalibrationModeTests: XCTestCase {
    /// Regression: recalibrating before a mid-run validation left the model in evaluation
    /// mode, so the rest of elastic training ran BatchNorm on stale running statistics.
    func testRecalibrationRestoresTheTrainingMode() {
        var spec = ClassifierSpec(kind: .cnn, classes: 3)
        spec.width = 4; spec.depth = 1; spec.imageHeight = 8; spec.imageWidth = 8
        let cnn = ImageCNN(spec: spec, seed: 1)
        var rng = SeededRNG(seed: 2)
        let batches = [BatchInput.images(Tensor.randomNormal([4, 1, 8, 8], using: &rng))]
        cnn.train()
        recalibrateBatchNorm(cnn, batches: batches)
        XCTAssertTrue(cnn.training && cnn.stemNorm.training)
        cnn.eval()
        recalibrateBatchNorm(cnn, batches: batches)
        XCTAssertFalse(cnn.training || cnn.stemNorm.training)
    }
}
