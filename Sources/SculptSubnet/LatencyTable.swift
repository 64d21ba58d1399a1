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
    /// Maps the sum of the parts to a forward pass's latency (nil in tables without one: the
    /// plain sum).
    public var calibration: LatencyCalibration?

    enum CodingKeys: String, CodingKey {
        case kind, setting, spaceHash = "space_hash", partsMs = "parts_ms", host, createdAt = "created_at", check, calibration
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
        calibration = try c.decodeIfPresent(LatencyCalibration.self, forKey: .calibration)
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(kind, forKey: .kind); try c.encode(setting, forKey: .setting); try c.encode(spaceHash, forKey: .spaceHash)
        try c.encode(partsMs, forKey: .partsMs); try c.encode(host, forKey: .host); try c.encode(createdAt, forKey: .createdAt)
        try c.encode(check, forKey: .check)
        try c.encodeIfPresent(calibration, forKey: .calibration)
        // Written for readers of the file; recomputed from `check` on load.
        if let m = medianAbsolutePercentageError { try c.encode(m, forKey: .medianAPE) }
    }

    /// The median over the check's sub-networks of |predicted − measured| / measured, in %.
    public var medianAbsolutePercentageError: Double? {
        check.isEmpty ? nil : median(check.map(\.absolutePercentageError))
    }

    /// The sum of the parts' entries.
    public func sum(parts: [String]) throws -> Double {
        try parts.reduce(0) { acc, p in
            guard let v = partsMs[p] else { throw SuperNetworkError("the latency table has no entry \"\(p)\"") }
            return acc + v
        }
    }

    /// The predicted latency of a sub-network: the sum of its parts, through the calibration.
    public func predict(_ encoding: [Int], on network: any SuperNetwork) throws -> Double {
        let s = try sum(parts: network.latencyParts(encoding))
        guard let k = calibration else { return s }
        return k.apply(partsSum: s, params: try network.params(encoding))
    }

    /// A short content hash, part of a search's context when latency comes from the table.
    public var fingerprint: String {
        var text = partsMs.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",") + "|\(setting)"
        if let k = calibration { text += "|\(k.sumCoefficient),\(k.paramsCoefficient),\(k.interceptMs)" }
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
        guard t.setting.batch == setting.batch, t.setting.sequence == setting.sequence, t.setting.threads == setting.threads,
              t.setting.timer == setting.timer else {
            throw SuperNetworkError("\(url.path) is for batch \(t.setting.batch), sequence \(t.setting.sequence), \(t.setting.threads) threads, \(t.setting.timer.rawValue) clock, not batch \(setting.batch), sequence \(setting.sequence), \(setting.threads) threads, \(setting.timer.rawValue) clock; rebuild it with `sculpt latency-table --batch \(setting.batch) --seq \(setting.sequence) --threads \(setting.threads) --clock \(setting.timer.rawValue)`")
        }
        return t
    }
}

/// Maps the sum of a sub-network's table entries S and its parameter count P to its latency:
/// a·S + b·P + c with a, b, c ≥ 0, fitted to direct measurements (least squares on relative
/// error). Parts timed one at a time run with their weights in cache more often than inside a
/// deep forward pass, where the weights of the earlier layers have pushed them out: b is the
/// cost of streaming a parameter from memory, c what a pass costs beyond its parts.
public struct LatencyCalibration: Codable, Sendable {
    public var sumCoefficient: Double
    public var paramsCoefficient: Double
    public var interceptMs: Double
    /// The directly measured sub-networks it was fitted to (their `predictedMs` is the raw sum).
    public var samples: [LatencyCheckSample]

    enum CodingKeys: String, CodingKey {
        case sumCoefficient = "sum_coefficient", paramsCoefficient = "params_coefficient", interceptMs = "intercept_ms", samples
    }

    public func apply(partsSum s: Double, params p: Double) -> Double { sumCoefficient * s + paramsCoefficient * p + interceptMs }

    /// The non-negative least-squares fit of measured ≈ a·S + b·P + c, weighting each sample by
    /// 1/measured (so the fit minimises relative error, the table's yardstick). Every subset of
    /// the three terms is solved and the best one with non-negative coefficients kept; with no
    /// usable fit it is the plain sum (a = 1).
    public static func fit(sums: [Double], params: [Double], measured: [Double], samples: [LatencyCheckSample]) -> LatencyCalibration {
        let scaleS = max(sums.max() ?? 1, 1e-12), scaleP = max(params.max() ?? 1, 1e-12)
        let rows: [[Double]] = sums.indices.map { i in
            let m = measured[i]
            return [sums[i] / scaleS / m, params[i] / scaleP / m, 1 / m]
        }
        var best: (sse: Double, coef: [Double])? = nil
        for mask in 1..<8 {
            let cols = (0..<3).filter { mask & (1 << $0) != 0 }
            guard rows.count >= cols.count else { continue }
            let d = cols.count
            var a = [Double](repeating: 0, count: d * d), b = [Double](repeating: 0, count: d)
            for r in rows {
                for i in 0..<d {
                    b[i] += r[cols[i]]          // target measured/measured = 1
                    for j in 0..<d { a[i * d + j] += r[cols[i]] * r[cols[j]] }
                }
            }
            for i in 0..<d { a[i * d + i] += 1e-12 }
            guard let x = try? choleskySolve(a, b, d), x.allSatisfy({ $0 >= 0 }) else { continue }
            var coef = [0.0, 0.0, 0.0]
            for (i, c) in cols.enumerated() { coef[c] = x[i] }
            var sse = 0.0
            for r in rows {
                var e: Double = -1
                for j in 0..<3 { e += r[j] * coef[j] }
                sse += e * e
            }
            if best == nil || sse < best!.sse { best = (sse, coef) }
        }
        let c = best?.coef ?? [scaleS, 0, 0]
        return LatencyCalibration(sumCoefficient: c[0] / scaleS, paramsCoefficient: c[1] / scaleP, interceptMs: c[2], samples: samples)
    }
}

/// Measures every part of `network`'s table, fits its calibration to `calibrationSubnets`
/// sub-networks measured directly (the smallest, the largest and random ones), and checks the
/// table against `checkSubnets` other random sub-networks measured directly (seeded).
///
/// Parts are timed round-robin (one run of each part per round, `setting.runs` rounds), so a
/// burst of load from other processes falls on every entry alike instead of inflating a few.
/// Sub-networks are measured as the search measures them (consecutive runs of one), which is
/// also how a deployed model runs.
public func buildLatencyTable(_ network: any SuperNetwork, setting: LatencySetting, checkSubnets: Int = 20, calibrationSubnets: Int = 12,
                              seed: UInt64 = 1, progress: ((String) -> Void)? = nil) throws -> LatencyTable {
    try setting.validate()
    let parts = network.allLatencyParts
    let probes = try parts.map { try network.partProbe($0, setting: setting) }
    var rng = SeededRNG(seed: seed)
    let space = network.searchSpace
    var seen = Set<[Int]>()
    func draw(_ n: Int, into out: inout [[Int]]) {
        var tries = 0
        let target = out.count + n
        while out.count < target && tries < 100 * max(1, n) {
            let e = space.random(using: &rng)
            tries += 1
            if seen.insert(e).inserted { out.append(e) }
        }
    }
    // The check's sub-networks are drawn first, so they stay the same whatever the calibration.
    var encodings: [[Int]] = []
    draw(checkSubnets, into: &encodings)
    var calibrationSet: [[Int]] = []
    if calibrationSubnets > 0 {
        for e in [space.minEncoding, space.maxEncoding] where calibrationSet.count < calibrationSubnets {
            calibrationSet.append(e); seen.insert(e)
        }
        draw(calibrationSubnets - calibrationSet.count, into: &calibrationSet)
    }
    let forwards = try (encodings + calibrationSet).map { try network.forwardProbe($0, setting: setting) }
    let (partMs, measured) = withThreads(setting.threads) { () -> ([Double], [Double]) in
        progress?("timing \(parts.count) parts: \(setting)")
        let p = interleavedMedians(probes, warmup: setting.warmup, runs: setting.runs, clock: setting.timer)
        progress?("timing \(forwards.count) random sub-networks directly (\(calibrationSet.count) to calibrate, \(encodings.count) to check)")
        let m = forwards.map { medianMilliseconds(warmup: setting.warmup, runs: setting.runs, clock: setting.timer, $0) }
        return (p, m)
    }
    var table = LatencyTable(kind: network.kind, setting: setting, spaceHash: space.hash,
                             partsMs: Dictionary(uniqueKeysWithValues: zip(parts, partMs)),
                             host: ProcessInfo.processInfo.hostName, createdAt: ISO8601DateFormatter().string(from: Date()), check: [])
    func sample(_ e: [Int], _ m: Double) throws -> LatencyCheckSample {
        LatencyCheckSample(subnet: try network.subnetJSON(e), encoding: e, predictedMs: try table.sum(parts: network.latencyParts(e)), measuredMs: m)
    }
    if !calibrationSet.isEmpty {
        let samples = try zip(calibrationSet, measured.suffix(calibrationSet.count)).map { try sample($0, $1) }
        table.calibration = LatencyCalibration.fit(sums: samples.map(\.predictedMs), params: try calibrationSet.map { try network.params($0) },
                                                   measured: samples.map(\.measuredMs), samples: samples)
    }
    table.check = try zip(encodings, measured.prefix(encodings.count)).map { e, m in
        LatencyCheckSample(subnet: try network.subnetJSON(e), encoding: e, predictedMs: try table.predict(e, on: network), measuredMs: m)
    }
    return table
}

/// Median milliseconds of each body, timed round-robin after `warmup` rounds.
func interleavedMedians(_ bodies: [() -> Void], warmup: Int, runs: Int, clock: LatencyClock = .wall) -> [Double] {
    for _ in 0..<warmup { for b in bodies { b() } }
    var times = [[Double]](repeating: [], count: bodies.count)
    for _ in 0..<max(1, runs) {
        for (i, b) in bodies.enumerated() {
            let t0 = clockMilliseconds(clock)
            b()
            times[i].append(clockMilliseconds(clock) - t0)
        }
    }
    return times.map(median)
}

/// `sculpt latency-table RUN_DIR`: builds the table, writes it atomically into the run
/// directory, and returns it with its error against direct measurements.
public func buildRunLatencyTable(run: URL, setting: LatencySetting, checkSubnets: Int = 20, calibrationSubnets: Int = 12, seed: UInt64 = 1,
                                 progress: ((String) -> Void)? = nil) throws -> (table: LatencyTable, url: URL) {
    let loaded = try loadSuperNetwork(run: run, loadValidation: false)
    let table = try buildLatencyTable(loaded.network, setting: setting, checkSubnets: checkSubnets, calibrationSubnets: calibrationSubnets,
                                      seed: seed, progress: progress)
    let url = LatencyTable.url(in: loaded.runDirectory)
    try table.write(to: url)
    return (table, url)
}
