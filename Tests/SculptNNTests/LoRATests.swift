import XCTest
import SculptCore
@testable import SculptNN

/// Two named Linear layers in a tree shaped like BERT's attention, for target matching.
private final class LoRATestBlock: Module {
    var training = true
    let query: Linear, value: Linear, dense: Linear
    init(rng: inout SeededRNG) {
        query = Linear(6, 4, using: &rng); value = Linear(6, 4, using: &rng); dense = Linear(4, 6, using: &rng)
    }
    var children: [(String, any Module)] { [("query", query), ("value", value), ("dense", dense)] }
}

private final class LoRATestTree: Module {
    var training = true
    let blocks: [LoRATestBlock]
    let head: Linear
    init(seed: UInt64) {
        var rng = SeededRNG(seed: seed)
        blocks = [LoRATestBlock(rng: &rng), LoRATestBlock(rng: &rng)]
        head = Linear(6, 3, using: &rng)
    }
    var children: [(String, any Module)] {
        [("encoder", Sequential([])), ("head", head)] + blocks.enumerated().map { ("encoder.layer.\($0.offset).attention.self", $0.element as any Module) }
    }
}

final class LoRATests: XCTestCase {
    func testInitialisationMatchesPEFT() {
        var rng = SeededRNG(seed: 1)
        let lora = LoRAAdapter(inFeatures: 100, outFeatures: 7, rank: 8, alpha: 16, rng: &rng)
        XCTAssertEqual(lora.a.shape, [8, 100])
        XCTAssertEqual(lora.b.shape, [7, 8])
        XCTAssertEqual(lora.b.value.maxAbs(), 0, "B starts at zero")
        // kaiming_uniform(a=√5) on fan_in 100: bound = √(6/((1+5)·100)) = 0.1
        XCTAssertLessThanOrEqual(lora.a.value.maxAbs(), 0.1)
        XCTAssertGreaterThan(lora.a.value.maxAbs(), 0.09)
        XCTAssertEqual(lora.scaling, 2)
        var rng2 = SeededRNG(seed: 1)
        XCTAssertEqual(LoRAAdapter(inFeatures: 100, outFeatures: 7, rank: 16, alpha: 16, useRSLoRA: true, rng: &rng2).scaling, 4, "rsLoRA: alpha/√r")
    }

    func testForwardEqualsBaseAtInitAndBaseGetsNoGradient() {
        var rng = SeededRNG(seed: 2)
        let layer = Linear(5, 3, using: &rng)
        let x = Variable(Tensor.randomNormal([4, 5], using: &rng))
        let before = withoutGradients { layer(x) }.value
        layer.weight.requiresGrad = false
        layer.bias?.requiresGrad = false
        layer.lora = LoRAAdapter(inFeatures: 5, outFeatures: 3, rank: 2, alpha: 4, rng: &rng)
        let y = layer(x)
        XCTAssertEqual(y.value.maxAbsDifference(before), 0)
        y.sum().backward()
        XCTAssertNil(layer.weight.grad, "the frozen base weight gets no gradient")
        XCTAssertNil(layer.bias?.grad)
        XCTAssertNotNil(layer.lora!.a.grad)
        XCTAssertNotNil(layer.lora!.b.grad)
        XCTAssertEqual(layer.lora!.a.grad!.maxAbs(), 0, "dA = 0 while B = 0")
        XCTAssertEqual(layer.namedParameters().map(\.name), ["weight", "bias", "lora_A.weight", "lora_B.weight"])
    }

    /// Central differences on A and B (with B non-zero so dA is non-trivial) and on the input.
    func testGradientsMatchFiniteDifferences() {
        var rng = SeededRNG(seed: 3)
        let layer = Linear(5, 4, using: &rng)
        layer.weight.requiresGrad = false
        layer.lora = LoRAAdapter(inFeatures: 5, outFeatures: 4, rank: 3, alpha: 6, rng: &rng)
        layer.lora!.b.value = Tensor.randomNormal([4, 3], std: 0.5, using: &rng)
        let xValue = Tensor.randomNormal([2, 3, 5], using: &rng)
        let projection = Tensor.randomNormal([2, 3, 4], using: &rng)
        func loss() -> Double {
            withoutGradients {
                let y = layer(Variable(xValue)).value
                var s: Double = 0
                for i in 0..<y.count { s += Double(y[flat: i]) * Double(projection[flat: i]) }
                return s
            }
        }
        let x = Variable(xValue, requiresGrad: true)
        (layer(x) * Variable(projection)).sum().backward()
        let eps: Float = 1e-2
        for (name, v) in [("A", layer.lora!.a), ("B", layer.lora!.b)] {
            let analytic = v.grad!
            for i in 0..<v.value.count {
                let saved = v.value[flat: i]
                v.value[flat: i] = saved + eps; let plus = loss()
                v.value[flat: i] = saved - eps; let minus = loss()
                v.value[flat: i] = saved
                let numeric = Float((plus - minus) / Double(2 * eps))
                XCTAssertEqual(analytic[flat: i], numeric, accuracy: 2e-2 * max(1, abs(numeric)), "d\(name)[\(i)]")
            }
        }
        XCTAssertNotNil(x.grad)
    }

    func testMergeMatchesAdapterAndUnmergeRoundTrips() {
        var rng = SeededRNG(seed: 4)
        let layer = Linear(8, 6, using: &rng)
        layer.lora = LoRAAdapter(inFeatures: 8, outFeatures: 6, rank: 2, alpha: 8, dropout: 0.5, rng: &rng)
        layer.lora!.b.value = Tensor.randomNormal([6, 2], using: &rng)
        layer.training = false  // dropout off: merged and adapter forms are the same function
        let x = Variable(Tensor.randomNormal([5, 8], using: &rng))
        let original = layer.weight.value.copy()
        let adapted = withoutGradients { layer(x) }.value
        XCTAssertGreaterThan(adapted.maxAbsDifference(withoutGradients { matmul(x, layer.weight, transposeB: true) + layer.bias! }.value), 0.1)
        layer.mergeLoRA()
        XCTAssertTrue(layer.lora!.merged)
        XCTAssertEqual(withoutGradients { layer(x) }.value.maxAbsDifference(adapted), 0, accuracy: 1e-5)
        layer.unmergeLoRA()
        XCTAssertEqual(layer.weight.value.maxAbsDifference(original), 0, accuracy: 1e-6)
        XCTAssertEqual(withoutGradients { layer(x) }.value.maxAbsDifference(adapted), 0, accuracy: 1e-5)
    }

    func testDropoutAppliesToTheInputOfAOnly() {
        var rng = SeededRNG(seed: 5)
        let layer = Linear(6, 4, using: &rng)
        layer.lora = LoRAAdapter(inFeatures: 6, outFeatures: 4, rank: 2, alpha: 2, dropout: 0.5, rng: &rng)
        let x = Variable(Tensor.randomNormal([3, 6], using: &rng))
        // B = 0: whatever dropout does inside the adapter, the output equals the base.
        let base = withoutGradients { matmul(x, layer.weight, transposeB: true) + layer.bias! }.value
        XCTAssertEqual(withoutGradients { layer(x) }.value.maxAbsDifference(base), 0)
        layer.lora!.b.value = Tensor.ones([4, 2])
        let a = withoutGradients { layer(x) }.value, b = withoutGradients { layer(x) }.value
        XCTAssertGreaterThan(a.maxAbsDifference(b), 0, "training-mode dropout draws fresh masks")
        layer.training = false
        XCTAssertEqual(withoutGradients { layer(x) }.value.maxAbsDifference(withoutGradients { layer(x) }.value), 0)
    }

    func testTargetMatchingSemantics() throws {
        let n = "encoder.layer.0.attention.self.query"
        // A list matches equal names or "." + entry suffixes, never substrings.
        XCTAssertTrue(try TargetModules.names(["query"]).matches(n))
        XCTAssertTrue(try TargetModules.names(["self.query"]).matches(n))
        XCTAssertTrue(try TargetModules.names([n]).matches(n))
        XCTAssertFalse(try TargetModules.names(["uery"]).matches(n))
        XCTAssertFalse(try TargetModules.names(["elf.query"]).matches(n))
        XCTAssertFalse(try TargetModules.names(["attention"]).matches(n))
        // A string is a regex that must match the whole name.
        XCTAssertFalse(try TargetModules.regex("query").matches(n))
        XCTAssertTrue(try TargetModules.regex(".*query").matches(n))
        XCTAssertTrue(try TargetModules.regex(#".*\.(query|value)"#).matches("encoder.layer.11.attention.self.value"))
        XCTAssertTrue(try TargetModules.regex(#"encoder\.layer\.[01]\..*self\.query"#).matches(n))
        XCTAssertFalse(try TargetModules.regex(#"encoder\.layer\.[12]\..*self\.query"#).matches(n))
        XCTAssertFalse(try TargetModules.regex("encoder.layer.0").matches(n), "prefix is not a full match")
        XCTAssertThrowsError(try TargetModules.regex("(").matches(n))
    }

    func testApplyLoRAMatchesFreezesAndReports() throws {
        let tree = LoRATestTree(seed: 6)
        var rng = SeededRNG(seed: 7)
        let names = try applyLoRA(to: tree, targetModules: .names(["query", "value"]), rank: 2, alpha: 4, modulesToSave: ["head"], rng: &rng)
        XCTAssertEqual(names, ["encoder.layer.0.attention.self.query", "encoder.layer.0.attention.self.value",
                               "encoder.layer.1.attention.self.query", "encoder.layer.1.attention.self.value"])
        let trainable = tree.trainableParameters().map(\.name)
        XCTAssertEqual(trainable.filter { $0.contains("lora_") }.count, 8)
        XCTAssertEqual(Set(trainable.filter { !$0.contains("lora_") }), ["head.weight", "head.bias"])

        XCTAssertThrowsError(try applyLoRA(to: LoRATestTree(seed: 1), targetModules: .names(["key"]), rank: 2, alpha: 4, rng: &rng)) { e in
            XCTAssertTrue("\(e)".contains("\"key\""), "the error names the pattern: \(e)")
        }
        XCTAssertThrowsError(try applyLoRA(to: LoRATestTree(seed: 1), targetModules: .regex(".*attention\\.self"), rank: 2, alpha: 4, rng: &rng)) { e in
            XCTAssertTrue("\(e)".contains("not a Linear"), "\(e)")
        }
        XCTAssertThrowsError(try applyLoRA(to: tree, targetModules: .names(["query"]), rank: 2, alpha: 4, rng: &rng))
        // A regex on the head is excluded when the head is a module to save.
        XCTAssertThrowsError(try applyLoRA(to: LoRATestTree(seed: 1), targetModules: .regex("head"), rank: 2, alpha: 4, modulesToSave: ["head"], rng: &rng))
    }

    func testModulesToSaveMatchesWholeComponents() {
        XCTAssertTrue(isInModulesToSave("classifier.weight", ["classifier"]))
        XCTAssertTrue(isInModulesToSave("bert.pooler.dense.bias", ["pooler.dense"]))
        XCTAssertFalse(isInModulesToSave("my_classifier.weight", ["classifier"]))
        XCTAssertFalse(isInModulesToSave("classifier2.weight", ["classifier"]))
    }
}
