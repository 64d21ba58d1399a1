#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import SculptCore
import SculptIO

/// What a merge did.
public struct MergeReport: Codable, Sendable {
    public var method: String
    public var output: String
    public var mergedTensors = 0
    public var copiedTensors = 0
    /// Per-task tensors kept under `task_<i>.<name>` (see `Merge`).
    public var keptHeads: [String] = []
    /// Per-task head directories written (`heads/task_<i>`, a Sculpt run's head files).
    public var headDirectories: [String] = []
    /// Most Float buffers (tensor-sized) held at once, and their bytes.
    public var peakBuffers = 0
    public var peakBufferBytes = 0
    /// The largest tensor of the output, in Float32 bytes.
    public var largestTensorBytes = 0
    public var seconds: Double = 0
}

/// Runs a merge config: streams every tensor from memory-mapped inputs into the output file,
/// one tensor at a time.
///
/// Inputs are model directories (`model.safetensors` + `config.json`) or Sculpt run directories
/// (their `final/`). Names are matched exactly, or with a `bert.` prefix added or removed (task
/// checkpoints carry it; plain encoders do not); the output uses the base's names.
///
/// Heads kept per task: a tensor a fine-tune has and the base lacks, or a tensor whose shape
/// differs from the base's and whose name starts with a head component (`classifier`, `score`,
/// `qa_outputs`, `lm_head`, `cls`, `pre_classifier`, `head`), is not merged but copied as
/// `task_<i>.<name>`, i the model's position in `models` (0-based); `__metadata__` maps
/// `sculpt_task_<i>` to the model's path. A Sculpt classifier's separate head files
/// (`head.safetensors`, `classifier.json`, `labels.json`) are copied to `heads/task_<i>/`.
/// Any other shape mismatch is an error.
///
/// Atomicity: everything is written into a staging directory beside `out` and moved into
/// place only after the whole merge succeeded; on any error `out` is left as it was.
public enum Merge {
    static let headComponents: Set<String> = ["classifier", "score", "qa_outputs", "lm_head", "cls", "pre_classifier", "head"]
    static let copiedFiles = ["config.json", "tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json",
                              "generation_config.json", "chat_template.jinja", "vocab.json", "merges.txt"]
    static let headFiles = ["head.safetensors", "classifier.json", "labels.json"]

    public static func run(configFile: URL, out: URL) throws -> MergeReport {
        let config = try MergeConfig.load(configFile)
        return try run(config, out: out, configText: try? String(contentsOf: configFile, encoding: .utf8))
    }

    public static func run(_ config: MergeConfig, out: URL, configText: String? = nil, ledger: BufferLedger = BufferLedger()) throws -> MergeReport {
        try config.validate()
        let start = Date()
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: out.path, isDirectory: &isDir), !isDir.boolValue {
            throw MergeError("--out \(out.path): exists and is not a directory")
        }
        var report: MergeReport
        let staging = try StagedDirectory(out, existing: .mergeInto)
        do {
            switch config.method {
            case .loraConcat, .loraSVD:
                report = try LoRAMerge.run(config, into: staging.url)
            case .sparseDiff:
                report = try SparseDiffMerge.run(config, into: staging.url)
            default:
                var engine = try TaskVectorMerge(config, ledger: ledger)
                report = try engine.write(into: staging.url)
            }
            if let configText {
                try AtomicFile.write(Data(configText.utf8), to: staging.url.appendingPathComponent("merge_config.yaml"))
            }
            report.output = out.path
            try staging.commit()
        } catch {
            staging.discard()
            throw error
        }
        report.seconds = Date().timeIntervalSince(start)
        return report
    }

    static func isHead(_ name: String) -> Bool {
        var n = Substring(name)
        if n.hasPrefix("bert.") { n = n.dropFirst(5) }
        guard let first = n.split(separator: ".").first else { return false }
        return headComponents.contains(String(first))
    }

    static func open(_ dir: URL, role: String) throws -> SafeTensorsFile {
        try SafeTensorsFile(path: dir.appendingPathComponent("model.safetensors").path)
    }

    /// The name of `baseName` in `file`: itself, or with `bert.` removed or added.
    static func align(_ baseName: String, in file: SafeTensorsFile) -> String? {
        if file.contains(baseName) { return baseName }
        if baseName.hasPrefix("bert.") {
            let s = String(baseName.dropFirst(5))
            if file.contains(s) { return s }
        } else if file.contains("bert." + baseName) {
            return "bert." + baseName
        }
        return nil
    }

    static func isFloat(_ d: SafeTensorsDType) -> Bool { d == .f32 || d == .f16 || d == .bf16 || d == .f64 }

    /// Writes `n` floats as `dtype` through `write`, converting chunk by chunk.
    static func emit(_ p: UnsafePointer<Float>, _ n: Int, as dtype: SafeTensorsDType,
                     _ write: (UnsafeRawBufferPointer) throws -> Void) throws {
        if dtype == .f32 {
            try write(UnsafeRawBufferPointer(start: p, count: n * 4))
            return
        }
        let chunk = 1 << 15
        let tmp = UnsafeMutablePointer<UInt16>.allocate(capacity: chunk)
        defer { tmp.deallocate() }
        var i = 0
        while i < n {
            let c = min(chunk, n - i)
            if dtype == .f16 { convertFloatToFloat16(p + i, tmp, count: c) } else { convertFloatToBFloat16(p + i, tmp, count: c) }
            try write(UnsafeRawBufferPointer(start: tmp, count: c * 2))
            i += c
        }
    }

    /// Copies the reference's config/tokenizer files and each model's head files; returns the
    /// head directories written (relative to `dir`).
    @discardableResult
    static func copySideFiles(reference: URL, models: [URL], into dir: URL) throws -> [String] {
        let fm = FileManager.default
        guard fm.fileExists(atPath: reference.appendingPathComponent("config.json").path) else {
            throw MergeError("\(reference.path): no config.json to copy into the merged model")
        }
        for f in copiedFiles where fm.fileExists(atPath: reference.appendingPathComponent(f).path) {
            try fm.copyItem(at: reference.appendingPathComponent(f), to: dir.appendingPathComponent(f))
        }
        var heads: [String] = []
        for (i, m) in models.enumerated() where fm.fileExists(atPath: m.appendingPathComponent("head.safetensors").path) {
            let h = dir.appendingPathComponent("heads/task_\(i)")
            try fm.createDirectory(at: h, withIntermediateDirectories: true)
            for f in headFiles where fm.fileExists(atPath: m.appendingPathComponent(f).path) {
                try fm.copyItem(at: m.appendingPathComponent(f), to: h.appendingPathComponent(f))
            }
            heads.append("heads/task_\(i)")
        }
        return heads
    }
}

/// linear, task_arithmetic, ties, dare_*, magnitude_prune, lines and transfer: one streamed pass.
struct TaskVectorMerge {
    enum Entry {
        case merge(name: String, shape: [Int], count: Int, modelNames: [String], scale: Float)
        case copy(outName: String, file: Int, name: String, info: SafeTensorInfo)  // file -1: reference
    }

    let config: MergeConfig
    let ledger: BufferLedger
    let merger: TensorMerger
    let referenceDir: URL
    let modelDirs: [URL]
    let reference: SafeTensorsFile
    let oldBase: SafeTensorsFile?
    let models: [SafeTensorsFile]
    let hasBase: Bool
    var entries: [(String, Entry)] = []
    var report: MergeReport

    init(_ c: MergeConfig, ledger: BufferLedger) throws {
        config = c
        self.ledger = ledger
        merger = TensorMerger(c)
        modelDirs = try c.models.enumerated().map { i, m in try ModelDirectory.resolve(m.model, role: "models[\(i)]") }
        models = try modelDirs.map { try Merge.open($0, role: "model") }
        if let b = c.baseModel {
            referenceDir = try ModelDirectory.resolve(b, role: "base_model")
            reference = try Merge.open(referenceDir, role: "base_model")
            hasBase = true
        } else {
            referenceDir = modelDirs[0]
            reference = models[0]
            hasBase = false
        }
        if let o = c.oldBaseModel {
            oldBase = try Merge.open(try ModelDirectory.resolve(o, role: "old_base_model"), role: "old_base_model")
        } else {
            oldBase = nil
        }
        report = MergeReport(method: c.method.rawValue, output: "")
        try plan()
    }

    mutating func plan() throws {
        let layers = (reference.names.compactMap(LayerIndex.of).max() ?? -1) + 1
        var used = [Set<String>](repeating: [], count: models.count)
        var out: [(String, Entry)] = []
        for name in reference.names {
            let info = try reference.info(name)
            guard Merge.isFloat(info.dtype) else {
                out.append((name, .copy(outName: name, file: -1, name: name, info: info)))
                continue
            }
            var names: [String] = []
            var mergeable = true
            for (j, f) in models.enumerated() {
                let label = "model \(config.models[j].model)"
                guard let mn = Merge.align(name, in: f) else {
                    throw MergeError("\(label): has no tensor \(name), which base \(referenceDir.path) has")
                }
                used[j].insert(mn)
                let mi = try f.info(mn)
                guard Merge.isFloat(mi.dtype) else { throw MergeError("\(label): tensor \(mn) is \(mi.dtype), not a float type") }
                if mi.shape != info.shape {
                    guard Merge.isHead(name) else {
                        throw MergeError("\(label): tensor \(mn) has shape \(mi.shape), base \(referenceDir.path) has \(info.shape)")
                    }
                    out.append(("task_\(j).\(name)", .copy(outName: "task_\(j).\(name)", file: j, name: mn, info: mi)))
                    report.keptHeads.append("task_\(j).\(name)")
                    mergeable = false
                }
                names.append(mn)
            }
            if let o = oldBase {
                guard let on = Merge.align(name, in: o) else { throw MergeError("old_base_model \(o.path): has no tensor \(name)") }
                let oi = try o.info(on)
                guard oi.shape == info.shape else {
                    throw MergeError("old_base_model: tensor \(on) has shape \(oi.shape), new base has \(info.shape)")
                }
            }
            if !mergeable {
                // Some tasks have their own head of another shape: keep the base's as it is.
                out.append((name, .copy(outName: name, file: -1, name: name, info: info)))
                continue
            }
            var scale = Float(config.lambda)
            if config.method == .lines {
                scale *= Float(LayerIndex.linesScale(name: name, layers: layers, alpha: config.alpha ?? 1, beta: config.beta ?? 0))
            }
            out.append((name, .merge(name: name, shape: info.shape, count: info.elementCount, modelNames: names, scale: scale)))
        }
        for (j, f) in models.enumerated() where !(hasBase == false && j == 0) {
            for mn in f.names where !used[j].contains(mn) {
                let mi = try f.info(mn)
                // Buffers such as position_ids are not task-specific.
                if Merge.align(mn, in: reference) != nil { continue }
                out.append(("task_\(j).\(mn)", .copy(outName: "task_\(j).\(mn)", file: j, name: mn, info: mi)))
                report.keptHeads.append("task_\(j).\(mn)")
            }
        }
        entries = out.sorted { $0.0.utf8.lexicographicallyPrecedes($1.0.utf8) }
    }

    /// Global density scope: each model's cut over all its merged tensors (two streamed passes).
    func globalCuts() throws -> [MagnitudeCut]? {
        guard config.method.trimsByMagnitude, config.densityScope == .global else { return nil }
        var cuts: [MagnitudeCut] = []
        for j in models.indices {
            var total = 0
            for (_, e) in entries { if case .merge(_, _, let n, _, _) = e { total += n } }
            var sel = MagnitudeSelector(k: MagnitudeCut.keepCount(density: config.models[j].density, count: total), total: total)
            for pass in 0..<2 {
                for (_, e) in entries {
                    guard case .merge(let name, _, let n, let names, _) = e else { continue }
                    let c = min(n, Self.chunkElements)
                    let t = ledger.allocate(c), b = ledger.allocate(c)
                    defer { ledger.free(t, c); ledger.free(b, c) }
                    var s0 = 0
                    while s0 < n {
                        let len = min(c, n - s0)
                        try Self.readChunk(models[j], names[j], start: s0, count: len, into: t)
                        try Self.readChunk(reference, name, start: s0, count: len, into: b)
                        MergeKernels.subtract(t, b, len)
                        if pass == 0 { sel.countHigh(t, len) } else { sel.countLow(t, len) }
                        s0 += len
                    }
                }
                if pass == 0 { sel.finishHigh() }
            }
            cuts.append(sel.cut())
        }
        return cuts
    }

    mutating func write(into dir: URL) throws -> MergeReport {
        var writer = SafeTensorsWriter()
        let dtype = config.dtype.safetensors
        let cutsBox = UnsafeMutablePointer<MagnitudeCut>.allocate(capacity: max(models.count, 1))
        defer { cutsBox.deallocate() }
        let cuts = try globalCuts()
        if let cuts { cutsBox.initialize(from: cuts, count: cuts.count) }
        let this = self
        for (outName, e) in entries {
            switch e {
            case .copy(_, let fileIndex, let name, let info):
                let f = fileIndex < 0 ? reference : models[fileIndex]
                try writer.add(name: outName, dtype: info.dtype, shape: info.shape) { write in
                    try f.withRawBytes(name) { try write($0) }
                    f.evict(name)
                }
                report.copiedTensors += 1
            case .merge(let name, let shape, let n, let names, let scale):
                try writer.add(name: outName, dtype: dtype, shape: shape) { write in
                    try this.produce(name: name, count: n, modelNames: names, scale: scale,
                                     cuts: cuts == nil ? nil : cutsBox, dtype: dtype, write)
                }
                report.mergedTensors += 1
                report.largestTensorBytes = max(report.largestTensorBytes, n * 4)
            }
        }
        var meta = ["format": "pt", "sculpt_merge_method": config.method.rawValue]
        for (j, m) in config.models.enumerated() where report.keptHeads.contains(where: { $0.hasPrefix("task_\(j).") }) {
            meta["sculpt_task_\(j)"] = m.model
        }
        try writer.write(to: dir.appendingPathComponent("model.safetensors"), metadata: meta)
        report.headDirectories = try Merge.copySideFiles(reference: referenceDir, models: modelDirs, into: dir)
        report.peakBuffers = ledger.peak
        report.peakBufferBytes = ledger.peakBytes
        return report
    }

    /// Elements per working buffer: large tensors (word embeddings) are merged in chunks of
    /// this size, so memory does not scale with the largest tensor times the model count.
    static let chunkElements = 1 << 18

    /// Reads elements [start, start + count) of a float tensor as Float32 and drops their pages.
    static func readChunk(_ f: SafeTensorsFile, _ name: String, start: Int, count: Int, into p: UnsafeMutablePointer<Float>) throws {
        let info = try f.info(name)
        let size = info.dtype.byteSize
        try f.withRawBytes(name) { raw in
            guard count > 0, let src = raw.baseAddress else { return }
            switch info.dtype {
            case .f32:
                UnsafeMutableRawPointer(p).copyMemory(from: src + start * 4, byteCount: count * 4)
            case .f16, .bf16:
                let tmp = UnsafeMutablePointer<UInt16>.allocate(capacity: count)
                defer { tmp.deallocate() }
                UnsafeMutableRawPointer(tmp).copyMemory(from: src + start * 2, byteCount: count * 2)
                if info.dtype == .f16 { convertFloat16ToFloat(tmp, p, count: count) } else { convertBFloat16ToFloat(tmp, p, count: count) }
            case .f64:
                for i in 0..<count { p[i] = Float(src.loadUnaligned(fromByteOffset: (start + i) * 8, as: Double.self)) }
            default:
                throw MergeError("\(f.path): tensor \(name) is \(info.dtype), not a float type")
            }
        }
        f.evict(name, bytes: (start * size)..<((start + count) * size))
    }

    func produce(name: String, count n: Int, modelNames: [String], scale: Float, cuts: UnsafeMutablePointer<MagnitudeCut>?,
                 dtype: SafeTensorsDType, _ write: (UnsafeRawBufferPointer) throws -> Void) throws {
        // DARE with L1 rescaling needs whole-tensor norms: one chunk.
        let whole = config.method.dropsAtRandom && config.rescale == .l1
        let c = whole ? n : min(n, Self.chunkElements)
        let reference = self.reference, models = self.models
        let oldName = oldBase.flatMap { Merge.align(name, in: $0) }

        // Per-tensor magnitude cuts over all chunks (two streamed passes per model).
        var chunkCuts: [MagnitudeCut] = []
        if config.method.trimsByMagnitude, cuts == nil, c < n {
            let t = ledger.allocate(c), b = ledger.allocate(c)
            defer { ledger.free(t, c); ledger.free(b, c) }
            for j in models.indices {
                var sel = MagnitudeSelector(k: MagnitudeCut.keepCount(density: config.models[j].density, count: n), total: n)
                for pass in 0..<2 {
                    var s0 = 0
                    while s0 < n {
                        let len = min(c, n - s0)
                        try Self.readChunk(models[j], modelNames[j], start: s0, count: len, into: t)
                        if let o = oldBase, let on = oldName { try Self.readChunk(o, on, start: s0, count: len, into: b) }
                        else { try Self.readChunk(reference, name, start: s0, count: len, into: b) }
                        MergeKernels.subtract(t, b, len)
                        if pass == 0 { sel.countHigh(t, len) } else { sel.countLow(t, len) }
                        s0 += len
                    }
                    if pass == 0 { sel.finishHigh() }
                }
                chunkCuts.append(sel.cut())
            }
        }

        let out = ledger.allocate(c)
        let base: UnsafeMutablePointer<Float>? = hasBase ? ledger.allocate(c) : nil
        let old: UnsafeMutablePointer<Float>? = oldName != nil ? ledger.allocate(c) : nil
        defer {
            ledger.free(out, c)
            if let base { ledger.free(base, c) }
            if let old { ledger.free(old, c) }
        }
        try chunkCuts.withUnsafeMutableBufferPointer { cc in
            let cutPointer = cuts ?? (cc.isEmpty ? nil : cc.baseAddress)
            var s0 = 0
            while s0 < n {
                let len = min(c, n - s0)
                if let base { try Self.readChunk(reference, name, start: s0, count: len, into: base) }
                if let old, let o = oldBase, let on = oldName { try Self.readChunk(o, on, start: s0, count: len, into: old) }
                let from = s0
                try merger.merge(name: name, count: len, deltaBase: UnsafePointer(old ?? base), addBase: UnsafePointer(base), scale: scale,
                                 ledger: ledger, cuts: cutPointer, offset: from,
                                 load: { j, p in try Self.readChunk(models[j], modelNames[j], start: from, count: len, into: p) },
                                 out: out)
                for i in 0..<len where !out[i].isFinite {
                    throw MergeError("tensor \(name): merged value at index \(s0 + i) is not finite")
                }
                try Merge.emit(out, len, as: dtype, write)
                s0 += len
            }
        }
    }
}

/// Peak resident memory of this process (`VmHWM` in /proc/self/status), in bytes; nil where
/// the file does not exist.
public enum ProcessMemory {
    public static func peakResidentBytes() -> Int? { field("VmHWM:") }
    public static func residentBytes() -> Int? { field("VmRSS:") }

    static func field(_ key: String) -> Int? {
        guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix(key) {
            let parts = line.split(separator: " ", omittingEmptySubsequences: true)
            if parts.count >= 2, let kb = Int(parts[1]) { return kb * 1024 }
        }
        return nil
    }
}
