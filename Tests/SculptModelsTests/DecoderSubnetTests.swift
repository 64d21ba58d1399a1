import XCTest
import SculptCore
import SculptNN
import SculptIO
import SculptModels

/// Decoder sub-networks: JSON refusals, activation on shared weights = dense extraction,
/// importance reordering leaves the function unchanged.
final class DecoderSubnetTests: XCTestCase {
    /// Shapes that exercise every optional part: GQA groups of 2 and 3, q/k/v and MLP biases,
    /// q/k norms, a tied and an untied head, head_dim ≠ hidden/heads.
    static let configs: [DecoderConfig] = [
        DecoderConfig(hiddenSize: 24, numHiddenLayers: 4, numAttentionHeads: 6, numKeyValueHeads: 2, headDim: 6, intermediateSize: 37,
                      vocabSize: 61, tieWordEmbeddings: true, initializerRange: 0.2),
        DecoderConfig(modelType: "qwen3", hiddenSize: 20, numHiddenLayers: 3, numAttentionHeads: 4, numKeyValueHeads: 2, headDim: 8,
                      intermediateSize: 29, vocabSize: 53, qkvBias: true, outputBias: true, mlpBias: true, qkNorm: true, initializerRange: 0.2),
    ]

    static func model(_ c: DecoderConfig, seed: UInt64 = 5) -> DecoderLM {
        let m = DecoderLM(config: c, seed: seed)
        // Norm weights away from 1 so a wrong slice of them shows.
        var rng = SeededRNG(seed: seed + 1)
        for (n, p) in m.namedParameters() where n.hasSuffix("norm.weight") {
            p.value = Tensor.randomUniform(p.value.shape, low: 0.5, high: 1.5, using: &rng)
        }
        m.eval()
        return m
    }

    static func ids(_ n: Int, vocab: Int, seed: UInt64) -> [Int32] {
        var rng = SeededRNG(seed: seed)
        return (0..<n).map { _ in Int32(rng.next() % UInt64(vocab)) }
    }

    func maxDifference(_ a: Tensor, _ b: Tensor) -> Float {
        XCTAssertEqual(a.shape, b.shape)
        var worst: Float = 0
        for i in 0..<min(a.count, b.count) { worst = max(worst, abs(a[flat: i] - b[flat: i])) }
        return worst
    }

    func logits(_ m: DecoderLM, _ x: [Int32], batch: Int = 1) -> Tensor {
        withoutGradients { m.logits(m.hiddenStates(ids: x, batch: batch, sequence: x.count / batch)).value }
    }

    func testRefusalsNameTheField() {
        let c = Self.configs[0]  // 6 heads in 2 groups of 3, 4 layers
        let cases: [(String, String)] = [
            (#"{"layers": [0, 2], "heads": [3, 4]}"#, "heads[1]"),
            (#"{"layers": []}"#, "layers"),
            (#"{"layers": 0}"#, "layers"),
            (#"{"layers": [0, 1, 1]}"#, "layers[2]"),
            (#"{"layers": [2, 1]}"#, "layers[1]"),
            (#"{"layers": [0, 4]}"#, "layers[1]"),
            (#"{"layers": 5}"#, "layers"),
            (#"{"layers": 2, "ffn": [10]}"#, "ffn"),
            (#"{"layers": 2, "ffn": 0}"#, "ffn[0]"),
            (#"{"layers": 2, "hidden": 25}"#, "hidden"),
            (#"{"layers": 2, "hidden": "x"}"#, "hidden"),
            (#"{"layers": 2, "width": 3}"#, "width"),
            (#"{"heads": 3}"#, "layers"),
            (#"[1]"#, "(json)"),
        ]
        for (json, field) in cases {
            XCTAssertThrowsError(try DecoderSubnet.parse(json, config: c), json) { e in
                XCTAssertEqual((e as? SubnetError)?.field, field, "\(json): \(e)")
            }
        }
        XCTAssertThrowsError(try DecoderSubnet.parse(#"{"layers": [0, 2], "heads": [3, 4]}"#, config: c)) {
            XCTAssertTrue("\($0)".contains("split a key-value group"), "\($0)")
        }
        let s = try! DecoderSubnet.parse(#"{"layers": [0, 3], "heads": 3, "ffn": [20, 37]}"#, config: c)
        XCTAssertEqual(s, DecoderSubnet(layers: [0, 3], heads: [3, 3], ffn: [20, 37], hidden: 24))
        XCTAssertEqual(try DecoderSubnet.parse(s.json, config: c), s)
        XCTAssertEqual(try DecoderSubnet.parse(#"{"layers": 4}"#, config: c), DecoderSubnet.full(c))
    }

    /// The activated super-network and the dense extraction give the same logits (≤ 1e-4),
    /// for uniform, non-uniform (zero-padded), middle-layer-dropping and hidden-sliced
    /// sub-networks; the extraction's config is a plain transformers one and round-trips.
    func testActivationMatchesExtraction() throws {
        for c in Self.configs {
            let m = Self.model(c)
            let g = DecoderSubnet.groupSize(c)
            let subnets = [
                DecoderSubnet.uniform(c, layers: [0, 2], heads: g, ffn: 11),
                DecoderSubnet(layers: Array(0..<c.numHiddenLayers).filter { $0 != 1 }, heads: [g, 2 * g] + Array(repeating: g, count: c.numHiddenLayers - 3),
                              ffn: [7, c.intermediateSize] + Array(repeating: 13, count: c.numHiddenLayers - 3), hidden: c.hiddenSize),
                DecoderSubnet.uniform(c, layers: [1], hidden: c.hiddenSize - 5),
                DecoderSubnet(layers: [0, c.numHiddenLayers - 1], heads: [g, c.numAttentionHeads], ffn: [c.intermediateSize - 4, 9], hidden: c.hiddenSize - 3),
            ]
            let x = Self.ids(2 * 9, vocab: c.vocabSize, seed: 9)
            let fullLogits = logits(m, x, batch: 2)
            for s in subnets {
                try s.validate(c)
                try m.activate(s)
                let active = logits(m, x, batch: 2)
                try m.activate(nil)
                let small = try m.extract(s)
                small.eval()
                XCTAssertEqual(small.config.numHiddenLayers, s.layers.count)
                XCTAssertEqual(small.config.hiddenSize, s.hidden)
                XCTAssertEqual(small.config.numKeyValueHeads * g, small.config.numAttentionHeads)
                XCTAssertLessThanOrEqual(maxDifference(active, logits(small, x, batch: 2)), 1e-4, s.json)
                XCTAssertGreaterThan(maxDifference(active, fullLogits), 1e-3, "a sub-network that computes the full model: \(s.json)")
                // The extracted directory loads as an ordinary decoder.
                let dir = FileManager.default.temporaryDirectory.appendingPathComponent("subnet-\(UUID().uuidString)")
                defer { try? FileManager.default.removeItem(at: dir) }
                try small.save(to: dir)
                let (back, report) = try DecoderLM.load(directory: dir)
                XCTAssertEqual(report.unexpected, [])
                back.eval()
                XCTAssertEqual(maxDifference(logits(back, x, batch: 2), logits(small, x, batch: 2)), 0, s.json)
            }
            XCTAssertEqual(maxDifference(logits(m, x, batch: 2), fullLogits), 0, "activate(nil) restores the whole model")
        }
    }

    /// Generation with KV caches runs the active sub-network as its extraction does.
    func testCachedGenerationOnSubnet() throws {
        let c = Self.configs[0], m = Self.model(c)
        let s = DecoderSubnet(layers: [1, 3], heads: [3, 6], ffn: [20, 9], hidden: 21)
        try m.activate(s)
        let prompts = [Self.ids(5, vocab: c.vocabSize, seed: 1), Self.ids(3, vocab: c.vocabSize, seed: 2)]
        let options = GenerationOptions(maxNewTokens: 6, stopTokenIds: [])
        let a = DecoderGenerator(model: m).generate(prompts: prompts, options: options)
        try m.activate(nil)
        let b = DecoderGenerator(model: try m.extract(s)).generate(prompts: prompts, options: options)
        XCTAssertEqual(a, b)
    }

    /// Reordering by any importance permutes units without changing the function, and puts
    /// the highest-scored units first.
    func testReorderKeepsFunction() throws {
        for c in Self.configs {
            let m = Self.model(c)
            let x = Self.ids(11, vocab: c.vocabSize, seed: 4)
            let before = logits(m, x)
            let calibration = [Self.ids(7, vocab: c.vocabSize, seed: 8), Self.ids(12, vocab: c.vocabSize, seed: 10)]
            for method in DecoderImportanceMethod.allCases {
                let imp = try m.importance(method, calibration: method == .magnitude ? [] : calibration)
                XCTAssertEqual(imp.groups.count, c.numHiddenLayers)
                XCTAssertEqual(imp.groups[0].count, c.numKeyValueHeads)
                XCTAssertEqual(imp.ffn[0].count, c.intermediateSize)
                XCTAssertEqual(imp.hidden.count, c.hiddenSize)
                XCTAssertEqual(imp.blockInfluence?.count, method == .magnitude ? nil : c.numHiddenLayers)
                XCTAssertTrue(imp.ffn.joined().allSatisfy { $0.isFinite && $0 >= 0 }, "\(method)")
                XCTAssertNil(m.namedParameters().first { $0.parameter.grad != nil }, "importance leaves no gradients behind")
                try m.reorder(by: imp)
                XCTAssertLessThanOrEqual(maxDifference(logits(m, x), before), 2e-5, "\(method)")
                let again = try m.importance(method, calibration: method == .magnitude ? [] : calibration)
                for l in 0..<c.numHiddenLayers {
                    XCTAssertEqual(again.ffn[l], again.ffn[l].sorted(by: >), "\(method) layer \(l) FFN order")
                    XCTAssertEqual(again.groups[l], again.groups[l].sorted(by: >), "\(method) layer \(l) group order")
                }
                if method != .taylor { XCTAssertEqual(again.hidden, again.hidden.sorted(by: >), "\(method) hidden order") }
            }
        }
    }

    /// Activation importance by hand: an FFN channel's score is its mean |SwiGLU output|.
    /// With layer 0's down projection zeroed and its post-attention norm copied into the
    /// final norm, a one-layer sub-network's hidden states are exactly that MLP's input.
    func testActivationImportanceByHand() throws {
        let c = Self.configs[0], m = Self.model(c)
        let layer = m.model.layers[0]
        layer.mlp.downProj.weight.value = Tensor.zeros(layer.mlp.downProj.weight.value.shape)
        m.model.norm.weight.value = layer.postAttentionLayernorm.weight.value
        let x = Self.ids(6, vocab: c.vocabSize, seed: 3)
        let imp = try m.importance(.activation, calibration: [x])
        try m.activate(DecoderSubnet.uniform(c, layers: [0]))
        let expected: [Double] = withoutGradients {
            let n2 = m.hiddenStates(ids: x, batch: 1, sequence: x.count)
            let a = swiglu(gate: layer.mlp.gateProj(n2), up: layer.mlp.upProj(n2)).value
            return (0..<c.intermediateSize).map { j in (0..<x.count).reduce(0.0) { $0 + Double(abs(a[flat: $1 * c.intermediateSize + j])) } / Double(x.count) }
        }
        try m.activate(nil)
        for j in 0..<c.intermediateSize { XCTAssertEqual(imp.ffn[0][j], expected[j], accuracy: 1e-5) }
        XCTAssertTrue(imp.blockInfluence!.allSatisfy { $0 >= 0 && $0 <= 2 })
        XCTAssertGreaterThan(imp.ffn[0].max()!, 0)
    }

    /// Magnitude zeroes the smallest half of each matrix, Wanda the lowest |w|·‖x_j‖ half of
    /// each row (‖x_j‖ recomputed here for layer 0's q_proj), 2:4 two of every four.
    func testWeightMasks() throws {
        let c = Self.configs[0]
        let x = Self.ids(9, vocab: c.vocabSize, seed: 6)
        for (score, twoFour) in [(DecoderWeightScore.magnitude, false), (.wanda, false), (.wanda, true), (.magnitude, true)] {
            let m = Self.model(c)
            let q = m.model.layers[0].selfAttention.qProj.weight.value.copy()
            let n1 = withoutGradients { m.model.layers[0].inputLayernorm(m.model.embedTokens(x, shape: [x.count])).value }
            let masks = try m.pruneWeights(score, sparsity: 0.5, twoFour: twoFour, calibration: [x])
            XCTAssertEqual(masks.count, 7 * c.numHiddenLayers)
            let mq = masks["model.layers.0.self_attn.q_proj.weight"]!
            let rows = q.shape[0], cols = q.shape[1]
            for r in 0..<rows {
                let kept = (0..<cols).filter { mq[flat: r * cols + $0] == 1 }
                if twoFour {
                    for g in stride(from: 0, to: cols, by: 4) { XCTAssertEqual(kept.filter { $0 >= g && $0 < g + 4 }.count, 2) }
                } else if score == .wanda {
                    XCTAssertEqual(kept.count, cols / 2)
                    let norm = (0..<cols).map { j in (0..<x.count).reduce(0.0) { $0 + Double(n1[flat: $1 * cols + j] * n1[flat: $1 * cols + j]) }.squareRoot() }
                    func s(_ j: Int) -> Double { Double(abs(q[flat: r * cols + j])) * norm[j] }
                    let pruned = (0..<cols).filter { mq[flat: r * cols + $0] == 0 }
                    XCTAssertGreaterThanOrEqual(kept.map(s).min()!, pruned.map(s).max()! * (1 - 1e-6), "row \(r)")
                }
            }
            if score == .magnitude && !twoFour {
                XCTAssertEqual((0..<mq.count).filter { mq[flat: $0] == 0 }.count, mq.count / 2)
                let keptMin = (0..<mq.count).filter { mq[flat: $0] == 1 }.map { abs(q[flat: $0]) }.min()!
                let prunedMax = (0..<mq.count).filter { mq[flat: $0] == 0 }.map { abs(q[flat: $0]) }.max()!
                XCTAssertGreaterThanOrEqual(keptMin, prunedMax)
            }
            // The weights are the masked ones.
            let w = m.model.layers[0].selfAttention.qProj.weight.value
            for i in 0..<w.count { XCTAssertEqual(w[flat: i], q[flat: i] * mq[flat: i]) }
        }
        XCTAssertThrowsError(try Self.model(c).pruneWeights(.wanda, sparsity: 0.5, twoFour: false))
        XCTAssertThrowsError(try Self.model(c).pruneWeights(.magnitude, sparsity: 1, twoFour: false))
    }

    func testParameterCountMatchesExtraction() throws {
        for c in Self.configs {
            let m = Self.model(c)
            let s = DecoderSubnet.uniform(c, layers: [0, c.numHiddenLayers - 1], heads: DecoderSubnet.groupSize(c), ffn: 10, hidden: c.hiddenSize - 2)
            let small = try m.extract(s)
            let embedding = c.vocabSize * s.hidden * (c.tieWordEmbeddings ? 1 : 2)
            let total = small.namedParameters().reduce(0) { $0 + $1.parameter.value.count }
            XCTAssertEqual(s.nonEmbeddingParameters(c), total - embedding)
            XCTAssertEqual(DecoderSubnet.full(c).nonEmbeddingParameters(c), m.namedParameters().reduce(0) { $0 + $1.parameter.value.count } - embedding / s.hidden * c.hiddenSize)
        }
    }
}

/// Early exits and self-speculative decoding.
final class DecoderEarlyExitTests: XCTestCase {
    func testExitsEqualTheirPrefixSubnets() throws {
        let c = DecoderSubnetTests.configs[1]
        let m = DecoderSubnetTests.model(c)
        let x = DecoderSubnetTests.ids(10, vocab: c.vocabSize, seed: 2)
        let exits = withoutGradients { m.exitHiddenStates(ids: x, batch: 1, sequence: x.count, exits: [1, 3]).map(\.value) }
        for (i, depth) in [1, 3].enumerated() {
            try m.activate(DecoderSubnet.uniform(c, layers: Array(0..<depth)))
            let h = withoutGradients { m.hiddenStates(ids: x, batch: 1, sequence: x.count).value }
            XCTAssertEqual(h.maxAbsDifference(exits[i]), 0, "exit \(depth)")
        }
        try m.activate(nil)
    }

    /// The output is the model's own greedy output for every draft depth and length, with
    /// some drafts accepted and some rejected (a random model disagrees with its early exits).
    func testSpeculativeEqualsGreedy() {
        for c in DecoderSubnetTests.configs {
            let m = DecoderSubnetTests.model(c, seed: 17)
            let generator = DecoderGenerator(model: m)
            var accepted = 0, rejected = 0
            for (seed, length) in [(1, 5), (2, 1), (3, 9)] {
                let prompt = DecoderSubnetTests.ids(length, vocab: c.vocabSize, seed: UInt64(seed))
                for stop in [Set<Int32>(), [Int32(7), 11]] {
                    let options = GenerationOptions(maxNewTokens: 23, stopTokenIds: stop)
                    let plain = generator.generate(prompts: [prompt], options: options)[0]
                    for draftLayers in 1..<c.numHiddenLayers {
                        for k in [1, 3, 6] {
                            let r = generator.generateSpeculative(prompt: prompt, draftLayers: draftLayers, draftTokens: k, options: options)
                            XCTAssertEqual(r.tokens, plain, "draft \(draftLayers) layers, \(k) tokens, prompt \(seed)")
                            accepted += r.accepted; rejected += r.drafted - r.accepted
                        }
                    }
                }
            }
            XCTAssertGreaterThan(accepted, 0)
            XCTAssertGreaterThan(rejected, 0)
        }
    }
}
