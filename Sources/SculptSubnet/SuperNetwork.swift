import Foundation
import Dispatch
#if canImport(Glibc)
import Glibc
#endif
import SculptCore
import SculptModels
import SculptSearch
import SculptTune

/// What a latency is read from.
public enum LatencyClock: String, Codable, Sendable, CaseIterable {
    /// Elapsed time: what a user waits, including time the process spends descheduled.
    case wall
    /// CPU time of the process: on a shared machine, the latency the pass would have with the
    /// core to itself (one thread only: with more, CPU time adds the threads up).
    case cpu
}

/// How latency is measured: input shape, threads, clock, and the timing protocol (warm-up
/// runs, then the median of timed runs). Every latency Sculpt reports states these.
public struct LatencySetting: Codable, Sendable, Equatable, CustomStringConvertible {
    /// Examples per forward pass.
    public var batch: Int
    /// Tokens per example (BERT); ignored for images, whose size is the model's.
    public var sequence: Int
    public var threads: Int
    public var warmup: Int
    public var runs: Int
    /// nil: wall (and omitted from the JSON, so stores and tables written before the clock
    /// existed keep their keys).
    public var clock: LatencyClock?

    public init(batch: Int = 1, sequence: Int = 128, threads: Int = 1, warmup: Int = 3, runs: Int = 15, clock: LatencyClock = .wall) {
        self.batch = batch; self.sequence = sequence; self.threads = threads; self.warmup = warmup; self.runs = runs
        self.clock = clock == .wall ? nil : clock
    }

    public var timer: LatencyClock { clock ?? .wall }

    public var description: String {
        "batch \(batch), sequence \(sequence), \(threads) thread\(threads == 1 ? "" : "s"), median of \(runs) runs after \(warmup) warm-up, \(timer.rawValue) clock"
    }

    public func validate() throws {
        guard batch >= 1, sequence >= 1, threads >= 1, warmup >= 0, runs >= 1 else {
            throw SuperNetworkError("latency setting needs batch, sequence, threads and runs >= 1 and warm-up >= 0 (got \(self))")
        }
        if timer == .cpu, threads != 1 {
            throw SuperNetworkError("the cpu clock times one thread (CPU time adds threads up); use --threads 1 or --clock wall")
        }
    }
}

/// Milliseconds on `clock` since an arbitrary origin.
func clockMilliseconds(_ clock: LatencyClock) -> Double {
    switch clock {
    case .wall: return Double(DispatchTime.now().uptimeNanoseconds) / 1e6
    case .cpu:
        var t = timespec()
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t)
        return Double(t.tv_sec) * 1e3 + Double(t.tv_nsec) / 1e6
    }
}

public struct SuperNetworkError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// A trained network whose sub-networks (leading slices of its weights) can be activated,
/// costed, evaluated and timed: what `sculpt search` and `sculpt latency-table` work on.
///
/// Sub-networks are named by their encoding in `searchSpace` (one choice index per
/// dimension, inactive slots blank). A new kind of super-network (the elastic CNN) implements
/// this protocol and adds a case to `loadSuperNetwork` (as `BertSuperNetwork` and
/// `CNNSuperNetwork` do); the search, the latency table, the store and the commands then work
/// on it unchanged.
public protocol SuperNetwork: AnyObject {
    /// "bert" or "cnn".
    var kind: String { get }
    /// The elastic dimensions (without a context: the caller adds what the measurements depend on).
    var searchSpace: SearchSpace { get }
    /// What the weights are (files, sizes, modification times, reordering), so measurements of
    /// other weights are never mistaken for these.
    var identity: String { get }
    /// The sub-network in the model's own JSON (what `sculpt extract --subnet` takes).
    func subnetJSON(_ encoding: [Int]) throws -> String
    /// Makes forward passes use the sub-network (nil: the whole network).
    func activate(_ encoding: [Int]?) throws
    /// Multiply-accumulates of one forward pass of one example (BERT: `setting.sequence` tokens).
    func macs(_ encoding: [Int], setting: LatencySetting) throws -> Double
    /// Parameters of the sub-network as extracted (head included).
    func params(_ encoding: [Int]) throws -> Double
    /// Accuracy and loss on labelled data with the sub-network active (a CNN recalibrates its
    /// BatchNorm statistics for the sub-network first and evaluates its dense extraction).
    func evaluate(_ encoding: [Int], on data: ClassificationData, batchSize: Int) throws -> EvalResult
    /// One forward pass of the sub-network on a fixed input of `setting`'s shape, for timing.
    func forwardProbe(_ encoding: [Int], setting: LatencySetting) throws -> () -> Void
    /// The latency-table parts a sub-network's forward pass is made of (with repeats).
    func latencyParts(_ encoding: [Int]) throws -> [String]
    /// Every part name of the table.
    var allLatencyParts: [String] { get }
    /// One run of one part on a fixed input of `setting`'s shape, for timing.
    func partProbe(_ part: String, setting: LatencySetting) throws -> () -> Void
}

extension SuperNetwork {
    /// Latency measured directly: `setting.warmup` runs, then the median of `setting.runs`, in ms.
    public func measureLatency(_ encoding: [Int], setting: LatencySetting) throws -> Double {
        let probe = try forwardProbe(encoding, setting: setting)
        return withThreads(setting.threads) { medianMilliseconds(warmup: setting.warmup, runs: setting.runs, clock: setting.timer, probe) }
    }
}

/// Times `body`: `warmup` untimed runs, then the median of `runs` timed ones, in milliseconds.
public func medianMilliseconds(warmup: Int, runs: Int, clock: LatencyClock = .wall, _ body: () -> Void) -> Double {
    for _ in 0..<warmup { body() }
    var times: [Double] = []
    for _ in 0..<max(1, runs) {
        let t0 = clockMilliseconds(clock)
        body()
        times.append(clockMilliseconds(clock) - t0)
    }
    return median(times)
}

func median(_ xs: [Double]) -> Double {
    let s = xs.sorted()
    guard !s.isEmpty else { return .nan }
    return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
}

/// A super-network loaded from a run directory, with the run's validation data when it can
/// be found.
public struct LoadedSuperNetwork {
    public var network: any SuperNetwork
    public var runDirectory: URL
    /// The run's validation split or `--eval-data` file (nil when neither can be rebuilt).
    public var validation: ClassificationData?
    /// Where the validation data came from, for messages and the store's context.
    public var validationSource: String
}

/// How a non-elastic run's weights are prepared as a super-network.
public enum SuperNetworkReorder: String, Codable, Sendable, CaseIterable {
    /// Importance reordering for runs not trained elastically (their leading slices are
    /// otherwise arbitrary units), none for elastic runs (already ordered and trained so).
    case auto
    case none
    case magnitude
}

/// Loads a run directory (or a `final/` directory) as a super-network, with its validation
/// data: `valData` if given, else the run's `--eval-data`, else its validation split rebuilt
/// from `run.json` (same data file, fraction and seed).
public func loadSuperNetwork(run: URL, valData: URL? = nil, reorder: SuperNetworkReorder = .auto,
                             loadValidation: Bool = true) throws -> LoadedSuperNetwork {
    let (model, labels, tokenizer, finalDir) = try ClassifierStore.load(run)
    let runDir = RunDirectory(runOrFinal: finalDir).url
    // An elastic run (its sub-networks listed in subnets.json) is ordered by its training.
    let subnetsURL = SubnetsFile.url(in: runDir)
    let elastic = FileManager.default.fileExists(atPath: subnetsURL.path)
    // An elastic run searches the space it trained (e.g. narrower --elastic-widths); a gates
    // run's final/ is already the extracted sub-network, so its own standard space applies.
    let recorded = elastic ? try SubnetsFile.read(from: subnetsURL) : nil
    let trainedSpace = recorded.flatMap { $0.training.hasPrefix("elastic") ? $0.space : nil }
    let record = (try? Data(contentsOf: RunDirectory(runDir).runJSON)).flatMap { try? JSONDecoder().decode(RunRecord.self, from: $0) }
    // Image runs: the run's data, prepared as it trained (deterministic in data, fraction and
    // seed), gives both the validation split and the BatchNorm calibration batches.
    var imageData: PreparedData? = nil
    if loadValidation, model.spec.kind != .bert, let c = record?.config, FileManager.default.fileExists(atPath: c.data) {
        imageData = try DataPreparation.prepare(c, tokenizer: nil, cacheDirectory: nil)
    }
    let network: any SuperNetwork
    switch model.spec.kind {
    case .bert:
        guard let bc = model as? BertClassifier else { throw SuperNetworkError("\(finalDir.path): classifier.json says bert but the model is not") }
        let criterion: ImportanceCriterion? = switch reorder {
        case .auto: elastic ? nil : .magnitude
        case .none: nil
        case .magnitude: .magnitude
        }
        var space: BertSearchSpace? = nil
        if let trainedSpace { guard case .bert(let s) = trainedSpace else { throw SuperNetworkError("\(subnetsURL.path): not a BERT space") }; space = s }
        network = BertSuperNetwork(classifier: bc, padId: tokenizer?.padId ?? 0, reorder: criterion, weightsDirectory: finalDir, space: space)
    case .cnn:
        guard let cnn = model as? ImageCNN else { throw SuperNetworkError("\(finalDir.path): classifier.json says cnn but the model is not") }
        let calibration = imageData.map { calibrationBatches($0.train, count: 8, batchSize: 64, seed: record!.config.seed) }
        var space: CNNSearchSpace? = nil
        if let trainedSpace { guard case .cnn(let s) = trainedSpace else { throw SuperNetworkError("\(subnetsURL.path): not a CNN space") }; space = s }
        network = CNNSuperNetwork(cnn: cnn, reorder: reorder == .magnitude || (reorder == .auto && !elastic),
                                  calibration: calibration, weightsDirectory: finalDir, space: space)
    case .mlp:
        throw SuperNetworkError("\(run.path): an MLP run; the search has BERT and CNN super-networks only (sculpt subnets/extract work on MLP runs)")
    }
    var validation: ClassificationData? = nil
    var source = "none"
    if !loadValidation {
        // Latency and costs only.
    } else if let v = valData {
        if let tokenizer {
            validation = try DataPreparation.loadText(v, labels: labels, textField: model.spec.textField, labelField: model.spec.labelField,
                                                      tokenizer: tokenizer, maxLength: model.spec.maxLength, cacheFile: nil)
        } else {
            validation = try DataPreparation.loadImages(v, labels: labels)
        }
        source = v.standardizedFileURL.path
    } else if let imageData, let c = record?.config {
        validation = imageData.validation
        source = c.evalData.map { URL(fileURLWithPath: $0).standardizedFileURL.path }
            ?? "\(URL(fileURLWithPath: c.data).standardizedFileURL.path) validation (split \(c.valFraction) seed \(c.seed) or t10k)"
    } else if let c = record?.config, let tokenizer {
        if let e = c.evalData {
            let url = URL(fileURLWithPath: e)
            if FileManager.default.fileExists(atPath: url.path) {
                validation = try DataPreparation.loadText(url, labels: labels, textField: c.textField, labelField: c.labelField,
                                                          tokenizer: tokenizer, maxLength: c.maxLength, cacheFile: nil)
                source = url.standardizedFileURL.path
            }
        } else if FileManager.default.fileExists(atPath: c.data) {
            // The same split the run validated on: prepare() is deterministic in (data, fraction, seed).
            let prepared = try DataPreparation.prepare(c, tokenizer: tokenizer, cacheDirectory: nil)
            validation = prepared.validation
            source = "\(URL(fileURLWithPath: c.data).standardizedFileURL.path) split \(c.valFraction) seed \(c.seed)"
        }
    }
    return LoadedSuperNetwork(network: network, runDirectory: runDir, validation: validation, validationSource: source)
}

/// The first `n` examples of a seeded shuffle (a fixed seed, so every search over the same
/// run and `n` evaluates on the same examples and the store's values stay comparable).
public func validationSubset(_ data: ClassificationData, examples n: Int?) -> ClassificationData {
    guard let n, n < data.count else { return data }
    var rng = SeededRNG(seed: 0x5EA2C4)
    var idx = Array(0..<data.count)
    for i in stride(from: idx.count - 1, to: 0, by: -1) { idx.swapAt(i, Int(rng.next() % UInt64(i + 1))) }
    return data.subset(Array(idx.prefix(n)).sorted())
}
