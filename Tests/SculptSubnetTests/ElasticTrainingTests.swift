import XCTest
import SculptCore
import SculptIO
import SculptModels
import SculptTune
import SculptTestSupport
@testable import SculptSubnet

/// Elastic training end to end on tiny models, then listing and extraction from the run.
final class ElasticTrainingTests: XCTestCase {
    static func idx(in dir: URL, count: Int = 160, classes: Int = 4, side: Int = 8) throws -> URL {
        try TinyImages.write(in: dir, count: count, classes: classes, side: side)
    }

    /// A tiny BERT (`layers` layers) fine-tuned on `examples` cats/money texts into `dir/run`.
    static func tinyBertConfig(in dir: URL, layers: Int, examples: Int) throws -> TrainConfig {
        var c = TrainConfig()
        c.model = try TinyBert.write(in: dir, layers: layers).path
        c.data = try TinyBert.catsAndMoney(in: dir, count: examples).path
        c.out = dir.appendingPathComponent("run").path
        c.epochs = 1; c.batchSize = 4; c.lr = 5e-3; c.maxLength = 16; c.threads = 1; c.valFraction = 0.25
        return c
    }

    /// A plain tiny-CNN run (`method`, images written into `dir`) at `dir/name`.
    static func tinyCNNConfig(in dir: URL, name: String = "run", method: String) throws -> TrainConfig {
        var c = cnnConfig(data: try idx(in: dir), out: dir.appendingPathComponent(name), schedule: "sandwich")
        c.method = method
        return c
    }

    static func cnnConfig(data: URL, out: URL, schedule: String) -> TrainConfig {
        var c = TrainConfig()
        c.model = "cnn"; c.method = "elastic"; c.elasticSchedule = schedule
        c.data = data.path; c.out = out.path
        c.width = 4; c.depth = 2; c.epochs = 2; c.batchSize = 16; c.lr = 1e-2; c.valFraction = 0.25
        c.logEvery = 1; c.threads = 1; c.checkpointEvery = 3; c.randomSubnets = 1
        return c
    }

    func testElasticCNNSchedulesTrainListAndExtract() throws {
        let dir = temporaryDirectory()
        let data = try Self.idx(in: dir)
        for schedule in ["sandwich", "sorted", "progressive"] {
            let out = dir.appendingPathComponent(schedule)
            let r = try SubnetTraining.run(Self.cnnConfig(data: data, out: out, schedule: schedule))
            XCTAssertEqual(r.outcome, .completed)
            let listing = try RunSubnets.list(out)
            XCTAssertEqual(listing.kind, "cnn")
            XCTAssertEqual(listing.training, "elastic/\(schedule)")
            XCTAssertEqual(listing.subnets.map(\.name), ["min", "max"])
            XCTAssertLessThan(listing.subnets[0].macs, listing.subnets[1].macs)
            for spec in ["min", "max", #"{"blocks": [1, 2], "channels": [3, 6]}"#] {
                let target = dir.appendingPathComponent("\(schedule)-extract-\(spec.count)")
                let e = try RunSubnets.extract(run: out, subnet: spec, out: target)
                XCTAssertLessThanOrEqual(e.maxAbsDifference, 1e-4)
                // sculpt eval accepts the extracted directory.
                let acc = try Evaluation.evaluate(modelOrRun: target, data: data).accuracy
                XCTAssertGreaterThanOrEqual(acc, 0)
                XCTAssertGreaterThan(try RunSubnets.imageLatency(directory: target, batch: 4, threads: 1, minimumSeconds: 0.01), 0)
            }
            XCTAssertThrowsError(try RunSubnets.extract(run: out, subnet: #"{"blocks": [1, 2], "channels": [3, 7]}"#, out: dir.appendingPathComponent("bad"))) {
                XCTAssertTrue("\($0)".contains("channels[1]"), "\($0)")
            }
        }
        // The largest sub-network learnt the easy task.
        XCTAssertGreaterThan(try Evaluation.evaluate(modelOrRun: dir.appendingPathComponent("sandwich"), data: data).accuracy, 0.6)
    }

    func testElasticRunResumesExactly() throws {
        let dir = temporaryDirectory()
        let data = try Self.idx(in: dir)
        let a = dir.appendingPathComponent("a"), b = dir.appendingPathComponent("b")
        _ = try SubnetTraining.run(Self.cnnConfig(data: data, out: a, schedule: "sandwich"))
        let killed = try SubnetTraining.run(Self.cnnConfig(data: data, out: b, schedule: "sandwich"), hooks: TrainHooks(abandonAfterStep: 5))
        XCTAssertEqual(killed.outcome, .abandoned)
        var c = TrainConfig(); c.out = b.path
        _ = try SubnetTraining.run(c, resume: true)
        XCTAssertEqual(try Data(contentsOf: a.appendingPathComponent("final/model.safetensors")),
                       try Data(contentsOf: b.appendingPathComponent("final/model.safetensors")))
    }

    func testElasticWidthsNarrowTheSpaceAndDistillFromAFixedTeacher() throws {
        let dir = temporaryDirectory()
        let data = try Self.idx(in: dir)
        var teacherConfig = Self.cnnConfig(data: data, out: dir.appendingPathComponent("teacher"), schedule: "sandwich")
        teacherConfig.method = "full"
        _ = try SubnetTraining.run(teacherConfig)
        func elastic(_ name: String, teacher: URL?) throws -> URL {
            var c = Self.cnnConfig(data: data, out: dir.appendingPathComponent(name), schedule: "sandwich")
            c.elasticWidths = "0.5, 1"; c.distillFrom = teacher?.path
            return try SubnetTraining.run(c).runDirectory
        }
        let taught = try elastic("taught", teacher: dir.appendingPathComponent("teacher"))
        let plain = try elastic("plain", teacher: nil)
        // Only half and full widths (stage channels 4 and 8): the run's listing, extraction and search use them.
        let listing = try RunSubnets.list(taught)
        XCTAssertEqual(try JSONDecoder().decode(CNNSubnet.self, from: Data(try XCTUnwrap(listing.subnets.first { $0.name == "min" }).subnet.utf8)).channels, [2, 4])
        let net = try loadSuperNetwork(run: taught, loadValidation: false).network
        XCTAssertEqual(net.searchSpace.dimensions.map(\.choices), [[1, 2], [1, 2], [2, 4], [4, 8]])
        XCTAssertThrowsError(try RunSubnets.extract(run: taught, subnet: #"{"blocks": [2, 2], "channels": [1, 8]}"#, out: dir.appendingPathComponent("bad"))) {
            XCTAssertTrue("\($0)".contains("channels[0]"), "\($0)")
        }
        // The teacher's soft outputs, not the largest sub-network's, steered the smaller ones.
        XCTAssertNotEqual(try Data(contentsOf: taught.appendingPathComponent("final/model.safetensors")),
                          try Data(contentsOf: plain.appendingPathComponent("final/model.safetensors")))
        // A teacher for other classes is refused, naming the option.
        let other = try TinyImages.write(in: dir, count: 60, classes: 3, side: 8, prefix: "three")
        var otherTeacher = Self.cnnConfig(data: other, out: dir.appendingPathComponent("teacher3"), schedule: "sandwich")
        otherTeacher.method = "full"; otherTeacher.epochs = 1
        _ = try SubnetTraining.run(otherTeacher)
        XCTAssertThrowsError(try elastic("mismatch", teacher: dir.appendingPathComponent("teacher3"))) {
            XCTAssertTrue("\($0)".contains("--distill-from") && "\($0)".contains("labels"), "\($0)")
        }
        // Bad values name their option.
        for (widths, method, distill) in [("0.5,0.75", "elastic", nil), ("0,1", "elastic", nil), ("a,1", "elastic", nil), ("1", "full", "x")] as [(String, String, String?)] {
            var c = Self.cnnConfig(data: data, out: dir.appendingPathComponent("never"), schedule: "sandwich")
            c.elasticWidths = widths; c.method = method; c.distillFrom = distill
            XCTAssertThrowsError(try c.validate()) {
                XCTAssertTrue("\($0)".contains(distill == nil ? "--elastic-widths" : "--distill-from"), "\($0)")
            }
        }
    }

    func testElasticBertFineTuningAndHFCompatibleExtraction() throws {
        let dir = temporaryDirectory()
        var base = try Self.tinyBertConfig(in: dir, layers: 3, examples: 24)
        let train = URL(fileURLWithPath: base.data)
        base.method = "elastic"
        for importance in ["taylor", "magnitude"] {
            var c = base
            c.out = dir.appendingPathComponent("run-\(importance)").path; c.importance = importance
            let r = try SubnetTraining.run(c)
            XCTAssertEqual(r.outcome, .completed)
            let listing = try RunSubnets.list(r.runDirectory)
            XCTAssertEqual(listing.kind, "bert")
            let sub = #"{"layers": 2, "heads": [4, 2], "ffn": [16, 24]}"#
            let plain = try RunSubnets.extract(run: r.runDirectory, subnet: sub, out: dir.appendingPathComponent("x-\(importance)"))
            XCTAssertLessThanOrEqual(plain.maxAbsDifference, 1e-4)
            let hf = try RunSubnets.extract(run: r.runDirectory, subnet: sub, out: dir.appendingPathComponent("hf-\(importance)"), hfCompatible: true)
            XCTAssertLessThanOrEqual(hf.maxAbsDifference, 1e-4)
            // The zero-padded directory has a standard config and gives the same predictions.
            let hfConfig = try BertConfig.load(from: dir.appendingPathComponent("hf-\(importance)/config.json"))
            XCTAssertNil(hfConfig.layerNumHeads); XCTAssertNil(hfConfig.layerIntermediateSizes)
            XCTAssertEqual(hfConfig.numHiddenLayers, 2); XCTAssertEqual(hfConfig.intermediateSize, 24)
            let e1 = try Evaluation.evaluate(modelOrRun: dir.appendingPathComponent("x-\(importance)"), data: train)
            let e2 = try Evaluation.evaluate(modelOrRun: dir.appendingPathComponent("hf-\(importance)"), data: train)
            XCTAssertEqual(e1.accuracy, e2.accuracy)
            XCTAssertEqual(e1.loss, e2.loss, accuracy: 1e-4)
        }
    }
}

final class GatesTrainingTests: XCTestCase {
    func testGatesScheduleHoldsThenFallsCubicallyToTheTarget() {
        func kept(_ step: Int) -> Double { GatesStrategy.scheduledKeptFraction(step: step, totalSteps: 100, start: 0.2, end: 0.6, target: 0.4) }
        XCTAssertEqual(kept(0), 1); XCTAssertEqual(kept(20), 1)
        XCTAssertEqual(kept(40), 0.4 + 0.6 / 8, accuracy: 1e-12)   // half-way: (1 − ½)³ of the way left
        XCTAssertEqual(kept(60), 0.4); XCTAssertEqual(kept(100), 0.4)
        for s in 20..<60 { XCTAssertGreaterThan(kept(s), kept(s + 1)) }
        // The first half of the window closes more than the second (fast, then gently).
        XCTAssertGreaterThan(kept(20) - kept(40), kept(40) - kept(60))
    }

    func testGatesReachTheTargetAndFinalIsTheExtractedModel() throws {
        let dir = temporaryDirectory()
        var c = try ElasticTrainingTests.tinyBertConfig(in: dir, layers: 2, examples: 48)
        let train = URL(fileURLWithPath: c.data)
        c.method = "gates"; c.targetMacs = 0.5; c.epochs = 6
        let r = try SubnetTraining.run(c)
        XCTAssertEqual(r.outcome, .completed)
        let summary = try JSONDecoder().decode(GatesSummary.self, from: Data(contentsOf: r.runDirectory.appendingPathComponent("gates.json")))
        // One pass reaches the target from above and never undershoots it.
        XCTAssertGreaterThanOrEqual(summary.keptFraction, 0.5, "kept \(summary.keptFraction)")
        XCTAssertLessThanOrEqual(summary.keptFraction, 0.65, "kept \(summary.keptFraction)")
        XCTAssertLessThanOrEqual(summary.extractionMaxAbsDifference, 1e-4)
        // final/ is the extracted model: no gate parameters, the gated sizes.
        let (final, _) = try BertModel.load(directory: RunDirectory(r.runDirectory).final)
        XCTAssertFalse(final.namedParameters().contains { $0.name.contains("gate") })
        let listing = try RunSubnets.list(r.runDirectory)
        let gated = try XCTUnwrap(listing.subnets.first { $0.name == "gated" })
        XCTAssertEqual(try JSONDecoder().decode(BertSubnet.self, from: Data(gated.subnet.utf8)).heads, final.encoder.layers.map { $0.attention.selfAttention.heads })
        XCTAssertNoThrow(try Evaluation.evaluate(modelOrRun: r.runDirectory, data: train))
        let e = try RunSubnets.extract(run: r.runDirectory, subnet: "gated", out: dir.appendingPathComponent("gated"), hfCompatible: true)
        XCTAssertLessThanOrEqual(e.maxAbsDifference, 1e-4)
    }
}

final class CNNGatesTrainingTests: XCTestCase {
    func testCNNChannelGatesReachTheTargetAndFinalIsTheExtractedModel() throws {
        let dir = temporaryDirectory()
        var c = try ElasticTrainingTests.tinyCNNConfig(in: dir, method: "gates")
        let data = URL(fileURLWithPath: c.data)
        c.targetMacs = 0.4; c.width = 8; c.depth = 2; c.epochs = 15
        let r = try SubnetTraining.run(c)
        XCTAssertEqual(r.outcome, .completed)
        let summary = try JSONDecoder().decode(GatesSummary.self, from: Data(contentsOf: r.runDirectory.appendingPathComponent("gates.json")))
        XCTAssertEqual(summary.keptFraction, 0.4, accuracy: 0.15, "kept \(summary.keptFraction)")
        XCTAssertGreaterThanOrEqual(summary.keptFraction, 0.4)
        XCTAssertLessThanOrEqual(summary.extractionMaxAbsDifference, 1e-4)
        // final/ is the dense extracted CNN: the gated channels, no gate parameters.
        let final = try XCTUnwrap(ClassifierStore.load(r.runDirectory).model as? ImageCNN)
        XCTAssertFalse(final.namedParameters().contains { $0.name.contains("gate") })
        let gated = try JSONDecoder().decode(CNNSubnet.self, from: Data(summary.subnet.utf8))
        XCTAssertEqual(final.stageChannels, gated.channels)
        XCTAssertTrue(gated.channels[0] < 8 || gated.channels[1] < 16, gated.json)
        let listing = try RunSubnets.list(r.runDirectory)
        XCTAssertEqual(try XCTUnwrap(listing.subnets.first { $0.name == "gated" }).subnet, gated.json)
        let e = try RunSubnets.extract(run: r.runDirectory, subnet: "gated", out: dir.appendingPathComponent("gated"))
        XCTAssertLessThanOrEqual(e.maxAbsDifference, 1e-4)
        // The extracted model is what the run reports, and it learnt the easy task.
        let acc = try Evaluation.evaluate(modelOrRun: dir.appendingPathComponent("gated"), data: data).accuracy
        XCTAssertGreaterThan(acc, 0.6)
        XCTAssertEqual(try Evaluation.evaluate(modelOrRun: r.runDirectory, data: data).accuracy, acc)
    }

    func testGatesRefuseAnMLP() throws {
        let dir = temporaryDirectory()
        var c = ElasticTrainingTests.cnnConfig(data: try ElasticTrainingTests.idx(in: dir), out: dir.appendingPathComponent("run"), schedule: "sandwich")
        c.model = "mlp"; c.method = "gates"; c.targetMacs = 0.5
        XCTAssertThrowsError(try SubnetTraining.run(c)) { XCTAssertTrue("\($0)".contains("mlp"), "\($0)") }
    }
}

final class PruningTests: XCTestCase {
    func testMagnitudeMasksAreExactGlobalAndPerLayer() {
        let a = Variable(Tensor(shape: [2, 2], data: [0.1, -0.5, 0.3, 2])), b = Variable(Tensor(shape: [1, 4], data: [-0.05, 1, 0.2, -0.01]))
        let g = Pruning.magnitudeMasks([("a", a), ("b", b)], sparsity: 0.5, global: true)
        XCTAssertEqual(g["a"]!, Tensor(shape: [2, 2], data: [0, 1, 1, 1]))
        XCTAssertEqual(g["b"]!, Tensor(shape: [1, 4], data: [0, 1, 0, 0]))
        let l = Pruning.magnitudeMasks([("a", a), ("b", b)], sparsity: 0.5, global: false)
        XCTAssertEqual(l["a"]!, Tensor(shape: [2, 2], data: [0, 1, 0, 1]))
        XCTAssertEqual(l["b"]!, Tensor(shape: [1, 4], data: [0, 1, 1, 0]))
    }

    func testPruneRunMagnitudeAndStructured() throws {
        let dir = temporaryDirectory()
        var c = try ElasticTrainingTests.tinyCNNConfig(in: dir, method: "full")
        let data = URL(fileURLWithPath: c.data)
        c.width = 8; c.depth = 1
        _ = try Trainer.run(c)
        let run = dir.appendingPathComponent("run")
        let m = try Pruning.run(run: run, method: "magnitude", sparsity: 0.6, scope: "layer")
        XCTAssertEqual(m.achievedSparsity, 0.6, accuracy: 0.01)
        // Saved weights hold exact (+0) zeros where the saved masks are 0.
        let saved = try SafeTensorsFile(url: URL(fileURLWithPath: m.directory).appendingPathComponent("model.safetensors"))
        let masks = try SafeTensorsFile(url: URL(fileURLWithPath: m.directory).appendingPathComponent("masks.safetensors"))
        XCTAssertFalse(masks.names.isEmpty)
        for n in masks.names {
            let w = try saved.tensor(n), k = try masks.tensor(n)
            for i in 0..<w.count where k[flat: i] == 0 { XCTAssertEqual(w[flat: i].bitPattern, 0) }
        }
        XCTAssertNoThrow(try Evaluation.evaluate(modelOrRun: URL(fileURLWithPath: m.directory), data: data))
        let s = try Pruning.run(run: run, method: "structured", sparsity: 0.5)
        XCTAssertGreaterThan(s.achievedSparsity, 0.5)
        let pruned = try ClassifierStore.load(URL(fileURLWithPath: s.directory)).model as! ImageCNN
        XCTAssertEqual(pruned.stageChannels, [4, 8])
        // A plain run (no subnets.json) offers the standard space over its leading slices.
        let listing = try RunSubnets.list(run)
        XCTAssertEqual(listing.training, "none")
        XCTAssertEqual(listing.subnets.map(\.name), ["min", "max"])
        let e = try RunSubnets.extract(run: run, subnet: #"{"blocks": 1, "channels": [4, 8]}"#, out: dir.appendingPathComponent("plain-extract"))
        XCTAssertLessThanOrEqual(e.maxAbsDifference, 1e-4)
        XCTAssertThrowsError(try Pruning.run(run: run, method: "lottery", sparsity: 0.5)) { XCTAssertTrue("\($0)".contains("--method"), "\($0)") }
    }

    func testIMPScheduleRemovesTwentyPercentOfTheRemainingPerRound() {
        let s = Pruning.impSchedule(sparsity: 0.5, rounds: nil)
        XCTAssertEqual(s.count, 4)
        for (a, b) in zip(s, [0.2, 0.36, 0.488, 0.5]) { XCTAssertEqual(a, b, accuracy: 1e-12) }
        let two = Pruning.impSchedule(sparsity: 0.36, rounds: nil)
        XCTAssertEqual(two.count, 2); XCTAssertEqual(two[0], 0.2, accuracy: 1e-12); XCTAssertEqual(two[1], 0.36)
        XCTAssertEqual(Pruning.impSchedule(sparsity: 0.1, rounds: nil), [0.1])
        let g = Pruning.impSchedule(sparsity: 0.75, rounds: 2)
        XCTAssertEqual(g[0], 0.5, accuracy: 1e-12); XCTAssertEqual(g[1], 0.75)
    }

    /// Masks already pruned are pruned first: a later, sparser mask never revives an entry.
    func testMagnitudeMasksNestWithAPreviousMask() {
        let a = Variable(Tensor(shape: [1, 4], data: [0.1, 5, 3, 4]))
        let previous = ["a": Tensor(shape: [1, 4], data: [1, 0, 1, 1])]
        XCTAssertEqual(Pruning.magnitudeMasks([("a", a)], sparsity: 0.5, global: true, previous: previous)["a"]!,
                       Tensor(shape: [1, 4], data: [0, 0, 1, 1]))
    }

    func testIterativeMagnitudePruningWithRewinding() throws {
        let dir = temporaryDirectory()
        var c = try ElasticTrainingTests.tinyCNNConfig(in: dir, method: "full")
        let data = URL(fileURLWithPath: c.data)
        c.width = 4; c.depth = 1; c.weightDecay = 0.1   // decay must not move pruned weights
        c.checkpointEvery = 0
        let dense = try Trainer.run(c)
        let run = dir.appendingPathComponent("run")
        let k = 3
        let out = dir.appendingPathComponent("imp")
        let r = try Pruning.run(run: run, method: "imp", sparsity: 0.5, out: out, imp: IMPOptions(rewindStep: k))
        let rounds = try XCTUnwrap(r.rounds)
        XCTAssertEqual(rounds.map(\.round), [0, 1, 2, 3, 4])
        for (round, target) in zip(rounds.dropFirst(), [0.2, 0.36, 0.488, 0.5]) { XCTAssertEqual(round.sparsity, target, accuracy: 0.01) }
        XCTAssertEqual(r.achievedSparsity, 0.5, accuracy: 0.01)
        XCTAssertEqual(rounds[0].accuracy, dense.validation?.accuracy)
        XCTAssertNotNil(rounds.last!.accuracy)

        // The rewind weights are the run's own weights after k steps: a run of the same recipe
        // stopped with a checkpoint at step k holds the same tensors.
        var probe = c
        probe.out = dir.appendingPathComponent("probe").path
        probe.checkpointEvery = k
        _ = try Trainer.run(probe, hooks: TrainHooks(abandonAfterStep: k))
        let checkpoint = try SafeTensorsFile(url: RunDirectory(dir.appendingPathComponent("probe")).lastCheckpoint)
        let rewind = try SafeTensorsFile(url: out.appendingPathComponent("rewind.safetensors"))
        XCTAssertFalse(rewind.names.isEmpty)
        for n in rewind.names { XCTAssertEqual(try rewind.tensor(n), try checkpoint.tensor("model." + n), n) }

        var previous: [String: Tensor]? = nil
        for i in 1...4 {
            let roundDir = out.appendingPathComponent("round-\(i)")
            let masks = try SafeTensorsFile(url: roundDir.appendingPathComponent("masks.safetensors"))
            let start = try SafeTensorsFile(url: roundDir.appendingPathComponent("start/model.safetensors"))
            let trained = try SafeTensorsFile(url: URL(fileURLWithPath: rounds[i].directory).appendingPathComponent("model.safetensors"))
            XCTAssertTrue(masks.names.contains("stem.0.weight") && !masks.names.contains { $0.hasPrefix("classifier.") })
            var current: [String: Tensor] = [:]
            var moved = 0
            for n in masks.names {
                let m = try masks.tensor(n), s = try start.tensor(n), w = try trained.tensor(n), rw = try rewind.tensor(n)
                current[n] = m
                for j in 0..<m.count {
                    if m[flat: j] == 0 {
                        // Pruned: exactly +0 at the start and after training with weight decay.
                        XCTAssertEqual(s[flat: j].bitPattern, 0); XCTAssertEqual(w[flat: j].bitPattern, 0)
                    } else {
                        // Kept: rewound to the step-k value, then trained.
                        XCTAssertEqual(s[flat: j], rw[flat: j])
                        if w[flat: j] != s[flat: j] { moved += 1 }
                    }
                    // Nested: nothing pruned earlier comes back.
                    if let p = previous?[n], p[flat: j] == 0 { XCTAssertEqual(m[flat: j], 0, "\(n)[\(j)] revived in round \(i)") }
                }
            }
            XCTAssertGreaterThan(moved, 0, "round \(i) trained nothing")
            previous = current
        }
        let last = try SafeTensorsFile(url: out.appendingPathComponent("masks.safetensors"))
        for n in last.names { XCTAssertEqual(try last.tensor(n), previous![n]) }
        XCTAssertNoThrow(try Evaluation.evaluate(modelOrRun: URL(fileURLWithPath: r.directory), data: data))
        // Bad input is refused naming the flag.
        XCTAssertThrowsError(try Pruning.run(run: run, method: "imp", sparsity: 0.5, out: dir.appendingPathComponent("x"), imp: IMPOptions(rewindStep: 999))) {
            XCTAssertTrue("\($0)".contains("--rewind-step"), "\($0)")
        }
    }

    func testIterativeMagnitudePruningOfABertRun() throws {
        let dir = temporaryDirectory()
        var c = try ElasticTrainingTests.tinyBertConfig(in: dir, layers: 2, examples: 24)
        let train = URL(fileURLWithPath: c.data)
        c.epochs = 2; c.weightDecay = 0.1
        _ = try Trainer.run(c)
        let r = try Pruning.run(run: dir.appendingPathComponent("run"), method: "imp", sparsity: 0.36, out: dir.appendingPathComponent("imp"),
                                imp: IMPOptions(rewindStep: 1))
        XCTAssertEqual(try XCTUnwrap(r.rounds).map(\.round), [0, 1, 2])
        XCTAssertEqual(r.achievedSparsity, 0.36, accuracy: 0.01)
        // Encoder matrices are masked, embeddings and the head are not; masked weights are +0 in the saved model.
        let masks = try SafeTensorsFile(url: dir.appendingPathComponent("imp/masks.safetensors"))
        XCTAssertTrue(masks.names.contains { $0.contains("encoder.layer.0.attention.self.query.weight") }, "\(masks.names)")
        XCTAssertFalse(masks.names.contains { $0.contains("embeddings") || $0.hasPrefix("classifier") }, "\(masks.names)")
        let saved = try SafeTensorsFile(url: URL(fileURLWithPath: r.directory).appendingPathComponent("model.safetensors"))
        var zeros = 0
        for n in masks.names {
            // Masks name the classifier's parameters ("bert.encoder…"); final/ is an HF BERT ("encoder…").
            let m = try masks.tensor(n), w = try saved.tensor(n.hasPrefix("bert.") ? String(n.dropFirst(5)) : n)
            for j in 0..<m.count where m[flat: j] == 0 { XCTAssertEqual(w[flat: j].bitPattern, 0, n); zeros += 1 }
        }
        XCTAssertGreaterThan(zeros, 0)
        XCTAssertNoThrow(try Evaluation.evaluate(modelOrRun: URL(fileURLWithPath: r.directory), data: train))
    }

    /// A `--masks` run killed mid-way and resumed ends with the weights of an uninterrupted one.
    func testMaskedTrainingResumesExactly() throws {
        let dir = temporaryDirectory()
        var c = try ElasticTrainingTests.tinyCNNConfig(in: dir, name: "dense", method: "full")
        c.width = 4; c.depth = 1; c.checkpointEvery = 2; c.weightDecay = 0.1
        _ = try Trainer.run(c)
        let m = try Pruning.run(run: dir.appendingPathComponent("dense"), method: "magnitude", sparsity: 0.5)
        c.masks = URL(fileURLWithPath: m.directory).appendingPathComponent("masks.safetensors").path
        c.out = dir.appendingPathComponent("a").path
        _ = try Trainer.run(c)
        c.out = dir.appendingPathComponent("b").path
        XCTAssertEqual(try Trainer.run(c, hooks: TrainHooks(abandonAfterStep: 5)).outcome, .abandoned)
        var resume = TrainConfig(); resume.out = c.out
        _ = try Trainer.run(resume, resume: true)
        let a = try Data(contentsOf: dir.appendingPathComponent("a/final/model.safetensors"))
        XCTAssertEqual(a, try Data(contentsOf: dir.appendingPathComponent("b/final/model.safetensors")))
        let masks = try SafeTensorsFile(url: URL(fileURLWithPath: c.masks!)), saved = try SafeTensorsFile(url: dir.appendingPathComponent("b/final/model.safetensors"))
        for n in masks.names {
            let k = try masks.tensor(n), w = try saved.tensor(n)
            for j in 0..<k.count where k[flat: j] == 0 { XCTAssertEqual(w[flat: j].bitPattern, 0, n) }
        }
    }
}
