import ArgumentParser
import Foundation
#if canImport(Glibc)
import Glibc
#endif

@main
struct Sculpt: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sculpt",
        abstract: "Fine-tune, discover, search, extract and merge sub-networks of pre-trained models, natively on the CPU.",
        subcommands: [Demo.self, Train.self, Eval.self, Predict.self, Info.self, Tokenize.self, Embed.self, Generate.self, Score.self, Convert.self, Bench.self,
                      Subnets.self, Extract.self, Prune.self, SubnetSearchCommand.self, LatencyTableCommand.self,
                      FrontSubnetCommand.self, ParetoCommand.self, SearchBenchmark.self, MergeCommand.self, DiffCommand.self]
    )

    static func main() {
        #if canImport(Glibc)
        // Activations of a forward pass are fresh tensors of up to a few MB each; glibc would
        // serve them by mmap and fault every page in again (~7 % of a decoder prefill). Keep
        // them on the heap and do not give freed memory back between passes.
        _ = glibcMallopt(-3 /* M_MMAP_THRESHOLD */, 32 << 20)
        _ = glibcMallopt(-1 /* M_TRIM_THRESHOLD */, 256 << 20)
        #endif
        main(nil)
    }
}

#if canImport(Glibc)
/// glibc's mallopt (malloc.h is not part of Swift's Glibc module).
@_silgen_name("mallopt") func glibcMallopt(_ parameter: Int32, _ value: Int32) -> Int32
#endif

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

/// A user error found while a command runs (after parsing): printed as one `Error:` line,
/// exit status 1, without the usage text that parse-time `ValidationError`s bring.
struct CommandError: Error, CustomStringConvertible {
    let description: String
    init(_ message: String) { description = message }
}
