import Foundation
import SculptCore

/// The value an encoding holds in the slot of a dimension that is inactive (e.g. the heads of a
/// layer beyond the chosen depth), so equal sub-networks have equal encodings.
public let inactiveSlot = -1

/// One named elastic dimension with its ordered integer choices (e.g. "layers": [2, 4, 6]).
///
/// `activeWhen` makes a dimension depend on another one declaratively (no closure, so a space
/// stays Codable and hashable): "heads.3 is active when layers >= 4".
public struct Dimension: Codable, Sendable, Equatable {
    public var name: String
    public var choices: [Int]
    public var activeWhen: Condition?

    /// "`dimension`'s chosen value >= `atLeast`".
    public struct Condition: Codable, Sendable, Equatable {
        public var dimension: String
        public var atLeast: Int
        public init(dimension: String, atLeast: Int) { self.dimension = dimension; self.atLeast = atLeast }
    }

    public init(name: String, choices: [Int], activeWhen: Condition? = nil) {
        self.name = name
        self.choices = choices
        self.activeWhen = activeWhen
    }
}

public enum SearchSpaceError: Error, CustomStringConvertible, Equatable {
    case empty
    case duplicateDimension(String)
    case noChoices(String)
    case unknownDependency(dimension: String, dependsOn: String)
    case dependencyOrder(dimension: String, dependsOn: String)
    case wrongLength(expected: Int, got: Int)
    case indexOutOfRange(dimension: String, index: Int, count: Int)
    case inactiveNotBlank(dimension: String)
    case activeBlank(dimension: String)

    public var description: String {
        switch self {
        case .empty: return "the search space has no dimensions"
        case .duplicateDimension(let n): return "the search space names dimension \"\(n)\" twice"
        case .noChoices(let n): return "dimension \"\(n)\" has no choices"
        case .unknownDependency(let d, let on): return "dimension \"\(d)\" depends on unknown dimension \"\(on)\""
        case .dependencyOrder(let d, let on): return "dimension \"\(d)\" depends on \"\(on)\", which must come before it"
        case .wrongLength(let e, let g): return "encoding has \(g) entries, the search space has \(e) dimensions"
        case .indexOutOfRange(let d, let i, let c): return "encoding index \(i) for dimension \"\(d)\" is outside 0..<\(c)"
        case .inactiveNotBlank(let d): return "dimension \"\(d)\" is inactive but its slot is not blank (\(inactiveSlot))"
        case .activeBlank(let d): return "dimension \"\(d)\" is active but its slot is blank"
        }
    }
}

/// Named dimensions; a sub-network is encoded as one choice index per dimension (DyNAS-T style),
/// with inactive dimensions blanked to `inactiveSlot`.
public struct SearchSpace: Codable, Sendable, Equatable {
    public var dimensions: [Dimension]
    /// What an encoding is measured on (e.g. the super-network's run and weights, the
    /// validation data, the latency setting). It is part of the hash that keys the store, so
    /// one store shared by searches over different super-networks never answers a lookup with
    /// another network's measurements. Nil (omitted from the JSON) for abstract problems.
    public var context: String?

    public init(dimensions: [Dimension], context: String? = nil) throws {
        self.dimensions = dimensions
        self.context = context
        try validate()
    }

    /// Checks names, choices and that every dependency points to an earlier dimension (so one
    /// left-to-right pass decides activity).
    public func validate() throws {
        guard !dimensions.isEmpty else { throw SearchSpaceError.empty }
        var seen: [String: Int] = [:]
        for (i, d) in dimensions.enumerated() {
            guard seen[d.name] == nil else { throw SearchSpaceError.duplicateDimension(d.name) }
            guard !d.choices.isEmpty else { throw SearchSpaceError.noChoices(d.name) }
            if let c = d.activeWhen {
                guard dimensions.contains(where: { $0.name == c.dimension }) else {
                    throw SearchSpaceError.unknownDependency(dimension: d.name, dependsOn: c.dimension)
                }
                guard seen[c.dimension] != nil else { throw SearchSpaceError.dependencyOrder(dimension: d.name, dependsOn: c.dimension) }
            }
            seen[d.name] = i
        }
    }

    public var count: Int { dimensions.count }

    public func index(of name: String) -> Int? { dimensions.firstIndex { $0.name == name } }

    /// Whether dimension `i` is active given the (earlier) entries of `encoding`.
    public func isActive(_ i: Int, given encoding: [Int]) -> Bool {
        guard let c = dimensions[i].activeWhen, let j = index(of: c.dimension) else { return true }
        guard isActive(j, given: encoding), encoding[j] >= 0, encoding[j] < dimensions[j].choices.count else { return false }
        return dimensions[j].choices[encoding[j]] >= c.atLeast
    }

    /// Blanks inactive slots and fills active blank slots (chosen with `rng`), so any encoding
    /// produced by crossover or mutation becomes a valid one. Consumes randomness only for
    /// slots that need filling, which keeps replays deterministic.
    public func repair(_ encoding: [Int], using rng: inout SeededRNG) -> [Int] {
        var e = encoding
        for i in e.indices {
            if !isActive(i, given: e) { e[i] = inactiveSlot }
            else if e[i] < 0 || e[i] >= dimensions[i].choices.count { e[i] = Int(rng.next() % UInt64(dimensions[i].choices.count)) }
        }
        return e
    }

    /// Throws a message naming the dimension when `encoding` is not canonical.
    public func check(_ encoding: [Int]) throws {
        guard encoding.count == count else { throw SearchSpaceError.wrongLength(expected: count, got: encoding.count) }
        for (i, d) in dimensions.enumerated() {
            if isActive(i, given: encoding) {
                guard encoding[i] != inactiveSlot else { throw SearchSpaceError.activeBlank(dimension: d.name) }
                guard encoding[i] >= 0, encoding[i] < d.choices.count else {
                    throw SearchSpaceError.indexOutOfRange(dimension: d.name, index: encoding[i], count: d.choices.count)
                }
            } else if encoding[i] != inactiveSlot {
                throw SearchSpaceError.inactiveNotBlank(dimension: d.name)
            }
        }
    }

    public func random(using rng: inout SeededRNG) -> [Int] {
        repair([Int](repeating: -2, count: count), using: &rng)
    }

    /// The smallest sub-network: first choice everywhere (choices are ordered small to large).
    public var minEncoding: [Int] {
        var e = [Int](repeating: 0, count: count)
        for i in e.indices where !isActive(i, given: e) { e[i] = inactiveSlot }
        return e
    }

    /// The largest sub-network: last choice everywhere.
    public var maxEncoding: [Int] {
        var e = dimensions.map { $0.choices.count - 1 }
        for i in e.indices where !isActive(i, given: e) { e[i] = inactiveSlot }
        return e
    }

    /// The sub-network as {dimension: value} for its active dimensions.
    public func values(_ encoding: [Int]) -> [String: Int] {
        var out: [String: Int] = [:]
        for (i, d) in dimensions.enumerated() where encoding[i] >= 0 && encoding[i] < d.choices.count {
            out[d.name] = d.choices[encoding[i]]
        }
        return out
    }

    /// The sub-network JSON (sorted keys) stored beside each evaluation.
    public func subnetJSON(_ encoding: [Int]) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return (try? encoder.encode(values(encoding))).flatMap { String(data: $0, encoding: .utf8) } ?? "{}"
    }

    /// Canonical JSON of the space; its hash keys the evaluation store, so results from a
    /// different space never answer a lookup.
    public var canonicalJSON: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return (try? encoder.encode(self)).flatMap { String(data: $0, encoding: .utf8) } ?? ""
    }

    /// FNV-1a 64 of the canonical JSON, as 16 hex digits (stable across runs and platforms,
    /// unlike `Hasher`).
    public var hash: String { fnv1a64Hex(canonicalJSON) }

    /// A uniform space of `count` dimensions named "x0", "x1", … with the same choices.
    public static func uniform(count: Int, choices: [Int]) -> SearchSpace {
        // Force-try is safe: distinct names, non-empty choices, no dependencies.
        try! SearchSpace(dimensions: (0..<count).map { Dimension(name: "x\($0)", choices: choices) })
    }
}

func fnv1a64Hex(_ s: String) -> String {
    var h: UInt64 = 0xcbf2_9ce4_8422_2325
    for b in s.utf8 { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01b3 }
    let hex = String(h, radix: 16)
    return String(repeating: "0", count: 16 - hex.count) + hex
}

/// Encodings as text for the store ("2,0,-1,3").
public func encodingText(_ e: [Int]) -> String { e.map(String.init).joined(separator: ",") }

public func parseEncodingText(_ s: String) -> [Int]? {
    if s.isEmpty { return [] }
    var out: [Int] = []
    for part in s.split(separator: ",", omittingEmptySubsequences: false) {
        guard let v = Int(part) else { return nil }
        out.append(v)
    }
    return out
}
