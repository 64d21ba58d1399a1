import SculptCore

/// Seeded Fisher–Yates shuffle, written out so the order never depends on the standard
/// library's shuffle algorithm (which is not promised to stay the same).
public func seededPermutation(_ count: Int, seed: UInt64) -> [Int] {
    var rng = SeededRNG(seed: seed)
    var p = Array(0..<count)
    if count < 2 { return p }
    for i in stride(from: count - 1, to: 0, by: -1) {
        let j = Int(rng.next() % UInt64(i + 1))
        p.swapAt(i, j)
    }
    return p
}

/// Where the loop is in the data: the epoch's order is a pure function of (seed, epoch), so a
/// checkpoint only stores these three numbers to continue with exactly the next batch.
public struct DataOrderState: Codable, Sendable, Equatable {
    public var seed: UInt64
    public var epoch: Int
    /// Examples of this epoch's permutation already consumed.
    public var position: Int

    public init(seed: UInt64, epoch: Int = 0, position: Int = 0) {
        self.seed = seed
        self.epoch = epoch
        self.position = position
    }

    /// The order of the training examples in `epoch`.
    public func permutation(count: Int) -> [Int] {
        seededPermutation(count, seed: seed &+ UInt64(epoch) &* 0x9E37_79B9_7F4A_7C15)
    }
}

/// Splits `count` examples into train and validation indices with a seeded shuffle; the
/// validation part is `fraction` of the examples (at least one when fraction > 0).
public func validationSplit(count: Int, fraction: Double, seed: UInt64) -> (train: [Int], validation: [Int]) {
    guard fraction > 0 else { return (Array(0..<count), []) }
    let p = seededPermutation(count, seed: seed ^ 0x5A17_5EED)
    let v = min(count - 1, max(1, Int((Double(count) * fraction).rounded())))
    return (Array(p[v...]).sorted(), Array(p[..<v]).sorted())
}
