import ArgumentParser
import Foundation

@main
struct Sculpt: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sculpt",
        abstract: "Fine-tune, discover, search, extract and merge sub-networks of pre-trained models, natively on the CPU.",
        subcommands: [Demo.self, Train.self, Eval.self, Predict.self, Info.self, Tokenize.self, Embed.self, Generate.self, Score.self, Convert.self, Bench.self,
                      Subnets.self, Extract.self, Prune.self, SubnetSearchCommand.self, LatencyTableCommand.self,
                      FrontSubnetCommand.self, ParetoCommand.self, SearchBenchmark.self, MergeCommand.self, DiffCommand.self]
    )
}

/// One line of JSON with sorted keys.
func jsonLine<T: Encodable>(_ value: T) -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    guard let data = try? encoder.encode(value), let s = String(data: data, encoding: .utf8) else { return "{}" }
    return s
}

/// Writes to standard error (progress and notes, so standard output stays machine-readable).
func note(_ message: String) {
    FileHandle.standardError.write(Data((message + "\n").utf8))
}

/// Formats rows as an aligned text table.
func table(_ header: [String], _ rows: [[String]]) -> String {
    let all = [header] + rows
    let widths = header.indices.map { i in all.map { $0[i].count }.max() ?? 0 }
    func line(_ r: [String]) -> String {
        r.enumerated().map { i, c in i == 0 ? c.padding(toLength: widths[i], withPad: " ", startingAt: 0) : String(repeating: " ", count: widths[i] - c.count) + c }
            .joined(separator: "  ")
    }
    return ([line(header), widths.map { String(repeating: "-", count: $0) }.joined(separator: "  ")] + rows.map(line)).joined(separator: "\n")
}
