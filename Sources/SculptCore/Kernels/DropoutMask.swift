/// Counter-based dropout masks: entry i of a mask with key `k` is decided by the 32-bit half
/// (low half for even i) of SplitMix64's output number i/2 from state `k` — a stateless
/// function of (k, i). Any range can be filled on its own, so masks split over the thread
/// pool and eight hashes run per SIMD step; the generator behind a mask advances by one draw
/// (the key) however large the mask is.

/// SplitMix64's output for counter `c` from state `key` (the scalar twin of the SIMD path).
@inline(__always)
public func splitMix64(key: UInt64, counter c: UInt64) -> UInt64 {
    var z = key &+ (c &+ 1) &* 0x9E37_79B9_7F4A_7C15
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
}

/// Mask entry `i`: 0 when its 32 random bits are below `threshold`, else `keep`.
@inline(__always)
public func dropoutMaskEntry(key: UInt64, index i: Int, threshold: UInt32, keep: Float) -> Float {
    let h = splitMix64(key: key, counter: UInt64(i >> 1))
    let word = UInt32(truncatingIfNeeded: (i & 1) == 0 ? h : h >> 32)
    return word < threshold ? 0 : keep
}

/// Writes mask entries 0..<count of key `key` into `dst` (over the pool when large).
public func fillDropoutMask(_ dst: UnsafeMutablePointer<Float>, count: Int, key: UInt64, threshold: UInt32, keep: Float, pool: ThreadPool) {
    let box = UncheckedSendableBox(dst)
    parallelChunks(count, pool: pool) { r in
        let dst = box.value
        var i = r.lowerBound  // a multiple of 16 except for a serial tail
        let lanes = SIMD8<UInt64>(0, 1, 2, 3, 4, 5, 6, 7)
        let t = SIMD16<UInt32>(repeating: threshold)
        let zero = SIMD16<Float>(), kept = SIMD16<Float>(repeating: keep)
        while i + 16 <= r.upperBound {
            var z = SIMD8<UInt64>(repeating: key) &+ (SIMD8<UInt64>(repeating: UInt64(i >> 1) &+ 1) &+ lanes) &* 0x9E37_79B9_7F4A_7C15
            z = (z ^ (z &>> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z &>> 27)) &* 0x94D0_49BB_1331_11EB
            z = z ^ (z &>> 31)
            // Little-endian: 32-bit lane 2j is the low half of hash j (entry 2j), 2j+1 the high.
            let words = unsafeBitCast(z, to: SIMD16<UInt32>.self)
            UnsafeMutableRawPointer(dst + i).storeBytes(of: kept.replacing(with: zero, where: words .< t), as: SIMD16<Float>.self)
            i += 16
        }
        while i < r.upperBound {
            dst[i] = dropoutMaskEntry(key: key, index: i, threshold: threshold, keep: keep)
            i += 1
        }
    }
}
