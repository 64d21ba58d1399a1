import Foundation
import SculptCore

/// A sparse difference θ_ft − θ_base (lottery-ticket sparse fine-tuning, Ansell et al. 2022):
/// per tensor, sorted flat indices and the float differences at them.
///
/// Exactness. Values are stored as d = fl(ft − base). `apply` writes fl(base + d) and
/// `remove` writes fl(x − d). Whenever ft − base is exactly representable — always when ft and
/// base have the same sign and are within a factor of two (Sterbenz), or when either is 0,
/// which covers small updates of weights away from zero — both are bit-exact: apply(base) = ft
/// and remove(apply(base)) = base. Otherwise (a weight that crosses zero or shrinks by more
/// than half, e.g. base 0.03 → ft 1e-5; common for near-zero weights) d is rounded, and
/// apply/remove are within an ulp of |d| of the exact values; `inexactEntries(base:finetuned:)`
/// counts such entries. A pure float32 delta is what makes diffs composable by addition and
/// the rounding is far below training noise. When the base must come back bit-exactly, use
/// `values(in:)` before applying and `overwrite(_:with:)` afterwards (store and restore).
public struct SparseDiff: Sendable, Equatable {
    public struct Part: Sendable, Equatable {
        public var shape: [Int]
        /// Strictly increasing flat (row-major) indices.
        public var indices: [Int64]
        public var values: [Float]
        public init(shape: [Int], indices: [Int64], values: [Float]) {
            self.shape = shape
            self.indices = indices
            self.values = values
        }
        public var count: Int { indices.count }
    }

    public enum Scope: String, Sendable, Codable {
        /// The K largest |change| over all tensors together (LT-SFT's choice).
        case global
        /// The ⌊density·n⌉ largest within each tensor.
        case perTensor = "per_tensor"
    }

    /// Every selected tensor, including those with no selected entries (so masks cover them).
    public var parts: [String: Part]
    /// Free-form strings saved with the file (e.g. `base_model`).
    public var metadata: [String: String]

    public init(parts: [String: Part] = [:], metadata: [String: String] = [:]) {
        self.parts = parts
        self.metadata = metadata
    }

    /// Selected entries over all tensors.
    public var count: Int { parts.values.reduce(0) { $0 + $1.count } }
    public var names: [String] { parts.keys.sorted(by: utf8Less) }

    // MARK: Selection

    /// Keeps the K = ⌊density·N⌉ (rounded half away from zero) entries with the largest
    /// |ft − base|, where N counts every entry of every tensor. Ties at the threshold go to
    /// the lower tensor name (UTF-8 order), then the lower flat index, so the choice is
    /// deterministic. Both dictionaries must hold the same names with equal shapes.
    public static func select(base: [String: Tensor], finetuned: [String: Tensor], density: Double, scope: Scope = .global) throws -> SparseDiff {
        guard density >= 0, density <= 1 else { throw SparseDiffError.invalid("density \(density) is outside [0, 1]") }
        let names = try checkedNames(base: base, finetuned: finetuned)
        let keys = try names.map { try magnitudeKeys(base[$0]!, finetuned[$0]!, name: $0) }
        func k(_ n: Int) -> Int { min(n, Int((density * Double(n)).rounded(.toNearestOrAwayFromZero))) }
        var chosen: [[Int64]]
        switch scope {
        case .global:
            chosen = topK(keys, k: k(keys.reduce(0) { $0 + $1.count }))
        case .perTensor:
            chosen = keys.map { topK([$0], k: k($0.count))[0] }
        }
        var parts: [String: Part] = [:]
        for (i, name) in names.enumerated() {
            let idx = chosen[i]
            chosen[i] = []
            parts[name] = Part(shape: base[name]!.shape, indices: idx, values: differences(base[name]!, finetuned[name]!, at: idx))
        }
        return SparseDiff(parts: parts, metadata: ["density": String(density), "scope": scope.rawValue])
    }

    /// The differences ft − base on this diff's support (the same indices, fresh values):
    /// LT-SFT's second phase trains the selected entries from the base, then saves this.
    public func onSameSupport(base: [String: Tensor], finetuned: [String: Tensor]) throws -> SparseDiff {
        var out = self
        for (name, part) in parts {
            guard let b = base[name], let f = finetuned[name] else { throw SparseDiffError.missingTensor(name) }
            guard b.shape == part.shape, f.shape == part.shape else { throw SparseDiffError.shapeMismatch(name, part.shape, b.shape == part.shape ? f.shape : b.shape) }
            out.parts[name]!.values = SparseDiff.differences(b, f, at: part.indices)
        }
        return out
    }

    static func checkedNames(base: [String: Tensor], finetuned: [String: Tensor]) throws -> [String] {
        if let m = base.keys.sorted(by: utf8Less).first(where: { finetuned[$0] == nil }) { throw SparseDiffError.missingTensor(m) }
        if let m = finetuned.keys.sorted(by: utf8Less).first(where: { base[$0] == nil }) { throw SparseDiffError.missingTensor(m) }
        let names = base.keys.sorted(by: utf8Less)
        for n in names where base[n]!.shape != finetuned[n]!.shape { throw SparseDiffError.shapeMismatch(n, base[n]!.shape, finetuned[n]!.shape) }
        return names
    }

    /// |ft − base| as order-preserving integer keys: for non-negative floats the IEEE bit
    /// pattern sorts like the value, which lets `topK` run a two-pass radix select.
    static func magnitudeKeys(_ base: Tensor, _ ft: Tensor, name: String) throws -> [UInt32] {
        var keys = [UInt32](repeating: 0, count: base.count)
        var bad = -1
        base.withUnsafePointer { b in
            ft.withUnsafePointer { f in
                keys.withUnsafeMutableBufferPointer { k in
                    for i in 0..<k.count {
                        let d = f[i] - b[i]
                        if !d.isFinite { bad = i; break }
                        k[i] = d.magnitude.bitPattern
                    }
                }
            }
        }
        if bad >= 0 { throw SparseDiffError.invalid("\(name): change at index \(bad) is not finite") }
        return keys
    }

    /// Indices (per tensor, increasing) of the k largest keys across all tensors; ties at
    /// the threshold go to the earlier tensor, then the lower index.
    static func topK(_ keys: [[UInt32]], k: Int) -> [[Int64]] {
        guard k > 0 else { return keys.map { _ in [] } }
        // Pass 1: histogram of the high 16 bits; find the bucket holding the k-th largest.
        var high = [Int](repeating: 0, count: 1 << 16)
        for t in keys { t.withUnsafeBufferPointer { p in for v in p { high[Int(v >> 16)] += 1 } } }
        var above = 0, bucket = (1 << 16) - 1
        while bucket > 0 && above + high[bucket] < k { above += high[bucket]; bucket -= 1 }
        // Pass 2: histogram of the low 16 bits inside that bucket; find the exact threshold.
        var low = [Int](repeating: 0, count: 1 << 16)
        let hb = UInt32(bucket)
        for t in keys { t.withUnsafeBufferPointer { p in for v in p where v >> 16 == hb { low[Int(v & 0xFFFF)] += 1 } } }
        var lb = (1 << 16) - 1
        while lb > 0 && above + low[lb] < k { above += low[lb]; lb -= 1 }
        let threshold = hb << 16 | UInt32(lb)
        var ties = k - above  // entries equal to the threshold still to take, in order
        // Pass 3: collect.
        return keys.map { t in
            var out: [Int64] = []
            t.withUnsafeBufferPointer { p in
                for i in 0..<p.count {
                    if p[i] > threshold { out.append(Int64(i)) } else if p[i] == threshold && ties > 0 { out.append(Int64(i)); ties -= 1 }
                }
            }
            return out
        }
    }

    static func differences(_ base: Tensor, _ ft: Tensor, at indices: [Int64]) -> [Float] {
        base.withUnsafePointer { b in ft.withUnsafePointer { f in indices.map { f[Int($0)] - b[Int($0)] } } }
    }

    // MARK: Applying

    /// base + diff on the covered tensors; other tensors pass through unchanged.
    public func apply(to tensors: [String: Tensor]) throws -> [String: Tensor] { try patched(tensors, sign: 1) }

    /// x − diff: undoes `apply` (bit-exactly under the condition in the type's comment).
    public func remove(from tensors: [String: Tensor]) throws -> [String: Tensor] { try patched(tensors, sign: -1) }

    func patched(_ tensors: [String: Tensor], sign: Float) throws -> [String: Tensor] {
        var out = tensors
        for (name, part) in parts {
            guard var t = out[name] else { throw SparseDiffError.missingTensor(name) }
            try SparseDiff.patch(&t, part, name: name, sign: sign)
            out[name] = t
        }
        return out
    }

    /// Adds (sign 1) or subtracts (sign −1) one part in place.
    public static func patch(_ t: inout Tensor, _ part: Part, name: String, sign: Float) throws {
        guard t.shape == part.shape else { throw SparseDiffError.shapeMismatch(name, part.shape, t.shape) }
        t.withUnsafeMutablePointer { p in
            part.indices.withUnsafeBufferPointer { ix in
                part.values.withUnsafeBufferPointer { vs in
                    if sign > 0 { for j in 0..<ix.count { p[Int(ix[j])] += vs[j] } } else { for j in 0..<ix.count { p[Int(ix[j])] -= vs[j] } }
                }
            }
        }
    }

    /// Entries where apply(base) ≠ finetuned or remove(apply(base)) ≠ base bit for bit
    /// (the stored difference was rounded; see the type's comment).
    public func inexactEntries(base: [String: Tensor], finetuned: [String: Tensor]) -> Int {
        var n = 0
        for (name, part) in parts {
            guard let b = base[name], let f = finetuned[name] else { continue }
            b.withUnsafePointer { bp in
                f.withUnsafePointer { fp in
                    for (i, d) in zip(part.indices, part.values) {
                        let x = bp[Int(i)], y = x + d
                        if y != fp[Int(i)] || y - d != x { n += 1 }
                    }
                }
            }
        }
        return n
    }

    /// The entries of `tensors` at this diff's support (same indices, values read from the
    /// tensors): save them before `apply` to undo it bit-exactly with `overwrite`.
    public func values(in tensors: [String: Tensor]) throws -> SparseDiff {
        var out = SparseDiff(parts: [:], metadata: metadata)
        for (name, part) in parts {
            guard let t = tensors[name] else { throw SparseDiffError.missingTensor(name) }
            guard t.shape == part.shape else { throw SparseDiffError.shapeMismatch(name, part.shape, t.shape) }
            out.parts[name] = Part(shape: part.shape, indices: part.indices, values: t.withUnsafePointer { p in part.indices.map { p[Int($0)] } })
        }
        return out
    }

    /// Writes `saved`'s values (from `values(in:)`) at their indices.
    public static func overwrite(_ tensors: [String: Tensor], with saved: SparseDiff) throws -> [String: Tensor] {
        var out = tensors
        for (name, part) in saved.parts {
            guard var t = out[name] else { throw SparseDiffError.missingTensor(name) }
            guard t.shape == part.shape else { throw SparseDiffError.shapeMismatch(name, part.shape, t.shape) }
            t.withUnsafeMutablePointer { p in for (i, v) in zip(part.indices, part.values) { p[Int(i)] = v } }
            out[name] = t
        }
        return out
    }

    /// 1 at selected entries, 0 elsewhere, per tensor (AdamW `updateMasks`).
    public func masks() -> [String: Tensor] {
        var out: [String: Tensor] = [:]
        for (name, part) in parts {
            var m = Tensor.zeros(part.shape)
            m.withUnsafeMutablePointer { p in for i in part.indices { p[Int(i)] = 1 } }
            out[name] = m
        }
        return out
    }

    // MARK: Composition

    /// The sum of two diffs: the union of their supports, values added where both have an
    /// entry (composing task diffs on one base, as in Ansell et al.).
    public static func + (a: SparseDiff, b: SparseDiff) throws -> SparseDiff {
        var out = a
        for (name, pb) in b.parts {
            guard let pa = a.parts[name] else { out.parts[name] = pb; continue }
            guard pa.shape == pb.shape else { throw SparseDiffError.shapeMismatch(name, pa.shape, pb.shape) }
            var idx: [Int64] = [], val: [Float] = []
            idx.reserveCapacity(pa.count + pb.count); val.reserveCapacity(pa.count + pb.count)
            var i = 0, j = 0
            while i < pa.count || j < pb.count {
                if j == pb.count || (i < pa.count && pa.indices[i] < pb.indices[j]) { idx.append(pa.indices[i]); val.append(pa.values[i]); i += 1 }
                else if i == pa.count || pb.indices[j] < pa.indices[i] { idx.append(pb.indices[j]); val.append(pb.values[j]); j += 1 }
                else { idx.append(pa.indices[i]); val.append(pa.values[i] + pb.values[j]); i += 1; j += 1 }
            }
            out.parts[name] = Part(shape: pa.shape, indices: idx, values: val)
        }
        for (k, v) in b.metadata where out.metadata[k] == nil { out.metadata[k] = v }
        return out
    }

    public static func compose(_ diffs: [SparseDiff]) throws -> SparseDiff {
        try diffs.reduce(SparseDiff()) { try $0 + $1 }
    }

    // MARK: File format

    /// Marks a safetensors file as a Sculpt sparse diff.
    public static let formatTag = "sculpt.sparse_diff.v1"

    /// One safetensors file: `<name>.indices` (I64) and `<name>.values` (F32) per tensor;
    /// `__metadata__` holds `format` "pt", `sculpt_format`, the dense `shapes` as a JSON object
    /// and the diff's own metadata (e.g. `base_model`).
    public func write(to url: URL) throws {
        var writer = SafeTensorsWriter()
        var shapes: [String: [Int]] = [:]
        for (name, part) in parts {
            try writer.add(name: name + ".indices", int64s: part.indices, shape: [part.count])
            try writer.add(name: name + ".values", floats: part.values, shape: [part.count])
            shapes[name] = part.shape
        }
        var meta = metadata
        meta["format"] = "pt"
        meta["sculpt_format"] = SparseDiff.formatTag
        meta["shapes"] = String(decoding: try JSONSerialization.data(withJSONObject: shapes, options: [.sortedKeys]), as: UTF8.self)
        try writer.write(to: url, metadata: meta)
    }

    public static func load(from url: URL) throws -> SparseDiff {
        let file = try SafeTensorsFile(path: url.path)
        func fail(_ m: String) -> SparseDiffError { .badFile(url.path, m) }
        guard file.metadata["sculpt_format"] == formatTag else { throw fail("not a Sculpt sparse diff (sculpt_format is not \(formatTag))") }
        guard let shapesText = file.metadata["shapes"] else { throw fail("metadata has no shapes") }
        let json: StrictJSON.Value
        do { json = try StrictJSON.parse(Array(shapesText.utf8)) } catch { throw fail("shapes are not JSON: \(error)") }
        guard case .object(let members) = json else { throw fail("shapes is not an object") }
        var parts: [String: Part] = [:]
        for m in members {
            guard case .array(let dims) = m.value else { throw fail("shape of \(m.key) is not a list") }
            let shape = try dims.map { d -> Int in guard let v = d.intValue, v >= 0 else { throw fail("shape of \(m.key) has a bad dimension") }; return v }
            let idx = try file.int64s(m.key + ".indices"), val = try file.floats(m.key + ".values")
            guard idx.count == val.count else { throw fail("\(m.key): \(idx.count) indices but \(val.count) values") }
            let n = Int64(Shape.count(shape))
            for (j, i) in idx.enumerated() {
                guard i >= 0, i < n else { throw fail("\(m.key): index \(i) outside a tensor of \(n) entries") }
                guard j == 0 || idx[j - 1] < i else { throw fail("\(m.key): indices are not strictly increasing at position \(j)") }
            }
            parts[m.key] = Part(shape: shape, indices: idx, values: val)
        }
        let expected = Set(parts.keys.flatMap { [$0 + ".indices", $0 + ".values"] })
        if let extra = file.names.first(where: { !expected.contains($0) }) { throw fail("tensor \(extra) is not described by shapes") }
        var meta = file.metadata
        for k in ["format", "sculpt_format", "shapes"] { meta[k] = nil }
        return SparseDiff(parts: parts, metadata: meta)
    }
}

public enum SparseDiffError: Error, CustomStringConvertible, Equatable {
    case missingTensor(String)
    case shapeMismatch(String, [Int], [Int])
    case invalid(String)
    case badFile(String, String)

    public var description: String {
        switch self {
        case .missingTensor(let n): return "sparse diff: tensor \(n) is missing on one side"
        case .shapeMismatch(let n, let a, let b): return "sparse diff: tensor \(n) has shape \(a) on one side and \(b) on the other"
        case .invalid(let m): return "sparse diff: \(m)"
        case .badFile(let f, let m): return "\(f): \(m)"
        }
    }
}
