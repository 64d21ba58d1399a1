import Foundation
import SculptCore

// The per-tensor arithmetic of every task-vector merge: plain loops over Float pointers, one
// model at a time where the method allows it, so a merge holds the base, one accumulator and
// one model's tensor (TIES-style sign election needs every model's trimmed tensor at once).

/// Counts the Float buffers a merge holds, so tests can check that memory stays at a few
/// tensors regardless of model size.
public final class BufferLedger {
    public private(set) var live = 0
    public private(set) var peak = 0
    public private(set) var liveBytes = 0
    public private(set) var peakBytes = 0
    public init() {}

    func allocate(_ count: Int) -> UnsafeMutablePointer<Float> {
        live += 1
        liveBytes += count * 4
        peak = max(peak, live)
        peakBytes = max(peakBytes, liveBytes)
        return UnsafeMutablePointer<Float>.allocate(capacity: max(count, 1))
    }

    func free(_ p: UnsafeMutablePointer<Float>, _ count: Int) {
        live -= 1
        liveBytes -= count * 4
        p.deallocate()
    }
}

/// Keeps the k entries of largest |x|: those whose |x| bit pattern is above `threshold`, plus
/// the first `ties` entries (in name, then index order) equal to it. Non-negative IEEE floats
/// order like their bit patterns, so a two-pass radix select over 16-bit halves finds the
/// k-th largest without sorting.
public struct MagnitudeCut: Sendable, Equatable {
    public var threshold: UInt32
    public var ties: Int
    public var keepAll: Bool

    public static let keepNothing = MagnitudeCut(threshold: .max, ties: 0, keepAll: false)
    public static let keepEverything = MagnitudeCut(threshold: 0, ties: 0, keepAll: true)

    /// k = ⌊density·N⌋ (as mergekit and PEFT: `int(density * numel)`), with a little slack so
    /// 0.3·10 counts as 3.
    public static func keepCount(density: Double, count: Int) -> Int {
        min(count, Int((density * Double(count) + 1e-9).rounded(.down)))
    }

    /// The cut keeping the top `k` of the values in `chunks` (two passes over them).
    public static func select(k: Int, total: Int, chunks: [(UnsafePointer<Float>, Int)]) -> MagnitudeCut {
        var selector = MagnitudeSelector(k: k, total: total)
        for (p, n) in chunks { selector.countHigh(p, n) }
        selector.finishHigh()
        for (p, n) in chunks { selector.countLow(p, n) }
        return selector.cut()
    }

    /// Zeroes the entries the cut does not keep; consumes ties as it goes, so a cut spanning
    /// several tensors (global scope) is applied to them in order.
    public mutating func apply(_ p: UnsafeMutablePointer<Float>, _ n: Int) {
        if keepAll { return }
        let t = threshold
        var remaining = ties
        for i in 0..<n {
            let b = p[i].magnitude.bitPattern
            if b > t { continue }
            if b == t && remaining > 0 { remaining -= 1; continue }
            p[i] = 0
        }
        ties = remaining
    }
}

/// The streaming form of `MagnitudeCut.select`: feed every chunk to `countHigh`, call
/// `finishHigh`, feed every chunk again to `countLow`, then read `cut()`.
public struct MagnitudeSelector {
    let k: Int
    let total: Int
    var high: [Int]
    var low: [Int] = []
    var bucket = 0
    var above = 0

    public init(k: Int, total: Int) {
        self.k = k
        self.total = total
        high = k > 0 && k < total ? [Int](repeating: 0, count: 1 << 16) : []
    }

    public mutating func countHigh(_ p: UnsafePointer<Float>, _ n: Int) {
        guard !high.isEmpty else { return }
        high.withUnsafeMutableBufferPointer { h in
            for i in 0..<n { h[Int(p[i].magnitude.bitPattern >> 16)] += 1 }
        }
    }

    public mutating func finishHigh() {
        guard !high.isEmpty else { return }
        var b = (1 << 16) - 1
        var a = 0
        while b > 0 && a + high[b] < k { a += high[b]; b -= 1 }
        bucket = b
        above = a
        low = [Int](repeating: 0, count: 1 << 16)
    }

    public mutating func countLow(_ p: UnsafePointer<Float>, _ n: Int) {
        guard !high.isEmpty else { return }
        let hb = UInt32(bucket)
        low.withUnsafeMutableBufferPointer { l in
            for i in 0..<n {
                let v = p[i].magnitude.bitPattern
                if v >> 16 == hb { l[Int(v & 0xFFFF)] += 1 }
            }
        }
    }

    public func cut() -> MagnitudeCut {
        if k <= 0 { return .keepNothing }
        if k >= total { return .keepEverything }
        var lb = (1 << 16) - 1
        var a = above
        while lb > 0 && a + low[lb] < k { a += low[lb]; lb -= 1 }
        return MagnitudeCut(threshold: UInt32(bucket) << 16 | UInt32(lb), ties: k - a, keepAll: false)
    }
}

public enum MergeKernels {
    /// p[i] -= q[i]
    @inline(__always)
    static func subtract(_ p: UnsafeMutablePointer<Float>, _ q: UnsafePointer<Float>, _ n: Int) {
        for i in 0..<n { p[i] -= q[i] }
    }

    /// acc[i] += w·x[i]
    @inline(__always)
    static func axpy(_ acc: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ w: Float, _ n: Int) {
        for i in 0..<n { acc[i] += w * x[i] }
    }

    /// A uniform draw in [0, 1) for entry `index` of the tensor seeded `seed` (SplitMix64's
    /// finaliser on seed + index): counter-based, so a tensor can be processed in chunks and
    /// still get the same mask.
    @inline(__always)
    public static func uniform(_ seed: UInt64, _ index: Int) -> Double {
        var z = seed &+ UInt64(truncatingIfNeeded: index) &* 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        z ^= z >> 31
        return Double(z >> 11) * (1.0 / 9_007_199_254_740_992.0)
    }

    /// DARE: keeps each entry with probability `density` (drops with p = 1 − density) and
    /// rescales the survivors. Entry i (at `offset + i` in its tensor) is kept when
    /// `uniform(seed, offset + i) < density`, so the mask depends only on the seed.
    public static func dropAndRescale(_ p: UnsafeMutablePointer<Float>, _ n: Int, density: Double, rescale: DropRescale,
                                      seed: UInt64, offset: Int = 0) {
        if density >= 1 { return }
        var before: Double = 0, after: Double = 0
        if rescale == .l1 { for i in 0..<n { before += Double(p[i].magnitude) } }
        for i in 0..<n where !(uniform(seed, offset + i) < density) { p[i] = 0 }
        switch rescale {
        case .none:
            break
        case .inverse:
            guard density > 0 else { return }
            let s = Float(1 / density)
            for i in 0..<n { p[i] *= s }
        case .l1:
            for i in 0..<n { after += Double(p[i].magnitude) }
            // As mergekit: leave the tensor alone when either norm is ~0.
            guard before >= 1e-7, after >= 1e-7 else { return }
            let s = Float(before / after)
            for i in 0..<n { p[i] *= s }
        }
    }

    /// TIES steps 2–3 on trimmed task vectors `deltas` (unweighted) with `weights`: elect a sign
    /// per entry (ties in the election go to +, as mergekit's `>= 0`), then
    /// out = Σ_{i agrees} wᵢτᵢ, divided (when `normalize`) by Σ_{agrees} wᵢ or by the number of
    /// agreeing models; a zero divisor counts as 1. Zero entries never agree, so an all-zero
    /// entry gives 0.
    public static func signConsensus(_ deltas: [UnsafeMutablePointer<Float>], weights: [Float], count n: Int,
                                     consensus: SignConsensus, normalize: Bool, mean: DisjointMean,
                                     out: UnsafeMutablePointer<Float>) {
        let m = deltas.count
        deltas.withUnsafeBufferPointer { d in
            weights.withUnsafeBufferPointer { w in
                for i in 0..<n {
                    var mass: Float = 0
                    switch consensus {
                    case .sum: for j in 0..<m { mass += w[j] * d[j][i] }
                    case .sumUnweighted: for j in 0..<m { mass += d[j][i] }
                    case .count: for j in 0..<m { let x = d[j][i]; mass += x > 0 ? 1 : (x < 0 ? -1 : 0) }
                    }
                    let positive = mass >= 0
                    var sum: Float = 0, divisor: Float = 0
                    for j in 0..<m {
                        let x = d[j][i]
                        if positive ? x > 0 : x < 0 {
                            sum += w[j] * x
                            divisor += mean == .weightSum ? w[j] : 1
                        }
                    }
                    if normalize && divisor != 0 { sum /= divisor }
                    out[i] = sum
                }
            }
        }
    }

    /// A seed for (run seed, model index, tensor name): DARE's masks do not depend on the order
    /// tensors are processed in.
    public static func dropSeed(_ seed: UInt64, model: Int, tensor: String) -> UInt64 {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325 ^ seed
        for b in tensor.utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01B3 }
        h = (h ^ UInt64(model)) &* 0x100_0000_01B3
        return h
    }
}

/// The per-tensor part of a task-vector merge, independent of where tensors come from.
public struct TensorMerger {
    public var method: MergeMethodName
    public var weights: [Float]
    public var densities: [Double]
    public var lambda: Float = 1
    public var normalize: Bool
    public var consensus: SignConsensus = .sum
    public var disjointMean: DisjointMean = .weightSum
    public var rescale: DropRescale = .inverse
    public var seed: UInt64 = 0

    public init(method: MergeMethodName, weights: [Float], densities: [Double]? = nil, normalize: Bool? = nil) {
        self.method = method
        self.weights = weights
        self.densities = densities ?? weights.map { _ in 1 }
        self.normalize = normalize ?? method.defaultNormalize
    }

    public init(_ c: MergeConfig) {
        self.init(method: c.method, weights: c.models.map { Float($0.weight) }, densities: c.models.map(\.density), normalize: c.normalize)
        lambda = Float(c.lambda)
        consensus = c.consensus
        disjointMean = c.disjointMean
        rescale = c.rescale
        seed = c.seed
    }

    /// Merges one tensor of `count` entries into `out`.
    /// - `deltaBase`: what task vectors are taken against (the base; the old base for transfer;
    ///   nil for linear).
    /// - `addBase`: what the merged task vector is added to (the base; the new base for transfer).
    /// - `scale`: multiplies the merged task vector (λ, times the LiNeS layer scale).
    /// - `load(i, buffer)`: fills `buffer` with model i's tensor.
    /// - `cuts`: per-model magnitude cuts computed beforehand (over the whole tensor when it is
    ///   processed in chunks, or over the whole model for the global density scope), or nil to
    ///   cut these `count` entries on their own.
    /// - `offset`: where these entries start in the tensor (chunked processing; DARE's draws).
    public func merge(name: String, count n: Int, deltaBase: UnsafePointer<Float>?, addBase: UnsafePointer<Float>?,
                      scale: Float, ledger: BufferLedger, cuts: UnsafeMutablePointer<MagnitudeCut>? = nil, offset: Int = 0,
                      load: (Int, UnsafeMutablePointer<Float>) throws -> Void, out: UnsafeMutablePointer<Float>) rethrows {
        let m = weights.count
        out.initialize(repeating: 0, count: n)
        let w = weights

        func sparsify(_ j: Int, _ p: UnsafeMutablePointer<Float>) {
            if method.trimsByMagnitude {
                if let cuts {
                    cuts[j].apply(p, n)
                } else {
                    var cut = MagnitudeCut.select(k: MagnitudeCut.keepCount(density: densities[j], count: n), total: n,
                                                  chunks: [(UnsafePointer(p), n)])
                    cut.apply(p, n)
                }
            } else if method.dropsAtRandom {
                MergeKernels.dropAndRescale(p, n, density: densities[j], rescale: rescale,
                                            seed: MergeKernels.dropSeed(seed, model: j, tensor: name), offset: offset)
            }
        }

        if method == .linear {
            let buf = ledger.allocate(n)
            defer { ledger.free(buf, n) }
            for j in 0..<m {
                try load(j, buf)
                MergeKernels.axpy(out, buf, w[j], n)
            }
            let total = w.reduce(0, +)
            if normalize && abs(total) >= 1e-8 { let s = 1 / total; for i in 0..<n { out[i] *= s } }
            return
        }

        if method.usesSignConsensus {
            var bufs: [UnsafeMutablePointer<Float>] = []
            defer { for b in bufs { ledger.free(b, n) } }
            for j in 0..<m {
                let b = ledger.allocate(n)
                bufs.append(b)
                try load(j, b)
                if let deltaBase { MergeKernels.subtract(b, deltaBase, n) }
                sparsify(j, b)
            }
            MergeKernels.signConsensus(bufs, weights: w, count: n, consensus: consensus, normalize: normalize,
                                       mean: disjointMean, out: out)
        } else {
            let buf = ledger.allocate(n)
            defer { ledger.free(buf, n) }
            for j in 0..<m {
                try load(j, buf)
                if let deltaBase { MergeKernels.subtract(buf, deltaBase, n) }
                sparsify(j, buf)
                MergeKernels.axpy(out, buf, w[j], n)
            }
            let total = w.reduce(0, +)
            if normalize && abs(total) >= 1e-8 { let s = 1 / total; for i in 0..<n { out[i] *= s } }
        }
        if let addBase {
            for i in 0..<n { out[i] = addBase[i] + scale * out[i] }
        } else if scale != 1 {
            for i in 0..<n { out[i] *= scale }
        }
    }

    /// Convenience for tests and small tensors: merges arrays.
    public func merge(name: String = "t", base: [Float]?, models: [[Float]], scale: Float? = nil) -> [Float] {
        let n = models.first?.count ?? 0
        let ledger = BufferLedger()
        var out = [Float](repeating: 0, count: n)
        let s = scale ?? lambda
        out.withUnsafeMutableBufferPointer { o in
            let op = o.baseAddress!
            func run(_ b: UnsafePointer<Float>?) {
                self.merge(name: name, count: n, deltaBase: b, addBase: b, scale: s, ledger: ledger,
                           load: { j, p in models[j].withUnsafeBufferPointer { p.update(from: $0.baseAddress!, count: n) } },
                           out: op)
            }
            if let base { base.withUnsafeBufferPointer { run($0.baseAddress!) } } else { run(nil) }
        }
        return out
    }
}

/// LiNeS (Wang et al. 2024): the layer index of a parameter name and the per-layer scale.
public enum LayerIndex {
    /// The index ℓ in `…layer.ℓ.…` or `…layers.ℓ.…`: the regex `(^|\.)layers?\.(\d+)\.`,
    /// matched on dot-separated components so `layer_norm`, `layer.x` or `mylayer.3.` are not
    /// layers. nil for tensors outside the layers (embeddings, pooler, heads).
    public static func of(_ name: String) -> Int? {
        let parts = name.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count >= 3 else { return nil }
        for i in 0..<(parts.count - 2) where parts[i] == "layer" || parts[i] == "layers" {
            let d = parts[i + 1]
            if !d.isEmpty, d.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }), let v = Int(d) { return v }
        }
        return nil
    }

    /// α + β·ℓ/(L−1) for a layer (α + β·ℓ when L = 1 would divide by zero: then just α), α outside.
    public static func linesScale(name: String, layers: Int, alpha: Double, beta: Double) -> Double {
        guard let l = of(name) else { return alpha }
        guard layers > 1 else { return alpha }
        return alpha + beta * Double(l) / Double(layers - 1)
    }
}
