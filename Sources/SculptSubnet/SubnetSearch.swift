import Foundation
import SculptCore
import SculptSearch
import SculptTune

/// Where the `latency` objective comes from.
public enum LatencySource: String, Codable, Sendable, CaseIterable {
    /// Timed directly for every sub-network (warm-up, median of timed runs).
    case measured
    /// Summed from the run's `latency_table.json` (same batch, sequence and threads).
    case table
}

/// Measures sub-networks of a super-network for the search: `macs` and `params` always (they
/// are free), `accuracy` and `loss` on the validation data when asked for, `latency` when asked
/// for (as an objective or a constraint).
public final class SuperNetworkEvaluator: SubnetEvaluator {
    public let network: any SuperNetwork
    public let validation: ClassificationData?
    public let setting: LatencySetting
    public let table: LatencyTable?
    public let needed: Set<String>
    public let evalBatchSize: Int
    /// Threads for accuracy (all cores by default); latency uses `setting.threads`.
    public let evalThreads: Int

    public init(network: any SuperNetwork, validation: ClassificationData?, setting: LatencySetting, table: LatencyTable?,
                needed: Set<String>, evalBatchSize: Int = 64, evalThreads: Int = ThreadPool.machineThreadCount) throws {
        if !needed.isDisjoint(with: ["accuracy", "loss"]), validation == nil {
            throw SuperNetworkError("accuracy and loss need validation data: the run's could not be found; give --val-data FILE")
        }
        self.network = network; self.validation = validation; self.setting = setting; self.table = table
        self.needed = needed; self.evalBatchSize = evalBatchSize; self.evalThreads = evalThreads
    }

    public func evaluate(_ encoding: [Int], objectives: [ObjectiveSpec]) throws -> [String: Double] {
        var v: [String: Double] = ["macs": try network.macs(encoding, setting: setting), "params": try network.params(encoding)]
        if let data = validation, !needed.isDisjoint(with: ["accuracy", "loss"]) {
            let r = try withThreads(evalThreads) { try network.evaluate(encoding, on: data, batchSize: evalBatchSize) }
            v["accuracy"] = r.accuracy
            v["loss"] = r.loss
        }
        if needed.contains("latency") {
            v["latency"] = try table.map { try $0.predict(encoding, on: network) } ?? network.measureLatency(encoding, setting: setting)
        }
        return v
    }
}

/// Everything `sculpt search RUN_DIR` takes.
public struct SubnetSearchOptions: Sendable {
    public var run: URL
    public var objectives: String = "accuracy:max,latency:min"
    public var evaluations: Int = 300
    public var population: Int = 50
    public var algorithm: SearchAlgorithm = .nsga2
    public var predictor = false
    public var seed: UInt64 = 0
    public var db: String
    public var searchId: String?
    public var maxLatencyMs: Double?
    public var maxMacs: Double?
    /// Further constraints as "NAME<=VALUE" / "NAME>=VALUE".
    public var constraints: [String] = []
    public var valData: URL?
    public var valExamples: Int?
    public var latency: LatencySource = .measured
    public var setting = LatencySetting()
    public var evalBatchSize = 64
    public var reorder: SuperNetworkReorder = .auto
    /// Hypervolume reference point in the objectives' order and units (nil: from the first
    /// population); fixing it makes searches with different settings comparable.
    public var referencePoint: [Double]?

    public init(run: URL, db: String) { self.run = run; self.db = db }
}

/// A front row as a sub-network of the super-network.
public struct SubnetSearchRow: Codable, Sendable {
    public var rank: Int
    public var values: [String: Double]
    public var encoding: [Int]
    /// The model's own sub-network JSON (what `sculpt extract --subnet` takes).
    public var subnet: String
}

public struct SubnetSearchOutcome: Sendable {
    public var result: SearchResult
    public var front: [SubnetSearchRow]
    public var validationSource: String
    public var validationExamples: Int
}

/// The context recorded in the search space (and so in the store's key): the super-network's
/// identity, the validation data and the latency source.
struct SearchContext: Codable {
    var kind: String
    var run: String
    var weights: String
    var validation: String
    var validationExamples: Int
    var latency: String
    var setting: LatencySetting
}

/// `sculpt search RUN_DIR`: the hardware-aware search over a run's super-network. Running it
/// again with the same options and store resumes: evaluations already stored are not repeated.
public func searchSuperNetwork(_ o: SubnetSearchOptions, progress: ((SearchProgress) -> Void)? = nil,
                               note: ((String) -> Void)? = nil) throws -> SubnetSearchOutcome {
    let objectives = try ObjectiveSpec.parseList(o.objectives)
    let constraints = try Constraint.fromOptions(maxLatencyMs: o.maxLatencyMs, maxMacs: o.maxMacs, generic: o.constraints)
    for c in constraints where ObjectiveSpec.knownNames[c.name] == nil {
        throw ObjectiveError.unknownName(c.name, known: ObjectiveSpec.knownNames.keys.sorted())
    }
    try o.setting.validate()
    if let n = o.valExamples, n < 1 { throw SuperNetworkError("--val-examples must be at least 1") }
    let needed = Set(objectives.map(\.name) + constraints.map(\.name))
    let needsAccuracy = !needed.isDisjoint(with: ["accuracy", "loss"])
    let loaded = try loadSuperNetwork(run: o.run, valData: o.valData, reorder: o.reorder, loadValidation: needsAccuracy)
    let network = loaded.network
    let validation = loaded.validation.map { validationSubset($0, examples: o.valExamples) }
    if needsAccuracy, validation == nil {
        throw SuperNetworkError("\(o.run.path): the run's validation data could not be found (run.json's data paths are relative to where it trained?); give --val-data FILE")
    }
    var table: LatencyTable? = nil
    if needed.contains("latency"), o.latency == .table {
        table = try LatencyTable.load(runDirectory: loaded.runDirectory, network: network, setting: o.setting)
    }
    if let validation { note?("validation: \(validation.count) examples from \(loaded.validationSource)") }
    if needed.contains("latency") {
        note?("latency: " + (table.map { "from \(LatencyTable.url(in: loaded.runDirectory).path) (\($0.setting.batch)×\($0.setting.sequence), \($0.setting.threads) threads)" }
                              ?? "measured, \(o.setting)"))
    }
    let context = SearchContext(kind: network.kind, run: loaded.runDirectory.standardizedFileURL.path, weights: network.identity,
                                validation: needsAccuracy ? loaded.validationSource : "none", validationExamples: validation?.count ?? 0,
                                latency: needed.contains("latency") ? (table.map { "table \($0.fingerprint)" } ?? "measured") : "none",
                                setting: o.setting)
    let e = JSONEncoder()
    e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    var space = network.searchSpace
    space.context = String(decoding: try e.encode(context), as: UTF8.self)
    let evaluator = try SuperNetworkEvaluator(network: network, validation: validation, setting: o.setting, table: table,
                                              needed: needed, evalBatchSize: o.evalBatchSize)
    var config = SearchConfig(objectives: objectives, evaluations: o.evaluations, population: o.population)
    config.constraints = constraints
    config.algorithm = o.algorithm
    config.predictor = o.predictor
    config.seed = o.seed
    config.referencePoint = o.referencePoint
    let result = try runSearch(space: space, evaluator: evaluator, config: config, dbPath: o.db, searchId: o.searchId, progress: progress)
    let front = try result.front.enumerated().map { k, p in
        SubnetSearchRow(rank: k + 1, values: p.values, encoding: p.encoding, subnet: try network.subnetJSON(p.encoding))
    }
    return SubnetSearchOutcome(result: result, front: front, validationSource: loaded.validationSource, validationExamples: validation?.count ?? 0)
}

/// One row of a stored front as a sub-network the model's commands take.
public struct FrontSubnet: Codable, Sendable {
    public var searchId: String
    public var rank: Int
    public var objectives: [String: Double]
    public var encoding: [Int]
    /// The model's own sub-network JSON, e.g. {"ffn":[…],"heads":[…],"layers":4}.
    public var subnet: String
    /// The run directory the search ran on, when the store recorded it.
    public var run: String?

    enum CodingKeys: String, CodingKey { case searchId = "search_id", rank, objectives, encoding, subnet, run }
}

/// The sub-network at `rank` (1-based, the order `sculpt pareto` prints) of a search's front
/// in the store: what `sculpt front-subnet` prints and `extract --from-db --rank` uses.
public func subnetFromFront(db: String, rank: Int, searchId: String? = nil) throws -> FrontSubnet {
    guard FileManager.default.fileExists(atPath: db) else { throw SuperNetworkError("no such file: \(db)") }
    let report = try ParetoReport.load(path: db, searchId: searchId)
    guard rank >= 1, rank <= report.front.count else {
        throw SuperNetworkError("--rank \(rank) is outside the front of search \"\(report.searchId)\" (ranks 1…\(report.front.count))")
    }
    let row = report.front[rank - 1]
    let store = try EvaluationStore(path: db)
    guard let record = try store.searches().first(where: { $0.id == report.searchId }),
          let space = try? JSONDecoder().decode(SearchSpace.self, from: Data(record.spaceJSON.utf8)) else {
        throw SuperNetworkError("\(db): search \"\(report.searchId)\" has a search space this build cannot read")
    }
    let context = space.context.flatMap { try? JSONDecoder().decode(SearchContext.self, from: Data($0.utf8)) }
    let subnet: String
    if let bert = BertSearchSpace(searchSpace: space) {
        subnet = try bert.subnet(fromSearchEncoding: row.encoding).json
    } else if let cnn = CNNSearchSpace(searchSpace: space) {
        subnet = try cnn.subnet(fromSearchEncoding: row.encoding).json
    } else {
        throw SuperNetworkError("\(db): search \"\(report.searchId)\" is not over a BERT or CNN super-network (dimensions \(space.dimensions.prefix(3).map(\.name).joined(separator: ", "))…)")
    }
    return FrontSubnet(searchId: report.searchId, rank: rank, objectives: row.objectives, encoding: row.encoding, subnet: subnet, run: context?.run)
}

/// `sculpt extract RUN_DIR --from-db FILE --rank N`: cuts out the sub-network of a front row,
/// refusing a row whose search ran over another run's weights.
public func extractFromFront(run: URL, db: String, rank: Int, searchId: String? = nil, out: URL,
                             hfCompatible: Bool = false) throws -> (row: FrontSubnet, report: ExtractionReport) {
    let row = try subnetFromFront(db: db, rank: rank, searchId: searchId)
    let dir = RunDirectory(runOrFinal: run).url
    if let searched = row.run, searched != dir.standardizedFileURL.path {
        throw SuperNetworkError("\(db): search \"\(row.searchId)\" ran over \(searched), not \(dir.standardizedFileURL.path); its sub-networks name that run's units")
    }
    let report = try RunSubnets.extract(run: dir, subnet: row.subnet, out: out, hfCompatible: hfCompatible)
    return (row, report)
}
