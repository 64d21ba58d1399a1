import XCTest
import SculptCore
import SculptIO
import SculptModels
import SculptTestSupport
@testable import SculptMerge

/// Whole merges on tiny BERT directories written by `BertModel.save`.
final class MergeEngineTests: XCTestCase {
    var root: URL!

    override func setUp() { root = SharedData.temporaryDirectory("sculpt-merge") }
    override func tearDown() { try? FileManager.default.removeItem(at: root) }

    static let config = BertConfig(hiddenSize: 8, numHiddenLayers: 3, numAttentionHeads: 2, intermediateSize: 16, vocabSize: 20, maxPositionEmbeddings: 12)

    /// Saves a random base and returns its directory and tensors.
    func makeBase() throws -> (URL, [String: Tensor]) {
        let model = try BertModel(config: Self.config, seed: 7)
        let dir = root.appendingPathComponent("base")
        try model.save(to: dir)
        return (dir, model.stateDict())
    }

    /// A fine-tune: the base plus N(0, 0.01) noise on the named tensors (all when nil), plus extra tensors.
    func makeFinetune(_ name: String, base: [String: Tensor], seed: UInt64, only: [String]? = nil, extra: [String: Tensor] = [:]) throws -> (URL, [String: Tensor]) {
        var rng = SeededRNG(seed: seed)
        var t = base
        for (k, v) in base where only?.contains(k) ?? true {
            let noise = Tensor.randomNormal(v.shape, std: 0.01, using: &rng)
            t[k] = Tensor(shape: v.shape, data: zip(v.scalars, noise.scalars).map { $0 + $1 })
        }
        let dir = root.appendingPathComponent(name)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        var all = t
        for (k, v) in extra { all[k] = v }
        try SafeTensorsSaving.write(all, to: dir.appendingPathComponent("model.safetensors"))
        try Self.config.write(to: dir.appendingPathComponent("config.json"))
        return (dir, t)
    }

    func load(_ dir: URL) throws -> [String: Tensor] {
        let f = try SafeTensorsFile(path: dir.appendingPathComponent("model.safetensors").path)
        return try Dictionary(uniqueKeysWithValues: f.names.map { ($0, try f.tensor($0)) })
    }

    func yaml(_ text: String) throws -> URL {
        let u = root.appendingPathComponent("merge-\(UUID().uuidString).yaml")
        try text.write(to: u, atomically: true, encoding: .utf8)
        return u
    }

    func testTaskArithmeticStreamedMatchesBasePlusSumAndLoads() throws {
        let (b, base) = try makeBase()
        let (f1, t1) = try makeFinetune("ft1", base: base, seed: 1)
        let (f2, t2) = try makeFinetune("ft2", base: base, seed: 2)
        let (f3, t3) = try makeFinetune("ft3", base: base, seed: 3)
        let out = root.appendingPathComponent("out")
        let cfg = try yaml("""
        merge_method: task_arithmetic
        base_model: \(b.path)
        models:
          - model: \(f1.path)
            parameters: {weight: 1.0}
          - model: \(f2.path)
            parameters: {weight: 0.5}
          - model: \(f3.path)
        parameters:
          lambda: 0.8
        """)
        let ledger = BufferLedger()
        let report = try Merge.run(try MergeConfig.load(cfg), out: out, ledger: ledger)
        let merged = try load(out)
        for (k, v) in base {
            let exp = (0..<v.count).map { i in v[flat: i] + 0.8 * ((t1[k]![flat: i] - v[flat: i]) + 0.5 * (t2[k]![flat: i] - v[flat: i]) + (t3[k]![flat: i] - v[flat: i])) }
            let got = merged[k]!.scalars
            for i in 0..<exp.count { XCTAssertEqual(got[i], exp[i], accuracy: 1e-6, "\(k)[\(i)]") }
        }
        // Streaming: base, accumulator and one model's tensor at a time, whatever the model count.
        XCTAssertEqual(ledger.peak, 3)
        XCTAssertLessThanOrEqual(report.peakBufferBytes, 3 * report.largestTensorBytes)
        XCTAssertEqual(ledger.live, 0)
        // The output is a loadable model directory.
        XCTAssertNoThrow(try BertModel.load(directory: out))
    }

    func testTiesHoldsOneTensorPerModelAndBF16Output() throws {
        let (b, base) = try makeBase()
        let (f1, _) = try makeFinetune("ft1", base: base, seed: 1)
        let (f2, _) = try makeFinetune("ft2", base: base, seed: 2)
        let out = root.appendingPathComponent("out")
        let ledger = BufferLedger()
        _ = try Merge.run(try MergeConfig.parse("""
        merge_method: ties
        base_model: \(b.path)
        models: [\(f1.path), \(f2.path)]
        parameters: {density: 0.5}
        dtype: bfloat16
        """), out: out, ledger: ledger)
        XCTAssertEqual(ledger.peak, 4)  // base, output, two trimmed task vectors
        let f = try SafeTensorsFile(path: out.appendingPathComponent("model.safetensors").path)
        XCTAssertEqual(try f.info("encoder.layer.0.attention.self.query.weight").dtype, .bf16)
        XCTAssertNoThrow(try BertModel.load(directory: out))
    }

    func testChunkedLargeTensorsMatchWholeTensorMerges() throws {
        // word_embeddings has 20000·16 = 320000 entries > TaskVectorMerge.chunkElements: merged in chunks.
        let cfg = BertConfig(hiddenSize: 16, numHiddenLayers: 1, numAttentionHeads: 2, intermediateSize: 16, vocabSize: 20000, maxPositionEmbeddings: 12)
        let model = try BertModel(config: cfg, seed: 3)
        let b = root.appendingPathComponent("bigbase")
        try model.save(to: b)
        let base = model.stateDict()
        var dirs: [URL] = [], fts: [[Float]] = []
        let k = "embeddings.word_embeddings.weight"
        XCTAssertGreaterThan(base[k]!.count, TaskVectorMerge.chunkElements)
        for seed in [1, 2] as [UInt64] {
            var rng = SeededRNG(seed: seed)
            var t = base
            t[k] = Tensor(shape: base[k]!.shape, data: base[k]!.scalars.map { $0 + rng.nextNormal() * 0.01 })
            let d = root.appendingPathComponent("big\(seed)")
            try FileManager.default.createDirectory(at: d, withIntermediateDirectories: true)
            try SafeTensorsSaving.write(t, to: d.appendingPathComponent("model.safetensors"))
            try cfg.write(to: d.appendingPathComponent("config.json"))
            dirs.append(d); fts.append(t[k]!.scalars)
        }
        for (method, extra) in [("ties", ""), ("dare_ties", ""), ("magnitude_prune", ""), ("ties", "\n  density_scope: global")] {
            let c = try MergeConfig.parse("""
            merge_method: \(method)
            base_model: \(b.path)
            models: [\(dirs[0].path), \(dirs[1].path)]
            parameters:
              density: 0.3
              seed: 5\(extra)
            """)
            let out = root.appendingPathComponent("bigout-\(method)\(extra.isEmpty ? "" : "-global")")
            _ = try Merge.run(c, out: out)
            let got = try load(out)[k]!.scalars
            if extra.isEmpty {
                let want = TensorMerger(c).merge(name: k, base: base[k]!.scalars, models: fts)
                XCTAssertEqual(got, want, method)
            } else {
                // Global scope: exactly ⌊0.3·N⌋ entries of each task vector survive over the whole model.
                XCTAssertNotEqual(got, base[k]!.scalars)
            }
        }
    }

    func testLinesScalesEachLayersTaskVector() throws {
        let (b, base) = try makeBase()
        let (f1, t1) = try makeFinetune("ft1", base: base, seed: 1)
        let out = root.appendingPathComponent("out")
        _ = try Merge.run(try MergeConfig.parse("""
        merge_method: lines
        base_model: \(b.path)
        models: [\(f1.path)]
        parameters: {alpha: 0.2, beta: 0.6}
        """), out: out)
        let merged = try load(out)
        // 3 layers: scales 0.2, 0.5, 0.8; embeddings 0.2.
        for (k, s) in [("encoder.layer.0.output.dense.weight", 0.2), ("encoder.layer.1.output.dense.weight", 0.5),
                       ("encoder.layer.2.output.dense.weight", 0.8), ("embeddings.word_embeddings.weight", 0.2)] as [(String, Float)] {
            for i in 0..<base[k]!.count {
                XCTAssertEqual(merged[k]![flat: i], base[k]![flat: i] + s * (t1[k]![flat: i] - base[k]![flat: i]), accuracy: 1e-6, k)
            }
        }
    }

    func testTransferMovesTheUpdateToTheNewBase() throws {
        let (oldDir, old) = try makeBase()
        let (newDir, new) = try makeFinetune("newbase", base: old, seed: 9)
        let (ftDir, ft) = try makeFinetune("ft", base: old, seed: 4, only: ["encoder.layer.1.intermediate.dense.weight"])
        let out = root.appendingPathComponent("out")
        _ = try Merge.run(try MergeConfig.parse("""
        merge_method: transfer
        base_model: \(newDir.path)
        old_base_model: \(oldDir.path)
        models: [\(ftDir.path)]
        """), out: out)
        let merged = try load(out)
        for (k, v) in new {
            for i in 0..<v.count { XCTAssertEqual(merged[k]![flat: i], v[flat: i] + (ft[k]![flat: i] - old[k]![flat: i]), accuracy: 1e-6) }
        }
    }

    func testHeadsAreKeptPerTaskAndBertPrefixIsAligned() throws {
        let (b, base) = try makeBase()
        var rng = SeededRNG(seed: 5)
        let head1 = Tensor.randomNormal([3, 8], using: &rng), head2 = Tensor.randomNormal([6, 8], using: &rng)
        let (f1, _) = try makeFinetune("ft1", base: base, seed: 1, extra: ["classifier.weight": head1])
        // ft2 carries transformers' task-model prefix on every name.
        let (f2dir, t2) = try makeFinetune("ft2", base: base, seed: 2)
        var prefixed: [String: Tensor] = [:]
        for (k, v) in t2 { prefixed["bert." + k] = v }
        prefixed["classifier.weight"] = head2
        try SafeTensorsSaving.write(prefixed, to: f2dir.appendingPathComponent("model.safetensors"))
        let out = root.appendingPathComponent("out")
        let report = try Merge.run(try MergeConfig.parse("""
        merge_method: task_arithmetic
        base_model: \(b.path)
        models: [\(f1.path), \(f2dir.path)]
        """), out: out)
        XCTAssertEqual(report.keptHeads.sorted(), ["task_0.classifier.weight", "task_1.classifier.weight"])
        let merged = try load(out)
        XCTAssertEqual(merged["task_0.classifier.weight"], head1)
        XCTAssertEqual(merged["task_1.classifier.weight"], head2)
        XCTAssertNotNil(merged["encoder.layer.0.output.dense.weight"])
        XCTAssertNoThrow(try BertModel.load(directory: out))
    }

    /// A Sculpt classifier's separate head files land in `heads/task_<i>/` (what `sculpt eval
    /// --task i` reads); a model without them gets no directory.
    func testRunHeadFilesAreCopiedPerTask() throws {
        let (b, base) = try makeBase()
        let (f0, _) = try makeFinetune("ft0", base: base, seed: 1)
        let (f1, _) = try makeFinetune("ft1", base: base, seed: 2)
        let (f2, _) = try makeFinetune("ft2", base: base, seed: 3)
        var files: [String: Data] = [:]
        for (i, f) in [f0, f2].enumerated() {
            for name in Merge.headFiles {
                let d = Data("\(name) of model \(i)".utf8)
                try d.write(to: f.appendingPathComponent(name))
                files["\(i == 0 ? 0 : 2)/\(name)"] = d
            }
        }
        let out = root.appendingPathComponent("out")
        let report = try Merge.run(try MergeConfig.parse("merge_method: task_arithmetic\nbase_model: \(b.path)\nmodels: [\(f0.path), \(f1.path), \(f2.path)]"), out: out)
        XCTAssertEqual(report.headDirectories, ["heads/task_0", "heads/task_2"])
        let heads = out.appendingPathComponent("heads")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: heads.path).sorted(), ["task_0", "task_2"])
        for (key, data) in files {
            let parts = key.split(separator: "/")
            XCTAssertEqual(try Data(contentsOf: heads.appendingPathComponent("task_\(parts[0])/\(parts[1])")), data, key)
        }
    }

    func testRunDirectoryFinalIsAccepted() throws {
        let (b, base) = try makeBase()
        let (f1, _) = try makeFinetune("ft1", base: base, seed: 1)
        let run = root.appendingPathComponent("run")
        try FileManager.default.createDirectory(at: run, withIntermediateDirectories: true)
        try FileManager.default.moveItem(at: f1, to: run.appendingPathComponent("final"))
        XCTAssertEqual(try ModelDirectory.resolve(run.path, role: "m").lastPathComponent, "final")
        XCTAssertNoThrow(try Merge.run(try MergeConfig.parse("merge_method: ties\nbase_model: \(b.path)\nmodels: [\(run.path)]"), out: root.appendingPathComponent("o")))
    }

    func testSparseDiffApplyAndRevert() throws {
        let (b, base) = try makeBase()
        let (_, ft) = try makeFinetune("ft", base: base, seed: 1)
        let diff = try SparseDiff.select(base: base, finetuned: ft, density: 0.1)
        let diffURL = root.appendingPathComponent("d.safetensors")
        try diff.write(to: diffURL)
        let out = root.appendingPathComponent("applied")
        _ = try Merge.run(try MergeConfig.parse("merge_method: sparse_diff\nbase_model: \(b.path)\nmodels: [\(diffURL.path)]"), out: out)
        let applied = try load(out)
        let expected = try diff.apply(to: base)
        for (k, v) in expected { XCTAssertEqual(applied[k], v, k) }
        let back = root.appendingPathComponent("reverted")
        _ = try Merge.run(try MergeConfig.parse("""
        merge_method: sparse_diff
        base_model: \(out.path)
        models:
          - model: \(diffURL.path)
            parameters: {weight: -1}
        """), out: back)
        let reverted = try load(back)
        let inexact = diff.inexactEntries(base: base, finetuned: ft)
        var differing = 0
        for (k, v) in base { for i in 0..<v.count where reverted[k]![flat: i] != v[flat: i] { differing += 1 } }
        XCTAssertLessThanOrEqual(differing, inexact)
    }

    // MARK: Errors, and nothing written unless the merge completes

    func assertFails(_ config: String, contains: String, out: URL? = nil, file: StaticString = #filePath, line: UInt = #line) {
        let o = out ?? root.appendingPathComponent("never")
        do {
            _ = try Merge.run(try MergeConfig.parse(config, file: "m.yaml"), out: o)
            XCTFail("no error", file: file, line: line)
        } catch {
            let text = "\(error)"
            XCTAssert(text.contains(contains), "\(text) lacks \(contains)", file: file, line: line)
            XCTAssertFalse(text.contains("\n"), "error is not one line: \(text)", file: file, line: line)
        }
        if out == nil { XCTAssertFalse(FileManager.default.fileExists(atPath: o.path), "output written", file: file, line: line) }
        let leftovers = (try? FileManager.default.contentsOfDirectory(atPath: root.path))?.filter { $0.contains(".staging-") } ?? []
        XCTAssertEqual(leftovers, [], file: file, line: line)
    }

    func testErrors() throws {
        let (b, base) = try makeBase()
        let (f1, _) = try makeFinetune("ft1", base: base, seed: 1)
        assertFails("merge_method: ties\nbase_model: \(b.path)\nmodels: [/nonexistent/model]", contains: "/nonexistent/model")
        assertFails("merge_method: slerp\nbase_model: \(b.path)\nmodels: [\(f1.path)]", contains: "unknown method \"slerp\" (known: linear, task_arithmetic, ties")
        assertFails("merge_method: ties\nbase_model: \(b.path)\nmodels:\n  - model: \(f1.path)\n    parameters: {density: 1.5}", contains: "density: 1.5 is outside [0, 1]")
        assertFails("merge_method: ties\nbase_model: \(b.path)\nmodels: [\(f1.path)]\nparameters: {lamda: 1}", contains: "parameters.lamda: unknown parameter")
        assertFails("merge_method: lines\nbase_model: \(b.path)\nmodels: [\(f1.path)]", contains: "needs alpha and beta")
        assertFails("merge_method: ties\nmodels: [\(f1.path)]", contains: "base_model")
        assertFails("merge_method: ties\nbase_model: \(b.path)\nmodels: [\(f1.path)]\ndtype: int8", contains: "dtype")
        // A shared body tensor with another shape.
        var bad = base
        bad["encoder.layer.1.output.dense.weight"] = Tensor.zeros([8, 4])
        let badDir = root.appendingPathComponent("bad")
        try FileManager.default.createDirectory(at: badDir, withIntermediateDirectories: true)
        try SafeTensorsSaving.write(bad, to: badDir.appendingPathComponent("model.safetensors"))
        assertFails("merge_method: task_arithmetic\nbase_model: \(b.path)\nmodels: [\(f1.path), \(badDir.path)]",
                    contains: "encoder.layer.1.output.dense.weight has shape [8, 4], base \(b.path) has [8, 16]")
        // A failure late in the merge (non-finite result in a producer) leaves an existing --out untouched.
        var huge = base
        huge["pooler.dense.weight"] = Tensor(shape: [8, 8], repeating: 3e38)
        let hugeDir = root.appendingPathComponent("huge")
        try FileManager.default.createDirectory(at: hugeDir, withIntermediateDirectories: true)
        try SafeTensorsSaving.write(huge, to: hugeDir.appendingPathComponent("model.safetensors"))
        let existing = root.appendingPathComponent("existing")
        try FileManager.default.createDirectory(at: existing, withIntermediateDirectories: true)
        try Data("old".utf8).write(to: existing.appendingPathComponent("model.safetensors"))
        assertFails("merge_method: task_arithmetic\nbase_model: \(b.path)\nmodels: [\(hugeDir.path), \(hugeDir.path)]",
                    contains: "pooler.dense.weight", out: existing)
        XCTAssertEqual(try Data(contentsOf: existing.appendingPathComponent("model.safetensors")), Data("old".utf8))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: existing.path), ["model.safetensors"])
    }

    // MARK: Analysis

    func testDiffCountsRankAndOverlap() throws {
        let (b, base) = try makeBase()
        // ft1: a rank-1 change to one matrix; ft2: dense noise on the same matrix and one other.
        var t1 = base
        let k = "encoder.layer.1.intermediate.dense.weight"  // [16, 8]
        let u = (0..<16).map { Float($0 + 1) * 0.01 }, v = (0..<8).map { Float($0) * 0.02 - 0.05 }
        t1[k] = Tensor(shape: [16, 8], data: (0..<128).map { base[k]![flat: $0] + u[$0 / 8] * v[$0 % 8] })
        let d1 = root.appendingPathComponent("d1")
        try FileManager.default.createDirectory(at: d1, withIntermediateDirectories: true)
        try SafeTensorsSaving.write(t1, to: d1.appendingPathComponent("model.safetensors"))
        let (d2, _) = try makeFinetune("d2", base: base, seed: 3, only: [k, "pooler.dense.weight"])
        let r = try UpdateAnalysis.diff(base: b.path, finetunes: [d1.path, d2.path])
        let m = r.matrices.first { $0.name == k }!
        XCTAssertEqual(m.changes[0].rank, 1)
        XCTAssertEqual(m.changes[1].rank, 8)
        XCTAssertEqual(m.layer, 1)
        let changed1 = (0..<128).filter { t1[k]![flat: $0] != base[k]![flat: $0] }.count
        XCTAssertEqual(r.changed[0], changed1)
        XCTAssertEqual(r.changed[1], 128 + 64)
        XCTAssertEqual(m.overlap, changed1)  // ft2 changed every entry of k
        XCTAssertEqual(r.expectedOverlap!, Double(changed1) * Double(192) / Double(r.parameters), accuracy: 1e-9)
        XCTAssertEqual(r.overlapRatio!, Double(changed1) / r.expectedOverlap!, accuracy: 1e-9)
        XCTAssertEqual(r.layers.first { $0.name == "layer.1" }!.changes[0].changed, changed1)
        // Tolerance: nothing in ft1 exceeds 1.
        XCTAssertEqual(try UpdateAnalysis.diff(base: b.path, finetunes: [d1.path], tolerance: 1).beyond, [0])
    }
}

final class LoRAMergeTests: XCTestCase {
    func testConcatIsExactAndSVDTruncates() throws {
        let root = SharedData.temporaryDirectory("sculpt-lora-merge")
        defer { try? FileManager.default.removeItem(at: root) }
        var rng = SeededRNG(seed: 11)
        let module = "encoder.layer.0.attention.self.query"
        let (inF, outF) = (6, 5)
        func adapter(_ name: String, r: Int, alpha: Double) throws -> (URL, [Float], [Float]) {
            let a = (0..<(r * inF)).map { _ in rng.nextNormal() }, b = (0..<(outF * r)).map { _ in rng.nextNormal() }
            let dir = root.appendingPathComponent(name)
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            var w = SafeTensorsWriter()
            try w.add(name: PEFTLoRAConfig.keyPrefix + module + ".lora_A.weight", floats: a, shape: [r, inF])
            try w.add(name: PEFTLoRAConfig.keyPrefix + module + ".lora_B.weight", floats: b, shape: [outF, r])
            try w.write(to: dir.appendingPathComponent(PEFTLoRAConfig.weightsFileName))
            try PEFTLoRAConfig(r: r, loraAlpha: alpha, targetModules: .names(["query"])).write(to: dir.appendingPathComponent(PEFTLoRAConfig.configFileName))
            return (dir, a, b)
        }
        let (d1, a1, b1) = try adapter("a1", r: 2, alpha: 4)   // scaling 2
        let (d2, a2, b2) = try adapter("a2", r: 3, alpha: 1.5) // scaling 0.5
        // ΔW = 2·1·B1A1 + 0.5·3·B2A2 (weights 1 and 3)
        var expected = [Double](repeating: 0, count: outF * inF)
        for i in 0..<outF { for j in 0..<inF {
            for t in 0..<2 { expected[i * inF + j] += 2 * Double(b1[i * 2 + t]) * Double(a1[t * inF + j]) }
            for t in 0..<3 { expected[i * inF + j] += 1.5 * Double(b2[i * 3 + t]) * Double(a2[t * inF + j]) }
        } }
        func delta(_ dir: URL) throws -> (Int, [Double]) {
            let cfg = try PEFTLoRAConfig.load(from: dir.appendingPathComponent(PEFTLoRAConfig.configFileName))
            let f = try SafeTensorsFile(path: dir.appendingPathComponent(PEFTLoRAConfig.weightsFileName).path)
            let a = try f.floats(PEFTLoRAConfig.keyPrefix + module + ".lora_A.weight"), b = try f.floats(PEFTLoRAConfig.keyPrefix + module + ".lora_B.weight")
            let r = cfg.r, s = cfg.loraAlpha / Double(r)
            var d = [Double](repeating: 0, count: outF * inF)
            for i in 0..<outF { for j in 0..<inF { for t in 0..<r { d[i * inF + j] += s * Double(b[i * r + t]) * Double(a[t * inF + j]) } } }
            return (r, d)
        }
        for (method, rank, tol) in [("lora_concat", 5, 1e-5), ("lora_svd", 5, 1e-4)] {
            let out = root.appendingPathComponent(method)
            _ = try Merge.run(try MergeConfig.parse("""
            merge_method: \(method)
            models:
              - model: \(d1.path)
              - model: \(d2.path)
                parameters: {weight: 3}
            parameters: {rank: 5}
            """), out: out)
            let (r, d) = try delta(out)
            XCTAssertEqual(r, rank)
            for (x, y) in zip(d, expected) { XCTAssertEqual(x, y, accuracy: tol, method) }
        }
        // Rank 2: error² = σ₃² + σ₄² + σ₅² of ΔW.
        let out = root.appendingPathComponent("svd2")
        _ = try Merge.run(try MergeConfig.parse("merge_method: lora_svd\nmodels: [\(d1.path), \(d2.path)]\nparameters: {rank: 2, weight: 1}"), out: out)
        var exp1 = [Double](repeating: 0, count: outF * inF)
        for i in 0..<outF { for j in 0..<inF {
            for t in 0..<2 { exp1[i * inF + j] += 2 * Double(b1[i * 2 + t]) * Double(a1[t * inF + j]) }
            for t in 0..<3 { exp1[i * inF + j] += 0.5 * Double(b2[i * 3 + t]) * Double(a2[t * inF + j]) }
        } }
        let s = SVD.decompose(exp1, rows: outF, cols: inF).s
        let (_, d) = try delta(out)
        let err = zip(d, exp1).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }
        XCTAssertEqual(err, s[2...].reduce(0) { $0 + $1 * $1 }, accuracy: 1e-4)
    }
}
