import ArgumentParser
import Foundation
import SculptCore
import SculptSubnet
import SculptTune

struct Subnets: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "The search space of an elastic or gated run and its named sub-networks with MACs and parameters.")
    @Argument(help: "A run directory trained with --method elastic or gates.") var runDir: String
    @Option(help: "Also list N nested sub-networks (depth and width growing together).") var nested: Int = 0
    @Flag(help: "Evaluate each sub-network on the run's validation split (BatchNorm recalibrated first).") var eval = false
    @Option(help: "Threads (0: all cores).") var threads: Int = 0
    @Flag(help: "Print one JSON object.") var json = false

    func run() throws {
        guard nested >= 0 else { throw ValidationError("--nested must be ≥ 0") }
        let l = try withThreads(threads > 0 ? threads : ThreadPool.machineThreadCount) {
            try RunSubnets.list(URL(fileURLWithPath: runDir), nested: nested, evaluate: eval)
        }
        if json { print(jsonLine(l)); return }
        print("\(l.kind) super-network (\(l.training))")
        print(table(["dimension", "choices"], l.dimensions.sorted { $0.key < $1.key }.map { [$0.key, $0.value] }))
        print("")
        print(table(["name", "MACs (\(l.macsUnit))", "fraction", "params", "accuracy", "sub-network"],
                    l.subnets.map { [$0.name, "\($0.macs)", String(format: "%.3f", $0.macsFraction), "\($0.params)",
                                     $0.accuracy.map { String(format: "%.2f %%", $0 * 100) } ?? "-", $0.subnet] }))
    }
}

struct Extract: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Cut a sub-network out of a run as a dense, smaller model directory, checked against the super-network.")
    @Argument(help: "A run directory trained with --method elastic or gates.") var runDir: String
    @Option(help: "min, max, gated, a named sub-network, a JSON file or JSON text.") var subnet: String?
    @Option(help: "An evaluation store written by `sculpt search` on this run: take the sub-network from its front (with --rank).") var fromDb: String?
    @Option(help: "With --from-db: the 1-based row of the front, as `sculpt pareto` prints it.") var rank: Int?
    @Option(help: "With --from-db: the search when the store holds several.") var searchId: String?
    @Option(help: "The model directory to write.") var out: String
    @Flag(help: "BERT: write removed heads and FFN channels as zeroed full-size weights (a standard HF config).") var hfCompatible = false
    @Option(help: "Threads (0: all cores).") var threads: Int = 0
    @Flag(help: "Print one JSON object.") var json = false

    func validate() throws {
        guard (subnet == nil) != (fromDb == nil) else { throw ValidationError("give exactly one of --subnet or --from-db (with --rank)") }
        guard (fromDb == nil) == (rank == nil) else { throw ValidationError("--from-db and --rank go together") }
        if fromDb == nil, searchId != nil { throw ValidationError("--search-id applies to --from-db") }
    }

    func run() throws {
        let r = try withThreads(threads > 0 ? threads : ThreadPool.machineThreadCount) { () throws -> ExtractionReport in
            let runURL = URL(fileURLWithPath: runDir), outURL = URL(fileURLWithPath: out)
            if let fromDb, let rank {
                let (row, report) = try extractFromFront(run: runURL, db: fromDb, rank: rank, searchId: searchId, out: outURL, hfCompatible: hfCompatible)
                if !json {
                    let values = row.objectives.sorted { $0.key < $1.key }.map { "\($0.key) \(String(format: "%.6g", $0.value))" }.joined(separator: ", ")
                    print("front row \(row.rank) of search \(row.searchId): \(values)")
                }
                return report
            }
            return try RunSubnets.extract(run: runURL, subnet: subnet!, out: outURL, hfCompatible: hfCompatible)
        }
        if json { print(jsonLine(r)); return }
        print("extracted \(r.subnet) to \(r.directory) (\(r.macs) MACs, \(r.params) parameters)")
        print(String(format: "check: max |extracted − super-network| = %.3g on %d examples (limit 1e-4)", r.maxAbsDifference, r.checkedExamples))
    }
}

struct Prune: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Prune a trained run: unstructured magnitude (masks, exact zeros), iterative magnitude pruning with rewinding, or structured heads/channels with a recovery fine-tune.")
    @Argument(help: "A run directory.") var runDir: String
    @Option(help: "magnitude, imp or structured.") var method: String
    @Option(help: "Fraction of prunable weights (magnitude) or of heads/channels (structured) to remove.") var sparsity: Double
    @Option(help: "Magnitude: global (one threshold over all layers) or layer (the same fraction in each).") var scope: String = "global"
    @Option(help: "Output directory (default RUN_DIR/pruned-METHOD).") var out: String?
    @Option(help: "Structured: epochs of recovery fine-tuning.") var recoveryEpochs: Int = 1
    @Option(help: "IMP: rounds removing equal fractions of the remaining weights (default: rounds of 20 % until --sparsity).") var rounds: Int?
    @Option(help: "IMP: the run's optimiser step every round rewinds to (default 5 % of its steps; 0: the initialisation).") var rewindStep: Int?
    @Option(help: "IMP: epochs of each round's retraining (default: the run's).") var epochs: Int?
    @Option(help: "Threads (0: all cores).") var threads: Int = 0
    @Flag(help: "Print one JSON object.") var json = false

    func run() throws {
        let r = try withThreads(threads > 0 ? threads : ThreadPool.machineThreadCount) {
            try Pruning.run(run: URL(fileURLWithPath: runDir), method: method, sparsity: sparsity, scope: scope,
                            out: out.map { URL(fileURLWithPath: $0) }, recoveryEpochs: recoveryEpochs,
                            imp: IMPOptions(rounds: rounds, rewindStep: rewindStep, epochs: epochs), progress: json ? nil : ProgressDisplay())
        }
        if json { print(jsonLine(r)); return }
        func pct(_ v: Double?) -> String { v.map { String(format: "%.2f %%", $0 * 100) } ?? "-" }
        print(table(["", "before", "after"], [
            ["accuracy (validation)", pct(r.accuracyBefore), pct(r.accuracyAfter)],
            ["latency ms (\(r.latencyInput))", String(format: "%.2f", r.latencyBeforeMilliseconds), String(format: "%.2f", r.latencyAfterMilliseconds)],
        ]))
        if let rounds = r.rounds {
            print(table(["round", "sparsity", "accuracy", "model"],
                        rounds.map { ["\($0.round)", String(format: "%.1f %%", $0.sparsity * 100), pct($0.accuracy), $0.directory] }))
        }
        print(String(format: "%@ pruning (%@): %.1f %% removed; model in %@", r.method, r.scope, r.achievedSparsity * 100, r.directory))
        print(r.note)
    }
}
