import ArgumentParser
import Foundation
import SculptSearch

struct ParetoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pareto",
        abstract: "Print the Pareto front of a search from its evaluation store, with its hypervolume.")
    @Argument(help: "The evaluation store (SQLite) written by a search.") var db: String
    @Option(help: "The search to show when the store holds several.") var searchId: String?
    @Flag(help: "Print one JSON object (evaluations, hypervolume, reference_point, front).") var json = false
    @Option(help: "Also write the front as CSV to this file.") var csv: String?
    @Option(help: "Also draw every evaluated point with the front highlighted to this SVG file.") var plot: String?

    func run() throws {
        guard FileManager.default.fileExists(atPath: db) else { throw ValidationError("no such file: \(db)") }
        let report = try ParetoReport.load(path: db, searchId: searchId)
        if let csv { try report.writeCSV(to: URL(fileURLWithPath: csv)) }
        if let plot { try report.writeSVG(to: URL(fileURLWithPath: plot)) }
        if json { print(report.json()); return }
        let (header, rows) = report.tableRows()
        print("search \(report.searchId): \(report.evaluations) evaluations, front of \(report.front.count)")
        print(table(header, rows))
        let ref = zip(report.objectives, report.referencePoint).map { "\($0.name)=\(String(format: "%.6g", $1))" }.joined(separator: ", ")
        print("hypervolume \(String(format: "%.6g", report.hypervolume)) (reference point \(ref))")
    }
}

struct SearchBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "search-benchmark",
        abstract: "NSGA-II on ZDT1/ZDT2 (hypervolume vs the true front), or the full search on a synthetic sub-network problem.",
        discussion: """
        zdt1, zdt2: real-coded NSGA-II (SBX, polynomial mutation), --population × --generations.
        synthetic: 20 dimensions × 4 choices, accuracy:max and latency:min, through the same \
        search, store and resume path as `sculpt search` (--evaluations, --predictor, --db).
        """)
    enum Problem: String, ExpressibleByArgument, CaseIterable { case zdt1, zdt2, synthetic }
    @Argument(help: "zdt1, zdt2 or synthetic.") var problem: Problem
    @Option var population: Int = 100
    @Option(help: "Generations (ZDT).") var generations: Int = 250
    @Option(help: "Real evaluations (synthetic).") var evaluations: Int = 500
    @Option var seed: UInt64 = 1
    @Option(help: "nsga2 or random (synthetic).") var algorithm: String = "nsga2"
    @Flag(help: "Predictor-guided rounds (synthetic).") var predictor = false
    @Option(help: "Evaluation store; the search resumes from it (synthetic).") var db: String?
    @Option(help: "Search id in the store (synthetic; default derived from the settings).") var searchId: String?
    @Flag(help: "Print one JSON object.") var json = false

    func validate() throws {
        guard population >= 2, generations >= 1, evaluations >= population else {
            throw ValidationError("need --population >= 2, --generations >= 1 and --evaluations >= --population")
        }
        guard SearchAlgorithm(rawValue: algorithm) != nil else { throw ValidationError("--algorithm must be nsga2 or random, got \"\(algorithm)\"") }
        if problem != .synthetic, db != nil || predictor { throw ValidationError("--db and --predictor apply to the synthetic problem only") }
    }

    func run() throws {
        switch problem {
        case .zdt1, .zdt2:
            let r = runZDTBenchmark(problem == .zdt1 ? .zdt1 : .zdt2, population: population, generations: generations, seed: seed,
                                    progress: json ? nil : { g, hv in note("generation \(g)  hypervolume \(String(format: "%.6f", hv))") })
            if json { print(jsonLine(r)); return }
            print(table(["problem", "pop", "gens", "seed", "HV front", "HV archive", "HV true", "front/true", "archive/true", "s"],
                        [[r.problem, "\(r.population)", "\(r.generations)", "\(r.seed)", String(format: "%.5f", r.hypervolume),
                          String(format: "%.5f", r.archiveHypervolume), String(format: "%.5f", r.trueHypervolume),
                          String(format: "%.4f", r.ratio), String(format: "%.4f", r.archiveRatio), String(format: "%.2f", r.seconds)]]))
            print("reference point (\(r.referencePoint.map { "\($0)" }.joined(separator: ", ")))")
        case .synthetic:
            var config = SearchConfig(objectives: SyntheticProblem.objectives, evaluations: evaluations, population: population)
            config.seed = seed
            config.algorithm = SearchAlgorithm(rawValue: algorithm)!
            config.predictor = predictor
            let r = try runSyntheticSearch(config, dbPath: db, searchId: searchId) { p in
                let preds = p.predictors.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value.0.rawValue) cv \(String(format: "%.3f", $0.value.1))" }
                note((["round \(p.round)", "evaluations \(p.evaluations)", "hypervolume \(String(format: "%.6g", p.hypervolume))"] + preds)
                    .joined(separator: "  "))
            }
            struct Out: Encodable { let search_id: String; let evaluations: Int; let evaluator_calls: Int; let hypervolume: Double; let reference_point: [Double]; let front_size: Int }
            let out = Out(search_id: r.searchId, evaluations: r.evaluations, evaluator_calls: r.evaluatorCalls, hypervolume: r.hypervolume,
                          reference_point: r.referencePoint, front_size: r.front.count)
            if json { print(jsonLine(out)); return }
            print("search \(r.searchId): \(r.evaluations) evaluations (\(r.evaluatorCalls) in this run), front of \(r.front.count), hypervolume \(String(format: "%.6g", r.hypervolume))")
        }
    }
}
