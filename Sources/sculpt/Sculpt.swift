import ArgumentParser
import Foundation

@main
struct Sculpt: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sculpt",
        abstract: "Fine-tune, discover, search, extract and merge sub-networks of pre-trained models, natively on the CPU.",
        subcommands: [Demo.self, Train.self, Eval.self, Predict.self, Info.self, Tokenize.self, Embed.self, Generate.self, Score.self, Convert.self, Quantize.self, ImportanceCommand.self, Bench.self,
                      Subnets.self, Extract.self, Prune.self, SubnetSearchCommand.self, LatencyTableCommand.self,
                      FrontSubnetCommand.self, ParetoCommand.self, SearchBenchmark.self, MergeCommand.self, DiffCommand.self]
    )

    static func main() {
        do {
            var command = try parseAsRoot(joiningNegativeValues(Array(CommandLine.arguments.dropFirst())))
            try command.run()
        } catch {
            // A value that parsed but is invalid (a `ValidationError`, from a command's
            // `validate()` or its run) is a user error like any other: one line, status 1.
            // Usage errors (unknown flag, missing argument) keep ArgumentParser's output.
            if let v = validationCause(error) {
                note("Error: \(v.message)")
                Foundation.exit(1)
            }
            exit(withError: error)
        }
    }

    /// `--epochs -1`: ArgumentParser reads `-1` as a short flag and reports a missing value.
    /// No option here has a digit as its short name, so a negative number right after a long
    /// option is that option's value, passed on as `--epochs=-1`. Nothing after `--` changes.
    static func joiningNegativeValues(_ args: [String]) -> [String] {
        var out: [String] = []
        for a in args {
            if let last = out.last, last.hasPrefix("--"), last.count > 2, !last.contains("="), !out.contains("--"),
               a.hasPrefix("-"), a.count > 1, a.dropFirst().first.map({ $0.isNumber || $0 == "." }) == true, Double(a) != nil {
                out[out.count - 1] = last + "=" + a
            } else {
                out.append(a)
            }
        }
        return out
    }

    /// The `ValidationError` behind a failure: thrown directly, or wrapped by the parser
    /// (its error type is internal, so the cause is found by reflection, a few levels deep).
    static func validationCause(_ error: Any, depth: Int = 0) -> ValidationError? {
        if let v = error as? ValidationError { return v }
        guard depth < 4 else { return nil }
        for child in Mirror(reflecting: error).children {
            if let v = validationCause(child.value, depth: depth + 1) { return v }
        }
        return nil
    }
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

/// A user error found while a command runs (after parsing): printed as one `Error:` line,
/// exit status 1, without usage text (as `ValidationError`s are, by `Sculpt.main`).
struct CommandError: Error, CustomStringConvertible {
    let description: String
    init(_ message: String) { description = message }
}
