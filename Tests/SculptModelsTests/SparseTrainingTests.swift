import XCTest
import SculptCore
import SculptNN
import SculptIO
@testable import SculptModels

final class SparseTrainingTests: XCTestCase {
    /// LT-SFT's sparse phase on a small BERT: AdamW with weight decay moves only the selected
    /// entries; everything else (including entries of selected tensors) stays bit-identical.
    func testOnlySelectedEntriesMoveUnderAdamWWithWeightDecay() throws {
        let model = try BertModel(config: tinyBertConfig(), withPooler: false, seed: 1)
        let base = model.stateDict()
        // A pretend first phase: perturb every parameter, select the top 5 %, reset to base.
        var rng = SeededRNG(seed: 2)
        var ft = base
        for (k, v) in ft { ft[k] = v + Tensor.randomNormal(v.shape, std: 0.01, using: &rng) }
        let params = Dictionary(uniqueKeysWithValues: model.namedParameters().map { ($0.name, $0.parameter.value) })
        let diff = try SparseDiff.select(base: params, finetuned: params.mapValues { $0 }.merging(ft.filter { params[$0.key] != nil }) { $1 }, density: 0.05)
        XCTAssertEqual(diff.count, Int((0.05 * Double(model.parameterCount)).rounded()))

        let masks = diff.prepareSparseTraining(model)
        let opt = AdamW(learningRate: 0.05, weightDecay: 0.5)
        opt.updateMasks = masks
        let tokens = randomTokens(batch: 2, sequence: 6, vocab: 40, seed: 3)
        for _ in 0..<3 {
            model.zeroGrad()
            model(tokens).applying(.tanh).sum().backward()
            opt.step(model.trainableParameters())
        }
        let after = model.stateDict()
        var moved = 0
        for (name, before) in params {
            let now = after[name]!
            let part = diff.parts[name]!
            let selected = Set(part.indices.map(Int.init))
            for i in 0..<before.count {
                if selected.contains(i) {
                    if now[flat: i] != before[flat: i] { moved += 1 }
                } else {
                    XCTAssertEqual(now[flat: i].bitPattern, before[flat: i].bitPattern, "\(name)[\(i)] is not selected but moved")
                }
            }
            if part.count == 0 { XCTAssertFalse(model.namedParameters().first { $0.name == name }!.parameter.requiresGrad, "\(name) is frozen") }
        }
        XCTAssertGreaterThan(moved, diff.count / 2, "selected entries train")

        // The trained diff on the same support, applied to and removed from a fresh base model.
        let trained = try diff.onSameSupport(base: params, finetuned: after.filter { params[$0.key] != nil })
        // Bit-exact except where a weight crossed zero or shrank by more than half (rounded d).
        let finetuned = after.filter { params[$0.key] != nil }
        let inexact = trained.inexactEntries(base: params, finetuned: finetuned)
        print("sparse diff: \(inexact) of \(trained.count) entries rounded (large steps cross zero)")
        let fresh = try BertModel(config: tinyBertConfig(), withPooler: false, seed: 1)
        try trained.apply(to: fresh)
        for (name, p) in fresh.namedParameters() { XCTAssertEqual(p.value.maxAbsDifference(after[name]!), 0, accuracy: 1e-7, name) }
        try trained.remove(from: fresh)
        for (name, p) in fresh.namedParameters() { XCTAssertEqual(p.value.maxAbsDifference(params[name]!), 0, accuracy: 1e-7, name) }
        _ = inexact
    }
}
