import XCTest
import SculptCore
@testable import SculptNN

final class Block: Module {
    var training = true
    let query: Linear
    let norm = LayerNorm(4)
    init(rng: inout SeededRNG) { query = Linear(4, 4, using: &rng) }
    var children: [(String, any Module)] { [("self.query", query), ("LayerNorm", norm)] }
}

final class ModuleTests: XCTestCase {
    func testDottedNamesAndUpdate() throws {
        var rng = SeededRNG(seed: 0)
        let seq = Sequential([Linear(3, 4, using: &rng), Activation(.relu), BatchNorm2d(4), Linear(4, 2, bias: false, using: &rng)])
        XCTAssertEqual(seq.namedParameters().map(\.name), ["0.weight", "0.bias", "2.weight", "2.bias", "3.weight"])
        XCTAssertEqual(seq.namedBuffers().map(\.name), ["2.running_mean", "2.running_var"])
        XCTAssertEqual(seq.parameterCount, 12 + 4 + 4 + 4 + 8)

        var values = seq.stateDict()
        values["3.weight"] = Tensor.ones([2, 4])
        values["extra.weight"] = Tensor.ones([1])
        values.removeValue(forKey: "0.bias")
        let report = try seq.update(from: values)
        XCTAssertEqual(report.missing, ["0.bias"])
        XCTAssertEqual(report.unexpected, ["extra.weight"])
        XCTAssertEqual(seq.stateDict()["3.weight"], Tensor.ones([2, 4]))

        XCTAssertThrowsError(try seq.update(from: ["3.weight": Tensor.ones([4, 2])])) { e in
            XCTAssertEqual("\(e)", "parameter 3.weight: expected shape [2, 4], got [4, 2]")
        }
    }

    func testNestedNamesAndFreezing() {
        var rng = SeededRNG(seed: 0)
        let b = Block(rng: &rng)
        XCTAssertEqual(b.namedParameters().map(\.name), ["self.query.weight", "self.query.bias", "LayerNorm.weight", "LayerNorm.bias"])
        b.setTrainable(false) { !$0.hasSuffix("bias") }
        XCTAssertEqual(b.trainableParameters().map(\.name), ["self.query.bias", "LayerNorm.bias"])
        b.eval()
        var modes: [Bool] = []
        b.visitModules { _, m in modes.append(m.training) }
        XCTAssertEqual(modes, [false, false, false])
    }

    func testBatchNormRunningStatisticsFollowTorch() {
        let bn = BatchNorm2d(1, momentum: 0.1)
        // Two samples of a single value each: mean 2, biased var 1, unbiased var 2.
        let x = Variable(Tensor(shape: [2, 1, 1, 1], data: [1, 3]))
        let y = bn(x)
        XCTAssertEqual(y.value.scalars[0], -1, accuracy: 1e-4)
        XCTAssertEqual(bn.runningMean.value.scalars[0], 0.2, accuracy: 1e-6)
        XCTAssertEqual(bn.runningVar.value.scalars[0], 0.9 + 0.2, accuracy: 1e-6)
        bn.eval()
        let z = bn(Variable(Tensor(shape: [1, 1, 1, 1], data: [0.2])))
        XCTAssertEqual(z.value.scalars[0], 0, accuracy: 1e-6)
    }

    func testLinearMatchesManualComputation() {
        let lin = Linear(weight: Tensor(shape: [2, 3], data: [1, 2, 3, 4, 5, 6]), bias: Tensor(shape: [2], data: [0.5, -0.5]))
        let y = lin(Variable(Tensor(shape: [1, 3], data: [1, 0, -1])))
        XCTAssertEqual(y.value.scalars, [-1.5, -2.5])
    }
}
