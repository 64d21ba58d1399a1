import Foundation
import SculptCore

public enum SearchAlgorithm: String, Codable, Sendable { case nsga2, random }

/// Everything that decides a search's trajectory. Stored with the search, so resuming with
/// other settings under the same id is refused.
public struct SearchConfig: Codable, Sendable, Equatable {
    public var objectives: [ObjectiveSpec]
    public var constraints: [Constraint] = []
    /// Real evaluations this search may use (including ones claimed from other searches).
    public var evaluations: Int
    public var population: Int
    public var algorithm: SearchAlgorithm = .nsga2
    /// Predictor-guided rounds (DyNAS-T/LINAS) instead of plain generations.
    public var predictor = false
    public var seed: UInt64 = 0
    public var crossover: EncodingVariation.Crossover = .uniform
    /// Surrogate NSGA-II run on the predictors each round.
    public var predictorPopulation = 200
    public var predictorGenerations = 50
    public var predictorOptions = PredictorOptions()
    /// Hypervolume reference point in the objectives' own units; nil: the initial population's
    /// worst value per objective plus 10 % of its range, fixed after round 0.
    public var referencePoint: [Double]?

    public init(objectives: [ObjectiveSpec], evaluations: Int, population: Int) {
        self.objectives = objectives; self.evaluations = evaluations; self.population = population
    }

    var json: String {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys]
        return String(data: try! e.encode(self), encoding: .utf8)!
    }
}

public struct SearchProgress: Sendable {
    public var round: Int
    public var evaluations: Int
    public var hypervolume: Double
    /// Per objective: chosen predictor and its CV relative error (predictor-guided rounds only).
    public var predictors: [String: (PredictorKind, Double)]
}

public struct FrontPoint: Sendable, Codable {
    public var encoding: [Int]
    public var subnet: [String: Int]
    public var values: [String: Double]
}

public struct SearchResult: Sendable {
    public var searchId: String
    public var evaluations: Int
    /// Calls that reached the evaluator in this run (the rest were answered by the store).
    public var evaluatorCalls: Int
    public var rounds: Int
    public var hypervolume: Double
    public var referencePoint: [Double]
    public var front: [FrontPoint]
    /// Every evaluation of the search in order, objective values in their own units.
    public var history: [FrontPoint]
}

public enum SearchError: Error, CustomStringConvertible {
    case badSetting(String)
    case spaceExhausted(evaluated: Int)
    public var description: String {
        switch self {
        case .badSetting(let s): return "search: \(s)"
        case .spaceExhausted(let n): return "search: the space has no unevaluated sub-network left after \(n) evaluations"
        }
    }
}

/// Runs a search: NSGA-II, random, or predictor-guided, against real measurements.
///
/// The trajectory is a function of the seed and the measured values only: every random draw
/// goes through one SeededRNG in a fixed order, and a measurement found in the store is used
/// instead of calling the evaluator. So a search started again after a crash replays the same
/// decisions, answers the evaluations done before from the store, and ends on the same front.
public final class Searcher {
    /// Part of every default search id: bump it when a change to the algorithms alters the
    /// trajectory of an unchanged configuration, so such a search starts afresh (reusing the
    /// store's measurements) instead of resuming another algorithm's members under the old id.
    public static let trajectoryVersion = 3
    public let space: SearchSpace
    public let config: SearchConfig
    public let searchId: String
    let evaluator: SubnetEvaluator
    let store: EvaluationStore?
    var progress: ((SearchProgress) -> Void)?

    // This search's evaluations, in order.
    var order: [[Int]] = []
    var known: [[Int]: [String: Double]] = [:]
    public private(set) var evaluatorCalls = 0
    var reference: [Double] = []

    public init(space: SearchSpace, evaluator: SubnetEvaluator, config: SearchConfig, store: EvaluationStore? = nil,
                searchId: String? = nil, progress: ((SearchProgress) -> Void)? = nil) throws {
        guard config.population >= 2 else { throw SearchError.badSetting("population must be at least 2") }
        guard config.evaluations >= config.population else { throw SearchError.badSetting("evaluations (\(config.evaluations)) must be at least the population (\(config.population))") }
        guard !config.objectives.isEmpty else { throw SearchError.badSetting("no objectives") }
        if let r = config.referencePoint, r.count != config.objectives.count {
            throw SearchError.badSetting("reference point has \(r.count) values for \(config.objectives.count) objectives")
        }
        self.space = space
        self.config = config
        self.evaluator = evaluator
        self.store = store
        self.progress = progress
        self.searchId = searchId ?? "search-\(fnv1a64Hex(space.hash + config.json + "/v\(Searcher.trajectoryVersion)").prefix(8))"
        try store?.registerSearch(id: self.searchId, space: space, configJSON: config.json)
    }

    var budgetLeft: Int { config.evaluations - order.count }

    /// The measured values of `encoding`: from this run, else the store, else the evaluator
    /// (then committed to the store at once).
    func measure(_ e: [Int], predicted: [String: Double] = [:]) throws -> [String: Double] {
        if let v = known[e] { return v }
        let needed = Set(config.objectives.map(\.name) + config.constraints.map(\.name))
        var values: [String: Double]
        if let s = store, let hit = try s.lookup(e, spaceHash: space.hash), needed.isSubset(of: hit.values.keys) {
            values = hit.values
            try s.addMember(searchId: searchId, evaluationId: hit.id)
        } else {
            let t0 = Date()
            evaluatorCalls += 1
            values = try evaluator.evaluate(e, objectives: config.objectives)
            let seconds = Date().timeIntervalSince(t0)
            for n in needed.sorted() {
                guard let v = values[n] else { throw ObjectiveError.missingMeasurement(n) }
                // NaN would poison sorting and the store's replay; refuse it where it appears.
                guard v.isFinite else { throw ObjectiveError.nonFinite(n, encoding: e) }
            }
            if let s = store {
                // Use what the store holds: if another search measured some of these keys
                // first, its values win, and a replay will read exactly these.
                values = try s.record(e, space: space, values: values, predicted: predicted, seconds: seconds, searchId: searchId).values
            }
        }
        known[e] = values
        order.append(e)
        return values
    }

    func individual(_ e: [Int], _ values: [String: Double]) -> Individual<[Int]> {
        let objs = config.objectives.map { $0.minimised(values[$0.name]!) }
        return Individual(genome: e, objectives: objs, violation: violation(values))
    }

    /// Sum of constraint violations, each relative to its bound so units do not weigh in.
    func violation(_ values: [String: Double]) -> Double {
        config.constraints.reduce(0) { acc, c in acc + c.violation(values[c.name] ?? .infinity) / max(abs(c.bound), 1e-12) }
    }

    var evaluatedIndividuals: [Individual<[Int]>] { order.map { individual($0, known[$0]!) } }

    /// Unique encodings not evaluated yet, preferring `candidates` in order, then random ones.
    func fresh(_ candidates: [[Int]], count: Int, rng: inout SeededRNG) -> [[Int]] {
        var out: [[Int]] = [], seen = Set<[Int]>()
        for c in candidates where out.count < count && known[c] == nil && !seen.contains(c) {
            out.append(c); seen.insert(c)
        }
        var tries = 0
        while out.count < count && tries < 50 * count {
            let c = space.random(using: &rng)
            tries += 1
            if known[c] == nil && !seen.contains(c) { out.append(c); seen.insert(c) }
        }
        return out
    }

    func currentHypervolume() -> Double {
        let pts = evaluatedIndividuals.filter { $0.violation <= 0 }.map(\.objectives)
        let front = Pareto.frontIndices(pts).map { pts[$0] }
        return (try? Hypervolume.compute(front, reference: reference)) ?? 0
    }

    func fixReference() throws {
        if let r = config.referencePoint {
            reference = zip(config.objectives, r).map { $0.minimised($1) }
        } else {
            let pts = evaluatedIndividuals.map(\.objectives)
            reference = config.objectives.indices.map { m in
                let col = pts.map { $0[m] }
                let lo = col.min()!, hi = col.max()!
                return hi + 0.1 * max(hi - lo, abs(hi) * 1e-3, 1e-12)
            }
        }
        try store?.setReference(searchId: searchId, json: referenceJSON)
    }

    /// Reference point in the objectives' own units.
    var referenceNatural: [Double] { zip(config.objectives, reference).map { $0.minimised($1) } }
    var referenceJSON: String { "[" + referenceNatural.map { "\($0)" }.joined(separator: ",") + "]" }

    func report(_ round: Int, predictors: [String: (PredictorKind, Double)] = [:]) {
        progress?(SearchProgress(round: round, evaluations: order.count, hypervolume: currentHypervolume(), predictors: predictors))
    }

    /// Runs the search to its evaluation budget and returns the front of everything evaluated.
    public func run() throws -> SearchResult {
        var rng = SeededRNG(seed: config.seed)
        let variation = EncodingVariation(space: space, crossover: config.crossover)

        // Extremes first: they anchor the front and decide whether a constraint is possible.
        let minE = space.minEncoding, maxE = space.maxEncoding
        let minV = try measure(minE)
        if config.constraints.contains(where: { $0.relation == .atLeast }) || minE != maxE {
            let maxV = try measure(maxE)
            // Cost bounds (<=) are best met by the smallest sub-network, quality bounds (>=)
            // by the largest: if those fail, nothing in the space can meet them.
            for c in config.constraints {
                let best = c.relation == .atMost ? min(minV[c.name]!, maxV[c.name]!) : max(minV[c.name]!, maxV[c.name]!)
                try Constraint.checkSatisfiable([c], bestCase: [c.name: best])
            }
        }
        for e in fresh([], count: min(config.population, budgetLeft + order.count) - order.count, rng: &rng) {
            _ = try measure(e)
        }
        try fixReference()
        var round = 0
        report(round)
        var pop = NSGA2Core.survive(evaluatedIndividuals, count: config.population)
        var stalls = 0
        while budgetLeft > 0 {
            round += 1
            let before = order.count
            var reports: [String: (PredictorKind, Double)] = [:]
            let batch: [[Int]]
            switch (config.algorithm, config.predictor) {
            case (.random, _):
                batch = fresh([], count: min(config.population, budgetLeft), rng: &rng)
            case (.nsga2, false):
                // Offspring that repeat an evaluated sub-network are mutated again (a few
                // tries): a repeat costs nothing but teaches nothing either.
                var kids = NSGA2Core.offspring(pop, count: config.population, variation: variation, using: &rng)
                for i in kids.indices {
                    var tries = 0
                    while known[kids[i]] != nil && tries < 10 { kids[i] = variation.mutate(kids[i], using: &rng); tries += 1 }
                }
                batch = kids
            case (.nsga2, true):
                let (cands, r) = try predictorCandidates(pop: pop, variation: variation, round: round, rng: &rng)
                reports = r
                let picked = selectByPredictedGain(cands, count: min(config.population, budgetLeft))
                batch = fresh(picked, count: min(config.population, budgetLeft), rng: &rng)
                // Remember what the predictors said, to be stored beside the measurement.
                var said: [[Int]: [String: Double]] = [:]
                for (e, p) in cands { said[e] = p }
                var evaluated: [Individual<[Int]>] = []
                for e in batch where budgetLeft > 0 {
                    evaluated.append(individual(e, try measure(e, predicted: said[e] ?? [:])))
                }
                pop = NSGA2Core.survive(pop.members + evaluated, count: config.population)
                report(round, predictors: reports)
                if order.count == before { stalls += 1; if stalls >= 3 { break } } else { stalls = 0 }
                continue
            }
            var evaluated: [Individual<[Int]>] = []
            for e in batch {
                if known[e] == nil && budgetLeft <= 0 { break }
                evaluated.append(individual(e, try measure(e)))
            }
            pop = NSGA2Core.survive(pop.members + evaluated, count: config.population)
            report(round, predictors: reports)
            if order.count == before { stalls += 1; if stalls >= 20 { break } } else { stalls = 0 }
        }
        return result(rounds: round)
    }

    /// One surrogate NSGA-II run on freshly fitted predictors; returns its final population in
    /// crowded order with the predicted values.
    func predictorCandidates(pop: Population<[Int]>, variation: EncodingVariation, round: Int,
                             rng: inout SeededRNG) throws -> ([([Int], [String: Double])], [String: (PredictorKind, Double)]) {
        let names = Array(Set(config.objectives.map(\.name) + config.constraints.map(\.name))).sorted()
        let xs = order
        var predictors: [String: FittedPredictor] = [:]
        var reports: [String: (PredictorKind, Double)] = [:]
        for name in names {
            let p = try fitPredictor(space: space, encodings: xs, targets: xs.map { known[$0]![name]! },
                                     options: config.predictorOptions, seed: rng.next())
            predictors[name] = p
            reports[name] = (p.kind, p.relativeError)
        }
        // What the smooth predictors miss at each measured sub-network, lent to its neighbours.
        var residuals: [String: [Double]] = [:]
        for n in names { residuals[n] = xs.map { known[$0]![n]! - predictors[n]!.predict($0) } }
        func predict(_ e: [Int]) -> [String: Double] {
            let near = Searcher.neighbours(of: e, in: xs)
            var v: [String: Double] = [:]
            for n in names { v[n] = predictors[n]!.predict(e) + Searcher.neighbourResidual(near, residuals[n]!) }
            return v
        }
        func surrogate(_ gs: [[Int]]) -> [Individual<[Int]>] { gs.map { individual($0, predict($0)) } }
        // Start from the real population so the surrogate search refines what is known.
        var start = pop.members.map(\.genome)
        while start.count < config.predictorPopulation { start.append(space.random(using: &rng)) }
        var spop = Population(surrogate(start))
        for _ in 0..<config.predictorGenerations {
            spop = NSGA2Core.generation(spop, variation: variation, using: &rng, evaluate: surrogate)
        }
        let ranked = spop.crowdedOrder.map { spop.members[$0].genome }
        // Plus every unmeasured sub-network one choice away from a member of the real front:
        // the surrogate's smooth view misses them, and their predictions carry a measured
        // neighbour's correction, so they are the best-informed bets late in a search.
        var extra: [[Int]] = []
        var seen = Set(ranked)
        let inds = evaluatedIndividuals
        let feasible = inds.indices.filter { inds[$0].violation <= 0 }
        for k in Pareto.frontIndices(feasible.map { inds[$0].objectives }) {
            let e = inds[feasible[k]].genome
            for d in e.indices where e[d] >= 0 {
                for step in [-1, 1] {
                    var n = e
                    n[d] += step
                    guard n[d] >= 0, n[d] < space.dimensions[d].choices.count, (try? space.check(n)) != nil,
                          known[n] == nil, seen.insert(n).inserted else { continue }
                    extra.append(n)
                }
            }
        }
        return ((ranked + extra).map { ($0, predict($0)) }, reports)
    }

    /// Indices of the encodings that differ from `e` in exactly one dimension.
    static func neighbours(of e: [Int], in encodings: [[Int]]) -> [Int] {
        encodings.indices.filter { i in
            var differ = 0
            for d in e.indices where encodings[i][d] != e[d] { differ += 1; if differ > 1 { return false } }
            return differ == 1
        }
    }

    /// The mean residual of a candidate's measured neighbours, shrunk toward 0 by one
    /// pseudo-neighbour (kriging in its simplest form). Sub-networks one choice apart share most
    /// of their weights and make mostly the same mistakes on the same validation examples, so
    /// what a smooth predictor misses at one (a measured accuracy above or below the trend) is
    /// likely at the other too; with no measured neighbour the prediction stands.
    static func neighbourResidual(_ neighbours: [Int], _ residuals: [Double]) -> Double {
        neighbours.reduce(0) { $0 + residuals[$1] } / Double(neighbours.count + 1)
    }

    /// Greedy choice of the candidates whose predicted objectives add the most hypervolume to
    /// the real front plus the candidates already chosen (so the batch spreads along the
    /// front instead of crowding one region). When no candidate is predicted to add any, the
    /// rest follow by how little they are predicted to miss the front by (the additive ε, each
    /// objective scaled by the front's span to the reference point): with predictors that err
    /// by more than those margins, the near misses are where the front most likely grows.
    func selectByPredictedGain(_ cands: [([Int], [String: Double])], count: Int) -> [[Int]] {
        let real = evaluatedIndividuals.filter { $0.violation <= 0 }.map(\.objectives)
        var base = Pareto.frontIndices(real).map { real[$0] }
        var pool: [(e: [Int], f: [Double])] = []
        var seen = Set<[Int]>()
        for (e, v) in cands where known[e] == nil && !seen.contains(e) {
            let ind = individual(e, v)
            guard ind.violation <= 0 else { continue }
            seen.insert(e); pool.append((e, ind.objectives))
        }
        var chosen: [[Int]] = []
        var baseHV = (try? Hypervolume.compute(base, reference: reference)) ?? 0
        while chosen.count < count && !pool.isEmpty {
            var bestGain = 0.0, bestIndex = -1
            for (i, c) in pool.enumerated() {
                let g = ((try? Hypervolume.compute(base + [c.f], reference: reference)) ?? 0) - baseHV
                if g > bestGain { bestGain = g; bestIndex = i }
            }
            guard bestIndex >= 0 else { break }
            let c = pool.remove(at: bestIndex)
            chosen.append(c.e); base.append(c.f); baseHV += bestGain
        }
        let span = reference.indices.map { k in max(1e-12, reference[k] - (base.map { $0[k] }.min() ?? reference[k] - 1)) }
        func miss(_ f: [Double]) -> Double {
            base.map { p in max(0, f.indices.map { (f[$0] - p[$0]) / span[$0] }.min() ?? 0) }.max() ?? 0
        }
        let nearMisses = pool.map { ($0.e, miss($0.f)) }.sorted { $0.1 < $1.1 }.map(\.0)
        let listed = Set(chosen + nearMisses)
        return chosen + nearMisses + cands.map(\.0).filter { !listed.contains($0) }
    }

    func result(rounds: Int) -> SearchResult {
        let inds = evaluatedIndividuals
        let feasible = inds.indices.filter { inds[$0].violation <= 0 }
        let front = Pareto.frontIndices(feasible.map { inds[$0].objectives }).map { feasible[$0] }
        func point(_ e: [Int]) -> FrontPoint { FrontPoint(encoding: e, subnet: space.values(e), values: known[e]!) }
        let sortedFront = front.sorted { inds[$0].objectives.lexicographicallyPrecedes(inds[$1].objectives) }
        return SearchResult(searchId: searchId, evaluations: order.count, evaluatorCalls: evaluatorCalls, rounds: rounds,
                            hypervolume: currentHypervolume(), referencePoint: referenceNatural,
                            front: sortedFront.map { point(inds[$0].genome) }, history: order.map(point))
    }
}

// MARK: - A synthetic sub-network problem

/// A cheap analytic stand-in for a super-network: `dimensions` dims with choices [1, 2, 3, 4];
/// "latency" is a weighted sum of the chosen values (min), "accuracy" a saturating function
/// of another weighted sum with pairwise interactions (max). Weights come from a fixed seed,
/// and the two weightings differ, so the front is a knapsack-like trade-off.
public struct SyntheticProblem: Sendable {
    public let space: SearchSpace
    let cost: [Double], gain: [Double]

    public init(dimensions: Int = 20, choices: Int = 4, seed: UInt64 = 12345) {
        space = SearchSpace.uniform(count: dimensions, choices: Array(1...choices))
        var rng = SeededRNG(seed: seed)
        cost = (0..<dimensions).map { _ in 0.5 + rng.nextDouble() }
        gain = (0..<dimensions).map { _ in 0.1 + 0.9 * rng.nextDouble() }
    }

    public func evaluate(_ e: [Int]) -> [String: Double] {
        let v = e.enumerated().map { Double(space.dimensions[$0.offset].choices[$0.element]) }
        var lat = 0.0, s = 0.0, inter = 0.0
        for i in v.indices {
            lat += cost[i] * v[i]
            s += gain[i] * v[i]
            if i + 1 < v.count { inter += gain[i] * gain[i + 1] * v[i] * v[i + 1] }
        }
        let acc = 1 - exp(-(s + 0.05 * inter) / 20)
        return ["accuracy": acc, "latency": lat]
    }

    public var evaluator: FunctionEvaluator { FunctionEvaluator { self.evaluate($0) } }

    /// (accuracy, latency) just worse than the space's extremes, so every search of this
    /// problem is measured against the same point.
    public var referencePoint: [Double] {
        [evaluate(space.minEncoding)["accuracy"]! - 0.01, evaluate(space.maxEncoding)["latency"]! + 1]
    }

    public static let objectives = [ObjectiveSpec("accuracy", .max), ObjectiveSpec("latency", .min)]
}

/// One search against a store file: what `sculpt search RUN_DIR ...` will call once a
/// super-network supplies the space and the evaluator (the CLI parses `--objectives` with
/// `ObjectiveSpec.parseList`, constraints with `Constraint.fromOptions`, and prints progress).
/// Running it again with the same settings and store resumes where it stopped.
public func runSearch(space: SearchSpace, evaluator: SubnetEvaluator, config: SearchConfig, dbPath: String?,
                      searchId: String? = nil, progress: ((SearchProgress) -> Void)? = nil) throws -> SearchResult {
    let store = try dbPath.map { try EvaluationStore(path: $0) }
    return try Searcher(space: space, evaluator: evaluator, config: config, store: store, searchId: searchId, progress: progress).run()
}

/// The synthetic problem searched with the real machinery (store, resume, progress): what
/// `sculpt search-benchmark synthetic` runs.
public func runSyntheticSearch(_ config: SearchConfig, dbPath: String?, searchId: String? = nil,
                               progress: ((SearchProgress) -> Void)? = nil) throws -> SearchResult {
    let problem = SyntheticProblem()
    var config = config
    if config.referencePoint == nil { config.referencePoint = problem.referencePoint }
    return try runSearch(space: problem.space, evaluator: problem.evaluator, config: config, dbPath: dbPath,
                         searchId: searchId, progress: progress)
}
