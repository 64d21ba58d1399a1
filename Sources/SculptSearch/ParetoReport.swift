import Foundation
import SculptIO

/// One sub-network of a front, as printed, exported and picked by `sculpt extract --rank N`.
public struct ParetoRow: Codable, Sendable, Equatable {
    /// 1-based position in the front, ordered by the first objective (best first).
    public var rank: Int
    public var objectives: [String: Double]
    public var encoding: [Int]
    public var subnet: [String: Int]
}

public enum ReportError: Error, CustomStringConvertible {
    case unreadableConfig(String)
    case empty(String)
    public var description: String {
        switch self {
        case .unreadableConfig(let id): return "search \"\(id)\" has settings this build cannot read"
        case .empty(let id): return "search \"\(id)\" has no evaluations yet"
        }
    }
}

/// The Pareto front of one search in a store, with its hypervolume; what `sculpt pareto` prints.
public struct ParetoReport: Codable, Sendable {
    public var searchId: String
    public var objectives: [ObjectiveSpec]
    public var constraints: [Constraint]
    /// Real evaluations stored for this search.
    public var evaluations: Int
    public var hypervolume: Double
    /// In the objectives' own units (max objectives are maximised, so their reference is a
    /// lower bound).
    public var referencePoint: [Double]
    public var front: [ParetoRow]
    /// Every evaluated point's objective values (for the plot; not in the JSON).
    public var points: [[Double]] = []

    enum CodingKeys: String, CodingKey {
        case searchId = "search_id", objectives, constraints, evaluations, hypervolume
        case referencePoint = "reference_point", front
    }

    /// Reads a search from the store at `path` (the only one, or `searchId`).
    public static func load(path: String, searchId: String? = nil) throws -> ParetoReport {
        let store = try EvaluationStore(path: path)
        let searches = try store.searches()
        let record: SearchRecord
        if let id = searchId {
            guard let r = searches.first(where: { $0.id == id }) else { throw StoreError.unknownSearch(id, known: searches.map(\.id)) }
            record = r
        } else {
            guard !searches.isEmpty else { throw StoreError.noSearches(path) }
            guard searches.count == 1 else { throw StoreError.ambiguousSearch(searches.map(\.id)) }
            record = searches[0]
        }
        guard let config = try? JSONDecoder().decode(SearchConfig.self, from: Data(record.configJSON.utf8)) else {
            throw ReportError.unreadableConfig(record.id)
        }
        let members = try store.members(searchId: record.id)
        guard !members.isEmpty else { throw ReportError.empty(record.id) }
        let reference = record.referenceJSON.flatMap { try? JSONDecoder().decode([Double].self, from: Data($0.utf8)) }
        return build(searchId: record.id, config: config, members: members, reference: reference)
    }

    static func build(searchId: String, config: SearchConfig, members: [StoredEvaluation], reference: [Double]?) -> ParetoReport {
        let objs = config.objectives
        let usable = members.filter { m in objs.allSatisfy { m.values[$0.name] != nil } }
        let minimised = usable.map { m in objs.map { $0.minimised(m.values[$0.name]!) } }
        let violation = usable.map { m in
            config.constraints.reduce(0.0) { $0 + $1.violation(m.values[$1.name] ?? .infinity) }
        }
        let feasible = usable.indices.filter { violation[$0] <= 0 }
        let front = Pareto.frontIndices(feasible.map { minimised[$0] }).map { feasible[$0] }
            .sorted { minimised[$0].lexicographicallyPrecedes(minimised[$1]) }
        // Reference: the one the search fixed, else the worst measured value per objective
        // plus 10 % of its range (the same rule the search uses).
        let refMin: [Double]
        if let r = reference, r.count == objs.count {
            refMin = zip(objs, r).map { $0.minimised($1) }
        } else {
            refMin = objs.indices.map { m in
                let col = minimised.map { $0[m] }
                let lo = col.min() ?? 0, hi = col.max() ?? 0
                return hi + 0.1 * max(hi - lo, abs(hi) * 1e-3, 1e-12)
            }
        }
        let hv = (try? Hypervolume.compute(front.map { minimised[$0] }, reference: refMin)) ?? 0
        let rows = front.enumerated().map { k, i in
            ParetoRow(rank: k + 1, objectives: Dictionary(uniqueKeysWithValues: objs.map { ($0.name, usable[i].values[$0.name]!) }),
                      encoding: usable[i].encoding, subnet: subnetValues(usable[i].subnetJSON))
        }
        return ParetoReport(searchId: searchId, objectives: objs, constraints: config.constraints, evaluations: members.count,
                            hypervolume: hv, referencePoint: zip(objs, refMin).map { $0.minimised($1) }, front: rows,
                            points: usable.map { m in objs.map { m.values[$0.name]! } })
    }

    static func subnetValues(_ json: String) -> [String: Int] {
        (try? JSONDecoder().decode([String: Int].self, from: Data(json.utf8))) ?? [:]
    }

    /// One JSON object (sorted keys).
    public func json() -> String {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(data: (try? e.encode(self)) ?? Data("{}".utf8), encoding: .utf8) ?? "{}"
    }

    /// Header and rows for a text table: rank, each objective, sub-network JSON.
    public func tableRows() -> (header: [String], rows: [[String]]) {
        let header = ["rank"] + objectives.map { "\($0.name) (\($0.direction.rawValue))" } + ["subnet"]
        let rows = front.map { r in
            ["\(r.rank)"] + objectives.map { String(format: "%.6g", r.objectives[$0.name]!) } + [ParetoReport.compactJSON(r.subnet)]
        }
        return (header, rows)
    }

    /// One-line JSON of a sub-network's dimension values with per-index dimensions ("heads.0",
    /// "heads.1", …) gathered into lists in index order — `{"heads":[12,6],"layers":2}`, the
    /// form `sculpt extract --subnet` reads.
    static func compactJSON(_ v: [String: Int]) -> String {
        var scalars: [String: Int] = [:], lists: [String: [(Int, Int)]] = [:]
        for (key, value) in v {
            if let dot = key.lastIndex(of: "."), let i = Int(key[key.index(after: dot)...]) {
                lists[String(key[..<dot]), default: []].append((i, value))
            } else {
                scalars[key] = value
            }
        }
        let fields = scalars.map { ($0.key, "\($0.value)") }
            + lists.map { ($0.key, "[" + $0.value.sorted { $0.0 < $1.0 }.map { "\($0.1)" }.joined(separator: ",") + "]") }
        return "{" + fields.sorted { $0.0 < $1.0 }.map { "\"\($0.0)\":\($0.1)" }.joined(separator: ",") + "}"
    }

    /// CSV with a header: rank, objectives, encoding (quoted), subnet JSON (quoted).
    public func csv() -> String {
        func q(_ s: String) -> String { "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" }
        var out = (["rank"] + objectives.map(\.name) + ["encoding", "subnet"]).joined(separator: ",") + "\n"
        for r in front {
            out += (["\(r.rank)"] + objectives.map { "\(r.objectives[$0.name]!)" } + [q(encodingText(r.encoding)), q(ParetoReport.compactJSON(r.subnet))])
                .joined(separator: ",") + "\n"
        }
        return out
    }

    public func writeCSV(to url: URL) throws { try AtomicFile.write(Data(csv().utf8), to: url) }

    /// Every evaluated point of the first two objectives, the front highlighted and connected.
    public func plot() -> SVGPlot {
        let a = objectives[0], b = objectives.count > 1 ? objectives[1] : objectives[0]
        let bi = objectives.count > 1 ? 1 : 0
        var p = SVGPlot(title: "Search \(searchId): \(evaluations) evaluations, front of \(front.count), hypervolume \(String(format: "%.4g", hypervolume))"
                            + (objectives.count > 2 ? " (first two of \(objectives.count) objectives)" : ""),
                        xLabel: "\(a.name) (\(a.direction.rawValue))", yLabel: "\(b.name) (\(b.direction.rawValue))")
        p.series.append(.init(name: "evaluated", points: points.map { (x: $0[0], y: $0[bi]) }, style: .markers,
                              color: "#999999", markerRadius: 2.5, opacity: 0.6))
        let f = front.map { (x: $0.objectives[a.name]!, y: $0.objectives[b.name]!) }.sorted { $0.x < $1.x }
        p.series.append(.init(name: "Pareto front", points: f, style: .lineAndMarkers, color: SVGPlot.palette[1], markerRadius: 4))
        return p
    }

    public func writeSVG(to url: URL) throws { try plot().write(to: url) }
}
