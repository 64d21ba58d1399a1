import XCTest
import Foundation
import SculptTestSupport

/// Every `sculpt …` command shown in README.md and docs/ names a subcommand that exists and
/// only flags that subcommand declares (checked against its `--help`), so the documentation
/// cannot drift from the CLI unnoticed.
final class DocsCommandsTests: XCTestCase {
    /// Commands in fenced code blocks: lines (with `\` continuations joined) whose first word,
    /// after an optional `$ ` prompt, is `sculpt` (or `.build/release/sculpt`).
    static func documentedCommands(in text: String) -> [String] {
        var commands: [String] = [], inFence = false, pending = ""
        for raw in text.components(separatedBy: "\n") {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.hasPrefix("```") { inFence.toggle(); pending = ""; continue }
            guard inFence else { continue }
            var current = pending.isEmpty ? line : pending + " " + line
            if current.hasSuffix("\\") { current.removeLast(); pending = current; continue }
            pending = ""
            if current.hasPrefix("$ ") { current.removeFirst(2) }
            for prefix in ["sculpt ", ".build/release/sculpt ", "/usr/bin/time -v sculpt "] where current.hasPrefix(prefix) {
                commands.append(String(current.dropFirst(prefix.count)))
            }
        }
        return commands
    }

    /// Words of a command up to a comment, pipe or redirection, quotes removed.
    static func words(_ command: String) -> [String] {
        var out: [String] = [], word = "", quote: Character? = nil
        for ch in command {
            if let q = quote { if ch == q { quote = nil } else { word.append(ch) }; continue }
            if ch == "'" || ch == "\"" { quote = ch; continue }
            if ch == " " { if !word.isEmpty { out.append(word); word = "" }; continue }
            word.append(ch)
        }
        if !word.isEmpty { out.append(word) }
        if let stop = out.firstIndex(where: { $0 == "#" || $0.hasPrefix("#") || $0 == "|" || $0 == ">" || $0 == "2>" || $0 == "&&" }) { out = Array(out[..<stop]) }
        return out
    }

    func testEveryDocumentedCommandAndFlagExists() throws {
        let root = SharedData.repoRoot
        var files = [root.appendingPathComponent("README.md")]
        if let e = FileManager.default.enumerator(at: root.appendingPathComponent("docs"), includingPropertiesForKeys: nil) {
            for case let url as URL in e where url.pathExtension == "md" { files.append(url) }
        }
        var helpCache: [String: String] = [:]
        var checked = 0
        for file in files {
            let text = try String(contentsOf: file, encoding: .utf8)
            for command in Self.documentedCommands(in: text) {
                let w = Self.words(command)
                // Output lines that start with the word (a results table's "sculpt  0.17 …") are not commands.
                guard let first = w.first, first.first?.isLowercase == true, first.allSatisfy({ $0.isLowercase || $0 == "-" }) else { continue }
                var path = [first]
                if first == "bench", w.count > 1, !w[1].hasPrefix("-") { path.append(w[1]) }
                let key = path.joined(separator: " ")
                if helpCache[key] == nil {
                    let r = try SculptCLI.run(path + ["--help"])
                    // `--help` after an unknown word prints the top-level help, so check whose usage it is.
                    XCTAssertTrue(r.status == 0 && r.stdout.contains("USAGE: sculpt \(key)"), "\(file.lastPathComponent): `sculpt \(key)` is not a command: \(r.stderr)")
                    helpCache[key] = r.stdout
                }
                let help = helpCache[key] ?? ""
                for flag in w where flag.hasPrefix("--") && flag.count > 2 {
                    let name = String(flag.split(separator: "=", maxSplits: 1)[0])
                    if name == "--help" { continue }
                    XCTAssertTrue(help.contains(name + " ") || help.contains(name + "\n") || help.contains(name + ","),
                                  "\(file.lastPathComponent): `sculpt \(key)` has no flag \(name) (in: sculpt \(command))")
                }
                checked += 1
            }
        }
        XCTAssertGreaterThan(checked, 30, "documented commands found")
    }
}
