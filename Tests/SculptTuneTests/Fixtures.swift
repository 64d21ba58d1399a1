import Foundation
import SculptCore
import SculptTune
import SculptIO
import SculptModels
import SculptTestSupport

/// Small synthetic datasets written to temporary directories.
enum Fixtures {
    /// An MNIST-named IDX pair of `count` 8×8 images in `classes` classes (`TinyImages`).
    static func idx(in dir: URL, count: Int = 96, classes: Int = 4, side: Int = 8, seed: UInt64 = 1, prefix: String = "train") throws -> URL {
        try TinyImages.write(in: dir, count: count, classes: classes, side: side, seed: seed, prefix: prefix)
    }

    static func header(_ magic: UInt32, _ dims: [Int]) -> Data { TinyImages.idxHeader(magic, dims) }

    static func write(_ text: String, _ name: String, in dir: URL) throws -> URL {
        let url = dir.appendingPathComponent(name)
        try Data(text.utf8).write(to: url)
        return url
    }

    /// A config for a fast image run.
    static func imageConfig(data: URL, out: URL, model: String = "mlp") -> TrainConfig {
        var c = TrainConfig()
        c.model = model
        c.data = data.path
        c.out = out.path
        c.width = model == "cnn" ? 4 : 16
        c.depth = 1
        c.epochs = 2
        c.batchSize = 8
        c.lr = 1e-2
        c.valFraction = 0.25
        c.logEvery = 1
        c.threads = 1
        return c
    }

    /// A 1-layer, 16-wide random BERT with MiniLM's tokenizer (needs ../shared).
    static func tinyBert(in dir: URL) throws -> URL { try TinyBert.write(in: dir, layers: 1, heads: 2) }
}
