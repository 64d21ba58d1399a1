import Foundation
import Dispatch
import SculptCore
import SculptIO
import SculptSearch

/// A sub-network whose latency was both predicted by the table and measured directly.
public struct LatencyCheckSample: Codable, Sendable {
    public var subnet: String
    public var encoding: [Int]
    public var predictedMs: Double
    public var measuredMs: Double
    public var absolutePercentageError: Double { abs(predictedMs - measuredMs) / measuredMs * 100 }

    enum CodingKeys: String, CodingKey { case subnet, encoding, predictedMs = "predicted_ms", measuredMs = "measured_ms" }
}

/// Per-part latencies measured on this CPU (`latency_table.json` in the run directory); a
/// sub-network's predicted latency is the sum of its parts' entries.
public struct LatencyTable: Codable, Sendable {
    public static let fileName = "latency_table.json"
    public var kind: String
    public var setting: LatencySetting
    /// Hash of the super-network's search space: a table of another space is refused.
    public var spaceHash: String
    /// Milliseconds per part, each the median of `setting.runs` interleaved runs.
    public var partsMs: [String: Double]
    public var host: String
    public var createdAt: String
    /// The table against direct measurements of random sub-networks.
    public var check: [LatencyCheckSample]

    enum CodingKeys: String, CodingKey {
        case kind, setting, spaceHash = "space_hash", partsMs = "parts_ms", host, createdAt = "created_at", check
        case medianAPE = "median_absolute_percentage_error"
    }

    public init(kind: String, setting: LatencySetting, spaceHash: String, partsMs: [String: Double], host: String, createdAt: String, check: [LatencyCheckSample]) {
        self.kind = kind; self.setting = setting; self.spaceHash = spaceHash; self.partsMs = partsMs
        self.host = host; self.createdAt = createdAt; self.check = check
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        kind = try c.decode(String.self, forKey: .kind)
        setting = try c.decode(LatencySetting.self, forKey: .setting)
        spaceHash = try c.decode(String.self, forKey: .spaceHash)
        partsMs = try c.decode([String: Double].self, forKey: .partsMs)
        host = try c.decode(String.self, forKey: .host)
        createdAt = try c.decode(String.self, forKey: .createdAt)
        check = try c.decode([LatencyCheckSample].self, forKey: .check)
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(kind, forKey: .kind); try c.encode(setting, forKey: .setting); try c.encode(spaceHash, forKey: .spaceHash)
        try c.encode(partsMs, forKey: .partsMs); try c.encode(host, forKey: .host); try c.encode(createdAt, forKey: .createdAt)
        try c.encode(check, forKey: .check)
        // Written for readers of the file; recomputed from `check` on load.
        if let m = medianAbsolutePercentageError { try c.encode(m, forKey: .medianAPE) }
    }

    /// The median over the check's sub-networks of |predicted − measured| / measured, in %.
    public var medianAbsolutePercentageError: Double? {
        check.isEmpty ? nil : median(check.map(\.absolutePercentageError))
    }

    /// The sum of the parts' entries.
    public func predict(parts: [String]) throws -> Double {
        try parts.reduce(0) { acc, p in
            guard let v = partsMs[p] else { throw SuperNetworkError("the latency table has no entry \"\(p)\"") }
            return acc + v
        }
    }

    public func predict(_ encoding: [Int], on network: any SuperNetwork) throws -> Double {
        try predict(parts: network.latencyParts(encoding))
    }

    /// A short content hash, part of a search's context when latency comes from the table.
    public var fingerprint: String {
        let text = partsMs.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",") + "|\(setting)"
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in text.utf8 { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01b3 }
        return String(h, radix: 16)
    }

    public static func url(in runDirectory: URL) -> URL { runDirectory.appendingPathComponent(fileName) }

    public func write(to url: URL) throws {
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        try AtomicFile.write(try e.encode(self), to: url)
    }

    public static func read(from url: URL) throws -> LatencyTable {
        guard let data = try? Data(contentsOf: url) else { throw SuperNetworkError("\(url.path): no latency table (run `sculpt latency-table` first)") }
        do { return try JSONDecoder().decode(LatencyTable.self, from: data) } catch {
            throw SuperNetworkError("\(url.path): not a latency table (\(error))")
        }
    }

    /// The run's table, checked to fit `network` and `setting` (timing protocol aside).
    public static func load(runDirectory: URL, network: any SuperNetwork, setting: LatencySetting) throws -> LatencyTable {
        let url = self.url(in: runDirectory)
        let t = try read(from: url)
        guard t.spaceHash == network.searchSpace.hash, t.kind == network.kind else {
            throw SuperNetworkError("\(url.path) was built for another super-network; rebuild it with `sculpt latency-table`")
        }
        guard t.setting.batch == setting.batch, t.setting.sequence == setting.sequence, t.setting.threads == setting.threads else {
            throw SuperNetworkError("\(url.path) is for batch \(t.setting.batch), sequence \(t.setting.sequence), \(t.setting.threads) threads, not batch \(setting.batch), sequence \(setting.sequence), \(setting.threads) threads; rebuild it with `sculpt latency-table --batch \(setting.batch) --seq \(setting.sequence) --threads \(setting.threads)`")
        }
        return t
    }
}

/// Measures every part of `network`'s table and checks the table against `checkSubnets`
/// random sub-networks measured directly (seeded).
///
/// Parts are timed round-robin (one run of each part per round, `setting.runs` rounds), so a
/// burst of load from other processes falls on every entry alike instead of inflating a few.
public func buildLatencyTable(_ network: any SuperNetwork, setting: LatencySetting, checkSubnets: Int = 20, seed: UInt64 = 1,
                              progress: ((String) -> Void)? = nil) throws -> LatencyTable {
    try setting.validate()
    let parts = network.allLatencyParts
    let probes = try parts.map { try network.partProbe($0, setting: setting) }
    var rng = SeededRNG(seed: seed)
    var encodings: [[Int]] = []
    var seen = Set<[Int]>()
    var tries = 0
    while encodings.count < checkSubnets && tries < 100 * max(1, checkSubnets) {
        let e = network.searchSpace.random(using: &rng)
        tries += 1
        if seen.insert(e).inserted { encodings.append(e) }
    }
    let forwards = try encodings.map { try network.forwardProbe($0, setting: setting) }
    let (partMs, measured) = withThreads(setting.threads) { () -> ([Double], [Double]) in
        progress?("timing \(parts.count) parts: \(setting)")
        let p = interleavedMedians(probes, warmup: setting.warmup, runs: setting.runs)
        progress?("timing \(forwards.count) random sub-networks directly")
        // Directly measured as the search measures (consecutive runs of one sub-network), which
        // is also how a deployed model runs.
        let m = forwards.map { medianMilliseconds(warmup: setting.warmup, runs: setting.runs, $0) }
        return (p, m)
    }
    var table = LatencyTable(kind: network.kind, setting: setting, spaceHash: network.searchSpace.hash,
                             partsMs: Dictionary(uniqueKeysWithValues: zip(parts, partMs)),
                             host: ProcessInfo.processInfo.hostName, createdAt: ISO8601DateFormatter().string(from: Date()), check: [])
    table.check = try zip(encodings, measured).map { e, m in
        LatencyCheckSample(subnet: try network.subnetJSON(e), encoding: e, predictedMs: try table.predict(e, on: network), measuredMs: m)
    }
    return table
}

/// Median milliseconds of each body, timed round-robin after `warmup` rounds.
func interleavedMedians(_ bodies: [() -> Void], warmup: Int, runs: Int) -> [Double] {
    for _ in 0..<warmup { for b in bodies { b() } }
    var times = [[Double]](repeating: [], count: bodies.count)
    for _ in 0..<max(1, runs) {
        for (i, b) in bodies.enumerated() {
            let t0 = DispatchTime.now().uptimeNanoseconds
            b()
            times[i].append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e6)
        }
    }
    return times.map(median)
}

/// `sculpt latency-table RUN_DIR`: builds the table, writes it atomically into the run
/// directory, and returns it with its error against direct measurements.
public func buildRunLatencyTable(run: URL, setting: LatencySetting, checkSubnets: Int = 20, seed: UInt64 = 1,
                                 progress: ((String) -> Void)? = nil) throws -> (table: LatencyTable, url: URL) {
    let loaded = try loadSuperNetwork(run: run, loadValidation: false)
    let table = try buildLatencyTable(loaded.network, setting: setting, checkSubnets: checkSubnets, seed: seed, progress: progress)
    let url = LatencyTable.url(in: loaded.runDirectory)
    try table.write(to: url)
    return (table, url)
}
