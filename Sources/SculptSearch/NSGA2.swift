import Foundation
import SculptCore

/// Crossover and mutation on one kind of genome. Every random draw goes through the
/// caller's generator, so a run is a function of its seed.
public protocol Variation: Sendable {
    associatedtype Genome: Hashable & Sendable
    func crossover(_ a: Genome, _ b: Genome, using rng: inout SeededRNG) -> (Genome, Genome)
    func mutate(_ g: Genome, using rng: inout SeededRNG) -> Genome
}

/// A genome with its objectives (minimisation form) and total constraint violation (0 = feasible).
public struct Individual<Genome: Hashable & Sendable>: Sendable {
    public var genome: Genome
    public var objectives: [Double]
    public var violation: Double
    public init(genome: Genome, objectives: [Double], violation: Double = 0) {
        self.genome = genome; self.objectives = objectives; self.violation = violation
    }
}

/// A population with each member's non-domination rank and crowding distance, as NSGA-II's
/// tournament needs them.
public struct Population<Genome: Hashable & Sendable>: Sendable {
    public var members: [Individual<Genome>]
    public var rank: [Int]
    public var crowding: [Double]

    /// Ranks and crowding for an arbitrary set (e.g. the initial population).
    public init(_ members: [Individual<Genome>]) {
        self = NSGA2Core.survive(members, count: members.count)
    }

    init(members: [Individual<Genome>], rank: [Int], crowding: [Double]) {
        self.members = members; self.rank = rank; self.crowding = crowding
    }

    /// Members of rank 0.
    public var front: [Individual<Genome>] { members.indices.filter { rank[$0] == 0 }.map { members[$0] } }

    /// Indices ordered by the crowded-comparison operator (rank ascending, crowding descending).
    public var crowdedOrder: [Int] {
        members.indices.sorted {
            if rank[$0] != rank[$1] { return rank[$0] < rank[$1] }
            if crowding[$0] != crowding[$1] { return crowding[$0] > crowding[$1] }
            return $0 < $1
        }
    }
}

/// NSGA-II (Deb, Pratap, Agarwal, Meyarivan 2002) split into its steps, so the sub-network
/// search can put deduplication and the evaluation budget between them.
public enum NSGA2Core {
    /// Binary tournament by the crowded-comparison operator: lower rank wins, then the larger
    /// crowding distance; a full tie goes to the first drawn.
    public static func tournament<G>(_ pop: Population<G>, using rng: inout SeededRNG) -> Int {
        let n = pop.members.count
        let a = Int(rng.next() % UInt64(n)), b = Int(rng.next() % UInt64(n))
        if pop.rank[a] != pop.rank[b] { return pop.rank[a] < pop.rank[b] ? a : b }
        return pop.crowding[b] > pop.crowding[a] ? b : a
    }

    /// `count` offspring: tournament-selected parent pairs, crossover, then mutation of each child.
    public static func offspring<V: Variation>(_ pop: Population<V.Genome>, count: Int, variation: V,
                                               using rng: inout SeededRNG) -> [V.Genome] {
        var out: [V.Genome] = []
        out.reserveCapacity(count + 1)
        while out.count < count {
            let p1 = pop.members[tournament(pop, using: &rng)].genome
            let p2 = pop.members[tournament(pop, using: &rng)].genome
            let (c1, c2) = variation.crossover(p1, p2, using: &rng)
            out.append(variation.mutate(c1, using: &rng))
            if out.count < count { out.append(variation.mutate(c2, using: &rng)) }
        }
        return out
    }

    /// Elitist (μ+λ) survival: sort the union into fronts, take whole fronts while they fit and
    /// fill the rest from the next front by descending crowding distance.
    public static func survive<G>(_ combined: [Individual<G>], count: Int) -> Population<G> {
        let fronts = Pareto.nonDominatedSort(combined.map(\.objectives), violations: combined.map(\.violation))
        var members: [Individual<G>] = [], rank: [Int] = [], crowding: [Double] = []
        for (k, f) in fronts.enumerated() {
            if members.count >= count { break }
            let d = Pareto.crowdingDistance(f.map { combined[$0].objectives })
            var order = Array(f.indices)
            if members.count + f.count > count {
                order.sort { d[$0] != d[$1] ? d[$0] > d[$1] : $0 < $1 }
                order = Array(order.prefix(count - members.count))
            }
            for j in order {
                members.append(combined[f[j]]); rank.append(k); crowding.append(d[j])
            }
        }
        return Population(members: members, rank: rank, crowding: crowding)
    }

    /// One generation: offspring, evaluation, (μ+λ) survival.
    public static func generation<V: Variation>(_ pop: Population<V.Genome>, variation: V, using rng: inout SeededRNG,
                                                evaluate: ([V.Genome]) throws -> [Individual<V.Genome>]) rethrows -> Population<V.Genome> {
        let children = offspring(pop, count: pop.members.count, variation: variation, using: &rng)
        let evaluated = try evaluate(children)
        return survive(pop.members + evaluated, count: pop.members.count)
    }
}

// MARK: - Real-coded operators for continuous problems (ZDT)

/// Simulated binary crossover and polynomial mutation (Deb & Agrawal 1995; Deb 2001), bounded
/// form as in Deb's reference NSGA-II code.
public struct RealVariation: Variation {
    public var lower: [Double], upper: [Double]
    public var crossoverProbability = 0.9
    public var etaCrossover = 20.0
    public var etaMutation = 20.0
    public var mutationProbability: Double

    public init(lower: [Double], upper: [Double]) {
        self.lower = lower; self.upper = upper
        mutationProbability = 1.0 / Double(lower.count)
    }

    public func crossover(_ a: [Double], _ b: [Double], using rng: inout SeededRNG) -> ([Double], [Double]) {
        var c1 = a, c2 = b
        guard rng.nextDouble() <= crossoverProbability else { return (c1, c2) }
        for i in a.indices {
            guard rng.nextDouble() <= 0.5, abs(a[i] - b[i]) > 1e-14 else { continue }
            let y1 = min(a[i], b[i]), y2 = max(a[i], b[i])
            let lo = lower[i], hi = upper[i]
            let r = rng.nextDouble()
            func betaq(_ beta: Double) -> Double {
                let alpha = 2 - pow(beta, -(etaCrossover + 1))
                return r <= 1 / alpha ? pow(r * alpha, 1 / (etaCrossover + 1)) : pow(1 / (2 - r * alpha), 1 / (etaCrossover + 1))
            }
            var v1 = 0.5 * ((y1 + y2) - betaq(1 + 2 * (y1 - lo) / (y2 - y1)) * (y2 - y1))
            var v2 = 0.5 * ((y1 + y2) + betaq(1 + 2 * (hi - y2) / (y2 - y1)) * (y2 - y1))
            v1 = min(max(v1, lo), hi); v2 = min(max(v2, lo), hi)
            if rng.nextDouble() <= 0.5 { c1[i] = v2; c2[i] = v1 } else { c1[i] = v1; c2[i] = v2 }
        }
        return (c1, c2)
    }

    public func mutate(_ g: [Double], using rng: inout SeededRNG) -> [Double] {
        var x = g
        for i in x.indices where rng.nextDouble() <= mutationProbability {
            let lo = lower[i], hi = upper[i], y = x[i]
            let d1 = (y - lo) / (hi - lo), d2 = (hi - y) / (hi - lo)
            let r = rng.nextDouble(), p = 1 / (etaMutation + 1)
            let dq: Double
            if r < 0.5 {
                dq = pow(2 * r + (1 - 2 * r) * pow(1 - d1, etaMutation + 1), p) - 1
            } else {
                dq = 1 - pow(2 * (1 - r) + 2 * (r - 0.5) * pow(1 - d2, etaMutation + 1), p)
            }
            x[i] = min(max(y + dq * (hi - lo), lo), hi)
        }
        return x
    }
}

// MARK: - Integer operators on sub-network encodings

/// Uniform or one-point crossover and per-gene mutation (probability 1/n, to a different
/// choice) on choice-index encodings; children are repaired so inactive slots are blank.
public struct EncodingVariation: Variation {
    public enum Crossover: String, Codable, Sendable { case uniform, onePoint }
    public var space: SearchSpace
    public var crossoverKind: Crossover
    public var crossoverProbability: Double
    public var mutationProbability: Double

    public init(space: SearchSpace, crossover: Crossover = .uniform, crossoverProbability: Double = 0.9, mutationProbability: Double? = nil) {
        self.space = space
        crossoverKind = crossover
        self.crossoverProbability = crossoverProbability
        self.mutationProbability = mutationProbability ?? 1.0 / Double(space.count)
    }

    public func crossover(_ a: [Int], _ b: [Int], using rng: inout SeededRNG) -> ([Int], [Int]) {
        var c1 = a, c2 = b
        guard rng.nextDouble() < crossoverProbability else { return (c1, c2) }
        switch crossoverKind {
        case .uniform:
            for i in a.indices where rng.next() & 1 == 1 { c1[i] = b[i]; c2[i] = a[i] }
        case .onePoint:
            guard a.count > 1 else { break }
            let cut = 1 + Int(rng.next() % UInt64(a.count - 1))
            for i in cut..<a.count { c1[i] = b[i]; c2[i] = a[i] }
        }
        // A slot blank in one parent may become active in the child: repair fills it.
        return (space.repair(c1, using: &rng), space.repair(c2, using: &rng))
    }

    public func mutate(_ g: [Int], using rng: inout SeededRNG) -> [Int] {
        var x = g
        for i in x.indices where rng.nextDouble() < mutationProbability {
            let n = space.dimensions[i].choices.count
            guard n > 1, x[i] >= 0 else { continue }
            // Uniform over the other n-1 choices.
            let r = Int(rng.next() % UInt64(n - 1))
            x[i] = r >= x[i] ? r + 1 : r
        }
        return space.repair(x, using: &rng)
    }
}

// MARK: - ZDT test problems

/// ZDT1 and ZDT2 (Zitzler, Deb, Thiele 2000): 30 variables in [0, 1], two objectives to minimise.
public enum ZDT: String, Sendable, CaseIterable {
    case zdt1, zdt2

    public static let variables = 30

    public func evaluate(_ x: [Double]) -> [Double] {
        let f1 = x[0]
        var s = 0.0
        for i in 1..<x.count { s += x[i] }
        let g = 1 + 9 * s / Double(x.count - 1)
        switch self {
        case .zdt1: return [f1, g * (1 - (f1 / g).squareRoot())]
        case .zdt2: return [f1, g * (1 - (f1 / g) * (f1 / g))]
        }
    }

    /// Hypervolume of the true (continuous) front for a reference point with r0 >= 1, r1 >= 1:
    /// ∫₀¹ (r1 − f(x)) dx + (r0 − 1)·r1 with f = 1 − √x (ZDT1) or 1 − x² (ZDT2).
    public func trueFrontHypervolume(reference r: [Double]) -> Double {
        let integral: Double
        switch self {
        case .zdt1: integral = r[1] - 1 + 2.0 / 3.0
        case .zdt2: integral = r[1] - 1 + 1.0 / 3.0
        }
        return integral + (r[0] - 1) * r[1]
    }
}

public struct ZDTResult: Codable, Sendable {
    public var problem: String
    public var population: Int
    public var generations: Int
    public var seed: UInt64
    public var referencePoint: [Double]
    public var hypervolume: Double            // of the final population's first front
    public var archiveHypervolume: Double     // of every point evaluated during the run
    public var trueHypervolume: Double
    public var ratio: Double
    public var archiveRatio: Double
    public var seconds: Double

    enum CodingKeys: String, CodingKey {
        case problem, population, generations, seed, hypervolume, ratio, seconds
        case referencePoint = "reference_point", archiveHypervolume = "archive_hypervolume"
        case trueHypervolume = "true_hypervolume", archiveRatio = "archive_ratio"
    }
}

/// NSGA-II with SBX and polynomial mutation on a ZDT problem; the benchmark behind
/// `sculpt search-benchmark` and the tests.
public func runZDTBenchmark(_ problem: ZDT, population: Int = 100, generations: Int = 250, seed: UInt64 = 1,
                            reference: [Double] = [1.1, 1.1],
                            progress: ((Int, Double) -> Void)? = nil) -> ZDTResult {
    let start = Date()
    var rng = SeededRNG(seed: seed)
    let n = ZDT.variables
    let variation = RealVariation(lower: [Double](repeating: 0, count: n), upper: [Double](repeating: 1, count: n))
    var archive: [[Double]] = []
    func evaluate(_ gs: [[Double]]) -> [Individual<[Double]>] {
        gs.map { g in
            let f = problem.evaluate(g)
            archive.append(f)
            return Individual(genome: g, objectives: f)
        }
    }
    let initial = (0..<population).map { _ in (0..<n).map { _ in rng.nextDouble() } }
    var pop = Population(evaluate(initial))
    for gen in 1...max(1, generations) {
        pop = NSGA2Core.generation(pop, variation: variation, using: &rng, evaluate: evaluate)
        // Keep the archive small: only its non-dominated points matter for the hypervolume.
        if archive.count > 4 * population { archive = Pareto.frontIndices(archive).map { archive[$0] } }
        if let progress, gen % 25 == 0 || gen == generations {
            progress(gen, (try? Hypervolume.compute(pop.front.map(\.objectives), reference: reference)) ?? 0)
        }
    }
    let hv = (try? Hypervolume.compute(pop.front.map(\.objectives), reference: reference)) ?? 0
    let ahv = (try? Hypervolume.compute(archive, reference: reference)) ?? 0
    let truth = problem.trueFrontHypervolume(reference: reference)
    return ZDTResult(problem: problem.rawValue, population: population, generations: generations, seed: seed,
                     referencePoint: reference, hypervolume: hv, archiveHypervolume: ahv, trueHypervolume: truth,
                     ratio: hv / truth, archiveRatio: ahv / truth, seconds: Date().timeIntervalSince(start))
}
