#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// An output directory written in a staging directory beside it and moved into place by
/// `commit`, so a command that fails leaves nothing half-made (`discard` removes the
/// staging directory). Stale staging directories of killed runs (`.<name>.staging-<pid>-…`
/// whose process is gone) are removed when a new one is made beside them.
public struct StagedDirectory {
    /// What `commit` does when the output already exists.
    public enum Existing: Sendable {
        /// Refuse (the default for commands that create a new model directory).
        case refuse
        /// Replace it whole: the old directory is moved aside, the new one renamed in, the old removed.
        case replace
        /// Rename each staged file over its namesake, keeping other files (merge's behaviour).
        case mergeInto
    }

    public let out: URL
    public let url: URL
    public let existing: Existing
    /// How errors name the output ("--out x").
    let label: String

    public init(_ out: URL, existing: Existing = .refuse, label: String? = nil) throws {
        self.out = out.standardizedFileURL
        self.existing = existing
        self.label = label ?? "--out \(out.path)"
        let fm = FileManager.default
        if existing == .refuse, fm.fileExists(atPath: self.out.path) {
            throw StagingError("\(self.label): already exists (choose a new directory, or --force to replace it)")
        }
        let parent = self.out.deletingLastPathComponent()
        do { try fm.createDirectory(at: parent, withIntermediateDirectories: true) } catch {
            throw StagingError("\(self.label): cannot create its parent directory: \(error.localizedDescription)")
        }
        StagedDirectory.removeStale(beside: self.out)
        url = parent.appendingPathComponent(".\(self.out.lastPathComponent).staging-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        do { try fm.createDirectory(at: url, withIntermediateDirectories: false) } catch {
            throw StagingError("\(self.label): cannot create a staging directory: \(error.localizedDescription)")
        }
    }

    /// Moves the staged directory into place.
    public func commit() throws {
        let fm = FileManager.default
        if !fm.fileExists(atPath: out.path) {
            guard rename(url.path, out.path) == 0 else { throw StagingError("\(label): cannot move the output into place (errno \(errno))") }
            return
        }
        switch existing {
        case .refuse:
            throw StagingError("\(label): appeared while the command ran; the result is left in \(url.path)")
        case .replace:
            let aside = out.deletingLastPathComponent().appendingPathComponent(".\(out.lastPathComponent).old-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
            guard rename(out.path, aside.path) == 0 else { throw StagingError("\(label): cannot move the old directory aside (errno \(errno))") }
            guard rename(url.path, out.path) == 0 else {
                _ = rename(aside.path, out.path)
                throw StagingError("\(label): cannot move the output into place (errno \(errno))")
            }
            try? fm.removeItem(at: aside)
        case .mergeInto:
            for name in try fm.contentsOfDirectory(atPath: url.path) {
                let dst = out.appendingPathComponent(name)
                var isDir: ObjCBool = false
                if fm.fileExists(atPath: dst.path, isDirectory: &isDir), isDir.boolValue { try fm.removeItem(at: dst) }
                guard rename(url.appendingPathComponent(name).path, dst.path) == 0 else {
                    throw StagingError("\(label): cannot move \(name) into place (errno \(errno))")
                }
            }
            try? fm.removeItem(at: url)
        }
    }

    public func discard() { try? FileManager.default.removeItem(at: url) }

    /// Runs `body` on the staging directory and commits, or discards on any error.
    public static func write(_ out: URL, existing: Existing = .refuse, label: String? = nil, _ body: (URL) throws -> Void) throws {
        let staged = try StagedDirectory(out, existing: existing, label: label)
        do {
            try body(staged.url)
            try staged.commit()
        } catch {
            staged.discard()
            throw error
        }
    }

    /// Removes `.<name>.staging-<pid>-*` and `.<name>.old-<pid>-*` beside `out` whose process is gone.
    static func removeStale(beside out: URL) {
        let parent = out.deletingLastPathComponent()
        let prefixes = [".\(out.lastPathComponent).staging-", ".\(out.lastPathComponent).old-"]
        for name in (try? FileManager.default.contentsOfDirectory(atPath: parent.path)) ?? [] {
            guard let prefix = prefixes.first(where: { name.hasPrefix($0) }) else { continue }
            let pidText = name.dropFirst(prefix.count).split(separator: "-").first.map(String.init) ?? ""
            guard let pid = Int32(pidText), pid != getpid(), kill(pid, 0) != 0, errno == ESRCH else { continue }
            try? FileManager.default.removeItem(at: parent.appendingPathComponent(name))
        }
    }
}

public struct StagingError: Error, CustomStringConvertible, Sendable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
