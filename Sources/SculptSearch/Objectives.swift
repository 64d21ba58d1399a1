import Foundation

public enum Direction: String, Codable, Sendable { case min, max }

/// A named objective to minimise or maximise. Names are the measured keys an evaluator returns.
public struct ObjectiveSpec: Codable, Sendable, Equatable, CustomStringConvertible {
    public var name: String
    public var direction: Direction
    public init(_ name: String, _ direction: Direction) { self.name = name; self.direction = direction }

    /// Known objectives; any other key is accepted only when the caller allows measured extras.
    public static let knownNames: [String: Direction] = [
        "accuracy": .max, "loss": .min, "latency": .min, "macs": .min, "params": .min,
    ]

    public var description: String { "\(name):\(direction.rawValue)" }

    /// The value in minimisation form (max objectives negated), as used by sorting and hypervolume.
    @inline(__always) public func minimised(_ v: Double) -> Double { direction == .max ? -v : v }

    /// Parses "accuracy:max,latency:min". A bare known name takes its usual direction.
    /// `extraNames` are further keys the evaluator is known to measure.
    public static func parseList(_ text: String, extraNames: Set<String> = []) throws -> [ObjectiveSpec] {
        var out: [ObjectiveSpec] = []
        for raw in text.split(separator: ",", omittingEmptySubsequences: false) {
            let item = raw.trimmingCharacters(in: .whitespaces)
            guard !item.isEmpty else { throw ObjectiveError.empty(text) }
            let parts = item.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
            guard parts.count <= 2 else { throw ObjectiveError.malformed(item) }
            let name = parts[0]
            guard knownNames[name] != nil || extraNames.contains(name) else {
                throw ObjectiveError.unknownName(name, known: knownNames.keys.sorted() + extraNames.sorted())
            }
            let direction: Direction
            if parts.count == 2 {
                guard let d = Direction(rawValue: parts[1]) else { throw ObjectiveError.unknownDirection(item) }
                direction = d
            } else if let d = knownNames[name] {
                direction = d
            } else {
                throw ObjectiveError.missingDirection(name)
            }
            guard !out.contains(where: { $0.name == name }) else { throw ObjectiveError.duplicate(name) }
            out.append(ObjectiveSpec(name, direction))
        }
        return out
    }
}

/// `name <= bound` or `name >= bound` on a measured value. Infeasible points lose to feasible
/// ones by constraint-domination (Deb 2000), not by a penalty.
public struct Constraint: Codable, Sendable, Equatable, CustomStringConvertible {
    public enum Relation: String, Codable, Sendable { case atMost = "<=", atLeast = ">=" }
    public var name: String
    public var relation: Relation
    public var bound: Double
    public init(_ name: String, _ relation: Relation, _ bound: Double) { self.name = name; self.relation = relation; self.bound = bound }

    public var description: String { "\(name)\(relation.rawValue)\(bound)" }

    /// How far `value` is outside the bound (0 when satisfied).
    public func violation(_ value: Double) -> Double {
        switch relation {
        case .atMost: return max(0, value - bound)
        case .atLeast: return max(0, bound - value)
        }
    }

    /// Parses "latency<=12.5" or "accuracy>=0.8".
    public static func parse(_ text: String) throws -> Constraint {
        let t = text.replacingOccurrences(of: " ", with: "")
        for rel in [Relation.atMost, .atLeast] {
            if let r = t.range(of: rel.rawValue) {
                let name = String(t[..<r.lowerBound]), num = String(t[r.upperBound...])
                guard !name.isEmpty, let v = Double(num), v.isFinite else { throw ObjectiveError.badConstraint(text) }
                return Constraint(name, rel, v)
            }
        }
        throw ObjectiveError.badConstraint(text)
    }

    /// The CLI's `--max-latency-ms` and `--max-macs` as constraints.
    public static func fromOptions(maxLatencyMs: Double?, maxMacs: Double?, generic: [String]) throws -> [Constraint] {
        var out: [Constraint] = []
        if let l = maxLatencyMs { out.append(Constraint("latency", .atMost, l)) }
        if let m = maxMacs { out.append(Constraint("macs", .atMost, m)) }
        for g in generic { out.append(try parse(g)) }
        return out
    }

    /// Fails with `impossibleConstraint` when even the extreme sub-network that is best for this
    /// constraint (the smallest one for upper bounds on cost, the largest for lower bounds on
    /// accuracy, as the caller measured them) violates it: nothing in the space can satisfy it.
    public static func checkSatisfiable(_ constraints: [Constraint], bestCase: [String: Double]) throws {
        for c in constraints {
            guard let v = bestCase[c.name] else { continue }
            if c.violation(v) > 0 { throw ObjectiveError.impossibleConstraint(c, bestValue: v) }
        }
    }
}

public enum ObjectiveError: Error, CustomStringConvertible, Equatable {
    case empty(String)
    case malformed(String)
    case unknownName(String, known: [String])
    case unknownDirection(String)
    case missingDirection(String)
    case duplicate(String)
    case badConstraint(String)
    case impossibleConstraint(Constraint, bestValue: Double)
    case missingMeasurement(String)
    case nonFinite(String, encoding: [Int])

    public var description: String {
        switch self {
        case .empty(let t): return "empty objective in \"\(t)\" (expected e.g. accuracy:max,latency:min)"
        case .malformed(let i): return "malformed objective \"\(i)\" (expected NAME:min or NAME:max)"
        case .unknownName(let n, let k): return "unknown objective \"\(n)\" (known: \(k.joined(separator: ", ")))"
        case .unknownDirection(let i): return "unknown direction in \"\(i)\" (use min or max)"
        case .missingDirection(let n): return "objective \"\(n)\" needs a direction (\(n):min or \(n):max)"
        case .duplicate(let n): return "objective \"\(n)\" is given twice"
        case .badConstraint(let t): return "malformed constraint \"\(t)\" (expected NAME<=VALUE or NAME>=VALUE)"
        case .impossibleConstraint(let c, let v):
            return "impossible constraint \(c): the best sub-network in the space for it measures \(c.name)=\(v)"
        case .missingMeasurement(let n): return "the evaluator returned no value for \"\(n)\""
        case .nonFinite(let n, let e): return "the evaluator returned a non-finite \"\(n)\" for sub-network [\(e.map(String.init).joined(separator: ","))]"
        }
    }
}

/// Measures sub-networks for real (accuracy on validation data, latency on this CPU, ...).
/// Returns every requested objective's value by name, and may return more keys (constraints
/// are read from the same dictionary).
public protocol SubnetEvaluator {
    func evaluate(_ encoding: [Int], objectives: [ObjectiveSpec]) throws -> [String: Double]
}

/// An evaluator from a function, for tests and benchmarks.
public struct FunctionEvaluator: SubnetEvaluator {
    let body: ([Int]) throws -> [String: Double]
    public init(_ body: @escaping ([Int]) throws -> [String: Double]) { self.body = body }
    public func evaluate(_ encoding: [Int], objectives: [ObjectiveSpec]) throws -> [String: Double] { try body(encoding) }
}
