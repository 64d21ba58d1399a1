import XCTest
import SculptCore
import SculptNN
import SculptIO
import SculptTestSupport
@testable import SculptModels

final class S2FTTests: XCTestCase {
    /// A small BERT with non-zero biases (BERT initialises them to 0, which would hide a bias
    /// that is not permuted with its rows).
    func randomBert(seed: UInt64 = 1) throws -> BertModel {
        let model = try BertModel(config: tinyBertConfig(layers: 2, hidden: 16, heads: 4, ffn: 24), withPooler: false, seed: seed)
        var rng = SeededRNG(seed: seed + 100)
        for (_, p) in model.namedParameters() { p.value = p.value + Tensor.randomNormal(p.value.shape, std: 0.05, using: &rng) }
        model.eval()
        return model
    }

    func testPermutationKeepsTheFunction() throws {
        let model = try randomBert()
        let tokens = randomTokens(batch: 2, sequence: 7, vocab: 40, seed: 2, padLast: 2)
        let before = withoutGradients { model(tokens) }.value
        model.encoder.layers[0].permuteHeads([2, 0, 3, 1])
        model.encoder.layers[1].permuteChannels(Array((0..<24).reversed()))
        XCTAssertEqual(withoutGradients { model(tokens) }.value.maxAbsDifference(before), 0, accuracy: 1e-5)
        XCTAssertNotEqual(model.encoder.layers[0].attention.selfAttention.query.weight.value, try randomBert().encoder.layers[0].attention.selfAttention.query.weight.value)

        let plan = S2FTPlan.choose(for: model, density: 0.5, criterion: .random, seed: 3)
        XCTAssertEqual(plan.layers.map(\.heads.count), [2, 2])
        XCTAssertEqual(plan.layers.map(\.channels.count), [12, 12])
        let session = applyS2FT(plan, to: model)
        XCTAssertEqual(withoutGradients { model(tokens) }.value.maxAbsDifference(before), 0, accuracy: 1e-5, "permuted and split")
        session.fold()
        XCTAssertEqual(withoutGradients { model(tokens) }.value.maxAbsDifference(before), 0, accuracy: 1e-5, "folded back")
        let original = try randomBert()
        model.encoder.layers[0].permuteHeads([1, 3, 0, 2])  // undo the manual permutations
        model.encoder.layers[1].permuteChannels(Array((0..<24).reversed()))
        for ((n, p), (_, q)) in zip(model.namedParameters(), original.namedParameters()) { XCTAssertEqual(p.value, q.value, n) }
    }

    func testMiniLMPermutationKeepsTheFunction() throws {
        let dir = try SharedData.require("models/all-MiniLM-L6-v2")
        let (model, _) = try BertModel.load(directory: dir)
        model.eval()
        let tokens = randomTokens(batch: 2, sequence: 16, vocab: 30000, seed: 5, padLast: 4)
        let before = withoutGradients { model(tokens) }.value
        let plan = S2FTPlan.choose(for: model, density: 0.1, headDensity: 0.25, criterion: .magnitude)
        XCTAssertEqual(plan.layers[0].heads.count, 3)
        XCTAssertEqual(plan.layers[0].channels.count, 154)
        let session = applyS2FT(plan, to: model)
        XCTAssertEqual(withoutGradients { model(tokens) }.value.maxAbsDifference(before), 0, accuracy: 1e-5)
        session.fold()
        XCTAssertEqual(withoutGradients { model(tokens) }.value.maxAbsDifference(before), 0, accuracy: 1e-5)
    }

    /// The split block's gradient equals the matching slice of the dense gradient, and the
    /// frozen remainder gets none.
    func testBlockGradientEqualsSliceOfFullGradient() throws {
        // 2 × 5 token rows run query, key and value as separate projections; 2 × 9 (at least
        // the hidden size) as one stacked GEMM with the s2ft blocks written in.
        for sequence in [5, 9] {
            let tokens = randomTokens(batch: 2, sequence: sequence, vocab: 40, seed: 7)
            let plan = S2FTPlan(layers: [.init(heads: [1, 3], channels: [0, 5, 9]), .init(heads: [2], channels: [])], trainInputSide: true)
            let dense = try randomBert()
            // Dense reference: the same permutation, every weight trainable.
            for (layer, choice) in zip(dense.encoder.layers, plan.layers) {
                layer.permuteHeads(choice.heads + (0..<4).filter { !choice.heads.contains($0) })
                layer.permuteChannels(choice.channels + (0..<24).filter { !choice.channels.contains($0) })
            }
            dense(tokens).applying(.tanh).sum().backward()

            let model = try randomBert()
            _ = applyS2FT(plan, to: model)
            XCTAssertEqual(model.trainableParameters().map(\.name), [
                "encoder.layer.0.attention.self.query.s2ft.weight", "encoder.layer.0.attention.self.key.s2ft.weight",
                "encoder.layer.0.attention.self.value.s2ft.weight", "encoder.layer.0.attention.output.dense.s2ft.weight",
                "encoder.layer.0.intermediate.dense.s2ft.weight", "encoder.layer.0.output.dense.s2ft.weight",
                "encoder.layer.1.attention.self.query.s2ft.weight", "encoder.layer.1.attention.self.key.s2ft.weight",
                "encoder.layer.1.attention.self.value.s2ft.weight", "encoder.layer.1.attention.output.dense.s2ft.weight",
            ])
            model(tokens).applying(.tanh).sum().backward()
            let d = 4
            let checks: [(Linear, Linear, WeightSplit.Axis, Int)] = [
                (model.encoder.layers[0].attention.selfAttention.query, dense.encoder.layers[0].attention.selfAttention.query, .rows, 2 * d),
                (model.encoder.layers[0].attention.selfAttention.value, dense.encoder.layers[0].attention.selfAttention.value, .rows, 2 * d),
                (model.encoder.layers[0].attention.output.dense, dense.encoder.layers[0].attention.output.dense, .columns, 2 * d),
                (model.encoder.layers[0].intermediate.dense, dense.encoder.layers[0].intermediate.dense, .rows, 3),
                (model.encoder.layers[0].output.dense, dense.encoder.layers[0].output.dense, .columns, 3),
                (model.encoder.layers[1].attention.selfAttention.key, dense.encoder.layers[1].attention.selfAttention.key, .rows, d),
                (model.encoder.layers[1].attention.output.dense, dense.encoder.layers[1].attention.output.dense, .columns, d),
            ]
            for (i, (split, full, axis, k)) in checks.enumerated() {
                XCTAssertNil(split.weight.grad, "check \(i): the frozen weight gets no gradient")
                let g = split.split!.trainable.grad!
                let expected = full.weight.grad!.slice(axis: axis == .rows ? 0 : 1, 0..<k)
                XCTAssertEqual(g.shape, expected.shape)
                XCTAssertLessThan(g.maxAbsDifference(expected), 1e-5 * max(1, expected.maxAbs()), "check \(i), sequence \(sequence)")
            }
            XCTAssertNil(model.encoder.layers[1].intermediate.dense.split, "no channels chosen: nothing split")
            XCTAssertNil(model.encoder.layers[1].output.dense.weight.grad)
        }
    }

    func testOnlySelectedRowsAndColumnsChangeAfterTraining() throws {
        let base = try randomBert()
        let model = try randomBert()
        model.train()
        let plan = S2FTPlan.choose(for: model, density: 0.25, criterion: .random, seed: 9, trainInputSide: true)
        let session = applyS2FT(plan, to: model)
        let opt = AdamW(learningRate: 0.01, weightDecay: 0.1)
        for step in 0..<3 {
            model.zeroGrad()
            model(randomTokens(batch: 2, sequence: 6, vocab: 40, seed: UInt64(20 + step))).applying(.tanh).sum().backward()
            opt.step(model.trainableParameters())
        }
        session.fold()
        XCTAssertTrue(model.namedParameters().allSatisfy { $0.parameter.requiresGrad }, "trainable flags restored")
        XCTAssertFalse(model.namedParameters().contains { $0.name.contains("s2ft") })
        let d = 4
        for (l, choice) in plan.layers.enumerated() {
            let layer = model.encoder.layers[l], ref = base.encoder.layers[l]
            let headRows = Set(choice.heads.flatMap { Array($0 * d..<($0 + 1) * d) })
            func compare(_ a: Linear, _ b: Linear, selectedRows: Set<Int>?, selectedColumns: Set<Int>?, _ what: String) {
                let w = a.weight.value, w0 = b.weight.value
                let cols = w.shape[1]
                var changed = 0
                for r in 0..<w.shape[0] { for c in 0..<cols {
                    let sel = (selectedRows?.contains(r) ?? false) || (selectedColumns?.contains(c) ?? false)
                    if sel { if w[flat: r * cols + c] != w0[flat: r * cols + c] { changed += 1 } }
                    else { XCTAssertEqual(w[flat: r * cols + c].bitPattern, w0[flat: r * cols + c].bitPattern, "\(what)[\(r), \(c)] moved") }
                } }
                XCTAssertGreaterThan(changed, 0, "\(what): selected entries train")
                XCTAssertEqual(a.bias?.value, b.bias?.value, "\(what) bias is frozen")
            }
            compare(layer.attention.selfAttention.query, ref.attention.selfAttention.query, selectedRows: headRows, selectedColumns: nil, "L\(l).query")
            compare(layer.attention.output.dense, ref.attention.output.dense, selectedRows: nil, selectedColumns: headRows, "L\(l).attention.output")
            compare(layer.intermediate.dense, ref.intermediate.dense, selectedRows: Set(choice.channels), selectedColumns: nil, "L\(l).intermediate")
            compare(layer.output.dense, ref.output.dense, selectedRows: nil, selectedColumns: Set(choice.channels), "L\(l).output")
            XCTAssertEqual(layer.output.layerNorm.weight.value, ref.output.layerNorm.weight.value)
        }
        XCTAssertEqual(model.embeddings.wordEmbeddings.weight.value, base.embeddings.wordEmbeddings.weight.value)
    }

    func testPlanSelectionIsDeterministic() throws {
        let model = try randomBert()
        XCTAssertEqual(S2FTPlan.choose(for: model, density: 0.3, seed: 4), S2FTPlan.choose(for: model, density: 0.3, seed: 4))
        XCTAssertNotEqual(S2FTPlan.choose(for: model, density: 0.3, seed: 4), S2FTPlan.choose(for: model, density: 0.3, seed: 5))
        let m = S2FTPlan.choose(for: model, density: 0.25, criterion: .magnitude)
        XCTAssertEqual(m.layers[0].heads.count, 1)
        XCTAssertEqual(m.layers[0].channels.count, 6)
        XCTAssertEqual(S2FTPlan.choose(for: model, density: 0.01).layers[0].heads, [], "1 % of 4 heads rounds to none")
    }
}
