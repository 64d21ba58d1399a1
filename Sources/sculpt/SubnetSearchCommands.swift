import ArgumentParser
import Foundation
import SculptIO
import SculptSearch
import SculptSubnet

/// Options shared by the commands that time sub-networks.
struct LatencyOptions: ParsableArguments {
    @Option(help: "Examples per timed forward pass.") var batch: Int = 1
    @Option(help: "Tokens per example for timing and MACs.") var seq: Int = 128
    @Option(help: "Threads for timing.") var threads: Int = 1
    @Option(help: "Untimed warm-up runs before timing.") var warmup: Int = 3
    @Option(help: "Timed runs; their median is the latency.") var runs: Int = 15
    @Option(help: "wall (elapsed) or cpu (process CPU time, one thread: what the pass costs with the core to itself on a shared machine).") var clock: LatencyClock = .wall

    var setting: LatencySetting { LatencySetting(batch: batch, sequence: seq, threads: threads, warmup: warmup, runs: runs, clock: clock) }
    func validate() throws { try setting.validate() }
}

extension SearchAlgorithm: ExpressibleByArgument {}
extension LatencySource: ExpressibleByArgument {}
extension LatencyClock: ExpressibleByArgument {}
extension SuperNetworkReorder: ExpressibleByArgument {}

struct SubnetSearchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "search",
        abstract: "Search a run's super-network for the Pareto-optimal sub-networks (accuracy, latency on this CPU, MACs, params).",
        discussion: """
        Every evaluation is committed to --db as it finishes; the same command started again \
        (after Ctrl-C, a crash or kill -9) resumes and evaluates nothing twice. Progress goes \
        to standard error; the front to standard output.
        """)
    @Argument(help: "A run directory (sculpt train) or its final/ directory.") var runDirectory: String
    @Option(help: "Objectives, e.g. accuracy:max,latency:min (accuracy, loss, latency, macs, params).") var objectives = "accuracy:max,latency:min"
    @Option(help: "Real evaluations.") var evaluations: Int = 300
    @Option var population: Int = 50
    @Option(help: "nsga2 or random.") var algorithm: SearchAlgorithm = .nsga2
    @Flag(help: "Predictor-guided rounds (DyNAS-T/LINAS).") var predictor = false
    @Option var seed: UInt64 = 0
    @Option(help: "The evaluation store (SQLite); created if absent.") var db: String
    @Option(help: "Search id in the store (default: derived from the settings).") var searchId: String?
    @Option(help: "Constraint: latency <= this many ms.") var maxLatencyMs: Double?
    @Option(help: "Constraint: MACs per example <= this.") var maxMacs: Double?
    @Option(help: "Validation data (default: the run's --eval-data or validation split).") var valData: String?
    @Option(help: "Evaluate accuracy on this many validation examples (a fixed seeded subset).") var valExamples: Int?
    @Option(help: "measured (time each sub-network) or table (sum latency_table.json).") var latency: LatencySource = .measured
    @Option(help: "auto (importance-reorder non-elastic runs), none or magnitude.") var reorder: SuperNetworkReorder = .auto
    @Option(help: "Batch size for accuracy.") var evalBatchSize: Int = 64
    @Option(help: "Hypervolume reference point, one value per objective in their order (e.g. 0.5,20); default: from the first population.") var referencePoint: String?
    @OptionGroup var timing: LatencyOptions
    @Flag(help: "Print one JSON object.") var json = false

    func validate() throws {
        guard population >= 2, evaluations >= population else { throw ValidationError("need --population >= 2 and --evaluations >= --population") }
        if let m = maxLatencyMs, !(m > 0) { throw ValidationError("--max-latency-ms must be positive") }
        if let m = maxMacs, !(m > 0) { throw ValidationError("--max-macs must be positive") }
        if let n = valExamples, n < 1 { throw ValidationError("--val-examples must be at least 1") }
        _ = try parsedReferencePoint()
    }

    func parsedReferencePoint() throws -> [Double]? {
        guard let referencePoint else { return nil }
        guard let values = commaSeparatedNumbers(referencePoint), !values.isEmpty else {
            throw ValidationError("--reference-point must be comma-separated numbers, got \"\(referencePoint)\"")
        }
        return values
    }

    func run() throws {
        var o = SubnetSearchOptions(run: URL(fileURLWithPath: runDirectory), db: db)
        o.objectives = objectives; o.evaluations = evaluations; o.population = population; o.algorithm = algorithm
        o.predictor = predictor; o.seed = seed; o.searchId = searchId; o.maxLatencyMs = maxLatencyMs; o.maxMacs = maxMacs
        o.valData = valData.map { URL(fileURLWithPath: $0) }; o.valExamples = valExamples; o.latency = latency
        o.setting = timing.setting; o.evalBatchSize = evalBatchSize; o.reorder = reorder
        o.referencePoint = try parsedReferencePoint()
        let out = try searchSuperNetwork(o, progress: { p in
            let preds = p.predictors.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value.0.rawValue) cv \(String(format: "%.3f", $0.value.1))" }
            note((["round \(p.round)", "evaluations \(p.evaluations)", "hypervolume \(String(format: "%.6g", p.hypervolume))"] + preds).joined(separator: "  "))
        }, note: note)
        let r = out.result
        if json {
            struct Out: Encodable { let search_id: String; let evaluations: Int; let evaluator_calls: Int; let hypervolume: Double; let reference_point: [Double]; let front: [SubnetSearchRow] }
            print(jsonLine(Out(search_id: r.searchId, evaluations: r.evaluations, evaluator_calls: r.evaluatorCalls, hypervolume: r.hypervolume,
                               reference_point: r.referencePoint, front: out.front)))
            return
        }
        let specs = try ObjectiveSpec.parseList(objectives)
        let extra = ["macs", "params"].filter { n in !specs.contains { $0.name == n } }
        print("search \(r.searchId): \(r.evaluations) evaluations (\(r.evaluatorCalls) in this run), front of \(out.front.count)")
        print(table(["rank"] + specs.map { "\($0.name) (\($0.direction.rawValue))" } + extra + ["subnet"],
                    out.front.map { row in ["\(row.rank)"] + (specs.map(\.name) + extra).map { String(format: "%.6g", row.values[$0] ?? .nan) } + [row.subnet] }))
        let ref = zip(specs, r.referencePoint).map { "\($0.name)=\(String(format: "%.6g", $1))" }.joined(separator: ", ")
        print("hypervolume \(String(format: "%.6g", r.hypervolume)) (reference point \(ref))")
    }
}

struct LatencyTableCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "latency-table",
        abstract: "Time each part of a run's super-network on this CPU into latency_table.json, and report its error on random sub-networks.")
    @Argument(help: "A run directory (sculpt train).") var runDirectory: String
    @OptionGroup var timing: LatencyOptions
    @Option(help: "Random sub-networks measured directly to check the table.") var check: Int = 20
    @Option(help: "Sub-networks measured directly to calibrate the sum of parts (0: the plain sum).") var calibrate: Int = 12
    @Option(help: "Seed of the check's sub-networks.") var seed: UInt64 = 1
    @Flag(help: "Print the table as JSON.") var json = false

    func run() throws {
        guard check >= 1 else { throw ValidationError("--check must be at least 1") }
        guard calibrate == 0 || calibrate >= 3 else { throw ValidationError("--calibrate must be 0 or at least 3") }
        let progress: ((String) -> Void)? = json ? nil : { note($0) }
        let (t, url) = try buildRunLatencyTable(run: URL(fileURLWithPath: runDirectory), setting: timing.setting, checkSubnets: check,
                                                calibrationSubnets: calibrate, seed: seed, progress: progress)
        if json { print(jsonLine(t)); return }
        print("latency table: \(url.path)  (\(t.setting))")
        print(table(["part", "ms"], t.partsMs.sorted { partOrder($0.key, $1.key) }.map { [$0.key, String(format: "%.3f", $0.value)] }))
        if let k = t.calibration {
            print(String(format: "calibration (%d sub-networks measured directly): latency = %.4g × sum of parts + %.4g ms per million parameters + %.4g ms",
                         k.samples.count, k.sumCoefficient, k.paramsCoefficient * 1e6, k.interceptMs))
        }
        print("")
        print(table(["subnet", "predicted ms", "measured ms", "error %"],
                    t.check.map { [$0.subnet, String(format: "%.2f", $0.predictedMs), String(format: "%.2f", $0.measuredMs), String(format: "%.1f", $0.absolutePercentageError)] }))
        print(String(format: "median absolute percentage error: %.2f %% over %d sub-networks", t.medianAbsolutePercentageError ?? Double.nan, t.check.count))
    }

    /// The order of a forward pass: embeddings or stem, the layers' or stages' parts (numbers
    /// in numeric order), head.
    func partOrder(_ a: String, _ b: String) -> Bool {
        func group(_ p: String) -> Int {
            if p == "embeddings" || p.hasPrefix("stem.") { return 0 }
            if p.hasPrefix("head") { return 3 }
            return p.hasPrefix("ffn.") ? 2 : 1
        }
        if group(a) != group(b) { return group(a) < group(b) }
        return a.compare(b, options: .numeric) == .orderedAscending
    }
}

struct FrontSubnetCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "front-subnet",
        abstract: "Print the sub-network JSON of one row of a search's Pareto front (for `sculpt extract RUN --subnet`).")
    @Argument(help: "The evaluation store (SQLite).") var db: String
    @Option(help: "1-based row of the front, as `sculpt pareto` prints it.") var rank: Int
    @Option(help: "The search when the store holds several.") var searchId: String?
    @Flag(help: "Print the row (search, objectives, encoding, subnet, run) as JSON instead of the sub-network alone.") var json = false

    func run() throws {
        let f = try subnetFromFront(db: db, rank: rank, searchId: searchId)
        print(json ? jsonLine(f) : f.subnet)
    }
}
