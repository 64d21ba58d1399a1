import Foundation

/// The files of a run directory, in one place.
public struct RunDirectory: Sendable {
    public let url: URL
    public init(_ url: URL) { self.url = url }

    public var runJSON: URL { url.appendingPathComponent("run.json") }
    public var labels: URL { url.appendingPathComponent("labels.json") }
    public var metrics: URL { url.appendingPathComponent("metrics.jsonl") }
    public var checkpoints: URL { url.appendingPathComponent("checkpoints") }
    public var lastCheckpoint: URL { checkpoints.appendingPathComponent("last.safetensors") }
    public var bestCheckpoint: URL { checkpoints.appendingPathComponent("best.safetensors") }
    public var final: URL { url.appendingPathComponent("final") }
    public var cache: URL { url.appendingPathComponent("cache") }
    public var curve: URL { url.appendingPathComponent("curve.svg") }

    /// The run directory a path names: the path itself, or the run above a `final/`.
    public init(runOrFinal url: URL) {
        self.url = url.lastPathComponent == "final" ? url.deletingLastPathComponent() : url
    }

    public func create() throws {
        for d in [url, checkpoints, cache] { try FileManager.default.createDirectory(at: d, withIntermediateDirectories: true) }
    }
}

/// `run.json`: the resolved configuration and where it ran.
public struct RunRecord: Codable, Sendable {
    public var config: TrainConfig
    public var seed: UInt64
    public var packageVersion: String
    public var classes: Int
    public var trainExamples: Int
    public var validationExamples: Int
    public var totalSteps: Int
    public var parameters: Int
    public var trainableParameters: Int

    enum CodingKeys: String, CodingKey {
        case config, seed, packageVersion = "package_version", classes, trainExamples = "train_examples"
        case validationExamples = "validation_examples", totalSteps = "total_steps", parameters, trainableParameters = "trainable_parameters"
    }
}

public enum SculptVersion {
    /// The package version recorded in every run.
    public static let current = "0.1.0"
}
