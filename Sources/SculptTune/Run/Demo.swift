import Foundation
import SculptCore

/// `sculpt demo`: a small CNN trained on the Fashion-MNIST test split that ships with the
/// package (8,500 images train, 1,500 held out), with a per-class report and the curve.
public enum Demo {
    public static let classNames = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]

    public struct Report: Sendable {
        public var accuracy: Double
        public var perClass: [(name: String, accuracy: Double, examples: Int)]
        public var seconds: Double
        public var runDirectory: URL
        public var curve: URL
    }

    /// The bundled images file (labels beside it).
    public static func bundledImages() throws -> URL {
        guard let dir = Bundle.module.url(forResource: "fashion-mnist", withExtension: nil) else {
            throw TuneError("the demo data (Resources/fashion-mnist) is missing from the SculptTune bundle")
        }
        return dir.appendingPathComponent("t10k-images-idx3-ubyte.gz")
    }

    /// The demo's recipe; `epochs` and the output directory are the only knobs tests change.
    public static func config(out: URL, epochs: Int = 14) throws -> TrainConfig {
        var c = TrainConfig()
        c.model = "cnn"
        c.width = 16
        c.depth = 1
        c.augmentFlip = true
        c.data = try bundledImages().path
        c.out = out.path
        c.valFraction = 0.15
        c.epochs = epochs
        c.batchSize = 64
        c.lr = 2e-3
        c.weightDecay = 5e-4
        c.warmupRatio = 0.05
        c.schedule = "cosine"
        c.seed = 0
        c.logEvery = 5
        return c
    }

    /// Trains from scratch into `out` (replacing an earlier demo run there).
    public static func run(out: URL = URL(fileURLWithPath: "demo-run"), epochs: Int = 14, progress: ProgressDisplay? = ProgressDisplay()) throws -> Report {
        if FileManager.default.fileExists(atPath: out.appendingPathComponent("run.json").path) {
            try FileManager.default.removeItem(at: out)
        }
        let result = try Trainer.run(try config(out: out, epochs: epochs), hooks: TrainHooks(progress: progress))
        guard let v = result.validation else { throw TuneError("demo: no held-out evaluation was produced") }
        let perClass = result.labels.names.enumerated().map { i, label in
            (name: Int(label).flatMap { classNames.indices.contains($0) ? classNames[$0] : nil } ?? label,
             accuracy: v.countPerClass[i] > 0 ? Double(v.correctPerClass[i]) / Double(v.countPerClass[i]) : 0,
             examples: v.countPerClass[i])
        }
        return Report(accuracy: v.accuracy, perClass: perClass, seconds: result.seconds, runDirectory: out,
                      curve: RunDirectory(out).curve)
    }
}
