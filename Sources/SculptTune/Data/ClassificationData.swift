import Foundation
import SculptCore
import SculptIO

/// The inputs of a classification dataset: raw image bytes (normalised per batch, so 60k
/// images stay 47 MB) or token ids (already tokenised, unpadded).
public enum ExampleInputs: Sendable {
    case images(pixels: [UInt8], height: Int, width: Int)
    case tokens([[Int32]])
}

/// One batch ready for a model.
public enum BatchInput: Sendable {
    /// [N, 1, H, W], normalised.
    case images(Tensor)
    /// Padded to the longest sequence of the batch.
    case tokens(TokenizedBatch)
}

public struct Batch: Sendable {
    public var input: BatchInput
    public var labels: [Int32]
    public var count: Int { labels.count }
}

/// Labelled examples for classification, all in memory.
public struct ClassificationData: Sendable {
    public var inputs: ExampleInputs
    public var labels: [Int32]

    /// Fashion-MNIST's pixel mean and standard deviation (on a 0–1 scale); close enough for
    /// any MNIST-family set and fixed, so a saved model needs no dataset statistics.
    public static let pixelMean: Float = 0.2860, pixelStd: Float = 0.3530

    public init(inputs: ExampleInputs, labels: [Int32]) {
        self.inputs = inputs
        self.labels = labels
    }

    public var count: Int { labels.count }

    /// The examples at `indices`, in that order.
    public func subset(_ indices: [Int]) -> ClassificationData {
        switch inputs {
        case .images(let pixels, let h, let w):
            let size = h * w
            var out = [UInt8](); out.reserveCapacity(indices.count * size)
            for i in indices { out += pixels[(i * size)..<((i + 1) * size)] }
            return ClassificationData(inputs: .images(pixels: out, height: h, width: w), labels: indices.map { labels[$0] })
        case .tokens(let rows):
            return ClassificationData(inputs: .tokens(indices.map { rows[$0] }), labels: indices.map { labels[$0] })
        }
    }

    /// A batch of the examples at `indices`; token rows are padded with `padId` to the
    /// longest row of this batch (not of the dataset), which keeps short batches cheap.
    ///
    /// With `flipSeed`, each image is mirrored left–right when a hash of (seed, example)
    /// says so: augmentation that is a pure function of the step, so resume stays exact.
    public func batch(_ indices: [Int], padId: Int32 = 0, flipSeed: UInt64? = nil) -> Batch {
        let labels = indices.map { self.labels[$0] }
        switch inputs {
        case .images(let pixels, let h, let w):
            let size = h * w
            let scale = 1 / (255 * Self.pixelStd), shift = -Self.pixelMean / Self.pixelStd
            let t = Tensor(shape: [indices.count, 1, h, w]) { buf in
                pixels.withUnsafeBufferPointer { src in
                    for (r, i) in indices.enumerated() {
                        if let seed = flipSeed, Self.mix(seed ^ UInt64(i)) & 1 == 1 {
                            for y in 0..<h { for x in 0..<w { buf[r * size + y * w + x] = Float(src[i * size + y * w + (w - 1 - x)]) * scale + shift } }
                        } else {
                            for j in 0..<size { buf[r * size + j] = Float(src[i * size + j]) * scale + shift }
                        }
                    }
                }
            }
            return Batch(input: .images(t), labels: labels)
        case .tokens(let rows):
            let chosen = indices.map { rows[$0] }
            let longest = chosen.map(\.count).max() ?? 0
            return Batch(input: .tokens(Self.pad(chosen, to: longest, padId: padId)), labels: labels)
        }
    }

    /// SplitMix64's finaliser: a well-mixed hash of a word.
    static func mix(_ x: UInt64) -> UInt64 {
        var z = x &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Right-padding with an attention mask (1 on real tokens, 0 on padding).
    public static func pad(_ rows: [[Int32]], to length: Int, padId: Int32) -> TokenizedBatch {
        var ids = [Int32](), mask = [Int32]()
        ids.reserveCapacity(rows.count * length); mask.reserveCapacity(rows.count * length)
        for r in rows {
            ids += r; ids += [Int32](repeating: padId, count: length - r.count)
            mask += [Int32](repeating: 1, count: r.count); mask += [Int32](repeating: 0, count: length - r.count)
        }
        return TokenizedBatch(batchSize: rows.count, sequenceLength: length, inputIds: ids, attentionMask: mask,
                              tokenTypeIds: [Int32](repeating: 0, count: ids.count))
    }
}
