import ArgumentParser
import Foundation
import SculptMerge
import SculptModels

struct MergeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "merge",
        abstract: "Merge fine-tunes of one base as a mergekit-style YAML config says (streamed, tensor by tensor).",
        discussion: "Methods: \(MergeMethodName.known). Models are model directories (model.safetensors + config.json) or Sculpt run directories (their final/). Nothing is written to --out unless the merge completes.")

    @Argument(help: "The merge config (YAML: merge_method, base_model, models, parameters, dtype).") var config: String
    @Option(help: "The output directory (model.safetensors + config.json, or a LoRA adapter for lora_* methods).") var out: String
    @Flag(help: "Print peak resident memory (VmHWM) when done.") var reportMemory = false
    @Flag(help: "Print one JSON object.") var json = false

    func run() throws {
        var report = try Merge.run(configFile: URL(fileURLWithPath: config), out: URL(fileURLWithPath: out))
        struct Out: Encodable { let report: MergeReport; let peakRSSBytes: Int? }
        let peak = reportMemory ? ProcessMemory.peakResidentBytes() : nil
        report.output = out
        if json { print(jsonLine(Out(report: report, peakRSSBytes: peak))); return }
        var rows = [
            ["method", report.method], ["output", report.output],
            ["merged tensors", "\(report.mergedTensors)"], ["copied tensors", "\(report.copiedTensors)"],
            ["per-task heads kept", report.keptHeads.isEmpty ? "none" : report.keptHeads.joined(separator: ", ")],
            ["per-task head dirs", report.headDirectories.isEmpty ? "none" : report.headDirectories.joined(separator: ", ")],
            ["peak tensor buffers", "\(report.peakBuffers) (\(String(format: "%.1f MB", Double(report.peakBufferBytes) / 1e6)))"],
            ["seconds", String(format: "%.2f", report.seconds)],
        ]
        if let peak { rows.append(["peak RSS", String(format: "%.1f MB", Double(peak) / 1e6)]) }
        print(table(["merge", ""], rows))
    }
}

struct DiffCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "diff",
        abstract: "Which parameters fine-tunes changed: fractions per layer and matrix, rank of each update, overlap of two fine-tunes vs chance.")

    @Argument(help: "The base model directory.") var base: String
    @Argument(help: "One or two fine-tuned model (or run) directories.") var finetunes: [String]
    @Option(help: "Count |Δ| > T as changed for the 'beyond' columns and the overlap.") var tolerance: Float = 0
    @Flag(help: "Skip the numerical rank of each changed matrix (the slow part).") var noRank = false
    @Flag(help: "Print one JSON object.") var json = false

    func validate() throws {
        guard (1...2).contains(finetunes.count) else { throw ValidationError("give one or two fine-tuned models") }
    }

    func run() throws {
        let r = try UpdateAnalysis.diff(base: base, finetunes: finetunes, tolerance: tolerance, rank: !noRank)
        if json { print(jsonLine(r)); return }
        func pct(_ a: Int, _ n: Int) -> String { n == 0 ? "-" : String(format: "%.2f%%", 100 * Double(a) / Double(n)) }
        let k = finetunes.count
        var header = ["tensor", "params"]
        for i in 1...k { header += ["ft\(i) changed", "ft\(i) >T", "ft\(i) rank"] }
        if k == 2 { header += ["overlap", "chance", "ratio"] }
        func row(_ e: UpdateAnalysis.Entry) -> [String] {
            var cells = [e.name, formatCount(e.count)]
            for c in e.changes {
                let minDim = e.shape.count == 2 ? min(e.shape[0], e.shape[1]) : 0
                cells += [pct(c.changed, e.count), pct(c.beyond, e.count), c.rank.map { "\($0)/\(minDim)" } ?? "-"]
            }
            if k == 2 {
                let o = e.overlap ?? 0, x = e.expectedOverlap ?? 0
                cells += ["\(o)", String(format: "%.1f", x), x > 0 ? String(format: "%.2f", Double(o) / x) : "-"]
            }
            return cells
        }
        print(table(header, r.matrices.map(row)))
        print("")
        print(table(header, r.layers.map(row)))
        print("")
        var total = ["total", formatCount(r.parameters)]
        for i in 0..<k { total += [pct(r.changed[i], r.parameters), pct(r.beyond[i], r.parameters), "-"] }
        if k == 2 { total += ["\(r.overlap ?? 0)", String(format: "%.1f", r.expectedOverlap ?? 0), r.overlapRatio.map { String(format: "%.2f", $0) } ?? "-"] }
        print(table(header, [total]))
        if !r.skipped.isEmpty { note("skipped (missing, other shape or not float): \(r.skipped.joined(separator: ", "))") }
    }
}
