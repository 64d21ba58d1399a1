import Foundation
import SculptIO

/// One line of `metrics.jsonl`: a training record (loss, lr, throughput) or an evaluation
/// record (val metrics); absent fields are omitted.
public struct MetricsRecord: Codable, Sendable, Equatable {
    public var step: Int
    public var epoch: Double
    public var loss: Double? = nil
    public var lr: Double? = nil
    public var examplesPerSecond: Double? = nil
    public var valAccuracy: Double? = nil
    public var valLoss: Double? = nil

    public init(step: Int, epoch: Double) {
        self.step = step
        self.epoch = epoch
    }

    enum CodingKeys: String, CodingKey {
        case step, epoch, loss, lr, examplesPerSecond = "examples_per_second", valAccuracy = "val_accuracy", valLoss = "val_loss"
    }
}

/// Appends records to `metrics.jsonl`, one JSON object per line.
public final class MetricsLog {
    let url: URL
    let encoder: JSONEncoder

    public init(url: URL) {
        self.url = url
        encoder = RunJSON.encoder(pretty: false)
    }

    public func append(_ r: MetricsRecord) throws {
        var line = try encoder.encode(r)
        line.append(0x0A)
        if !FileManager.default.fileExists(atPath: url.path) { _ = FileManager.default.createFile(atPath: url.path, contents: nil) }
        let h = try FileHandle(forWritingTo: url)
        defer { try? h.close() }
        try h.seekToEnd()
        try h.write(contentsOf: line)
    }

    public static func read(_ url: URL) -> [MetricsRecord] {
        guard let text = try? String(contentsOf: url, encoding: .utf8) else { return [] }
        return text.split(separator: "\n").compactMap { try? JSONDecoder().decode(MetricsRecord.self, from: Data($0.utf8)) }
    }

    /// On resume: drops records after the checkpoint's step, so the log tells one story.
    public static func truncate(_ url: URL, afterStep step: Int) throws {
        let kept = read(url).filter { $0.step <= step }
        let encoder = RunJSON.encoder(pretty: false)
        var data = Data()
        for r in kept { data.append(try encoder.encode(r)); data.append(0x0A) }
        try AtomicFile.write(data, to: url)
    }
}
