import Foundation
import SculptCore
import SculptTune

/// The second half of `sculpt demo`: the demo's trained CNN is fine-tuned as an elastic
/// super-network for a few epochs (channels reordered by importance first), then three of its
/// sub-networks are cut out and shown with accuracy, MACs and measured latency, and a short
/// NSGA-II search (`sculpt search` with its store) finds the accuracy/latency front. Fine-tuning
/// the trained CNN rather than training an elastic one from scratch keeps the whole demo
/// within its time budget on two cores.
public enum ElasticDemo {
    public struct Row: Sendable {
        public var name: String
        public var subnet: String
        public var accuracy: Double
        public var macs: Int
        public var macsFraction: Double
        public var params: Int
        /// Median milliseconds per batch of `latencyBatch` images, extracted model.
        public var latencyMilliseconds: Double
    }

    public struct Report: Sendable {
        public var rows: [Row]
        /// The short search's Pareto front (accuracy on the held-out images, latency of
        /// `latencyBatch` images measured on this CPU) and its settings.
        public var front: [SubnetSearchRow]
        public var searchEvaluations: Int
        public var searchSeconds: Double
        public var searchSetting: LatencySetting
        public var searchDatabase: String
        public var latencyBatch: Int
        public var trainingSeconds: Double
        public var seconds: Double
        public var runDirectory: URL
    }

    public static func config(base: URL, out: URL, epochs: Int) throws -> TrainConfig {
        var c = try Demo.config(out: out, epochs: epochs)
        c.method = "elastic"
        c.elasticSchedule = "sandwich"
        c.randomSubnets = 1
        c.initFrom = base.path
        c.lr = 1e-3
        c.warmupRatio = 0
        return c
    }

    public static func run(base: URL, out: URL, epochs: Int = 6, latencyBatch: Int = 64, searchEvaluations: Int = 12,
                           progress: ProgressDisplay? = ProgressDisplay()) throws -> Report {
        let start = Date()
        if FileManager.default.fileExists(atPath: out.appendingPathComponent("run.json").path) { try FileManager.default.removeItem(at: out) }
        let result = try SubnetTraining.run(try config(base: base, out: out, epochs: epochs), hooks: TrainHooks(progress: progress))
        let (model, file, _, final) = try RunSubnets.open(out)
        let (data, padId, c) = try RunSubnets.runData(out, model: model, final: final)
        let space = file.space
        let full = Double(space.cost(space.largest, in: model).macs)
        // The nested sub-network closest to a quarter of the MACs (the yardstick).
        let middle = space.sortedList(count: 8).min { abs(Double(space.cost($0, in: model).macs) / full - 0.25) < abs(Double(space.cost($1, in: model).macs) / full - 0.25) }!
        var rng = SeededRNG(seed: 0)
        let input = BatchInput.images(Tensor.randomNormal([latencyBatch, 1, model.spec.imageHeight, model.spec.imageWidth], using: &rng))
        let rows = try [("max", space.largest), ("mid", middle), ("min", space.smallest)].map { name, s in
            let (e, small) = try RunSubnets.evaluate(s, model: model, space: space, data: data, padId: padId, seed: c.seed)
            let cost = space.cost(s, in: model)
            return Row(name: name, subnet: s.json, accuracy: e.accuracy, macs: cost.macs, macsFraction: Double(cost.macs) / full,
                       params: cost.params, latencyMilliseconds: measureLatency(small, input: input, minimumSeconds: 0.3) * 1e3)
        }
        // The search: every evaluation recalibrates BatchNorm for its sub-network and times
        // its dense extraction; the store sits in the run directory.
        let searchStart = Date()
        var o = SubnetSearchOptions(run: out, db: out.appendingPathComponent("search.sqlite").path)
        o.objectives = "accuracy:max,latency:min"
        o.evaluations = searchEvaluations
        o.population = max(2, searchEvaluations / 2)
        o.seed = 1
        // One thread on the CPU clock: the front's latencies are what each sub-network costs,
        // even when other processes share the machine.
        o.setting = LatencySetting(batch: latencyBatch, sequence: 1, threads: 1, warmup: 2, runs: 7, clock: .cpu)
        let search = try searchSuperNetwork(o)
        return Report(rows: rows, front: search.front, searchEvaluations: search.result.evaluations, searchSeconds: Date().timeIntervalSince(searchStart),
                      searchSetting: o.setting, searchDatabase: o.db,
                      latencyBatch: latencyBatch, trainingSeconds: result.seconds, seconds: Date().timeIntervalSince(start), runDirectory: out)
    }
}
