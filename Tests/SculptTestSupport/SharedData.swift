import Foundation
import XCTest

/// Locates `../shared` (the read-only data and reference outputs beside the repo).
/// Tests that need it call `try SharedData.require(...)`, which skips with a reason when absent.
public enum SharedData {
    /// `SCULPT_SHARED` if set, else `<repo root>/../shared`.
    public static var root: URL {
        if let env = ProcessInfo.processInfo.environment["SCULPT_SHARED"], !env.isEmpty {
            return URL(fileURLWithPath: env)
        }
        return repoRoot.deletingLastPathComponent().appendingPathComponent("shared")
    }

    /// The directory holding Package.swift, found from this file's location.
    public static var repoRoot: URL {
        var dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        while dir.path != "/" {
            if FileManager.default.fileExists(atPath: dir.appendingPathComponent("Package.swift").path) { return dir }
            dir = dir.deletingLastPathComponent()
        }
        return URL(fileURLWithPath: FileManager.default.currentDirectoryPath)
    }

    /// The URL of a path inside shared/, or an XCTSkip naming what is missing.
    public static func require(_ relativePath: String) throws -> URL {
        let url = root.appendingPathComponent(relativePath)
        guard FileManager.default.fileExists(atPath: url.path) else {
            let reason = "skipped: \(url.path) is absent (needs ../shared or SCULPT_SHARED)"
            print(reason)
            throw XCTSkip(reason)
        }
        return url
    }

    /// The SmolLM2-135M-Instruct GGUF that `models/smollm2-135m-instruct/fetch.sh` puts in its
    /// cache (it downloads once), or an XCTSkip naming why it cannot be had.
    public static func smolLM2GGUF() throws -> String {
        let script = try require("models/smollm2-135m-instruct/fetch.sh")
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/bash")
        p.arguments = [script.path]
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        do { try p.run() } catch {
            let reason = "skipped: cannot run \(script.path): \(error)"
            print(reason)
            throw XCTSkip(reason)
        }
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        let path = String(decoding: o, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard p.terminationStatus == 0, !path.isEmpty, FileManager.default.fileExists(atPath: path) else {
            let reason = "skipped: fetch.sh failed (status \(p.terminationStatus)): " +
                String(decoding: e, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            print(reason)
            throw XCTSkip(reason)
        }
        return path
    }

    /// A fresh temporary directory; the caller removes it (tests: `temporaryDirectory()`).
    public static func temporaryDirectory(_ name: String = "sculpt-test") -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("\(name)-\(UUID().uuidString)")
        try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }
}

extension XCTestCase {
    /// A fresh temporary directory removed when the test ends, passed or failed.
    public func temporaryDirectory() -> URL {
        let dir = SharedData.temporaryDirectory()
        addTeardownBlock { try? FileManager.default.removeItem(at: dir) }
        return dir
    }
}

/// Runs the built `sculpt` executable (it sits beside the test bundle) for CLI-level tests.
public enum SculptCLI {
    public static var executable: URL {
        let beside = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("sculpt")
        return FileManager.default.fileExists(atPath: beside.path) ? beside : SharedData.repoRoot.appendingPathComponent(".build/debug/sculpt")
    }

    /// Starts `sculpt args` with stdout and stderr captured; the caller waits or kills it.
    public static func start(_ args: [String], in directory: URL? = nil) throws -> (process: Process, stdout: Pipe, stderr: Pipe) {
        let p = Process()
        p.executableURL = executable
        p.arguments = args
        if let directory { p.currentDirectoryURL = directory }
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        return (p, out, err)
    }

    /// Runs `sculpt args` to completion.
    public static func run(_ args: [String], in directory: URL? = nil) throws -> (status: Int32, stdout: String, stderr: String) {
        let (p, out, err) = try start(args, in: directory)
        let o = out.fileHandleForReading.readDataToEndOfFile(), e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self))
    }
}
