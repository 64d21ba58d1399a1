import Foundation
import SculptIO

/// Which parameters a fine-tune changed, streamed tensor by tensor (`sculpt diff`).
public enum UpdateAnalysis {
    /// Per fine-tune counts for one tensor or group.
    public struct Change: Codable, Sendable, Equatable {
        /// Entries with Δ ≠ 0.
        public var changed = 0
        /// Entries with |Δ| > tolerance.
        public var beyond = 0
        /// Numerical rank of ΔW (2-D tensors that changed), see `SVD.rank`.
        public var rank: Int?
    }

    public struct Entry: Codable, Sendable {
        public var name: String
        public var shape: [Int]
        public var count: Int
        /// nil outside the layers (embeddings, pooler, heads).
        public var layer: Int?
        public var changes: [Change]
        /// Two fine-tunes: entries beyond the tolerance in both, and what independent sets of
        /// those sizes would share on average (|S₁|·|S₂|/n).
        public var overlap: Int?
        public var expectedOverlap: Double?
    }

    public struct Report: Codable, Sendable {
        public var base: String
        public var finetunes: [String]
        public var tolerance: Float
        public var parameters = 0
        public var changed: [Int] = []
        public var beyond: [Int] = []
        public var overlap: Int?
        /// Expected overlap of independent sets of the two sizes over all parameters.
        public var expectedOverlap: Double?
        /// overlap / expectedOverlap (1 = chance, > 1 = the fine-tunes changed the same entries).
        public var overlapRatio: Double?
        public var matrices: [Entry] = []
        /// Per layer ("layer.ℓ") and "other", same fields as a matrix (rank omitted).
        public var layers: [Entry] = []
        /// Tensors left out: missing in a fine-tune, another shape, or not floats.
        public var skipped: [String] = []
    }

    /// Compares `finetunes` (one or two) with `base`. Directories as for merges (model dir or
    /// run dir). `rank`: compute each changed matrix's numerical rank (Householder QR + Jacobi;
    /// the costly part on large matrices).
    public static func diff(base: String, finetunes: [String], tolerance: Float = 0, rank: Bool = true) throws -> Report {
        guard (1...2).contains(finetunes.count) else { throw MergeError("diff: give one or two fine-tuned models") }
        guard tolerance >= 0, tolerance.isFinite else { throw MergeError("diff: --tolerance must be a finite number ≥ 0") }
        let bdir = try ModelDirectory.resolve(base, role: "base")
        let bf = try SafeTensorsFile(path: bdir.appendingPathComponent("model.safetensors").path)
        let fts = try finetunes.enumerated().map { i, p in
            try SafeTensorsFile(path: try ModelDirectory.resolve(p, role: "fine-tune \(i + 1)").appendingPathComponent("model.safetensors").path)
        }
        var report = Report(base: base, finetunes: finetunes, tolerance: tolerance)
        report.changed = fts.map { _ in 0 }
        report.beyond = fts.map { _ in 0 }
        var groups: [String: Entry] = [:]
        var totalOverlap = 0
        for name in bf.names {
            let info = try bf.info(name)
            guard Merge.isFloat(info.dtype) else { report.skipped.append(name); continue }
            let fnames = fts.map { Merge.align(name, in: $0) }
            guard fnames.allSatisfy({ $0 != nil }),
                  try zip(fts, fnames).allSatisfy({ try $0.info($1!).shape == info.shape }) else {
                report.skipped.append(name); continue
            }
            let n = info.elementCount
            let b = try bf.floats(name)
            bf.evict(name)
            var entry = Entry(name: name, shape: info.shape, count: n, layer: LayerIndex.of(name), changes: [])
            var masks: [[Bool]] = []
            for (f, fname) in zip(fts, fnames) {
                var d = try f.floats(fname!)
                f.evict(fname!)
                var ch = Change()
                var mask = fts.count == 2 ? [Bool](repeating: false, count: n) : []
                d.withUnsafeMutableBufferPointer { dp in
                    b.withUnsafeBufferPointer { bp in
                        for i in 0..<n {
                            let x = dp[i] - bp[i]
                            dp[i] = x
                            if x != 0 { ch.changed += 1 }
                            if x.magnitude > tolerance {
                                ch.beyond += 1
                                if !mask.isEmpty { mask[i] = true }
                            }
                        }
                    }
                }
                if rank, info.shape.count == 2, ch.changed > 0 {
                    let s = d.withUnsafeBufferPointer { SVD.singularValues($0.baseAddress!, rows: info.shape[0], cols: info.shape[1]) }
                    ch.rank = SVD.rank(s, rows: info.shape[0], cols: info.shape[1])
                }
                entry.changes.append(ch)
                masks.append(mask)
            }
            if masks.count == 2 {
                var o = 0
                for i in 0..<n where masks[0][i] && masks[1][i] { o += 1 }
                entry.overlap = o
                entry.expectedOverlap = n == 0 ? 0 : Double(entry.changes[0].beyond) * Double(entry.changes[1].beyond) / Double(n)
                totalOverlap += o
            }
            report.parameters += n
            for (k, c) in entry.changes.enumerated() { report.changed[k] += c.changed; report.beyond[k] += c.beyond }
            let key = entry.layer.map { "layer.\($0)" } ?? "other"
            var g = groups[key] ?? Entry(name: key, shape: [], count: 0, layer: entry.layer, changes: fts.map { _ in Change() })
            g.count += n
            for k in entry.changes.indices { g.changes[k].changed += entry.changes[k].changed; g.changes[k].beyond += entry.changes[k].beyond }
            if let o = entry.overlap { g.overlap = (g.overlap ?? 0) + o; g.expectedOverlap = (g.expectedOverlap ?? 0) + (entry.expectedOverlap ?? 0) }
            groups[key] = g
            report.matrices.append(entry)
        }
        if fts.count == 2 {
            report.overlap = totalOverlap
            let e = report.parameters == 0 ? 0 : Double(report.beyond[0]) * Double(report.beyond[1]) / Double(report.parameters)
            report.expectedOverlap = e
            report.overlapRatio = e > 0 ? Double(totalOverlap) / e : nil
        }
        report.layers = groups.values.sorted { ($0.layer ?? Int.max, $0.name) < ($1.layer ?? Int.max, $1.name) }
        return report
    }
}
