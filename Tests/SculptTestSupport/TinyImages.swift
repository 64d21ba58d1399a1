import Foundation
import SculptCore

/// Tiny synthetic image-classification data in the MNIST file layout, shared by every test
/// target that trains an image model: class k lights up row k of a `side`×`side` image, the
/// other pixels are noise, so tiny models learn it in a few steps.
public enum TinyImages {
    /// The IDX header: magic number, then each dimension, big-endian 32-bit.
    public static func idxHeader(_ magic: UInt32, _ dims: [Int]) -> Data {
        var d = Data()
        for v in [magic] + dims.map(UInt32.init) { withUnsafeBytes(of: v.bigEndian) { d.append(contentsOf: $0) } }
        return d
    }

    /// Writes `<prefix>-images-idx3-ubyte` and `<prefix>-labels-idx1-ubyte` into `dir`, with
    /// noise below 60 drawn from `SeededRNG(seed:)` (or, with `patternedNoise`, the fixed
    /// pattern (i·7 + r·3 + c) mod 50); returns the images file.
    public static func write(in dir: URL, count: Int, classes: Int = 4, side: Int = 8, seed: UInt64 = 1,
                             prefix: String = "train", patternedNoise: Bool = false) throws -> URL {
        var rng = SeededRNG(seed: seed)
        var pixels = [UInt8](), labels = [UInt8]()
        for i in 0..<count {
            let k = i % classes
            labels.append(UInt8(k))
            for r in 0..<side {
                for c in 0..<side {
                    pixels.append(r == k ? 200 : patternedNoise ? UInt8((i * 7 + r * 3 + c) % 50) : UInt8(rng.next() % 60))
                }
            }
        }
        let images = dir.appendingPathComponent("\(prefix)-images-idx3-ubyte")
        try (idxHeader(0x803, [count, side, side]) + pixels).write(to: images)
        try (idxHeader(0x801, [count]) + labels).write(to: dir.appendingPathComponent("\(prefix)-labels-idx1-ubyte"))
        return images
    }
}
